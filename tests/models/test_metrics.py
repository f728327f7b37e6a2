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
    assert metrics["ic_demeaned"] == pytest.approx(pearsonr(prediction, y)[0], abs=1e-12)
    assert metrics["rank_ic_demeaned"] == pytest.approx(spearmanr(prediction, y)[0], abs=1e-12)
    # the demeaned hit rate is that of the demeaned prediction against the demeaned label
    hits = np.sign(prediction - prediction.mean()) == np.sign(y - y.mean())
    assert metrics["hit_rate_demeaned"] == pytest.approx(np.mean(hits))
    assert metrics["ic_pooled"] == pytest.approx(metrics["ic_demeaned"], abs=1e-12)  # one group
    # one underlying: the headline is the trailing IC
    assert metrics["ic_is_cross_section"] == 0.0 and metrics["ic"] == metrics["ic_trailing"]


def test_the_trailing_ic_uses_only_means_known_at_each_snapshot() -> None:
    rng = np.random.default_rng(21)
    n, h = 300, 5
    y = rng.normal(size=n) + 0.5
    prediction = 0.5 * y + rng.normal(size=n) + np.linspace(0, 3, n)  # a drifting level
    rows = frame(list(prediction), list(y))
    rows = rows.with_columns((pl.col("t") + timedelta(days=h)).alias("t_end"))
    got = evaluate(rows, horizon=h)
    # row by row: the prediction less the mean of the previous 63 (at least 20), the
    # label less the mean of those ended by then (rows 0 .. i - h; at least 20)
    first = 20 + h - 1
    dp = np.array([prediction[i] - prediction[max(0, i - 63) : i].mean() for i in range(first, n)])
    dy = np.array([y[i] - y[: i - h + 1].mean() for i in range(first, n)])
    assert got["trailing_rows"] == len(dp) == n - first
    assert got["ic_trailing"] == pytest.approx(dp @ dy / np.sqrt((dp @ dp) * (dy @ dy)))
    assert got["hit_rate_trailing"] == pytest.approx(np.mean(np.sign(dp) == np.sign(dy)))
    assert got["ic_trailing"] > 0.25  # the drift, known, does not hide the timing
    # without t_end, the labels ``horizon`` rows back count as ended: the same here
    assert evaluate(rows.drop("t_end"), horizon=h)["ic_trailing"] == pytest.approx(
        got["ic_trailing"]
    )


def test_strategy_takes_the_predictions_sign_and_pays_the_short_cost() -> None:
    rows = frame([1.0, -2.0, 0.5], [0.10, -0.05, -0.02])
    returns = strategy_returns(rows, horizon=1, short_cost=0.01).to_list()
    assert returns == pytest.approx([0.10, 0.05 - 0.01, -0.02])
    overlapping = strategy_returns(rows, horizon=5).to_list()
    assert overlapping == pytest.approx([0.02, 0.01, -0.004])  # 1/h of capital each


def test_sharpe_and_drawdown() -> None:
    returns = pl.Series([0.01, -0.02, 0.03, -0.01, 0.02])
    expected = np.mean(returns.to_numpy()) / np.std(returns.to_numpy()) * np.sqrt(252)
    assert sharpe(returns, 252, lags=0) == pytest.approx(expected)  # no lags: the plain ratio
    assert max_drawdown(returns) == pytest.approx(0.02)  # from 0.01 down to -0.01
    assert np.isnan(sharpe(pl.Series([0.01, 0.01, 0.01]), 252, 0))  # no variance, no ratio


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
    got = evaluate(rows, horizon=1)
    assert got["ic_demeaned"] == pytest.approx(1.0)
    assert got["ic_trailing"] == pytest.approx(
        evaluate(frame(list(gross), list(gross)), horizon=1)["ic_trailing"]
    )


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


def _sessions(n: int, per_day: int = 1) -> list[datetime]:
    """``per_day`` snapshots an hour apart on each of ``n`` weekdays."""
    days = [T0.date() + timedelta(days=i) for i in range(2 * n)]
    weekdays = [d for d in days if d.weekday() < 5][:n]
    return [datetime(d.year, d.month, d.day, 15 + k, tzinfo=UTC) for d in weekdays
            for k in range(per_day)]  # fmt: skip


def test_the_sharpe_of_overlapping_positions_is_not_inflated_by_sqrt_h() -> None:
    """A constant long position in 5-day returns of an i.i.d. daily series (mean m,
    sd s) has the daily series' Sharpe, m / s * sqrt(periods a year), whatever the
    overlap; the plain standard deviation of the staggered returns gives about
    sqrt(5) times more."""
    rng = np.random.default_rng(11)
    n, h, m, s = 12_000, 5, 0.0004, 0.01
    daily = rng.normal(m, s, n + h)
    y = np.convolve(daily, np.ones(h), mode="valid")[1 : n + 1]  # days t+1 .. t+h
    t = _sessions(n)
    rows = pl.DataFrame({"t": t, "y": y, "prediction": np.ones(n)})
    got = evaluate(rows, horizon=h)
    periods = got["periods_per_year"]
    assert periods == pytest.approx(261, rel=0.01)  # weekdays a year: the rows' own calendar
    # the daily series' own Sharpe (its sample mean: the same draws, no sampling error)
    truth = np.mean(daily[1:]) / s * np.sqrt(periods)
    assert got["sharpe_gross"] == pytest.approx(truth, rel=0.1)
    plain = sharpe(strategy_returns(rows, h, gross=True), periods, lags=0)
    assert plain == pytest.approx(truth * np.sqrt(h), rel=0.1)  # the overstatement fixed
    assert got["sharpe_gross"] == pytest.approx(
        got["sharpe_gross_tstat"] * np.sqrt(periods / got["snapshots"]), rel=1e-9
    )


def test_an_hourly_lake_is_annualized_with_its_own_snapshots() -> None:
    rng = np.random.default_rng(12)
    daily, hourly = _sessions(500), _sessions(500, per_day=7)
    for t in (daily, hourly):
        rows = pl.DataFrame({"t": t, "y": rng.normal(0.001, 0.01, len(t)), "prediction": 1.0})
        got = evaluate(rows, horizon=1)
        assert got["periods_per_year"] == pytest.approx(261 * len(t) / 500, rel=0.02)


def test_level_is_not_counted_as_skill() -> None:
    """Two underlyings whose label means differ, and folds whose intercepts differ,
    with predictions that know the levels but nothing about timing: the pooled IC
    is large, the IC demeaned within underlying x fold is noise; the same
    predictions with timing skill keep it."""
    rng = np.random.default_rng(13)
    n = 2_000
    t = _sessions(n)
    parts = []
    for name, level in (("AAA", 0.03), ("BBB", -0.03)):
        for fold in range(4):
            shift = 0.02 * (fold - 1.5)
            k = n // 4
            y = level + shift + rng.normal(0, 0.02, k)
            parts.append(pl.DataFrame({
                "underlying": name, "fold": fold, "t": t[fold * k:(fold + 1) * k], "y": y,
                "level": level + shift + rng.normal(0, 0.001, k), "timing": y - level - shift,
            }))  # fmt: skip
    rows = pl.concat(parts)
    blind = evaluate(rows.with_columns(pl.col("level").alias("prediction")), horizon=1)
    assert blind["ic_pooled"] > 0.7
    assert abs(blind["ic_demeaned"]) < 0.05 and abs(blind["ic_demeaned_tstat"]) < 2.58
    assert blind["hit_rate_demeaned"] == pytest.approx(0.5, abs=0.03)
    noisy = pl.col("timing") + rng.normal(0, 0.04, rows.height)
    skilled = evaluate(rows.with_columns(noisy.alias("prediction")), horizon=1)
    # corr(y, y + 2 sd noise)
    assert skilled["ic_demeaned"] == pytest.approx(1 / np.sqrt(5), abs=0.04)
    assert skilled["ic_demeaned_tstat"] > 10 and skilled["hit_rate_demeaned"] > 0.6
    # the headline with two underlyings, the trailing IC, sees the timing too, less
    # strongly: the label's deviation from its expanding mean holds the folds' shifts,
    # which this prediction does not know
    assert 0.25 < skilled["ic"] < 1 / np.sqrt(5)
    assert skilled["ic_tstat"] > 10 and skilled["hit_rate"] > 0.55


def test_the_cross_sectional_ic_is_the_mean_of_the_per_snapshot_correlations() -> None:
    rng = np.random.default_rng(14)
    n, names = 400, ["A", "B", "C", "D", "E"]
    t = _sessions(n)
    y = rng.normal(size=(n, len(names))) + rng.normal(size=(n, 1)) * 3  # a common factor
    prediction = y - y.mean(axis=1, keepdims=True) + rng.normal(size=y.shape)
    rows = pl.DataFrame({
        "t": np.repeat(np.array(t, dtype=object), len(names)).tolist(),
        "underlying": names * n, "y": y.ravel(), "prediction": prediction.ravel(),
    })  # fmt: skip
    got = evaluate(rows, horizon=1)
    per = [pearsonr(prediction[i], y[i])[0] for i in range(n)]
    assert got["ic_cross_section"] == pytest.approx(np.mean(per), abs=1e-9)
    # five underlyings at every snapshot: the headline is the cross-sectional IC
    assert got["ic_is_cross_section"] == 1.0 and got["ic"] == got["ic_cross_section"]
    assert got["ic_tstat"] == got["ic_cross_section_tstat"]
    assert got["cross_section_snapshots"] == n and got["ic_cross_section_tstat"] > 10
    two = rows.filter(pl.col("underlying").is_in(["A", "B"]))
    assert np.isnan(evaluate(two, horizon=1)["ic_cross_section"])  # 2 points: no correlation


def _persistent_world(seed: int, names: int = 8, folds: int = 4, per_fold: int = 150,
                      phi: float = 0.98, h: int = 5) -> pl.DataFrame:  # fmt: skip
    """Nothing to predict: each underlying's state ``x`` is an AR(1) (half-life 34
    snapshots) and its label the sum of the state's next ``h`` shocks (like a
    straddle's vega P&L: the label moves the state); the prediction is ``-x``."""
    rng = np.random.default_rng(seed)
    n = folds * per_fold
    t = _sessions(n)
    parts = []
    for u in range(names):
        shocks = rng.normal(size=n + h + 200)
        x = np.zeros_like(shocks)
        for i in range(1, len(x)):
            x[i] = phi * x[i - 1] + shocks[i]
        x, shocks = x[200:], shocks[200:]
        y = np.convolve(shocks, np.ones(h))[h : h + n]  # shocks i+1 .. i+h
        parts.append(pl.DataFrame({
            "underlying": f"U{u}", "fold": np.repeat(np.arange(folds), per_fold), "t": t,
            "y": y, "prediction": -x[:n],
        }))  # fmt: skip
    return pl.concat(parts)


def test_a_persistent_predictor_gets_no_ic_from_the_test_windows_own_means() -> None:
    """Demeaned within underlying x fold, a prediction that follows a persistent state
    scores an IC it does not have (the fold's mean holds the later states, which the
    label's shocks move); the cross-sectional IC, the headline here, does not."""
    got = [evaluate(_persistent_world(seed), horizon=5) for seed in range(10)]
    demeaned = np.array([g["ic_demeaned"] for g in got])
    across = np.array([g["ic"] for g in got])
    assert all(g["ic_is_cross_section"] == 1.0 for g in got)
    assert demeaned.mean() > 0.1 and np.mean([g["ic_demeaned_tstat"] for g in got]) > 2.58
    assert abs(across.mean()) < 0.03  # sd of one world's: about 0.03
    assert sum(abs(g["ic_tstat"]) > 2.58 for g in got) <= 1
    assert abs(np.mean([g["sharpe_gross_tstat"] for g in got])) < 1  # no edge to trade


def test_with_two_underlyings_the_headline_does_not_look_ahead_either() -> None:
    """The persistent world with two underlyings (no cross-section): the demeaned IC
    credits the predictor, the trailing IC, the headline there, does not."""
    got = [evaluate(_persistent_world(seed, names=2), horizon=5) for seed in range(20)]
    assert all(g["ic_is_cross_section"] == 0.0 and g["ic"] == g["ic_trailing"] for g in got)
    assert np.mean([g["ic_demeaned"] for g in got]) > 0.1
    assert abs(np.mean([g["ic"] for g in got])) < 0.03
    assert sum(abs(g["ic_tstat"]) > 2.58 for g in got) <= 2
