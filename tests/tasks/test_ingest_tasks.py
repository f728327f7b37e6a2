"""Task bodies through .fn() (no Prefect server) and the retry policy."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from prefect.states import Completed, Failed

from data_lake.errors import ConfigError, DataQualityError, LakeError
from data_lake.lake import Lake, read_partition
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.synthetic import SyntheticConfig
from tasks import progress
from tasks.ingest import ingest_synthetic_range, ingest_synthetic_snapshot, retry_on_io_error

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
