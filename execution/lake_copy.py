"""The lake's analysis copy of the money path: ``signals``, ``orders``, ``fills`` and
``positions`` tables, queryable with DuckDB beside the market data (``volflow sql``).

The order store stays the source of truth; the copy is rebuilt from it. Every export
rewrites, in one lake commit, the partitions (underlying x trading date) of the last
``days`` days of signals, orders and fills (an order's row is its latest state, so a
recent order's partition is replaced, not appended to); a second commit adds one
positions snapshot as of now.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import select

from data_lake.calendar import trading_date
from data_lake.lake import Lake, PartitionInput, write_tables
from data_lake.schemas import FILLS, ORDERS, POSITIONS, SIGNALS, TableSpec
from execution.ledger import fill_rows, holdings, signals
from execution.store import ORDERS as STORE_ORDERS
from execution.store import OrderStore


def _frame(spec: TableSpec, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={c: t for c, t in spec.schema.items()})


def _partitions(spec: TableSpec, rows: list[dict[str, Any]], since: date) -> list[PartitionInput]:
    groups: dict[tuple[str, date], list[dict[str, Any]]] = {}
    for row in rows:
        if row["date"] >= since:
            groups.setdefault((row["underlying"], row["date"]), []).append(row)
    return [(u, d, _frame(spec, rs), f"order store {spec.name}") for (u, d), rs in groups.items()]


def export_to_lake(store: OrderStore, lake: Lake, now: datetime, days: int = 7) -> dict[str, int]:
    """Copy the store's recent signals, orders and fills, and the positions as of
    ``now``, to the lake (one commit); the rows written per table."""
    since = trading_date(now - timedelta(days=days))
    signal_rows = [{
        "underlying": r["underlying"], "date": trading_date(r["ts"]), "ts_event": r["ts"],
        "deployment": r["deployment"], "slot": r["slot"], "strategy": r["strategy"],
        "model_name": r["model_name"], "model_version": r["model_version"],
        "ts_features": r["ts_features"], "prediction": r["prediction"],
        "decision": r["decision"], "reason": r["reason"],
        "client_order_id": r["client_order_id"], "ts_init": r["ts"],
    } for r in signals(store)]  # fmt: skip
    with store._tx() as connection:
        where = {r.client_order_id: (r.deployment, r.slot) for r in connection.execute(
            select(STORE_ORDERS.c.client_order_id, STORE_ORDERS.c.deployment,
                   STORE_ORDERS.c.slot))}  # fmt: skip
    order_rows = []
    for state in store.orders():
        q = state.request
        order_rows.append({
            "underlying": q.underlying or q.legs[0].contract.underlying,
            "date": trading_date(q.ts_init), "ts_event": q.ts_init,
            "client_order_id": q.client_order_id.value,
            "deployment": where[q.client_order_id.value][0],
            "slot": where[q.client_order_id.value][1],
            "structure": q.structure,
            "legs": ", ".join(f"{g.side.value} {g.ratio} {g.contract.contract_id}" for g in q.legs),
            "quantity": q.quantity, "order_type": q.order_type.value,
            "limit_price": q.limit_price, "time_in_force": q.time_in_force.value,
            "status": state.status.value,
            "broker_order_id": state.broker_order_id.value if state.broker_order_id else None,
            "filled_quantity": state.filled_quantity, "avg_fill_price": state.avg_fill_price,
            "reason": state.reason, "ts_last": state.ts_last, "ts_init": q.ts_init,
        })  # fmt: skip
    fills = [{
        "underlying": r["contract"].underlying, "date": trading_date(r["ts_event"]),
        "ts_event": r["ts_event"], "fill_id": r["fill_id"],
        "client_order_id": r["client_order_id"], "contract_id": r["contract_id"],
        "side": r["side"], "quantity": r["quantity"], "price": r["price"],
        "commission": r["commission"], "ts_init": r["ts_init"],
    } for r in fill_rows(store)]  # fmt: skip
    held = [{
        "underlying": h.contract.underlying, "date": trading_date(now), "ts_event": now,
        "contract_id": h.contract.contract_id, "expiry": h.contract.expiry,
        "strike": h.contract.strike, "right": h.contract.right.value, "quantity": h.quantity,
        "avg_price": h.avg_price, "structure": h.structure, "ts_init": now,
    } for h in holdings(store, now)]  # fmt: skip
    tables = [(SIGNALS, _partitions(SIGNALS, signal_rows, since)),
              (ORDERS, _partitions(ORDERS, order_rows, since)),
              (FILLS, _partitions(FILLS, fills, since))]  # fmt: skip
    write_tables(lake, tables, mode="replace")
    if held:
        write_tables(lake, [(POSITIONS, _partitions(POSITIONS, held, since))], mode="merge")
    return {"signals": len(signal_rows), "orders": len(order_rows), "fills": len(fills),
            "positions": len(held)}  # fmt: skip
