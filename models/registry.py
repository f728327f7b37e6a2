"""The model registry as the CLI shows it: versions, aliases, metrics, manual promotion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow import MlflowClient

from data_lake.errors import ConfigError
from models.train import CHAMPION


def _client(tracking_uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient()


def list_versions(tracking_uri: str) -> list[dict[str, Any]]:
    client = _client(tracking_uri)
    rows = []
    for found in client.search_registered_models():
        model = client.get_registered_model(found.name)  # with its aliases
        for version in client.search_model_versions(f"name = '{model.name}'"):
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            aliases = [
                a for a, v in (model.aliases or {}).items() if str(v) == str(version.version)
            ]
            rows.append({
                "model": model.name, "version": str(version.version), "aliases": aliases,
                "oos_rank_ic": metrics.get("oos_rank_ic"),
                "oos_sharpe_net": metrics.get("oos_sharpe_net"),
                "run_id": version.run_id,
                "created": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC)
                .strftime("%Y-%m-%d %H:%M"),
                "decision": version.tags.get("volflow.decision", ""),
            })  # fmt: skip
    return sorted(rows, key=lambda r: (r["model"], int(r["version"])))


def promote(tracking_uri: str, version: str, name: str | None, reason: str) -> str:
    """Set the champion alias by hand; the reason is logged on the version."""
    client = _client(tracking_uri)
    names = [m.name for m in client.search_registered_models()]
    if name is None:
        if len(names) != 1:
            raise ConfigError(f"name the model (--name): registered models are {names or 'none'}")
        name = names[0]
    if name not in names:
        raise ConfigError(f"no registered model {name!r}; registered: {names or 'none'}")
    try:
        client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException:
        raise ConfigError(f"{name} has no version {version}") from None
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "volflow.decision", f"manual: {reason}")
    return name
