"""The linear baseline: ridge regression on standardized features, under the same
walk-forward as LightGBM, so a user sees whether the trees add anything.

Everything is fitted on a fold's training rows only: the features' means and
standard deviations (a missing value becomes the training mean, i.e. 0 once
standardized), and the ridge penalty (a multiple of the training rows), chosen from
``ALPHAS`` by the validation IC of the training window's inner split (purged and
embargoed like the outer folds); the model is then refitted on the whole training
window with that penalty.
"""

from __future__ import annotations

import numpy as np

from models.metrics import pearson

# the ridge penalty as a multiple of the training rows (standardized features make the
# Gram matrix about n times the correlation matrix): from almost OLS to heavy shrinkage
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)


def _scaler(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and deviations of ``reference``'s finite values (a column with none,
    e.g. a z-score on a short history, gets 0 and 1: it standardizes to all zeros)."""
    finite = np.isfinite(reference)
    count = finite.sum(axis=0)
    safe = np.maximum(count, 1)
    mean = np.where(finite, reference, 0.0).sum(axis=0) / safe
    spread = np.where(finite, reference - mean, 0.0)
    sd = np.sqrt((spread * spread).sum(axis=0) / safe)
    return np.where(count > 0, mean, 0.0), np.where((count > 0) & (sd > 0), sd, 1.0)


def _standardized(x: np.ndarray, scale: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    z = (x - scale[0]) / scale[1]
    return np.where(np.isfinite(z), z, 0.0)


def _ridge(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, alpha: float
) -> np.ndarray:
    mean_y = float(np.mean(y_train))
    gram = z_train.T @ z_train + alpha * len(z_train) * np.eye(z_train.shape[1])
    coef = np.linalg.solve(gram, z_train.T @ (y_train - mean_y))
    return np.asarray(mean_y + z_test @ coef)


def ridge_fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float
) -> np.ndarray:
    """Ridge (intercept unpenalized, penalty ``alpha`` times the training rows) fitted on
    standardized training features."""
    scale = _scaler(x_train)
    return _ridge(_standardized(x_train, scale), y_train, _standardized(x_test, scale), alpha)


def choose_alpha(x: np.ndarray, y: np.ndarray, fit: np.ndarray, validation: np.ndarray) -> float:
    """The penalty in ``ALPHAS`` with the best validation IC (standardized once)."""
    scale = _scaler(x[fit])
    z_fit, z_val = _standardized(x[fit], scale), _standardized(x[validation], scale)
    scores = [pearson(_ridge(z_fit, y[fit], z_val, alpha), y[validation]) for alpha in ALPHAS]
    return ALPHAS[int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))]
