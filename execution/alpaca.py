"""The Alpaca adapter (``alpaca-py``): translation between volflow's domain records and
Alpaca's trading API, nothing more.

* Orders: one leg as a simple option order (the OCC symbol, which is the lake's
  ``contract_id``), several as a multi-leg order (``OrderClass.MLEG`` with
  ``OptionLegRequest`` legs; the net limit price is positive for a debit, negative
  for a credit, as volflow's). Our client order id travels as ``client_order_id``.
* **No retried submits.** alpaca-py's REST client retries every request on 429 and
  504, submits included: a 504 after the order was placed would be sent again.
  Alpaca refuses a reused ``client_order_id``, so it could not double an order, but
  the retry would turn "placed" into an error. Submits go through a client whose
  retries are off; a 429, a 5xx or a network error is :class:`BrokerUnavailable`
  (in flight: looked up by client order id, not resent), and a "client_order_id must
  be unique" refusal is answered by looking the existing order up. Reads keep the
  library's retries (they are idempotent).
* Fills come from the account's FILL activities (each leg's executions), matched to
  our client order id through the orders they belong to (legs included).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, QueryOrderStatus
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.models import Order, TradeActivity
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OptionLegRequest,
)

from data_lake.errors import BrokerError, ConfigError
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
    TimeInForce,
)

logger = logging.getLogger(__name__)

A = AlpacaStatus
STATUS = {
    A.PENDING_NEW: OrderStatus.SUBMITTED,
    A.NEW: OrderStatus.ACCEPTED, A.ACCEPTED: OrderStatus.ACCEPTED,
    A.ACCEPTED_FOR_BIDDING: OrderStatus.ACCEPTED, A.CALCULATED: OrderStatus.ACCEPTED,
    A.HELD: OrderStatus.ACCEPTED, A.PENDING_REVIEW: OrderStatus.ACCEPTED,
    A.STOPPED: OrderStatus.ACCEPTED, A.SUSPENDED: OrderStatus.ACCEPTED,
    A.DONE_FOR_DAY: OrderStatus.ACCEPTED,
    A.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED, A.FILLED: OrderStatus.FILLED,
    A.PENDING_CANCEL: OrderStatus.PENDING_CANCEL, A.PENDING_REPLACE: OrderStatus.PENDING_CANCEL,
    A.CANCELED: OrderStatus.CANCELED, A.REPLACED: OrderStatus.CANCELED,
    A.EXPIRED: OrderStatus.EXPIRED, A.REJECTED: OrderStatus.REJECTED,
}  # fmt: skip
TIF = {TimeInForce.DAY: AlpacaTif.DAY, TimeInForce.GTC: AlpacaTif.GTC,
       TimeInForce.IOC: AlpacaTif.IOC}  # fmt: skip
UNAVAILABLE = (408, 429, 500, 502, 503, 504)


def connect_alpaca(
    api_key: str, secret_key: str, *, paper: bool, live_trading: bool,
    url_override: str | None = None,
) -> tuple[TradingClient, TradingClient]:  # fmt: skip
    """A reading client and a submitting client (retries off). Live trading needs both
    ``paper: false`` and ``live_trading: true``."""
    if not paper and not live_trading:
        raise ConfigError(
            "execution.alpaca.paper is false but execution.alpaca.live_trading is not set: "
            "refusing to trade a live Alpaca account"
        )
    if not api_key or not secret_key:
        raise ConfigError(
            "the alpaca broker needs VOLFLOW_EXECUTION__ALPACA__API_KEY and "
            "VOLFLOW_EXECUTION__ALPACA__SECRET_KEY"
        )
    reads = TradingClient(api_key, secret_key, paper=paper, url_override=url_override)
    submits = TradingClient(api_key, secret_key, paper=paper, url_override=url_override)
    submits._retry = 0  # one attempt: see the module docstring
    return reads, submits


def order_request(request: OrderRequest) -> LimitOrderRequest | MarketOrderRequest:
    """Alpaca's order request for ours."""
    common: dict[str, Any] = {
        "qty": request.quantity,
        "time_in_force": TIF[request.time_in_force],
        "client_order_id": request.client_order_id.value,
    }
    if request.is_combo:
        legs = [
            OptionLegRequest(
                symbol=g.contract.contract_id,
                ratio_qty=g.ratio,
                side=AlpacaSide(g.side.value.lower()),
            )
            for g in request.legs
        ]
        common |= {"order_class": OrderClass.MLEG, "legs": legs}
    else:
        leg = request.legs[0]
        common |= {"symbol": leg.contract.contract_id, "side": AlpacaSide(leg.side.value.lower())}
    if request.order_type is OrderType.MARKET:
        return MarketOrderRequest(**common)
    price = request.limit_price if request.is_combo else abs(request.limit_price or 0.0)
    return LimitOrderRequest(limit_price=price, **common)


def report_of(order: Order, now: datetime) -> OrderReport:
    filled = int(float(order.filled_qty or 0))
    price = float(order.filled_avg_price) if order.filled_avg_price and filled else None
    when = order.updated_at or order.submitted_at or now
    return OrderReport(
        ClientOrderId(order.client_order_id), BrokerOrderId(str(order.id)),
        STATUS.get(order.status, OrderStatus.ACCEPTED), filled, price, when, now,
        reason="" if order.status is not A.REJECTED else "rejected by Alpaca",
    )  # fmt: skip


class AlpacaBroker:
    """The broker protocol over Alpaca (see the module docstring)."""

    name = "alpaca"

    def __init__(
        self, reads: TradingClient, submits: TradingClient, clock: Callable[[], datetime]
    ) -> None:
        self.reads, self.submits, self.clock = reads, submits, clock

    def close(self) -> None:
        for client in (self.reads, self.submits):
            client._session.close()

    def submit(self, request: OrderRequest) -> OrderReport:
        body = order_request(request)
        try:
            order = self.submits.submit_order(body)
        except APIError as exc:
            if _status(exc) in UNAVAILABLE or _status(exc) is None:
                raise BrokerUnavailable(f"alpaca: submit of {request.client_order_id} got "
                                        f"{_status(exc)}: {_message(exc)}") from exc  # fmt: skip
            if "client_order_id" in _message(exc) and "unique" in _message(exc):
                existing = self.lookup(request.client_order_id)  # ours, placed before
                if existing is not None:
                    return existing
            now, why = self.clock(), f"alpaca {_status(exc)}: {_message(exc)}"
            return OrderReport(request.client_order_id, None, OrderStatus.REJECTED, 0, None,
                               now, now, reason=why)  # fmt: skip
        except requests.RequestException as exc:
            raise BrokerUnavailable(f"alpaca: {type(exc).__name__}: {exc}") from exc
        return report_of(order, self.clock())  # type: ignore[arg-type]

    def lookup(self, client_order_id: ClientOrderId) -> OrderReport | None:
        try:
            order = self._read(self.reads.get_order_by_client_id, client_order_id.value)
        except NotFoundError:
            return None
        return report_of(order, self.clock())

    def cancel(self, client_order_id: ClientOrderId) -> OrderReport:
        order = self._read(self.reads.get_order_by_client_id, client_order_id.value)
        with contextlib.suppress(NotFoundError):  # finished meanwhile: the lookup says how
            self._read(self.reads.cancel_order_by_id, str(order.id))
        report = self.lookup(client_order_id)
        if report is None:
            raise BrokerError(f"alpaca: order {client_order_id} vanished while canceling")
        return report

    def open_orders(self) -> list[OrderReport]:
        found = self._read(self.reads.get_orders,
                           GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))  # fmt: skip
        now = self.clock()
        return [report_of(o, now) for o in found]

    def fills(self, since: datetime) -> list[Fill]:
        query = {"after": since.isoformat(), "direction": "asc", "page_size": 100}
        raw = self._read(self.reads.get, "/account/activities/FILL", query)
        activities = [TradeActivity(**a) for a in raw or []]
        if not activities:
            return []
        recent = GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True,
                                  after=since - timedelta(days=5), limit=500)  # fmt: skip
        orders = self._read(self.reads.get_orders, recent)
        owner: dict[str, Order] = {}
        for o in orders:
            owner[str(o.id)] = o
            for leg in o.legs or []:
                owner[str(leg.id)] = o
        now, out = self.clock(), []
        for a in activities:
            parent = owner.get(str(a.order_id))
            if parent is None:
                logger.warning("alpaca fill %s: order %s not found", a.id, a.order_id)
                continue
            out.append(Fill(
                fill_id=a.id, client_order_id=ClientOrderId(parent.client_order_id),
                broker_order_id=BrokerOrderId(str(parent.id)),
                contract=OptionContract.from_contract_id(a.symbol),
                side=OrderSide(a.side.value.upper()), quantity=int(a.qty), price=float(a.price),
                commission=0.0, ts_event=a.transaction_time, ts_init=now,
            ))  # fmt: skip
        return out

    def positions(self) -> list[Position]:
        held = self._read(self.reads.get_all_positions)
        now = self.clock()
        return [
            Position(
                OptionContract.from_contract_id(p.symbol),
                int(float(p.qty)),
                float(p.avg_entry_price),
                now,
                now,
            )
            for p in held
            if str(getattr(p.asset_class, "value", p.asset_class)) == "us_option"
        ]

    def _read(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except APIError as exc:
            if _status(exc) == 404:
                raise NotFoundError(_message(exc)) from exc
            if _status(exc) in UNAVAILABLE or _status(exc) is None:
                raise BrokerUnavailable(f"alpaca {_status(exc)}: {_message(exc)}") from exc
            raise BrokerError(f"alpaca {_status(exc)}: {_message(exc)}") from exc
        except requests.RequestException as exc:
            raise BrokerUnavailable(f"alpaca: {type(exc).__name__}: {exc}") from exc


class NotFoundError(BrokerError):
    """Alpaca has no such order (a 404)."""


def _status(exc: APIError) -> int | None:
    try:
        return exc.status_code
    except Exception:
        return None


def _message(exc: APIError) -> str:
    try:
        return str(exc.message)
    except Exception:
        return str(exc)
