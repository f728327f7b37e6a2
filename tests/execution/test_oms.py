"""Order management against the paper broker behind a faulty line: an answer lost
after the venue took the order, a request that never arrived, a lookup that fails,
a rejection. In flight means looked up, never sent again; and reconciliation repairs
what it can explain and blocks on what it cannot."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from execution.broker import Broker, BrokerUnavailable
from execution.domain import (
    ClientOrderId,
    Fill,
    OrderLeg,
    OrderReport,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from execution.ledger import holdings
from execution.oms import OrderManager
from execution.paper import PaperBroker
from execution.reconcile import accept, reconcile, trading_blocked
from execution.store import open_store
from tests.execution.test_paper import CALL, PUT, T0, WING, Clock, Quotes

SLOT = T0.replace(minute=0)


@dataclass
class Line:
    """A broker behind a line that fails on purpose: ``lose_answer`` (the venue acts,
    the answer is lost), ``drop_request`` (nothing reaches the venue), ``down``."""

    venue: PaperBroker
    lose_answer: bool = False
    drop_request: bool = False
    down: bool = False
    submits: list[str] = field(default_factory=list)
    name: str = "paper"

    def submit(self, request: OrderRequest) -> OrderReport:
        self.submits.append(request.client_order_id.value)
        if self.down or self.drop_request:
            raise BrokerUnavailable("timed out")
        report = self.venue.submit(request)
        if self.lose_answer:
            raise BrokerUnavailable("connection reset before the answer")
        return report

    def _up(self) -> None:
        if self.down:
            raise BrokerUnavailable("disconnected")

    def cancel(self, client_order_id: ClientOrderId) -> OrderReport:
        self._up()
        return self.venue.cancel(client_order_id)

    def lookup(self, client_order_id: ClientOrderId) -> OrderReport | None:
        self._up()
        return self.venue.lookup(client_order_id)

    def open_orders(self) -> list[OrderReport]:
        self._up()
        return self.venue.open_orders()

    def fills(self, since: datetime) -> list[Fill]:
        self._up()
        return self.venue.fills(since)

    def positions(self) -> list[Position]:
        self._up()
        return self.venue.positions()

    def close(self) -> None:
        self.venue.close()


def _setup(tmp_path: Path) -> tuple[OrderManager, Line, Clock]:
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50), put=(3.50, 3.70, 50, 50), wing=(1.00, 1.10, 50, 50))
    line = Line(PaperBroker(tmp_path / "paper.sqlite", quotes, clock))
    store = open_store(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    assert isinstance(line, Broker)
    return OrderManager(store, line, clock), line, clock


def _straddle(name: str = "a", quantity: int = 2, limit: float = 7.90) -> OrderRequest:
    legs = (OrderLeg(CALL, OrderSide.BUY), OrderLeg(PUT, OrderSide.BUY))
    return OrderRequest(ClientOrderId(f"vf-{name}"), legs, quantity, OrderType.LIMIT, limit,
                        TimeInForce.DAY, T0, structure="long_straddle",
                        underlying="SPY")  # fmt: skip


def test_a_lost_answer_leaves_the_order_in_flight_and_a_lookup_resolves_it(
    tmp_path: Path,
) -> None:
    oms, line, _ = _setup(tmp_path)
    line.lose_answer = True
    state = oms.submit(_straddle(), "hourly-signal", SLOT)
    assert state.status is OrderStatus.SUBMITTED  # in flight, not rejected
    line.lose_answer = False
    again = oms.submit(_straddle(), "hourly-signal", SLOT)  # a retry of the run
    assert line.submits == ["vf-a"]  # looked up, not sent again
    assert again.status is OrderStatus.FILLED
    assert len(line.venue.open_orders()) == 0
    assert [r["status"] for r in oms.store.events(ClientOrderId("vf-a"))] == ["FILLED"]


def test_a_request_that_never_arrived_is_closed_only_after_the_grace_time(
    tmp_path: Path,
) -> None:
    oms, line, clock = _setup(tmp_path)
    line.drop_request = True
    state = oms.submit(_straddle(), "hourly-signal", SLOT)
    assert state.status is OrderStatus.SUBMITTED
    assert oms.resolve(state).status is OrderStatus.SUBMITTED  # too soon to say
    clock.now = T0 + oms.unknown_after
    gone = oms.resolve(state)
    assert gone.status is OrderStatus.REJECTED
    assert "never placed" in gone.reason
    assert line.submits == ["vf-a"]


def test_a_disconnect_during_lookup_keeps_the_order_in_flight(tmp_path: Path) -> None:
    oms, line, clock = _setup(tmp_path)
    line.lose_answer = True
    state = oms.submit(_straddle(), "hourly-signal", SLOT)
    line.down = True
    clock.now = T0 + timedelta(hours=1)
    assert oms.resolve(state).status is OrderStatus.SUBMITTED
    assert oms.resolve_open() == 0
    line.down = line.lose_answer = False
    assert oms.resolve_open() == 1
    assert oms.store.load(ClientOrderId("vf-a")).status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_a_rejection_is_final_and_not_in_flight(tmp_path: Path) -> None:
    oms, _, _ = _setup(tmp_path)
    state = oms.submit(_straddle(limit=7.905), "hourly-signal", SLOT)
    assert state.status is OrderStatus.REJECTED
    assert "tick" in state.reason
    assert oms.store.in_flight() == []


def test_missed_fills_are_repaired_once_with_combo_units_counted(tmp_path: Path) -> None:
    oms, _, _ = _setup(tmp_path)
    oms.submit(_straddle(quantity=3), "hourly-signal", SLOT)
    assert holdings(oms.store, T0) == []  # the fills are the venue's until synced
    new, foreign = oms.sync_fills(T0 - timedelta(days=1))
    assert (new, foreign) == (2, [])
    assert oms.sync_fills(T0 - timedelta(days=1)) == (0, [])
    state = oms.store.load(ClientOrderId("vf-a"))
    assert state is not None
    assert (state.status, state.filled_quantity) == (OrderStatus.FILLED, 3)
    assert sorted((h.contract.contract_id, h.quantity) for h in holdings(oms.store, T0)) == [
        (CALL.contract_id, 3), (PUT.contract_id, 3)]  # fmt: skip


def test_reconciliation_repairs_fills_and_blocks_on_a_position_nobody_ordered(
    tmp_path: Path,
) -> None:
    oms, line, clock = _setup(tmp_path)
    line.lose_answer = True
    oms.submit(_straddle(), "hourly-signal", SLOT)  # then a crash: the store never heard
    line.lose_answer = False
    clean = reconcile(oms)
    assert not clean.blocked
    assert (clean.repaired_fills, clean.resolved_orders) == (2, 1)
    # someone trades the account by hand: a wing the store knows nothing of
    stray = OrderRequest(ClientOrderId("manual-1"), (OrderLeg(WING, OrderSide.BUY),), 4,
                         OrderType.LIMIT, 1.10, TimeInForce.DAY, T0)  # fmt: skip
    line.venue.submit(stray)
    clock.now = T0 + timedelta(minutes=15)
    dirty = reconcile(oms)
    assert dirty.blocked
    assert {d.kind for d in dirty.discrepancies} == {"foreign_fill", "position"}
    assert "we hold 0, paper says 4" in trading_blocked(oms)
    assert reconcile(oms).blocked  # still there, still blocking: nothing trades it away
    assert len(line.venue.fills(T0)) == 3
    accepted = accept(oms, "hand trade by the desk")
    assert len(accepted) == 2
    assert trading_blocked(oms) == ""
    after = reconcile(oms)
    assert not after.blocked
    held = {h.contract.contract_id: h.quantity for h in holdings(oms.store, clock.now)}
    assert held == {CALL.contract_id: 2, PUT.contract_id: 2, WING.contract_id: 4}


@pytest.mark.parametrize("url_kind", ["sqlite", "postgresql"])
def test_in_flight_resolution_is_the_same_on_both_stores(
    tmp_path: Path, url_kind: str, request: pytest.FixtureRequest
) -> None:
    if url_kind == "postgresql":
        from tests.execution.test_store import _postgres_database

        databases = _postgres_database()
        url = next(databases)
        request.addfinalizer(lambda: next(databases, None))
    else:
        url = f"sqlite:///{tmp_path / 'orders.sqlite'}"
    quotes, clock = Quotes(), Clock()
    quotes.add(T0, call=(4.00, 4.20, 50, 50), put=(3.50, 3.70, 50, 50))
    line = Line(PaperBroker(tmp_path / "paper.sqlite", quotes, clock), lose_answer=True)
    store = open_store(url)
    try:
        oms = OrderManager(store, line, clock)
        assert oms.submit(_straddle(), "d", SLOT).status is OrderStatus.SUBMITTED
        line.lose_answer = False
        assert oms.submit(_straddle(), "d", SLOT).status is OrderStatus.FILLED
        assert line.submits == ["vf-a"]
    finally:
        store.close()
