"""The order store's ledger: what is held, what the strategy decided, the equity
curve, reconciliations and what an operator accepted.

Positions are derived, never stored as a running total that could drift: every fill
of ours, plus the adjustments accepted from the broker (``volflow reconcile
--accept``), less contracts past their expiry (settled by the venue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from data_lake.calendar import exchange_calendar, trading_date
from execution.domain import OptionContract, OrderSide
from execution.store import (
    FILLS,
    ORDERS,
    OrderStore,
    UTCDateTime,
    contract_from_json,
    contract_json,
    request_from_json,
)

METADATA = MetaData()
SIGNALS = Table(
    "signals",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(100), nullable=False),
    Column("slot", UTCDateTime(), nullable=False),
    Column("underlying", String(16), nullable=False),
    Column("strategy", String(40), nullable=False),
    Column("model_name", String(100)),
    Column("model_version", String(20)),
    Column("ts_features", UTCDateTime()),
    Column("prediction", Float),
    Column("decision", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("client_order_id", String(64)),
    Column("ts", UTCDateTime(), nullable=False),
)
EQUITY_MARKS = Table(
    "equity_marks",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime(), nullable=False),
    Column("equity", Float, nullable=False),
    Column("cash", Float, nullable=False),
)
RECONCILIATIONS = Table(
    "reconciliations",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime(), nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("discrepancies", Text, nullable=False),
    Column("repaired_fills", Integer, nullable=False),
    Column("resolved_orders", Integer, nullable=False),
)
ACKNOWLEDGEMENTS = Table(
    "acknowledgements",
    METADATA,
    Column("key", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
)
POSITION_ADJUSTMENTS = Table(
    "position_adjustments",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract_id", String(32), nullable=False),
    Column("contract", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class Holding:
    """A contract held: signed quantity, average open price per share, and the order
    structure that opened it (``adjustment`` where accepted from the broker)."""

    contract: OptionContract
    quantity: int
    avg_price: float
    structure: str


def is_expired(contract: OptionContract, now: datetime) -> bool:
    """Past its last trading session's close (the venue settles it)."""
    today = trading_date(now)
    if contract.expiry != today:
        return contract.expiry < today
    calendar = exchange_calendar()
    return not calendar.is_session(today) or now >= calendar.session_on_or_before(today).close


def add_to_position(qty: int, avg: float, delta: int, price: float) -> tuple[int, float]:
    """A signed position and its average open price after a fill of ``delta``
    contracts (signed) at ``price``: adding averages in, reducing keeps the average,
    crossing zero starts again at ``price``."""
    new = qty + delta
    if new == 0:
        return 0, 0.0
    if qty == 0 or (qty > 0) == (delta > 0):
        return new, (avg * abs(qty) + price * abs(delta)) / abs(new)
    if (qty > 0) == (new > 0):
        return new, avg
    return new, price


def fill_rows(store: OrderStore) -> list[dict[str, Any]]:
    """Every fill with its contract and the structure of its order, oldest first."""
    with store._tx() as connection:
        rows = connection.execute(
            select(FILLS, ORDERS.c.request, ORDERS.c.structure)
            .join(ORDERS, ORDERS.c.client_order_id == FILLS.c.client_order_id)
            .order_by(FILLS.c.ts_event, FILLS.c.fill_id)
        ).all()
    out = []
    for r in rows:
        legs = {g.contract.contract_id: g.contract for g in request_from_json(r.request).legs}
        out.append({**r._mapping, "contract": legs[r.contract_id]})
    return out


def holdings(store: OrderStore, now: datetime, *, include_expired: bool = False) -> list[Holding]:
    """What we hold by our own record: fills plus accepted adjustments."""
    book: dict[str, tuple[OptionContract, int, float, str]] = {}
    for row in fill_rows(store):
        contract, qty, avg, structure = book.get(
            row["contract_id"], (row["contract"], 0, 0.0, row["structure"])
        )
        signed = OrderSide(row["side"]).sign * row["quantity"]
        qty, avg = add_to_position(qty, avg, signed, row["price"])
        book[row["contract_id"]] = (contract, qty, avg, structure if qty else row["structure"])
    with store._tx() as connection:
        for a in connection.execute(select(POSITION_ADJUSTMENTS)).all():
            contract, qty, avg, structure = book.get(
                a.contract_id, (contract_from_json(a.contract), 0, 0.0, "adjustment")
            )
            book[a.contract_id] = (contract, qty + a.quantity, avg, structure)
    return [
        Holding(c, q, avg, s)
        for c, q, avg, s in book.values()
        if q and (include_expired or not is_expired(c, now))
    ]


def record_signal(store: OrderStore, **values: Any) -> None:
    with store._tx() as connection:
        connection.execute(insert(SIGNALS).values(**values))


def signals(store: OrderStore) -> list[dict[str, Any]]:
    with store._tx() as connection:
        rows = connection.execute(select(SIGNALS).order_by(SIGNALS.c.id)).all()
    return [dict(r._mapping) for r in rows]


def record_equity(store: OrderStore, ts: datetime, equity: float, cash: float) -> None:
    with store._tx() as connection:
        connection.execute(insert(EQUITY_MARKS).values(ts=ts, equity=equity, cash=cash))


def equity_marks(store: OrderStore) -> list[dict[str, Any]]:
    with store._tx() as connection:
        rows = connection.execute(select(EQUITY_MARKS).order_by(EQUITY_MARKS.c.ts)).all()
    return [dict(r._mapping) for r in rows]


def record_reconciliation(
    store: OrderStore, ts: datetime, blocked: bool, discrepancies: list[dict[str, Any]],
    repaired_fills: int, resolved_orders: int,
) -> None:  # fmt: skip
    with store._tx() as connection:
        connection.execute(insert(RECONCILIATIONS).values(
            ts=ts, blocked=blocked, discrepancies=json.dumps(discrepancies, default=str),
            repaired_fills=repaired_fills, resolved_orders=resolved_orders,
        ))  # fmt: skip


def last_reconciliation(store: OrderStore) -> dict[str, Any] | None:
    with store._tx() as connection:
        row = connection.execute(
            select(RECONCILIATIONS).order_by(RECONCILIATIONS.c.id.desc()).limit(1)
        ).one_or_none()
    if row is None:
        return None
    return {**row._mapping, "discrepancies": json.loads(row.discrepancies)}


def acknowledged(store: OrderStore) -> set[str]:
    with store._tx() as connection:
        return set(connection.execute(select(ACKNOWLEDGEMENTS.c.key)).scalars())


def acknowledge(store: OrderStore, key: str, reason: str, ts: datetime) -> bool:
    try:
        with store._tx() as connection:
            connection.execute(insert(ACKNOWLEDGEMENTS).values(key=key, reason=reason, ts=ts))
        return True
    except IntegrityError:
        return False


def adjust_position(
    store: OrderStore, contract: OptionContract, quantity: int, reason: str, ts: datetime
) -> None:
    """Accept the broker's quantity: add ``quantity`` (signed) to our record of it."""
    with store._tx() as connection:
        connection.execute(insert(POSITION_ADJUSTMENTS).values(
            contract_id=contract.contract_id, contract=contract_json(contract),
            quantity=quantity, reason=reason, ts=ts,
        ))  # fmt: skip
