"""What is in the lake: tables, partitions, rows, date ranges, quarantine counts.

Row counts come from Parquet footers (no data read). Unreadable files are listed,
not fatal: a status report must work on a damaged lake to help repair it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from data_lake.catalog import query
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


QUALITY_SQL = """
WITH written AS (
    SELECT source, underlying, date, 'option_quotes' AS source_table, count(*) AS written
    FROM option_quotes GROUP BY ALL
    UNION ALL
    SELECT source, underlying, date, 'underlying_bars', count(*) FROM underlying_bars GROUP BY ALL
    UNION ALL
    SELECT source, underlying, date, 'corporate_actions', count(*) FROM corporate_actions
    GROUP BY ALL
    UNION ALL
    SELECT source, underlying, date, 'option_vendor_analytics', count(*)
    FROM option_vendor_analytics GROUP BY ALL
), rejected AS (
    SELECT source, underlying, date, source_table, count(*) AS quarantined
    FROM quarantine GROUP BY ALL
), reasons AS (
    SELECT source, underlying, date, source_table,
           map_from_entries(list(struct_pack(k := reason, v := n) ORDER BY n DESC, reason))
               AS reasons
    FROM (
        SELECT source, underlying, date, source_table, reason, count(*) AS n
        FROM (SELECT source, underlying, date, source_table,
                     unnest(string_split(reason, ';')) AS reason FROM quarantine)
        GROUP BY ALL
    )
    GROUP BY ALL
)
SELECT source, underlying, date, source_table AS "table",
       coalesce(written, 0) AS written, coalesce(quarantined, 0) AS quarantined,
       round(coalesce(quarantined, 0) / (coalesce(written, 0) + coalesce(quarantined, 0)), 6)
           AS quarantine_rate,
       reasons
FROM written
FULL JOIN rejected USING (source, underlying, date, source_table)
LEFT JOIN reasons USING (source, underlying, date, source_table)
ORDER BY source, underlying, date, "table"
"""


def quality_report(lake: Lake) -> list[dict[str, Any]]:
    """Rows written and quarantined, with the failed checks, per source, underlying, day
    and table. A row failing several checks counts once in ``quarantined`` and once
    per check in ``reasons``."""
    frame = query(lake, QUALITY_SQL)
    records = frame.to_dicts()
    for record in records:
        record["date"] = record["date"].isoformat()
        record["reasons"] = dict(record["reasons"] or {})
    return records
