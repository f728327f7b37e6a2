"""The ``train-model`` flow: a walk-forward study tracked in MLflow, registered, and
promoted to champion only when it beats the current one on the same folds."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from data_lake.errors import ConfigError
from flows.settings import Settings, SymbolList, load_settings
from models.dataset import load_dataset
from models.oracle import load_truth
from models.train import TrainConfig, train
from tasks.failures import fails_cleanly


class TrainParams(BaseModel):
    """Parameters of a training run (defaults: settings.train)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    underlyings: SymbolList | None = None  # default: every underlying with features
    label: str | None = None
    horizon: int | None = Field(default=None, ge=1)
    trials: int | None = Field(default=None, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    n_folds: int | None = Field(default=None, ge=1)


def train_config(params: TrainParams, settings: Settings) -> TrainConfig:
    s = settings.train
    return TrainConfig(
        label=params.label or s.label,
        horizon=params.horizon or s.horizon,
        n_folds=params.n_folds or s.n_folds,
        trials=s.trials if params.trials is None else params.trials,
        timeout=params.timeout_seconds or s.timeout_seconds,
        seed=s.seed,
        num_threads=s.num_threads,
        short_cost=s.short_cost,
        storage=s.optuna_storage,
        min_train_periods=s.min_train_periods,
        promotion_tstat=s.promotion_tstat,
        min_paired_snapshots=s.min_paired_snapshots,
    )


@task(name="train-walk-forward", cache_policy=NO_CACHE)
def train_task(params: TrainParams, settings: Settings) -> dict[str, Any]:
    config = train_config(params, settings)
    dataset = load_dataset(settings.lake, params.underlyings, config.label, config.horizon)
    if dataset.frame.is_empty():
        raise ConfigError(
            f"no training rows for label {config.label!r} at horizon {config.horizon}: run "
            "`volflow features build` first; a row needs its label "
            f"{config.horizon} snapshots later, so add history or lower --horizon (and check "
            "features.horizons)"
        )
    (settings.home.resolve() / "mlflow").mkdir(parents=True, exist_ok=True)
    truth = load_truth(settings.lake, params.underlyings)  # planted synthetic lakes only
    return train(dataset, config, settings.tracking_uri, truth)


@flow(name="train-model", validate_parameters=True)
@fails_cleanly
def train_model(params: TrainParams | None = None) -> dict[str, Any]:
    """Walk-forward study, MLflow runs, registered model, champion/challenger alias."""
    return train_task(params or TrainParams(), load_settings())
