"""Training rows: surface features as of each snapshot joined with one label.

One row per (underlying, snapshot) that has the label at the chosen horizon. The
features are the ``surface_features`` columns (all point-in-time by construction);
``t`` is the snapshot (``ts_event``) and ``t_end`` the label's end (``ts_end``), which
the walk-forward splitter uses to purge; ``cost`` the label's round-trip cost (the
strategy metrics charge it again on the short side). Rows whose label is missing are dropped;
missing feature values stay null (LightGBM handles them natively).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from data_lake.catalog import query
from data_lake.lake import Lake
from data_lake.schemas import SURFACE_FEATURES

NOT_FEATURES = ("underlying", "date", "ts_event", "ts_init", "source", "underlying_price")
FEATURE_COLUMNS: tuple[str, ...] = tuple(
    c for c in SURFACE_FEATURES.schema.names() if c not in NOT_FEATURES
)


@dataclass(frozen=True)
class Dataset:
    """Rows sorted by time: keys, features, the label and its window."""

    frame: pl.DataFrame  # underlying, t, t_end, y, cost, and FEATURE_COLUMNS
    label: str
    horizon: int
    columns: tuple[str, ...] = FEATURE_COLUMNS  # the features a model sees

    @property
    def features(self) -> pl.DataFrame:
        return self.frame.select(self.columns)


def training_rows(surface: pl.DataFrame, labels: pl.DataFrame, label: str, horizon: int) -> Dataset:
    """Join features and the chosen label (pure: frames in, dataset out). A label
    without a cost (a lake built before labels had one) costs nothing."""
    if "cost" not in labels.columns:
        labels = labels.with_columns(pl.lit(None, pl.Float64).alias("cost"))
    chosen = labels.filter(
        (pl.col("label") == label) & (pl.col("horizon_periods") == horizon)
    ).select(
        "underlying",
        "ts_event",
        pl.col("value").alias("y"),
        pl.col("cost").fill_null(0.0),
        pl.col("ts_end").alias("t_end"),
    )
    frame = (
        surface.join(chosen, on=["underlying", "ts_event"], how="inner")
        .filter(pl.col("y").is_not_null() & pl.col("y").is_finite())
        .select("underlying", pl.col("ts_event").alias("t"), "t_end", "y", "cost", *FEATURE_COLUMNS)
        .sort("t", "underlying")
    )
    return Dataset(frame, label, horizon)


def load_dataset(lake: Lake, underlyings: list[str] | None, label: str, horizon: int) -> Dataset:
    """The dataset of ``underlyings`` (all when None) from the lake's feature tables."""
    where = ""
    params: list[object] = []
    if underlyings:
        where = f"WHERE underlying IN ({', '.join('?' for _ in underlyings)})"
        params = list(underlyings)
    surface = query(lake, f"SELECT * FROM surface_features {where}", params)
    labels = query(lake, f"SELECT * FROM labels {where}", params)
    return training_rows(surface, labels, label, horizon)
