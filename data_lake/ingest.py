"""The ingest path every source shares: a source batch -> checked, atomic partition writes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from data_lake.errors import VolflowError

from data_lake.lake import Lake, PartitionWrite, WriteMode, write_partition
from data_lake.schemas import table_spec
from data_lake.sources.base import SourceBatch


def write_batch(lake: Lake, batch: SourceBatch, mode: WriteMode = "merge") -> list[PartitionWrite]:
    """Write every table of one batch to its partition (quality checks included)."""
    return [
        write_partition(
            lake,
            table_spec(table),
            frame,
            batch.underlying,
            batch.day,
            origin=batch.origin or f"{table} {batch.underlying} {batch.day}",
            mode=mode,
        )
        for table, frame in batch.frames.items()
    ]


@dataclass
class IngestSummary:
    """Counts for one underlying's ingest (what tasks return and flows report)."""

    underlying: str
    source: str
    partitions: int = 0
    skipped: int = 0
    rows: Counter[str] = field(default_factory=Counter)  # valid rows written, per table
    quarantined: Counter[str] = field(default_factory=Counter)  # per table
    reasons: Counter[str] = field(default_factory=Counter)
    first_day: date | None = None
    last_day: date | None = None

    def add(self, writes: list[PartitionWrite]) -> None:
        for write in writes:
            self.partitions += 1
            self.rows[write.partition.table] += write.rows_written
            self.quarantined[write.partition.table] += write.quarantined
            self.reasons.update(write.reasons)
            day = write.partition.day
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
        }


class PartialIngestError(VolflowError):
    """Some underlyings failed; the others were written. ``summary`` has both."""

    def __init__(self, summary: dict[str, Any]) -> None:
        failed = summary["failed"]
        detail = "; ".join(f"{u}: {msg}" for u, msg in failed.items())
        super().__init__(f"{len(failed)} underlying(s) failed, the rest were written: {detail}")
        self.summary = summary
