"""American-exercise implied volatility and Greeks: Barone-Adesi & Whaley, de-Americanized.

``american_implied_vol_and_greeks(frame)`` has exactly the contract of
``features.greeks.implied_vol_and_greeks``: the same input columns (``price, spot, strike,
t_years, rate, div_yield, right``), the same outputs (``iv, delta, gamma, vega, theta,
rho, solver_status``, the same units and statuses), rows in the same order; but the
prices are read as American (US single-stock options), not European.

Model: the quadratic approximation of Barone-Adesi & Whaley (1987), with continuous
dividend yield q and cost of carry b = r - q: the European value plus an early-exercise
premium A (S / S*)^Q, where the critical price S* solves one scalar equation (Newton,
from Haug's seed). A call with q <= 0 and a put with r <= 0 are never exercised early,
so those rows are exactly the European ones of ``implied_vol_and_greeks`` (BAW's rule;
with r < 0 a call can in truth be worth exercising early, which BAW does not see).

Accuracy: BAW is an approximation, typically good to a few cents; its error grows with
maturity. Against a converged binomial tree on a 30%-volatility grid (spot 100, strikes
80-120, q > 0; tests/features/test_american.py) it is within max(3 cents, 1% of the
price) up to six months (worst: 8 cents on a 21.46 put), and within max(3 cents, 2.5%)
up to two years (worst: 15 cents), the largest errors on long-dated in-the-money puts
(and out-of-the-money calls when q > r); it mostly overprices long-dated options.

Why BAW rather than a tree: it is a closed form plus a one-dimensional Newton solve,
about a microsecond per price, so a whole chain, and the dozens of repricings an implied
volatility and its Greeks need, takes a fraction of a second on all cores, where a tree
accurate to a cent costs milliseconds per price.

Implied volatility ("de-Americanization"): the fixed point
``sigma <- EuropeanIV(price - (BAW(sigma) - BSM(sigma)))`` from the European IV of the
price, each European step exact by Let's Be Rational, until |d sigma| < 1e-12; if it does
not converge, Brent's method on BAW(sigma) - price over [1e-4, 5] (a price above BAW at
sigma = 5 gets ``above_max_price``, one at or below BAW at 1e-4 ``no_time_value``). The
Greeks are finite differences of the BAW price at the solved volatility: central in the
spot (relative bump 1e-4), the volatility (relative 1e-4) and the rate (1e-4); theta is
price(T - 1 day) - price(T), or price(T) - price(T + 1 day) in the last day. The lower
bound for an American price is the larger of the intrinsic value on the spot and the
European bound; a price on it gets ``no_time_value`` (deep in the money: in the exercise
region), one below it ``below_intrinsic``.

Reference: G. Barone-Adesi and R. E. Whaley, "Efficient Analytic Approximation of
American Option Values", Journal of Finance 42(2) (1987) 301-320; the critical-price
iteration as in E. G. Haug, "The Complete Guide to Option Pricing Formulas" (McGraw-Hill).
"""

from __future__ import annotations

import polars as pl

from features.greeks import solve_frame
from features.kernels import price_all_american


def american_implied_vol_and_greeks(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``iv, delta, gamma, vega, theta, rho, solver_status`` added, the
    prices read as American options (Barone-Adesi & Whaley)."""
    return solve_frame(frame, price_all_american, "american_implied_vol_and_greeks")
