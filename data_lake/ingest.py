"""The ingest path every source shares: a source batch -> checked, atomic partition writes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from data_lake.errors import VolflowError
from data_lake.lake import Lake, PartitionInput, PartitionWrite, WriteMode, write_partitions
from data_lake.schemas import table_spec
from data_lake.sources.base import SourceBatch


def write_batches(
    lake: Lake, batches: list[SourceBatch], mode: WriteMode = "merge"
) -> list[PartitionWrite]:
    """Write a group of source batches, table by table, checks done once per table."""
    by_table: dict[str, list[PartitionInput]] = {}
    for batch in batches:
        for table, frame in batch.frames.items():
            origin = batch.origin or f"{table} {batch.underlying} {batch.day}"
            by_table.setdefault(table, []).append((batch.underlying, batch.day, frame, origin))
    writes: list[PartitionWrite] = []
    for table, items in by_table.items():
        writes.extend(write_partitions(lake, table_spec(table), items, mode=mode))
    return writes


def write_batch(lake: Lake, batch: SourceBatch, mode: WriteMode = "merge") -> list[PartitionWrite]:
    """Write every table of one batch to its partition (quality checks included)."""
    return write_batches(lake, [batch], mode)


def chunked(batches: Iterable[SourceBatch], size: int) -> Iterator[list[SourceBatch]]:
    """Group a stream of batches into lists of ``size`` (memory stays bounded)."""
    chunk: list[SourceBatch] = []
    for batch in batches:
        chunk.append(batch)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class IngestSummary:
    """Counts for one unit of ingest, an underlying or a file (what tasks return and
    flows report)."""

    underlying: str  # the underlying, or the file's name for file sources
    source: str
    partitions: int = 0
    skipped: int = 0
    rows: Counter[str] = field(default_factory=Counter)  # valid rows written, per table
    quarantined: Counter[str] = field(default_factory=Counter)  # per table
    reasons: Counter[str] = field(default_factory=Counter)
    first_day: date | None = None
    last_day: date | None = None
    underlyings: set[str] = field(default_factory=set)
    # inputs that could not be read (file, line, column, what was wrong); what they
    # held was left out whole, the rest written: the run is reported as failed
    problems: list[str] = field(default_factory=list)

    def add(self, writes: list[PartitionWrite]) -> None:
        for write in writes:
            self.partitions += 1
            self.rows[write.partition.table] += write.rows_written
            self.quarantined[write.partition.table] += write.quarantined
            self.reasons.update(write.reasons)
            day = write.partition.day
            self.underlyings.add(write.partition.underlying)
            self.first_day = day if self.first_day is None else min(self.first_day, day)
            self.last_day = day if self.last_day is None else max(self.last_day, day)

    def as_dict(self) -> dict[str, object]:
        return {
            "underlying": self.underlying,
            "source": self.source,
            "partitions": self.partitions,
            "skipped_partitions": self.skipped,
            "rows": dict(self.rows),
            "quarantined": dict(self.quarantined),
            "quarantine_reasons": dict(self.reasons),
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "underlyings": sorted(self.underlyings),
            "problems": list(self.problems),
        }


def failure_line(unit: str, message: str) -> str:
    """``unit: message``, naming the unit once: most messages already start with it."""
    return message if unit in message else f"{unit}: {message}"


class PartialIngestError(VolflowError):
    """Some underlyings or files failed; the others were written. ``summary`` has both."""

    def __init__(self, summary: dict[str, Any]) -> None:
        failed = summary["failed"]
        key = "files" if summary.get("files") is not None else "underlyings"
        written = set(summary.get(key) or {})
        units = written | set(failed)
        noun = "file(s)" if key == "files" else "underlying(s)"
        lost = [u for u in failed if u not in written]
        outcome = [f"{len(lost)} of {len(units)} {noun} failed"] if lost else []
        if len(lost) < len(failed):  # the others of ``failed`` were written in part
            outcome.append(f"{len(failed) - len(lost)} of {len(units)} {noun} written in part")
        rest = " (the others were written)" if len(units) > len(failed) else ""
        detail = "; ".join(failure_line(u, msg) for u, msg in failed.items())
        super().__init__(f"{', '.join(outcome)}{rest}: {detail}")
        self.summary = summary
