"""The order state machine, the domain records and the deterministic order ids."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_lake.errors import ConfigError
from execution.domain import (
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OptionContract,
    OrderLeg,
    OrderReport,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Right,
    TimeInForce,
)
from execution.ids import client_order_id
from execution.orders import (
    TRANSITIONS,
    InvalidOrderTransition,
    OrderState,
    apply_fill,
    apply_report,
    denied,
    submitted,
)

T0 = datetime(2024, 3, 15, 14, 0, tzinfo=UTC)
CALL = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.CALL)
PUT = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.PUT)
S = OrderStatus


def _request(quantity: int = 3) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id("hourly-signal", T0, "SPY", "straddle"),
        legs=(OrderLeg(CALL, OrderSide.BUY), OrderLeg(PUT, OrderSide.BUY)),
        quantity=quantity,
        order_type=OrderType.LIMIT,
        limit_price=12.35,
        time_in_force=TimeInForce.DAY,
        ts_init=T0,
        structure="straddle",
        underlying="SPY",
    )


def _report(state: OrderState, status: OrderStatus, filled: int, minutes: int = 1) -> OrderReport:
    at = T0 + timedelta(minutes=minutes)
    price = 12.3 if filled else None
    order = state.request.client_order_id
    return OrderReport(order, BrokerOrderId("901"), status, filled, price, at, at)


def _fill(state: OrderState, fill_id: str, quantity: int = 1) -> Fill:
    at = T0 + timedelta(minutes=2)
    return Fill(
        fill_id, state.request.client_order_id, BrokerOrderId("901"), CALL, OrderSide.BUY,
        quantity, 6.2, 0.65, at, at,
    )  # fmt: skip


def test_contract_ids_round_trip_in_the_lake_and_osi_forms() -> None:
    assert CALL.contract_id == "SPY240419C00510000"
    assert CALL.osi == "SPY   240419C00510000" and len(CALL.osi) == 21
    assert OptionContract.from_contract_id("SPY240419C00510000") == CALL
    assert OptionContract.from_contract_id("SPY   240419C00510000") == CALL
    spxw = OptionContract.from_contract_id("SPXW240419P04750500", "SPX")
    assert (spxw.underlying, spxw.root, spxw.strike, spxw.contract_id) == (
        "SPX", "SPXW", 4750.5, "SPXW240419P04750500",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="not an OCC/OSI option symbol"):
        OptionContract.from_contract_id("SPY24041C00510000")


def test_ids_are_types_of_their_own() -> None:
    ours, theirs = ClientOrderId("vf-1"), BrokerOrderId("vf-1")
    assert ours != theirs  # the same text is not the same id
    with pytest.raises(ConfigError, match="invalid client order id"):
        ClientOrderId("has space")


def test_client_order_ids_are_a_function_of_what_the_order_is_for() -> None:
    first = client_order_id("hourly-signal", T0, "SPY", "iron_butterfly", 0)
    again = client_order_id("hourly-signal", T0.astimezone(UTC), "SPY", "iron_butterfly", 0)
    assert first == again and str(first).startswith("vf-20240315T1400-SPY-")
    others = {
        client_order_id("hourly-signal", T0 + timedelta(hours=1), "SPY", "iron_butterfly", 0),
        client_order_id("hourly-signal", T0, "QQQ", "iron_butterfly", 0),
        client_order_id("hourly-signal", T0, "SPY", "vertical", 0),
        client_order_id("hourly-signal", T0, "SPY", "iron_butterfly", 1),
        client_order_id("backtest", T0, "SPY", "iron_butterfly", 0),
    }
    assert first not in others and len(others) == 5
    assert all(len(str(i)) <= 64 for i in others)


def test_requests_refuse_what_no_broker_should_see() -> None:
    with pytest.raises(ConfigError, match="has no limit price"):
        OrderRequest(
            ClientOrderId("vf-x"), (OrderLeg(CALL, OrderSide.BUY),), 1, OrderType.LIMIT, None,
            TimeInForce.DAY, T0,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="timezone-aware"):
        OrderRequest(
            ClientOrderId("vf-x"), (OrderLeg(CALL, OrderSide.BUY),), 1, OrderType.MARKET, None,
            TimeInForce.DAY, T0.replace(tzinfo=None),
        )  # fmt: skip


def test_a_normal_life_submit_accept_fill() -> None:
    state = submitted(OrderState.new(_request()), T0)
    assert state.status.is_in_flight
    state = apply_report(state, _report(state, S.ACCEPTED, 0))
    state = apply_fill(state, _fill(state, "e1"), units=1)
    assert (state.status, state.filled_quantity, state.leaves_quantity) == (
        S.PARTIALLY_FILLED,
        1,
        2,
    )
    assert apply_fill(state, _fill(state, "e1"), units=1) == state  # the same execution again
    state = apply_report(state, _report(state, S.FILLED, 3))
    assert state.status is S.FILLED and state.broker_order_id == BrokerOrderId("901")


def test_a_fill_reported_after_the_cancel_is_applied() -> None:
    """The real-world race: the cancel is acknowledged, then a fill that happened
    before it arrives. The order stays canceled with the fill counted, or becomes
    filled when the fill completes it."""
    state = apply_report(
        submitted(OrderState.new(_request(2)), T0),
        _report(OrderState.new(_request(2)), S.ACCEPTED, 0),
    )
    canceled = apply_report(state, _report(state, S.CANCELED, 0))
    partly = apply_fill(canceled, _fill(canceled, "e1"), units=1)
    assert (partly.status, partly.filled_quantity) == (S.CANCELED, 1)
    whole = apply_report(partly, _report(partly, S.FILLED, 2, minutes=3))
    assert (whole.status, whole.filled_quantity) == (S.FILLED, 2)


def test_a_filled_report_with_part_of_the_quantity_is_a_partial_fill() -> None:
    state = submitted(OrderState.new(_request(3)), T0)
    state = apply_report(state, _report(state, S.FILLED, 1))
    assert state.status is S.PARTIALLY_FILLED


def test_conflicting_reports_are_refused_not_guessed() -> None:
    state = submitted(OrderState.new(_request(2)), T0)
    rejected = apply_report(state, _report(state, S.REJECTED, 0))
    with pytest.raises(InvalidOrderTransition, match="REJECTED cannot become PARTIALLY_FILLED"):
        apply_report(rejected, _report(rejected, S.PARTIALLY_FILLED, 1))
    with pytest.raises(InvalidOrderTransition, match="filled 3 of 2"):
        apply_report(state, _report(state, S.FILLED, 3))
    accepted = apply_report(state, _report(state, S.ACCEPTED, 0))
    other = OrderReport(
        state.request.client_order_id, BrokerOrderId("902"), S.ACCEPTED, 0, None, T0, T0
    )
    with pytest.raises(InvalidOrderTransition, match="two venue orders"):
        apply_report(accepted, other)
    with pytest.raises(InvalidOrderTransition, match="DENIED cannot become SUBMITTED"):
        submitted(denied(OrderState.new(_request()), "daily loss limit", T0), T0)


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("report"), st.sampled_from(list(OrderStatus)), st.integers(0, 4)),
        st.tuples(st.just("fill"), st.sampled_from(["e1", "e2", "e3", "e4"]), st.integers(1, 2)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(events=EVENTS)
def test_no_sequence_of_reports_and_fills_breaks_the_invariants(
    events: list[tuple[str, object, int]],
) -> None:
    """Whatever arrives, in whatever order: each accepted step is a transition of the
    table (or no change), filled quantities only grow and never pass the order's, a
    terminal order only ever becomes FILLED, and a refused step changes nothing."""
    state = submitted(OrderState.new(_request(3)), T0)
    for kind, what, n in events:
        before = state
        try:
            if kind == "report":
                assert isinstance(what, OrderStatus)
                state = apply_report(state, _report(state, what, n))
            else:
                state = apply_fill(state, _fill(state, str(what)), units=n)
        except InvalidOrderTransition:
            assert state == before
            continue
        assert state.status is before.status or state.status in TRANSITIONS[before.status]
        assert before.filled_quantity <= state.filled_quantity <= 3
        assert state.status is not S.FILLED or state.filled_quantity == 3
        if state.filled_quantity == 3:
            assert state.status in (S.FILLED, S.CANCELED, S.EXPIRED) or before.status.is_terminal
        if before.status.is_terminal and state.status is not before.status:
            assert state.status is S.FILLED
        if state.status in (S.REJECTED, S.DENIED):
            assert state.filled_quantity == 0  # a refused order never has fills
