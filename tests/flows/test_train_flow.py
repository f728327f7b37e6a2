"""volflow train: MLflow runs, a registered model, champion then challenger, manual
promotion; on a real Prefect server and a real (SQLite) MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.flows.test_cli import error_lines, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def test_train_registers_a_champion_then_a_challenger_and_promotes_by_hand(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(["train", "--trials", "1"], capsys, monkeypatch)
    assert code == 2 and "run `volflow features build` first" in error_lines(err)[0]
    code, _, _ = run_cli(
        ["ingest", "synthetic", "--underlyings", "SPY", "--start", "2024-01-02", "--end",
         "2024-05-31", "--build-features"],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0
    args = ["train", "--trials", "2", "--folds", "2", "--horizon", "1", "--json"]
    code, out, _ = run_cli(args, capsys, monkeypatch)
    first = json.loads(out)
    assert code == 0 and first["alias"] == "champion" and first["reason"] == "no champion yet"
    for key in ("run_id", "model_version", "oos_ic", "oos_rank_ic", "oos_sharpe_net", "n_oos"):
        assert key in first
    assert first["label_horizon_periods"] == 1 and first["n_oos"] > 30
    code, out, _ = run_cli(args, capsys, monkeypatch)
    second = json.loads(out)
    # the same rows: none that the champion was not trained on, so nothing to compare on
    assert second["alias"] == "challenger"
    assert "not compared with the champion: no out-of-sample rows" in second["reason"]
    assert "oracle_ic" not in second  # a no-signal lake has no planted truth
    code, out, _ = run_cli(["models", "list", "--json"], capsys, monkeypatch)
    versions = {v["version"]: v for v in json.loads(out)}
    assert versions["1"]["aliases"] == ["champion"] and versions["2"]["aliases"] == ["challenger"]
    assert versions["1"]["oos_sharpe_net"] == pytest.approx(first["oos_sharpe_net"])
    code, out, _ = run_cli(["models", "promote", "2", "--reason", "test"], capsys, monkeypatch)
    assert code == 0
    code, out, _ = run_cli(["models", "list", "--json"], capsys, monkeypatch)
    versions = {v["version"]: v for v in json.loads(out)}
    assert "champion" in versions["2"]["aliases"] and versions["2"]["decision"] == "manual: test"
    code, _, err = run_cli(["models", "promote", "9"], capsys, monkeypatch)
    assert code == 2 and "has no version 9" in error_lines(err)[0]
    # two more months: the new version is compared with the champion (version 2, the
    # booster as registered) on the snapshots after its data, with a paired test
    code, _, _ = run_cli(
        ["ingest", "synthetic", "--underlyings", "SPY", "--start", "2024-06-03", "--end",
         "2024-07-31", "--build-features"],
        capsys, monkeypatch,
    )  # fmt: skip
    code, out, _ = run_cli(args, capsys, monkeypatch)
    third = json.loads(out)
    assert code == 0 and "paired test against the champion over" in third["reason"], third
    test = third["paired_test"]
    assert test["snapshots"] >= 30  # June and July less the horizon
    promoted = test["snapshots"] >= 20 and (test["tstat"] or 0) > 1.645
    assert third["alias"] == ("champion" if promoted else "challenger")
