from __future__ import annotations

from datetime import date, timedelta

import pytest

from data_lake.catalog import connect, query
from data_lake.errors import LakeError
from data_lake.lake import Lake, write_partition
from data_lake.schemas import OPTION_QUOTES
from tests.conftest import DAY, SNAPSHOT, make_quotes


def _fill(lake: Lake, days: int = 3) -> None:
    for i in range(days):
        day = DAY + timedelta(days=i)
        for underlying in ("SPY", "QQQ"):
            frame = make_quotes(ts=SNAPSHOT + timedelta(days=i), date=day, underlying=underlying)
            write_partition(lake, OPTION_QUOTES, frame, underlying, day)


def test_empty_lake_has_typed_empty_views(lake: Lake) -> None:
    result = query(lake, "SELECT * FROM option_quotes")
    assert result.height == 0
    assert result.columns == OPTION_QUOTES.schema.names()
    assert query(lake, "SELECT count(*) AS n FROM quarantine")["n"][0] == 0


def test_views_expose_partition_columns_with_types(lake: Lake) -> None:
    _fill(lake)
    result = query(
        lake, "SELECT underlying, date, count(*) AS n FROM option_quotes GROUP BY ALL ORDER BY ALL"
    )
    assert result.height == 6
    assert result["date"][0] == DAY
    assert set(result["n"].to_list()) == {4}


def test_point_query_reads_only_its_partition(lake: Lake) -> None:
    """Corrupt the other partitions: a pruned query still succeeds, a full scan fails.

    DuckDB binds the view's columns from the first file of the glob, so that one
    (QQQ, 2024-01-02) stays readable; every other partition is garbage.
    """
    _fill(lake)
    files = sorted(lake.table_dir("option_quotes").rglob("*.parquet"))
    for path in files[1:]:
        if not ("underlying=SPY" in str(path) and "date=2024-01-03" in str(path)):
            path.write_bytes(b"garbage")
    sql = "SELECT count(*) AS n FROM option_quotes WHERE underlying = ? AND date = ?"
    assert query(lake, sql, ["SPY", date(2024, 1, 3)])["n"][0] == 4
    with pytest.raises(LakeError, match="query failed"):
        query(lake, "SELECT count(*) FROM option_quotes")


def test_query_errors_are_lake_errors_with_duckdb_message(lake: Lake) -> None:
    _fill(lake, days=1)
    with pytest.raises(LakeError, match='Referenced column "nope" not found'):
        query(lake, "SELECT nope FROM option_quotes")


def test_connect_gives_a_reusable_connection(lake: Lake) -> None:
    _fill(lake, days=2)
    con = connect(lake)
    try:
        total = con.sql("SELECT count(*) FROM option_quotes").fetchall()[0][0]
        spy = con.sql("SELECT count(*) FROM option_quotes WHERE underlying = 'SPY'").fetchall()[0][
            0
        ]
    finally:
        con.close()
    assert (total, spy) == (16, 8)


def test_point_read_macro_opens_only_the_named_partition(lake: Lake) -> None:
    _fill(lake)
    for path in lake.table_dir("option_quotes").rglob("*.parquet"):
        if "date=2024-01-03" not in str(path) or "underlying=QQQ" in str(path):
            path.write_bytes(b"garbage")  # every other partition, the glob's first file included
    result = query(
        lake,
        "SELECT underlying, date, count(*) AS n"
        " FROM option_quotes_at('SPY', DATE '2024-01-03') GROUP BY ALL",
    )
    assert result.rows() == [("SPY", date(2024, 1, 3), 4)]


def test_point_read_macro_on_a_missing_partition_is_a_clear_error(lake: Lake) -> None:
    _fill(lake, days=1)
    with pytest.raises(LakeError, match="No files found"):
        query(lake, "SELECT * FROM option_quotes_at('SPY', DATE '2030-01-02')")
