"""Out-of-sample metrics against slow, obvious computations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import pearsonr, spearmanr

from models.metrics import (
    evaluate,
    max_drawdown,
    mean_tstat,
    newey_west_variance,
    sharpe,
    strategy_returns,
)

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


def test_a_short_position_pays_the_round_trip_again_and_gross_pays_none() -> None:
    rows = frame([1.0, -2.0], [0.10, -0.05]).with_columns(pl.Series("cost", [0.02, 0.03]))
    # long: the label (already net); short: minus the gross (y + cost), less the cost
    assert strategy_returns(rows, horizon=1).to_list() == pytest.approx([0.10, 0.05 - 0.06])
    assert strategy_returns(rows, horizon=1, gross=True).to_list() == pytest.approx([0.12, 0.02])


def test_ic_is_measured_against_the_gross_label() -> None:
    rng = np.random.default_rng(5)
    gross = rng.normal(size=300)
    cost = rng.uniform(0.0, 0.5, size=300)
    rows = frame(list(gross), list(gross - cost)).with_columns(pl.Series("cost", cost))
    assert evaluate(rows, horizon=1)["ic"] == pytest.approx(1.0)


def test_newey_west_sees_the_dependence_of_overlapping_labels() -> None:
    rng = np.random.default_rng(8)
    shocks = rng.normal(size=20_005)
    iid = shocks[:20_000]
    overlapping = np.convolve(shocks, np.ones(5), mode="valid")  # 5-period sums: MA(4)
    assert newey_west_variance(iid, 15) == pytest.approx(np.var(iid), rel=0.05)
    # the long-run variance of a 5-period sum of unit shocks is 25; its variance is 5
    assert np.var(overlapping) == pytest.approx(5, rel=0.05)
    assert newey_west_variance(overlapping, 15) == pytest.approx(25, rel=0.15)


def test_t_statistics_separate_an_edge_from_noise() -> None:
    rng = np.random.default_rng(9)
    n = 1_000
    y = rng.normal(size=n)
    noise = frame(list(rng.normal(size=n)), list(y))
    edge = frame(list(0.3 * y + rng.normal(size=n)), list(y))
    quiet, loud = evaluate(noise, horizon=1), evaluate(edge, horizon=1)
    assert abs(quiet["ic_tstat"]) < 2.58 and abs(quiet["sharpe_gross_tstat"]) < 2.58
    # for independent rows the IC's t statistic is about IC * sqrt(n)
    assert loud["ic_tstat"] == pytest.approx(loud["ic"] * np.sqrt(n), rel=0.1)
    assert loud["ic_tstat"] > 5 and loud["sharpe_gross_tstat"] > 5
    assert mean_tstat(np.array([1.0, 2.0]), 1) != mean_tstat(np.array([1.0, 2.0]), 1)  # NaN
