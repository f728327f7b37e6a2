"""Walk-forward splits that cannot leak: purged, embargoed, sized from the label.

Rows are (underlying, snapshot) observations with a start time ``t`` (the snapshot
the features are as of) and an end time ``t_end`` (the snapshot the label becomes
known: ``labels.ts_end``). The distinct snapshot times, across underlyings, form the
time axis; folds cut it into consecutive test windows.

For each outer fold the training rows are:

* before the test window (walk-forward: training never sees the future);
* **purged**: a row whose label ends at or after the first test snapshot is dropped,
  since its label overlaps the test window (for a horizon of h snapshots, the last h
  snapshots before the test window);
* **embargoed**: the ``embargo`` snapshots before the purged ones are dropped as
  well, so that features computed on overlapping trailing windows (20-day
  changes, realized volatility) do not carry the same information into the last
  training rows and the first test rows. The embargo defaults to the label horizon;
* within ``train_periods`` snapshots of the test window for a rolling scheme (all
  earlier snapshots for an expanding one).

``inner_split`` cuts a training set into a fit part and a validation part with the
same purge and embargo, for tuning inside each training window (nested), so the
outer test windows are never used to choose hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from data_lake.errors import ConfigError

Scheme = Literal["expanding", "rolling"]


@dataclass(frozen=True)
class Fold:
    """One outer fold: row positions of the training and test sets."""

    index: int
    train: np.ndarray  # positions into the rows given to the splitter
    test: np.ndarray
    test_start: object  # the first and last test snapshot times
    test_end: object
    purged: int  # training rows dropped because their label reached the test window
    embargoed: int  # training rows dropped by the embargo


def _time_axis(t: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct snapshot times, sorted, and each row's position on that axis."""
    axis = t.unique().sort()
    position = t.to_frame("t").join(
        axis.to_frame("t").with_row_index("_pos"), on="t", how="left", maintain_order="left"
    )["_pos"]
    return axis, position.to_numpy()


def _training_periods(
    position: np.ndarray, times: np.ndarray, ends: np.ndarray, lo: int, embargo: int, earliest: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, purged, embargoed) row masks for a test window starting at axis
    position ``lo``: rows before it, less those whose label reaches it (purged) and the
    ``embargo`` snapshots before the earliest purged one."""
    before = (position < lo) & (position >= earliest)
    purged = before & (ends >= times[lo])
    # the embargo sits before the earliest purged snapshot (on top of the purge)
    edge = int(position[purged].min()) if purged.any() else lo
    embargoed = before & ~purged & (position >= edge - embargo)
    return before & ~purged & ~embargoed, purged, embargoed


def walk_forward(
    t: pl.Series,
    t_end: pl.Series,
    n_folds: int,
    *,
    horizon: int,
    scheme: Scheme = "expanding",
    train_periods: int | None = None,
    min_train_periods: int = 20,
    embargo: int | None = None,
    first_test_share: float = 0.5,
    first_test_period: int | None = None,
) -> list[Fold]:
    """Outer folds over rows with start times ``t`` and label end times ``t_end``.

    The first ``first_test_share`` of the time axis (or its first ``first_test_period``
    snapshots, as :func:`plan_folds` chooses) is only ever trained on; the rest is cut
    into ``n_folds`` consecutive test windows of (nearly) equal length. ``horizon`` is
    the label's horizon in snapshots (sizes the default embargo).
    """
    if n_folds < 1:
        raise ConfigError(f"n_folds must be at least 1, not {n_folds}")
    if t.len() != t_end.len():
        raise ConfigError("t and t_end must have one value per row")
    if scheme == "rolling" and not train_periods:
        raise ConfigError("a rolling scheme needs train_periods")
    embargo = horizon if embargo is None else embargo
    axis, position = _time_axis(t)
    times, ends = axis.to_numpy(), t_end.to_numpy()
    first_test = (
        int(len(axis) * first_test_share) if first_test_period is None else first_test_period
    )
    bounds = np.linspace(first_test, len(axis), n_folds + 1).astype(int)
    folds = []
    for k in range(n_folds):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if hi <= lo:
            continue
        test = np.flatnonzero((position >= lo) & (position < hi))
        earliest = max(0, lo - train_periods) if scheme == "rolling" and train_periods else 0
        train_mask, purged, embargoed = _training_periods(
            position, times, ends, lo, embargo, earliest
        )
        train = np.flatnonzero(train_mask)
        if len(np.unique(position[train])) < min_train_periods:
            raise ConfigError(
                f"fold {k}: only {len(np.unique(position[train]))} training snapshots after "
                f"purging and embargo (need {min_train_periods}): use fewer folds or more data"
            )
        folds.append(
            Fold(k, train, test, axis[lo], axis[hi - 1], int(purged.sum()), int(embargoed.sum()))
        )
    return folds


@dataclass(frozen=True)
class FoldPlan:
    """The expanding walk-forward the data supports, for a requested number of folds."""

    requested: int
    n_folds: int
    periods: int  # distinct snapshots with the label
    first_test_period: int  # axis position of the first test snapshot
    min_train_periods: int
    min_test_periods: int
    horizon: int
    embargo: int

    def describe(self) -> str:
        fewer = (
            f"{self.n_folds} of the {self.requested} requested (test windows need at least "
            f"{self.min_test_periods} snapshots)"
            if self.n_folds < self.requested
            else f"{self.n_folds} as requested"
        )
        return (
            f"walk-forward over {self.periods} snapshots: folds {fewer}; tests start at "
            f"snapshot {self.first_test_period + 1}, with at least {self.min_train_periods} "
            f"training snapshots left after a purge of {self.horizon} and an embargo of "
            f"{self.embargo}"
        )


def plan_folds(
    t: pl.Series,
    t_end: pl.Series,
    requested: int,
    *,
    horizon: int,
    min_train_periods: int = 20,
    embargo: int | None = None,
    first_test_share: float = 0.5,
    min_test_periods: int | None = None,
) -> FoldPlan:
    """The folds of an expanding walk-forward that this data can support.

    Tests start after ``first_test_share`` of the snapshots, or later, at the first
    snapshot whose training window keeps ``min_train_periods`` after the purge and the
    embargo; the rest is cut into at most ``requested`` windows of at least
    ``min_test_periods`` (default: max(5, horizon)) snapshots each. A ConfigError says
    what is missing when not even one fold fits.
    """
    if requested < 1:
        raise ConfigError(f"n_folds must be at least 1, not {requested}")
    embargo = horizon if embargo is None else embargo
    min_test = min_test_periods or max(5, horizon)
    axis, position = _time_axis(t)
    times, ends, n = axis.to_numpy(), t_end.to_numpy(), len(axis)

    def trainable(lo: int) -> int:
        train, _, _ = _training_periods(position, times, ends, lo, embargo, 0)
        return len(np.unique(position[train]))

    # training snapshots grow with the test start (expanding): the first that has enough
    lo, hi = int(n * first_test_share), n - min_test
    if hi < lo or trainable(hi) < min_train_periods:
        raise ConfigError(
            f"{n} labelled snapshots cannot support one walk-forward fold at horizon "
            f"{horizon}: it needs {min_train_periods} training snapshots after a purge of "
            f"{horizon} and an embargo of {embargo}, then {min_test} test snapshots "
            f"(about {min_train_periods + horizon + embargo + min_test} in all, and the first "
            f"{first_test_share:.0%} are only trained on): add history (volflow backfill) or "
            "lower train.horizon (--horizon) or train.min_train_periods"
        )
    while lo < hi:
        middle = (lo + hi) // 2
        if trainable(middle) >= min_train_periods:
            hi = middle
        else:
            lo = middle + 1
    n_folds = min(requested, (n - lo) // min_test)
    return FoldPlan(requested, n_folds, n, lo, min_train_periods, min_test, horizon, embargo)


def inner_split(
    t: pl.Series,
    t_end: pl.Series,
    rows: np.ndarray,
    *,
    horizon: int,
    validation_share: float = 0.25,
    embargo: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) positions within training ``rows``: the last
    ``validation_share`` of their snapshots validates, purged and embargoed."""
    sub_t, sub_end = t.gather(rows), t_end.gather(rows)
    (fold,) = walk_forward(
        sub_t, sub_end, 1, horizon=horizon, embargo=embargo,
        first_test_share=1 - validation_share, min_train_periods=1,
    )  # fmt: skip
    return rows[fold.train], rows[fold.test]


def shuffled_kfold(t: pl.Series, n_folds: int, seed: int = 7) -> list[Fold]:
    """THE DELIBERATELY LEAKY VALIDATION, for the tests that prove leaks show: the
    snapshots are shuffled into ``n_folds`` folds and each is tested by training on all
    the others, future ones included, with no purge and no embargo (a plain shuffled
    K-fold). With overlapping labels every test row has training neighbours whose
    labels share most of its window. Never use it to judge a model."""
    if n_folds < 2:
        raise ConfigError(f"a k-fold split needs at least 2 folds, not {n_folds}")
    axis, position = _time_axis(t)
    order = np.random.default_rng(seed).permutation(len(axis))
    fold_of = np.empty(len(axis), dtype=np.int64)
    fold_of[order] = np.arange(len(axis)) % n_folds
    row_fold = fold_of[position]
    folds = []
    for k in range(n_folds):
        test = np.flatnonzero(row_fold == k)
        train = np.flatnonzero(row_fold != k)
        folds.append(Fold(k, train, test, axis.min(), axis.max(), 0, 0))
    return folds
