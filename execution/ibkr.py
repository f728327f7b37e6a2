"""The Interactive Brokers adapter (``ib_async``, through TWS or IB Gateway):
translation between volflow's domain records and IB's, nothing more.

* Orders: one leg as an option order; several as a combo (``Bag`` whose
  ``ComboLeg`` s carry the legs' qualified conIds and ratios), bought at the net limit
  price (positive a debit, negative a credit, as IB takes combo prices). Our client
  order id travels as ``orderRef``.
* **IB does not enforce a unique orderRef**, so before anything is sent the id is
  looked up in the open orders, the completed orders and the executions; an order
  found there is reported, never placed again.
* Statuses: PendingSubmit and ApiPending are in flight; PreSubmitted, Submitted and
  ApiUpdate working (partially filled from ``filled``/``remaining``); Filled,
  Cancelled/ApiCancelled, Inactive and ValidationError final (the last two rejected,
  with IB's message). Error 1100 (connectivity lost) or 2110 makes every call
  :class:`BrokerUnavailable` until 1101/1102 (restored); an order error (201
  rejected, 110 price not on the tick, 200 no security definition, ...) is that
  order's rejection reason.
* Live ports (7496 TWS, 4001 Gateway) are refused unless live trading is enabled.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ib_async import (
    IB,
    Bag,
    ComboLeg,
    Contract,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Option,
    Trade,
)
from ib_async import Fill as IbFill

from data_lake.errors import ConfigError
from execution.broker import BrokerUnavailable
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
)

logger = logging.getLogger(__name__)

LIVE_PORTS = frozenset({7496, 4001})
S = OrderStatus
STATUS = {
    "PendingSubmit": S.SUBMITTED, "ApiPending": S.SUBMITTED, "PreSubmitted": S.ACCEPTED,
    "Submitted": S.ACCEPTED, "ApiUpdate": S.ACCEPTED, "PendingCancel": S.PENDING_CANCEL,
    "Filled": S.FILLED, "Cancelled": S.CANCELED, "ApiCancelled": S.CANCELED,
    "Inactive": S.REJECTED, "ValidationError": S.REJECTED,
}  # fmt: skip
LOST, RESTORED = frozenset({1100, 2110}), frozenset({1101, 1102})
INFO_CODES = frozenset({2104, 2106, 2107, 2108, 2158})  # market data farm notices


def connect_ibkr(
    host: str, port: int, client_id: int, clock: Callable[[], datetime], *,
    account: str | None = None, timeout: float = 10.0, live_trading: bool = False,
) -> IbkrBroker:  # fmt: skip
    """Connect to TWS or IB Gateway (a paper port unless live trading is enabled)."""
    if port in LIVE_PORTS and not live_trading:
        raise ConfigError(
            f"port {port} is a live-trading port (TWS 7496, IB Gateway 4001): set "
            "execution.ibkr.live_trading to trade a live account, or use 7497/4002 (paper)"
        )
    ib = IB()
    try:
        ib.connect(host, port, clientId=client_id, timeout=timeout, account=account or "")
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise BrokerUnavailable(f"cannot reach TWS/IB Gateway at {host}:{port}: {exc}") from exc
    return IbkrBroker(ib, clock, account or "", timeout)


def ib_contract(contract: OptionContract) -> Option:
    return Option(
        symbol=contract.underlying, lastTradeDateOrContractMonth=f"{contract.expiry:%Y%m%d}",
        strike=contract.strike, right=contract.right.value, exchange="SMART",
        multiplier=str(int(contract.multiplier)), currency="USD",
        tradingClass=contract.root or contract.underlying,
    )  # fmt: skip


def contract_of(ib: Contract) -> OptionContract:
    """Ours from IB's option contract (its localSymbol is the padded OSI symbol)."""
    return OptionContract.from_contract_id(
        ib.localSymbol or "", ib.symbol or None, multiplier=float(ib.multiplier or 100)
    )


class IbkrBroker:
    """The broker protocol over ib_async (see the module docstring)."""

    name = "ibkr"

    def __init__(
        self, ib: Any, clock: Callable[[], datetime], account: str = "", wait: float = 5.0
    ) -> None:
        self.ib, self.clock, self.account, self.wait = ib, clock, account, wait
        self.connectivity_lost = False
        self.order_errors: dict[int, tuple[int, str]] = {}
        ib.errorEvent += self._on_error

    def close(self) -> None:
        self.ib.errorEvent -= self._on_error
        self.ib.disconnect()

    def _on_error(self, req_id: int, code: int, message: str, *_: Any) -> None:
        if code in LOST:
            self.connectivity_lost = True
            logger.error("ibkr %d: %s", code, message)
        elif code in RESTORED:
            self.connectivity_lost = False
            logger.warning("ibkr %d: %s", code, message)
        elif code not in INFO_CODES and req_id > 0:
            self.order_errors[req_id] = (code, message)

    def _up(self) -> None:
        if self.connectivity_lost or not self.ib.isConnected():
            raise BrokerUnavailable("ibkr: not connected to TWS/IB Gateway (or IB lost it)")

    # the protocol ------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> OrderReport:
        self._up()
        known = self.lookup(request.client_order_id)
        if known is not None:  # IB would take a second order with the same orderRef
            return known
        contract = self._qualified(request)
        if isinstance(contract, str):
            now = self.clock()
            return OrderReport(request.client_order_id, None, S.REJECTED, 0, None, now, now,
                               reason=contract)  # fmt: skip
        trade = self.ib.placeOrder(contract, self._order(request))
        deadline = time.monotonic() + self.wait
        while trade.orderStatus.status in ("", "PendingSubmit") and time.monotonic() < deadline:
            self.ib.sleep(0.05)
            if self.connectivity_lost:
                break
        if self.connectivity_lost or not self.ib.isConnected():
            raise BrokerUnavailable(
                f"ibkr: connection lost while placing {request.client_order_id}"
            )
        return self._report(trade, request.client_order_id)

    def lookup(self, client_order_id: ClientOrderId) -> OrderReport | None:
        self._up()
        trade = self._find(client_order_id)
        if trade is not None:
            return self._report(trade, client_order_id)
        executions = [f for f in self._executions() if f.execution.orderRef == client_order_id.value
                      and f.contract.secType != "BAG"]  # fmt: skip
        if not executions:
            return None
        # known only by its executions (completed orders outside this session's view)
        now = self.clock()
        last = max(f.execution.time for f in executions)
        return OrderReport(client_order_id, BrokerOrderId(str(executions[0].execution.permId)),
                           S.PARTIALLY_FILLED, 0, None, last, now,
                           reason="known from executions only")  # fmt: skip

    def cancel(self, client_order_id: ClientOrderId) -> OrderReport:
        self._up()
        trade = self._find(client_order_id)
        if trade is None:
            raise ConfigError(f"ibkr: no order {client_order_id} to cancel")
        if trade.orderStatus.status not in ("Filled", "Cancelled", "ApiCancelled", "Inactive"):
            self.ib.cancelOrder(trade.order)
            self.ib.sleep(0.2)
        return self._report(trade, client_order_id)

    def open_orders(self) -> list[OrderReport]:
        self._up()
        return [self._report(t, _client_id(t)) for t in self.ib.reqAllOpenOrders()]

    def fills(self, since: datetime) -> list[Fill]:
        self._up()
        now, out = self.clock(), []
        for f in self._executions(since):
            if f.contract.secType != "OPT":
                continue  # a combo's own execution row: its legs are the fills
            e, report = f.execution, f.commissionReport
            commission = report.commission if report and math.isfinite(report.commission) and (
                report.commission < 1e9) else 0.0  # fmt: skip
            out.append(Fill(
                fill_id=e.execId, client_order_id=ClientOrderId(e.orderRef or f"ib-{e.permId}"),
                broker_order_id=BrokerOrderId(str(e.permId)), contract=contract_of(f.contract),
                side=OrderSide.BUY if e.side == "BOT" else OrderSide.SELL,
                quantity=int(e.shares), price=float(e.price), commission=float(commission),
                ts_event=_utc(e.time), ts_init=now,
            ))  # fmt: skip
        return out

    def positions(self) -> list[Position]:
        self._up()
        now = self.clock()
        return [
            Position(
                contract_of(p.contract),
                int(p.position),
                p.avgCost / float(p.contract.multiplier or 100),
                now,
                now,
            )
            for p in self.ib.positions(self.account)
            if p.contract.secType == "OPT" and p.position
        ]

    # translation -------------------------------------------------------------------

    def _qualified(self, request: OrderRequest) -> Contract | str:
        legs = [ib_contract(g.contract) for g in request.legs]
        self.ib.qualifyContracts(*legs)
        unknown = [g.contract.contract_id for g, c in zip(request.legs, legs, strict=True)
                   if not c.conId]  # fmt: skip
        if unknown:
            return f"ibkr: no security definition for {', '.join(unknown)}"
        if not request.is_combo:
            return legs[0]
        return Bag(
            symbol=request.legs[0].contract.underlying, exchange="SMART", currency="USD",
            comboLegs=[ComboLeg(conId=c.conId, ratio=g.ratio, action=g.side.value,
                                exchange="SMART") for g, c in zip(request.legs, legs, strict=True)],
        )  # fmt: skip

    def _order(self, request: OrderRequest) -> Any:
        side = "BUY" if request.is_combo else request.legs[0].side.value
        extra = {"orderRef": request.client_order_id.value, "tif": request.time_in_force.value,
                 "account": self.account}  # fmt: skip
        if request.order_type is OrderType.MARKET:
            return MarketOrder(side, request.quantity, **extra)
        limit = request.limit_price or 0.0
        return LimitOrder(
            side, request.quantity, limit if request.is_combo else abs(limit), **extra
        )

    def _find(self, client_order_id: ClientOrderId) -> Trade | None:
        wanted = client_order_id.value
        for trade in [*self.ib.openTrades(), *self.ib.trades()]:
            if trade.order.orderRef == wanted:
                return trade
        for trade in self.ib.reqCompletedOrders(apiOnly=True):
            if trade.order.orderRef == wanted:
                return trade
        return None

    def _executions(self, since: datetime | None = None) -> list[IbFill]:
        at = since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S") if since else ""
        return list(self.ib.reqExecutions(ExecutionFilter(time=at)))

    def _report(self, trade: Trade, client_order_id: ClientOrderId) -> OrderReport:
        status = trade.orderStatus
        mapped = STATUS.get(status.status, S.SUBMITTED)
        filled = int(status.filled)
        if mapped is S.ACCEPTED and filled:
            mapped = S.PARTIALLY_FILLED
        reason = ""
        if mapped in (S.REJECTED, S.CANCELED):
            coded = [e for e in trade.log if e.errorCode]
            error = self.order_errors.get(trade.order.orderId)
            if coded:
                reason = f"IB {coded[-1].errorCode}: {coded[-1].message}"
            elif error:
                reason = f"IB {error[0]}: {error[1]}"
        now = self.clock()
        when = _utc(trade.log[-1].time) if trade.log else now
        broker = BrokerOrderId(str(trade.order.permId)) if trade.order.permId else None
        price = status.avgFillPrice if filled else None
        return OrderReport(client_order_id, broker, mapped, filled, price, when, now, reason)


def _client_id(trade: Trade) -> ClientOrderId:
    return ClientOrderId(trade.order.orderRef or f"ib-{trade.order.permId}")


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
