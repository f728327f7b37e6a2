"""Time-series features per underlying: realized volatility, IV rank, changes, VRP,
IV against a HAR-RV forecast, the spot-vol beta, per-underlying z-scores.

Point-in-time: a snapshot at ``ts`` sees only daily bars whose ``ts_init <= ts`` (a
day's bar is known at its close, so an intraday snapshot uses the bars up to the day
before) and only earlier snapshots of its own series. Windows count periods:
trading days for realized volatility, snapshots of the underlying for IV rank and
changes (one snapshot a day in the daily pipeline).

* ``iv_vs_har_30d``: ln(ATM 30-day IV / the HAR-RV volatility forecast), the forecast
  ``sqrt(252 * (0.2 RV_1d + 0.3 RV_5d + 0.5 RV_22d))`` from mean squared daily log
  returns (fixed weights in the shape of Corsi's index estimates, not fitted).
* ``spot_vol_beta_63``: the slope of the ATM 30-day IV change on the underlying's log
  return over the trailing 63 snapshots (the smile's spot-vol dynamics; the
  minimum-variance hedge of ``features.labels`` uses it).
* ``z63_<name>``: per-underlying z-scores over the trailing 63 snapshots (at least 20)
  of ln(ATM 30-day IV), ``term_log_7_30``, ``term_log_30_90``, ``front_vs_curve_7d``
  and ``iv_vs_har_30d``: a level relative to the underlying's own recent history.

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
# HAR-RV (Corsi 2009): the next month's variance from the daily, weekly (5-day) and
# monthly (22-day) realized variances, with fixed weights in the shape of the
# published index estimates (not fitted per underlying)
HAR_WEIGHTS = {1: 0.2, 5: 0.3, 22: 0.5}
BETA_WINDOW = 63  # snapshots: the spot-vol regression
SPOT_VOL_BETA = f"spot_vol_beta_{BETA_WINDOW}"
Z_WINDOW = 63  # snapshots: per-underlying z-scores
Z_MIN = 20
Z_SCORED = ("log_atm_iv_30d", "term_log_7_30", "term_log_30_90", "front_vs_curve_7d",
            "iv_vs_har_30d")  # fmt: skip
# the columns with_time_series adds (the others of surface_features are per snapshot)
TIME_SERIES_COLUMNS: tuple[str, ...] = (
    *(f"rv_cc_{w}d" for w in RV_WINDOWS),
    f"rv_parkinson_{RANGE_WINDOW}d",
    f"rv_garman_klass_{RANGE_WINDOW}d",
    f"rv_yang_zhang_{RANGE_WINDOW}d",
    "vrp_30d",
    "iv_vs_har_30d",
    SPOT_VOL_BETA,
    *(f"z{Z_WINDOW}_{name}" for name in Z_SCORED),
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
            sum(
                (
                    weight * (ret * ret).rolling_mean(w, min_samples=w).over("underlying")
                    for w, weight in HAR_WEIGHTS.items()
                ),
                pl.lit(0.0),
            )
            .mul(TRADING_DAYS)
            .alias("_har_var"),
        )
        .select(
            "underlying",
            pl.col("ts_init").alias("_bar_known"),
            *(f"rv_cc_{w}d" for w in RV_WINDOWS),
            f"rv_parkinson_{n}d",
            f"rv_garman_klass_{n}d",
            f"rv_yang_zhang_{n}d",
            "_har_var",
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
    if "underlying_price" not in joined.columns:  # no spot: no spot-vol beta
        joined = joined.with_columns(pl.lit(None, pl.Float64).alias("underlying_price"))
    log_return = (pl.col("underlying_price") / pl.col("underlying_price").shift(1)).log()
    iv_change = iv - iv.shift(1)
    moves = joined.with_columns(
        log_return.over("underlying").alias("_r"),
        iv_change.over("underlying").alias("_div"),
        iv.log().alias("log_atm_iv_30d"),
        (iv.log() - 0.5 * pl.col("_har_var").log()).alias("iv_vs_har_30d"),
    )
    absent = [n for n in Z_SCORED if n not in moves.columns]  # a partial frame (tests)
    moves = moves.with_columns(pl.lit(None, pl.Float64).alias(n) for n in absent)
    r = pl.col("_r")
    beta = pl.rolling_cov(r, "_div", window_size=BETA_WINDOW, min_samples=Z_MIN) / r.rolling_var(
        BETA_WINDOW, min_samples=Z_MIN
    )

    def z(name: str) -> pl.Expr:
        x = pl.col(name)
        mean = x.rolling_mean(Z_WINDOW, min_samples=Z_MIN)
        sd = x.rolling_std(Z_WINDOW, min_samples=Z_MIN)
        return pl.when(sd > 0).then((x - mean) / sd).over("underlying").alias(f"z{Z_WINDOW}_{name}")

    return moves.with_columns(
        beta.over("underlying").alias(SPOT_VOL_BETA),
        *(z(name) for name in Z_SCORED),
        (iv - pl.col("rv_cc_21d")).alias("vrp_30d"),
        pl.when(hi > lo).then((iv - lo) / (hi - lo)).alias("iv_rank_252"),
        percentile.alias("iv_percentile_252"),
        *(
            (pl.col(name) - pl.col(name).shift(n).over("underlying")).alias(f"{name}_chg_{n}")
            for name in CHANGED
            for n in CHANGE_PERIODS
        ),
    ).drop("_r", "_div", "_har_var", "log_atm_iv_30d", *absent)


def _share_at_or_below(window: pl.Series) -> float | None:
    """The share of a window's values at or below its last value (nulls ignored); null
    where the last value is null, like the rank."""
    last = window[-1]
    values = window.drop_nulls()
    if last is None or values.is_empty():
        return None
    return float((values <= last).sum() / values.len())
