"""Out-of-sample metrics of a prediction against its label, trading ones net of costs,
with their significance, measured so that they do not flatter.

The label a prediction forecasts is its gross value ``y + cost``
(``models.walkforward.fit_target``).

**Information coefficients.** A pooled correlation over folds and underlyings counts
as skill what is only level: each fold's model has its own intercept and each
underlying its own label mean, and both line up with the label's mean by chance or
by construction (seed 12 of the planted market: pooled 0.046, timing 0.095). And any
correlation whose means are taken over the test window itself looks ahead: the
window's mean of a persistent prediction holds its later values, which the label's
surprises move. For a model whose prediction follows the volatility level (high IV,
low straddle return: what a training window's own mean reversion teaches it), the
label's vega P&L today raises the window's later predictions, so demeaning within
the window credits the model with an IC it does not have: +0.067 on average over
eight fair (no-signal) markets, against +0.017 across underlyings (docs/MODELS.md;
the finite-sample bias of predictive regressions on persistent predictors,
Stambaugh 1999). So:

* ``ic`` (the headline), ``ic_tstat``, ``rank_ic`` and ``hit_rate`` are the
  **cross-sectional** ones wherever the rows have at least ``MIN_CROSS_SECTION``
  underlyings at half their snapshots or more (``ic_is_cross_section`` 1): the mean
  over snapshots of the correlation across that snapshot's underlyings, each
  snapshot's means its own (known when it is traded, so nothing looks ahead). With
  fewer underlyings they are the **trailing** ones (``ic_is_cross_section`` 0):
* ``ic_trailing`` (and its ``_tstat``, ``hit_rate_trailing``, ``trailing_rows``):
  timing measured over time without looking ahead. Per underlying, the prediction
  less the mean of its own previous ``TRAILING_WINDOW`` predictions, and the gross
  label less the mean of all its labels ended by the snapshot (``t_end <= t``; where
  the rows have no ``t_end``, those ``horizon`` or more rows back): both known at the
  snapshot (rows with fewer than ``TRAILING_MIN`` of either left out). The IC is
  their uncentered correlation (a centered one would take the test window's means
  again). The label's mean is the expanding one: a trailing window of labels would
  look back at the very shocks that moved a persistent prediction (+0.12 in the
  two-underlying persistent test world, against about +0.02 expanding). Its t is
  that of ``z(prediction) * z(y)`` summed per snapshot (root-mean-square scales); the
  rank IC there is the Spearman correlation of the same two columns.
* ``ic_demeaned`` (and its ``_tstat``): the correlation of the prediction and the
  label each **demeaned within underlying x fold**: timing, not level, but with the
  test window's own means. ``ic_pooled``: the raw correlation over all rows.
* ``ic_cross_section`` (and its ``_tstat``, ``cross_section_snapshots``): always the
  cross-sectional one, NaN where no snapshot has ``MIN_CROSS_SECTION`` underlyings.
* ``hit_rate``: the share of rows where the prediction's sign is the label's, both
  less the snapshot's mean across underlyings (cross-sectional) or less their trailing
  means (a raw hit rate is high for any model whose sign matches a label mean that is
  not zero); ``hit_rate_demeaned`` with the means within underlying x fold.
* The strategy's returns and Sharpe ratios below use only the prediction's own sign,
  known at the snapshot: no window mean enters them.

**The strategy.** At each snapshot, hold ``sign(prediction)`` of the label's position
(long the straddle when positive, short when negative) for the label's horizon. A
long row returns the label ``y`` (already net of its round-trip ``cost``); a short
one ``-y - 2 * cost`` (the gross return reversed, the round trip paid again), less
``short_cost``. Gross: ``sign * (y + cost)``. With a horizon of ``h`` snapshots,
``h`` staggered positions are open at once, each with ``1/h`` of the capital: the
per-snapshot return is the mean over the snapshot's underlyings of the row returns
divided by ``h``.

* ``sharpe_net`` / ``sharpe_gross``: the mean per-snapshot return over the square
  root of its **long-run variance** (Newey-West, below), annualized with the
  snapshots per year of the rows' own calendar (``periods_per_year``: about 252 for a
  daily lake, 7 times that for an hourly one). Neighbouring staggered returns share
  ``h - 1`` of their days, so their plain standard deviation understates the
  strategy's risk by about ``sqrt(h)``: a constant-sign position held 5 days had a
  Sharpe of 1.78 where the truth was 0.80. ``max_drawdown`` of the cumulative net
  return.
* Significance (``ic_tstat``, ``ic_demeaned_tstat``, ``ic_trailing_tstat``,
  ``ic_cross_section_tstat``,
  ``sharpe_net_tstat``, ``sharpe_gross_tstat``): t statistics with Newey-West
  (Bartlett) standard errors over the snapshot series with ``3 * horizon`` lags. The
  cross-sectional IC's is that of its per-snapshot correlations' mean; the demeaned
  IC's that of the mean of ``z(prediction) * z(y)`` (the demeaned values,
  standardized) summed per snapshot; a Sharpe's t is its mean per-snapshot return's,
  so ``sharpe = t * sqrt(periods_per_year / snapshots)``.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

PERIODS_PER_YEAR = 252.0  # a series too short to measure its own calendar
LAGS_PER_HORIZON = 3
MIN_CROSS_SECTION = 3  # underlyings a snapshot needs for a cross-sectional correlation
TRAILING_WINDOW = 63  # rows per underlying: the trailing means of the trailing IC
TRAILING_MIN = 20
YEAR_SECONDS = 365.25 * 86400


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _gross(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("y") + pl.col("cost") if "cost" in frame.columns else pl.col("y")


def _groups(frame: pl.DataFrame) -> list[str]:
    return [c for c in ("underlying", "fold") if c in frame.columns]


def demeaned(frame: pl.DataFrame) -> pl.DataFrame:
    """``t``, ``_p`` and ``_y``: the prediction and the gross label less their means
    within underlying x fold (over all rows where the frame has neither column)."""
    p, y = pl.col("prediction"), _gross(frame)
    groups = _groups(frame)
    if groups:
        return frame.select(
            "t", (p - p.mean().over(groups)).alias("_p"), (y - y.mean().over(groups)).alias("_y")
        )
    return frame.select("t", (p - p.mean()).alias("_p"), (y - y.mean()).alias("_y"))


def periods_per_year(t: pl.Series) -> float:
    """Snapshots per year of the series' own calendar: distinct snapshots over their span."""
    times = t.unique().sort()
    if times.len() < 2:
        return PERIODS_PER_YEAR
    span = (times[-1] - times[0]).total_seconds()
    return (times.len() - 1) / (span / YEAR_SECONDS) if span > 0 else PERIODS_PER_YEAR


def information_coefficients(
    frame: pl.DataFrame, d: pl.DataFrame | None = None
) -> tuple[float, float]:
    """(IC, rank IC) of the prediction against the gross label, both demeaned within
    underlying x fold (``d``: ``demeaned(frame)`` where the caller has it)."""
    d = demeaned(frame) if d is None else d
    return pearson(d["_p"].to_numpy(), d["_y"].to_numpy()), _rank_ic(d)


def _rank_ic(d: pl.DataFrame) -> float:
    """The Spearman correlation of ``d``'s ``_p`` and ``_y``."""
    ranks = d.select(pl.col("_p").rank(), pl.col("_y").rank())
    return pearson(ranks["_p"].to_numpy(), ranks["_y"].to_numpy())


def pooled_ic(frame: pl.DataFrame) -> float:
    """The raw correlation over every row (level and timing mixed)."""
    y = frame.select(_gross(frame)).to_series().to_numpy()
    return pearson(frame["prediction"].to_numpy(), y)


def newey_west_variance(series: np.ndarray, lags: int) -> float:
    """Long-run variance of ``series`` (Bartlett kernel, ``lags`` lags)."""
    x = np.asarray(series, dtype=float) - float(np.mean(series))
    n = len(x)
    variance = float(x @ x) / n
    for lag in range(1, min(lags, n - 1) + 1):
        weight = 1 - lag / (lags + 1)
        variance += 2 * weight * float(x[lag:] @ x[:-lag]) / n
    return max(variance, 0.0)


def mean_tstat(series: np.ndarray, lags: int) -> float:
    """t statistic of the mean of ``series`` with a Newey-West standard error."""
    n = len(series)
    if n < 3:
        return float("nan")
    variance = newey_west_variance(series, lags)
    if variance == 0:
        return float("nan")
    return float(np.mean(series)) / math.sqrt(variance / n)


def trailing(frame: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """``t``, ``_p`` and ``_y``: per underlying, the prediction less the mean of its
    previous ``TRAILING_WINDOW`` predictions and the gross label less the mean of all
    the labels ended by the snapshot (both known then; rows with fewer than
    ``TRAILING_MIN`` of either dropped)."""
    rows = frame.select(
        pl.col("underlying") if "underlying" in frame.columns else pl.lit("").alias("underlying"),
        "t", pl.col("prediction").alias("_pred"), _gross(frame).alias("_gross"),
        (pl.col("t_end") if "t_end" in frame.columns else pl.lit(None)).alias("_end"),
    ).sort("underlying", "t")  # fmt: skip
    parts = [_trailing_part(part, horizon) for part in rows.partition_by("underlying")]
    if not parts:
        return pl.DataFrame(schema={"t": frame.schema["t"], "_p": pl.Float64, "_y": pl.Float64})
    return pl.concat(parts).sort("t")


def _trailing_part(rows: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """One underlying's rows (sorted by ``t``) less their point-in-time means."""
    t = rows["t"].to_numpy()
    p = rows["_pred"].to_numpy().astype(float)
    y = rows["_gross"].to_numpy().astype(float)
    index = np.arange(len(t))
    if rows["_end"].null_count() == 0:  # the labels ended by each snapshot
        ends = rows["_end"].to_numpy()
        order = np.argsort(ends, kind="stable")
        known = np.searchsorted(ends[order], t, side="right")
        y_known = np.concatenate([[0.0], np.cumsum(y[order])])
    else:  # a label ``horizon`` rows back has ended
        known = np.maximum(index - horizon + 1, 0)
        y_known = np.concatenate([[0.0], np.cumsum(y)])
    p_sum = np.concatenate([[0.0], np.cumsum(p)])
    p_count = np.minimum(index, TRAILING_WINDOW)
    p_mean = (p_sum[index] - p_sum[index - p_count]) / np.maximum(p_count, 1)
    y_mean = y_known[known] / np.maximum(known, 1)
    keep = (p_count >= TRAILING_MIN) & (known >= TRAILING_MIN)
    return pl.DataFrame(
        {"t": t[keep], "_p": (p - p_mean)[keep], "_y": (y - y_mean)[keep]},
        schema_overrides={"t": rows.schema["t"]},
    )


def uncentered(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a b) / sqrt(sum(a^2) sum(b^2)): a correlation about zero, not the means."""
    scale = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / scale if len(a) >= 3 and scale > 0 else float("nan")


def ic_tstat(
    frame: pl.DataFrame, horizon: int, d: pl.DataFrame | None = None, *, centered: bool = True
) -> float:
    """t statistic of the demeaned IC (or of the IC of ``d``'s values, uncentered when
    not ``centered``), dependence between snapshots allowed for."""
    d = demeaned(frame) if d is None else d
    if d.height < 3:
        return float("nan")
    p, y = pl.col("_p"), pl.col("_y")
    if centered:
        scale_p, scale_y = p.std(ddof=0), y.std(ddof=0)
    else:
        scale_p, scale_y = (p * p).mean().sqrt(), (y * y).mean().sqrt()
    z = d.select("t", ((p / scale_p) * (y / scale_y)).alias("_u"))
    u = z.group_by("t").agg(pl.col("_u").sum()).sort("t")["_u"].to_numpy()
    if not np.all(np.isfinite(u)):
        return float("nan")
    # IC = sum(u) / n; Var(IC) = T * LRV(u) / n^2
    n, snapshots = d.height, len(u)
    variance = newey_west_variance(u, LAGS_PER_HORIZON * horizon)
    if variance == 0:
        return float("nan")
    return float(u.sum() / n) / math.sqrt(snapshots * variance / (n * n))


def _cross_section(frame: pl.DataFrame, horizon: int) -> dict[str, float]:
    """The cross-sectional IC, its t, rank IC and hit rate (NaN, 0 snapshots, where
    no snapshot has ``MIN_CROSS_SECTION`` underlyings)."""
    none = {"ic": math.nan, "ic_tstat": math.nan, "rank_ic": math.nan, "hit_rate": math.nan,
            "snapshots": 0.0}  # fmt: skip
    if "underlying" not in frame.columns:
        return none
    rows = frame.select("t", pl.col("prediction").alias("_p"), _gross(frame).alias("_y"))
    rows = rows.filter(pl.len().over("t") >= MIN_CROSS_SECTION)
    side = (pl.col("_p") - pl.col("_p").mean()).sign()
    agree = side == (pl.col("_y") - pl.col("_y").mean()).sign()
    per = (
        rows.group_by("t")
        .agg(
            pl.corr("_p", "_y").alias("_ic"),
            pl.corr("_p", "_y", method="spearman").alias("_rank"),
            agree.sum().alias("_hits"),
            pl.len().alias("_n"),
        )
        .filter(pl.col("_ic").is_finite())
        .sort("t")
    )
    series = per["_ic"].to_numpy()
    if len(series) == 0:
        return none
    ranks = per["_rank"].to_numpy()
    ranks = ranks[np.isfinite(ranks)]
    return {
        "ic": float(series.mean()),
        "ic_tstat": mean_tstat(series, LAGS_PER_HORIZON * horizon),
        "rank_ic": float(ranks.mean()) if len(ranks) else math.nan,
        "hit_rate": float(per["_hits"].to_numpy().sum() / per["_n"].to_numpy().sum()),
        "snapshots": float(len(series)),
    }


def _hit_rate(d: pl.DataFrame) -> float:
    """The share of rows of ``d`` whose ``_p`` and ``_y`` have the same sign."""
    if d.height == 0:
        return math.nan
    return float(d.select((pl.col("_p").sign() == pl.col("_y").sign()).mean()).item())


def strategy_returns(
    frame: pl.DataFrame, horizon: int, short_cost: float = 0.0, *, gross: bool = False
) -> pl.Series:
    """Per-snapshot strategy return (mean over the underlyings at that snapshot)."""
    side = pl.col("prediction").sign()
    cost = pl.col("cost") if "cost" in frame.columns else pl.lit(0.0)
    if gross:
        row = side * (pl.col("y") + cost)
    else:
        short = -pl.col("y") - 2 * cost - short_cost
        row = pl.when(side > 0).then(pl.col("y")).when(side < 0).then(short).otherwise(0.0)
    per_row = frame.with_columns((row / horizon).alias("_r"))
    return per_row.group_by("t").agg(pl.col("_r").mean()).sort("t")["_r"]


def sharpe(returns: pl.Series, periods: float, lags: int) -> float:
    """Annualized Sharpe ratio of a per-snapshot return series: its mean over the
    square root of its long-run variance (``lags`` Bartlett lags), times sqrt(periods)."""
    if returns.len() < 3:
        return float("nan")
    values = returns.to_numpy().astype(float)
    variance = newey_west_variance(values, lags)
    if not variance > 0:
        return float("nan")
    return float(values.mean()) / math.sqrt(variance) * math.sqrt(periods)


def max_drawdown(returns: pl.Series) -> float:
    equity = returns.cum_sum().to_numpy()
    if equity.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(equity) - equity))


def evaluate(frame: pl.DataFrame, horizon: int, short_cost: float = 0.0) -> dict[str, float]:
    """Every metric for rows with ``t``, ``y``, ``prediction`` (and ``cost``, else 0;
    ``underlying`` and ``fold`` where the rows have them)."""
    d = demeaned(frame)
    ic, rank_ic = information_coefficients(frame, d)
    cs = _cross_section(frame, horizon)
    net = strategy_returns(frame, horizon, short_cost)
    gross = strategy_returns(frame, horizon, gross=True)
    lags = LAGS_PER_HORIZON * horizon
    periods = periods_per_year(frame["t"])
    hits = _hit_rate(d)
    demeaned_t = ic_tstat(frame, horizon, d)
    tr = trailing(frame, horizon)
    ic_tr = uncentered(tr["_p"].to_numpy(), tr["_y"].to_numpy())
    tr_t = ic_tstat(frame, horizon, tr, centered=False)
    hits_tr = _hit_rate(tr)
    rank_tr = _rank_ic(tr)
    across = cs["snapshots"] >= max(1.0, 0.5 * net.len())
    return {
        "ic": cs["ic"] if across else ic_tr,
        "ic_tstat": cs["ic_tstat"] if across else tr_t,
        "rank_ic": cs["rank_ic"] if across else rank_tr,
        "hit_rate": cs["hit_rate"] if across else hits_tr,
        "ic_is_cross_section": 1.0 if across else 0.0,
        "ic_trailing": ic_tr,
        "ic_trailing_tstat": tr_t,
        "hit_rate_trailing": hits_tr,
        "trailing_rows": float(tr.height),
        "ic_demeaned": ic,
        "ic_demeaned_tstat": demeaned_t,
        "rank_ic_demeaned": rank_ic,
        "hit_rate_demeaned": hits,
        "ic_pooled": pooled_ic(frame),
        "ic_cross_section": cs["ic"],
        "ic_cross_section_tstat": cs["ic_tstat"],
        "cross_section_snapshots": cs["snapshots"],
        "sharpe_net": sharpe(net, periods, lags),
        "sharpe_net_tstat": mean_tstat(net.to_numpy(), lags),
        "sharpe_gross": sharpe(gross, periods, lags),
        "sharpe_gross_tstat": mean_tstat(gross.to_numpy(), lags),
        "max_drawdown": max_drawdown(net),
        "periods_per_year": periods,
        "snapshots": float(net.len()),
        "n": float(frame.height),
    }
