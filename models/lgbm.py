"""LightGBM pieces shared by walk-forward training and tuning."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbosity": -1,
}


def training_params(params: dict[str, Any], seed: int, num_threads: int) -> dict[str, Any]:
    """DEFAULT_PARAMS overridden by ``params``, seeded, deterministic, with its threads."""
    return {**DEFAULT_PARAMS, **params, "seed": seed, "num_threads": num_threads,
            "deterministic": True, "force_row_wise": True}  # fmt: skip


def matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.cast(pl.Float64).fill_null(float("nan")).to_numpy()


def fit_predict(
    features_train: pl.DataFrame,
    y_train: np.ndarray,
    features_test: pl.DataFrame,
    params: dict[str, Any],
    rounds: int,
    seed: int,
    num_threads: int,
) -> np.ndarray:
    """Fit one LightGBM regressor and predict the test rows."""
    booster = lgb.train(
        training_params(params, seed, num_threads),
        lgb.Dataset(matrix(features_train), label=y_train),
        rounds,
    )
    return np.asarray(booster.predict(matrix(features_test)))
