"""Training rows join features and one label per snapshot, point-in-time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from data_lake.schemas import LABELS, SURFACE_FEATURES
from models.dataset import FEATURE_COLUMNS, training_rows

T0 = datetime(2024, 1, 2, 21, tzinfo=UTC)


def surface(n: int) -> pl.DataFrame:
    rows = {name: [None] * n for name in SURFACE_FEATURES.schema.names()}
    rows |= {
        "underlying": ["SPY"] * n,
        "date": [date(2024, 1, 2) + timedelta(days=i) for i in range(n)],
        "ts_event": [T0 + timedelta(days=i) for i in range(n)],
        "atm_iv_30d": [0.2 + 0.01 * i for i in range(n)],
    }
    return pl.DataFrame(rows, schema=SURFACE_FEATURES.schema)


def labels(n: int, horizon: int) -> pl.DataFrame:
    starts = [T0 + timedelta(days=i) for i in range(n - horizon)]
    frame = pl.DataFrame(
        {
            "underlying": "SPY", "date": [s.date() for s in starts], "ts_event": starts,
            "label": "straddle_dh_ret", "horizon_periods": horizon,
            "value": [0.01 * i for i in range(len(starts))], "cost": 0.002,
            "ts_end": [s + timedelta(days=horizon) for s in starts],
            "ts_init": [s + timedelta(days=horizon) for s in starts], "source": "volflow",
        }
    )  # fmt: skip
    return frame.cast(dict(LABELS.schema))  # type: ignore[arg-type]


def test_each_snapshot_with_its_label_becomes_one_row() -> None:
    both = pl.concat([labels(10, 1), labels(10, 5)])
    dataset = training_rows(surface(10), both, "straddle_dh_ret", 5)
    assert dataset.frame.height == 5  # the last 5 snapshots have no 5-period label yet
    assert dataset.frame["y"].to_list() == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert dataset.frame["cost"].to_list() == [0.002] * 5  # charged again when short
    assert (dataset.frame["t_end"] - dataset.frame["t"]).unique().to_list() == [timedelta(days=5)]
    assert dataset.features.columns == list(FEATURE_COLUMNS)
    assert "underlying_price" not in FEATURE_COLUMNS and "atm_iv_30d" in FEATURE_COLUMNS


def test_other_labels_and_missing_values_are_left_out() -> None:
    noisy = labels(10, 1).with_columns(
        pl.when(pl.col("value") == 0.02).then(None).otherwise(pl.col("value")).alias("value")
    )
    dataset = training_rows(surface(10), noisy, "straddle_dh_ret", 1)
    assert dataset.frame.height == 8 and dataset.frame["y"].null_count() == 0
    assert training_rows(surface(10), noisy, "atm_iv_30d_change", 1).frame.is_empty()
