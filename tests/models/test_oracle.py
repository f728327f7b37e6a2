"""The oracle: the label fitted on the planted truth per training fold, joined by the
snapshot's New York date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from models.metrics import evaluate
from models.oracle import efficiency, oracle_metrics, with_truth
from models.splits import walk_forward


def test_the_oracle_reaches_the_ceiling_the_truth_allows() -> None:
    """A label that is 2 m_t plus noise of the same size: the oracle's IC is the
    correlation of m with the label, about 1/sqrt(2), and a model that knows half of
    m is measured as a share of it."""
    rng = np.random.default_rng(3)
    days = [date(2023, 1, 2) + timedelta(days=i) for i in range(600)]
    rows, truth = [], []
    for name in ("AAA", "BBB"):
        m = rng.normal(0, 1, len(days))
        y = 2 * m + rng.normal(0, 2, len(days))
        # snapshots late in the New York evening: the next day in UTC, the same day's truth
        t = [datetime(d.year, d.month, d.day, 3, 30, tzinfo=UTC) + timedelta(days=1) for d in days]
        half = m + rng.normal(0, 1, len(days))  # a model that knows half of m's variance
        rows.append(pl.DataFrame(
            {"underlying": name, "t": t, "y": y, "cost": 0.0, "t_end": t, "half": half}
        ))  # fmt: skip
        truth.append(pl.DataFrame({"underlying": name, "date": days, "mispricing": m}))
    frame = pl.concat(rows).sort("t", "underlying")
    truth_frame = pl.concat(truth)
    joined = with_truth(frame, truth_frame)
    assert joined["mispricing"].null_count() == 0  # every snapshot found its own day
    aaa = joined.filter(pl.col("underlying") == "AAA").sort("t")["mispricing"]
    assert aaa.to_list() == truth[0]["mispricing"].to_list()  # not the UTC date's
    folds = walk_forward(frame["t"], frame["t_end"], 4, horizon=1)
    oracle = oracle_metrics(frame, truth_frame, folds, horizon=1)
    assert oracle is not None
    assert oracle["ic"] == pytest.approx(1 / np.sqrt(2), abs=0.04)
    assert oracle["ic_tstat"] > 10
    test_rows = np.concatenate([f.test for f in folds])
    model = frame[test_rows].with_columns(pl.col("half").alias("prediction"))
    share = efficiency(evaluate(model, 1)["ic"], oracle["ic"])
    assert share == pytest.approx(np.sqrt(0.5), abs=0.06)  # corr(m + noise, m) = 1/sqrt(2)
    assert oracle_metrics(frame, None, folds, horizon=1) is None  # no truth, no oracle
