"""The risk engine: worst losses against a brute-force oracle, each check's refusal,
the trading-state rules, and a property: no order it lets through breaches a limit."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from execution.risk import (
    Greeks,
    LegQuote,
    PortfolioRisk,
    ProposedOrder,
    RiskLimits,
    check_order,
    next_trading_state,
    unprotected_legs,
    worst_loss,
)
from execution.store import TradingState

NOW = datetime(2024, 3, 15, 15, 0, tzinfo=UTC)
EXPIRY = date(2024, 4, 19)
LIMITS = RiskLimits()
FLAT = PortfolioRisk(Greeks(), {}, 0.0, 100_000.0, 100_000.0, 0)
B, S = OrderSide.BUY, OrderSide.SELL


def _contract(strike: float, right: Right) -> OptionContract:
    return OptionContract("SPY", EXPIRY, strike, right)


def _order(
    legs: list[tuple[OrderSide, float, Right, int]], price: float, quantity: int = 1
) -> OrderRequest:
    return OrderRequest(
        ClientOrderId("vf-test"),
        tuple(OrderLeg(_contract(k, r), side, ratio) for side, k, r, ratio in legs),
        quantity, OrderType.LIMIT, price, TimeInForce.DAY, NOW, underlying="SPY",
    )  # fmt: skip


def _quotes(request: OrderRequest, spread: float = 0.10, age_s: float = 60) -> dict[str, LegQuote]:
    at = NOW - timedelta(seconds=age_s)
    return {
        leg.contract.contract_id: LegQuote(2.0, 2.0 + spread, 10, 10, at) for leg in request.legs
    }


def _oracle_worst_loss(request: OrderRequest) -> float:
    """Brute force: the payoff at expiry every 50 cents from 0 to 3 times the highest
    strike (the test strikes are on that grid), and far away."""
    price = request.limit_price or 0.0
    if len(request.legs) == 1:
        price = abs(price) * request.legs[0].side.sign
    top = 3 * max(leg.contract.strike for leg in request.legs)

    def pnl(spot: float) -> float:
        value = sum(
            leg.side.sign * leg.ratio
            * (max(spot - leg.contract.strike, 0) if leg.contract.right is Right.CALL
               else max(leg.contract.strike - spot, 0))
            for leg in request.legs
        )  # fmt: skip
        return (value - price) * 100 * request.quantity

    grid = [i / 2 for i in range(int(2 * top) + 1)]
    lowest = min(pnl(s) for s in grid)
    if pnl(10 * top) < lowest - 1e-9:
        return math.inf
    return max(0.0, -lowest)


IRON_BUTTERFLY = [(S, 500.0, Right.PUT, 1), (S, 500.0, Right.CALL, 1),
                  (B, 490.0, Right.PUT, 1), (B, 510.0, Right.CALL, 1)]  # fmt: skip


def test_worst_losses_of_the_defined_risk_structures() -> None:
    fly = _order(IRON_BUTTERFLY, -6.0)  # sold for a 6.00 credit, wings 10 wide
    assert worst_loss(fly) == pytest.approx(400.0)  # (10 - 6) x 100
    vertical = _order([(B, 500.0, Right.CALL, 1), (S, 510.0, Right.CALL, 1)], 4.0, quantity=3)
    assert worst_loss(vertical) == pytest.approx(1_200.0)  # the debit, 3 times
    straddle = _order([(B, 500.0, Right.CALL, 1), (B, 500.0, Right.PUT, 1)], 12.0)
    assert worst_loss(straddle) == pytest.approx(1_200.0)
    naked = _order([(S, 500.0, Right.CALL, 1)], 5.0)
    assert worst_loss(naked) == math.inf and unprotected_legs(naked) == ["SPY240419C00500000"]
    assert unprotected_legs(fly) == [] and unprotected_legs(vertical) == []


@settings(max_examples=200, deadline=None)
@given(
    legs=st.lists(
        st.tuples(st.sampled_from([B, S]), st.sampled_from([480.0, 490.0, 500.0, 510.0, 520.0]),
                  st.sampled_from([Right.CALL, Right.PUT]), st.integers(1, 2)),
        min_size=1, max_size=4,
    ),
    price=st.floats(-15, 15),
)  # fmt: skip
def test_worst_loss_equals_a_brute_force_oracle(
    legs: list[tuple[OrderSide, float, Right, int]], price: float
) -> None:
    request = _order(legs, round(price, 2))
    expected, found = _oracle_worst_loss(request), worst_loss(request)
    assert found == expected if math.isinf(expected) else found == pytest.approx(expected, abs=1e-6)


def _checks(order: ProposedOrder, **portfolio: object) -> set[str]:
    fields = {**FLAT.__dict__, **portfolio}
    return {
        r.check
        for r in check_order(order, PortfolioRisk(**fields), LIMITS, TradingState.ACTIVE, NOW)
    }  # type: ignore[arg-type]


def test_each_check_refuses_with_its_reason() -> None:
    fly = _order(IRON_BUTTERFLY, -6.0)
    good = ProposedOrder(fly, _quotes(fly), Greeks(delta=-2, gamma=-1, vega=-40), 0.01, (-0.2, 0.2))
    assert _checks(good) == set()
    assert "protection" in _checks(
        ProposedOrder(_order([(S, 500.0, Right.CALL, 1)], 5.0), {}, Greeks())
    )
    big = _order(IRON_BUTTERFLY, -6.0, quantity=6)  # worst loss 2,400 > 2,000
    assert _checks(ProposedOrder(big, _quotes(big), Greeks())) == {"max_loss"}
    assert _checks(ProposedOrder(fly, _quotes(fly, spread=1.5), Greeks())) == {"spread"}
    assert _checks(ProposedOrder(fly, _quotes(fly, age_s=3600), Greeks())) == {"quote"}
    assert _checks(ProposedOrder(fly, {}, Greeks())) == {"quote"}
    crossed = {k: LegQuote(2.5, 2.0, 10, 10, NOW) for k in _quotes(fly)}
    assert _checks(ProposedOrder(fly, crossed, Greeks())) == {"quote"}
    assert _checks(ProposedOrder(fly, _quotes(fly), Greeks(), math.nan)) == {"signal"}
    assert _checks(ProposedOrder(fly, _quotes(fly), Greeks(), 0.5, (-0.2, 0.2))) == {"signal"}
    assert _checks(good, daily_pnl=-6_000.0) == {"daily_loss"}
    assert _checks(good, orders_last_hour=20) == {"orders_per_hour"}
    assert _checks(good, equity=94_000.0) == {"drawdown"}
    assert _checks(good, net=Greeks(vega=-4_990.0)) == {"net_vega"}
    assert _checks(good, worst_loss_by_underlying={"SPY": 4_800.0}) == {"concentration"}
    many = {f"U{i}": 1_000.0 for i in range(10)}
    assert _checks(good, worst_loss_by_underlying=many) == {"risk_budget"}
    halted = check_order(good, FLAT, LIMITS, TradingState.HALTED, NOW)
    assert [r.reason for r in halted] == ["trading is HALTED"]


def test_the_trading_state_halts_on_the_daily_loss_and_never_resumes_by_itself() -> None:
    lost = PortfolioRisk(Greeks(), {}, -5_000.0, 95_000.0, 100_000.0, 0)
    state, reason = next_trading_state(TradingState.ACTIVE, lost, LIMITS)
    assert state is TradingState.HALTED and reason == "daily loss 5,000 reached the limit 5,000"
    assert next_trading_state(TradingState.HALTED, FLAT, LIMITS) == (TradingState.HALTED, "")
    down = PortfolioRisk(Greeks(), {}, 0.0, 94_000.0, 100_000.0, 0)
    assert next_trading_state(TradingState.ACTIVE, down, LIMITS)[0] is TradingState.REDUCING
    crash = PortfolioRisk(Greeks(), {}, 0.0, 89_000.0, 100_000.0, 0)
    assert next_trading_state(TradingState.REDUCING, crash, LIMITS)[0] is TradingState.HALTED


STRUCTURES = [
    IRON_BUTTERFLY,
    [(B, 500.0, Right.CALL, 1), (S, 510.0, Right.CALL, 1)],  # a call vertical
    [(S, 500.0, Right.PUT, 1), (B, 490.0, Right.PUT, 1)],  # a put credit vertical
    [(B, 500.0, Right.CALL, 1), (B, 500.0, Right.PUT, 1)],  # a long straddle
    [(S, 500.0, Right.CALL, 1), (S, 500.0, Right.PUT, 1)],  # a short straddle: naked
    [(S, 500.0, Right.CALL, 2), (B, 510.0, Right.CALL, 1)],  # a ratio spread: one naked
]
LEGS = st.one_of(
    *[st.sampled_from(STRUCTURES)] * 3,
    st.lists(
        st.tuples(st.sampled_from([B, S]), st.sampled_from([490.0, 500.0, 510.0]),
                  st.sampled_from([Right.CALL, Right.PUT]), st.integers(1, 3)),
        min_size=1, max_size=4,
    ),
)  # fmt: skip


# mostly sane quotes, some broken: missing, crossed, locked, wide, empty, stale, future
def _quote(
    kind: int, bid: float, ask: float, age: float, late: float
) -> tuple[float | None, float | None, int, int, float]:
    """Mostly a sane quote; one kind in ten each of: no bid, a zero bid, crossed, no
    size on one side, stale or from the future."""
    broken = {
        0: (None, ask, 10, 10, age),
        1: (0.0, ask, 10, 10, age),
        2: (bid, bid - 0.05, 10, 10, age),
        3: (bid, ask, 0, 10, age),
        4: (bid, ask, 10, 0, age),
        5: (bid, ask, 10, 10, late),
    }
    return broken.get(kind, (bid, ask, 10, 10, age))


QUOTE = st.builds(
    _quote, st.integers(0, 19), st.floats(1.9, 2.1), st.floats(2.15, 2.6), st.floats(0, 800),
    st.one_of(st.floats(-100, -0.001), st.floats(901, 2000)),
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(
    legs=LEGS,
    price=st.one_of(st.floats(-8, -2), st.floats(2, 12), st.floats(-10, 10)),
    quantity=st.one_of(st.integers(1, 4), st.integers(1, 12)),
    quote=QUOTE,
    unit=st.tuples(st.floats(-30, 30), st.floats(-10, 10), st.floats(-300, 300)),
    net=st.tuples(st.floats(-520, 520), st.floats(-210, 210), st.floats(-5200, 5200)),
    book=st.dictionaries(
        st.sampled_from(["SPY", "QQQ", "IWM"]), st.sampled_from([0.0, 500.0, 1_500.0, 4_800.0]),
        max_size=3,
    ),
    pnl=st.sampled_from([1_500.0, 0.0, -800.0, -2_000.0, -4_900.0, -5_000.0]),
    equity=st.sampled_from([100_000.0, 99_000.0, 98_000.0, 97_000.0, 96_000.0, 94_000.0]),
    orders=st.sampled_from([0, 3, 12, 19, 20]),
    signal=st.one_of(st.none(), st.floats(-0.45, 0.45), st.floats(-0.6, 0.6), st.just(math.nan)),
    state=st.sampled_from([TradingState.ACTIVE] * 8 + list(TradingState)),
)  # fmt: skip
def test_no_order_that_breaches_a_limit_gets_through(
    legs: list[tuple[OrderSide, float, Right, int]],
    price: float,
    quantity: int,
    quote: tuple[float | None, float | None, int, int, float],
    unit: tuple[float, float, float],
    net: tuple[float, float, float],
    book: dict[str, float],
    pnl: float,
    equity: float,
    orders: int,
    signal: float | None,
    state: TradingState,
) -> None:
    """Whatever the order, quotes, portfolio and state: if the engine lets an order
    through, every limit holds, checked here independently (the worst loss by the
    brute-force oracle)."""
    request = _order(legs, round(price, 2), quantity)
    bid, ask, bid_size, ask_size, age = quote
    quotes = {
        leg.contract.contract_id: LegQuote(
            bid, ask, bid_size, ask_size, NOW - timedelta(seconds=age)
        )
        for leg in request.legs
    }
    order = ProposedOrder(request, quotes, Greeks(*unit), signal, (-0.5, 0.5))
    portfolio = PortfolioRisk(Greeks(*net), book, pnl, equity, 100_000.0, orders)
    if check_order(order, portfolio, LIMITS, state, NOW):
        return  # refused: nothing to prove
    assert state is TradingState.ACTIVE
    assert pnl > -LIMITS.daily_loss_limit and orders < LIMITS.max_orders_per_hour
    assert signal is None or (math.isfinite(signal) and -0.5 <= signal <= 0.5)
    assert quantity * max(leg[3] for leg in legs) <= LIMITS.max_contracts_per_structure
    loss = _oracle_worst_loss(request)
    assert loss <= LIMITS.max_loss_per_structure + 1e-6 and not unprotected_legs(request)
    assert bid is not None and ask is not None and 0 < bid < ask
    relative = (ask - bid) / ((ask + bid) / 2)
    assert relative <= LIMITS.max_relative_spread or ask - bid <= LIMITS.max_absolute_spread + 1e-9
    stamped = (NOW - next(iter(quotes.values())).ts_event).total_seconds()  # as stored
    assert 0 <= stamped <= LIMITS.max_quote_age_seconds
    assert all((ask_size if side is B else bid_size) > 0 for side, *_ in legs)
    assert 1 - equity / 100_000.0 < LIMITS.reducing_drawdown
    for value, per_unit, limit in zip(net, unit, (LIMITS.max_net_delta, LIMITS.max_net_gamma,
                                                  LIMITS.max_net_vega), strict=True):  # fmt: skip
        assert abs(value + per_unit * quantity) <= limit
    assert sum(book.values()) + loss <= LIMITS.risk_budget + 1e-6
    assert book.get("SPY", 0.0) + loss <= LIMITS.max_underlying_share * LIMITS.risk_budget + 1e-6


STEP = st.tuples(
    LEGS,
    st.one_of(st.floats(-8, -2), st.floats(2, 12)),  # limit price
    st.integers(1, 3),  # quantity
    # Greeks per unit large enough that a few orders reach each limit
    st.tuples(st.floats(-150, 150), st.floats(-60, 60), st.floats(-1_500, 1_500)),
    st.sampled_from(["SPY", "QQQ"]),
    st.floats(-0.6, 0.6),  # the prediction
    st.sampled_from([1.0, 1.0, 1.0, 0.5, 0.0]),  # the share of the order that fills
    st.one_of(st.floats(-600, 600), st.floats(-3_000, 2_000)),  # the book's move after it
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=16))
def test_no_sequence_of_predictions_quotes_and_fills_breaches_a_limit(
    steps: list[tuple[Any, ...]],
) -> None:
    """A day of signals one after another: each proposed order meets the portfolio the
    earlier ones left (filled in part or whole, marked by the market, the trading state
    moved by ``next_trading_state``). Whatever the sequence, the book the engine lets
    build never holds more worst loss, concentration, Greeks or orders than allowed,
    and nothing but closing orders passes once the state has left ACTIVE."""
    state = TradingState.ACTIVE
    net, book, pnl, equity, peak, sent = Greeks(), {}, 0.0, 100_000.0, 100_000.0, 0
    quotes_at = NOW - timedelta(seconds=60)
    for legs, price, quantity, unit, underlying, signal, filled, move in steps:
        request = _order(legs, round(price, 2), quantity)
        request = OrderRequest(
            request.client_order_id,
            tuple(OrderLeg(OptionContract(underlying, EXPIRY, g.contract.strike, g.contract.right),
                           g.side, g.ratio) for g in request.legs),
            quantity, OrderType.LIMIT, request.limit_price, TimeInForce.DAY, NOW,
            underlying=underlying,
        )  # fmt: skip
        quotes = {
            g.contract.contract_id: LegQuote(2.0, 2.2, 10, 10, quotes_at) for g in request.legs
        }
        order = ProposedOrder(request, quotes, Greeks(*unit), signal, (-0.5, 0.5))
        portfolio = PortfolioRisk(net, dict(book), pnl, equity, peak, sent)
        if not check_order(order, portfolio, LIMITS, state, NOW):
            assert state is TradingState.ACTIVE
            sent += 1
            done = round(filled * quantity)
            loss = _oracle_worst_loss(request) * done / quantity
            book[underlying] = book.get(underlying, 0.0) + loss
            net = Greeks(net.delta + unit[0] * done, net.gamma + unit[1] * done,
                         net.vega + unit[2] * done)  # fmt: skip
            # what the engine let build stays inside every limit
            assert sum(book.values()) <= LIMITS.risk_budget + 1e-6
            assert book[underlying] <= LIMITS.max_underlying_share * LIMITS.risk_budget + 1e-6
            assert abs(net.delta) <= LIMITS.max_net_delta + 1e-6
            assert abs(net.gamma) <= LIMITS.max_net_gamma + 1e-6
            assert abs(net.vega) <= LIMITS.max_net_vega + 1e-6
            assert sent <= LIMITS.max_orders_per_hour
        pnl += move
        equity += move
        peak = max(peak, equity)
        state, _ = next_trading_state(state, PortfolioRisk(net, book, pnl, equity, peak, sent),
                                      LIMITS)  # fmt: skip
