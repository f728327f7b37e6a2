"""The synthetic market's state: underlying profiles, settings and the price path.

Heston-style stochastic variance with correlated (leverage) shocks and Poisson
jumps, simulated on the intraday grid of every session; see
:mod:`data_lake.sources.synthetic` for the whole model and its guarantees.
"""

from __future__ import annotations

import itertools
import math
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

import numpy as np

from data_lake.calendar import ExchangeCalendar, Session, intraday_grid
from data_lake.errors import ConfigError
from data_lake.sources.synthetic_chain import SurfaceParams

SOURCE_NAME = "synthetic"
# Bumped when the same seed gives other prices or paths: kept benchmark markets built
# by an older generator are not reused (benchmarks/markets.py names them with it).
# 2: prices are the model's expected payoffs (Merton jumps, vol convexity), floor 1e-4.
GENERATOR_VERSION = 2
ANCHOR_SESSION = date(2000, 1, 3)  # every synthetic path starts here, whatever is asked
Signal = Literal["none", "planted"]
TRADING_DAYS = 252.0
OVERNIGHT_SHARE = 0.2
REGULAR_SESSION_SECONDS = 6.5 * 3600
# The variance's floor (1% vol): low enough that the path rarely reaches it. A floor
# the pricing does not know is a reflecting barrier, an upward drift of the variance
# near it: at 0.0025 (5% vol), where a square-root process with these parameters
# spends several percent of its time, long straddles earned a predictable return
# in the low-variance states of the fair market.
VARIANCE_FLOOR = 1e-4


@dataclass(frozen=True)
class UnderlyingProfile:
    """Dynamics and listing conventions of one synthetic underlying."""

    spot: float  # price at the anchor session, 2000-01-03
    vol: float  # long-run volatility (sqrt of the variance mean)
    kappa: float = 4.0  # variance mean reversion per year
    vol_of_vol: float = 0.45
    rho: float = -0.7  # price/variance shock correlation (leverage effect)
    drift: float = 0.06
    jump_intensity: float = 1.5  # jumps per year
    jump_mean: float = -0.025
    jump_sd: float = 0.035
    dividend_yield: float = 0.015
    skew: float = 0.12
    smile: float = 0.02
    variance_risk_premium: float = 0.3
    penny: bool = True  # all strikes quote in $0.01
    weeklies: int = 5
    # European exercise: the chain is priced with Black-Scholes-Merton, so labelling it
    # American would quote deep in-the-money puts below intrinsic value.
    exercise_style: str = "european"
    liquidity: float = 1.0

    def surface(self) -> SurfaceParams:
        return SurfaceParams(
            kappa=self.kappa,
            theta=self.vol**2,
            variance_risk_premium=self.variance_risk_premium,
            skew=self.skew,
            smile=self.smile,
            vol_of_vol=self.vol_of_vol,
            jump_intensity=self.jump_intensity,
            jump_mean=self.jump_mean,
            jump_sd=self.jump_sd,
        )


DEFAULT_UNIVERSE: dict[str, UnderlyingProfile] = {
    "SPY": UnderlyingProfile(spot=145.0, vol=0.17, dividend_yield=0.013, liquidity=3.0),
    "QQQ": UnderlyingProfile(spot=95.0, vol=0.22, dividend_yield=0.006, liquidity=2.0),
    "IWM": UnderlyingProfile(spot=50.0, vol=0.22, dividend_yield=0.012, liquidity=1.5),
    "DIA": UnderlyingProfile(spot=115.0, vol=0.16, dividend_yield=0.018, weeklies=3),
    "AAPL": UnderlyingProfile(spot=25.0, vol=0.28, dividend_yield=0.005, skew=0.08, smile=0.03),
    "MSFT": UnderlyingProfile(spot=55.0, vol=0.25, dividend_yield=0.008, skew=0.08, smile=0.03),
    "AMZN": UnderlyingProfile(spot=40.0, vol=0.33, dividend_yield=0.0, skew=0.07, smile=0.03),
    "NVDA": UnderlyingProfile(spot=10.0, vol=0.45, dividend_yield=0.0005, skew=0.06, smile=0.04),
    "TSLA": UnderlyingProfile(spot=20.0, vol=0.55, dividend_yield=0.0, skew=0.05, smile=0.04),
    "XYZ": UnderlyingProfile(
        spot=40.0, vol=0.35, dividend_yield=0.02, penny=False, weeklies=0, liquidity=0.3
    ),
}


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that shapes the synthetic market (all of it deterministic by seed)."""

    seed: int = 7
    signal: Signal = "none"
    intraday: bool = False
    rate: float = 0.04
    expiry_months: int = 12
    strike_range_sd: tuple[float, float] = (-3.5, 2.5)
    strikes_per_sd: float = 20.0  # chain density; lower it for smaller, faster test markets
    planted_sd: float = 0.06
    planted_phi: float = 0.8
    dirt_rate: float = 0.0  # fraction of quote rows made bad on purpose (see _with_dirt)
    # overrides every underlying's variance risk premium when set; 0 prices options fair
    # (implied variance = expected variance), the edge-free world of the model tests
    variance_risk_premium: float | None = None
    universe: dict[str, UnderlyingProfile] = field(default_factory=lambda: dict(DEFAULT_UNIVERSE))

    def profile(self, underlying: str) -> UnderlyingProfile:
        try:
            profile = self.universe[underlying]
        except KeyError:
            known = ", ".join(sorted(self.universe))
            raise ConfigError(
                f"unknown underlying {underlying!r} for the synthetic source; known: {known} "
                "(add more under synthetic.universe in volflow.yaml)"
            ) from None
        if self.variance_risk_premium is not None:
            profile = replace(profile, variance_risk_premium=self.variance_risk_premium)
        return profile


@dataclass
class MarketState:
    log_spot: float
    variance: float
    mispricing: float


@dataclass(frozen=True)
class SimulatedDay:
    session: Session
    grid: list[datetime]
    spots: list[float]
    variances: list[float]
    mispricing: float


@dataclass(frozen=True)
class TradingClock:
    """The clock the variance process runs on: trading years (252 sessions a year) at
    every session's close. A session carries ``OVERNIGHT_SHARE`` of a day's variance
    at its open and the rest spread over its hours (an early close carries less), as
    ``_simulate_day`` steps; weekends and holidays carry none."""

    opens_s: np.ndarray  # session opens, Unix seconds
    closes_s: np.ndarray  # session closes, Unix seconds
    at_close: np.ndarray  # trading years elapsed at each close, from the table's start

    @classmethod
    def of(cls, calendar: ExchangeCalendar) -> TradingClock:
        with _CLOCKS_LOCK:
            clock = _CLOCKS.get(calendar.name)
            if clock is None or len(clock.closes_s) != len(calendar.days):
                opens = np.array([o.timestamp() for o in calendar.opens])
                closes = np.array([c.timestamp() for c in calendar.closes])
                day = OVERNIGHT_SHARE + (1 - OVERNIGHT_SHARE) * (closes - opens) / (
                    REGULAR_SESSION_SECONDS
                )
                clock = cls(opens, closes, np.cumsum(day) / TRADING_DAYS)
                _CLOCKS[calendar.name] = clock
            return clock

    def now(self, ts_s: float) -> float:
        """Trading years elapsed at ``ts_s`` (constant outside sessions)."""
        i = int(np.searchsorted(self.closes_s, ts_s, side="left"))
        before = float(self.at_close[i - 1]) if i > 0 else 0.0
        if i >= len(self.closes_s) or ts_s < self.opens_s[i]:
            return before if i < len(self.closes_s) else float(self.at_close[-1])
        session = (ts_s - self.opens_s[i]) / REGULAR_SESSION_SECONDS
        return before + (OVERNIGHT_SHARE + (1 - OVERNIGHT_SHARE) * session) / TRADING_DAYS

    def at(self, ts_s: np.ndarray) -> np.ndarray:
        """``now`` of many times at once (Unix seconds)."""
        ts = np.asarray(ts_s, dtype=float)
        i = np.searchsorted(self.closes_s, ts, side="left")
        inside = i < len(self.closes_s)
        k = np.minimum(i, len(self.closes_s) - 1)
        before = np.where(i > 0, self.at_close[np.maximum(i - 1, 0)], 0.0)
        session = (ts - self.opens_s[k]) / REGULAR_SESSION_SECONDS
        during = before + (OVERNIGHT_SHARE + (1 - OVERNIGHT_SHARE) * session) / TRADING_DAYS
        value = np.where(inside & (ts >= self.opens_s[k]), during, before)
        return np.where(inside, value, self.at_close[-1])

    def years_until(self, ts_s: float, settle_s: np.ndarray) -> np.ndarray:
        """Trading years from ``ts_s`` to each settlement (a session close)."""
        k = np.searchsorted(self.closes_s, settle_s, side="left")
        k = np.minimum(k, len(self.closes_s) - 1)
        return np.maximum(self.at_close[k] - self.now(ts_s), 0.0)


_CLOCKS: dict[str, TradingClock] = {}
_CLOCKS_LOCK = threading.Lock()


def stream_seed(seed: int, underlying: str, day: date, stream: int) -> list[int]:
    return [seed, zlib.crc32(underlying.encode()), day.toordinal(), stream]


def _step_fractions(grid: list[datetime]) -> list[float]:
    """Year fractions of trading time: the overnight step, then each intraday segment."""
    day_years = 1.0 / TRADING_DAYS
    fractions = [OVERNIGHT_SHARE * day_years]
    for a, b in itertools.pairwise(grid):
        share = (b - a).total_seconds() / REGULAR_SESSION_SECONDS
        fractions.append((1 - OVERNIGHT_SHARE) * day_years * share)
    return fractions


def _simulate_day(
    state: MarketState,
    p: UnderlyingProfile,
    config: SyntheticConfig,
    session: Session,
    rng: np.random.Generator,
) -> SimulatedDay:
    grid = intraday_grid(session)
    fractions = _step_fractions(grid)
    n = len(fractions)
    shocks = rng.standard_normal((n, 2))
    jump_counts = rng.poisson(p.jump_intensity * np.asarray(fractions))
    jump_noise = rng.standard_normal(n)
    mis_noise = float(rng.standard_normal())
    theta, kappa = p.vol**2, p.kappa
    jump_comp = p.jump_intensity * (math.exp(p.jump_mean + 0.5 * p.jump_sd**2) - 1)
    log_s, v = state.log_spot, state.variance
    spots, variances = [], []
    for i, dt in enumerate(fractions):
        z_s = shocks[i, 0]
        z_v = p.rho * z_s + math.sqrt(1 - p.rho**2) * shocks[i, 1]
        k = int(jump_counts[i])
        jump = k * p.jump_mean + math.sqrt(k) * p.jump_sd * jump_noise[i] if k else 0.0
        drift = (p.drift - p.dividend_yield - 0.5 * v - jump_comp) * dt
        log_s += drift + math.sqrt(v * dt) * z_s + jump
        v = v + kappa * (theta - v) * dt + p.vol_of_vol * math.sqrt(v * dt) * z_v + jump * jump
        v = min(max(v, VARIANCE_FLOOR), 4.0)
        spots.append(math.exp(log_s))
        variances.append(v)
    phi = config.planted_phi
    state.mispricing = (
        phi * state.mispricing + config.planted_sd * math.sqrt(1 - phi * phi) * mis_noise
    )
    state.log_spot, state.variance = log_s, v
    return SimulatedDay(session, grid, spots, variances, state.mispricing)


# Market state at the first session of each month, per path: a resumed path is
# bit-identical to a full one (each day draws from its own RNG stream), so later
# calls start from the nearest checkpoint instead of the anchor session.
_CHECKPOINTS: dict[tuple[object, ...], dict[date, tuple[float, float, float]]] = {}
_CHECKPOINTS_LOCK = threading.Lock()


def _path_key(underlying: str, config: SyntheticConfig, calendar_name: str) -> tuple[object, ...]:
    profile = replace(config.profile(underlying), variance_risk_premium=0.0)  # prices only
    return (underlying, config.seed, profile, config.planted_sd, config.planted_phi, calendar_name)


def simulate_path(
    underlying: str,
    end: date,
    config: SyntheticConfig,
    calendar: ExchangeCalendar,
    start: date | None = None,
) -> Iterator[SimulatedDay]:
    """The path from the anchor session to ``end``; with ``start``, it may begin at any
    session on or before ``start`` (resuming from a cached monthly checkpoint)."""
    p = config.profile(underlying)
    key = _path_key(underlying, config, calendar.name)
    with _CHECKPOINTS_LOCK:
        checkpoints = _CHECKPOINTS.setdefault(key, {})
        usable = [d for d in checkpoints if start is not None and d <= start]
        resume = max(usable) if usable else ANCHOR_SESSION
        log_spot, variance, mispricing = checkpoints.get(resume, (math.log(p.spot), p.vol**2, 0.0))
    state = MarketState(log_spot, variance, mispricing)
    previous_month = None
    for session in calendar.sessions(resume, end):
        month = (session.day.year, session.day.month)
        if month != previous_month:
            with _CHECKPOINTS_LOCK:
                checkpoints[session.day] = (state.log_spot, state.variance, state.mispricing)
            previous_month = month
        rng = np.random.default_rng(stream_seed(config.seed, underlying, session.day, 0))
        yield _simulate_day(state, p, config, session, rng)
