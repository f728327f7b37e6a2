"""Optuna tuning of LightGBM inside one training window (nested: never on test folds).

The training rows are split by ``splits.inner_split`` (purged and embargoed like the
outer folds) into a fit part and a validation part; each trial fits on the first and
scores the rank IC of its predictions on the second, reporting it every
``REPORT_EVERY`` boosting rounds so that the median pruner stops bad trials early.
The sampler is TPE with a fixed seed.

Storage: in memory by default; ``storage`` may be a path (an Optuna JournalStorage
file, which several worker processes can share: the distributed mode) or a database
URL (``postgresql://...``, ``sqlite:///...``) for several machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import polars as pl
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from models.lgbm import matrix, training_params

REPORT_EVERY = 25
MAX_ROUNDS = 400


@dataclass(frozen=True)
class TuningResult:
    params: dict[str, Any]  # LightGBM parameters, "rounds" included
    value: float  # the best trial's validation rank IC
    trials: int  # finished trials in the study (all workers)
    pruned: int


def storage_for(storage: str | None) -> optuna.storages.BaseStorage | None:
    """None (in memory), a JournalStorage file, or an RDB URL."""
    if storage is None:
        return None
    if "://" in storage:
        return optuna.storages.RDBStorage(storage)
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """The search space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 300, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def _rank_ic(prediction: np.ndarray, y: np.ndarray) -> float:
    ranks = pl.DataFrame({"p": prediction, "y": y}).select(pl.all().rank())
    if ranks["p"].std() == 0 or ranks["y"].std() == 0:
        return 0.0
    return float(np.corrcoef(ranks["p"].to_numpy(), ranks["y"].to_numpy())[0, 1])


def objective(
    features: pl.DataFrame, y: np.ndarray, fit: np.ndarray, validation: np.ndarray,
    seed: int, num_threads: int,
) -> Any:  # fmt: skip
    """The trial function: fit on ``fit`` rows, report validation rank IC as it grows."""
    x_fit, x_val = matrix(features[fit]), matrix(features[validation])
    y_fit, y_val = y[fit], y[validation]

    def run(trial: optuna.Trial) -> float:
        params = training_params(suggest(trial), seed, num_threads)
        best = {"value": -1.0, "rounds": REPORT_EVERY}

        def report(env: lgb.callback.CallbackEnv) -> None:
            done = env.iteration + 1
            if done % REPORT_EVERY:
                return
            predicted = np.asarray(env.model.predict(x_val, num_iteration=done))  # type: ignore[call-arg]
            value = _rank_ic(predicted, y_val)
            if value > best["value"]:
                best.update(value=value, rounds=done)
            trial.report(value, done)
            if trial.should_prune():
                raise optuna.TrialPruned

        lgb.train(params, lgb.Dataset(x_fit, label=y_fit), MAX_ROUNDS, callbacks=[report])
        trial.set_user_attr("rounds", best["rounds"])
        return best["value"]

    return run


def tune(
    features: pl.DataFrame,
    y: np.ndarray,
    fit: np.ndarray,
    validation: np.ndarray,
    *,
    trials: int,
    timeout: float | None = None,
    seed: int = 7,
    num_threads: int = 1,
    storage: str | None = None,
    study_name: str = "volflow",
) -> TuningResult:
    """Run (or join, with a shared ``storage``) a study and return its best parameters."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage_for(storage),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=REPORT_EVERY),
        load_if_exists=True,
    )
    study.optimize(
        objective(features, y, fit, validation, seed, num_threads),
        n_trials=trials,
        timeout=timeout,
    )
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    best = study.best_trial
    params = {**best.params, "rounds": int(best.user_attrs.get("rounds", REPORT_EVERY))}
    return TuningResult(params, float(best.value or 0.0), len(done), len(pruned))
