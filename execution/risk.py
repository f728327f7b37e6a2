"""The risk engine: pure checks run before every order, and the trading state rules.

Nothing here does I/O or reads a clock: the order, its quotes, the portfolio's
figures, the limits and ``now`` are inputs, and the answer is the list of reasons
the order is refused (empty: it may go). The OMS stores every refusal with its
reason and the check's name.

Three levels, after the issue:

* **position** - contracts per structure, the structure's worst loss at expiry
  (computed here from its legs and limit price, not taken from the strategy), its
  protection (a short option without a long one further out has no worst loss: it
  is refused), and each leg's quote (present, two-sided, not crossed or locked, not
  stale, spread within the limit);
* **strategy** - the trading state, the daily loss shut-off, orders per hour, the
  signal (finite, inside the range the model saw in training);
* **portfolio** - the drawdown circuit breaker, net delta, gamma and vega after the
  order, and the share of the risk budget on one underlying.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from execution.domain import OrderRequest, OrderSide, Right
from execution.store import TradingState


@dataclass(frozen=True)
class RiskLimits:
    max_contracts_per_structure: int = 10
    max_loss_per_structure: float = 2_000.0  # dollars, at expiry, whole order
    max_relative_spread: float = 0.25  # (ask - bid) / mid, each leg ...
    max_absolute_spread: float = 0.15  # ... unless the spread is at most this (cheap wings)
    max_quote_age_seconds: float = 900.0
    daily_loss_limit: float = 5_000.0  # dollars: past it, HALTED
    max_orders_per_hour: int = 20
    max_drawdown: float = 0.10  # of peak equity: past it, HALTED
    reducing_drawdown: float = 0.05  # of peak equity: past it, REDUCING
    max_net_delta: float = 500.0  # share-equivalents
    max_net_gamma: float = 200.0  # share-equivalents per $1 move
    max_net_vega: float = 5_000.0  # dollars per vol point
    max_underlying_share: float = 0.5  # of the total worst-loss budget on one underlying
    risk_budget: float = 10_000.0  # dollars of worst loss, all open structures


@dataclass(frozen=True)
class LegQuote:
    bid: float | None
    ask: float | None
    bid_size: int
    ask_size: int
    ts_event: datetime


@dataclass(frozen=True)
class Greeks:
    """Per unit of an order, or a portfolio's net: delta and gamma in share-equivalents,
    vega in dollars per vol point."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0


@dataclass(frozen=True)
class ProposedOrder:
    request: OrderRequest
    quotes: dict[str, LegQuote]  # by contract id, one per leg
    greeks_per_unit: Greeks
    signal: float | None = None  # the prediction behind it (None: a rule, or a close)
    signal_range: tuple[float, float] | None = None  # what the model saw in training
    closes: bool = False  # reduces an open position (allowed when REDUCING)


@dataclass(frozen=True)
class PortfolioRisk:
    net: Greeks
    worst_loss_by_underlying: dict[str, float]  # open structures' worst losses, dollars
    daily_pnl: float  # dollars, realized and marked, since the session opened
    equity: float
    peak_equity: float
    orders_last_hour: int


@dataclass(frozen=True)
class Rejection:
    check: str
    reason: str


def worst_loss(request: OrderRequest) -> float:
    """The order's worst loss at expiry in dollars (positive), ``inf`` if unbounded.

    A combo's payoff at expiry is piecewise linear in the underlying's price with kinks
    at the strikes, so its minimum is at a strike, at zero, or at infinity (where the
    slope decides). Legs of several expiries have no single expiry: ``inf`` (the engine
    checks only structures it can bound)."""
    if len({leg.contract.expiry for leg in request.legs}) > 1:
        return math.inf
    price = request.limit_price or 0.0
    multiplier = request.legs[0].contract.multiplier

    def payoff(spot: float) -> float:
        total = 0.0
        for leg in request.legs:
            k = leg.contract.strike
            value = max(spot - k, 0.0) if leg.contract.right is Right.CALL else max(k - spot, 0.0)
            total += leg.side.sign * leg.ratio * value
        return total

    if len(request.legs) == 1:
        price = abs(price) * request.legs[0].side.sign  # a single leg: sold for a credit
    slope = sum(
        leg.side.sign * leg.ratio for leg in request.legs if leg.contract.right is Right.CALL
    )
    if slope < 0:
        return math.inf  # short calls not covered: the loss grows without bound
    points = [0.0, *sorted({leg.contract.strike for leg in request.legs})]
    lowest = min(payoff(s) - price for s in points)
    return max(0.0, -lowest) * multiplier * request.quantity


def unprotected_legs(request: OrderRequest) -> list[str]:
    """Short legs not covered: per right and expiry, more short than long contracts (a
    naked short call loses without bound, a naked short put down to zero). Covered
    shorts at any strikes make a vertical, a butterfly or a condor: defined risk."""
    missing = []
    groups = {(leg.contract.right, leg.contract.expiry) for leg in request.legs}
    for right, expiry in sorted(groups):
        legs = [g for g in request.legs if (g.contract.right, g.contract.expiry) == (right, expiry)]
        short = sum(g.ratio for g in legs if g.side is OrderSide.SELL)
        long = sum(g.ratio for g in legs if g.side is OrderSide.BUY)
        if short > long:
            missing += [g.contract.contract_id for g in legs if g.side is OrderSide.SELL]
    return missing


def check_order(
    order: ProposedOrder,
    portfolio: PortfolioRisk,
    limits: RiskLimits,
    state: TradingState,
    now: datetime,
) -> list[Rejection]:
    """Every reason to refuse ``order`` (empty: it passes)."""
    loss = worst_loss(order.request)
    return [
        *_strategy_checks(order, portfolio, limits, state),
        *_position_checks(order, limits, loss),
        *_quote_checks(order, limits, now),
        *([] if order.closes else _portfolio_checks(order, portfolio, limits, loss)),
    ]


def _strategy_checks(
    order: ProposedOrder, portfolio: PortfolioRisk, limits: RiskLimits, state: TradingState
) -> list[Rejection]:
    found = []
    if state is TradingState.HALTED:
        found.append(Rejection("trading_state", "trading is HALTED"))
    elif state is TradingState.REDUCING and not order.closes:
        found.append(
            Rejection("trading_state", "trading is REDUCING: only orders that close positions")
        )
    if portfolio.daily_pnl <= -limits.daily_loss_limit and not order.closes:
        found.append(Rejection("daily_loss", f"daily loss {-portfolio.daily_pnl:,.0f} reached "
                               f"the limit {limits.daily_loss_limit:,.0f}"))  # fmt: skip
    if portfolio.orders_last_hour >= limits.max_orders_per_hour:
        found.append(Rejection("orders_per_hour", f"{portfolio.orders_last_hour} orders in the "
                               f"last hour, limit {limits.max_orders_per_hour}"))  # fmt: skip
    if order.signal is not None:
        if not math.isfinite(order.signal):
            found.append(Rejection("signal", f"signal {order.signal!r} is not finite"))
        elif order.signal_range is not None:
            lo, hi = order.signal_range
            if not lo <= order.signal <= hi:
                found.append(Rejection("signal", f"signal {order.signal:.4g} outside the "
                                       f"training range [{lo:.4g}, {hi:.4g}]"))  # fmt: skip
    return found


def _position_checks(order: ProposedOrder, limits: RiskLimits, loss: float) -> list[Rejection]:
    request = order.request
    found = []
    contracts = request.quantity * max(leg.ratio for leg in request.legs)
    if contracts > limits.max_contracts_per_structure:
        found.append(Rejection("max_contracts", f"{contracts} contracts per leg, limit "
                               f"{limits.max_contracts_per_structure}"))  # fmt: skip
    if order.closes:
        return found
    for contract_id in unprotected_legs(request):
        found.append(Rejection("protection", f"short {contract_id} has no long option to "
                               "cover it (same right and expiry)"))  # fmt: skip
    if math.isinf(loss):
        found.append(Rejection("protection", "unbounded or unknown worst loss"))
    elif loss > limits.max_loss_per_structure:
        found.append(Rejection("max_loss", f"worst loss {loss:,.0f} over the limit "
                               f"{limits.max_loss_per_structure:,.0f}"))  # fmt: skip
    return found


def _portfolio_checks(
    order: ProposedOrder, portfolio: PortfolioRisk, limits: RiskLimits, loss: float
) -> list[Rejection]:
    request = order.request
    found = []
    if portfolio.peak_equity > 0:
        drawdown = 1 - portfolio.equity / portfolio.peak_equity
        if drawdown >= limits.reducing_drawdown:
            found.append(Rejection("drawdown", f"drawdown {drawdown:.1%} reached "
                                   f"{limits.reducing_drawdown:.0%}"))  # fmt: skip
    q, unit, net = request.quantity, order.greeks_per_unit, portfolio.net
    after = {
        "delta": (net.delta + unit.delta * q, limits.max_net_delta),
        "gamma": (net.gamma + unit.gamma * q, limits.max_net_gamma),
        "vega": (net.vega + unit.vega * q, limits.max_net_vega),
    }
    for name, (value, limit) in after.items():
        if not abs(value) <= limit:
            found.append(Rejection(f"net_{name}", f"net {name} {value:,.1f} after the order, "
                                   f"limit {limit:,.0f}"))  # fmt: skip
    underlying = request.underlying or request.legs[0].contract.underlying
    on_it = portfolio.worst_loss_by_underlying.get(underlying, 0.0) + loss
    total = sum(portfolio.worst_loss_by_underlying.values()) + loss
    if total > limits.risk_budget:
        found.append(Rejection("risk_budget", f"open worst loss {total:,.0f} over the budget "
                               f"{limits.risk_budget:,.0f}"))  # fmt: skip
    if on_it > limits.max_underlying_share * limits.risk_budget:
        found.append(Rejection("concentration", f"{underlying}: worst loss {on_it:,.0f} over "
                               f"{limits.max_underlying_share:.0%} of the budget"))  # fmt: skip
    return found


def _quote_checks(order: ProposedOrder, limits: RiskLimits, now: datetime) -> list[Rejection]:
    found = []
    for leg in order.request.legs:
        cid = leg.contract.contract_id
        quote = order.quotes.get(cid)
        if quote is None or quote.bid is None or quote.ask is None or quote.bid <= 0:
            found.append(Rejection("quote", f"{cid}: no two-sided quote"))
            continue
        if quote.bid > quote.ask:
            found.append(Rejection("quote", f"{cid}: crossed ({quote.bid} > {quote.ask})"))
            continue
        if quote.bid == quote.ask:
            found.append(Rejection("quote", f"{cid}: locked at {quote.bid}"))
            continue
        age = (now - quote.ts_event).total_seconds()
        if not 0 <= age <= limits.max_quote_age_seconds:
            found.append(Rejection("quote", f"{cid}: quote {age:.0f} s old"))
        mid = (quote.bid + quote.ask) / 2
        spread = (quote.ask - quote.bid) / mid
        if spread > limits.max_relative_spread and (
            quote.ask - quote.bid > limits.max_absolute_spread + 1e-9
        ):
            found.append(Rejection("spread", f"{cid}: spread {spread:.0%} of mid, limit "
                                   f"{limits.max_relative_spread:.0%}"))  # fmt: skip
        side_size = quote.ask_size if leg.side is OrderSide.BUY else quote.bid_size
        if side_size <= 0:
            found.append(Rejection("quote", f"{cid}: no size on the side we would take"))
    return found


def next_trading_state(
    state: TradingState, portfolio: PortfolioRisk, limits: RiskLimits
) -> tuple[TradingState, str]:
    """The trading state the portfolio calls for: HALTED past the daily loss limit or
    the maximum drawdown, REDUCING past the reducing drawdown; never back to ACTIVE
    by itself (``volflow resume`` does that)."""
    if state is TradingState.HALTED:
        return state, ""
    if portfolio.daily_pnl <= -limits.daily_loss_limit:
        return TradingState.HALTED, (
            f"daily loss {-portfolio.daily_pnl:,.0f} reached the limit "
            f"{limits.daily_loss_limit:,.0f}"
        )
    drawdown = 1 - portfolio.equity / portfolio.peak_equity if portfolio.peak_equity > 0 else 0
    if drawdown >= limits.max_drawdown:
        return TradingState.HALTED, f"drawdown {drawdown:.1%} reached {limits.max_drawdown:.0%}"
    if drawdown >= limits.reducing_drawdown and state is TradingState.ACTIVE:
        return TradingState.REDUCING, (
            f"drawdown {drawdown:.1%} reached {limits.reducing_drawdown:.0%}"
        )
    return state, ""
