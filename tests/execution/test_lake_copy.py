"""The lake's analysis copy of the order store: signals, orders, fills and positions
queryable with DuckDB; re-exporting replaces recent partitions instead of
duplicating rows, and an order's row follows its latest state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from data_lake.catalog import query
from data_lake.lake import Lake
from execution.lake_copy import export_to_lake
from execution.signal_run import run_signal
from tests.execution.conftest import SNAPSHOTS
from tests.execution.test_signal_run import RULE, Clock, _oms


def _counts(lake: Lake) -> dict[str, int]:
    return {t: int(query(lake, f"SELECT count(*) AS n FROM {t}")["n"][0])
            for t in ("signals", "orders", "fills", "positions")}  # fmt: skip


def test_the_store_is_copied_to_the_lake_and_a_second_export_replaces(
    lake_copy: Lake, tmp_path: Path
) -> None:
    clock = Clock(SNAPSHOTS[0] + timedelta(minutes=5))
    oms = _oms(lake_copy, tmp_path, clock)
    run_signal(RULE, oms, lake_copy, SNAPSHOTS[0], "run-a")
    written = export_to_lake(oms.store, lake_copy, clock.now)
    assert written == {"signals": 2, "orders": 2, "fills": 8, "positions": 8}
    assert _counts(lake_copy) == written
    export_to_lake(oms.store, lake_copy, clock.now)  # the same again: nothing doubles
    assert _counts(lake_copy) == written
    orders = query(lake_copy, "SELECT underlying, status, filled_quantity, deployment, legs "
                              "FROM orders ORDER BY underlying")  # fmt: skip
    assert orders["status"].to_list() == ["FILLED", "FILLED"]
    assert set(orders["deployment"]) == {"hourly-signal"}
    assert orders["legs"][0].count(",") == 3  # four legs: an iron butterfly
    clock.now = SNAPSHOTS[1] + timedelta(minutes=5)
    run_signal(RULE, oms, lake_copy, SNAPSHOTS[1], "run-b")
    export_to_lake(oms.store, lake_copy, clock.now)
    after = _counts(lake_copy)
    assert after == {"signals": 4, "orders": 2, "fills": 8, "positions": 16}  # two snapshots
    held = query(lake_copy, "SELECT ts_event, sum(quantity) AS net FROM positions GROUP BY 1")
    assert held.height == 2
