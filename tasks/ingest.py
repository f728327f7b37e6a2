"""Prefect tasks for ingestion: thin wrappers over ``data_lake`` with I/O-only retries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.states import State

from data_lake.calendar import exchange_calendar
from data_lake.errors import LakeError
from data_lake.ingest import IngestSummary, chunked, write_batch, write_batches
from data_lake.lake import (
    Lake,
    WriteMode,
    iter_partitions,
    partition_snapshots,
    remove_source_rows,
)
from data_lake.schemas import CORPORATE_ACTIONS, OPTION_QUOTES, UNDERLYING_BARS
from data_lake.sources import cboe, lean, synthetic, yahoo
from data_lake.sources.base import SourceBatch
from data_lake.sources.synthetic import SyntheticConfig
from tasks import progress


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run logger inside a Prefect run; the module logger when a body runs via .fn()."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


# Sessions written per call: the checks' fixed cost is paid once per chunk, memory stays small.
WRITE_CHUNK_DAYS = 20


def _write_in_chunks(
    lake: Lake, batches: Iterable[SourceBatch], mode: WriteMode, summary: IngestSummary
) -> None:
    """Write a stream of batches a chunk at a time, counting and reporting progress."""
    for chunk in chunked(batches, WRITE_CHUNK_DAYS):
        writes = write_batches(lake, chunk, mode)
        summary.add(writes)
        for batch in chunk:
            key = (batch.underlying, batch.day)
            rows = sum(
                w.rows_written for w in writes if (w.partition.underlying, w.partition.day) == key
            )
            progress.report(batch.underlying, batch.day, rows)


def retry_on_io_error(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only transient I/O failures; bad data and bad arguments fail at once."""
    try:
        state.result()
    except PermissionError:
        return False
    except OSError:
        return True
    except LakeError as exc:
        cause = exc.__cause__
        return isinstance(cause, OSError) and not isinstance(cause, PermissionError)
    except Exception:
        return False
    return False


@task(
    name="ingest-synthetic",
    task_run_name="ingest-synthetic-{underlying}",
    tags=["volflow-ingest"],
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def ingest_synthetic_range(
    lake: Lake,
    config: SyntheticConfig,
    underlying: str,
    start: date,
    end: date,
    mode: WriteMode = "merge",
    skip_existing: bool = False,
) -> dict[str, object]:
    """Generate and write ``underlying``'s synthetic chains for every session in range."""
    logger = _logger()
    lake.ensure_writable()
    summary = IngestSummary(underlying, synthetic.SOURCE_NAME)

    calendar = exchange_calendar()

    def already_written(day: date) -> bool:
        """Skip a day only if every snapshot it should hold is there (a day with just a
        mid-day poll still gets its close)."""
        if not skip_existing:
            return False
        expected = synthetic.snapshot_times(calendar.session_on_or_before(day), config.intraday)
        # this source's snapshots: another source's rows of the day are no reason to skip
        source = synthetic.SOURCE_NAME
        stored = partition_snapshots(lake, OPTION_QUOTES.name, underlying, day, source)
        if stored.issuperset(expected) and partition_snapshots(
            lake, UNDERLYING_BARS.name, underlying, day, source
        ):
            summary.skipped += 1
            return True
        return False

    stream = synthetic.generate(underlying, start, end, config, skip_day=already_written)
    _write_in_chunks(lake, stream, mode, summary)
    logger.info(
        "%s %s..%s: %d partitions written, %d skipped, rows %s, quarantined %s",
        underlying,
        start,
        end,
        summary.partitions,
        summary.skipped,
        dict(summary.rows),
        dict(summary.quarantined),
    )
    return summary.as_dict()


@task(
    name="ingest-synthetic-snapshot",
    task_run_name="ingest-synthetic-snapshot-{underlying}",
    tags=["volflow-ingest"],
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def ingest_synthetic_snapshot(
    lake: Lake, config: SyntheticConfig, underlying: str, as_of: datetime
) -> dict[str, object]:
    """Write the latest synthetic snapshot at or before ``as_of`` (the scheduled poll)."""
    lake.ensure_writable()
    batch = synthetic.latest_snapshot(underlying, as_of, config)
    summary = IngestSummary(underlying, synthetic.SOURCE_NAME)
    summary.add(write_batch(lake, batch, "merge"))
    progress.report(underlying, batch.day, sum(summary.rows.values()))
    _logger().info("%s snapshot %s: rows %s", underlying, batch.origin, dict(summary.rows))
    return summary.as_dict()


@task(
    name="ingest-yfinance",
    task_run_name="ingest-yfinance-{underlying}",
    tags=["volflow-ingest", "volflow-yfinance"],
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def ingest_yfinance_snapshot(
    lake: Lake, underlying: str, config: yahoo.PollConfig, as_of: datetime | None = None
) -> dict[str, object]:
    """Poll ``underlying``'s live chain once and write it as one snapshot. An empty or
    partial response raises (nothing written). ``as_of`` fixes the clock (replays and
    tests); live polls stamp ``ts_init`` with the real time of receipt."""
    lake.ensure_writable()
    clock = (lambda: as_of) if as_of is not None else yahoo.now_utc
    batch = yahoo.poll(underlying, yahoo.make_fetcher(), config, clock)
    summary = IngestSummary(underlying, yahoo.SOURCE_NAME)
    summary.add(write_batch(lake, batch, "merge"))
    progress.report(underlying, batch.day, sum(summary.rows.values()))
    _logger().info("%s: rows %s from %s", underlying, dict(summary.rows), batch.origin)
    return summary.as_dict()


def _prune_factor_rows(lake: Lake, batches: list[SourceBatch]) -> None:
    """A factor file is republished whole: drop stored factor rows it no longer has."""
    current: dict[str, set[date]] = {}
    for batch in batches:
        if CORPORATE_ACTIONS.name in batch.frames:
            current.setdefault(batch.underlying, set()).add(batch.day)
    for partition in list(iter_partitions(lake, CORPORATE_ACTIONS.name)):
        days = current.get(partition.underlying)
        if days is not None and partition.day not in days:  # LEAN's rows only
            remove_source_rows(
                lake, CORPORATE_ACTIONS, partition.underlying, partition.day, lean.SOURCE_NAME
            )


def _vendor_batches(
    source: str,
    path: Path,
    underlyings: list[str] | None,
    start: date | None,
    end: date | None,
    options: str | None,
    problems: list[str],
) -> list[SourceBatch]:
    if source == lean.SOURCE_NAME:
        return [
            b
            for u in underlyings or []
            for b in lean.load_underlying(path, u, start, end, options=options, problems=problems)
        ]
    batches = cboe.load_file(path)
    return [
        b
        for b in batches
        if (not underlyings or b.underlying in underlyings)
        and (start is None or b.day >= start)
        and (end is None or b.day <= end)
    ]


@task(
    name="ingest-file",
    task_run_name="ingest-{source}-{path}",
    tags=["volflow-ingest"],
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def ingest_vendor_file(
    lake: Lake,
    source: str,
    path: str,
    underlyings: list[str] | None = None,
    mode: WriteMode = "merge",
    start: date | None = None,
    end: date | None = None,
    options: str | None = None,
) -> dict[str, object]:
    """Parse one vendor file (or, for LEAN, one symbol's files below a data folder, with
    its option chains at resolution ``options``) completely, then write its partitions,
    optionally only ``underlyings`` and dates in ``start..end``. A bad file raises
    before anything of it is written; for LEAN a bad option file costs only the
    sessions it covers, and is listed in the summary's ``problems``."""
    lake.ensure_writable()
    problems: list[str] = []
    batches = _vendor_batches(source, Path(path), underlyings, start, end, options, problems)
    label = Path(path).name if source != lean.SOURCE_NAME else ",".join(underlyings or [])
    summary = IngestSummary(label, source)
    summary.problems.extend(problems)
    if source == cboe.SOURCE_NAME:
        # a CBOE file is one commit: a corrected re-publication replaces all of the
        # first one's rows, in the partitions it still covers and in those it dropped
        whole = not underlyings and start is None and end is None
        summary.add(write_batches(lake, batches, mode, whole_files=whole))
    else:
        _write_in_chunks(lake, batches, mode, summary)
    if source == lean.SOURCE_NAME:
        _prune_factor_rows(lake, batches)
    _logger().info(
        "%s: %d partitions of %s, rows %s, quarantined %s",
        path,
        summary.partitions,
        sorted(summary.underlyings),
        dict(summary.rows),
        dict(summary.quarantined),
    )
    return summary.as_dict()
