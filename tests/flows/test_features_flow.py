"""The build-features flow and the features CLI on a real (temporary) Prefect server."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from data_lake.catalog import query
from data_lake.ingest import PartialIngestError
from flows.build_features import FeatureParams, build_features
from flows.ingest_chains import IngestParams, ingest_chains
from flows.settings import load_settings
from tests.flows.test_cli import error_lines, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def test_build_features_flow_then_show(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_chains(
        IngestParams(underlyings=["SPY", "QQQ"], start=date(2024, 3, 4), end=date(2024, 3, 15))
    )
    summary = build_features(FeatureParams())
    assert set(summary["underlyings"]) == {"QQQ", "SPY"} and summary["failed"] == {}
    lake = load_settings().lake
    per_underlying = query(
        lake, "SELECT underlying, count(*) n FROM surface_features GROUP BY 1 ORDER BY 1"
    ).rows()
    assert per_underlying == [("QQQ", 10), ("SPY", 10)]
    again = build_features(FeatureParams(underlyings=["SPY"]))
    assert again["underlyings"]["SPY"]["days"] == 0  # no input changed: nothing to redo
    code, out, _ = run_cli(["features", "show", "spy", "--json"], capsys, monkeypatch)
    shown = json.loads(out)
    assert code == 0 and shown[0]["date"] == "2024-03-15" and shown[0]["atm_iv_30d"] > 0
    code, out, _ = run_cli(
        ["features", "show", "SPY", "--at", "2024-03-06", "--history", "3"], capsys, monkeypatch
    )
    assert code == 0 and "2024-03-06" in out and "2024-03-07" not in out


def test_unknown_underlying_is_reported_and_the_others_built(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_chains(IngestParams(underlyings=["SPY"], start=date(2024, 3, 4), end=date(2024, 3, 6)))
    with pytest.raises(PartialIngestError) as raised:
        build_features(FeatureParams(underlyings=["SPY", "IWM"]))
    assert raised.value.summary["failed"] == {
        "IWM": "no option quotes for IWM in the lake: ingest it first (volflow ingest ...)"
    }
    assert raised.value.summary["underlyings"]["SPY"]["days"] == 3
    code, _, err = run_cli(["features", "show", "QQQ"], capsys, monkeypatch)
    assert code == 2
    assert error_lines(err) == [
        "error: no features for QQQ at or before now: run `volflow features build`"
    ]


def test_ingest_with_build_features_builds_what_it_wrote(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_cli(
        ["ingest", "synthetic", "--underlyings", "QQQ", "--start", "2024-03-04", "--end",
         "2024-03-08", "--build-features", "--json"],
        capsys, monkeypatch,
    )  # fmt: skip
    summary = json.loads(out)
    assert code == 0
    assert summary["features"]["underlyings"]["QQQ"]["days"] == 5
    stored = query(load_settings().lake, "SELECT count(*) FROM surface_features").item()
    assert stored == 5
