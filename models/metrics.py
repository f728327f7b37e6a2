"""Out-of-sample metrics of a prediction against its label, trading ones net of costs,
with their significance.

* ``ic``: Pearson correlation of the prediction and what it forecasts, the label's
  gross value ``y + cost`` (``models.walkforward.fit_target``), over all
  out-of-sample rows; ``rank_ic``: Spearman (the Pearson correlation of their ranks).
* ``hit_rate``: the share of rows where the prediction's sign is the gross value's.
* The strategy: at each snapshot, hold ``sign(prediction)`` of the label's position
  (long the straddle when the prediction is positive, short when negative) for the
  label's horizon. A long row returns the label ``y`` (already net of its round-trip
  ``cost``); a short one returns ``-y - 2 * cost`` (the gross return reversed, and the
  round trip paid again), less ``short_cost`` (any extra cost of being short). The
  gross strategy is ``sign * (y + cost)``. Rows overlap when the horizon exceeds one
  snapshot: the return series is divided by the horizon, as holding 1/h of capital in
  each of h staggered positions, and averaged over the underlyings of a snapshot.
* ``sharpe_net`` / ``sharpe_gross``: mean over standard deviation of the per-snapshot
  strategy return, annualized with ``periods_per_year``; ``max_drawdown`` of the
  cumulative net return.
* Significance (``ic_tstat``, ``sharpe_net_tstat``, ``sharpe_gross_tstat``): t
  statistics with Newey-West (Bartlett) standard errors over the snapshot series, with
  ``3 * horizon`` lags: overlapping labels make neighbouring rows dependent (an
  ``h``-snapshot label shares ``h - 1`` snapshots with the next), which an i.i.d.
  standard error would ignore and so overstate significance. The IC's t statistic is
  that of the mean of ``z(prediction) * z(y)`` (standardized over all rows), summed per
  snapshot; a strategy's is that of its mean per-snapshot return.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

PERIODS_PER_YEAR = 252
LAGS_PER_HORIZON = 3


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _gross(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("y") + pl.col("cost") if "cost" in frame.columns else pl.col("y")


def information_coefficients(frame: pl.DataFrame) -> tuple[float, float]:
    """(IC, rank IC) of ``prediction`` against the gross label over all rows."""
    pred = frame["prediction"].to_numpy()
    y = frame.select(_gross(frame)).to_series().to_numpy()
    ranks = frame.select(pl.col("prediction").rank(), _gross(frame).rank().alias("y"))
    return _pearson(pred, y), _pearson(ranks["prediction"].to_numpy(), ranks["y"].to_numpy())


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


def ic_tstat(frame: pl.DataFrame, horizon: int) -> float:
    """t statistic of the IC, dependence between snapshots allowed for (see above)."""
    if frame.height < 3:
        return float("nan")
    y = _gross(frame)
    z = frame.select(
        "t",
        ((pl.col("prediction") - pl.col("prediction").mean()) / pl.col("prediction").std(ddof=0))
        .mul((y - y.mean()) / y.std(ddof=0))
        .alias("_u"),
    )
    per_snapshot = z.group_by("t").agg(pl.col("_u").sum()).sort("t")
    u = per_snapshot["_u"].to_numpy()
    if not np.all(np.isfinite(u)):
        return float("nan")
    # IC = sum(u) / n; Var(IC) = T * LRV(u) / n^2
    n, snapshots = frame.height, len(u)
    variance = newey_west_variance(u, LAGS_PER_HORIZON * horizon)
    if variance == 0:
        return float("nan")
    return float(u.sum() / n) / math.sqrt(snapshots * variance / (n * n))


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


def sharpe(returns: pl.Series, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    if returns.len() < 3:
        return float("nan")
    sd = returns.std()
    mean = returns.mean()
    if not sd or mean is None:
        return float("nan")
    return float(mean) / float(sd) * math.sqrt(periods_per_year)  # type: ignore[arg-type]


def max_drawdown(returns: pl.Series) -> float:
    equity = returns.cum_sum().to_numpy()
    if equity.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(equity) - equity))


def evaluate(frame: pl.DataFrame, horizon: int, short_cost: float = 0.0) -> dict[str, float]:
    """Every metric for rows with ``t``, ``y``, ``prediction`` (and ``cost``, else 0)."""
    ic, rank_ic = information_coefficients(frame)
    net = strategy_returns(frame, horizon, short_cost)
    gross = strategy_returns(frame, horizon, gross=True)
    lags = LAGS_PER_HORIZON * horizon
    hits = frame.select((pl.col("prediction").sign() == _gross(frame).sign()).mean()).item()
    return {
        "ic": ic,
        "ic_tstat": ic_tstat(frame, horizon),
        "rank_ic": rank_ic,
        "hit_rate": float(hits) if hits is not None else float("nan"),
        "sharpe_net": sharpe(net),
        "sharpe_net_tstat": mean_tstat(net.to_numpy(), lags),
        "sharpe_gross": sharpe(gross),
        "sharpe_gross_tstat": mean_tstat(gross.to_numpy(), lags),
        "max_drawdown": max_drawdown(net),
        "n": float(frame.height),
    }
