"""The volflow command line, run in-process through its real entry point."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from flows.cli import main
from tests.flows.conftest import lake_snapshot


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["volflow", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    """stderr lines that are not Prefect's own log lines."""
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture
def ingested(
    home: Path,
    prefect_server: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    code, out, _ = run_cli(
        [
            "ingest",
            "synthetic",
            "--underlyings",
            "SPY,QQQ",
            "--start",
            "2024-03-04",
            "--end",
            "2024-03-05",
            "--dirt-rate",
            "0.01",
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["underlyings"]["SPY"]["partitions"] == 4
    quarantined = sum(sum(s["quarantined"].values()) for s in summary["underlyings"].values())
    assert quarantined > 0
    (home / "quarantined.txt").write_text(str(quarantined))
    return home / "lake"


@pytest.mark.integration
def test_ingest_then_status_and_sql(
    ingested: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_cli(["lake", "status", "--json"], capsys, monkeypatch)
    assert code == 0
    status = json.loads(out)
    tables = {t["table"]: t for t in status["tables"]}
    assert tables["option_quotes"]["partitions"] == 4
    assert tables["option_quotes"]["underlyings"] == {"QQQ": 2, "SPY": 2}
    assert (tables["option_quotes"]["first_date"], tables["option_quotes"]["last_date"]) == (
        "2024-03-04",
        "2024-03-05",
    )
    assert status["last_ingest"] is not None and status["corrupt_files"] == []

    sql = "SELECT underlying, count(*) AS n FROM option_quotes GROUP BY ALL ORDER BY 1"
    code, out, _ = run_cli(["sql", sql, "--format", "csv"], capsys, monkeypatch)
    assert (
        code == 0
        and out.splitlines()[0] == "underlying,n"
        and out.splitlines()[1].startswith("QQQ,")
    )
    code, out, _ = run_cli(["sql", sql, "--format", "json"], capsys, monkeypatch)
    rows = json.loads(out)
    assert [r["underlying"] for r in rows] == ["QQQ", "SPY"]
    assert rows[0]["n"] + rows[1]["n"] == tables["option_quotes"]["rows"]
    code, out, _ = run_cli(["lake", "status"], capsys, monkeypatch)
    assert code == 0 and "option_quotes" in out and "quarantine (rows per failed check)" in out
    quarantined = int((ingested.parent / "quarantined.txt").read_text())
    assert tables["quarantine"]["rows"] == quarantined
    reasons = {row["reason"] for row in status["quarantine"]}
    assert {"bid_above_ask", "missing_underlying_price"} <= reasons
    code, out, _ = run_cli(
        ["sql", "SELECT count(*) AS n FROM quarantine", "--format", "json"], capsys, monkeypatch
    )
    assert json.loads(out) == [{"n": quarantined}]
    code, out, _ = run_cli(["lake", "quality", "--json"], capsys, monkeypatch)
    quality = json.loads(out)
    quotes = [r for r in quality if r["table"] == "option_quotes"]
    assert {(r["underlying"], r["date"]) for r in quotes} == {
        (u, d) for u in ("QQQ", "SPY") for d in ("2024-03-04", "2024-03-05")
    }
    assert sum(r["quarantined"] for r in quality) == quarantined
    assert sum(r["written"] for r in quotes) == tables["option_quotes"]["rows"]
    assert all(r["source"] == "synthetic" for r in quality)
    code, out, _ = run_cli(["lake", "quality", "--underlying", "spy"], capsys, monkeypatch)
    assert code == 0 and "SPY" in out and "QQQ" not in out


@pytest.mark.integration
def test_corrupted_partition_is_named_by_status_and_sql_and_left_alone(
    ingested: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = ingested / "option_quotes" / "underlying=SPY" / "date=2024-03-05" / "data-v2.parquet"
    bad.write_bytes(b"truncated")
    before = lake_snapshot(ingested)
    code, out, _ = run_cli(["lake", "status", "--json"], capsys, monkeypatch)
    assert code == 0
    assert [c["file"] for c in json.loads(out)["corrupt_files"]] == [str(bad)]
    code, _, err = run_cli(["sql", "SELECT count(*) FROM option_quotes"], capsys, monkeypatch)
    assert code == 2
    assert len(error_lines(err)) == 1 and "date=2024-03-05" in err
    assert "Traceback" not in err
    one_day = "SELECT count(*) FROM option_quotes WHERE date = DATE '2024-03-04'"
    code, out, err = run_cli(["sql", one_day], capsys, monkeypatch)
    assert code == 0 and not err  # queries that do not read the damaged file work
    code, out, err = run_cli(["lake", "check", "--json"], capsys, monkeypatch)
    assert code == 1 and error_lines(err) == ["error: 1 damaged or unknown lake file(s)"]
    assert [(p["kind"], p["file"]) for p in json.loads(out)["problems"]] == [("damaged", str(bad))]
    assert lake_snapshot(ingested) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--underlyings", "NOPE", "--start", "2024-03-04", "--end", "2024-03-05"],
            "unknown underlying 'NOPE'",
        ),
        (
            ["--underlyings", "SPY", "--start", "2024-03-05", "--end", "2024-03-04"],
            "before start date",
        ),
        (
            ["--underlyings", "SPY", "--start", "2024-03-09", "--end", "2024-03-10"],
            "no exchange sessions",
        ),
        (["--underlyings", "SPY", "--start", "2024-03-04"], "give both start and end"),
        (
            ["--underlyings", "S/PY", "--start", "2024-03-04", "--end", "2024-03-05"],
            "invalid underlying symbol",
        ),
    ],
)
def test_bad_ingest_arguments_fail_with_one_line_and_write_nothing(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    code, _, err = run_cli(["ingest", "synthetic", *args], capsys, monkeypatch)
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (home / "lake" / "option_quotes").exists()


def test_unwritable_home_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("VOLFLOW_HOME", str(blocker / "home"))
    code, _, err = run_cli(
        [
            "ingest",
            "synthetic",
            "--underlyings",
            "SPY",
            "--start",
            "2024-03-04",
            "--end",
            "2024-03-04",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert "writable" in err and "VOLFLOW_HOME" in err and "Traceback" not in err


def test_bad_sql_is_a_one_line_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(["sql", "SELEC nonsense"], capsys, monkeypatch)
    assert code == 2 and error_lines(err) and "syntax error" in err.lower()


def test_unknown_option_is_a_usage_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(["lake", "status", "--bogus"], capsys, monkeypatch)
    assert code == 2 and "No such option" in err


@pytest.mark.integration
def test_backfill_command_skips_what_ingest_wrote(
    ingested: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["backfill", "synthetic", "--underlyings", "SPY", "--start", "2024-03-04",
            "--end", "2024-03-06", "--json"]  # fmt: skip
    code, out, _ = run_cli(args, capsys, monkeypatch)
    assert code == 0
    spy = json.loads(out)["underlyings"]["SPY"]
    assert spy["skipped_partitions"] == 2 and spy["partitions"] == 2  # only 03-06 was new


CBOE = Path(__file__).resolve().parents[1] / "fixtures" / "cboe"


@pytest.mark.integration
def test_cboe_import_writes_good_files_and_reports_a_bad_one(
    home: Path,
    prefect_server: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text((CBOE / "eod_plain.csv").read_text().replace("2024-01-04", "2024-01-05")[:-40])
    args = ["ingest", "cboe", str(CBOE / "eod_calcs_2days.csv"), str(bad), "--json"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "broken.csv: line 5 has" in lines[0]
    code, out, _ = run_cli(
        ["sql", "SELECT underlying, count(DISTINCT date) AS days FROM option_quotes GROUP BY ALL "
         "ORDER BY ALL", "--format", "json"], capsys, monkeypatch,
    )  # fmt: skip
    assert json.loads(out) == [{"underlying": "AAPL", "days": 2}, {"underlying": "SPX", "days": 2}]
    assert not (home / "lake" / "option_quotes" / "underlying=AAPL" / "date=2024-01-05").exists()


def test_cboe_import_of_a_missing_file_is_a_usage_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(["ingest", "cboe", "/nowhere/eod.csv"], capsys, monkeypatch)
    assert code == 2 and error_lines(err) == ["error: no such file: /nowhere/eod.csv"]


LEAN = Path(__file__).resolve().parents[1] / "fixtures" / "lean"


@pytest.mark.integration
def test_lean_import_gives_raw_and_adjusted_history(
    home: Path,
    prefect_server: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = run_cli(
        ["ingest", "lean", str(LEAN), "--underlyings", "AAPL", "--start", "2014-06-02", "--json"],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0
    aapl = json.loads(out)["underlyings"]["AAPL"]
    assert aapl["rows"]["underlying_bars"] == 43  # sessions 2014-06-02 .. 2014-07-31
    assert aapl["rows"]["corporate_actions"] > 30
    sql = (
        "SELECT date, round(close_raw, 2) AS raw, round(close, 4) AS adjusted "
        "FROM underlying_bars_adjusted WHERE date IN ('2014-06-06', '2014-06-09') ORDER BY date"
    )
    code, out, _ = run_cli(["sql", sql, "--format", "json"], capsys, monkeypatch)
    rows = json.loads(out)
    assert [r["raw"] for r in rows] == [645.57, 93.7]
    assert 1.0 < rows[1]["adjusted"] / rows[0]["adjusted"] < 1.03
    # the chains came with the bars: the split-day dirt is reported by lake quality
    assert aapl["rows"]["option_quotes"] > 0 and aapl["rows"]["option_vendor_analytics"] > 0
    code, out, _ = run_cli(["lake", "quality", "--source", "lean", "--json"], capsys, monkeypatch)
    days = {r["date"]: r for r in json.loads(out) if r["table"] == "option_quotes"}
    assert days["2014-06-09"]["reasons"]["strike_scale_mismatch"] == 6  # pre-split strikes
    assert days["2014-06-06"]["reasons"]["no_price"] == 6
    code, out, _ = run_cli(["lake", "quality", "--underlying", "aapl"], capsys, monkeypatch)
    assert code == 0 and "strike_scale_mismatch" in out and "totals" in out


@pytest.mark.integration
def test_lean_import_reports_a_bad_chain_file_and_writes_the_other_sessions(
    home: Path,
    tmp_path: Path,
    prefect_server: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "lean"
    shutil.copytree(LEAN, root)
    bad = root / "option" / "usa" / "universes" / "aapl" / "20140610.csv"
    bad.write_text(bad.read_text().replace("20140719,95,C", "20140719,95,X"))
    code, out, err = run_cli(
        ["ingest", "lean", str(root), "--underlyings", "AAPL", "--start", "2014-06-05",
         "--end", "2014-06-10", "--json"],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 1
    summary = json.loads(out)
    message = summary["failed"]["AAPL"]
    assert f"{bad}: line" in message and "column 'right'" in message, message
    assert summary["underlyings"]["AAPL"]["rows"]["option_quotes"] > 0
    assert error_lines(err) == [f"error: 1 of 1 underlying(s) written in part: AAPL: {message}"]
    code, out, _ = run_cli(
        ["sql", "SELECT DISTINCT CAST(date AS VARCHAR) d FROM option_quotes ORDER BY d",
         "--format", "json"],
        capsys, monkeypatch,
    )  # fmt: skip
    assert [r["d"] for r in json.loads(out)] == ["2014-06-05", "2014-06-06", "2014-06-09"]
