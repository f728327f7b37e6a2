"""A small real market for the money path: synthetic SPY and QQQ snapshots at 11:00
and 12:00 New York on 2024-03-12, written to a lake with their analytics and surface
features (built once per test session), and a real MLflow registry with a champion
whose out-of-sample record is set by each test."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from data_lake.lake import Lake
from data_lake.sources.synthetic import SyntheticConfig

SNAPSHOTS = (datetime(2024, 3, 12, 15, 0, tzinfo=UTC), datetime(2024, 3, 12, 16, 0, tzinfo=UTC))
UNDERLYINGS = ("SPY", "QQQ")


@pytest.fixture(scope="session")
def market_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flows.build_features import feature_inputs
    from flows.settings import load_settings
    from tasks.feature_build import build_underlying
    from tasks.ingest import ingest_synthetic_snapshot

    root = tmp_path_factory.mktemp("market") / "lake"
    lake = Lake(root)
    settings = load_settings(home=root.parent)
    config = SyntheticConfig(expiry_months=3)
    for underlying in UNDERLYINGS:
        for ts in SNAPSHOTS:
            ingest_synthetic_snapshot.fn(lake, config, underlying, ts)
        build_underlying(lake, underlying, feature_inputs(settings, underlying))
    return root


@pytest.fixture
def lake_copy(market_lake: Path, tmp_path: Path) -> Lake:
    """This test's own copy of the market (runs may write to the lake)."""
    target = tmp_path / "home" / "lake"
    shutil.copytree(market_lake, target)
    return Lake(target)


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    model_name: str


def register_champion(
    tracking_uri: str, model_name: str, *, tstat: float, n: int, prediction: float,
    oos_range: tuple[float, float] = (-0.2, 0.2),
) -> str:  # fmt: skip
    """Log and register a real LightGBM booster that predicts ``prediction`` for any
    row, with the out-of-sample record given, as the champion; returns its version."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    from mlflow import MlflowClient

    from models.dataset import FEATURE_COLUMNS
    from models.train import PIP_REQUIREMENTS

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, len(FEATURE_COLUMNS)))
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(x, label=np.full(200, prediction)), 2)  # fmt: skip
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
    if client.get_experiment_by_name("test") is None:
        client.create_experiment("test", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment("test")
    with mlflow.start_run() as run:
        mlflow.log_metrics({"oos_sharpe_net_tstat": tstat, "oos_n": float(n)})
        table = folder / "oos_predictions.parquet"
        pl.DataFrame({"prediction": list(oos_range)}).write_parquet(table)
        mlflow.log_artifact(str(table))
        info = mlflow.lightgbm.log_model(booster, name="model", registered_model_name=model_name,
                                         pip_requirements=PIP_REQUIREMENTS)  # fmt: skip
    version = str(info.registered_model_version)
    client.set_registered_model_alias(model_name, "champion", version)
    assert run.info.run_id
    return version


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    (tmp_path / "mlflow").mkdir()
    from models.train import model_name

    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    return Registry(uri, model_name("straddle_dh_ret", 5))
