"""Option chains of the synthetic market: listed expiries, strikes, prices and quotes.

Prices are the expected payoff under the simulated dynamics (European exercise,
continuous dividend yield; :func:`model_prices`), driven by the market state:

* The diffusive ATM variance for tenor ``tau`` is the expected average variance
  over ``tau`` (Heston mean reversion of the variance state), scaled by
  ``1 + variance_risk_premium``: implied is above realized on average.
* Smile in standardized moneyness ``z = ln(K/F) / (sigma_atm sqrt(tau))``:
  ``sigma = sigma_atm * (1 - skew * z + smile * z**2)``, bounded to [0.5, 3] x ATM.
* Jumps priced as Merton's Poisson mixture, and the variance's own randomness as
  Hull and White's convexity term: with no premium, a hedged option's return is not
  predictable from the state (``tests/data_lake/sources/test_synthetic_fairness.py``).
* The planted signal (``signal="planted"``) multiplies front-tenor IVs by
  ``exp(m_t * exp(-tau / 45d))`` where ``m_t`` is a mean-reverting mispricing
  (see :mod:`data_lake.sources.synthetic`).

Quotes straddle the model price: the half-spread grows for short-dated and
far out-of-the-money contracts; bids and asks sit on the tick grid (penny names
quote in $0.01, others in $0.05 above $3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.special import ndtr

from data_lake.calendar import ExchangeCalendar

FloatArray = NDArray[np.float64]
_NICE_STEPS = np.array([0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0])
YEAR_DAYS = 365.0


@dataclass(frozen=True)
class Listing:
    """The contracts listed on one day: parallel arrays, one entry per contract."""

    expiry: NDArray[np.datetime64]  # datetime64[D]
    settle_epoch_s: FloatArray  # settlement time (the expiry session's close), Unix seconds
    strike: FloatArray
    is_call: NDArray[np.bool_]


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + timedelta(days=offset + 14)


def listed_expiries(
    calendar: ExchangeCalendar, day: date, weeklies: int, months: int
) -> list[date]:
    """Weekly Friday expiries for ``weeklies`` weeks and monthly (third Friday) ones for
    ``months`` months; a Friday holiday moves the expiry to the session before."""
    fridays = [day + timedelta(days=(4 - day.weekday()) % 7 + 7 * k) for k in range(weeklies)]
    monthly = []
    year, month = day.year, day.month
    for _ in range(months + 1):
        monthly.append(third_friday(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    expiries = set()
    for friday in fridays + monthly:
        session = calendar.session_on_or_before(friday)
        if session.day >= day:
            expiries.add(session.day)
    return sorted(expiries)


def nice_strike_step(raw: float) -> float:
    """The smallest customary strike increment at least ``raw`` (0.5, 1, 2.5, 5, ...)."""
    idx = int(np.searchsorted(_NICE_STEPS, raw))
    return float(_NICE_STEPS[min(idx, len(_NICE_STEPS) - 1)])


def minimum_strike_step(spot: float) -> float:
    """The finest increment listed at this price: $0.50 below $25, $1 above."""
    return 0.5 if spot < 25 else 1.0


def strike_grid(
    spot: float, sigma_tau: float, z_low: float, z_high: float, per_sd: float = 20.0
) -> FloatArray:
    """Strikes from ``z_low`` to ``z_high`` standard deviations around spot, about
    ``per_sd`` per standard deviation on a customary increment (for a $450 ETF at
    17% vol: $1 strikes to about three months, $2.50-$5 beyond, as listed)."""
    step = nice_strike_step(max(spot * sigma_tau / per_sd, minimum_strike_step(spot)))
    lo = max(step, np.floor(spot * np.exp(z_low * sigma_tau) / step) * step)
    hi = np.ceil(spot * np.exp(z_high * sigma_tau) / step) * step
    return np.arange(lo, hi + step / 2, step)


def bsm_price(
    is_call: NDArray[np.bool_],
    S: FloatArray,
    K: FloatArray,
    tau: FloatArray,
    r: float,
    q: float,
    sigma: FloatArray,
) -> FloatArray:
    """Black-Scholes-Merton price with continuous dividend yield (vectorized)."""
    tau = np.maximum(tau, 1e-10)
    vol_sqrt_t = sigma * np.sqrt(tau)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * tau) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    disc_q, disc_r = np.exp(-q * tau), np.exp(-r * tau)
    call = S * disc_q * ndtr(d1) - K * disc_r * ndtr(d2)
    put = K * disc_r * ndtr(-d2) - S * disc_q * ndtr(-d1)
    return np.where(is_call, call, put)


@dataclass(frozen=True)
class SurfaceParams:
    """Parameters of the implied-volatility surface of one underlying: the dynamics
    that price it (the variance's mean reversion, its own volatility and the jumps'
    law, as the path simulates them) and the premium and smile on top."""

    kappa: float
    theta: float  # the diffusion's long-run variance
    variance_risk_premium: float
    skew: float
    smile: float
    vol_of_vol: float = 0.0
    jump_intensity: float = 0.0  # jumps per (trading) year
    jump_mean: float = 0.0  # mean log jump
    jump_sd: float = 0.0

    @property
    def jump_variance(self) -> float:
        """lambda * E[J^2] per year: the jumps' share of the log price's variance."""
        return self.jump_intensity * (self.jump_mean**2 + self.jump_sd**2)

    @property
    def mean_variance(self) -> float:
        """The variance state's long-run mean: the path adds every jump's square to
        the variance, so it reverts to ``theta + jump_variance / kappa``."""
        return self.theta + self.jump_variance / self.kappa


def integrated_variance(
    params: SurfaceParams, variance: float | FloatArray, trading_tau: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Mean and variance of the diffusion's integrated variance over ``trading_tau``
    (trading years) given today's ``variance``: for a square-root process
    ``dv = kappa (m - v) dt + xi sqrt(v) dW``, the mean is
    ``m tau + (v - m) B(tau)`` with ``B(u) = (1 - e^{-kappa u}) / kappa``, and the
    variance ``xi^2 int_0^tau E[v_s] B(tau - s)^2 ds`` (closed form below)."""
    kappa, m, xi = params.kappa, params.mean_variance, params.vol_of_vol
    tau = np.asarray(trading_tau, dtype=float)
    x = np.maximum(kappa * tau, 1e-12)
    one_minus = -np.expm1(-x)  # 1 - e^{-x}
    mean = m * tau + (variance - m) * one_minus / kappa
    # int_0^tau B(tau-s)^2 ds and int_0^tau e^{-kappa s} B(tau-s)^2 ds
    flat = (x - 2 * one_minus - 0.5 * np.expm1(-2 * x)) / kappa**3
    decay = (one_minus - x * np.exp(-x) * 2 + np.exp(-x) * one_minus) / kappa**3
    var = xi * xi * np.maximum(m * flat + (variance - m) * decay, 0.0)
    return mean, var


def atm_implied_vol(
    params: SurfaceParams,
    variance: float,
    tau: FloatArray,
    mispricing: float,
    trading_tau: FloatArray | None = None,
) -> FloatArray:
    """ATM level by tenor: the expected variance (diffusion + jumps) until expiry
    times (1 + VRP), quoted per calendar year, then the planted front-tenor mispricing
    (zero unless the planted signal is on). The quoted IV of the ATM option sits a
    little below it: its price is the expectation over the variance's own randomness
    (see :func:`model_prices`).

    The variance process runs on trading time (``trading_tau``: years of 252 sessions,
    no variance on weekends and holidays) while IVs are quoted on calendar time
    (``tau``: years of 365 days), so the implied variance is the expected integrated
    variance over ``trading_tau`` divided by ``tau``. Pricing on calendar time alone
    would let a Friday straddle lose three days of theta against one day of variance,
    every week: a predictable return the ``none`` signal must not have."""
    trading = tau if trading_tau is None else trading_tau
    diffusion, _ = integrated_variance(params, variance, trading)
    integrated = diffusion + params.jump_variance * trading
    implied_var = integrated / tau * (1 + params.variance_risk_premium)
    return np.asarray(np.sqrt(implied_var) * np.exp(mispricing * front_weight(tau)))


def front_weight(tau: FloatArray) -> FloatArray:
    """How much of the planted mispricing a tenor carries: ``exp(-tau / 45 days)``."""
    return np.asarray(np.exp(-np.asarray(tau) * YEAR_DAYS / 45.0))


MERTON_TAIL = 1e-10  # the Poisson mass of jump counts left out of a price


def model_prices(
    params: SurfaceParams,
    is_call: NDArray[np.bool_],
    spot: float | FloatArray,
    strike: FloatArray,
    tau: FloatArray,
    trading_tau: FloatArray,
    rate: float,
    dividend_yield: float,
    variance: float | FloatArray,
    mispricing: float,
) -> FloatArray:
    """Prices that are the expected payoff under the simulated dynamics (with
    ``variance_risk_premium`` 0 and no planted mispricing), so that a hedged option
    has no predictable return:

    * **Jumps** (Merton 1976): the price is the Poisson mixture over the number of
      jumps ``n`` until expiry of BSM prices with the diffusive variance plus
      ``n`` jump variances and the forward moved by ``n`` jumps and the drift that
      compensates them.
    * **The variance's randomness** (Hull and White 1987, to second order): each
      term gets ``0.5 Var[W] d2C/dW2``, ``W`` the total diffusive variance until
      expiry. This is the price of vol convexity: the ATM straddle is worth a little
      less than at the expected variance (a straddle is concave in variance), the
      wings a little more; more so when the variance is low and its relative
      randomness high. Without it, long straddles lose more at low variance: an edge
      a model finds in the fair market.
    * On top, the generator's skew and smile shape the diffusive vol
      (:func:`smile_vol`), the premium scales the diffusive variance and the jump
      intensity by ``1 + VRP``, and the planted mispricing scales both by
      ``exp(2 m_t w(tau))`` (``w`` = :func:`front_weight`)."""
    tau = np.asarray(tau, dtype=float)
    trading = np.asarray(trading_tau, dtype=float)
    calendar_tau = np.maximum(tau, 1e-10)
    diffusion, diffusion_var = integrated_variance(params, variance, trading)
    scale = (1 + params.variance_risk_premium) * np.exp(2 * mispricing * front_weight(tau))
    atm = np.sqrt(diffusion * scale / calendar_tau)
    forward = spot * np.exp((rate - dividend_yield) * tau)
    log_m = np.log(strike / forward)
    sigma = smile_vol(params, atm, log_m, np.maximum(tau, 1 / YEAR_DAYS / 24))
    w_diffusion = sigma * sigma * calendar_tau
    w_var = diffusion_var * (scale * sigma * sigma / np.maximum(atm * atm, 1e-300)) ** 2
    lam = params.jump_intensity * scale
    mu, sd = params.jump_mean, params.jump_sd
    growth = np.exp(mu + 0.5 * sd * sd)  # E[e^J]
    mean_jumps = lam * trading
    compensated = spot * np.exp(-mean_jumps * (growth - 1))
    disc_q = np.exp(-dividend_yield * tau)
    total = np.zeros_like(log_m)
    weight = np.exp(-mean_jumps)  # P(N = 0)
    left = 1.0 - weight
    n = 0
    active = np.ones(len(log_m), dtype=bool)
    while True:
        idx = np.flatnonzero(active)
        s_n = compensated[idx] * growth**n
        w_n = np.maximum(w_diffusion[idx] + n * sd * sd, 1e-16)
        t_n = calendar_tau[idx]
        price = bsm_price(
            is_call[idx], s_n, strike[idx], t_n, rate, dividend_yield, np.sqrt(w_n / t_n)
        )
        x = np.log(s_n / strike[idx]) + (rate - dividend_yield) * t_n  # ln(F_n / K)
        root = np.sqrt(w_n)
        d1 = x / root + 0.5 * root
        c_w = s_n * disc_q[idx] * np.exp(-0.5 * d1 * d1) / (2 * root * np.sqrt(2 * np.pi))
        c_ww = c_w * (x * x / (2 * w_n * w_n) - 1 / (2 * w_n) - 0.125)
        convexity = np.where(tau[idx] > 1e-10, 0.5 * w_var[idx] * c_ww, 0.0)
        total[idx] += weight[idx] * (price + np.maximum(convexity, -0.5 * price))
        n += 1
        weight = weight * mean_jumps / n
        left = left - weight
        active = left > MERTON_TAIL
        if not active.any():
            return total


def smile_vol(
    params: SurfaceParams, atm: FloatArray, log_moneyness: FloatArray, tau: FloatArray
) -> FloatArray:
    z = log_moneyness / (atm * np.sqrt(np.maximum(tau, 1e-6)))
    shape = np.clip(1 - params.skew * z + params.smile * z * z, 0.5, 3.0)
    return np.asarray(atm * shape)


def quote_prices(
    mid: FloatArray, intrinsic: FloatArray, abs_z: FloatArray, dte_days: FloatArray, penny: bool
) -> tuple[FloatArray, FloatArray]:
    """Bid and ask on the tick grid around ``mid``.

    The half-spread is a fraction of the time value that grows with distance from
    the money and with shortness of expiry, plus a small fraction of intrinsic
    value (deep in-the-money contracts quote like the underlying plus a cheap option).
    """
    tick = np.where(penny | (mid < 3.0), 0.01, 0.05)
    time_value = np.maximum(mid - intrinsic, 0.0)
    relative = (0.01 + 0.01 * abs_z) * (1 + 2 / np.sqrt(dte_days + 1))
    half = 0.5 * tick + relative * time_value + 0.0005 * intrinsic
    bid = np.maximum(np.floor(np.round((mid - half) / tick, 6)) * tick, 0.0)
    ask = np.ceil(np.round((mid + half) / tick, 6)) * tick
    ask = np.maximum(ask, bid + tick)
    return np.round(bid, 2), np.round(ask, 2)


def occ_symbol_expr(root: str, right: pl.Expr | None = None) -> pl.Expr:
    """OCC/OSI symbols without root padding, from ``expiry``, ``right`` ("C"/"P") and
    ``strike``: ROOT + YYMMDD + C/P + strike x 1000 as 8 digits (SPY240119C00450000)."""
    return pl.concat_str(
        pl.lit(root),
        pl.col("expiry").dt.strftime("%y%m%d"),
        pl.col("right") if right is None else right,
        (pl.col("strike") * 1000).round().cast(pl.Int64).cast(pl.String).str.zfill(8),
    )


def listing_for_day(
    calendar: ExchangeCalendar,
    day: date,
    spot: float,
    atm_vol: float,
    weeklies: int,
    months: int,
    z_range: tuple[float, float],
    strikes_per_sd: float = 20.0,
) -> Listing:
    """The contracts listed on ``day``: strikes are set from the day's opening spot."""
    expiries, settles, strikes, calls = [], [], [], []
    for expiry in listed_expiries(calendar, day, weeklies, months):
        settle = calendar.session_on_or_before(expiry).close.timestamp()
        tau = max((expiry - day).days, 1) / YEAR_DAYS
        grid = strike_grid(spot, atm_vol * np.sqrt(tau), *z_range, per_sd=strikes_per_sd)
        count = 2 * len(grid)
        expiries.append(np.full(count, np.datetime64(expiry, "D")))
        settles.append(np.full(count, settle))
        strikes.append(np.concatenate([grid, grid]))
        calls.append(np.repeat([True, False], len(grid)))
    if not strikes:
        return Listing(np.empty(0, "datetime64[D]"), np.empty(0), np.empty(0), np.empty(0, bool))
    return Listing(
        expiry=np.concatenate(expiries),
        settle_epoch_s=np.concatenate(settles),
        strike=np.concatenate(strikes),
        is_call=np.concatenate(calls),
    )
