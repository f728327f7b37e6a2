"""Volatility-surface features per underlying and snapshot, from ``option_analytics``.

Pure Polars; every value at a snapshot uses only that snapshot's rows.

Per expiry (out-of-the-money contracts with a solved IV: puts below the forward,
calls above, both at the money):

* ATM IV: linear interpolation of IV in log-moneyness ``ln(K/F)`` between the
  nearest strikes on each side of the forward (the nearest one if only one side).
* 25-delta put and call IVs: linear interpolation of IV in delta between the
  contracts on each side of -0.25 (puts) and +0.25 (calls).

Across expiries, at a fixed tenor of ``d`` calendar days: ATM total variance ``iv^2 t``
(IVs are quoted per calendar year) is interpolated linearly in **trading time**
between the two expiries around the tenor, as desks do: variance accrues in sessions
(``TradingClock``: a session is 1/252 year, 20% of it overnight; weekends and
holidays carry none), so calendar-time interpolation puts a weekday pattern into
every fixed tenor (on a no-signal SPY year, ``ln(iv_7d / iv_30d)`` averaged +0.042
on Mondays and -0.052 on Fridays, more than the planted effect). The tenor's own
trading time is that of the ``d`` calendar days after the snapshot; the IV is then
``sqrt(w / (d / 365))``. Outside the listed range the nearest expiry's IV is held
flat. Expiries under 2 days are left out (their IVs are dominated by
microstructure). 25-delta values at 30 days interpolate the per-expiry values
linearly in trading time the same way.

Term structure, as a volatility desk reads it: spreads (``term_spread_7_30``,
``term_spread_30_60``, ``term_slope_30_90``: the longer or front tenor less 30 days)
and log ratios (``term_log_7_30 = ln(iv_7d / iv_30d)``, ``term_log_30_60``,
``term_log_30_90``); ``front_vs_curve_7d``: ln(iv_7d) less the front's fair value
from the rest of the curve (the least-squares line of ln IV on tenor through 30, 60
and 90 days, at 7 days); ``day_of_week`` (0 Monday .. 4 Friday, New York).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from data_lake.calendar import EXCHANGE_TZ, exchange_calendar
from data_lake.sources.synthetic_market import TradingClock

TENORS_DAYS = (7, 30, 60, 90)
MIN_DTE_DAYS = 2.0
KEYS = ["underlying", "ts_event"]
YEAR_SECONDS = 365.0 * 86400
CURVE_DAYS = (30, 60, 90)  # the part of the curve the front's fair value is drawn from
FRONT_DAYS = 7


def _usable(analytics: pl.DataFrame) -> pl.DataFrame:
    otm = ((pl.col("right") == "P") & (pl.col("log_moneyness") <= 0)) | (
        (pl.col("right") == "C") & (pl.col("log_moneyness") >= 0)
    )
    return analytics.filter(
        (pl.col("solver_status") == "ok") & otm & (pl.col("dte_days") >= MIN_DTE_DAYS)
    )


def _interpolated(x: str, y: str, at: float, below: pl.Expr, above: pl.Expr) -> list[pl.Expr]:
    """Aggregations giving y at x = ``at`` by linear interpolation between the nearest
    row with x <= at (``below``) and the nearest with x >= at (``above``)."""
    x_lo = pl.col(x).filter(below).max()
    x_hi = pl.col(x).filter(above).min()
    y_lo = pl.col(y).filter(below).sort_by(pl.col(x).filter(below)).last()
    y_hi = pl.col(y).filter(above).sort_by(pl.col(x).filter(above)).first()
    weight = pl.when(x_hi > x_lo).then((at - x_lo) / (x_hi - x_lo)).otherwise(0.0)
    both = y_lo + weight * (y_hi - y_lo)
    return [pl.coalesce(both, y_lo, y_hi)]


def per_expiry(analytics: pl.DataFrame) -> pl.DataFrame:
    """ATM, 25-delta put and 25-delta call IV for each snapshot and expiry."""
    rows = _usable(analytics)
    k, delta = pl.col("log_moneyness"), pl.col("delta")
    is_put, is_call = pl.col("right") == "P", pl.col("right") == "C"
    (atm,) = _interpolated("log_moneyness", "iv", 0.0, k <= 0, k >= 0)
    (put25,) = _interpolated(
        "delta", "iv", -0.25, is_put & (delta <= -0.25), is_put & (delta >= -0.25)
    )
    (call25,) = _interpolated(
        "delta", "iv", 0.25, is_call & (delta <= 0.25), is_call & (delta >= 0.25)
    )
    return (
        rows.group_by([*KEYS, "expiry"])
        .agg(
            pl.col("t_years").first(),
            atm.alias("atm_iv"),
            put25.alias("put_25d_iv"),
            call25.alias("call_25d_iv"),
        )
        .sort([*KEYS, "t_years"])
    )


def _clock() -> TradingClock:
    return TradingClock.of(exchange_calendar())


def _with_trading_time(expiries: pl.DataFrame) -> pl.DataFrame:
    """``expiries`` with ``tau``: trading years from the snapshot to the expiry."""
    if expiries.is_empty():
        return expiries.with_columns(pl.lit(None, pl.Float64).alias("tau"))
    clock = _clock()
    now = expiries["ts_event"].dt.epoch("us").to_numpy() / 1e6
    expiry = now + expiries["t_years"].to_numpy() * YEAR_SECONDS
    return expiries.with_columns(pl.Series("tau", clock.at(expiry) - clock.at(now)))


def _targets(snapshots: pl.DataFrame, days: int) -> pl.DataFrame:
    """KEYS and ``_target``: the trading years in the ``days`` calendar days after each
    snapshot."""
    clock = _clock()
    now = snapshots["ts_event"].dt.epoch("us").to_numpy() / 1e6
    target = clock.at(now + days * 86400.0) - clock.at(now)
    return snapshots.select(KEYS).with_columns(pl.Series("_target", target, pl.Float64))


def _at_tenor(expiries: pl.DataFrame, column: str, days: int, total_variance: bool) -> pl.DataFrame:
    """``column`` at a fixed tenor per snapshot (see the module docstring): interpolated
    in trading time ``tau`` between the expiries around the tenor's trading time."""
    tenor = days / 365.0
    tau, target = pl.col("tau"), pl.col("_target")
    value = pl.col(column) ** 2 * pl.col("t_years") if total_variance else pl.col(column)
    valid = expiries.filter(pl.col(column).is_not_null()).join(
        _targets(expiries.select(KEYS).unique(), days), on=KEYS
    )
    lo = (
        valid.filter(tau <= target)
        .group_by(KEYS)
        .agg(
            tau.max().alias("t_lo"),
            value.sort_by(tau).last().alias("v_lo"),
            pl.col(column).sort_by(tau).last().alias("iv_lo"),
            target.first().alias("_at_lo"),
        )
    )
    hi = (
        valid.filter(tau >= target)
        .group_by(KEYS)
        .agg(
            tau.min().alias("t_hi"),
            value.sort_by(tau).first().alias("v_hi"),
            pl.col(column).sort_by(tau).first().alias("iv_hi"),
            target.first().alias("_at_hi"),
        )
    )
    both = lo.join(hi, on=KEYS, how="full", coalesce=True)
    at = pl.coalesce("_at_lo", "_at_hi")
    w = (
        pl.when(pl.col("t_hi") > pl.col("t_lo"))
        .then((at - pl.col("t_lo")) / (pl.col("t_hi") - pl.col("t_lo")))
        .otherwise(0.0)
    )
    mixed = pl.col("v_lo") + w * (pl.col("v_hi") - pl.col("v_lo"))
    # times the reciprocal, not divided by the literal: Polars 2.1 divides a column of
    # one row by a literal exactly but a longer one by multiplying with the reciprocal,
    # so a snapshot built alone (an incremental build's last chunk) differed in the
    # last bit from the same snapshot built among others
    inside = (mixed * (1.0 / tenor)).sqrt() if total_variance else mixed
    name = f"{column}_{days}d" if column != "atm_iv" else f"atm_iv_{days}d"
    return both.select(*KEYS, pl.coalesce(inside, pl.col("iv_lo"), pl.col("iv_hi")).alias(name))


def surface_features(analytics: pl.DataFrame) -> pl.DataFrame:
    """One row per (underlying, ts_event): the snapshot-level surface columns."""
    expiries = _with_trading_time(per_expiry(analytics))
    snapshots = analytics.group_by(KEYS).agg(
        pl.col("date").first(),
        pl.col("underlying_price").first(),
        (
            pl.col("volume").filter(pl.col("right") == "P").sum()
            / pl.col("volume").filter(pl.col("right") == "C").sum()
        ).alias("put_call_volume_ratio"),
        (
            pl.col("open_interest").filter(pl.col("right") == "P").sum()
            / pl.col("open_interest").filter(pl.col("right") == "C").sum()
        ).alias("put_call_oi_ratio"),
        pl.col("ts_init").max(),
        pl.col("source").first(),
    )
    for days in TENORS_DAYS:
        snapshots = snapshots.join(_at_tenor(expiries, "atm_iv", days, True), on=KEYS, how="left")
    for column in ("put_25d_iv", "call_25d_iv"):
        snapshots = snapshots.join(_at_tenor(expiries, column, 30, False), on=KEYS, how="left")
    ratio = [c for c in ("put_call_volume_ratio", "put_call_oi_ratio")]
    return (
        snapshots.with_columns(
            (pl.col("put_25d_iv_30d") - pl.col("call_25d_iv_30d")).alias("skew_25d_30d"),
            (
                (pl.col("put_25d_iv_30d") + pl.col("call_25d_iv_30d")) / 2 - pl.col("atm_iv_30d")
            ).alias("curvature_25d_30d"),
            (pl.col("atm_iv_90d") - pl.col("atm_iv_30d")).alias("term_slope_30_90"),
            (pl.col("atm_iv_7d") - pl.col("atm_iv_30d")).alias("term_spread_7_30"),
            (pl.col("atm_iv_60d") - pl.col("atm_iv_30d")).alias("term_spread_30_60"),
            (pl.col("atm_iv_7d") / pl.col("atm_iv_30d")).log().alias("term_log_7_30"),
            (pl.col("atm_iv_60d") / pl.col("atm_iv_30d")).log().alias("term_log_30_60"),
            (pl.col("atm_iv_90d") / pl.col("atm_iv_30d")).log().alias("term_log_30_90"),
            _front_vs_curve().alias("front_vs_curve_7d"),
            pl.col("ts_event")
            .dt.convert_time_zone(EXCHANGE_TZ.key)
            .dt.weekday()  # ISO: 1 Monday
            .sub(1)
            .cast(pl.Float64)
            .alias("day_of_week"),
            *(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in ratio),
        )
        .drop("put_25d_iv_30d", "call_25d_iv_30d")
        .sort(KEYS)
    )


def _front_vs_curve() -> pl.Expr:
    """ln(front IV) less the front's fair value drawn from the rest of the curve: the
    least-squares line of ln(IV) on tenor through 30, 60 and 90 days, at 7 days."""
    x = np.array(CURVE_DAYS, dtype=float)
    weights = (x - x.mean()) / float(((x - x.mean()) ** 2).sum())  # the slope's weights
    logs = [pl.col(f"atm_iv_{d}d").log() for d in CURVE_DAYS]
    slope = sum((w * v for w, v in zip(weights, logs, strict=True)), pl.lit(0.0))
    mean = sum(logs, pl.lit(0.0)) * (1.0 / len(CURVE_DAYS))
    fair = mean + slope * (FRONT_DAYS - float(x.mean()))
    return pl.col(f"atm_iv_{FRONT_DAYS}d").log() - fair
