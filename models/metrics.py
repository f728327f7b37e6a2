"""Out-of-sample metrics of a prediction against its label, trading ones net of costs.

* ``ic``: Pearson correlation of prediction and label; ``rank_ic``: Spearman (the
  Pearson correlation of their ranks), computed per snapshot across underlyings
  when there are several, else over time.
* ``hit_rate``: the share of rows where the prediction's sign is the label's.
* The strategy: at each snapshot, hold ``sign(prediction)`` of the label's position
  (long the straddle when the prediction is positive, short when negative) for the
  label's horizon; its return per row is ``sign * label - cost``, where ``cost`` is
  the label's round-trip spread cost paid when short too (a long straddle label is
  already net of it; a short one pays it again: ``2 * cost`` is the round trip).
  Rows overlap when the horizon exceeds one snapshot: the return series is divided
  by the horizon, as holding 1/h of capital in each of h staggered positions.
* ``sharpe``: mean over standard deviation of the per-snapshot strategy return,
  annualized with ``periods_per_year``; ``max_drawdown`` of its cumulative sum.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

PERIODS_PER_YEAR = 252


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def information_coefficients(frame: pl.DataFrame) -> tuple[float, float]:
    """(IC, rank IC) of ``prediction`` against ``y`` over all rows."""
    pred, y = frame["prediction"].to_numpy(), frame["y"].to_numpy()
    ranks = frame.select(pl.col("prediction").rank(), pl.col("y").rank())
    return _pearson(pred, y), _pearson(ranks["prediction"].to_numpy(), ranks["y"].to_numpy())


def strategy_returns(frame: pl.DataFrame, horizon: int, short_cost: float = 0.0) -> pl.Series:
    """Per-snapshot strategy return (mean over the underlyings at that snapshot)."""
    side = pl.col("prediction").sign()
    cost = pl.when(side < 0).then(short_cost).otherwise(0.0)
    per_row = frame.with_columns(((side * pl.col("y") - cost) / horizon).alias("_r"))
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
    """Every metric for rows with ``t``, ``y`` and ``prediction``."""
    ic, rank_ic = information_coefficients(frame)
    returns = strategy_returns(frame, horizon, short_cost)
    hits = frame.select((pl.col("prediction").sign() == pl.col("y").sign()).mean()).item()
    return {
        "ic": ic,
        "rank_ic": rank_ic,
        "hit_rate": float(hits) if hits is not None else float("nan"),
        "sharpe_net": sharpe(returns),
        "max_drawdown": max_drawdown(returns),
        "n": float(frame.height),
    }
