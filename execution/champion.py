"""The champion model as the money path uses it: approved or not, and its predictions
on the latest features.

**Only a model that earned it trades.** The registry's ``champion`` alias says a
version beat the one before it; it does not say that it makes money. The gate asks
the version's own out-of-sample record (logged by the training run) for an absolute
standard: the net Sharpe's t statistic at least ``min_sharpe_tstat`` over at least
``min_oos_rows`` out-of-sample rows. A champion that fails it does not trade; the
signal run records "no trade: model not approved" with the figures, and alerts.

The registered booster is loaded as registered (``models:/<name>/<version>``), and
fed the same feature columns as in training. Its predictions' range out of sample
(widened by half its span each way) is the "range the model saw" that the risk
engine checks a live signal against.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import mlflow.lightgbm
import polars as pl
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from data_lake.calendar import trading_date
from data_lake.catalog import query
from data_lake.errors import ConfigError, VolflowError
from data_lake.lake import Lake
from models.dataset import FEATURE_COLUMNS
from models.lgbm import matrix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApprovalGate:
    min_sharpe_tstat: float = 2.0
    min_oos_rows: int = 500


@dataclass(frozen=True)
class Approval:
    approved: bool
    reason: str
    model_name: str
    version: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Champion:
    model_name: str
    version: str
    booster: Any
    signal_range: tuple[float, float] | None
    # the columns it was trained on, in order (its run's ``features``): a model trained
    # before features were added still gets its own inputs
    features: tuple[str, ...] = FEATURE_COLUMNS


def champion_approval(tracking_uri: str, model_name: str, gate: ApprovalGate) -> Approval:
    """Whether the registered champion of ``model_name`` may trade, and why."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return Approval(False, f"no champion of {model_name} in the registry", model_name)
    metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
    t = metrics.get("oos_sharpe_net_tstat", math.nan)
    n = metrics.get("oos_n", 0.0)
    where = f"{model_name} v{version.version}"
    if not math.isfinite(t) or t < gate.min_sharpe_tstat:
        why = (f"model not approved: {where} out-of-sample net Sharpe t {t:.2f} < "
               f"{gate.min_sharpe_tstat:.2f} (execution.approval.min_sharpe_tstat)")  # fmt: skip
        return Approval(False, why, model_name, str(version.version), version.run_id)
    if n < gate.min_oos_rows:
        why = (f"model not approved: {where} has {n:.0f} out-of-sample rows < "
               f"{gate.min_oos_rows} (execution.approval.min_oos_rows)")  # fmt: skip
        return Approval(False, why, model_name, str(version.version), version.run_id)
    return Approval(True, f"{where}: net Sharpe t {t:.2f} over {n:.0f} out-of-sample rows",
                    model_name, str(version.version), version.run_id)  # fmt: skip


def load_champion(tracking_uri: str, approval: Approval) -> Champion:
    """The approved version's booster, as registered, and its signal range."""
    if not approval.approved or approval.version is None:
        raise ConfigError(f"cannot load an unapproved model: {approval.reason}")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        booster = mlflow.lightgbm.load_model(f"models:/{approval.model_name}/{approval.version}")
    except Exception as exc:
        raise VolflowError(f"cannot load {approval.model_name} v{approval.version}: {exc}") from exc
    signal_range, features = None, FEATURE_COLUMNS
    if approval.run_id:
        listed = MlflowClient().get_run(approval.run_id).data.params.get("features")
        features = tuple(listed.split(",")) if listed else FEATURE_COLUMNS
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = MlflowClient().download_artifacts(
                    approval.run_id, "oos_predictions.parquet", tmp
                )
                predictions = pl.read_parquet(Path(path))["prediction"]
                lo, hi = float(predictions.min()), float(predictions.max())  # type: ignore[arg-type]
                signal_range = (lo - (hi - lo) / 2, hi + (hi - lo) / 2)
            except Exception as exc:
                logger.warning("no out-of-sample predictions for the signal range: %s", exc)
    return Champion(approval.model_name, str(approval.version), booster, signal_range, features)


def latest_features(
    lake: Lake, underlyings: list[str], now: datetime, max_age: timedelta
) -> pl.DataFrame:
    """Each underlying's latest surface-features row in ``(now - max_age, now]``."""
    marks = ", ".join("?" for _ in underlyings)
    return query(
        lake,
        f"SELECT * FROM surface_features WHERE underlying IN ({marks}) AND date BETWEEN ? "
        "AND ? AND ts_event > ? AND ts_event <= ? QUALIFY row_number() OVER (PARTITION BY "
        "underlying ORDER BY ts_event DESC) = 1",
        [*underlyings, trading_date(now - max_age), trading_date(now), now - max_age, now],
    )


def predict(champion: Champion, features: pl.DataFrame) -> dict[str, tuple[datetime, float]]:
    """The champion's prediction per underlying, with the features' snapshot time."""
    if features.is_empty():
        return {}
    missing = [c for c in champion.features if c not in features.columns]
    if missing:
        raise VolflowError(
            f"{champion.model_name} v{champion.version} needs features the lake lacks: "
            f"{', '.join(missing[:5])} (rebuild features or retrain)"
        )
    values = champion.booster.predict(matrix(features.select(champion.features)))
    return {
        u: (ts, float(v))
        for u, ts, v in zip(features["underlying"], features["ts_event"], values, strict=True)
    }
