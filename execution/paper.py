"""The paper broker: a persistent simulated venue with its own store.

It fills against the lake's latest quotes (through a :class:`QuoteSource`), never
against our limit price: a buy pays the ask and a sell gets the bid, leg by leg; a
combo fills when its net far-side price is within the limit. Each fill takes at
most the displayed size on the side it hits (per leg, over the leg's ratio), and one
snapshot's size is taken once: the rest of the order works until a newer snapshot,
the end of its day (``DAY``: expired), or at once (``IOC``: canceled). Commissions
follow IB's tiered per-contract schedule by premium with a per-order minimum.
Orders on contracts the market does not list, or at prices off the tick or far
from the market, are rejected. Contracts past their expiry are settled at intrinsic
value against the underlying's close and leave the positions.

State lives in SQLite (``paper.sqlite`` beside the order store by default), so a
restart of any process sees the same venue; a file lock serialises the matching of
every process that shares it.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from data_lake.calendar import exchange_calendar, trading_date
from data_lake.errors import ConfigError
from execution.domain import (
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OptionContract,
    OrderReport,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Right,
    TimeInForce,
)
from execution.ledger import add_to_position, is_expired
from execution.risk import LegQuote
from execution.store import (
    UTCDateTime,
    contract_from_json,
    contract_json,
    request_from_json,
    request_json,
    sqlite_pragmas,
)

S = OrderStatus
OPEN = (S.ACCEPTED.value, S.PARTIALLY_FILLED.value)


@dataclass(frozen=True)
class CommissionSchedule:
    """IB-style per-contract option commissions, tiered by premium per share."""

    per_contract: float = 0.65  # premium >= 0.10
    per_contract_low: float = 0.50  # 0.05 <= premium < 0.10
    per_contract_penny: float = 0.25  # premium < 0.05
    minimum_per_order: float = 1.00

    def per_contract_for(self, premium: float) -> float:
        if premium >= 0.10:
            return self.per_contract
        if premium >= 0.05:
            return self.per_contract_low
        return self.per_contract_penny


class QuoteSource(Protocol):
    def snapshot(
        self, underlying: str, contracts: list[str], now: datetime
    ) -> tuple[datetime, dict[str, LegQuote]] | None:
        """The latest quotes of ``contracts`` at or before ``now`` (one snapshot)."""
        ...

    def close_price(self, underlying: str, day: date) -> float | None: ...


METADATA = MetaData()
PAPER_ORDERS = Table(
    "paper_orders",
    METADATA,
    Column("client_order_id", String(64), primary_key=True),
    Column("broker_order_id", String(40), nullable=False, unique=True),
    Column("request", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("filled_quantity", Integer, nullable=False),
    Column("avg_fill_price", Float),
    Column("commission", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("session_close", UTCDateTime(), nullable=False),
    Column("last_quote_ts", UTCDateTime()),
    Column("ts_created", UTCDateTime(), nullable=False),
    Column("ts_last", UTCDateTime(), nullable=False),
)
PAPER_FILLS = Table(
    "paper_fills",
    METADATA,
    Column("fill_id", String(80), primary_key=True),
    Column("client_order_id", String(64), nullable=False),
    Column("contract_id", String(32), nullable=False),
    Column("contract", Text, nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Column("commission", Float, nullable=False),
    Column("ts_event", UTCDateTime(), nullable=False),
)
PAPER_SETTLEMENTS = Table(
    "paper_settlements",
    METADATA,
    Column("contract_id", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("settlement_price", Float, nullable=False),
    Column("underlying_close", Float, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
)


def _broker_id(client_order_id: ClientOrderId) -> BrokerOrderId:
    return BrokerOrderId("P" + hashlib.sha256(client_order_id.value.encode()).hexdigest()[:15])


def _far_price(quote: LegQuote, side: OrderSide) -> float | None:
    return quote.ask if side is OrderSide.BUY else quote.bid


def intrinsic_value(contract: OptionContract, spot: float) -> float:
    if contract.right is Right.CALL:
        return max(spot - contract.strike, 0.0)
    return max(contract.strike - spot, 0.0)


class PaperBroker:
    """The simulated venue (see the module docstring)."""

    name = "paper"

    def __init__(
        self,
        path: Path,
        quotes: QuoteSource,
        clock: Callable[[], datetime],
        commissions: CommissionSchedule | None = None,
        price_band: float = 0.5,
        tick: float = 0.01,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.quotes = quotes
        self.clock = clock
        self.commissions = commissions or CommissionSchedule()
        self.price_band = price_band
        self.tick = tick
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", sqlite_pragmas)
        with self._locked():
            METADATA.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_suffix(".lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # the protocol ------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> OrderReport:
        with self._locked(), self.engine.begin() as connection:
            now = self.clock()
            self._process(connection, now)
            row = self._row(connection, request.client_order_id)
            if row is not None:  # the same client order id: report it, place nothing
                return self._report(row, now)
            reason = self._refusal(request, now)
            values = {
                "client_order_id": request.client_order_id.value,
                "broker_order_id": _broker_id(request.client_order_id).value,
                "request": request_json(request),
                "status": S.REJECTED.value if reason else S.ACCEPTED.value,
                "filled_quantity": 0, "avg_fill_price": None, "commission": 0.0,
                "reason": reason, "session_close": self._session_close(now),
                "last_quote_ts": None, "ts_created": now, "ts_last": now,
            }  # fmt: skip
            connection.execute(insert(PAPER_ORDERS).values(**values))
            if not reason:
                self._match(connection, request.client_order_id, now)
                if request.time_in_force is TimeInForce.IOC:
                    self._finish(connection, request.client_order_id, S.CANCELED, now, "IOC")
            return self._report(self._row(connection, request.client_order_id), now)

    def cancel(self, client_order_id: ClientOrderId) -> OrderReport:
        with self._locked(), self.engine.begin() as connection:
            now = self.clock()
            self._process(connection, now)
            row = self._row(connection, client_order_id)
            if row is None:
                raise ConfigError(f"paper broker: no order {client_order_id} to cancel")
            if row["status"] in OPEN:
                self._finish(connection, client_order_id, S.CANCELED, now, "canceled by request")
            return self._report(self._row(connection, client_order_id), now)

    def lookup(self, client_order_id: ClientOrderId) -> OrderReport | None:
        with self._locked(), self.engine.begin() as connection:
            now = self.clock()
            self._process(connection, now)
            row = self._row(connection, client_order_id)
            return None if row is None else self._report(row, now)

    def open_orders(self) -> list[OrderReport]:
        with self._locked(), self.engine.begin() as connection:
            now = self.clock()
            self._process(connection, now)
            rows = connection.execute(
                select(PAPER_ORDERS).where(PAPER_ORDERS.c.status.in_(OPEN))
            ).all()
            return [self._report(r._mapping, now) for r in rows]

    def fills(self, since: datetime) -> list[Fill]:
        with self._locked(), self.engine.begin() as connection:
            now = self.clock()
            self._process(connection, now)
            rows = connection.execute(
                select(PAPER_FILLS, PAPER_ORDERS.c.broker_order_id)
                .join(PAPER_ORDERS, PAPER_ORDERS.c.client_order_id == PAPER_FILLS.c.client_order_id)
                .where(PAPER_FILLS.c.ts_event >= since)
                .order_by(PAPER_FILLS.c.ts_event, PAPER_FILLS.c.fill_id)
            ).all()
        return [_fill(r._mapping, now) for r in rows]

    def positions(self) -> list[Position]:
        with self._locked(), self.engine.begin() as connection:
            now = self.clock()
            self._process(connection, now)
            return [
                Position(contract, qty, avg, now, now)
                for contract, qty, avg in self._holdings(connection).values()
                if qty
            ]

    def settlements(self) -> list[dict[str, Any]]:
        """Contracts settled at expiry: quantity, intrinsic value, the close used."""
        with self.engine.begin() as connection:
            rows = connection.execute(select(PAPER_SETTLEMENTS)).all()
        return [dict(r._mapping) for r in rows]

    # matching ----------------------------------------------------------------------

    def _process(self, connection: Connection, now: datetime) -> None:
        """Bring the venue up to ``now``: work open orders against newer quotes, expire
        DAY orders whose session closed, settle expired contracts."""
        for row in connection.execute(
            select(PAPER_ORDERS).where(PAPER_ORDERS.c.status.in_(OPEN))
        ).all():
            cid = ClientOrderId(row.client_order_id)
            if row.session_close <= now and request_from_json(row.request).time_in_force in (
                TimeInForce.DAY, TimeInForce.IOC,
            ):  # fmt: skip
                self._match(connection, cid, row.session_close)
                self._finish(connection, cid, S.EXPIRED, row.session_close, "end of day")
            else:
                self._match(connection, cid, now)
        self._settle(connection, now)

    def _match(self, connection: Connection, cid: ClientOrderId, now: datetime) -> None:
        row = self._row(connection, cid)
        if row is None or row["status"] not in OPEN:
            return
        request = request_from_json(row["request"])
        found = self.quotes.snapshot(
            request.legs[0].contract.underlying,
            [leg.contract.contract_id for leg in request.legs], now,
        )  # fmt: skip
        if found is None:
            return
        ts, quotes = found
        if row["last_quote_ts"] is not None and ts <= row["last_quote_ts"]:
            return  # this snapshot's size was offered to the order already
        connection.execute(
            update(PAPER_ORDERS).where(PAPER_ORDERS.c.client_order_id == cid.value)
            .values(last_quote_ts=ts)
        )  # fmt: skip
        prices, sizes = [], []
        for leg in request.legs:
            quote = quotes.get(leg.contract.contract_id)
            price = None if quote is None else _far_price(quote, leg.side)
            if quote is None or price is None or not price > 0:
                return  # no market on this leg now
            size = quote.ask_size if leg.side is OrderSide.BUY else quote.bid_size
            prices.append(price)
            sizes.append(size // leg.ratio)
        net = sum(
            leg.side.sign * leg.ratio * p for leg, p in zip(request.legs, prices, strict=True)
        )
        if request.order_type is OrderType.LIMIT and net > request.limit_price + 1e-9:  # type: ignore[operator]
            return
        units = min(request.quantity - row["filled_quantity"], *sizes)
        if units <= 0:
            return
        self._record_fill(connection, row, request, prices, units, net, max(ts, row["ts_created"]))

    def _record_fill(
        self, connection: Connection, row: Any, request: OrderRequest, prices: list[float],
        units: int, net: float, at: datetime,
    ) -> None:  # fmt: skip
        done = row["filled_quantity"]
        tiered = sum(
            self.commissions.per_contract_for(p) * leg.ratio * units
            for leg, p in zip(request.legs, prices, strict=True)
        )
        charged = row["commission"]
        total = max(charged + tiered, self.commissions.minimum_per_order)
        extra = total - charged - tiered  # the order minimum, on its first fill
        for i, (leg, price) in enumerate(zip(request.legs, prices, strict=True)):
            leg_commission = self.commissions.per_contract_for(price) * leg.ratio * units
            connection.execute(insert(PAPER_FILLS).values(
                fill_id=f"{row['broker_order_id']}-{done:05d}-{i}",
                client_order_id=row["client_order_id"],
                contract_id=leg.contract.contract_id,
                contract=contract_json(leg.contract),
                side=leg.side.value, quantity=units * leg.ratio, price=price,
                commission=round(leg_commission + (extra if i == 0 else 0.0), 6), ts_event=at,
            ))  # fmt: skip
        filled = done + units
        avg = net if not done else (row["avg_fill_price"] * done + net * units) / filled
        status = S.FILLED if filled == request.quantity else S.PARTIALLY_FILLED
        connection.execute(
            update(PAPER_ORDERS).where(PAPER_ORDERS.c.client_order_id == row["client_order_id"])
            .values(filled_quantity=filled, avg_fill_price=avg, status=status.value,
                    commission=total, ts_last=at)
        )  # fmt: skip

    def _finish(
        self, connection: Connection, cid: ClientOrderId, status: OrderStatus, at: datetime,
        reason: str,
    ) -> None:  # fmt: skip
        connection.execute(
            update(PAPER_ORDERS)
            .where(PAPER_ORDERS.c.client_order_id == cid.value, PAPER_ORDERS.c.status.in_(OPEN))
            .values(status=status.value, reason=reason, ts_last=at)
        )

    def _settle(self, connection: Connection, now: datetime) -> None:
        settled = set(connection.execute(select(PAPER_SETTLEMENTS.c.contract_id)).scalars())
        for contract_id, (contract, qty, _avg) in self._holdings(connection, settled).items():
            if not qty or not is_expired(contract, now):
                continue
            close = self.quotes.close_price(contract.underlying, contract.expiry)
            if close is None:
                continue  # no close yet: settled on a later call
            connection.execute(insert(PAPER_SETTLEMENTS).values(
                contract_id=contract_id, quantity=qty,
                settlement_price=intrinsic_value(contract, close), underlying_close=close, ts=now,
            ))  # fmt: skip

    # reads -------------------------------------------------------------------------

    def _holdings(
        self, connection: Connection, settled: set[str] | None = None
    ) -> dict[str, tuple[OptionContract, int, float]]:
        """Signed quantity and average open price per contract, from every fill, less
        settled contracts."""
        if settled is None:
            settled = set(connection.execute(select(PAPER_SETTLEMENTS.c.contract_id)).scalars())
        out: dict[str, tuple[OptionContract, int, float]] = {}
        for r in connection.execute(select(PAPER_FILLS).order_by(PAPER_FILLS.c.ts_event)).all():
            if r.contract_id in settled:
                continue
            contract, qty, avg = out.get(r.contract_id, (contract_from_json(r.contract), 0, 0.0))
            out[r.contract_id] = (contract, *add_to_position(qty, avg, OrderSide(r.side).sign
                                                            * r.quantity, r.price))  # fmt: skip
        return out

    def _row(self, connection: Connection, cid: ClientOrderId) -> Any:
        row = connection.execute(
            select(PAPER_ORDERS).where(PAPER_ORDERS.c.client_order_id == cid.value)
        ).one_or_none()
        return None if row is None else row._mapping

    def _report(self, row: Any, now: datetime) -> OrderReport:
        return OrderReport(
            client_order_id=ClientOrderId(row["client_order_id"]),
            broker_order_id=BrokerOrderId(row["broker_order_id"]),
            status=OrderStatus(row["status"]),
            filled_quantity=row["filled_quantity"],
            avg_fill_price=row["avg_fill_price"],
            ts_event=row["ts_last"], ts_init=now, reason=row["reason"],
        )  # fmt: skip

    def _session_close(self, now: datetime) -> datetime:
        calendar = exchange_calendar()
        day = trading_date(now)
        if calendar.is_session(day):
            close = calendar.session_on_or_before(day).close
            if now < close:
                return close
        return calendar.session_on_or_before(calendar.next_session(day)).close

    def _refusal(self, request: OrderRequest, now: datetime) -> str:
        today = trading_date(now)
        for leg in request.legs:
            if leg.contract.expiry < today:
                return f"contract {leg.contract.contract_id} expired on {leg.contract.expiry}"
        if request.order_type is OrderType.LIMIT:
            limit = request.limit_price
            assert limit is not None
            if not math.isfinite(limit):
                return f"limit price {limit!r} is not a number"
            if abs(round(limit / self.tick) * self.tick - limit) > 1e-9:
                return f"limit price {limit} is not on the {self.tick} tick"
        contracts = [leg.contract.contract_id for leg in request.legs]
        found = self.quotes.snapshot(request.legs[0].contract.underlying, contracts, now)
        quotes = found[1] if found else {}
        unknown = [c for c in contracts if c not in quotes]
        if unknown:
            return f"unknown contract {unknown[0]} (not listed in the market now)"
        if request.order_type is OrderType.LIMIT:
            mids = [(quotes[c].bid or 0.0) / 2 + (quotes[c].ask or 0.0) / 2 for c in contracts]
            mid_net = sum(
                g.side.sign * g.ratio * m for g, m in zip(request.legs, mids, strict=True)
            )
            width = sum(g.ratio * m for g, m in zip(request.legs, mids, strict=True))
            if abs(request.limit_price - mid_net) > self.price_band * width + 0.05:  # type: ignore[operator]
                return (
                    f"limit price {request.limit_price} is too far from the market "
                    f"(mid {mid_net:.2f})"
                )
        return ""


def net_price(request: OrderRequest, prices: list[float]) -> float:
    """Net price per unit of the order from per-leg prices: + debit, - credit."""
    return sum(g.side.sign * g.ratio * p for g, p in zip(request.legs, prices, strict=True))


def _fill(row: Any, now: datetime) -> Fill:
    return Fill(
        fill_id=row["fill_id"], client_order_id=ClientOrderId(row["client_order_id"]),
        broker_order_id=BrokerOrderId(row["broker_order_id"]),
        contract=contract_from_json(row["contract"]), side=OrderSide(row["side"]),
        quantity=row["quantity"], price=row["price"], commission=row["commission"],
        ts_event=row["ts_event"], ts_init=now,
    )  # fmt: skip
