"""Walk-forward LightGBM: fit on each purged training window, predict its test window.

The out-of-sample record is the concatenation of every fold's test predictions; the
metrics (``models.metrics``) are computed per fold and over the whole record. Each
fold's model sees only its own training rows: LightGBM needs no fitted preprocessing
(missing values are handled natively), so nothing is fitted on the whole data.

Threads: LightGBM uses ``num_threads`` (1 by default: on a shared 2-core machine two
threads of a busy process were measured 200x slower without ``OMP_WAIT_POLICY=PASSIVE``,
which the CLI sets); ``deterministic`` and a fixed seed make a run reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from models.dataset import Dataset
from models.lgbm import fit_predict, matrix
from models.linear import choose_alpha, ridge_fit_predict
from models.metrics import evaluate
from models.splits import Fold, inner_split, shuffled_kfold, walk_forward
from models.tuning import tune

Leak = Literal["none", "no_purge", "shuffled_kfold"]
Model = Literal["lightgbm", "linear"]
MODELS: tuple[str, ...] = ("lightgbm", "linear")
LEAKS: tuple[str, ...] = ("none", "no_purge", "shuffled_kfold")


def fit_target(frame: pl.DataFrame) -> np.ndarray:
    """What the model is fitted to: the label's gross value, ``y + cost``. Costs are what
    trading pays (the strategy metrics charge them); they are not something to forecast.
    A model fitted to the net value learns the spread, which varies with the state
    (tick sizes, premium levels) and is no edge: on the fair synthetic market such a
    model showed an out-of-sample IC of 0.10 at h=1 that was all spread."""
    return (frame["y"] + frame["cost"]).to_numpy()


@dataclass
class WalkForwardResult:
    """Out-of-sample predictions and metrics of one walk-forward run."""

    predictions: pl.DataFrame  # underlying, t, y, cost, prediction, fold
    fold_metrics: list[dict[str, float]]
    overall: dict[str, float]
    folds: list[Fold] = field(repr=False, default_factory=list)
    fold_params: list[dict[str, Any]] = field(default_factory=list)  # what each fold used


def run_walk_forward(
    dataset: Dataset,
    n_folds: int,
    *,
    params: dict[str, Any] | None = None,
    rounds: int = 200,
    seed: int = 7,
    num_threads: int = 1,
    short_cost: float = 0.0,
    leak: Leak = "none",
    trials: int = 0,
    timeout: float | None = None,
    storage: str | None = None,
    first_test_period: int | None = None,
    min_train_periods: int = 20,
    model: Model = "lightgbm",
) -> WalkForwardResult:
    """Outer walk-forward folds. With ``trials`` > 0 each fold's parameters (and number
    of rounds) are tuned by Optuna inside its own training window (``models.tuning``,
    nested: the fold's test rows are never seen); else ``params`` are used as given.
    ``leak`` other than "none" is a deliberately leaky variant, kept to prove that the
    tests using it have teeth: "no_purge" walks forward without purge or embargo;
    "shuffled_kfold" tests each of ``n_folds`` shuffled snapshot folds with a model
    trained on all the others (``models.splits.shuffled_kfold``). ``first_test_period``
    places the first test window (``models.splits.plan_folds``); default: mid-way.
    ``model="linear"``: the ridge baseline (``models.linear``) instead of LightGBM,
    its penalty chosen inside each training window (``trials`` ignored)."""
    frame = dataset.frame
    if "cost" not in frame.columns:  # a label that is not a traded return
        frame = frame.with_columns(pl.lit(0.0).alias("cost"))
    horizon = dataset.horizon
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    if leak not in LEAKS:
        raise ValueError(f"leak must be one of {', '.join(LEAKS)}, not {leak!r}")
    # leaky variants pretend labels are known at once: nothing to purge inside training
    t_end = frame["t_end"] if leak == "none" else frame["t"]
    if leak == "shuffled_kfold":
        folds = shuffled_kfold(frame["t"], n_folds, seed)
    else:
        folds = walk_forward(frame["t"], t_end, n_folds, horizon=horizon,
                             embargo=None if leak == "none" else 0,
                             first_test_period=first_test_period,
                             min_train_periods=min_train_periods)  # fmt: skip
    features = dataset.features
    y = fit_target(frame)
    parts, fold_metrics, fold_params = [], [], []
    x_all = matrix(features) if model == "linear" else None
    for fold in folds:
        chosen, fold_rounds = dict(params or {}), rounds
        if x_all is not None:
            fit, validation = inner_split(frame["t"], t_end, fold.train, horizon=horizon)
            alpha = choose_alpha(x_all, y, fit, validation)
            fold_params.append({"alpha": alpha})
            train_x, test_x = x_all[fold.train], x_all[fold.test]
            prediction = ridge_fit_predict(train_x, y[fold.train], test_x, alpha)
        elif trials > 0:
            fit, validation = inner_split(frame["t"], t_end, fold.train, horizon=horizon)
            tuned = tune(features, y, fit, validation, trials=trials, timeout=timeout,
                         seed=seed, num_threads=num_threads, storage=storage,
                         study_name=f"fold-{fold.index}")  # fmt: skip
            fold_rounds = int(tuned.params.pop("rounds"))
            chosen.update(tuned.params)
        if x_all is None:
            fold_params.append({**chosen, "rounds": fold_rounds})
            prediction = fit_predict(
                features[fold.train], y[fold.train], features[fold.test],
                chosen, fold_rounds, seed, num_threads,
            )  # fmt: skip
        part = (
            frame[fold.test]
            .select("underlying", "t", "t_end", "y", "cost")
            .with_columns(pl.Series("prediction", prediction), pl.lit(fold.index).alias("fold"))
        )
        parts.append(part)
        fold_metrics.append({"fold": float(fold.index), **evaluate(part, horizon, short_cost)})
    predictions = pl.concat(parts)
    return WalkForwardResult(
        predictions, fold_metrics, evaluate(predictions, horizon, short_cost), folds, fold_params
    )
