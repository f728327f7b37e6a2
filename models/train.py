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
from datetime import datetime
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

from models.dataset import Dataset
from models.lgbm import matrix, training_params
from models.metrics import LAGS_PER_HORIZON, mean_tstat, strategy_returns
from models.oracle import efficiency, oracle_metrics
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
    promotion_tstat: float = 1.645  # one-sided 5%: the paired test a challenger must pass
    min_paired_snapshots: int = 20  # fresh snapshots the paired test needs


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
    result: WalkForwardResult, booster: lgb.Booster, workdir: Path, horizon: int,
    short_cost: float, columns: tuple[str, ...],
) -> list[Path]:  # fmt: skip
    gain = booster.feature_importance(importance_type="gain")
    order = np.argsort(gain)[-20:]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh([columns[i] for i in order], gain[order])
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


def fold_plan(dataset: Dataset, config: TrainConfig) -> FoldPlan:
    """The folds this job runs: as many as requested that the data supports."""
    frame = dataset.frame
    return plan_folds(
        frame["t"], frame["t_end"], config.n_folds, horizon=config.horizon,
        min_train_periods=config.min_train_periods,
    )  # fmt: skip


@dataclass(frozen=True)
class PairedTest:
    """Challenger minus champion: net per-snapshot strategy returns on the same rows."""

    snapshots: int
    mean_difference: float
    tstat: float  # Newey-West, ``3 * horizon`` lags
    first: str  # the first and last snapshot compared
    last: str


def paired_test(
    challenger: pl.DataFrame, champion: pl.DataFrame, horizon: int, short_cost: float
) -> PairedTest:
    """The paired test of two models' predictions of the same rows (``t``, ``y``,
    ``cost``, ``prediction``): the mean and t statistic of the per-snapshot difference
    of their net strategy returns."""
    mine = strategy_returns(challenger, horizon, short_cost)
    theirs = strategy_returns(champion, horizon, short_cost)
    difference = (mine - theirs).to_numpy()
    times = challenger["t"].unique().sort()
    return PairedTest(
        snapshots=len(difference),
        mean_difference=float(np.mean(difference)) if len(difference) else float("nan"),
        tstat=mean_tstat(difference, LAGS_PER_HORIZON * horizon),
        first=str(times.min()) if times.len() else "", last=str(times.max()) if times.len() else "",
    )  # fmt: skip


def decide(
    test: PairedTest | None, config: TrainConfig, *, no_champion: bool = False, why: str = ""
) -> tuple[str, str]:
    """(alias, reason) for a new model version: champion only when it beats the
    champion on rows neither was trained on, the paired t statistic above
    ``config.promotion_tstat`` (one-sided) over at least ``min_paired_snapshots``."""
    if no_champion:
        return CHAMPION, "no champion yet"
    if test is None:
        return CHALLENGER, f"not compared with the champion: {why}; the champion stays"
    described = (
        f"paired test against the champion over {test.snapshots} snapshots ({test.first} .. "
        f"{test.last}) neither was trained on: net return difference "
        f"{test.mean_difference:+.5f} per snapshot, t {test.tstat:+.2f}"
    )
    if test.snapshots < config.min_paired_snapshots:
        return CHALLENGER, (f"{described}; fewer than {config.min_paired_snapshots} snapshots "
                            "(train.min_paired_snapshots): the champion stays")  # fmt: skip
    if np.isfinite(test.tstat) and test.tstat > config.promotion_tstat:
        return CHAMPION, f"{described} > {config.promotion_tstat:.2f}: promoted"
    return CHALLENGER, (f"{described}, not above {config.promotion_tstat:.2f} "
                        "(train.promotion_tstat): the champion stays")  # fmt: skip


def _compare_with_champion(
    client: MlflowClient, name: str, dataset: Dataset, result: WalkForwardResult,
    config: TrainConfig,
) -> tuple[str | None, PairedTest | None, str]:  # fmt: skip
    """(champion version, paired test, why there is none): the registered champion's
    booster, as registered, on this job's out-of-sample rows that start more than a
    horizon after the champion's last training snapshot (its labels cannot reach
    them), against this job's own out-of-sample predictions of the same rows."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None, None, ""
    run = client.get_run(version.run_id) if version.run_id else None
    last = run.data.tags.get("data_last") if run else None
    features = run.data.params.get("features", "").split(",") if run else []
    if not last or not features:
        return version.version, None, "the champion's run has no data range or feature list"
    missing = [f for f in features if f not in dataset.frame.columns]
    if missing:
        return version.version, None, (f"the champion uses features this data lacks "
                                       f"({', '.join(missing[:5])})")  # fmt: skip
    times = dataset.frame["t"].unique().sort()
    seen = int(times.search_sorted(datetime.fromisoformat(last), "right"))
    if seen + config.horizon >= times.len():
        after = f"{config.horizon} snapshots after the champion's data (to {last})"
        return version.version, None, f"no out-of-sample rows more than {after}"
    start = times[seen + config.horizon]
    mine = result.predictions.filter(pl.col("t") >= start).sort("t", "underlying")
    try:
        booster = mlflow.lightgbm.load_model(f"models:/{name}/{version.version}")
    except Exception as exc:  # a damaged or foreign artifact: reported, never promoted over
        return version.version, None, f"the champion cannot be loaded: {exc}"
    rows = dataset.frame.join(mine.select("underlying", "t"), on=["underlying", "t"])
    rows = rows.sort("t", "underlying")
    theirs = rows.select("underlying", "t", "y", "cost").with_columns(
        pl.Series("prediction", np.asarray(booster.predict(matrix(rows.select(features)))))
    )
    return version.version, paired_test(mine, theirs, config.horizon, config.short_cost), ""


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


def train(
    dataset: Dataset, config: TrainConfig, tracking_uri: str, truth: pl.DataFrame | None = None
) -> dict[str, Any]:
    """Run the job; returns the run id, model version, alias and out-of-sample metrics
    (with ``truth``, a planted synthetic lake's mispricing: the oracle's beside them)."""
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
            "features": ",".join(dataset.columns), "model": "lightgbm",
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
        linear = run_walk_forward(
            dataset, plan.n_folds, seed=config.seed, short_cost=config.short_cost,
            first_test_period=plan.first_test_period, min_train_periods=plan.min_train_periods,
            model="linear",
        ).overall  # fmt: skip
        compared = ("ic", "ic_tstat", "sharpe_net", "sharpe_gross")
        overall |= {f"linear_{k}": linear[k] for k in compared}  # the baseline, same folds
        oracle = oracle_metrics(
            dataset.frame, truth, result.folds, config.horizon, config.short_cost
        )
        if oracle is not None:
            overall |= {
                "oracle_ic": oracle["ic"],
                "oracle_ic_tstat": oracle["ic_tstat"],
                "oracle_sharpe_gross": oracle["sharpe_gross"],
                "ic_efficiency": efficiency(result.overall["ic"], oracle["ic"]),
            }
            logger.info("oracle (the planted mispricing, fitted per fold): IC %.3f (t %.2f); "
                        "the model's IC is %.0f%% of it", oracle["ic"], oracle["ic_tstat"],
                        100 * overall["ic_efficiency"])  # fmt: skip
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
            plots = _plots(
                result, booster, workdir, config.horizon, config.short_cost, dataset.columns
            )
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
        champion_version, test, why = _compare_with_champion(client, name, dataset, result, config)
        alias, reason = decide(test, config, no_champion=champion_version is None, why=why)
        if test is not None:
            mlflow.log_metrics({k: v for k, v in (
                ("paired_snapshots", float(test.snapshots)),
                ("paired_mean_difference", test.mean_difference),
                ("paired_tstat", test.tstat)) if np.isfinite(v)})  # fmt: skip
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
        **({"paired_test": {"snapshots": test.snapshots,
                            "tstat": test.tstat if np.isfinite(test.tstat) else None,
                            "mean_difference": test.mean_difference}} if test else {}),
    }  # fmt: skip
