"""All-or-nothing commits of lake files: staged files, a redo journal, partition locks.

A write changes several files at once: a partition's data file and its quarantine
file, the partitions of every table of a batch of sessions (quotes, bars, factors),
a file's contribution record. :class:`Commit` makes them one unit:

1. every new file is written (and fsynced) into the commit's own staging folder
   ``<lake>/_staging/<id>/``, which holds an ``owner.lock`` its process keeps locked;
2. the commit point: a journal ``<lake>/_journal/<id>.json`` listing every rename
   (staged file -> target) and delete is written, fsynced and renamed into place;
3. the renames and deletes are applied, the journal removed, the staging folder removed.

A process killed before 2 leaves only staging debris, which the next commit removes
(its owner lock is free); killed after 2, its journal is replayed by the next commit
or reader (:func:`recover`): renames of files already moved and deletes of files
already gone are skipped, so replaying twice is harmless. Readers never see a staged
file: staging lives outside the table folders. A reader that runs while a live commit
applies its renames (milliseconds) can see part of it; one that starts after a crash
recovers first and sees the whole commit or none of it.

Locks are ``flock`` locks (released by the kernel when a process dies), taken in a
fixed order so that two commits never wait on each other in a cycle.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl

from data_lake.errors import LakeError

if TYPE_CHECKING:
    from data_lake.lake import Lake

logger = logging.getLogger(__name__)

STAGING = "_staging"
JOURNAL = "_journal"
LOCKS = "_locks"
OWNER = "owner.lock"
PartitionKey = tuple[str, str, date]  # (table, underlying, day)


def fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX); a no-op where folders can't be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; the ones created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


def _open_lock(path: Path) -> IO[bytes]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+b")
    except OSError as exc:
        raise LakeError(
            f"cannot create the lock file {path} ({exc.strerror or exc}); "
            "set VOLFLOW_HOME to a writable folder"
        ) from exc


def _try_lock(handle: IO[bytes]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _wait_lock(handle: IO[bytes], deadline: float, what: str) -> None:
    pause = 0.01
    while not _try_lock(handle):
        if time.monotonic() >= deadline:
            raise LakeError(what)
        time.sleep(pause)
        pause = min(0.5, pause * 2)


def lock_path(lake: Lake, key: PartitionKey) -> Path:
    table, underlying, day = key
    return lake.root / LOCKS / f"{table}.{underlying}.{day.isoformat()}.lock"


@contextmanager
def partition_locks(lake: Lake, keys: Iterable[PartitionKey]) -> Iterator[None]:
    """Exclusive locks on partitions (one per (table, underlying, day); the lock of a
    table's partition covers its quarantine file too), taken in sorted order. Waiting
    longer than ``lake.lock_timeout_seconds`` for one is a LakeError naming it."""
    handles: list[IO[bytes]] = []
    deadline = time.monotonic() + lake.lock_timeout_seconds
    try:
        for key in sorted(set(keys)):
            path = lock_path(lake, key)
            handle = _open_lock(path)
            handles.append(handle)
            table, underlying, day = key
            _wait_lock(
                handle,
                deadline,
                f"partition {table} underlying={underlying} date={day} is locked by another "
                f"writer for over {lake.lock_timeout_seconds:g}s ({path}): another volflow "
                "run is writing it; retry when it has finished",
            )
        yield
    finally:
        for handle in handles:
            handle.close()  # closing the descriptor releases its flock


@contextmanager
def _recovery_lock(lake: Lake) -> Iterator[None]:
    handle = _open_lock(lake.root / LOCKS / "_recovery.lock")
    try:
        _wait_lock(
            handle,
            time.monotonic() + lake.lock_timeout_seconds,
            f"the lake's recovery lock ({lake.root / LOCKS}) is held for over "
            f"{lake.lock_timeout_seconds:g}s by another volflow process",
        )
        yield
    finally:
        handle.close()


class Commit:
    """One all-or-nothing change of lake files (see the module docstring). Use as a
    context manager; :meth:`put` and :meth:`delete` record changes (``put`` stages the
    file at once, threads may call it concurrently), :meth:`commit` applies them all.
    Leaving the block without committing discards the staged files."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.id = uuid.uuid4().hex
        self.folder = lake.root / STAGING / self.id
        self._puts: dict[Path, Path] = {}  # target -> staged file
        self._deletes: set[Path] = set()
        self._guard = threading.Lock()
        self._owner: IO[bytes] | None = None
        self._count = 0
        self._journaled = False  # past the commit point: the journal must be finished

    def __enter__(self) -> Commit:
        try:
            make_folders(self.folder)
        except OSError as exc:
            raise LakeError(
                f"cannot create the staging folder {self.folder} ({exc.strerror or exc}); "
                "set VOLFLOW_HOME to a writable folder"
            ) from exc
        self._owner = _open_lock(self.folder / OWNER)
        _try_lock(self._owner)  # a new folder: nobody else knows its name
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._journaled:  # journaled but not applied: left for recovery to finish
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._owner is not None:
            self._owner.close()

    def put(self, target: Path, frame: pl.DataFrame) -> None:
        """Stage ``frame`` as the new content of ``target``."""
        with self._guard:
            self._count += 1
            staged = self.folder / f"{self._count}.parquet"
            self._deletes.discard(target)
        try:
            frame.write_parquet(staged, compression="zstd", statistics=True)
            if self.lake.durable:
                with open(staged, "rb") as handle:
                    os.fsync(handle.fileno())
        except OSError as exc:
            raise LakeError(f"cannot write lake file {target}: {exc.strerror or exc}") from exc
        with self._guard:
            self._puts[target] = staged

    def put_bytes(self, target: Path, data: bytes) -> None:
        """Stage ``data`` as the new content of ``target`` (a small record file)."""
        with self._guard:
            self._count += 1
            staged = self.folder / f"{self._count}.bin"
            self._deletes.discard(target)
        try:
            with open(staged, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self.lake.durable:
                    os.fsync(handle.fileno())
        except OSError as exc:
            raise LakeError(f"cannot write lake file {target}: {exc.strerror or exc}") from exc
        with self._guard:
            self._puts[target] = staged

    def delete(self, target: Path) -> None:
        """Remove ``target`` (if present) when the commit applies."""
        with self._guard:
            if target not in self._puts:
                self._deletes.add(target)

    @property
    def empty(self) -> bool:
        return not self._puts and not self._deletes

    def commit(self) -> None:
        """Write the journal (the commit point), apply it, remove it."""
        if self.empty:
            return
        root = self.lake.root
        record = {
            "id": self.id,
            "puts": [[_relative(root, s), _relative(root, t)] for t, s in self._puts.items()],
            "deletes": [_relative(root, t) for t in sorted(self._deletes)],
        }
        journal = root / JOURNAL / f"{self.id}.json"
        try:
            if self.lake.durable:
                fsync_directory(self.folder)  # the staged files' names, before the journal
            make_folders(journal.parent)
            pending = journal.with_suffix(".tmp")
            with open(pending, "w", encoding="utf-8") as handle:
                json.dump(record, handle)
                handle.flush()
                if self.lake.durable:
                    os.fsync(handle.fileno())
            os.replace(pending, journal)
            self._journaled = True
            if self.lake.durable:
                fsync_directory(journal.parent)
        except OSError as exc:
            raise LakeError(f"cannot write the lake's journal {journal}: {exc}") from exc
        _apply(self.lake, record)
        _finish(self.lake, journal)
        self._journaled = False


def _relative(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _apply(lake: Lake, record: dict[str, Any]) -> None:
    """Apply a journal's renames, then its deletes; skip what is already done."""
    root = lake.root
    touched: set[Path] = set()
    for staged_name, target_name in record["puts"]:
        staged, target = root / staged_name, root / target_name
        for _ in range(5):  # a concurrent empty-folder removal can race the rename
            try:
                created = make_folders(target.parent)
                os.replace(staged, target)
                touched.add(target.parent)
                touched.update(folder.parent for folder in created)
                break
            except FileNotFoundError:
                if not staged.exists():
                    break  # moved already (a replay)
            except OSError as exc:
                raise LakeError(f"cannot write lake file {target}: {exc.strerror or exc}") from exc
    emptied: set[Path] = set()
    for target_name in record["deletes"]:
        target = root / target_name
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LakeError(f"cannot delete lake file {target}: {exc.strerror or exc}") from exc
        touched.add(target.parent)
        emptied.add(target.parent)
    for folder in emptied:  # a partition left without files goes too
        with contextlib.suppress(OSError):  # not empty, or gone: fine
            folder.rmdir()
            touched.add(folder.parent)
    if lake.durable:
        for folder in touched:
            fsync_directory(folder)


def _finish(lake: Lake, journal: Path) -> None:
    journal.unlink(missing_ok=True)
    if lake.durable:
        fsync_directory(journal.parent)  # a journal back from the dead would replay deletes


def recover(lake: Lake) -> int:
    """Finish the commits of processes that died after their commit point and remove
    the staging folders of those that died before it. Commits of live processes are
    left alone. Returns the number of journals replayed."""
    journals, staging = lake.root / JOURNAL, lake.root / STAGING
    pending = sorted(journals.glob("*.json")) if journals.is_dir() else []
    debris = sorted(staging.iterdir()) if staging.is_dir() else []
    if not pending and not debris:
        return 0
    with _recovery_lock(lake):
        replayed = sum(_replay(lake, journal) for journal in pending)
        for path in debris:
            _clean(path, journals)
    return replayed


def _replay(lake: Lake, journal: Path) -> bool:
    """Apply one journal if its process is gone and nobody finished it meanwhile."""
    owner = _owner_if_dead(lake.root / STAGING / journal.stem)
    if owner is None:
        return False  # its process is alive and applying it
    try:
        if not journal.exists():
            return False
        record = json.loads(journal.read_text(encoding="utf-8"))
        _apply(lake, record)
        _finish(lake, journal)
        logger.warning("lake: finished commit %s of a process that died", record["id"])
        return True
    finally:
        owner.close()


def _clean(path: Path, journals: Path) -> None:
    """Remove a dead commit's staging folder (one that never reached its journal)."""
    if path.is_file():  # staged by an older volflow (before commits had folders)
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > NEW_FOLDER_SECONDS:
                path.unlink()
        return
    owner = _owner_if_dead(path)
    if owner is None:
        return
    try:
        if not (journals / f"{path.name}.json").exists():
            shutil.rmtree(path, ignore_errors=True)
            (journals / f"{path.name}.tmp").unlink(missing_ok=True)
    finally:
        owner.close()


NEW_FOLDER_SECONDS = 600.0  # a staging folder without its owner file yet: being created


def _owner_if_dead(folder: Path) -> IO[bytes] | None:
    """The locked owner file of a commit whose process is gone, or None if it lives."""
    path = folder / OWNER
    try:
        handle = open(path, "r+b")  # noqa: SIM115 (returned to the caller, who closes it)
    except FileNotFoundError:
        try:
            age = time.time() - folder.stat().st_mtime
        except FileNotFoundError:
            return open(os.devnull, "rb")
        return open(os.devnull, "rb") if age > NEW_FOLDER_SECONDS else None
    except OSError:
        return None
    if _try_lock(handle):
        return handle
    handle.close()
    return None
