"""DuckDB catalog: one view per lake table over its Hive-partitioned Parquet files.

``underlying`` and ``date`` come from the folder names (``hive_partitioning``), so
a filter on them prunes whole partitions before any file is opened: a query for
one underlying and day reads only that day's file. Tables with no files yet get
an empty view with the right columns, so queries never fail on a new lake.

A view still has DuckDB expand its glob (list every file of the table) each time
it is bound, which costs about 0.1 ms per partition. For point reads whose cost
must not grow with history there are table macros that open one partition by
path: ``SELECT * FROM option_quotes_at('SPY', DATE '2024-01-02')``,
``underlying_bars_at(...)``, ``quarantine_at(...)``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from pathlib import Path

import duckdb
import polars as pl

from data_lake.commit import recover
from data_lake.errors import LakeError
from data_lake.lake import SCHEMAS, Lake, atomic_write_parquet, may_hold_older_files
from data_lake.rates import RATES_TABLE
from data_lake.schemas import LEGACY_FILES, QUARANTINE, TABLES, TableSpec

logger = logging.getLogger(__name__)

_DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Float64: "DOUBLE",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Datetime: "TIMESTAMP WITH TIME ZONE",
}


def _sql_type(dtype: pl.DataType) -> str:
    return _DUCKDB_TYPES[type(dtype)]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


HIVE = "hive_partitioning = true, hive_types = {'underlying': VARCHAR, 'date': DATE}"


def current_pattern(spec: TableSpec) -> str:
    """File names of the table's current version (a glob)."""
    stem = "data" if spec.name != QUARANTINE.name else "*"
    return f"{stem}-v{spec.version}.parquet"


def older_patterns(spec: TableSpec) -> list[str]:
    """File names of the table's older versions (globs): version 1 was ``part-*``."""
    stem = "data" if spec.name != QUARANTINE.name else "*"
    return [LEGACY_FILES, *(f"{stem}-v{v}.parquet" for v in range(2, spec.version))]


def anchor_file(lake: Lake, spec: TableSpec) -> Path:
    """A zero-row file with the table's current columns, read first by its view: it fixes
    the view's columns, so no data file is opened to bind a query (a damaged file only
    fails the queries that read it) and older files get nulls for newer columns."""
    name = f"underlying=_/date=1970-01-01/{spec.name}-v{spec.version}.parquet"
    path = lake.root / SCHEMAS / name
    if path.exists():
        return path
    try:
        atomic_write_parquet(lake, pl.DataFrame(schema=spec.file_schema), path)
        return path
    except LakeError:  # a read-only lake: keep the anchor in the temp folder
        digest = hashlib.sha256(str(lake.root).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"volflow-schemas-{digest}" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pl.DataFrame(schema=spec.file_schema).write_parquet(path)
        return path


def _view_sql(lake: Lake, spec: TableSpec, older: bool) -> str:
    base = lake.table_dir(spec.name)
    columns = ", ".join(f'"{c}"' for c in spec.schema.names())
    parts = []
    current = current_pattern(spec)
    if any(base.glob(f"underlying=*/date=*/{current}")):
        files = [
            _quote(anchor_file(lake, spec)),
            _quote(base / "underlying=*" / "date=*" / current),
        ]
        parts.append(f"SELECT {columns} FROM read_parquet([{', '.join(files)}], {HIVE})")
    for pattern in older_patterns(spec) if older else []:
        if any(base.glob(f"underlying=*/date=*/{pattern}")):
            # older files by name: the anchor supplies the columns they lack, as nulls
            files = [
                _quote(anchor_file(lake, spec)),
                _quote(base / "underlying=*" / "date=*" / pattern),
            ]
            parts.append(
                f"SELECT {columns} FROM read_parquet([{', '.join(files)}], {HIVE}, "
                "union_by_name = true)"
            )
    if parts:
        return f"CREATE OR REPLACE VIEW {spec.name} AS " + " UNION ALL ".join(parts)
    typed = ", ".join(
        f'CAST(NULL AS {_sql_type(dtype)}) AS "{name}"' for name, dtype in spec.schema.items()
    )
    return f"CREATE OR REPLACE VIEW {spec.name} AS SELECT {typed} WHERE false"


def _macro_sql(lake: Lake, spec: TableSpec) -> str:
    prefix = _quote(lake.table_dir(spec.name))[:-1]  # an open SQL string literal
    anchor = _quote(anchor_file(lake, spec))
    columns = ", ".join(f'"{c}"' for c in spec.schema.names())
    return (
        f"CREATE OR REPLACE MACRO {spec.name}_at(underlying_symbol, day) AS TABLE "
        f"SELECT {columns} FROM read_parquet([{anchor}, {prefix}/underlying=' || "
        "underlying_symbol || '/date=' || CAST(day AS DATE) || '/*.parquet'], "
        f"{HIVE}, union_by_name = true)"
    )


# Views derived from lake tables, and the tables each needs.
ADJUSTED_BARS_SQL = """
CREATE OR REPLACE VIEW underlying_bars_adjusted AS
SELECT b.underlying, b.date, b.ts_event, b.bar_seconds,
       coalesce(f.price_factor * f.split_factor, 1.0) AS adjustment,
       b.open * adjustment AS open, b.high * adjustment AS high, b.low * adjustment AS low,
       b.close * adjustment AS close,
       b.volume / coalesce(f.split_factor, 1.0) AS volume,  -- dividends leave share counts
       b.open AS open_raw, b.close AS close_raw, b.source
FROM underlying_bars b
ASOF LEFT JOIN corporate_actions f ON b.underlying = f.underlying AND b.date <= f.date
"""
DERIVED_VIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "underlying_bars_adjusted": (("underlying_bars", "corporate_actions"), ADJUSTED_BARS_SQL),
}


def _rates_view_sql(lake: Lake) -> str:
    """The ``rates`` view over every imported series (see :mod:`data_lake.rates`)."""
    base = lake.root / RATES_TABLE
    if any(base.glob("series=*/*.parquet")):
        pattern = _quote(base / "series=*" / "*.parquet")
        return (
            "CREATE OR REPLACE VIEW rates AS SELECT series, date, rate, source FROM "
            f"read_parquet({pattern}, hive_partitioning = true, hive_types = {{'series': VARCHAR}})"
        )
    return (
        "CREATE OR REPLACE VIEW rates AS SELECT CAST(NULL AS VARCHAR) AS series, "
        "CAST(NULL AS DATE) AS date, CAST(NULL AS DOUBLE) AS rate, "
        "CAST(NULL AS VARCHAR) AS source WHERE false"
    )


def referenced_tables(sql: str) -> list[str]:
    """Lake tables named as words in ``sql``, with those behind any derived view it names
    (views are made only for those)."""
    found = {name for name in TABLES if re.search(rf"\b{name}\b", sql, flags=re.IGNORECASE)}
    for view, (needs, _) in DERIVED_VIEWS.items():
        if re.search(rf"\b{view}\b", sql, flags=re.IGNORECASE):
            found.update(needs)
    return [name for name in TABLES if name in found]


def connect(
    lake: Lake, *, tables: list[str] | None = None, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per lake table (or per table in
    ``tables``) and the point-read macros. Timestamps are shown in UTC, as stored.
    A commit of a process that died after its commit point is finished first.
    """
    if lake.root.is_dir():
        try:
            recover(lake)
        except LakeError as exc:  # a read-only lake: read what is there
            logger.warning("lake recovery skipped: %s", exc)
    older = may_hold_older_files(lake)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        # no progress bar on long queries: it would interleave with the CLI's output and logs
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        for spec in TABLES.values():
            if tables is None or spec.name in tables:
                con.execute(_view_sql(lake, spec, older))
            con.execute(_macro_sql(lake, spec))
        con.execute(_rates_view_sql(lake))
        for needs, sql in DERIVED_VIEWS.values():
            if tables is None or all(t in tables for t in needs):
                con.execute(sql)
    except duckdb.Error as exc:
        con.close()
        raise LakeError(f"cannot open the lake's views: {_first_line(exc)}") from exc
    except BaseException:
        con.close()
        raise
    return con


def _first_line(exc: Exception) -> str:
    """DuckDB's first message line; a damaged file's message gets the way to find all."""
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "parquet" in line.lower() and ("file" in line.lower()):
        line += " (`volflow lake check` lists every damaged or old lake file)"
    return line


def query(lake: Lake, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run ``sql`` against the lake's views and return a Polars frame.

    DuckDB errors (syntax, unknown column, damaged file) become a LakeError with
    DuckDB's first message line, which names the file where one is at fault.
    """
    con = connect(lake, tables=referenced_tables(sql))
    try:
        relation = con.sql(sql, params=params or None)
        if relation is None:  # a statement without a result (SET, CREATE VIEW, ...)
            return pl.DataFrame()
        result = pl.from_arrow(relation.to_arrow_table())
        assert isinstance(result, pl.DataFrame)
        return result
    except duckdb.Error as exc:
        raise LakeError(f"query failed: {_first_line(exc)}") from exc
    finally:
        con.close()
