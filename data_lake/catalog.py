"""DuckDB catalog: one view per lake table over its Hive-partitioned Parquet files.

``underlying`` and ``date`` come from the folder names (``hive_partitioning``), so
a filter on them prunes whole partitions before any file is opened: a query for
one underlying and day reads only that day's file. Tables with no files yet get
an empty view with the right columns, so queries never fail on a new lake.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from data_lake.errors import LakeError
from data_lake.lake import Lake
from data_lake.schemas import TABLES, TableSpec

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


def _view_sql(lake: Lake, spec: TableSpec) -> str:
    pattern = lake.table_dir(spec.name) / "underlying=*" / "date=*" / "*.parquet"
    columns = ", ".join(f'"{c}"' for c in spec.schema.names())
    if any(lake.table_dir(spec.name).glob("underlying=*/date=*/*.parquet")):
        return (
            f"CREATE OR REPLACE VIEW {spec.name} AS SELECT {columns} FROM read_parquet("
            f"{_quote(pattern)}, hive_partitioning = true, "
            "hive_types = {'underlying': VARCHAR, 'date': DATE})"
        )
    typed = ", ".join(
        f'CAST(NULL AS {_sql_type(dtype)}) AS "{name}"' for name, dtype in spec.schema.items()
    )
    return f"CREATE OR REPLACE VIEW {spec.name} AS SELECT {typed} WHERE false"


def connect(lake: Lake, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per lake table.

    Timestamps are shown in UTC (the session time zone), as they are stored.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for spec in TABLES.values():
        con.execute(_view_sql(lake, spec))
    return con


def query(lake: Lake, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run ``sql`` against the lake's views and return a Polars frame.

    DuckDB errors (syntax, unknown column, corrupt file) become a LakeError with
    DuckDB's first message line.
    """
    con = connect(lake)
    try:
        relation = con.sql(sql, params=params or None)
        if relation is None:  # a statement without a result (SET, CREATE VIEW, ...)
            return pl.DataFrame()
        result = pl.from_arrow(relation.to_arrow_table())
        assert isinstance(result, pl.DataFrame)
        return result
    except duckdb.Error as exc:
        raise LakeError(f"query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
