"""The Alpaca adapter over the real alpaca-py ``TradingClient``, whose HTTP session is
answered by a small in-process venue speaking Alpaca's documented JSON (orders,
multi-leg orders, positions, FILL activities, errors). Every answer is parsed by the
library's own models, so a payload that alpaca-py would not accept fails here.

What it proves: orders and combos translate both ways; a 504 on submit is one POST,
never retried, and leaves the order in flight for a lookup (the library's default
client would send it again and get "client_order_id must be unique"); a reused id is
answered by the existing order; rejections, 404s and statuses map; live trading is
refused unless enabled."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from alpaca.trading.client import TradingClient
from requests.adapters import BaseAdapter

from data_lake.errors import ConfigError
from execution.alpaca import AlpacaBroker, connect_alpaca, order_request
from execution.broker import BrokerUnavailable
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
from execution.oms import OrderManager
from execution.store import open_store

T0 = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
CALL = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.CALL)
PUT = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.PUT)
STAMP = "2024-03-12T15:00:01.123456Z"


def _order_json(body: dict[str, Any], status: str, filled: int = 0) -> dict[str, Any]:
    """An order as Alpaca's API returns it (documented fields; mleg with nested legs)."""
    common = {"id": str(uuid.uuid4()), "created_at": STAMP, "updated_at": STAMP,
              "submitted_at": STAMP, "time_in_force": body["time_in_force"],
              "extended_hours": False, "status": status, "qty": str(body["qty"]),
              "filled_qty": str(filled),
              "filled_avg_price": "1.05" if filled else None}  # fmt: skip
    if body.get("order_class") == "mleg":
        legs = [{**common, "id": str(uuid.uuid4()), "client_order_id": str(uuid.uuid4()),
                 "order_class": "mleg", "symbol": leg["symbol"], "asset_class": "us_option",
                 "side": leg["side"], "ratio_qty": str(leg["ratio_qty"]), "type": "limit",
                 "filled_qty": str(filled * int(float(leg["ratio_qty"])))}
                for leg in body["legs"]]  # fmt: skip
        return {**common, "client_order_id": body["client_order_id"], "order_class": "mleg",
                "type": body["type"], "limit_price": body.get("limit_price"), "legs": legs,
                "symbol": "", "side": "", "asset_class": ""}  # fmt: skip
    return {**common, "client_order_id": body["client_order_id"], "order_class": "simple",
            "symbol": body["symbol"], "asset_class": "us_option", "side": body["side"],
            "type": body["type"], "limit_price": body.get("limit_price")}  # fmt: skip


@dataclass
class Venue(BaseAdapter):
    """Alpaca's trading API for one account, in process."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)
    fail_next_post_after_placing: int | None = None  # e.g. 504: placed, answer lost
    fill_on_submit: bool = True
    positions: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(  # type: ignore[override]  # noqa: PLR0911 (one answer per route)
        self, request: requests.PreparedRequest, **_: Any
    ) -> requests.Response:
        path = (request.path_url or "").split("?")[0]
        if request.method == "POST" and path == "/v2/orders":
            return self._post(json.loads(request.body or b"{}"), request)
        if path == "/v2/orders:by_client_order_id":
            wanted = requests.utils.unquote(request.path_url.split("client_order_id=")[1])
            found = self.orders.get(wanted.split("&")[0])
            if found is None:
                return _answer(request, 404, {"code": 40410000, "message": "order not found"})
            return _answer(request, 200, found)
        if path == "/v2/orders" and request.method == "GET":
            status = "open" if "status=open" in (request.path_url or "") else "all"
            done = {"filled", "canceled", "expired", "rejected"}
            rows = [o for o in self.orders.values() if status == "all" or o["status"] not in done]
            return _answer(request, 200, rows)
        if path.startswith("/v2/orders/") and request.method == "DELETE":
            for order in self.orders.values():
                if order["id"] == path.rsplit("/", 1)[1]:
                    order["status"] = "canceled"
                    return _answer(request, 204, None)
            return _answer(request, 404, {"code": 40410000, "message": "order not found"})
        if path == "/v2/positions":
            return _answer(request, 200, self.positions)
        if path == "/v2/account/activities/FILL":
            return _answer(request, 200, self.activities)
        return _answer(request, 404, {"code": 40410000, "message": f"no route {path}"})

    def _post(self, body: dict[str, Any], request: requests.PreparedRequest) -> requests.Response:
        self.posts.append(body)
        cid = body["client_order_id"]
        if cid in self.orders:
            return _answer(request, 422, {"code": 40010001,
                                          "message": "client_order_id must be unique"})  # fmt: skip
        if body.get("limit_price") is not None and round(float(body["limit_price"]), 2) != float(
            body["limit_price"]
        ):
            return _answer(request, 422, {"code": 42210000,
                                          "message": "invalid limit_price: sub-penny"})  # fmt: skip
        qty = int(float(body["qty"]))
        order = _order_json(body, "filled" if self.fill_on_submit else "new",
                            qty if self.fill_on_submit else 0)  # fmt: skip
        self.orders[cid] = order
        if self.fail_next_post_after_placing is not None:
            code, self.fail_next_post_after_placing = self.fail_next_post_after_placing, None
            return _answer(request, code, {"code": code, "message": "gateway timeout"})
        return _answer(request, 200, order)

    def close(self) -> None:
        pass


def _answer(request: requests.PreparedRequest, status: int, payload: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b"" if payload is None else json.dumps(payload).encode()
    response.request = request
    response.url = request.url or ""
    return response


class Clock:
    def __call__(self) -> datetime:
        return T0


def _broker(venue: Venue) -> tuple[AlpacaBroker, TradingClient]:
    reads, submits = connect_alpaca("key", "secret", paper=True, live_trading=False)
    for client in (reads, submits):
        client._session.mount("https://", venue)
        client._retry_wait = 0
    return AlpacaBroker(reads, submits, Clock()), reads


def _straddle(name: str = "vf-a", limit: float = 12.30, quantity: int = 2) -> OrderRequest:
    legs = (OrderLeg(CALL, OrderSide.BUY), OrderLeg(PUT, OrderSide.BUY))
    return OrderRequest(ClientOrderId(name), legs, quantity, OrderType.LIMIT, limit,
                        TimeInForce.DAY, T0, structure="long_straddle",
                        underlying="SPY")  # fmt: skip


def test_a_combo_is_a_multi_leg_order_with_the_signed_net_price() -> None:
    credit = OrderRequest(ClientOrderId("vf-c"), (OrderLeg(CALL, OrderSide.SELL),
                          OrderLeg(OptionContract("SPY", date(2024, 4, 19), 520.0, Right.CALL),
                                   OrderSide.BUY)), 3, OrderType.LIMIT, -2.15,
                          TimeInForce.DAY, T0)  # fmt: skip
    fields = order_request(credit).to_request_fields()
    assert fields["order_class"] == "mleg"
    assert fields["limit_price"] == -2.15
    assert fields["client_order_id"] == "vf-c"
    assert [(g["symbol"], g["side"], g["ratio_qty"]) for g in fields["legs"]] == [
        ("SPY240419C00510000", "sell", 1), ("SPY240419C00520000", "buy", 1)]  # fmt: skip
    single = OrderRequest(ClientOrderId("vf-s"), (OrderLeg(PUT, OrderSide.SELL),), 1,
                          OrderType.LIMIT, 4.1, TimeInForce.DAY, T0)  # fmt: skip
    simple = order_request(single).to_request_fields()
    assert (simple["symbol"], simple["side"], simple["limit_price"]) == (
        "SPY240419P00510000", "sell", 4.1)  # fmt: skip


def test_submit_lookup_positions_and_fills_translate_alpacas_answers() -> None:
    venue = Venue()
    broker, _ = _broker(venue)
    report = broker.submit(_straddle())
    assert (report.status, report.filled_quantity, report.avg_fill_price) == (
        OrderStatus.FILLED, 2, pytest.approx(1.05))  # fmt: skip
    assert broker.lookup(ClientOrderId("vf-a")) is not None
    assert broker.lookup(ClientOrderId("vf-unknown")) is None
    order = venue.orders["vf-a"]
    venue.activities = [
        {"id": f"20240312150001123::{uuid.uuid4()}", "account_id": str(uuid.uuid4()),
         "activity_type": "FILL", "transaction_time": STAMP, "type": "fill", "price": "6.10",
         "qty": "2", "side": "buy", "symbol": leg["symbol"], "leaves_qty": "0",
         "order_id": leg["id"], "cum_qty": "2", "order_status": "filled"}
        for leg in order["legs"]
    ]  # fmt: skip
    fills = broker.fills(T0)
    assert {(f.client_order_id.value, f.contract, f.side, f.quantity) for f in fills} == {
        ("vf-a", CALL, OrderSide.BUY, 2), ("vf-a", PUT, OrderSide.BUY, 2)}  # fmt: skip
    venue.positions = [
        {"asset_id": str(uuid.uuid4()), "symbol": "SPY240419C00510000", "exchange": "",
         "asset_class": "us_option", "avg_entry_price": "6.10", "qty": "2", "side": "long",
         "cost_basis": "1220"},
        {"asset_id": str(uuid.uuid4()), "symbol": "SPY", "exchange": "ARCA",
         "asset_class": "us_equity", "avg_entry_price": "510", "qty": "10", "side": "long",
         "cost_basis": "5100"},
    ]  # fmt: skip
    assert [(p.contract, p.quantity) for p in broker.positions()] == [(CALL, 2)]


def test_a_504_on_submit_is_sent_once_and_resolved_by_lookup(tmp_path: Any) -> None:
    venue = Venue(fail_next_post_after_placing=504)
    broker, _ = _broker(venue)
    store = open_store(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    oms = OrderManager(store, broker, Clock())
    state = oms.submit(_straddle(), "hourly-signal", T0)
    assert state.status is OrderStatus.SUBMITTED  # in flight, not rejected, not resent
    assert len(venue.posts) == 1
    assert oms.resolve(state).status is OrderStatus.FILLED
    store.close()


def test_the_librarys_default_client_would_have_sent_the_submit_again() -> None:
    """Why the submit client's retries are off: the default retries a 504."""
    venue = Venue(fail_next_post_after_placing=504)
    default = TradingClient("key", "secret", paper=True)
    default._session.mount("https://", venue)
    default._retry_wait = 0
    with pytest.raises(Exception, match="client_order_id must be unique"):
        default.submit_order(order_request(_straddle()))
    assert len(venue.posts) == 2


def test_a_reused_id_reports_the_existing_order_and_a_bad_price_is_rejected() -> None:
    venue = Venue()
    broker, _ = _broker(venue)
    first = broker.submit(_straddle())
    again = broker.submit(_straddle())
    assert again.broker_order_id == first.broker_order_id
    bad = broker.submit(_straddle("vf-b", limit=12.305))
    assert bad.status is OrderStatus.REJECTED
    assert "sub-penny" in bad.reason


def test_unreachable_alpaca_is_unavailable_and_cancel_maps() -> None:
    venue = Venue(fill_on_submit=False)
    broker, reads = _broker(venue)
    assert broker.submit(_straddle()).status is OrderStatus.ACCEPTED
    assert [r.client_order_id.value for r in broker.open_orders()] == ["vf-a"]
    assert broker.cancel(ClientOrderId("vf-a")).status is OrderStatus.CANCELED

    class Down(BaseAdapter):
        def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
            raise requests.ConnectionError("connection refused")

        def close(self) -> None:
            pass

    reads._session.mount("https://", Down())
    with pytest.raises(BrokerUnavailable):
        broker.lookup(ClientOrderId("vf-a"))


def test_live_trading_is_refused_unless_enabled() -> None:
    with pytest.raises(ConfigError, match="refusing to trade a live Alpaca account"):
        connect_alpaca("key", "secret", paper=False, live_trading=False)
    with pytest.raises(ConfigError, match="API_KEY"):
        connect_alpaca("", "", paper=True, live_trading=False)
