"""Lake integrity: commits that are whole after a SIGKILL, corrections that replace,
older and damaged files that do not break the other queries, quarantine keys."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from data_lake.catalog import query
from data_lake.commit import JOURNAL, STAGING, Commit
from data_lake.errors import LakeError
from data_lake.lake import Lake, read_partition, read_quarantine, write_partition
from data_lake.maintenance import check_lake, migrate_lake
from data_lake.schemas import LABELS, TABLES, UNDERLYING_BARS
from tasks.ingest import ingest_vendor_file
from tests.conftest import make_quotes
from tests.data_lake.lake_writer import (
    CBOE_FIXTURE,
    FILE_NAME,
    corrected,
    lake_content,
    plan,
    run,
)

ROOT = Path(__file__).resolve().parents[2]
KILL_RUNS = 10  # seeded kill moments, each in a fresh process
WRITE_SECONDS = 1.5  # the writer's commits take about 0.7 s after "ready" here


def _writer(lake: Path, work: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.data_lake.lake_writer", str(lake), str(work), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_sigkill_at_any_moment_leaves_whole_commits_and_a_rerun_converges(
    tmp_path: Path,
) -> None:
    """A real ingest process is killed at seeded random moments of its writes. After
    each kill the lake equals the lake of an uninterrupted run after some number of
    commits (so every committed day is whole: its quotes, bars and rejects together),
    no staging or journal debris is left once a reader has opened it, and running
    the ingest again gives the uninterrupted run's lake."""
    work = tmp_path / "work"
    proc = _writer(tmp_path / "full", work, "--states")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    ready = lines.index("ready")
    steps = [json.loads(line) for line in lines[ready + 1 :]]
    assert len(steps) == 7
    for step in steps:  # every row of a write is stored or quarantined
        assert step["rows_in"] == step["written"] + step["quarantined"]
    assert steps[4]["quarantined"] > steps[1]["quarantined"]  # the dirty correction
    assert steps[6]["quarantined"] == 1  # the corrected file's invalid row
    states = [json.loads(lines[0])["state"]] + [step["state"] for step in steps]
    prefixes = {json.dumps(state, sort_keys=True): k for k, state in enumerate(states)}
    assert len(prefixes) == 8  # every commit changes the lake
    final = states[-1]
    commits = plan(work)

    rng = random.Random(20261202)
    seen = []
    for attempt in range(KILL_RUNS):
        lake = Lake(tmp_path / f"killed{attempt}")
        proc = _writer(lake.root, work)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, WRITE_SECONDS))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        state = json.dumps(lake_content(lake), sort_keys=True)
        assert state in prefixes, f"kill {attempt}: the lake is not a state after whole commits"
        seen.append(prefixes[state])
        assert not any((lake.root / STAGING).iterdir()), "staging debris left"
        assert not any((lake.root / JOURNAL).glob("*")), "an unfinished journal left"
        run(lake, commits, states=False)  # the ingest again, to its end
        assert lake_content(lake) == final, f"kill {attempt}: a re-run did not converge"
    assert len(set(seen)) >= 3, f"the kills landed after too few distinct commits: {seen}"


def test_a_journal_left_by_a_dead_commit_is_finished_by_the_next_reader(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_partition(lake, TABLES["option_quotes"], make_quotes(), "SPY", date(2024, 1, 2))
    target = lake.data_file("option_quotes", "SPY", date(2024, 1, 3))
    import data_lake.commit as module

    def die(*_: object) -> None:  # the process dies after its commit point
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_apply", die)
    with Commit(lake) as commit:
        commit.put(target, make_quotes().drop("underlying", "date"))
        with pytest.raises(KeyboardInterrupt):
            commit.commit()
    monkeypatch.undo()
    assert not target.exists() and any((lake.root / JOURNAL).glob("*.json"))
    assert query(lake, "SELECT count(*) AS n FROM option_quotes")["n"][0] == 8
    assert target.exists() and not any((lake.root / JOURNAL).glob("*"))
    assert not any((lake.root / STAGING).iterdir())


def _ingest_file(lake: Lake, path: Path) -> None:
    ingest_vendor_file.fn(lake, "cboe", str(path), mode="upsert")


def test_a_corrected_vendor_file_replaces_the_first_ones_rows_and_rejects(tmp_path: Path) -> None:
    """Regression (lake review, item 2): upserting a corrected file left rows the vendor
    removed, the old valid version of a row that became invalid, and old rejects."""
    first, second = tmp_path / "v1" / FILE_NAME, tmp_path / "downloads" / FILE_NAME
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_text(CBOE_FIXTURE.read_text())
    second.write_text(corrected(CBOE_FIXTURE.read_text()))
    lake, fresh = Lake(tmp_path / "lake"), Lake(tmp_path / "fresh")
    _ingest_file(lake, first)
    before = lake_content(lake)
    _ingest_file(lake, second)
    _ingest_file(fresh, second)
    assert lake_content(lake) == lake_content(fresh) != before
    aapl = query(lake, "SELECT count(*) AS n FROM option_quotes WHERE underlying = 'AAPL'")
    assert aapl["n"][0] > 0
    day2 = "SELECT count(*) AS n FROM option_quotes WHERE underlying = 'AAPL' AND date = ?"
    assert query(lake, day2, [date(2024, 1, 3)])["n"][0] == 0  # the partition it dropped
    rejects = query(lake, "SELECT reason FROM quarantine")
    assert rejects.height >= 1 and all("bid_above_ask" in r for r in rejects["reason"])
    # importing the same file again changes nothing
    _ingest_file(lake, second)
    assert lake_content(lake) == lake_content(fresh)


def test_another_files_rows_of_the_same_partition_stay_on_a_correction(lake: Lake) -> None:
    day = date(2024, 1, 2)
    spec = TABLES["option_quotes"]
    one = make_quotes(n=4).head(2).with_columns(batch_id=pl.lit("cboe:a.csv"))
    two = make_quotes(n=4).tail(2).with_columns(batch_id=pl.lit("cboe:b.csv"))
    write_partition(lake, spec, one, "SPY", day, mode="upsert")
    write_partition(lake, spec, two, "SPY", day, mode="upsert")
    write_partition(lake, spec, one.head(1), "SPY", day, mode="upsert")  # a.csv corrected
    stored = read_partition(lake, spec, "SPY", day)
    assert stored.group_by("batch_id").len().sort("batch_id").rows() == [
        ("cboe:a.csv", 1),
        ("cboe:b.csv", 2),
    ]


def _legacy_labels(lake: Lake, day: date) -> Path:
    """A labels file as volflow wrote it before ``cost`` existed (version 1 name)."""
    folder = lake.partition_dir(LABELS.name, "SPY", day)
    folder.mkdir(parents=True)
    ts = datetime(day.year, day.month, day.day, 21, tzinfo=UTC)
    old = pl.DataFrame(
        {
            "ts_event": [ts],
            "label": ["straddle_dh_ret"],
            "horizon_periods": [5],
            "value": [0.01],
            "ts_end": [ts],
            "ts_init": [ts],
            "source": ["volflow"],
        },
        schema_overrides={"horizon_periods": pl.Int32},
    )
    path = folder / "part-0.parquet"
    old.write_parquet(path)
    return path


def _labels(day: date, value: float) -> pl.DataFrame:
    ts = datetime(day.year, day.month, day.day, 21, tzinfo=UTC)
    return pl.DataFrame(
        {
            "underlying": ["SPY"],
            "date": [day],
            "ts_event": [ts],
            "label": ["straddle_dh_ret"],
            "horizon_periods": [5],
            "value": [value],
            "cost": [0.002],
            "ts_end": [ts],
            "ts_init": [ts],
            "source": ["volflow"],
        },
        schema=LABELS.schema,
    )


def test_files_of_an_older_version_are_read_with_nulls_then_migrated(lake: Lake) -> None:
    """Regression (lake review, item 3): a labels file from before ``cost`` made every
    query of the table fail (BinderException, or a schema mismatch in the glob)."""
    write_partition(lake, LABELS, _labels(date(2024, 1, 2), 0.02), "SPY", date(2024, 1, 2))
    old = _legacy_labels(lake, date(2024, 1, 3))
    (lake.root / "_schemas" / "format.json").unlink()  # as in a lake made before versions
    sql = "SELECT date, value, cost FROM labels ORDER BY date"
    assert query(lake, sql).rows() == [
        (date(2024, 1, 2), 0.02, 0.002),
        (date(2024, 1, 3), 0.01, None),
    ]
    assert read_partition(lake, LABELS, "SPY", date(2024, 1, 3))["cost"].to_list() == [None]
    found = check_lake(lake).problems
    assert [(p["kind"], p["file"]) for p in found] == [("old_version", str(old))]
    assert "lacks cost" in found[0]["problem"]
    result = migrate_lake(lake)
    assert result == {"rewritten_files": 1, "failed": [], "old_files_left": 0}
    assert not old.exists() and check_lake(lake).problems == []
    assert query(lake, sql).rows()[1] == (date(2024, 1, 3), 0.01, None)
    # a next write of an old partition rewrites it in the current version too
    old = _legacy_labels(lake, date(2024, 1, 4))
    write_partition(lake, LABELS, _labels(date(2024, 1, 4), 0.03), "SPY", date(2024, 1, 4))
    assert not old.exists() and lake.data_file(LABELS.name, "SPY", date(2024, 1, 4)).exists()


def test_a_damaged_file_fails_only_the_queries_that_read_it(lake: Lake) -> None:
    """Regression (lake review, item 3): a torn footer failed queries filtered to other
    dates, with a raw exception."""
    for d in (2, 3, 4):
        write_partition(lake, LABELS, _labels(date(2024, 1, d), d / 100), "SPY", date(2024, 1, d))
    torn = lake.data_file(LABELS.name, "SPY", date(2024, 1, 2))
    torn.write_bytes(torn.read_bytes()[:-20])
    other = query(lake, "SELECT value FROM labels WHERE date = ?", [date(2024, 1, 4)])
    assert other["value"].to_list() == [0.04]
    assert query(lake, "SELECT * FROM labels_at('SPY', DATE '2024-01-03')").height == 1
    with pytest.raises(LakeError) as caught:
        query(lake, "SELECT sum(value) FROM labels")
    message = str(caught.value)
    assert "\n" not in message and str(torn) in message and "volflow lake check" in message
    report = check_lake(lake)
    assert [(p["kind"], p["file"]) for p in report.damaged] == [("damaged", str(torn))]


def test_a_bar_reject_is_kept_when_another_bar_length_ends_at_the_same_time(lake: Lake) -> None:
    """Regression (lake review, item 8): the quarantine keyed bars by ts_event alone, so
    writing an hourly bar ending at the close deleted the daily bar's reject."""
    day = date(2024, 1, 2)
    close = datetime(2024, 1, 2, 21, tzinfo=UTC)

    def bar(seconds: int, high: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "underlying": ["SPY"],
                "date": [day],
                "ts_event": [close],
                "bar_seconds": [seconds],
                "open": [470.0],
                "high": [high],
                "low": [469.0],
                "close": [470.5],
                "volume": [1000],
                "ts_init": [close],
                "source": ["lean"],
            },
            schema_overrides={"bar_seconds": pl.Int32},
        )

    write_partition(lake, UNDERLYING_BARS, bar(86400, 460.0), "SPY", day)  # high < low
    assert read_quarantine(lake, UNDERLYING_BARS.name, "SPY", day).height == 1
    write_partition(lake, UNDERLYING_BARS, bar(3600, 471.0), "SPY", day)
    rejects = read_quarantine(lake, UNDERLYING_BARS.name, "SPY", day)
    assert rejects.select("bar_seconds", "reason").rows() == [(86400, rejects["reason"][0])]
    assert read_partition(lake, UNDERLYING_BARS, "SPY", day)["bar_seconds"].to_list() == [3600]
    write_partition(lake, UNDERLYING_BARS, bar(86400, 471.0), "SPY", day)  # fixed daily bar
    assert read_quarantine(lake, UNDERLYING_BARS.name, "SPY", day).is_empty()
