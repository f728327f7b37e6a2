"""Volatility-surface features per underlying and snapshot, from ``option_analytics``.

Pure Polars; every value at a snapshot uses only that snapshot's rows.

Per expiry (out-of-the-money contracts with a solved IV: puts below the forward,
calls above, both at the money):

* ATM IV: linear interpolation of IV in log-moneyness ``ln(K/F)`` between the
  nearest strikes on each side of the forward (the nearest one if only one side).
* 25-delta put and call IVs: linear interpolation of IV in delta between the
  contracts on each side of -0.25 (puts) and +0.25 (calls).

Across expiries, at a fixed tenor of ``d`` days: ATM total variance ``iv^2 t`` is
interpolated linearly in ``t`` between the two expiries around ``d`` (so the term
structure has no calendar arbitrage where the data has none); outside the listed
range the nearest expiry's IV is held flat. Expiries under 2 days are left out (their
IVs are dominated by microstructure). 25-delta values at 30 days interpolate the
per-expiry values linearly in ``t`` the same way.
"""

from __future__ import annotations

import polars as pl

TENORS_DAYS = (7, 30, 60, 90)
MIN_DTE_DAYS = 2.0
KEYS = ["underlying", "ts_event"]


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


def _at_tenor(expiries: pl.DataFrame, column: str, days: int, total_variance: bool) -> pl.DataFrame:
    """``column`` at a fixed tenor per snapshot (see the module docstring)."""
    tenor = days / 365.0
    t = pl.col("t_years")
    value = pl.col(column) ** 2 * t if total_variance else pl.col(column)
    valid = expiries.filter(pl.col(column).is_not_null())
    lo = (
        valid.filter(t <= tenor)
        .group_by(KEYS)
        .agg(
            t.max().alias("t_lo"),
            value.sort_by(t).last().alias("v_lo"),
            pl.col(column).sort_by(t).last().alias("iv_lo"),
        )
    )
    hi = (
        valid.filter(t >= tenor)
        .group_by(KEYS)
        .agg(
            t.min().alias("t_hi"),
            value.sort_by(t).first().alias("v_hi"),
            pl.col(column).sort_by(t).first().alias("iv_hi"),
        )
    )
    both = lo.join(hi, on=KEYS, how="full", coalesce=True)
    w = (
        pl.when(pl.col("t_hi") > pl.col("t_lo"))
        .then((tenor - pl.col("t_lo")) / (pl.col("t_hi") - pl.col("t_lo")))
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
    expiries = per_expiry(analytics)
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
            *(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in ratio),
        )
        .drop("put_25d_iv_30d", "call_25d_iv_30d")
        .sort(KEYS)
    )
