"""The ingest path every source shares: a source batch -> checked, atomic partition writes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from data_lake.commit import PartitionKey
from data_lake.errors import LakeError, VolflowError
from data_lake.lake import (
    Lake,
    PartitionInput,
    PartitionWrite,
    Retire,
    WriteMode,
    write_tables,
)
from data_lake.schemas import table_spec
from data_lake.sources.base import SourceBatch


def write_batches(
    lake: Lake, batches: list[SourceBatch], mode: WriteMode = "merge", *, whole_files: bool = False
) -> list[PartitionWrite]:
    """Write a group of source batches, every table, as one commit (checks done once per
    table). Rows get their batch's ``batch_id`` where they have none.

    ``whole_files``: the batches are everything their files hold (not a date or symbol
    selection), so in upsert mode partitions that an earlier import of the same file
    wrote and this one does not lose that file's rows (a corrected file that dropped a
    symbol or a day). Each file's partitions are recorded under ``<lake>/_batches``."""
    by_table: dict[str, list[PartitionInput]] = {}
    for batch in batches:
        for table, frame in batch.frames.items():
            origin = batch.origin or f"{table} {batch.underlying} {batch.day}"
            rows = _with_batch_id(frame, table, batch.batch_id or origin)
            by_table.setdefault(table, []).append((batch.underlying, batch.day, rows, origin))
    retire = _retired(lake, batches) if whole_files and mode == "upsert" else None
    tables = [(table_spec(table), items) for table, items in by_table.items()]
    return write_tables(lake, tables, mode=mode, retire=retire)


def _with_batch_id(frame: pl.DataFrame, table: str, batch_id: str) -> pl.DataFrame:
    if "batch_id" not in table_spec(table).schema:
        return frame
    batch = pl.lit(batch_id, pl.String)
    if "batch_id" in frame.columns:
        return frame.with_columns(pl.col("batch_id").cast(pl.String).fill_null(batch))
    return frame.with_columns(batch.alias("batch_id"))


BATCH_RECORDS = "_batches"


def batch_record_path(lake: Lake, batch_id: str) -> Path:
    """Where the partitions written from one file are recorded."""
    digest = hashlib.sha256(batch_id.encode()).hexdigest()[:24]
    return lake.root / BATCH_RECORDS / f"{digest}.json"


def _retired(lake: Lake, batches: list[SourceBatch]) -> Retire:
    """Partitions each file's earlier import wrote that this import does not, and the
    new records of the files' partitions."""
    written: dict[str, set[PartitionKey]] = {}
    for batch in batches:
        for table in batch.frames:
            key = (table, batch.underlying, batch.day)
            written.setdefault(batch.batch_id or batch.origin, set()).add(key)
    retire = Retire()
    for batch_id, keys in written.items():
        path = batch_record_path(lake, batch_id)
        for table, underlying, day in _recorded(path):
            if (table, underlying, day) not in keys:
                retire.partitions.setdefault((table, underlying, day), set()).add(batch_id)
        record = {
            "batch_id": batch_id,
            "partitions": sorted([t, u, d.isoformat()] for t, u, d in keys),
        }
        retire.records[path] = json.dumps(record, indent=1).encode()
    return retire


def _recorded(path: Path) -> list[PartitionKey]:
    if not path.exists():
        return []
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return [(t, u, date.fromisoformat(d)) for t, u, d in record["partitions"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LakeError(f"unreadable import record {path}: {exc}; delete it and re-import") from exc


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
