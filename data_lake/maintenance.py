"""Lake upkeep: find damaged and old files (``volflow lake check``), rewrite old files
in the current schema version (``volflow lake migrate``).

Readers accept files of older versions (nulls for the columns added since), so a
migration is never needed to query; it makes every file current, which lets the
views skip their search for older files, and lets a damaged old file be found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from data_lake.commit import JOURNAL, STAGING, Commit, partition_locks, recover
from data_lake.errors import LakeError
from data_lake.lake import (
    PARTITION_COLUMNS,
    Lake,
    canonical_order,
    iter_partitions,
    read_partition,
    read_quarantine,
    record_format,
    stage_file,
)
from data_lake.schemas import QUARANTINE, TABLES, TableSpec

_VERSIONED = re.compile(r"^(?P<stem>.+)-v(?P<version>\d+)\.parquet$")
_LEGACY = re.compile(r"^part-(?P<stem>.+)\.parquet$")


@dataclass
class CheckReport:
    """What ``volflow lake check`` found."""

    files: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def damaged(self) -> list[dict[str, str]]:
        return [p for p in self.problems if p["kind"] in ("damaged", "unknown_version", "stray")]

    def add(self, path: Path, kind: str, problem: str) -> None:
        self.problems.append({"file": str(path), "kind": kind, "problem": problem})

    def as_dict(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for p in self.problems:
            kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
        return {"files_checked": self.files, "counts": kinds, "problems": self.problems}


def _file_version(spec: TableSpec, path: Path) -> int | None:
    """The file's schema version from its name (1 for ``part-*``), None if not a lake name."""
    match = _VERSIONED.match(path.name)
    if match:
        stem = match["stem"]
        ok = stem == "data" if spec.name != QUARANTINE.name else stem in TABLES
        return int(match["version"]) if ok else None
    match = _LEGACY.match(path.name)
    if match:
        stem = match["stem"]
        ok = stem == "0" if spec.name != QUARANTINE.name else stem in TABLES
        return 1 if ok else None
    return None


def _check_file(spec: TableSpec, path: Path, report: CheckReport, deep: bool) -> None:
    version = _file_version(spec, path)
    if version is None:
        report.add(path, "stray", "not a lake file name: the views ignore it or misread it")
        return
    if version > spec.version:
        report.add(
            path,
            "unknown_version",
            f"schema version {version} is newer than this volflow's {spec.version}: upgrade",
        )
        return
    try:
        schema = pq.read_schema(path)
        if deep:
            pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        report.add(path, "damaged", f"unreadable: {first}; delete it and ingest its day again")
        return
    expected = set(spec.file_schema.names())
    extra = sorted(set(schema.names) - expected - set(PARTITION_COLUMNS))
    missing = sorted(expected - set(schema.names))
    if extra:
        report.add(path, "damaged", f"unknown column(s) {', '.join(extra)}")
    elif version < spec.version:
        lacks = f" (lacks {', '.join(missing)})" if missing else ""
        report.add(
            path,
            "old_version",
            f"schema version {version}{lacks}: readable; `volflow lake migrate` rewrites it",
        )
    elif missing:
        report.add(path, "damaged", f"missing column(s) {', '.join(missing)}")


def check_lake(lake: Lake, *, deep: bool = False) -> CheckReport:
    """Every lake file's name, version, footer and columns (``deep``: every page read
    too); older versions next to a current file (a partition stored twice); commits left
    by processes that died (finished or removed by the next write or query)."""
    report = CheckReport()
    for spec in TABLES.values():
        base = lake.table_dir(spec.name)
        if not base.is_dir():
            continue
        for folder in sorted(base.glob("underlying=*/date=*")):
            stems: dict[str, list[Path]] = {}
            for path in sorted(folder.iterdir()):
                if path.is_dir():
                    report.add(path, "stray", "a folder inside a partition")
                    continue
                report.files += 1
                _check_file(spec, path, report, deep)
                match = _VERSIONED.match(path.name) or _LEGACY.match(path.name)
                if match:
                    stem = match["stem"] if match["stem"] != "0" else "data"
                    stems.setdefault(stem, []).append(path)
            for paths in stems.values():
                if len(paths) > 1:
                    for path in paths:
                        report.add(path, "stray", "the partition has this data in two files")
    for pending in sorted((lake.root / JOURNAL).glob("*.json")):
        report.add(pending, "pending_commit", "a commit to finish: the next write or query does")
    staging = lake.root / STAGING
    for debris in sorted(staging.iterdir()) if staging.is_dir() else []:
        report.add(debris, "staging", "staged files of a write: removed once its process ends")
    return report


def migrate_lake(lake: Lake) -> dict[str, Any]:
    """Rewrite every partition holding an older file in the current version, one commit
    per partition under its lock. Damaged files are left and listed."""
    recover(lake)
    rewritten, failed = 0, []
    for spec in TABLES.values():
        if spec.name == QUARANTINE.name:
            continue  # rewritten with their source table's partitions
        for part in iter_partitions(lake, spec.name):
            try:
                rewritten += _migrate_partition(lake, spec, part.underlying, part.day)
            except LakeError as exc:
                failed.append(str(exc))
    for part in iter_partitions(lake, QUARANTINE.name):  # rejects of partitions now gone
        for source_table in TABLES:
            files = lake.stored_quarantine_files(source_table, part.underlying, part.day)
            if files and files[0] != lake.quarantine_file(source_table, part.underlying, part.day):
                try:
                    spec = TABLES[source_table]
                    rewritten += _migrate_partition(lake, spec, part.underlying, part.day)
                except LakeError as exc:
                    failed.append(str(exc))
    left = [p for p in check_lake(lake).problems if p["kind"] == "old_version"]
    if not left:
        record_format(lake, older_files=False)
    return {"rewritten_files": rewritten, "failed": failed, "old_files_left": len(left)}


def _migrate_partition(lake: Lake, spec: TableSpec, underlying: str, day: Any) -> int:
    with Commit(lake) as commit, partition_locks(lake, [(spec.name, underlying, day)]):
        files = lake.stored_data_files(spec.name, underlying, day)
        target = lake.data_file(spec.name, underlying, day)
        changed = 0
        if files and files != [target]:
            frame = read_partition(lake, spec, underlying, day)
            stage_file(commit, target, files, canonical_order(frame, spec).drop(PARTITION_COLUMNS))
            changed += 1
        rejects = lake.stored_quarantine_files(spec.name, underlying, day)
        qtarget = lake.quarantine_file(spec.name, underlying, day)
        if rejects and rejects != [qtarget]:
            frame = read_quarantine(lake, spec.name, underlying, day)
            stage_file(commit, qtarget, rejects, frame.drop(PARTITION_COLUMNS))
            changed += 1
        commit.commit()
    return changed
