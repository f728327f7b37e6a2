"""Purged, embargoed walk-forward splits: no training row sees the test window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_lake.errors import ConfigError
from models.splits import inner_split, plan_folds, shuffled_kfold, walk_forward

START = datetime(2024, 1, 2, 21, tzinfo=UTC)


def rows(n_snapshots: int, horizon: int, underlyings: int = 2) -> tuple[pl.Series, pl.Series]:
    """Daily snapshots for several underlyings; each label ends ``horizon`` later."""
    times = [START + timedelta(days=i) for i in range(n_snapshots)]
    t = [ts for ts in times for _ in range(underlyings)]
    ends = [ts + timedelta(days=horizon) for ts in t]
    return pl.Series("t", t), pl.Series("t_end", ends)


def test_training_rows_end_before_the_test_window_and_leave_the_embargo() -> None:
    t, t_end = rows(200, horizon=5)
    folds = walk_forward(t, t_end, 4, horizon=5)
    assert len(folds) == 4
    for fold in folds:
        train_t, train_end = t.gather(fold.train), t_end.gather(fold.train)
        assert (train_t < fold.test_start).all()
        assert (train_end < fold.test_start).all()  # purged: no label reaches the test
        gap = (fold.test_start - train_t.max()).days  # type: ignore[operator]
        assert gap > 5  # the embargo (5 snapshots) sits on top of the purge (5)
        assert fold.purged == 2 * 5 and fold.embargoed == 2 * 5  # two underlyings


def test_test_windows_are_consecutive_and_cover_the_later_part() -> None:
    t, t_end = rows(200, horizon=1)
    folds = walk_forward(t, t_end, 5, horizon=1, first_test_share=0.5)
    tested = np.concatenate([f.test for f in folds])
    assert len(np.unique(tested)) == len(tested)  # no row tested twice
    assert t.gather(tested).min() == START + timedelta(days=100)
    assert t.gather(tested).max() == START + timedelta(days=199)
    for before, after in itertools.pairwise(folds):
        assert after.test_start > before.test_end  # type: ignore[operator]


def test_expanding_grows_and_rolling_keeps_its_window() -> None:
    t, t_end = rows(200, horizon=1, underlyings=1)
    expanding = walk_forward(t, t_end, 3, horizon=1)
    rolling = walk_forward(t, t_end, 3, horizon=1, scheme="rolling", train_periods=60)
    assert [len(f.train) for f in expanding] == sorted(len(f.train) for f in expanding)
    assert len({len(f.train) for f in rolling}) == 1 and len(rolling[0].train) == 60 - 2


def test_without_the_purge_overlapping_labels_would_reach_the_test_window() -> None:
    t, t_end = rows(120, horizon=10, underlyings=1)
    fold = walk_forward(t, t_end, 1, horizon=10, embargo=0)[0]
    leaky = np.flatnonzero((t < fold.test_start).to_numpy())
    assert (t_end.gather(leaky) >= fold.test_start).sum() == 10 == fold.purged


def test_too_little_training_data_is_a_clear_error() -> None:
    t, t_end = rows(30, horizon=5)
    with pytest.raises(ConfigError, match=r"only \d+ training snapshots after purging"):
        walk_forward(t, t_end, 3, horizon=5, min_train_periods=20)


def test_a_long_history_gets_the_folds_asked_for_from_mid_way() -> None:
    t, t_end = rows(200, horizon=5)
    plan = plan_folds(t, t_end, 5, horizon=5)
    assert (plan.n_folds, plan.first_test_period, plan.periods) == (5, 100, 200)
    assert "folds 5 as requested" in plan.describe()


def test_the_demo_lake_moves_its_first_test_window_until_a_fold_can_train() -> None:
    """Regression: the weekly train-model run failed on the demo's lake with "fold 0:
    only 18 training snapshots after purging and embargo (need 20)"."""
    t, t_end = rows(56, horizon=5)  # 61 sessions, the last 5 without a 5-day label
    with pytest.raises(ConfigError, match="only 18 training snapshots"):
        walk_forward(t, t_end, 5, horizon=5)
    plan = plan_folds(t, t_end, 5, horizon=5)
    assert (plan.first_test_period, plan.n_folds) == (30, 5)
    folds = walk_forward(t, t_end, plan.n_folds, horizon=5,
                         first_test_period=plan.first_test_period)  # fmt: skip
    assert min(len(np.unique(t.gather(f.train))) for f in folds) == 20


def test_a_short_history_gets_fewer_folds_and_says_so() -> None:
    t, t_end = rows(44, horizon=5)
    plan = plan_folds(t, t_end, 5, horizon=5)
    assert (plan.first_test_period, plan.n_folds) == (30, 2)
    assert "folds 2 of the 5 requested" in plan.describe()
    assert "tests start at snapshot 31" in plan.describe()


def test_too_short_a_history_for_one_fold_names_what_to_change() -> None:
    t, t_end = rows(30, horizon=5)
    with pytest.raises(ConfigError) as raised:
        plan_folds(t, t_end, 5, horizon=5)
    message = str(raised.value)
    assert message.startswith("30 labelled snapshots cannot support one walk-forward fold")
    assert "volflow backfill" in message and "--horizon" in message
    assert "train.min_train_periods" in message


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(10, 150),
    horizon=st.integers(1, 10),
    requested=st.integers(1, 8),
    min_train=st.integers(1, 40),
)
def test_a_plan_is_the_earliest_start_whose_folds_all_train(
    n: int, horizon: int, requested: int, min_train: int
) -> None:
    t, t_end = rows(n, horizon, underlyings=2)
    try:
        plan = plan_folds(t, t_end, requested, horizon=horizon, min_train_periods=min_train)
    except ConfigError:  # refused: then even the latest start cannot train
        with pytest.raises(ConfigError):
            walk_forward(t, t_end, 1, horizon=horizon, min_train_periods=min_train,
                         first_test_period=n - max(5, horizon))  # fmt: skip
        return
    assert 1 <= plan.n_folds <= requested
    folds = walk_forward(t, t_end, plan.n_folds, horizon=horizon, min_train_periods=min_train,
                         first_test_period=plan.first_test_period)  # fmt: skip
    assert len(folds) == plan.n_folds
    assert all(len(np.unique(t.gather(f.test))) >= plan.min_test_periods for f in folds)
    if plan.first_test_period > n // 2:  # moved later: one snapshot earlier could not train
        with pytest.raises(ConfigError):
            walk_forward(t, t_end, 1, horizon=horizon, min_train_periods=min_train,
                         first_test_period=plan.first_test_period - 1)  # fmt: skip


def test_inner_split_is_purged_inside_the_training_window() -> None:
    t, t_end = rows(200, horizon=5)
    outer = walk_forward(t, t_end, 2, horizon=5)[1]
    fit, validation = inner_split(t, t_end, outer.train, horizon=5)
    assert set(fit) | set(validation) <= set(outer.train)
    first_validation = t.gather(validation).min()
    assert (t_end.gather(fit) < first_validation).all()
    assert (t.gather(validation) < outer.test_start).all()


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(60, 300),
    horizon=st.integers(1, 10),
    folds=st.integers(1, 6),
    underlyings=st.integers(1, 3),
    embargo=st.one_of(st.none(), st.integers(0, 10)),
)
def test_no_fold_ever_leaks(
    n: int, horizon: int, folds: int, underlyings: int, embargo: int | None
) -> None:
    t, t_end = rows(n, horizon, underlyings)
    try:
        found = walk_forward(t, t_end, folds, horizon=horizon, embargo=embargo,
                             min_train_periods=5)  # fmt: skip
    except ConfigError:
        return  # too little data for this many folds: refused, not leaked
    for fold in found:
        assert not set(fold.train) & set(fold.test)
        assert (t_end.gather(fold.train) < fold.test_start).all()


def test_the_leaky_kfold_tests_every_snapshot_once_and_trains_on_its_neighbours() -> None:
    t0 = datetime(2024, 1, 2, 21, tzinfo=UTC)
    t = pl.Series([t0 + timedelta(days=i // 2) for i in range(200)])  # two rows a snapshot
    folds = shuffled_kfold(t, 5, seed=3)
    tested = np.sort(np.concatenate([f.test for f in folds]))
    assert tested.tolist() == list(range(200))
    for fold in folds:
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert fold.train.size + fold.test.size == 200
        # a snapshot's rows are tested together
        assert set(t.gather(fold.test).to_list()).isdisjoint(t.gather(fold.train).to_list())
    # the leak: later snapshots train models that predict earlier ones
    assert any(t.gather(f.train).max() > t.gather(f.test).min() for f in folds)
