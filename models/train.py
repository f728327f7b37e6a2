"""A training job: walk-forward study, MLflow tracking, registry and promotion.

One MLflow parent run per job, with a nested run per outer fold (its tuned parameters
and out-of-sample metrics). The parent run holds the job's parameters, the overall
out-of-sample metrics, the data snapshot (a content hash of the training rows and
their date range), the feature list, the label definition, the code version (git
commit), and artifacts: the out-of-sample predictions, per-fold metrics, the feature
importance (gain) and equity plots.

The final model is fitted on every row with the last fold's parameters, logged with
a signature and an input example (explicit pip requirements, not inferred), and
registered under ``volflow-<label>-h<horizon>``. It becomes the ``champion`` only if
it beats the current champion **on the same out-of-sample folds**: the champion's
parameters (stored on its model version) are re-run through this job's folds, and
the two net Sharpe ratios are compared. Otherwise it is the ``challenger``. Every
decision and its reason is logged on the run and the model version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import polars as pl
from mlflow import MlflowClient
from mlflow.models import infer_signature

from models.dataset import FEATURE_COLUMNS, Dataset
from models.lgbm import matrix, training_params
from models.metrics import strategy_returns
from models.splits import FoldPlan, plan_folds
from models.walkforward import WalkForwardResult, fit_target, run_walk_forward

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
EXPERIMENT = "volflow-train"
# MLflow 3 opens an experiment without this tag on its GenAI "Traces" view; with it,
# on the training runs
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
PIP_REQUIREMENTS = [f"lightgbm=={lgb.__version__}", f"numpy=={np.__version__}"]


@dataclass(frozen=True)
class TrainConfig:
    label: str = "straddle_dh_ret"
    horizon: int = 5
    n_folds: int = 5
    trials: int = 20
    timeout: float | None = None
    seed: int = 7
    num_threads: int = 1
    short_cost: float = 0.0
    storage: str | None = None  # Optuna storage (journal file or RDB URL)
    min_train_periods: int = 20  # training snapshots a fold keeps after purge and embargo


def model_name(label: str, horizon: int) -> str:
    return f"volflow-{label.replace('_', '-')}-h{horizon}"


def data_snapshot(dataset: Dataset) -> dict[str, str]:
    """A content hash of the training rows and their range."""
    digest = hashlib.sha256(dataset.frame.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()
    t = dataset.frame["t"]
    return {"data_sha256": digest[:16], "data_first": str(t.min()), "data_last": str(t.max()),
            "data_rows": str(dataset.frame.height)}  # fmt: skip


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=here,
            timeout=10,
        )
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _plots(
    result: WalkForwardResult, booster: lgb.Booster, workdir: Path, horizon: int, short_cost: float
) -> list[Path]:
    gain = booster.feature_importance(importance_type="gain")
    order = np.argsort(gain)[-20:]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh([FEATURE_COLUMNS[i] for i in order], gain[order])
    ax.set_title("feature importance (gain), final model")
    fig.tight_layout()
    importance = workdir / "feature_importance.png"
    fig.savefig(importance)
    plt.close(fig)
    times = result.predictions["t"].unique().sort().to_list()
    fig, ax = plt.subplots(figsize=(8, 4))
    for gross, name in ((False, "net of costs"), (True, "gross")):
        returns = strategy_returns(result.predictions, horizon, short_cost, gross=gross)
        ax.plot(times, returns.cum_sum().to_list(), label=name)
    ax.legend()
    ax.set_title("out-of-sample equity (sign strategy, cumulative return)")
    fig.tight_layout()
    equity = workdir / "oos_equity.png"
    fig.savefig(equity)
    plt.close(fig)
    return [importance, equity]


def _champion_params(client: MlflowClient, name: str) -> tuple[str | None, dict[str, Any] | None]:
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None, None
    return version.version, json.loads(version.tags.get("volflow.params", "{}"))


def fold_plan(dataset: Dataset, config: TrainConfig) -> FoldPlan:
    """The folds this job runs: as many as requested that the data supports."""
    frame = dataset.frame
    return plan_folds(
        frame["t"], frame["t_end"], config.n_folds, horizon=config.horizon,
        min_train_periods=config.min_train_periods,
    )  # fmt: skip


def _fixed_sharpe(
    dataset: Dataset, config: TrainConfig, plan: FoldPlan, params: dict[str, Any]
) -> float:
    """Out-of-sample net Sharpe of fixed ``params`` on this job's folds."""
    fixed = {k: v for k, v in params.items() if k != "rounds"}
    rerun = run_walk_forward(
        dataset, plan.n_folds, params=fixed, rounds=int(params.get("rounds", 200)),
        seed=config.seed, num_threads=config.num_threads, short_cost=config.short_cost,
        first_test_period=plan.first_test_period, min_train_periods=plan.min_train_periods,
    )  # fmt: skip
    return float(rerun.overall["sharpe_net"])


def decide(challenger_sharpe: float, champion_sharpe: float | None) -> tuple[str, str]:
    """(alias, reason) for a new model version."""
    if champion_sharpe is None:
        return CHAMPION, "no champion yet"
    if not np.isfinite(challenger_sharpe):
        return CHALLENGER, "its out-of-sample net Sharpe is undefined"
    if not np.isfinite(champion_sharpe) or challenger_sharpe > champion_sharpe:  # ties: keep
        return CHAMPION, (f"out-of-sample net Sharpe {challenger_sharpe:.3f} beats the champion's "
                          f"{champion_sharpe:.3f} on the same folds")  # fmt: skip
    return CHALLENGER, (f"out-of-sample net Sharpe {challenger_sharpe:.3f} does not beat the "
                        f"champion's {champion_sharpe:.3f} on the same folds")  # fmt: skip


def use_training_experiment(client: MlflowClient) -> str:
    """Create (or tag) the training experiment and make it the active one; its id."""
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        try:
            experiment_id = client.create_experiment(EXPERIMENT, tags=EXPERIMENT_KIND)
        except mlflow.exceptions.MlflowException:  # another job created it first
            found = client.get_experiment_by_name(EXPERIMENT)
            if found is None:
                raise
    if found is not None:
        experiment_id = found.experiment_id
        for key, value in EXPERIMENT_KIND.items():
            if found.tags.get(key) != value:  # made before the tag existed
                client.set_experiment_tag(experiment_id, key, value)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def train(dataset: Dataset, config: TrainConfig, tracking_uri: str) -> dict[str, Any]:
    """Run the job; returns the run id, model version, alias and out-of-sample metrics."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    use_training_experiment(client)
    name = model_name(config.label, config.horizon)
    plan = fold_plan(dataset, config)
    logger.info("%s", plan.describe())
    with mlflow.start_run(run_name=f"train {name}") as run:
        mlflow.log_params({
            "label": config.label, "horizon_periods": config.horizon, "n_folds": plan.n_folds,
            "n_folds_requested": config.n_folds, "first_test_snapshot": plan.first_test_period,
            "min_train_periods": config.min_train_periods,
            "trials": config.trials, "seed": config.seed, "short_cost": config.short_cost,
            "features": ",".join(FEATURE_COLUMNS), "model": "lightgbm",
        })  # fmt: skip
        mlflow.set_tags({**data_snapshot(dataset), "git_commit": git_commit(),
                         "label_definition": "features/labels.py"})  # fmt: skip
        result = run_walk_forward(
            dataset, plan.n_folds, seed=config.seed, num_threads=config.num_threads,
            short_cost=config.short_cost, trials=config.trials, timeout=config.timeout,
            storage=config.storage, first_test_period=plan.first_test_period,
            min_train_periods=plan.min_train_periods,
        )  # fmt: skip
        for metrics, params in zip(result.fold_metrics, result.fold_params, strict=True):
            with mlflow.start_run(run_name=f"fold {int(metrics['fold'])}", nested=True):
                mlflow.log_params({f"lgbm_{k}": v for k, v in params.items()})
                mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        overall = {f"oos_{k}": v for k, v in result.overall.items()}
        mlflow.log_metrics({k: v for k, v in overall.items() if np.isfinite(v)})
        final_params = result.fold_params[-1]
        rounds = int(final_params["rounds"])
        lgbm_params = {k: v for k, v in final_params.items() if k != "rounds"}
        x = matrix(dataset.features)
        booster = lgb.train(
            training_params(lgbm_params, config.seed, config.num_threads),
            lgb.Dataset(x, label=fit_target(dataset.frame)),
            rounds,
        )
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            result.predictions.write_parquet(workdir / "oos_predictions.parquet")
            (workdir / "fold_metrics.json").write_text(json.dumps(result.fold_metrics, indent=2))
            plots = _plots(result, booster, workdir, config.horizon, config.short_cost)
            tables = [workdir / "oos_predictions.parquet", workdir / "fold_metrics.json"]
            for path in [*tables, *plots]:
                mlflow.log_artifact(str(path))
        # float columns (a null feature becomes NaN, as LightGBM reads it): a typed signature
        example = dataset.features.tail(5).cast(pl.Float64).fill_null(float("nan")).to_pandas()
        info = mlflow.lightgbm.log_model(
            booster, name="model", registered_model_name=name,
            signature=infer_signature(example, booster.predict(matrix(dataset.features.tail(5)))),
            input_example=example, pip_requirements=PIP_REQUIREMENTS,
        )  # fmt: skip
        version = str(info.registered_model_version)
        champion_version, champion_params = _champion_params(client, name)
        # both models' parameters through the same folds, without tuning: like for like
        own_sharpe = _fixed_sharpe(dataset, config, plan, final_params)
        champion_sharpe = (
            _fixed_sharpe(dataset, config, plan, champion_params) if champion_params else None
        )
        mlflow.log_metric("decision_sharpe_net", own_sharpe)
        alias, reason = decide(own_sharpe, champion_sharpe)
        client.set_model_version_tag(name, version, "volflow.params", json.dumps(final_params))
        client.set_model_version_tag(name, version, "volflow.decision", reason)
        client.set_registered_model_alias(name, alias, version)
        mlflow.set_tags({"decision": alias, "decision_reason": reason,
                         "champion_before": champion_version or "none"})  # fmt: skip
    return {
        "run_id": run.info.run_id, "model_name": name, "model_version": version,
        "alias": alias, "reason": reason, "label": config.label,
        "label_horizon_periods": config.horizon, "n_oos": int(result.overall["n"]),
        "n_folds": plan.n_folds, "folds": plan.describe(),
        **{k: (v if np.isfinite(v) else None) for k, v in overall.items()},
    }  # fmt: skip
