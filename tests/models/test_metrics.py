"""Out-of-sample metrics against slow, obvious computations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import pearsonr, spearmanr

from models.metrics import evaluate, max_drawdown, sharpe, strategy_returns

T0 = datetime(2024, 1, 2, 21, tzinfo=UTC)


def frame(prediction: list[float], y: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"t": [T0 + timedelta(days=i) for i in range(len(y))], "y": y, "prediction": prediction}
    )


def test_ic_and_rank_ic_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    prediction = 0.3 * y + rng.normal(size=200)
    metrics = evaluate(frame(list(prediction), list(y)), horizon=1)
    assert metrics["ic"] == pytest.approx(pearsonr(prediction, y)[0], abs=1e-12)
    assert metrics["rank_ic"] == pytest.approx(spearmanr(prediction, y)[0], abs=1e-12)
    assert metrics["hit_rate"] == pytest.approx(np.mean(np.sign(prediction) == np.sign(y)))


def test_strategy_takes_the_predictions_sign_and_pays_the_short_cost() -> None:
    rows = frame([1.0, -2.0, 0.5], [0.10, -0.05, -0.02])
    returns = strategy_returns(rows, horizon=1, short_cost=0.01).to_list()
    assert returns == pytest.approx([0.10, 0.05 - 0.01, -0.02])
    overlapping = strategy_returns(rows, horizon=5).to_list()
    assert overlapping == pytest.approx([0.02, 0.01, -0.004])  # 1/h of capital each


def test_sharpe_and_drawdown() -> None:
    returns = pl.Series([0.01, -0.02, 0.03, -0.01, 0.02])
    expected = np.mean(returns.to_numpy()) / np.std(returns.to_numpy(), ddof=1) * np.sqrt(252)
    assert sharpe(returns) == pytest.approx(expected)
    assert max_drawdown(returns) == pytest.approx(0.02)  # from 0.01 down to -0.01
    assert np.isnan(sharpe(pl.Series([0.01, 0.01, 0.01])))  # no variance, no ratio
