"""The IBKR adapter against a stand-in for TWS that answers with ib_async's own types
(``Trade``, ``Order``, ``OrderStatus``, ``TradeLogEntry``, ``Fill``, ``Execution``,
``CommissionReport``, ``Position``, contracts) and raises errors through ib_async's
``errorEvent``, as TWS's messages arrive.

What it proves: a combo is a ``Bag`` of qualified conIds bought at the net price with
our id as ``orderRef``; an id already at IB (open, completed, or only in the
executions, after a restart) is reported and not placed again, because IB does not
check orderRef; statuses and partial fills map; connectivity loss (1100) is
unavailability until 1102; order errors are rejection reasons; combo-level
executions are not counted as fills; live ports are refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from eventkit import Event
from ib_async import (
    Bag,
    CommissionReport,
    Contract,
    Execution,
    Fill,
    Order,
    OrderStatus,
    Position,
    Trade,
    TradeLogEntry,
)

from data_lake.errors import ConfigError
from execution.broker import BrokerUnavailable
from execution.domain import (
    ClientOrderId,
    OptionContract,
    OrderLeg,
    OrderRequest,
    OrderSide,
    OrderType,
    Right,
    TimeInForce,
)
from execution.domain import OrderStatus as Status
from execution.ibkr import IbkrBroker, connect_ibkr

T0 = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
CALL = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.CALL)
PUT = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.PUT)


def _opt(contract: OptionContract, con_id: int) -> Contract:
    return Contract(secType="OPT", conId=con_id, symbol="SPY", localSymbol=contract.osi,
                    multiplier="100", exchange="SMART", currency="USD")  # fmt: skip


@dataclass
class Tws:
    """What TWS would say: qualification, orders, statuses, executions, positions."""

    fill: bool = True
    status_after_place: str = "Filled"
    errorEvent: Event = field(default_factory=lambda: Event("errorEvent"))  # noqa: N815
    placed: list[tuple[Contract, Order]] = field(default_factory=list)
    session: list[Trade] = field(default_factory=list)
    completed: list[Trade] = field(default_factory=list)
    executions: list[Fill] = field(default_factory=list)
    held: list[Position] = field(default_factory=list)
    connected: bool = True
    unknown: set[float] = field(default_factory=set)  # strikes IB does not list

    def isConnected(self) -> bool:
        return self.connected

    def sleep(self, _: float) -> None:
        pass

    def disconnect(self) -> None:
        self.connected = False

    def qualifyContracts(self, *contracts: Contract) -> list[Contract]:
        for i, c in enumerate(contracts):
            if c.strike not in self.unknown:
                c.conId = 1000 + i
                c.localSymbol = OptionContract("SPY", date(2024, 4, 19), c.strike,
                                               Right(c.right)).osi  # fmt: skip
        return list(contracts)

    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        self.placed.append((contract, order))
        order.orderId, order.permId = len(self.placed), 9000 + len(self.placed)
        filled = order.totalQuantity if self.status_after_place == "Filled" else 0
        status = OrderStatus(orderId=order.orderId, status=self.status_after_place,
                             filled=filled, remaining=order.totalQuantity - filled,
                             avgFillPrice=order.lmtPrice if filled else 0.0,
                             permId=order.permId)  # fmt: skip
        trade = Trade(contract, order, status, [], [TradeLogEntry(T0, status.status, "")])
        self.session.append(trade)
        return trade

    def openTrades(self) -> list[Trade]:
        return [t for t in self.session if t.orderStatus.status in ("Submitted", "PreSubmitted")]

    def trades(self) -> list[Trade]:
        return list(self.session)

    def reqCompletedOrders(self, apiOnly: bool) -> list[Trade]:  # noqa: N803
        return list(self.completed)

    def reqAllOpenOrders(self) -> list[Trade]:
        return self.openTrades()

    def reqExecutions(self, execFilter: Any = None) -> list[Fill]:  # noqa: N803
        return list(self.executions)

    def cancelOrder(self, order: Order) -> None:
        for t in self.session:
            if t.order is order:
                t.orderStatus.status = "Cancelled"

    def positions(self, account: str = "") -> list[Position]:
        return list(self.held)


class Clock:
    def __call__(self) -> datetime:
        return T0


def _straddle(name: str = "vf-a", limit: float = 12.3) -> OrderRequest:
    legs = (OrderLeg(CALL, OrderSide.BUY), OrderLeg(PUT, OrderSide.BUY))
    return OrderRequest(ClientOrderId(name), legs, 2, OrderType.LIMIT, limit, TimeInForce.DAY,
                        T0, structure="long_straddle", underlying="SPY")  # fmt: skip


def test_a_combo_is_a_bag_of_qualified_legs_at_the_net_price() -> None:
    tws = Tws()
    report = IbkrBroker(tws, Clock(), wait=0).submit(_straddle(limit=-1.25))
    contract, order = tws.placed[0]
    assert isinstance(contract, Bag)
    assert [(leg.conId, leg.ratio, leg.action) for leg in contract.comboLegs] == [
        (1000, 1, "BUY"), (1001, 1, "BUY")]  # fmt: skip
    assert (order.action, order.totalQuantity, order.lmtPrice, order.orderRef, order.tif) == (
        "BUY", 2, -1.25, "vf-a", "DAY")  # fmt: skip
    assert (report.status, report.filled_quantity, str(report.broker_order_id)) == (
        Status.FILLED, 2, "9001")  # fmt: skip


def test_an_id_already_at_ib_is_reported_not_placed_again() -> None:
    tws = Tws(status_after_place="Submitted")
    broker = IbkrBroker(tws, Clock(), wait=0)
    broker.submit(_straddle())
    assert broker.submit(_straddle()).status is Status.ACCEPTED
    assert len(tws.placed) == 1
    # after a restart: the order is only among the completed orders, or only executions
    restarted = Tws(completed=list(tws.session))
    assert IbkrBroker(restarted, Clock()).submit(_straddle()).status is Status.ACCEPTED
    assert restarted.placed == []
    execution = Execution(execId="0001.01", time=T0, side="BOT", shares=2, price=6.1,
                          permId=9001, orderRef="vf-a")  # fmt: skip
    only_executions = Tws(executions=[Fill(_opt(CALL, 1000), execution, CommissionReport(), T0)])
    found = IbkrBroker(only_executions, Clock()).submit(_straddle())
    assert found.reason == "known from executions only"
    assert only_executions.placed == []


@pytest.mark.parametrize(
    ("ib_status", "filled", "expected"),
    [("PendingSubmit", 0, Status.SUBMITTED), ("ApiPending", 0, Status.SUBMITTED),
     ("PreSubmitted", 0, Status.ACCEPTED), ("Submitted", 0, Status.ACCEPTED),
     ("Submitted", 1, Status.PARTIALLY_FILLED), ("Filled", 2, Status.FILLED),
     ("Cancelled", 0, Status.CANCELED), ("ApiCancelled", 0, Status.CANCELED),
     ("Inactive", 0, Status.REJECTED), ("ValidationError", 0, Status.REJECTED),
     ("PendingCancel", 0, Status.PENDING_CANCEL)],
)  # fmt: skip
def test_ib_statuses_map_with_partial_fills_from_filled_and_remaining(
    ib_status: str, filled: int, expected: Status
) -> None:
    status = OrderStatus(orderId=1, status=ib_status, filled=filled, remaining=2 - filled,
                         avgFillPrice=6.1 if filled else 0.0)  # fmt: skip
    order = Order(orderId=1, permId=77, orderRef="vf-a", totalQuantity=2)
    tws = Tws(session=[Trade(Contract(), order, status, [], [TradeLogEntry(T0, ib_status)])])
    report = IbkrBroker(tws, Clock()).lookup(ClientOrderId("vf-a"))
    assert report is not None
    assert (report.status, report.filled_quantity) == (expected, filled)


def test_connectivity_loss_is_unavailable_until_restored_and_order_errors_are_reasons() -> None:
    tws = Tws(status_after_place="Inactive")
    broker = IbkrBroker(tws, Clock(), wait=0)
    tws.errorEvent.emit(-1, 1100, "Connectivity between IB and TWS has been lost.", None)
    with pytest.raises(BrokerUnavailable):
        broker.submit(_straddle())
    assert tws.placed == []
    tws.errorEvent.emit(-1, 1102, "Connectivity restored - data maintained.", None)
    tws.errorEvent.emit(1, 201, "Order rejected - reason: insufficient margin", None)
    rejected = broker.submit(_straddle())
    assert rejected.status is Status.REJECTED
    assert rejected.reason == "IB 201: Order rejected - reason: insufficient margin"
    tws.unknown = {510.0}
    missing = broker.submit(_straddle("vf-b"))
    assert missing.status is Status.REJECTED
    assert "no security definition for SPY240419C00510000" in missing.reason


def test_fills_are_the_legs_executions_and_positions_are_options_only() -> None:
    bag = Contract(secType="BAG", symbol="SPY")
    rows = [
        Fill(bag, Execution(execId="b.1", time=T0, side="BOT", shares=2, price=12.2,
                            permId=9001, orderRef="vf-a"), CommissionReport(), T0),
        Fill(_opt(CALL, 1000), Execution(execId="c.1", time=T0, side="BOT", shares=2, price=6.1,
             permId=9001, orderRef="vf-a"), CommissionReport("c.1", 1.3), T0),
        Fill(_opt(PUT, 1001), Execution(execId="p.1", time=T0, side="SLD", shares=2, price=6.1,
             permId=9001, orderRef=""), CommissionReport("p.1", 1.7976931348623157e308), T0),
    ]  # fmt: skip
    held = [Position("DU1", _opt(CALL, 1000), 2, 610.0),
            Position("DU1", Contract(secType="STK", symbol="SPY"), 100, 510.0)]  # fmt: skip
    broker = IbkrBroker(Tws(executions=rows, held=held), Clock())
    fills = broker.fills(T0)
    assert [(f.fill_id, f.client_order_id.value, f.contract, f.side, f.commission)
            for f in fills] == [("c.1", "vf-a", CALL, OrderSide.BUY, 1.3),
                                ("p.1", "ib-9001", PUT, OrderSide.SELL, 0.0)]  # fmt: skip
    assert [(p.contract, p.quantity, p.avg_price) for p in broker.positions()] == [(CALL, 2, 6.1)]


def test_live_ports_are_refused_unless_enabled() -> None:
    for port in (7496, 4001):
        with pytest.raises(ConfigError, match="live-trading port"):
            connect_ibkr("127.0.0.1", port, 1, Clock())
    with pytest.raises(BrokerUnavailable, match="cannot reach TWS/IB Gateway"):
        connect_ibkr("127.0.0.1", 1, 1, Clock(), timeout=0.5)
