"""User errors through the real ``volflow`` console script, in a subprocess: one line
that says what was wrong (naming the file once), no traceback, nothing half written;
the whole stdout and stderr are asserted.

Runs that reach Prefect talk to the session's test server (``PREFECT_API_URL``), so a
command does not start its own temporary server; Prefect's own log lines are part
of what the user sees and are asserted too, with the clock, the run's generated name
and the temporary folder normalised.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.flows.conftest import lake_snapshot
from tests.prefect_processes import VOLFLOW, clean_environment, run_command

CBOE = Path(__file__).resolve().parents[1] / "fixtures" / "cboe"
LEAN = Path(__file__).resolve().parents[1] / "fixtures" / "lean"
CBOE_LAYOUT = "not a CBOE Option EOD Summary layout: missing column(s) strike"


@pytest.fixture
def api_url(prefect_server: None) -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def volflow(
    args: list[str],
    tmp_path: Path,
    api_url: str | None = None,
    home: Path | None = None,
    **settings: str,
) -> tuple[int, list[str], list[str]]:
    """Run the console script; (exit code, stdout lines, stderr lines), normalised."""
    env = clean_environment(VOLFLOW_HOME=str(home or tmp_path / "home"), **settings)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    done = run_command([str(VOLFLOW), *args], env, cwd=tmp_path, timeout=180)
    return done.returncode, normalise(done.stdout, tmp_path), normalise(done.stderr, tmp_path)


def normalise(text: str, tmp_path: Path) -> list[str]:
    text = text.replace(str(tmp_path), "<tmp>")
    text = re.sub(r"^\d\d:\d\d:\d\d\.\d{3} \| ", "", text, flags=re.MULTILINE)
    text = re.sub(r"([Ff]low run) '[a-z]+-[a-z]+'", r"\1 '<run>'", text)
    text = re.sub(r"View at http://\S+", "View at <url>", text)
    text = re.sub(r"(Task run '[a-z-]+)-[0-9a-f]{3}'", r"\1-<id>'", text)
    return text.splitlines()


def flow_lines(flow: str, *lines: str, final: str) -> list[str]:
    """What Prefect prints for a run of ``flow`` that fails with ``final``."""
    return [
        f"INFO    | Flow run '<run>' - Beginning flow run '<run>' for flow '{flow}'",
        "INFO    | Flow run '<run>' - View at <url>",
        *lines,
        f"INFO    | Flow run '<run>' - Finished in state Failed({final!r})",
        f"error: {final}",
    ]


def no_traceback(*outputs: list[str]) -> bool:
    return not any("Traceback" in line or 'File "' in line for out in outputs for line in out)


@pytest.mark.integration
def test_missing_column_names_the_file_once_and_writes_nothing(
    tmp_path: Path, api_url: str
) -> None:
    rows = list(csv.reader((CBOE / "eod_plain.csv").read_text().splitlines()))
    drop = rows[0].index("strike")
    with (tmp_path / "nostrike.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(r[:drop] + r[drop + 1 :] for r in rows)
    code, out, err = volflow(["ingest", "cboe", "nostrike.csv", "--json"], tmp_path, api_url)
    reason = f"nostrike.csv: {CBOE_LAYOUT}"
    assert code == 1
    assert json.loads("\n".join(out)) == {
        "lake": "<tmp>/home/lake", "files": {}, "failed": {"nostrike.csv": reason},
    }  # fmt: skip
    assert err == flow_lines(
        "ingest-chains",
        "ERROR   | Task run 'ingest-cboe-nostrike.csv' - Finished in state Failed('Task run "
        f"encountered an exception SourceError: {reason}')",
        f"ERROR   | Flow run '<run>' - failed: {reason}",
        final=f"1 of 1 file(s) failed: {reason}",
    )
    assert not (tmp_path / "home" / "lake" / "option_quotes").exists()


@pytest.mark.integration
def test_bad_file_is_reported_with_its_line_and_the_good_file_is_written(
    tmp_path: Path, api_url: str
) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text((CBOE / "eod_plain.csv").read_text().replace("2024-01-04", "2024-01-05")[:-40])
    good = CBOE / "eod_calcs_2days.csv"
    code, out, err = volflow(["ingest", "cboe", str(good), str(bad), "--json"], tmp_path, api_url)
    assert code == 1
    summary = json.loads("\n".join(out))
    reason = summary["failed"]["<tmp>/broken.csv"]
    assert reason.startswith("<tmp>/broken.csv: line 5 has ") and reason.count("broken.csv") == 1
    assert summary["files"][str(good)]["partitions"] > 0
    final = f"1 of 2 file(s) failed (the others were written): {reason}"
    assert err[-3:] == [
        f"ERROR   | Flow run '<run>' - failed: {reason}",
        f"INFO    | Flow run '<run>' - Finished in state Failed({final!r})",
        f"error: {final}",
    ]
    assert no_traceback(out, err)


@pytest.mark.integration
def test_truncated_zip_leaves_its_sessions_out_and_says_which_file(
    tmp_path: Path, api_url: str
) -> None:
    root = tmp_path / "lean"
    shutil.copytree(LEAN, root)
    bad = root / "option" / "usa" / "daily" / "aapl_2014_quote_american.zip"
    bad.write_bytes(bad.read_bytes()[:300])
    code, out, err = volflow(
        ["ingest", "lean", "lean", "--underlyings", "AAPL", "--json"], tmp_path, api_url
    )
    problem = "lean/option/usa/daily/aapl_2014_quote_american.zip: corrupt zip file"
    reason = f"1 file(s) left out, the rest written: {problem} (File is not a zip file)"
    assert code == 1
    summary = json.loads("\n".join(out))
    assert summary["failed"] == {"AAPL": reason}
    assert summary["underlyings"]["AAPL"]["rows"]["underlying_bars"] > 0  # bars still written
    assert "option_quotes" not in summary["underlyings"]["AAPL"]["rows"]
    final = f"1 of 1 underlying(s) written in part: AAPL: {reason}"
    assert err[-3:] == [
        f"ERROR   | Flow run '<run>' - AAPL: {reason}",
        f"INFO    | Flow run '<run>' - Finished in state Failed({final!r})",
        f"error: {final}",
    ]
    assert no_traceback(out, err)


@pytest.mark.integration
def test_corrupt_partition_fails_the_build_with_its_path_and_what_to_do(
    tmp_path: Path, api_url: str
) -> None:
    code, _, _ = volflow(
        ["ingest", "synthetic", "--underlyings", "SPY", "--start", "2024-03-04", "--end",
         "2024-03-05"], tmp_path, api_url,
    )  # fmt: skip
    assert code == 0
    lake = tmp_path / "home" / "lake"
    corrupt = next(
        (lake / "option_quotes" / "underlying=SPY" / "date=2024-03-05").glob("*.parquet")
    )
    corrupt.write_bytes(b"garbage")
    before = lake_snapshot(lake)
    code, out, err = volflow(["features", "build", "--json"], tmp_path, api_url)
    where = f"<tmp>/{corrupt.relative_to(tmp_path)}"
    reason = (
        f"corrupt or unreadable lake file {where}: parquet: File out of specification: A "
        "Parquet file must contain a header and footer with at least 12 bytes; `volflow lake "
        "check` lists the damaged files: delete the partition folder and ingest it again"
    )
    assert code == 1
    assert json.loads("\n".join(out)) == {
        "lake": "<tmp>/home/lake", "underlyings": {}, "failed": {"SPY": reason},
    }  # fmt: skip
    assert err == flow_lines(
        "build-features",
        "ERROR   | Task run 'build-features-SPY' - Finished in state Failed('Task run "
        f"encountered an exception LakeError: {reason}')",
        f"ERROR   | Flow run '<run>' - failed: {reason}",
        final=f"1 of 1 underlying(s) failed: {reason}",
    )
    assert lake_snapshot(lake) == before  # nothing half built
    code, out, err = volflow(["lake", "status", "--json"], tmp_path)
    assert code == 0 and json.loads("\n".join(out))["corrupt_files"][0]["file"] == where


@pytest.mark.integration
def test_unknown_underlying_of_a_build_is_reported_by_the_flow(
    tmp_path: Path, api_url: str
) -> None:
    code, out, err = volflow(["features", "build", "--underlyings", "ZZZZ"], tmp_path, api_url)
    reason = "ZZZZ: no option quotes for ZZZZ in the lake: ingest it first (volflow ingest ...)"
    assert code == 1
    assert err == flow_lines(
        "build-features", final=f"1 of 1 underlying(s) failed: {reason.split(': ', 1)[1]}"
    )
    assert any("FAILED" in line for line in out) and no_traceback(out, err)


@pytest.mark.integration
def test_a_real_history_without_labels_at_the_horizon_fails_training_with_a_hint(
    tmp_path: Path, api_url: str
) -> None:
    """LEAN's AAPL fixture: four sessions around the 7:1 split, no straddle labels."""
    code, _, _ = volflow(
        ["ingest", "lean", str(LEAN), "--underlyings", "AAPL", "--build-features"],
        tmp_path, api_url,
    )  # fmt: skip
    assert code == 0
    code, out, err = volflow(["train", "--trials", "0"], tmp_path, api_url)
    reason = (
        "no training rows for label 'straddle_dh_ret' at horizon 5: run `volflow features "
        "build` first; a row needs its label 5 snapshots later, so add history or lower "
        "--horizon (and check features.horizons)"
    )
    assert (code, out) == (2, [])
    task = "ERROR   | Task run 'train-walk-forward-<id>'"
    assert err == flow_lines(
        "train-model",
        f"{task} - Task run failed with exception: ConfigError({reason!r})",
        f"{task} - Finished in state Failed("
        + repr(f"Task run encountered an exception ConfigError: {reason}")
        + ")",
        final=reason,
    )


@pytest.mark.integration
def test_too_short_a_history_for_one_fold_fails_training_with_what_to_change(
    tmp_path: Path, api_url: str
) -> None:
    small = {"VOLFLOW_SYNTHETIC__STRIKES_PER_SD": "4", "VOLFLOW_SYNTHETIC__EXPIRY_MONTHS": "2"}
    code, _, _ = volflow(
        ["ingest", "synthetic", "--underlyings", "SPY", "--start", "2024-03-04", "--end",
         "2024-03-19", "--build-features"], tmp_path, api_url, **small,
    )  # fmt: skip
    assert code == 0
    code, out, err = volflow(["train", "--horizon", "1", "--trials", "0"], tmp_path, api_url)
    reason = (
        "11 labelled snapshots cannot support one walk-forward fold at horizon 1: it needs 20 "
        "training snapshots after a purge of 1 and an embargo of 1, then 5 test snapshots "
        "(about 27 in all, and the first 50% are only trained on): add history (volflow "
        "backfill) or lower train.horizon (--horizon) or train.min_train_periods"
    )
    assert (code, out) == (2, [])
    expected = flow_lines("train-model", final=reason)
    assert err[:2] == expected[:2] and err[-2:] == expected[-2:]
    assert no_traceback(out, err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ingest", "synthetic", "--start", "2024-03-05", "--end", "2024-03-04"],
            "end date 2024-03-04 is before start date 2024-03-05",
        ),
        (
            ["ingest", "synthetic", "--underlyings", "ZZZZ", "--start", "2024-03-04", "--end",
             "2024-03-05"],
            "unknown underlying 'ZZZZ' for the synthetic source; known: AAPL, AMZN, DIA, IWM, "
            "MSFT, NVDA, QQQ, SPY, TSLA, XYZ (add more under synthetic.universe in volflow.yaml)",
        ),
        (
            ["features", "build", "--start", "2024-03-05", "--end", "2024-03-04"],
            "end date 2024-03-04 is before start date 2024-03-05",
        ),
        (["ingest", "cboe", "missing.csv"], "no such file: missing.csv"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line_before_any_run(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, out, err = volflow(args, tmp_path)
    assert (code, out, err) == (2, [], [f"error: {message}"])
    assert not (tmp_path / "home" / "lake").exists()


def test_unwritable_home_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    code, out, err = volflow(["lake", "status"], tmp_path, home=blocker / "home")
    assert code == 2 and out == []
    assert err == [
        "error: cannot create <tmp>/not-a-folder/home/prefect (Not a directory); set "
        "VOLFLOW_HOME (or PREFECT_HOME) to a writable folder"
    ]


@pytest.mark.integration
def test_lake_check_and_migrate_name_damaged_and_old_files(tmp_path: Path) -> None:
    """A lake with an old-version labels file (no ``cost``) and a torn one: ``lake check``
    lists both and exits 1 with one line; ``sql`` on another day works; a query that
    reads the torn file fails with one line naming it; ``lake migrate`` rewrites the
    old file and leaves the damaged one listed."""
    from datetime import date

    from data_lake.lake import Lake, write_partition
    from data_lake.schemas import LABELS
    from tests.data_lake.test_integrity import _labels, _legacy_labels

    lake = Lake(tmp_path / "home" / "lake")
    for d in (2, 3):
        write_partition(lake, LABELS, _labels(date(2024, 1, d), d / 100), "SPY", date(2024, 1, d))
    old = _legacy_labels(lake, date(2024, 1, 4))
    (lake.root / "_schemas" / "format.json").unlink()  # a lake from before versions
    torn = lake.data_file(LABELS.name, "SPY", date(2024, 1, 2))
    torn.write_bytes(torn.read_bytes()[:-20])
    where = {str(p): f"<tmp>/{p.relative_to(tmp_path)}" for p in (old, torn)}

    code, out, err = volflow(["lake", "check", "--json"], tmp_path)
    found = json.loads("\n".join(out))["problems"]
    assert (code, err) == (1, ["error: 1 damaged or unknown lake file(s)"])
    assert [(p["kind"], p["file"]) for p in found] == [
        ("damaged", where[str(torn)]),
        ("old_version", where[str(old)]),
    ]
    sql = "SELECT date, value, cost FROM labels WHERE date > DATE '2024-01-02' ORDER BY date"
    code, out, err = volflow(["sql", sql, "--format", "csv"], tmp_path)
    assert (code, out, err) == (
        0,
        ["date,value,cost", "2024-01-03,0.03,0.002", "2024-01-04,0.01,"],
        [],
    )
    code, out, err = volflow(["sql", "SELECT sum(value) FROM labels"], tmp_path)
    assert code == 2 and out == [] and len(err) == 1 and no_traceback(err)
    assert err[0].startswith("error: query failed: ") and where[str(torn)] in err[0]
    assert err[0].endswith("(`volflow lake check` lists every damaged or old lake file)")
    code, out, err = volflow(["lake", "migrate"], tmp_path)
    assert (code, out, err) == (0, ["lake migrate: 1 file(s) rewritten, 0 old file(s) left"], [])
    code, out, err = volflow(["lake", "check", "--json"], tmp_path)
    found = json.loads("\n".join(out))["problems"]
    assert code == 1 and [p["kind"] for p in found] == ["damaged"]
