"""Process environment for volflow commands, set before Prefect is imported.

Prefect reads its settings from the environment at import time, so the CLI calls
:func:`prepare_environment` first. Values already set by the user win.
"""

from __future__ import annotations

import os
from pathlib import Path

from data_lake.errors import LakeError

OFFLINE_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "OMP_WAIT_POLICY": "PASSIVE",
    # the first start of the embedded server migrates its database: allow for it
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "data_lake,features,models,execution,backtest",
}


def prepare_environment(home: Path) -> None:
    """Offline defaults, and Prefect's home (its SQLite database) under ``home``."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    prefect_home = Path(os.environ.setdefault("PREFECT_HOME", str(home.resolve() / "prefect")))
    try:
        prefect_home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LakeError(
            f"cannot create {prefect_home} ({exc.strerror or exc}); "
            "set VOLFLOW_HOME (or PREFECT_HOME) to a writable folder"
        ) from exc
