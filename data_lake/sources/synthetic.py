"""The embedded default source: a seeded synthetic options market.

**Underlying.** Heston-style stochastic variance with correlated (leverage) shocks
and Poisson jumps in price, simulated on an intraday grid (the open, each full
hour, the close) of every XNYS session. Trading time: a session is 1/252 year,
the overnight step carries 20% of a day's variance. Every underlying's path is
anchored at the session of 2000-01-03 (``ANCHOR_SESSION``) and each day draws from its
own RNG stream ``(seed, underlying, day)``, so a day's data are the same whatever
range is asked for and whichever other underlyings are generated: backfills in
chunks equal one long backfill. Daily and intraday runs share the path and the
prices (the daily snapshot is the intraday close); quote sizes and last trades
are drawn per snapshot, so those differ between the two.

**Chains.** See :mod:`data_lake.sources.synthetic_chain`: weekly and monthly
expiries, strikes around spot, prices that are the expected payoff under the
simulated dynamics (Merton's mixture over the jumps, Hull and White's convexity
term for the variance's randomness) off a diffusive vol surface whose ATM level is
the expected average variance plus a variance risk premium. Contracts are
European-exercise, PM-settled, multiplier 100.

**Signal switch.**

* ``none``: option prices are the model's fair prices times a constant variance risk
  premium (default 0.3; ``variance_risk_premium`` overrides it for every underlying,
  ``--vrp`` on the CLI). With ``--vrp 0`` no option return is predictable: implied
  variance is the expected variance over the trading time left (the variance process
  runs on sessions, so the clock is ``TradingClock``: a weekend carries no variance
  and no predictable theta), and delta-hedged straddle returns have no predictable
  component (``tests/data_lake/sources/test_synthetic_fairness.py`` on the prices,
  ``tests/models/test_edge.py`` through the pipeline). With a premium, short straddles earn it
  on average. Constant-maturity IV still mean-reverts with the variance state, as in
  real markets; that is priced, not an edge.
* ``planted``: a mispricing ``m_t`` follows an AR(1) per underlying with daily
  persistence ``planted_phi`` (default 0.8, half-life ~3 sessions) and stationary
  standard deviation ``planted_sd`` (default 0.06); it multiplies front-tenor IVs
  by ``exp(m_t * exp(-tau / 45 days))``. Realized variance does not see it, so
  IVs revert toward fair value as ``m_t`` decays: future IV changes (and
  delta-hedged straddle returns) are weakly predictable from today's term
  structure. The same random draws are used in both modes; only the prices differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from data_lake.calendar import ExchangeCalendar, Session, exchange_calendar, intraday_grid
from data_lake.errors import ConfigError
from data_lake.schemas import OPTION_QUOTES, SYNTHETIC_TRUTH, UNDERLYING_BARS
from data_lake.sources.base import SourceBatch
from data_lake.sources.synthetic_chain import (
    YEAR_DAYS,
    atm_implied_vol,
    listing_for_day,
    model_prices,
    occ_symbol_expr,
    quote_prices,
)
from data_lake.sources.synthetic_market import (
    DEFAULT_UNIVERSE,
    SOURCE_NAME,
    TRADING_DAYS,
    Signal,
    SimulatedDay,
    SyntheticConfig,
    TradingClock,
    UnderlyingProfile,
    simulate_path,
    stream_seed,
)

__all__ = [
    "DEFAULT_UNIVERSE",
    "SOURCE_NAME",
    "Signal",
    "SyntheticConfig",
    "TradingClock",
    "UnderlyingProfile",
    "generate",
    "latest_snapshot",
    "simulate_path",
    "snapshot_times",
]


def snapshot_times(session: Session, intraday: bool) -> list[datetime]:
    """When chains are published: every hour mark and the close, or the close only."""
    grid = intraday_grid(session)
    return grid[1:] if intraday else [grid[-1]]


def _chain_frame(
    underlying: str, sim: SimulatedDay, config: SyntheticConfig, calendar: ExchangeCalendar
) -> pl.DataFrame:
    """All option quotes of one day (one snapshot at the close, or hourly if intraday)."""
    p = config.profile(underlying)
    surface = p.surface()
    mispricing = sim.mispricing if config.signal == "planted" else 0.0
    # strikes are listed off the fair 30-day vol, so both signal modes list the same contracts
    open_atm = float(atm_implied_vol(surface, sim.variances[0], np.array([30 / YEAR_DAYS]), 0.0)[0])
    listing = listing_for_day(
        calendar,
        sim.session.day,
        sim.spots[0],
        open_atm,
        p.weeklies,
        config.expiry_months,
        config.strike_range_sd,
        config.strikes_per_sd,
    )
    published = set(snapshot_times(sim.session, config.intraday))
    snaps = [i for i, ts in enumerate(sim.grid) if ts in published]
    rng = np.random.default_rng(stream_seed(config.seed, underlying, sim.session.day, 1))
    n = len(listing.strike)
    settle_s = listing.settle_epoch_s
    day_vol_mean = p.liquidity * 400 * float(rng.lognormal(0, 0.3))
    dte_open = (settle_s - sim.grid[0].timestamp()) / 86400.0
    log_m0 = np.log(listing.strike / sim.spots[0])
    z0 = np.abs(log_m0) / (open_atm * np.sqrt(np.maximum(dte_open, 1) / YEAR_DAYS))
    activity = np.exp(-0.4 * z0 * z0) / (1 + dte_open / 20)
    day_volume = rng.poisson(day_vol_mean * activity)
    open_interest = np.round(
        p.liquidity * 4000 * np.exp(-0.3 * z0 * z0) / (1 + dte_open / 60) * rng.lognormal(0, 0.5, n)
    ).astype(np.int64)
    session_seconds = (sim.grid[-1] - sim.grid[0]).total_seconds()
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "bid",
            "ask",
            "last",
            "volume",
            "underlying_price",
            "ts_event",
            "bid_size",
            "ask_size",
        )
    }
    size_scale = max(1, round(p.liquidity * 5))
    clock = TradingClock.of(calendar)
    for i in snaps:
        ts, spot, var = sim.grid[i], sim.spots[i], sim.variances[i]
        tau = np.maximum(settle_s - ts.timestamp(), 0.0) / (YEAR_DAYS * 86400)
        tau_floor = np.maximum(tau, 1 / YEAR_DAYS / 24)
        forward = spot * np.exp((config.rate - p.dividend_yield) * tau)
        trading_tau = np.maximum(clock.years_until(ts.timestamp(), settle_s), 1 / TRADING_DAYS / 24)
        atm = atm_implied_vol(surface, var, tau_floor, mispricing, trading_tau)
        log_m = np.log(listing.strike / forward)
        spot_arr = np.full(n, spot)
        mid = model_prices(
            surface, listing.is_call, spot, listing.strike, tau, trading_tau,
            config.rate, p.dividend_yield, var, mispricing,
        )  # fmt: skip
        abs_z = np.abs(log_m) / (atm * np.sqrt(np.maximum(tau, 1 / YEAR_DAYS)))
        intrinsic = np.maximum(
            np.where(listing.is_call, spot - listing.strike, listing.strike - spot), 0.0
        )
        bid, ask = quote_prices(mid, intrinsic, abs_z, tau * YEAR_DAYS, p.penny)
        volume = np.floor(day_volume * (ts - sim.grid[0]).total_seconds() / session_seconds)
        noise = rng.uniform(-0.5, 0.5, n)
        cols["bid"].append(bid)
        cols["ask"].append(ask)
        cols["last"].append(
            np.where(volume > 0, np.round(np.maximum(mid + (ask - bid) * noise, 0.01), 2), np.nan)
        )
        cols["volume"].append(volume.astype(np.int64))
        cols["underlying_price"].append(np.round(spot_arr, 4))
        cols["ts_event"].append(np.full(n, np.datetime64(ts.replace(tzinfo=None), "us")))
        cols["bid_size"].append(rng.integers(1, 100, n) * size_scale)
        cols["ask_size"].append(rng.integers(1, 100, n) * size_scale)
    reps = len(cols["bid"])
    frame = pl.DataFrame(
        {
            "expiry": np.tile(listing.expiry, reps),
            "strike": np.tile(listing.strike, reps),
            "is_call": np.tile(listing.is_call, reps),
            "open_interest": np.tile(open_interest, reps),
            **{k: np.concatenate(v) for k, v in cols.items()},
        },
        nan_to_null=True,
    )
    right = pl.when(pl.col("is_call")).then(pl.lit("C")).otherwise(pl.lit("P"))
    ts_event = pl.col("ts_event").dt.replace_time_zone("UTC")
    return frame.select(
        pl.lit(underlying).alias("underlying"),
        pl.lit(sim.session.day).alias("date"),
        occ_symbol_expr(underlying, right).alias("contract_id"),
        "expiry",
        "strike",
        right.alias("right"),
        pl.lit(p.exercise_style).alias("exercise_style"),
        pl.lit("PM").alias("settlement"),
        pl.lit(100.0).alias("multiplier"),
        "bid",
        "ask",
        "bid_size",
        "ask_size",
        "last",
        "volume",
        "open_interest",
        "underlying_price",
        ts_event.alias("ts_event"),
        ts_event.alias("ts_init"),
        pl.lit(SOURCE_NAME).alias("source"),
    )


def _bar_frame(underlying: str, sim: SimulatedDay, config: SyntheticConfig) -> pl.DataFrame:
    """The day's bar: open at the open, close at the close, high/low over the path."""
    p = config.profile(underlying)
    rng = np.random.default_rng(stream_seed(config.seed, underlying, sim.session.day, 2))
    day_sd = math.sqrt(sim.variances[-1] / TRADING_DAYS)
    excursion = np.abs(rng.standard_normal(2)) * 0.15 * day_sd
    high = max(sim.spots) * math.exp(excursion[0])
    low = min(sim.spots) * math.exp(-excursion[1])
    day_return = abs(math.log(sim.spots[-1] / sim.spots[0]))
    volume = int(p.liquidity * 2e7 * rng.lognormal(0, 0.25) * (1 + 20 * day_return))
    close_ts = sim.session.close
    row = {
        "underlying": underlying,
        "date": sim.session.day,
        "ts_event": close_ts,
        "bar_seconds": 86400,
        "open": round(sim.spots[0], 4),
        "high": round(high, 4),
        "low": round(low, 4),
        "close": round(sim.spots[-1], 4),
        "volume": volume,
        "ts_init": close_ts,
        "source": SOURCE_NAME,
    }
    return pl.from_dicts([row], schema=UNDERLYING_BARS.schema)


DIRT_KINDS = (
    "crossed",
    "negative_bid",
    "no_underlying_price",
    "infinite_ask",
    "duplicate",
    "conflict",
)


def _with_dirt(
    quotes: pl.DataFrame, config: SyntheticConfig, underlying: str, day: date
) -> pl.DataFrame:
    """Make ``dirt_rate`` of the rows bad the way real feeds are, deterministically by seed:
    crossed quotes, negative bids, a missing underlying price, an infinite ask, exact
    and conflicting duplicate rows. The write-time checks must quarantine all of them."""
    rng = np.random.default_rng(stream_seed(config.seed, underlying, day, 3))
    count = int(rng.binomial(quotes.height, config.dirt_rate))
    if count == 0:
        return quotes
    rows = rng.choice(quotes.height, size=count, replace=False)
    kinds = rng.integers(0, len(DIRT_KINDS), count)
    picked = quotes[rows.tolist()].with_columns(pl.Series("_kind", kinds))
    kind = pl.col("_kind")
    damaged = picked.with_columns(
        pl.when(kind == 0)
        .then(pl.col("ask") + 0.05)
        .when(kind == 1)
        .then(-pl.col("bid") - 0.01)
        .when(kind == 5)
        .then(pl.col("bid") + 0.01)
        .otherwise(pl.col("bid"))
        .alias("bid"),
        pl.when(kind == 3).then(float("inf")).otherwise(pl.col("ask")).alias("ask"),
        pl.when(kind == 2)
        .then(None)
        .otherwise(pl.col("underlying_price"))
        .alias("underlying_price"),
    )
    in_place = damaged.filter(kind <= 3).drop("_kind")
    extra = damaged.filter(kind >= 4).drop("_kind")
    clean = (
        quotes.with_row_index("_row")
        .filter(~pl.col("_row").is_in(pl.Series(rows[kinds <= 3]).cast(pl.UInt32).implode()))
        .drop("_row")
    )
    return pl.concat([clean, in_place, extra])


def generate(
    underlying: str,
    start: date,
    end: date,
    config: SyntheticConfig,
    calendar: ExchangeCalendar | None = None,
    skip_day: Callable[[date], bool] | None = None,
) -> Iterator[SourceBatch]:
    """Stream one batch (quotes and the daily bar) per session in ``start..end``.

    Days for which ``skip_day`` is true are simulated (the path must go through
    them) but not priced or yielded: resumable backfills skip what is written.
    """
    calendar = calendar or exchange_calendar()
    config.profile(underlying)  # fail fast on an unknown underlying
    calendar.sessions(start, end)  # fail fast on a bad range
    for sim in simulate_path(underlying, end, config, calendar, start=start):
        if sim.session.day < start or (skip_day is not None and skip_day(sim.session.day)):
            continue
        quotes = _chain_frame(underlying, sim, config, calendar)
        if config.dirt_rate > 0:
            quotes = _with_dirt(quotes, config, underlying, sim.session.day)
        frames = {
            OPTION_QUOTES.name: quotes,
            UNDERLYING_BARS.name: _bar_frame(underlying, sim, config),
        }
        if config.signal == "planted":
            frames[SYNTHETIC_TRUTH.name] = truth_frame(underlying, sim, config)
        yield SourceBatch(
            underlying=underlying,
            day=sim.session.day,
            frames=frames,
            origin=f"synthetic seed={config.seed} {underlying} {sim.session.day}",
        )


def truth_frame(underlying: str, sim: SimulatedDay, config: SyntheticConfig) -> pl.DataFrame:
    """The day's planted mispricing, at the close (the oracle's input, not a feature)."""
    close = sim.grid[-1]
    return pl.DataFrame(
        {
            "underlying": [underlying], "date": [sim.session.day], "ts_event": [close],
            "mispricing": [sim.mispricing], "planted_sd": [config.planted_sd],
            "planted_phi": [config.planted_phi], "seed": [config.seed], "ts_init": [close],
            "source": [SOURCE_NAME],
        },
        schema={k: v for k, v in SYNTHETIC_TRUTH.schema.items() if k != "batch_id"},
    )  # fmt: skip


def latest_snapshot(
    underlying: str,
    now: datetime,
    config: SyntheticConfig,
    calendar: ExchangeCalendar | None = None,
) -> SourceBatch:
    """The chain as of the latest snapshot at or before ``now`` (what a live poll would see).

    During a session this is the last full hour (or the open's first hour mark);
    outside sessions it is the previous close. The daily bar is included only once
    the session has closed.
    """
    calendar = calendar or exchange_calendar()
    if now.tzinfo is None:
        raise ConfigError("latest_snapshot needs a timezone-aware time")
    session = calendar.session_on_or_before(now.astimezone(UTC).date())
    grid = intraday_grid(session)
    if now < grid[1]:
        session = calendar.session_on_or_before(date.fromordinal(session.day.toordinal() - 1))
        grid = intraday_grid(session)
    at = max(t for t in grid[1:] if t <= now) if now < grid[-1] else grid[-1]
    intraday_config = SyntheticConfig(**{**config.__dict__, "intraday": True})
    batch = next(generate(underlying, session.day, session.day, intraday_config, calendar))
    quotes = batch.frames[OPTION_QUOTES.name].filter(pl.col("ts_event") == at)
    frames = {OPTION_QUOTES.name: quotes}
    if at == grid[-1]:
        frames[UNDERLYING_BARS.name] = batch.frames[UNDERLYING_BARS.name]
        if SYNTHETIC_TRUTH.name in batch.frames:
            frames[SYNTHETIC_TRUTH.name] = batch.frames[SYNTHETIC_TRUTH.name]
    return SourceBatch(underlying, session.day, frames, origin=f"{batch.origin} @ {at.isoformat()}")
