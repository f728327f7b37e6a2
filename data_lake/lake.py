"""The lake on disk: Hive-partitioned Parquet with atomic, idempotent partition writes.

Layout: ``<root>/<table>/underlying=<U>/date=<YYYY-MM-DD>/part-0.parquet``; the
quarantine table keeps one file per source table in each partition
(``part-<source_table>.parquet``). Each file is written to ``<root>/_staging``
first and moved into place with ``os.replace`` (atomic on POSIX within one
filesystem), so a reader sees the old file or the new one, never half of one,
and a failure mid-run leaves every other partition as it was.

Writes replace whole snapshots: rows of the incoming frame replace existing rows
of the same snapshot (``ts_event`` and ``source``: one source's rows never replace
another's) and other snapshots of the day are kept, so writing the same data twice
never duplicates rows and an intraday ingest adds its snapshot to the day.
``mode="replace"`` swaps the whole partition.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow.parquet as pq

from data_lake.errors import ConfigError, LakeError
from data_lake.quality import CheckedFrame, check, conform
from data_lake.schemas import PARTITION_COLUMNS, QUARANTINE, TableSpec

logger = logging.getLogger(__name__)

# merge: rows replace the partition's rows of the same snapshots; upsert: rows replace
# rows with the same unique key, the rest stay (vendor files split by root or symbol
# combine); replace: the batch becomes the whole partition.
WriteMode = Literal["merge", "upsert", "replace"]
WRITE_THREADS = min(4, os.cpu_count() or 1)
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
DATA_FILE = "part-0.parquet"


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
        return self.partition_dir(table, underlying, day) / DATA_FILE

    def quarantine_file(self, source_table: str, underlying: str, day: date) -> Path:
        return self.partition_dir(QUARANTINE.name, underlying, day) / f"part-{source_table}.parquet"

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
            "delete the partition folder and ingest it again"
        ) from exc


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete(lake: Lake, path: Path) -> None:
    """Remove a lake file if present, durably (its folder's entry fsynced)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LakeError(f"cannot delete lake file {path}: {exc.strerror or exc}") from exc
    if lake.durable:
        _fsync_directory(path.parent)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; the ones created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


def atomic_write_parquet(lake: Lake, frame: pl.DataFrame, target: Path) -> None:
    """Write ``frame`` to ``target`` atomically (stage, fsync, rename)."""
    lake.staging_dir.mkdir(parents=True, exist_ok=True)
    staged = lake.staging_dir / f"{uuid.uuid4().hex}.parquet"
    try:
        frame.write_parquet(staged, compression="zstd", statistics=True)
        if lake.durable:
            with open(staged, "rb") as handle:
                os.fsync(handle.fileno())
        created = _make_folders(target.parent)
        os.replace(staged, target)
        if lake.durable:
            _fsync_directory(target.parent)
            for folder in created:  # a new folder's entry lives in its parent
                _fsync_directory(folder.parent)
    except OSError as exc:
        raise LakeError(f"cannot write lake file {target}: {exc.strerror or exc}") from exc
    finally:
        staged.unlink(missing_ok=True)


def _sorted(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Canonical row order, so a partition's bytes depend on its rows, not on write order."""
    keys = [c for c in (*spec.snapshot_key, *spec.unique_key) if c in frame.columns]
    return frame.sort(list(dict.fromkeys(keys)), nulls_last=True, maintain_order=True)


@contextmanager
def _partition_lock(lake: Lake, table: str, underlying: str, day: date) -> Iterator[None]:
    """An exclusive lock on one partition for its read-merge-write (across processes on
    one machine: flock), so overlapping runs cannot lose each other's snapshots. The
    lock is the kernel's: a writer that dies releases it. Waiting longer than
    ``lake.lock_timeout_seconds`` is a LakeError naming the partition."""
    lock_dir = lake.root / "_locks"
    path = lock_dir / f"{table}.{underlying}.{day.isoformat()}.lock"
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")  # noqa: SIM115 (closed below, after the unlock)
    except OSError as exc:
        raise LakeError(
            f"cannot create the lock file {path} ({exc.strerror or exc}); "
            "set VOLFLOW_HOME to a writable folder"
        ) from exc
    try:
        deadline = time.monotonic() + lake.lock_timeout_seconds
        pause = 0.01
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LakeError(
                        f"partition {table} underlying={underlying} date={day} is locked by "
                        f"another writer for over {lake.lock_timeout_seconds:g}s ({path}): "
                        "another volflow run is writing it; retry when it has finished"
                    ) from None
                time.sleep(pause)
                pause = min(0.5, pause * 2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


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

    Valid rows go to the table, rejected rows to the quarantine table with reasons.
    The partition's file is replaced atomically; see the module docstring for
    the merge/replace semantics.
    """
    return write_partitions(lake, spec, [(underlying, day, frame, origin)], mode=mode)[0]


PartitionInput = tuple[str, date, pl.DataFrame, str]  # (underlying, day, rows, origin)


def write_partitions(
    lake: Lake, spec: TableSpec, items: list[PartitionInput], *, mode: WriteMode = "merge"
) -> list[PartitionWrite]:
    """Write several partitions of one table: conform and check them in one vectorized
    pass (the per-call cost of the checks is paid once), then replace each
    partition's file atomically, one after the other.

    Every input is conformed before anything is written, so a malformed input
    fails the whole call with nothing written.
    """
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

    def store(item: PartitionInput, rows: pl.DataFrame) -> PartitionWrite:
        underlying, day, frame, _ = item
        key = (underlying, day)
        part_valid = valid.get(key, checked.valid.clear())
        part_rejected = rejected.get(key, checked.quarantined.clear())
        snapshots = rows.select(spec.snapshot_key).drop_nulls().unique()
        total = _store_partition(lake, spec, part_valid, part_rejected, key, snapshots, mode)
        return PartitionWrite(
            partition=Partition(spec.name, underlying, day),
            path=lake.data_file(spec.name, underlying, day),
            rows_in=frame.height,
            rows_written=part_valid.height,
            rows_total=total,
            quarantined=part_rejected.height,
            reasons=CheckedFrame(part_valid, part_rejected).reason_counts,
        )

    if len(items) == 1 or WRITE_THREADS == 1:
        return [store(item, rows) for item, rows in zip(items, conformed, strict=True)]
    # Parquet encoding and fsync release the GIL: store partitions on all cores. Each
    # partition is atomic on its own; the first error is raised after all have finished.
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        futures = [
            pool.submit(store, item, rows) for item, rows in zip(items, conformed, strict=True)
        ]
        wait(futures)
    return [future.result() for future in futures]


def _store_partition(
    lake: Lake,
    spec: TableSpec,
    valid: pl.DataFrame,
    rejected: pl.DataFrame,
    key: tuple[str, date],
    snapshots: pl.DataFrame,
    mode: WriteMode,
) -> int:
    """Merge (or replace) one partition's file, then its quarantine file; rows stored."""
    underlying, day = key
    target = lake.data_file(spec.name, underlying, day)
    with _partition_lock(lake, spec.name, underlying, day):
        merged = valid
        if mode != "replace" and target.exists():
            existing = read_partition(lake, spec, underlying, day)
            if mode == "upsert" and spec.unique_key:
                keys = list(spec.unique_key)
                kept = existing.join(valid.select(keys), on=keys, how="anti", nulls_equal=True)
            else:
                kept = _other_snapshots(existing, snapshots)
            merged = pl.concat([kept, valid])
        if merged.is_empty():
            _delete(lake, target)
        else:
            atomic_write_parquet(lake, _sorted(merged, spec).drop(PARTITION_COLUMNS), target)
        _write_quarantine(lake, spec, rejected, underlying, day, snapshots, mode)
    return merged.height


def _other_snapshots(existing: pl.DataFrame, snapshots: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``existing`` whose snapshot (the key columns of ``snapshots``) is not being
    replaced; rows with a null key belong to no snapshot and are kept."""
    return existing.join(snapshots, on=snapshots.columns, how="anti", nulls_equal=False)


def _write_quarantine(
    lake: Lake,
    spec: TableSpec,
    incoming: pl.DataFrame,
    underlying: str,
    day: date,
    snapshots: pl.DataFrame,
    mode: WriteMode,
) -> None:
    """Quarantined rows of this write replace those of the same snapshots (and stored
    rows identical to one of them: a re-imported file or a row with no snapshot time);
    every rejected row of the write is stored, copies included, so the lake holds what
    the write's summary counts."""
    target = lake.quarantine_file(spec.name, underlying, day)
    if mode != "replace" and target.exists():
        existing = read_parquet_file(target).with_columns(
            pl.lit(underlying).alias("underlying"), pl.lit(day).alias("date")
        )
        existing = conform(existing, QUARANTINE, str(target))
        # the quarantine's snapshot: its time and source (another source's rejects stay)
        keys = [c for c in QUARANTINE.snapshot_key if c in snapshots.columns]
        kept = (
            existing
            if mode == "upsert"
            else _other_snapshots(existing, snapshots.select(keys).unique())
        )
        same = ["ts_event", "source", "reason", "record"]
        kept = kept.join(incoming.select(same).unique(), on=same, how="anti", nulls_equal=True)
        incoming = pl.concat([kept, incoming])
    if incoming.is_empty():
        _delete(lake, target)
        return
    atomic_write_parquet(lake, incoming.drop(PARTITION_COLUMNS), target)


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
    return lake.data_file(table, underlying, day).exists()


def remove_partition(lake: Lake, table: str, underlying: str, day: date) -> None:
    """Delete one partition (its data and quarantine files), under its lock."""
    with _partition_lock(lake, table, underlying, day):
        for path in (lake.data_file(table, underlying, day),
                     lake.quarantine_file(table, underlying, day)):  # fmt: skip
            _delete(lake, path)
        _remove_empty_folders(lake, table, underlying, day)


def remove_source_rows(lake: Lake, spec: TableSpec, underlying: str, day: date, source: str) -> int:
    """Delete one source's rows (and its quarantined rows) from a partition, e.g. the
    factor rows a vendor no longer publishes; other sources' rows stay. Rows removed."""
    with _partition_lock(lake, spec.name, underlying, day):
        target = lake.data_file(spec.name, underlying, day)
        existing = read_partition(lake, spec, underlying, day)
        kept = existing.filter(pl.col("source") != source)
        if kept.is_empty():
            _delete(lake, target)
        elif kept.height < existing.height:
            atomic_write_parquet(lake, _sorted(kept, spec).drop(PARTITION_COLUMNS), target)
        rejected = lake.quarantine_file(spec.name, underlying, day)
        if rejected.exists():
            stored = read_parquet_file(rejected)
            others = stored.filter(pl.col("source") != source)
            if others.is_empty():
                _delete(lake, rejected)
            elif others.height < stored.height:
                atomic_write_parquet(lake, others, rejected)
        _remove_empty_folders(lake, spec.name, underlying, day)
    return existing.height - kept.height


def _remove_empty_folders(lake: Lake, table: str, underlying: str, day: date) -> None:
    for folder in (lake.partition_dir(table, underlying, day),
                   lake.partition_dir(QUARANTINE.name, underlying, day)):  # fmt: skip
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            if lake.durable:
                _fsync_directory(folder.parent)


def partition_snapshots(
    lake: Lake, table: str, underlying: str, day: date, source: str | None = None
) -> set[datetime]:
    """The snapshot times (``ts_event``) stored in a partition, of ``source`` only if
    given; empty if it is absent."""
    path = lake.data_file(table, underlying, day)
    if not path.exists():
        return set()
    try:
        stored = pl.read_parquet(path, columns=["ts_event", "source"])
    except Exception as exc:
        raise LakeError(f"corrupt or unreadable lake file {path}: {exc}") from exc
    if source is not None:
        stored = stored.filter(pl.col("source") == source)
    return set(stored.get_column("ts_event").unique().to_list())


def read_partition(lake: Lake, spec: TableSpec, underlying: str, day: date) -> pl.DataFrame:
    """One partition with its partition columns, or an empty frame if absent."""
    path = lake.data_file(spec.name, underlying, day)
    if not path.exists():
        return pl.DataFrame(schema=spec.schema)
    frame = read_parquet_file(path).with_columns(
        pl.lit(underlying).alias("underlying"), pl.lit(day).alias("date")
    )
    return conform(frame, spec, str(path))


def parquet_row_count(path: Path) -> int:
    """Rows in a Parquet file from its footer (no data read); LakeError if corrupt."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception as exc:
        raise LakeError(f"corrupt or unreadable lake file {path}: {exc}") from exc
