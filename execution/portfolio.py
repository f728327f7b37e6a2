"""The portfolio as the risk engine sees it: net Greeks, worst loss per underlying,
equity, the day's P&L and the peak, from the store's ledger and the latest marks.

Equity is ``capital`` plus the cash of every fill (premium paid or received, less
commissions), plus open contracts at their mid (their average price where no quote
is known), plus expired contracts at intrinsic value against the underlying's close.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from data_lake.calendar import exchange_calendar, trading_date
from execution.domain import (
    ClientOrderId,
    OrderLeg,
    OrderRequest,
    OrderSide,
    OrderType,
    TimeInForce,
)
from execution.ledger import (
    Holding,
    equity_marks,
    fill_rows,
    holdings,
    is_expired,
    record_equity,
)
from execution.paper import intrinsic_value
from execution.risk import Greeks, PortfolioRisk, worst_loss
from execution.store import OrderStore

# per contract id: (mid per share, delta, gamma, vega per vol point), per share/contract
Marks = dict[str, tuple[float | None, float | None, float | None, float | None]]


@dataclass(frozen=True)
class Valuation:
    cash: float
    equity: float
    net: Greeks
    worst_loss_by_underlying: dict[str, float]


def held_worst_loss(held: list[Holding], now: datetime) -> float:
    """The worst loss at expiry of what is held on one underlying, from its cost: the
    holdings as one combo bought at their net open price (``inf`` if unbounded or of
    several expiries)."""
    if not held:
        return 0.0
    legs = tuple(
        OrderLeg(h.contract, OrderSide.BUY if h.quantity > 0 else OrderSide.SELL, abs(h.quantity))
        for h in held
    )
    cost = sum(h.quantity * h.avg_price for h in held)
    probe = OrderRequest(ClientOrderId("held"), legs, 1, OrderType.LIMIT, round(cost, 6),
                         TimeInForce.DAY, now)  # fmt: skip
    return worst_loss(probe)


def value(
    store: OrderStore, capital: float, marks: Marks, now: datetime,
    close_price: Callable[[str, date], float | None],
) -> Valuation:  # fmt: skip
    cash = capital
    for row in fill_rows(store):
        mult = row["contract"].multiplier
        cash -= OrderSide(row["side"]).sign * row["quantity"] * row["price"] * mult
        cash -= row["commission"]
    equity = cash
    delta = gamma = vega = 0.0
    by_underlying: dict[str, list[Holding]] = {}
    for h in holdings(store, now, include_expired=True):
        mult = h.contract.multiplier
        if is_expired(h.contract, now):
            spot = close_price(h.contract.underlying, h.contract.expiry)
            price = intrinsic_value(h.contract, spot) if spot is not None else h.avg_price
            equity += h.quantity * price * mult
            continue
        mid, d, g, v = marks.get(h.contract.contract_id, (None, None, None, None))
        equity += h.quantity * (mid if mid is not None else h.avg_price) * mult
        delta += h.quantity * mult * (d or 0.0)
        gamma += h.quantity * mult * (g or 0.0)
        vega += h.quantity * mult * (v or 0.0)
        by_underlying.setdefault(h.contract.underlying, []).append(h)
    losses = {u: held_worst_loss(hs, now) for u, hs in by_underlying.items()}
    return Valuation(cash, equity, Greeks(delta, gamma, vega), losses)


def portfolio_risk(
    store: OrderStore, valuation: Valuation, now: datetime, orders_last_hour: int
) -> PortfolioRisk:
    """The risk engine's view, after recording this valuation as an equity mark."""
    record_equity(store, now, valuation.equity, valuation.cash)
    marks = equity_marks(store)
    session_open = exchange_calendar().session_on_or_before(trading_date(now)).open
    before = [m["equity"] for m in marks if m["ts"] < session_open]
    today = [m["equity"] for m in marks if m["ts"] >= session_open]
    start = before[-1] if before else (today[0] if today else valuation.equity)
    peak = max(m["equity"] for m in marks)
    return PortfolioRisk(
        net=valuation.net, worst_loss_by_underlying=valuation.worst_loss_by_underlying,
        daily_pnl=valuation.equity - start, equity=valuation.equity, peak_equity=peak,
        orders_last_hour=orders_last_hour,
    )  # fmt: skip
