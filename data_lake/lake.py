"""The lake on disk: Hive-partitioned Parquet with all-or-nothing, idempotent writes.

Layout: ``<root>/<table>/underlying=<U>/date=<YYYY-MM-DD>/data-v<N>.parquet``; the
quarantine table keeps one file per source table in each partition
(``<source_table>-v<N>.parquet``). ``N`` is the table's schema version
(``data_lake.schemas``); files of older versions (``part-*.parquet`` for version 1)
stay readable and are rewritten in the current version when their partition is next
written (or by ``volflow lake migrate``).

Every write is one :class:`data_lake.commit.Commit`: the data and quarantine files of
all the partitions of a batch (every table of a chunk of sessions) are staged, then
committed together behind a journal, under the partitions' locks. A reader sees the
old files or the new ones; a process killed at any point leaves the lake as it was
before the write or as after it, never part of it.

Writes replace whole snapshots: rows of the incoming frame replace existing rows
of the same snapshot (``ts_event`` and ``source``: one source's rows never replace
another's) and other snapshots of the day are kept, so writing the same data twice
never duplicates rows and an intraday ingest adds its snapshot to the day.
``mode="upsert"`` (vendor files) replaces what earlier imports of the same files
(``batch_id``) put in the partition, rows and rejects, and rows with the same unique
key; other files' rows stay. ``mode="replace"`` swaps the whole partition.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow.parquet as pq

from data_lake.commit import Commit, PartitionKey, partition_locks, recover
from data_lake.errors import ConfigError, LakeError
from data_lake.quality import CheckedFrame, check, conform
from data_lake.schemas import PARTITION_COLUMNS, QUARANTINE, SCHEMA_VERSION, TABLES, TableSpec

logger = logging.getLogger(__name__)

# merge: rows replace the partition's rows of the same snapshots; upsert: rows replace
# the rows of the same files (batch_id) and rows with the same unique key, the rest
# stay (vendor files split by root or symbol combine); replace: the batch becomes the
# whole partition.
WriteMode = Literal["merge", "upsert", "replace"]
WRITE_THREADS = min(4, os.cpu_count() or 1)
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


@dataclass(frozen=True)
class Partition:
    """One (table, underlying, date) partition."""

    table: str
    underlying: str
    day: date


@dataclass(frozen=True)
class PartitionWrite:
    """What one partition write did (returned to tasks for logging and summaries)."""

    partition: Partition
    path: Path
    rows_in: int
    rows_written: int  # valid rows of this batch
    rows_total: int  # rows in the partition after the write
    quarantined: int
    reasons: dict[str, int]


SCHEMAS = "_schemas"  # the views' anchor files and the lake's format record


def _format_record(lake: Lake) -> Path:
    return lake.root / SCHEMAS / "format.json"


def _table_versions() -> dict[str, int]:
    return {name: spec.version for name, spec in TABLES.items()}


def may_hold_older_files(lake: Lake) -> bool:
    """False once a lake is known to hold only current-version files (a lake made by
    this version, or migrated, with every table at the version recorded then): its
    views skip the search for older files. A table whose version was bumped since
    (columns added) may hold files of its older version again."""
    try:
        record = json.loads(_format_record(lake).read_text(encoding="utf-8"))
        if record.get("versions") != _table_versions():
            return True
        return bool(record.get("older_files", True))
    except (OSError, ValueError, AttributeError):
        return True


def record_format(lake: Lake, *, older_files: bool | None = None) -> None:
    """Write the lake's format record: whether files of older versions may be in it
    (found by a search when not given). Kept as is if present and not told otherwise."""
    path = _format_record(lake)
    if older_files is None:
        if path.exists():
            return
        older_files = any(lake.root.glob("*/underlying=*/date=*/part-*.parquet"))
    record = {"format": SCHEMA_VERSION, "versions": _table_versions(), "older_files": older_files}
    data = json.dumps(record).encode()
    with Commit(lake) as commit:
        commit.put_bytes(path, data)
        commit.commit()


def _versions(folder: Path, stem: str, legacy: str) -> list[Path]:
    """``<stem>-v<N>.parquet`` files in ``folder``, newest first, then ``<legacy>.parquet``."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"{stem}-v*.parquet"):
        version = path.name[len(stem) + 2 : -len(".parquet")]
        if version.isdigit():
            found.append((int(version), path))
    files = [path for _, path in sorted(found, reverse=True)]
    old = folder / f"{legacy}.parquet"
    return [*files, old] if old.exists() else files


@dataclass(frozen=True)
class Lake:
    """A lake rooted at ``root`` (normally ``$VOLFLOW_HOME/lake``).

    ``durable=False`` skips the fsyncs of each write (files are still replaced
    atomically by rename, so readers never see half a file, but a power loss can lose
    the latest writes): for throwaway lakes in tests and experiments, where the fsyncs
    are most of the write time."""

    root: Path
    durable: bool = True
    lock_timeout_seconds: float = 600.0  # longest wait for another writer's partition lock

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def partition_dir(self, table: str, underlying: str, day: date) -> Path:
        validate_symbol(underlying)
        return self.root / table / f"underlying={underlying}" / f"date={day.isoformat()}"

    def data_file(self, table: str, underlying: str, day: date) -> Path:
        """The partition's data file as written now (current schema version)."""
        return self.partition_dir(table, underlying, day) / TABLES[table].file_name

    def quarantine_file(self, source_table: str, underlying: str, day: date) -> Path:
        """The partition's quarantine file for one source table, as written now."""
        name = f"{source_table}-v{QUARANTINE.version}.parquet"
        return self.partition_dir(QUARANTINE.name, underlying, day) / name

    def stored_data_files(self, table: str, underlying: str, day: date) -> list[Path]:
        """The partition's data files on disk, newest version first (normally one)."""
        return _versions(self.partition_dir(table, underlying, day), "data", "part-0")

    def stored_quarantine_files(self, source_table: str, underlying: str, day: date) -> list[Path]:
        """The partition's quarantine files of one source table, newest version first."""
        folder = self.partition_dir(QUARANTINE.name, underlying, day)
        return _versions(folder, source_table, f"part-{source_table}")

    @property
    def staging_dir(self) -> Path:
        return self.root / "_staging"

    def ensure_writable(self) -> None:
        """Create the lake's folders or fail with a clear error if that is impossible."""
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            probe = self.staging_dir / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise LakeError(
                f"lake folder {self.root} is not writable ({exc.strerror or exc}); "
                "set VOLFLOW_HOME to a writable folder"
            ) from exc


def validate_symbol(underlying: str) -> str:
    """Underlying symbols become folder names: allow only exchange-style tickers."""
    if not _SYMBOL.match(underlying):
        raise ConfigError(
            f"invalid underlying symbol {underlying!r}: use upper-case tickers like SPY or BRK.B"
        )
    return underlying


def read_parquet_file(path: Path) -> pl.DataFrame:
    """Read one lake file, turning a corrupt or unreadable file into a LakeError naming it."""
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for corrupt files
        raise LakeError(
            f"corrupt or unreadable lake file {path}: {str(exc).splitlines()[0]}; "
            "`volflow lake check` lists the damaged files: delete the partition folder "
            "and ingest it again"
        ) from exc


def atomic_write_parquet(lake: Lake, frame: pl.DataFrame, target: Path) -> None:
    """Write ``frame`` to ``target`` atomically (one file's commit)."""
    with Commit(lake) as commit:
        commit.put(target, frame)
        commit.commit()


def canonical_order(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Canonical row order, so a partition's bytes depend on its rows, not on write order."""
    keys = [c for c in (*spec.snapshot_key, *spec.unique_key) if c in frame.columns]
    return frame.sort(list(dict.fromkeys(keys)), nulls_last=True, maintain_order=True)


def _conform_partition(
    frame: pl.DataFrame, spec: TableSpec, underlying: str, day: date, origin: str
) -> pl.DataFrame:
    """Conform one partition's rows; rows that name another partition are an error.

    Missing partition values are filled from the partition the source declared.
    """
    conformed = conform(frame, spec, origin)
    symbols, days = conformed.get_column("underlying"), conformed.get_column("date")
    if symbols.null_count() or days.null_count():
        conformed = conformed.with_columns(
            pl.col("underlying").fill_null(underlying), pl.col("date").fill_null(day)
        )
        symbols, days = conformed.get_column("underlying"), conformed.get_column("date")
    if not ((symbols == underlying).all() and (days == day).all()):
        wrong = conformed.filter((pl.col("underlying") != underlying) | (pl.col("date") != day))
        raise LakeError(
            f"{origin}: {wrong.height} row(s) belong to another partition than "
            f"underlying={underlying} date={day} (first: {wrong.row(0, named=True)})"
        )
    return conformed


def write_partition(
    lake: Lake,
    spec: TableSpec,
    frame: pl.DataFrame,
    underlying: str,
    day: date,
    *,
    origin: str = "",
    mode: WriteMode = "merge",
) -> PartitionWrite:
    """Check ``frame`` (rows of one underlying and day) and write it to its partition.

    Valid rows go to the table, rejected rows to the quarantine table with reasons,
    both in one commit; see the module docstring for the write modes.
    """
    return write_partitions(lake, spec, [(underlying, day, frame, origin)], mode=mode)[0]


PartitionInput = tuple[str, date, pl.DataFrame, str]  # (underlying, day, rows, origin)


def write_partitions(
    lake: Lake, spec: TableSpec, items: list[PartitionInput], *, mode: WriteMode = "merge"
) -> list[PartitionWrite]:
    """Write several partitions of one table in one commit (see :func:`write_tables`)."""
    return write_tables(lake, [(spec, items)], mode=mode)


@dataclass(frozen=True)
class _Job:
    """One partition's checked rows, ready to merge and stage."""

    spec: TableSpec
    underlying: str
    day: date
    rows_in: int
    valid: pl.DataFrame
    rejected: pl.DataFrame
    snapshots: pl.DataFrame  # the snapshot keys the write replaces (merge mode)
    batches: pl.DataFrame  # its (source, batch_id) pairs: upsert replaces their rows

    @property
    def key(self) -> PartitionKey:
        return (self.spec.name, self.underlying, self.day)


@dataclass
class Retire:
    """Rows of ``batches`` to remove from partitions a write does not otherwise touch:
    a re-published file that no longer covers a partition takes its rows away."""

    partitions: dict[PartitionKey, set[str]] = field(default_factory=dict)
    records: dict[Path, bytes] = field(default_factory=dict)  # files written with the commit


def _jobs(spec: TableSpec, items: list[PartitionInput]) -> list[_Job]:
    """Conform and check one table's inputs in one vectorized pass (the checks' fixed
    cost is paid once). A malformed input raises before anything is written."""
    grouped: dict[tuple[str, date], PartitionInput] = {}
    for u, d, frame, origin in items:  # several inputs for one partition become one
        rows = frame
        if (u, d) in grouped:
            rows = pl.concat([grouped[(u, d)][2], frame], how="diagonal_relaxed")
        grouped[(u, d)] = (u, d, rows, origin)
    items = list(grouped.values())
    conformed = [
        _conform_partition(frame, spec, u, d, origin or f"{spec.name} {u} {d}")
        for u, d, frame, origin in items
    ]
    checked = check(pl.concat(conformed) if len(conformed) > 1 else conformed[0], spec)
    valid = checked.valid.partition_by(PARTITION_COLUMNS, as_dict=True, maintain_order=True)
    rejected = checked.quarantined.partition_by(
        PARTITION_COLUMNS, as_dict=True, maintain_order=True
    )
    jobs = []
    for (u, d, frame, _), rows in zip(items, conformed, strict=True):
        batches = (
            rows.select("source", "batch_id").drop_nulls().unique()
            if "batch_id" in rows.columns
            else pl.DataFrame(schema={"source": pl.String, "batch_id": pl.String})
        )
        jobs.append(
            _Job(
                spec,
                u,
                d,
                frame.height,
                valid.get((u, d), checked.valid.clear()),
                rejected.get((u, d), checked.quarantined.clear()),
                rows.select(spec.snapshot_key).drop_nulls().unique(),
                batches,
            )
        )
    return jobs


def write_tables(
    lake: Lake,
    tables: list[tuple[TableSpec, list[PartitionInput]]],
    *,
    mode: WriteMode = "merge",
    retire: Retire | None = None,
) -> list[PartitionWrite]:
    """Write the partitions of several tables (a batch of sessions: quotes, bars, factors)
    as one commit: after a crash at any point the lake holds all of them or none.

    Every input is conformed and checked before anything is written; the partitions
    are then read, merged and staged on all cores under their locks, and committed.
    """
    jobs = [job for spec, items in tables if items for job in _jobs(spec, items)]
    written = {job.key for job in jobs}
    retired = {k: v for k, v in (retire or Retire()).partitions.items() if k not in written}
    records = (retire or Retire()).records
    if not jobs and not retired:
        return []
    record_format(lake)
    keys = [*written, *retired]
    with Commit(lake) as commit, partition_locks(lake, keys):
        recover(lake)  # a dead writer's committed files first, so the merge sees them
        if len(jobs) == 1 or WRITE_THREADS == 1:
            writes = [_stage(lake, commit, job, mode) for job in jobs]
        else:
            # Parquet encoding and fsync release the GIL: stage partitions on all cores;
            # the first error is raised after all have finished, and nothing is committed
            with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
                futures = [pool.submit(_stage, lake, commit, job, mode) for job in jobs]
                wait(futures)
            writes = [future.result() for future in futures]
        for (table, underlying, day), batches in retired.items():
            drop = pl.col("batch_id").is_in(sorted(batches))
            _remove_rows(lake, commit, TABLES[table], underlying, day, drop)
        for path, data in records.items():
            commit.put_bytes(path, data)
        commit.commit()
    return writes


def _stage(lake: Lake, commit: Commit, job: _Job, mode: WriteMode) -> PartitionWrite:
    """Merge one partition with its stored rows and stage its data and quarantine files."""
    spec, underlying, day = job.spec, job.underlying, job.day
    merged = job.valid
    if mode != "replace":
        existing = read_partition(lake, spec, underlying, day)
        if not existing.is_empty():
            if mode == "upsert":
                kept = _without_batches(existing, job.batches)
                if spec.unique_key:
                    keys = list(spec.unique_key)
                    kept = kept.join(job.valid.select(keys), on=keys, how="anti", nulls_equal=True)
            else:
                kept = _other_snapshots(existing, job.snapshots)
            merged = pl.concat([kept, job.valid])
    stage_file(
        commit,
        lake.data_file(spec.name, underlying, day),
        lake.stored_data_files(spec.name, underlying, day),
        canonical_order(merged, spec).drop(PARTITION_COLUMNS),
    )
    _stage_quarantine(lake, commit, job, mode)
    return PartitionWrite(
        partition=Partition(spec.name, underlying, day),
        path=lake.data_file(spec.name, underlying, day),
        rows_in=job.rows_in,
        rows_written=job.valid.height,
        rows_total=merged.height,
        quarantined=job.rejected.height,
        reasons=CheckedFrame(job.valid, job.rejected).reason_counts,
    )


def stage_file(commit: Commit, target: Path, stored: list[Path], frame: pl.DataFrame) -> None:
    """Stage ``frame`` as ``target`` (or its removal if empty) and the removal of the
    partition's files of older versions, in the same commit."""
    for old in stored:
        if old != target:
            commit.delete(old)
    if frame.is_empty():
        commit.delete(target)
    else:
        commit.put(target, frame)


def _without_batches(frame: pl.DataFrame, batches: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``frame`` that did not come from ``batches`` (source and batch id pairs);
    rows without a batch id stay."""
    if batches.is_empty() or "batch_id" not in frame.columns:
        return frame
    return frame.join(batches, on=["source", "batch_id"], how="anti", nulls_equal=False)


def _other_snapshots(existing: pl.DataFrame, snapshots: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``existing`` whose snapshot (the key columns of ``snapshots``) is not being
    replaced; rows with a null key belong to no snapshot and are kept."""
    return existing.join(snapshots, on=snapshots.columns, how="anti", nulls_equal=False)


def read_quarantine(lake: Lake, source_table: str, underlying: str, day: date) -> pl.DataFrame:
    """One source table's rejected rows of a partition (any file version), conformed."""
    files = lake.stored_quarantine_files(source_table, underlying, day)
    if not files:
        return pl.DataFrame(schema=QUARANTINE.schema)
    frame = read_parquet_file(files[0]).with_columns(
        pl.lit(underlying).alias("underlying"), pl.lit(day).alias("date")
    )
    return conform(frame, QUARANTINE, str(files[0]))


def _stage_quarantine(lake: Lake, commit: Commit, job: _Job, mode: WriteMode) -> None:
    """Quarantined rows of this write replace those of the same snapshots (merge) or of
    the same files (upsert), and stored rows identical to one of them (a re-imported
    file, a row with no snapshot time); every rejected row of the write is stored,
    copies included, so the lake holds what the write's summary counts."""
    spec, underlying, day = job.spec, job.underlying, job.day
    incoming = job.rejected
    if mode != "replace":
        existing = read_quarantine(lake, spec.name, underlying, day)
        if not existing.is_empty():
            if mode == "upsert":
                kept = _without_batches(existing, job.batches)
            else:  # the quarantine's snapshot: time, bar length, source
                keys = [c for c in QUARANTINE.snapshot_key if c in job.snapshots.columns]
                kept = _other_snapshots(existing, job.snapshots.select(keys).unique())
            same = ["ts_event", "source", "reason", "record"]
            kept = kept.join(incoming.select(same).unique(), on=same, how="anti", nulls_equal=True)
            incoming = pl.concat([kept, incoming])
    stage_file(
        commit,
        lake.quarantine_file(spec.name, underlying, day),
        lake.stored_quarantine_files(spec.name, underlying, day),
        incoming.drop(PARTITION_COLUMNS),
    )


def iter_partitions(lake: Lake, table: str) -> Iterator[Partition]:
    """Every partition folder of a table (no files are opened)."""
    base = lake.table_dir(table)
    if not base.is_dir():
        return
    for udir in sorted(base.glob("underlying=*")):
        for ddir in sorted(udir.glob("date=*")):
            try:
                day = date.fromisoformat(ddir.name.removeprefix("date="))
            except ValueError:
                logger.warning("ignoring folder with a malformed date: %s", ddir)
                continue
            yield Partition(table, udir.name.removeprefix("underlying="), day)


def partition_exists(lake: Lake, table: str, underlying: str, day: date) -> bool:
    return bool(lake.stored_data_files(table, underlying, day))


def remove_partition(lake: Lake, table: str, underlying: str, day: date) -> None:
    """Delete one partition (its data and quarantine files), in one commit under its lock."""
    with Commit(lake) as commit, partition_locks(lake, [(table, underlying, day)]):
        recover(lake)
        for path in (*lake.stored_data_files(table, underlying, day),
                     *lake.stored_quarantine_files(table, underlying, day)):  # fmt: skip
            commit.delete(path)
        commit.commit()


def remove_source_rows(lake: Lake, spec: TableSpec, underlying: str, day: date, source: str) -> int:
    """Delete one source's rows (and its quarantined rows) from a partition, e.g. the
    factor rows a vendor no longer publishes; other sources' rows stay. Rows removed."""
    with Commit(lake) as commit, partition_locks(lake, [(spec.name, underlying, day)]):
        recover(lake)
        removed = _remove_rows(lake, commit, spec, underlying, day, pl.col("source") == source)
        commit.commit()
    return removed


def _remove_rows(
    lake: Lake, commit: Commit, spec: TableSpec, underlying: str, day: date, drop: pl.Expr
) -> int:
    """Stage the removal of the rows and rejects of a partition that match ``drop``."""
    stored = read_partition(lake, spec, underlying, day)
    kept = stored.filter(~drop.fill_null(False))
    if kept.height < stored.height:
        stage_file(
            commit,
            lake.data_file(spec.name, underlying, day),
            lake.stored_data_files(spec.name, underlying, day),
            canonical_order(kept, spec).drop(PARTITION_COLUMNS),
        )
    rejects = read_quarantine(lake, spec.name, underlying, day)
    others = rejects.filter(~drop.fill_null(False))
    if others.height < rejects.height:
        stage_file(
            commit,
            lake.quarantine_file(spec.name, underlying, day),
            lake.stored_quarantine_files(spec.name, underlying, day),
            others.drop(PARTITION_COLUMNS),
        )
    return stored.height - kept.height


def partition_snapshots(
    lake: Lake, table: str, underlying: str, day: date, source: str | None = None
) -> set[datetime]:
    """The snapshot times (``ts_event``) stored in a partition, of ``source`` only if
    given; empty if it is absent."""
    files = lake.stored_data_files(table, underlying, day)
    if not files:
        return set()
    try:
        stored = pl.read_parquet(files[0], columns=["ts_event", "source"])
    except Exception as exc:
        raise LakeError(f"corrupt or unreadable lake file {files[0]}: {exc}") from exc
    if source is not None:
        stored = stored.filter(pl.col("source") == source)
    return set(stored.get_column("ts_event").unique().to_list())


def read_partition(lake: Lake, spec: TableSpec, underlying: str, day: date) -> pl.DataFrame:
    """One partition with its partition columns (older file versions get nulls for the
    columns added since), or an empty frame if absent."""
    files = lake.stored_data_files(spec.name, underlying, day)
    if not files:
        return pl.DataFrame(schema=spec.schema)
    frame = read_parquet_file(files[0]).with_columns(
        pl.lit(underlying).alias("underlying"), pl.lit(day).alias("date")
    )
    return conform(frame, spec, str(files[0]))


def parquet_row_count(path: Path) -> int:
    """Rows in a Parquet file from its footer (no data read); LakeError if corrupt."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception as exc:
        raise LakeError(f"corrupt or unreadable lake file {path}: {exc}") from exc
