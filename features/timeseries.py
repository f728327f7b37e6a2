"""Time-series features per underlying: realized volatility, IV rank, changes, VRP.

Point-in-time: a snapshot at ``ts`` sees only daily bars whose ``ts_init <= ts`` (a
day's bar is known at its close, so an intraday snapshot uses the bars up to the day
before) and only earlier snapshots of its own series. Windows count periods:
trading days for realized volatility, snapshots of the underlying for IV rank and
changes (one snapshot a day in the daily pipeline).

Realized volatility, annualized with 252 trading days, on split- and
dividend-adjusted bars:

* close-to-close: the standard deviation of daily log returns (10, 21, 63 days);
* Parkinson (1980): high-low range;
* Garman-Klass (1980): open-high-low-close;
* Yang-Zhang (2000): overnight, open-to-close and Rogers-Satchell components with
  their k weighting.
"""

from __future__ import annotations

import math

import polars as pl

TRADING_DAYS = 252
RV_WINDOWS = (10, 21, 63)
RANGE_WINDOW = 21
RANK_WINDOW = 252
CHANGE_PERIODS = (1, 5, 20)
CHANGED = ("atm_iv_30d", "skew_25d_30d", "term_slope_30_90")
# the columns with_time_series adds (the others of surface_features are per snapshot)
TIME_SERIES_COLUMNS: tuple[str, ...] = (
    *(f"rv_cc_{w}d" for w in RV_WINDOWS),
    f"rv_parkinson_{RANGE_WINDOW}d",
    f"rv_garman_klass_{RANGE_WINDOW}d",
    f"rv_yang_zhang_{RANGE_WINDOW}d",
    "vrp_30d",
    "iv_rank_252",
    "iv_percentile_252",
    *(f"{name}_chg_{n}" for name in CHANGED for n in CHANGE_PERIODS),
)


def realized_vol(bars: pl.DataFrame) -> pl.DataFrame:
    """Per daily bar (``underlying, ts_init, open, high, low, close``, adjusted):
    the realized-volatility columns as known at that bar's ``ts_init``."""
    ln = pl.Expr.log
    o, h, lo, c = (pl.col(x) for x in ("open", "high", "low", "close"))
    prev_close = c.shift(1).over("underlying")
    ret = ln(c / prev_close)
    n = RANGE_WINDOW
    parkinson = ln(h / lo) ** 2 * (1 / (4 * math.log(2)))  # no column / literal (chain.py)
    garman_klass = 0.5 * ln(h / lo) ** 2 - (2 * math.log(2) - 1) * ln(c / o) ** 2
    rogers_satchell = ln(h / c) * ln(h / o) + ln(lo / c) * ln(lo / o)
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    overnight, intraday = ln(o / prev_close), ln(c / o)

    def rolling_var(x: pl.Expr) -> pl.Expr:
        return x.rolling_var(n, min_samples=n).over("underlying")

    def rolling_mean(x: pl.Expr) -> pl.Expr:
        return x.rolling_mean(n, min_samples=n).over("underlying")

    yang_zhang = (
        rolling_var(overnight) + k * rolling_var(intraday) + (1 - k) * rolling_mean(rogers_satchell)
    )
    annual = math.sqrt(TRADING_DAYS)
    return (
        bars.sort("underlying", "ts_init")
        .with_columns(
            *(
                (ret.rolling_std(w, min_samples=w).over("underlying") * annual).alias(f"rv_cc_{w}d")
                for w in RV_WINDOWS
            ),
            (rolling_mean(parkinson).sqrt() * annual).alias(f"rv_parkinson_{n}d"),
            (rolling_mean(garman_klass).sqrt() * annual).alias(f"rv_garman_klass_{n}d"),
            (yang_zhang.sqrt() * annual).alias(f"rv_yang_zhang_{n}d"),
        )
        .select(
            "underlying",
            pl.col("ts_init").alias("_bar_known"),
            *(f"rv_cc_{w}d" for w in RV_WINDOWS),
            f"rv_parkinson_{n}d",
            f"rv_garman_klass_{n}d",
            f"rv_yang_zhang_{n}d",
        )
    )


def with_time_series(snapshots: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Surface snapshots (one row per underlying and ``ts_event``) with realized vol as
    of each snapshot, VRP, IV rank and percentile, and changes over 1/5/20 periods."""
    rv = realized_vol(bars).sort("_bar_known")
    ordered = snapshots.sort("underlying", "ts_event")
    joined = ordered.join_asof(
        rv, left_on="ts_event", right_on="_bar_known", by="underlying", strategy="backward",
        check_sortedness=False,
    ).drop("_bar_known")  # fmt: skip
    iv = pl.col("atm_iv_30d")
    lo = iv.rolling_min(RANK_WINDOW, min_samples=20).over("underlying")
    hi = iv.rolling_max(RANK_WINDOW, min_samples=20).over("underlying")
    percentile = iv.rolling_map(_share_at_or_below, RANK_WINDOW, min_samples=20).over("underlying")
    return joined.with_columns(
        (iv - pl.col("rv_cc_21d")).alias("vrp_30d"),
        pl.when(hi > lo).then((iv - lo) / (hi - lo)).alias("iv_rank_252"),
        percentile.alias("iv_percentile_252"),
        *(
            (pl.col(name) - pl.col(name).shift(n).over("underlying")).alias(f"{name}_chg_{n}")
            for name in CHANGED
            for n in CHANGE_PERIODS
        ),
    )


def _share_at_or_below(window: pl.Series) -> float | None:
    """The share of a window's values at or below its last value (nulls ignored); null
    where the last value is null, like the rank."""
    last = window[-1]
    values = window.drop_nulls()
    if last is None or values.is_empty():
        return None
    return float((values <= last).sum() / values.len())
