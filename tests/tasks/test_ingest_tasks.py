"""Task bodies through .fn() (no Prefect server) and the retry policy."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.states import Completed, Failed

from data_lake.errors import ConfigError, DataQualityError, LakeError
from data_lake.lake import Lake, partition_exists, read_partition
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.synthetic import SyntheticConfig
from tasks import progress
from tasks.ingest import (
    ingest_synthetic_range,
    ingest_synthetic_snapshot,
    ingest_vendor_file,
    retry_on_io_error,
)

START, END = date(2024, 3, 4), date(2024, 3, 6)


def test_range_task_writes_each_session_and_reports_progress(lake: Lake) -> None:
    seen: list[tuple[str, date, int]] = []

    def listener(underlying: str, day: date, rows: int) -> None:
        seen.append((underlying, day, rows))

    progress.add_listener(listener)
    try:
        summary = ingest_synthetic_range.fn(lake, SyntheticConfig(), "SPY", START, END)
    finally:
        progress.remove_listener(listener)
    assert summary["partitions"] == 6 and summary["first_day"] == "2024-03-04"
    assert [d for _, d, _ in seen] == [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]
    total = sum(read_partition(lake, OPTION_QUOTES, "SPY", d).height for d in (START, END))
    assert total == sum(rows for _, d, rows in seen if d in (START, END)) - 2  # minus the bars


def test_range_task_skips_existing_partitions_when_asked(lake: Lake) -> None:
    ingest_synthetic_range.fn(lake, SyntheticConfig(), "SPY", START, START)
    summary = ingest_synthetic_range.fn(
        lake, SyntheticConfig(), "SPY", START, END, skip_existing=True
    )
    assert summary["skipped_partitions"] == 1 and summary["partitions"] == 4


def test_snapshot_task_writes_one_snapshot(lake: Lake) -> None:
    as_of = datetime(2024, 3, 5, 18, 30, tzinfo=UTC)  # 13:30 New York
    summary = ingest_synthetic_snapshot.fn(lake, SyntheticConfig(), "QQQ", as_of)
    stored = read_partition(lake, OPTION_QUOTES, "QQQ", date(2024, 3, 5))
    assert stored["ts_event"].unique().to_list() == [datetime(2024, 3, 5, 18, 0, tzinfo=UTC)]
    assert summary["rows"] == {"option_quotes": stored.height}


def _failed(exc: Exception) -> Any:
    return Failed(data=exc)


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (OSError(5, "I/O error"), True),
        (LakeError("cannot write"), False),
        (ConfigError("unknown underlying"), False),
        (DataQualityError("missing column"), False),
        (PermissionError(13, "denied"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_io_errors_are_retried(exc: Exception, retry: bool) -> None:
    assert retry_on_io_error(None, None, _failed(exc)) is retry  # type: ignore[arg-type]


def test_lake_error_caused_by_an_io_error_is_retried() -> None:
    error = LakeError("cannot write lake file")
    error.__cause__ = OSError(28, "No space left on device")
    assert retry_on_io_error(None, None, _failed(error)) is True  # type: ignore[arg-type]


def test_completed_state_is_not_retried() -> None:
    assert retry_on_io_error(None, None, Completed(data=1)) is False  # type: ignore[arg-type]


def test_backfill_completes_a_day_that_holds_only_a_midday_poll(lake: Lake) -> None:
    ingest_synthetic_snapshot.fn(
        lake, SyntheticConfig(), "SPY", datetime(2024, 3, 4, 17, 5, tzinfo=UTC)
    )
    summary = ingest_synthetic_range.fn(
        lake, SyntheticConfig(), "SPY", START, START, skip_existing=True
    )
    assert summary["skipped_partitions"] == 0
    stored = read_partition(lake, OPTION_QUOTES, "SPY", START)
    assert stored["ts_event"].n_unique() == 2  # the 12:00 poll and the close
    again = ingest_synthetic_range.fn(
        lake, SyntheticConfig(), "SPY", START, START, skip_existing=True
    )
    assert again["skipped_partitions"] == 1


LEAN = Path(__file__).resolve().parents[1] / "fixtures" / "lean"
CBOE = Path(__file__).resolve().parents[1] / "fixtures" / "cboe"


def test_vendor_files_split_by_root_combine_in_one_partition(lake: Lake, tmp_path: Path) -> None:
    lines = (CBOE / "eod_calcs_2days.csv").read_text().splitlines()
    for root in ("SPX", "SPXW"):
        part = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[2] == root]
        (tmp_path / f"{root}.csv").write_text("\n".join(part) + "\n")
        ingest_vendor_file.fn(lake, "cboe", str(tmp_path / f"{root}.csv"), mode="upsert")
    stored = read_partition(lake, OPTION_QUOTES, "SPX", date(2024, 1, 2))
    assert stored["contract_id"].str.slice(0, 4).unique().sort().to_list() == ["SPX2", "SPXW"]


def test_factor_rows_a_republished_file_drops_are_removed(lake: Lake, tmp_path: Path) -> None:
    root = tmp_path / "lean"
    shutil.copytree(LEAN, root)
    factors = root / "equity" / "usa" / "factor_files" / "aapl.csv"
    ingest_vendor_file.fn(lake, "lean", str(root), underlyings=["AAPL"], mode="upsert")
    assert partition_exists(lake, "corporate_actions", "AAPL", date(2014, 8, 6))
    factors.write_text("".join(ln for ln in factors.read_text().splitlines(keepends=True)
                               if not ln.startswith("20140806")))  # fmt: skip
    ingest_vendor_file.fn(lake, "lean", str(root), underlyings=["AAPL"], mode="upsert")
    assert not partition_exists(lake, "corporate_actions", "AAPL", date(2014, 8, 6))
    assert partition_exists(lake, "corporate_actions", "AAPL", date(2014, 6, 6))
