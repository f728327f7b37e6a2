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

# the ridge penalty as a multiple of the training rows (standardized features make the
# Gram matrix about n times the correlation matrix): from almost OLS to heavy shrinkage
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)


def _standardize(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``x`` standardized with ``reference``'s column means and deviations (a column
    with no values there, e.g. a z-score on a short history, becomes all zeros)."""
    finite = np.isfinite(reference)
    count = finite.sum(axis=0)
    values = np.where(finite, reference, 0.0)
    safe = np.maximum(count, 1)
    mean = values.sum(axis=0) / safe
    spread = np.where(finite, reference - mean, 0.0)
    sd = np.sqrt((spread * spread).sum(axis=0) / safe)
    mean = np.where(count > 0, mean, 0.0)
    sd = np.where((count > 0) & (sd > 0), sd, 1.0)
    z = (x - mean) / sd
    return np.where(np.isfinite(z), z, 0.0)


def ridge_fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float
) -> np.ndarray:
    """Ridge (intercept unpenalized, penalty ``alpha`` times the training rows) fitted on
    standardized training features."""
    z_train, z_test = _standardize(x_train, x_train), _standardize(x_test, x_train)
    mean_y = float(np.mean(y_train))
    gram = z_train.T @ z_train + alpha * len(z_train) * np.eye(z_train.shape[1])
    coef = np.linalg.solve(gram, z_train.T @ (y_train - mean_y))
    return np.asarray(mean_y + z_test @ coef)


def _ic(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return -np.inf
    return float(np.corrcoef(a, b)[0, 1])


def choose_alpha(x: np.ndarray, y: np.ndarray, fit: np.ndarray, validation: np.ndarray) -> float:
    """The penalty in ``ALPHAS`` with the best validation IC."""
    scores = []
    for alpha in ALPHAS:
        predicted = ridge_fit_predict(x[fit], y[fit], x[validation], alpha)
        scores.append(_ic(predicted, y[validation]))
    return ALPHAS[int(np.argmax(scores))]
