"""The oracle: what a model that knew the planted mispricing could reach on a market.

A planted synthetic lake records the generator's mispricing ``m_t`` per underlying
and day (``synthetic_truth``). On the same outer folds as the model (the same
purged training rows and test windows), the oracle fits the gross label on ``m_t``
by least squares in each training window and predicts the test window; its
out-of-sample metrics (``models.metrics.evaluate``) are the ceiling for that market
and label: a model's IC as a share of the oracle's (``ic_efficiency``) says how much
of the findable edge it found. With no truth recorded (real data, a no-signal
market) there is no oracle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from data_lake.calendar import EXCHANGE_TZ
from data_lake.catalog import query
from data_lake.errors import LakeError
from data_lake.lake import Lake
from models.metrics import evaluate
from models.splits import Fold

TRUTH = "synthetic_truth"


def load_truth(lake: Lake, underlyings: Sequence[str] | None = None) -> pl.DataFrame | None:
    """``underlying, date, mispricing`` of a planted synthetic lake; None where the lake
    has no truth for these underlyings."""
    where, params = "", list[object]()
    if underlyings:
        where = f"WHERE underlying IN ({', '.join('?' for _ in underlyings)})"
        params = list(underlyings)
    try:
        truth = query(
            lake, f"SELECT underlying, date, mispricing FROM {TRUTH} {where}", params or None
        )
    except LakeError:
        return None  # no such table in this lake
    return truth if truth.height else None


def with_truth(frame: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (rows with ``underlying`` and ``t``) with the day's ``mispricing`` (the
    planted value is constant through a session; null where the day has none)."""
    day = pl.col("t").dt.convert_time_zone(EXCHANGE_TZ.key).dt.date().alias("date")
    keyed = frame.with_columns(day)
    return keyed.join(truth, on=["underlying", "date"], how="left").drop("date")


def oracle_predictions(frame: pl.DataFrame, folds: Sequence[Fold]) -> pl.DataFrame:
    """Out-of-sample oracle predictions: per fold, the least-squares line of the gross
    label on ``mispricing`` over the fold's training rows, applied to its test rows."""
    gross = (frame["y"] + frame["cost"]).to_numpy()
    m = frame["mispricing"].to_numpy()
    parts = []
    for fold in folds:
        train = fold.train[np.isfinite(m[fold.train])]
        if len(train) < 3 or np.std(m[train]) == 0:
            continue
        slope, intercept = np.polyfit(m[train], gross[train], 1)
        test = fold.test[np.isfinite(m[fold.test])]
        parts.append(
            frame[test]
            .select("underlying", "t", "t_end", "y", "cost")
            .with_columns(
                pl.Series("prediction", intercept + slope * m[test]),
                pl.lit(fold.index).alias("fold"),
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame()


def oracle_metrics(
    frame: pl.DataFrame, truth: pl.DataFrame | None, folds: Sequence[Fold], horizon: int,
    short_cost: float = 0.0,
) -> dict[str, float] | None:  # fmt: skip
    """The oracle's out-of-sample metrics on the model's folds; None without truth."""
    if truth is None:
        return None
    if "cost" not in frame.columns:
        frame = frame.with_columns(pl.lit(0.0).alias("cost"))
    predictions = oracle_predictions(with_truth(frame, truth), folds)
    if predictions.height < 3:
        return None
    return evaluate(predictions, horizon, short_cost)


def efficiency(model_ic: float, oracle_ic: float) -> float:
    """The model's IC as a share of the oracle's (NaN where the oracle finds nothing)."""
    if not (np.isfinite(model_ic) and np.isfinite(oracle_ic)) or oracle_ic <= 0:
        return float("nan")
    return model_ic / oracle_ic
