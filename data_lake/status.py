"""What is in the lake: tables, partitions, rows, date ranges, quarantine counts.

Row counts come from Parquet footers (no data read). Unreadable files are listed,
not fatal: a status report must work on a damaged lake to help repair it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from data_lake.errors import LakeError
from data_lake.lake import Lake, parquet_row_count, read_parquet_file
from data_lake.schemas import QUARANTINE, TABLES


def _table_status(lake: Lake, table: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    base = lake.table_dir(table)
    files = sorted(base.glob("underlying=*/date=*/*.parquet")) if base.is_dir() else []
    rows, size, newest = 0, 0, 0.0
    underlyings: Counter[str] = Counter()
    days: list[date] = []
    corrupt: list[dict[str, str]] = []
    for path in files:
        try:
            rows += parquet_row_count(path)
        except LakeError as exc:
            corrupt.append({"file": str(path), "error": str(exc)})
            continue
        stat = path.stat()
        size, newest = size + stat.st_size, max(newest, stat.st_mtime)
        underlyings[path.parent.parent.name.removeprefix("underlying=")] += 1
        days.append(date.fromisoformat(path.parent.name.removeprefix("date=")))
    status = {
        "table": table,
        "files": len(files),
        "partitions": len({p.parent for p in files}),
        "rows": rows,
        "bytes": size,
        "underlyings": dict(sorted(underlyings.items())),
        "first_date": min(days).isoformat() if days else None,
        "last_date": max(days).isoformat() if days else None,
        "last_write": datetime.fromtimestamp(newest, UTC).isoformat() if newest else None,
    }
    return status, corrupt


def quarantine_counts(lake: Lake) -> list[dict[str, Any]]:
    """Quarantined rows per source table, underlying and reason (readable files only)."""
    base = lake.table_dir(QUARANTINE.name)
    frames = []
    for path in sorted(base.glob("underlying=*/date=*/*.parquet")) if base.is_dir() else []:
        try:
            frame = read_parquet_file(path)
        except LakeError:
            continue  # reported as corrupt by lake_status
        frames.append(
            frame.select("source_table", "source", "reason").with_columns(
                pl.lit(path.parent.parent.name.removeprefix("underlying=")).alias("underlying")
            )
        )
    if not frames:
        return []
    exploded = pl.concat(frames).with_columns(pl.col("reason").str.split(";")).explode("reason")
    counts = (
        exploded.group_by("source_table", "source", "underlying", "reason")
        .len("rows")
        .sort("source_table", "underlying", "reason")
    )
    return counts.to_dicts()


def lake_status(lake: Lake) -> dict[str, Any]:
    """The full status report as plain data (the CLI prints it as a table or JSON)."""
    tables, corrupt = [], []
    for name in TABLES:
        status, bad = _table_status(lake, name)
        tables.append(status)
        corrupt.extend(bad)
    writes = [t["last_write"] for t in tables if t["last_write"]]
    return {
        "lake": str(lake.root),
        "tables": tables,
        "quarantine": quarantine_counts(lake),
        "corrupt_files": corrupt,
        "last_ingest": max(writes) if writes else None,
    }
