"""The paper broker: far-side fills, partial fills by displayed size, IB tiered
commissions, rejections, DAY/IOC ends, idempotent ids, persistence, expiry settlement.

Quotes come from a small in-memory source (the broker's own ``QuoteSource`` protocol);
the lake-backed source is exercised by tests/execution/test_signal_run.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from execution.domain import (
    ClientOrderId,
    OptionContract,
    OrderLeg,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Right,
    TimeInForce,
)
from execution.paper import CommissionSchedule, PaperBroker, intrinsic_value
from execution.risk import LegQuote

T0 = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)  # 11:00 New York, a Tuesday
EXPIRY = date(2024, 3, 15)
CALL = OptionContract("SPY", EXPIRY, 510.0, Right.CALL)
PUT = OptionContract("SPY", EXPIRY, 510.0, Right.PUT)
WING = OptionContract("SPY", EXPIRY, 520.0, Right.CALL)


@dataclass
class Quotes:
    """Snapshots by time: {ts: {contract_id: LegQuote}}, and closes by day."""

    snapshots: dict[datetime, dict[str, LegQuote]] = field(default_factory=dict)
    closes: dict[date, float] = field(default_factory=dict)

    def add(self, ts: datetime, **quotes: tuple[float, float, int, int]) -> None:
        ids = {"call": CALL, "put": PUT, "wing": WING}
        self.snapshots[ts] = {
            ids[k].contract_id: LegQuote(b, a, bs, as_, ts) for k, (b, a, bs, as_) in quotes.items()
        }

    def snapshot(self, underlying: str, contracts: list[str], now: datetime):  # type: ignore[no-untyped-def]
        times = [t for t in self.snapshots if t <= now]
        if not times:
            return None
        ts = max(times)
        return ts, {c: q for c, q in self.snapshots[ts].items() if c in contracts}

    def close_price(self, underlying: str, day: date) -> float | None:
        return self.closes.get(day)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def _broker(tmp_path: Path, quotes: Quotes, clock: Clock) -> PaperBroker:
    return PaperBroker(tmp_path / "paper.sqlite", quotes, clock)


def _order(
    legs: tuple[OrderLeg, ...], quantity: int, limit: float | None, name: str = "a",
    tif: TimeInForce = TimeInForce.DAY,
) -> OrderRequest:  # fmt: skip
    kind = OrderType.LIMIT if limit is not None else OrderType.MARKET
    return OrderRequest(ClientOrderId(f"vf-{name}"), legs, quantity, kind, limit, tif, T0,
                        structure="test", underlying="SPY")  # fmt: skip


def test_a_buy_fills_at_the_ask_and_a_combo_at_the_far_side_net(tmp_path: Path) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50), put=(3.50, 3.70, 50, 50), wing=(1.00, 1.10, 50, 50))
    broker = _broker(tmp_path, quotes, clock)
    single = broker.submit(_order((OrderLeg(CALL, OrderSide.BUY),), 2, 4.20, "single"))
    assert (single.status, single.filled_quantity, single.avg_fill_price) == (
        OrderStatus.FILLED,
        2,
        pytest.approx(4.20),
    )
    # sell the call, buy the wing: a credit of 4.00 - 1.10 = 2.90 at the far side
    spread = (OrderLeg(CALL, OrderSide.SELL), OrderLeg(WING, OrderSide.BUY))
    report = broker.submit(_order(spread, 3, -2.90, "spread"))
    assert report.status is OrderStatus.FILLED
    assert report.avg_fill_price == pytest.approx(-2.90)
    fills = [f for f in broker.fills(T0) if f.client_order_id.value == "vf-spread"]
    assert {(f.contract.contract_id, f.side, f.quantity, f.price) for f in fills} == {
        (CALL.contract_id, OrderSide.SELL, 3, 4.00),
        (WING.contract_id, OrderSide.BUY, 3, 1.10),
    }


def test_a_limit_inside_the_spread_rests_until_the_market_reaches_it(tmp_path: Path) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50))
    broker = _broker(tmp_path, quotes, clock)
    report = broker.submit(_order((OrderLeg(CALL, OrderSide.BUY),), 1, 4.10))
    assert (report.status, report.filled_quantity) == (OrderStatus.ACCEPTED, 0)
    clock.now = T0 + timedelta(minutes=30)
    quotes.add(clock.now, call=(3.90, 4.05, 50, 50))
    assert broker.lookup(ClientOrderId("vf-a")).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert broker.fills(T0)[0].price == 4.05  # the ask then, not our limit


def test_fills_take_the_displayed_size_once_per_snapshot(tmp_path: Path) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 3))
    broker = _broker(tmp_path, quotes, clock)
    report = broker.submit(_order((OrderLeg(CALL, OrderSide.BUY),), 5, 4.20))
    assert (report.status, report.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 3)
    clock.now = T0 + timedelta(minutes=10)  # the same snapshot: its size was taken
    assert broker.lookup(ClientOrderId("vf-a")).filled_quantity == 3  # type: ignore[union-attr]
    quotes.add(clock.now, call=(4.00, 4.20, 50, 10))
    done = broker.lookup(ClientOrderId("vf-a"))
    assert done is not None
    assert (done.status, done.filled_quantity) == (OrderStatus.FILLED, 5)
    assert [f.quantity for f in broker.fills(T0)] == [3, 2]


def test_commissions_are_tiered_by_premium_with_a_per_order_minimum(tmp_path: Path) -> None:
    schedule = CommissionSchedule()
    assert [schedule.per_contract_for(p) for p in (0.10, 0.07, 0.05, 0.04)] == [
        0.65,
        0.5,
        0.5,
        0.25,
    ]
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50), wing=(0.03, 0.04, 50, 50))
    broker = _broker(tmp_path, quotes, clock)
    broker.submit(_order((OrderLeg(CALL, OrderSide.BUY),), 10, 4.20, "big"))
    broker.submit(_order((OrderLeg(WING, OrderSide.BUY),), 1, 0.04, "penny"))
    by_order = {}
    for f in broker.fills(T0):
        by_order[f.client_order_id.value] = by_order.get(f.client_order_id.value, 0) + f.commission
    assert by_order == {"vf-big": pytest.approx(6.50), "vf-penny": pytest.approx(1.00)}


@pytest.mark.parametrize(
    ("legs", "limit", "expiry_day", "reason"),
    [
        ((OrderLeg(CALL, OrderSide.BUY),), 4.105, None, "not on the 0.01 tick"),
        ((OrderLeg(CALL, OrderSide.BUY),), 9.50, None, "too far from the market"),
        ((OrderLeg(OptionContract("SPY", EXPIRY, 515.0, Right.CALL), OrderSide.BUY),), 2.0,
         None, "unknown contract SPY240315C00515000"),
        ((OrderLeg(OptionContract("SPY", date(2024, 3, 8), 510.0, Right.CALL), OrderSide.BUY),),
         1.0, None, "expired on 2024-03-08"),
    ],
)  # fmt: skip
def test_bad_orders_are_rejected_with_the_reason(
    tmp_path: Path, legs: tuple[OrderLeg, ...], limit: float, expiry_day: None, reason: str
) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50))
    report = _broker(tmp_path, quotes, clock).submit(_order(legs, 1, limit))
    assert report.status is OrderStatus.REJECTED
    assert reason in report.reason


def test_day_orders_expire_at_the_close_and_ioc_orders_at_once(tmp_path: Path) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 2))
    broker = _broker(tmp_path, quotes, clock)
    ioc = broker.submit(_order((OrderLeg(CALL, OrderSide.BUY),), 5, 4.20, "ioc", TimeInForce.IOC))
    assert (ioc.status, ioc.filled_quantity) == (OrderStatus.CANCELED, 2)
    day = broker.submit(_order((OrderLeg(CALL, OrderSide.BUY),), 1, 4.00, "day"))
    assert day.status is OrderStatus.ACCEPTED
    assert [r.client_order_id.value for r in broker.open_orders()] == ["vf-day"]
    clock.now = datetime(2024, 3, 12, 20, 0, tzinfo=UTC)  # 16:00 New York
    after = broker.lookup(ClientOrderId("vf-day"))
    assert after is not None
    assert (after.status, after.reason) == (OrderStatus.EXPIRED, "end of day")
    assert broker.open_orders() == []


def test_a_second_submit_of_an_id_places_nothing_and_state_survives_a_restart(
    tmp_path: Path,
) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50))
    broker = _broker(tmp_path, quotes, clock)
    request = _order((OrderLeg(CALL, OrderSide.BUY),), 2, 4.20)
    first = broker.submit(request)
    broker.close()
    again = _broker(tmp_path, quotes, clock)  # another process, the same venue
    second = again.submit(request)
    assert second.broker_order_id == first.broker_order_id
    assert len(again.fills(T0)) == 1
    assert [(p.contract, p.quantity) for p in again.positions()] == [(CALL, 2)]


def test_contracts_past_expiry_settle_at_intrinsic_value_and_leave_the_positions(
    tmp_path: Path,
) -> None:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50), put=(3.50, 3.70, 50, 50))
    broker = _broker(tmp_path, quotes, clock)
    broker.submit(_order((OrderLeg(CALL, OrderSide.BUY), OrderLeg(PUT, OrderSide.BUY)), 1, 7.90))
    assert len(broker.positions()) == 2
    clock.now = datetime(2024, 3, 15, 20, 30, tzinfo=UTC)  # after the expiry's close
    assert len(broker.positions()) == 2  # no close price known yet: not settled
    quotes.closes[EXPIRY] = 513.25
    assert broker.positions() == []
    settled = {s["contract_id"]: s["settlement_price"] for s in broker.settlements()}
    assert settled == {CALL.contract_id: pytest.approx(3.25), PUT.contract_id: 0.0}
    assert intrinsic_value(PUT, 500.0) == 10.0
