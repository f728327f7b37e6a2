"""Shared fixtures: offline environment, temporary homes, one Prefect server per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# Offline, quiet, deterministic: set before anything imports prefect.
os.environ.update(
    {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "OMP_WAIT_POLICY": "PASSIVE",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # tests never touch the user's .volflow: Prefect's home is a fresh folder per session
        "PREFECT_HOME": tempfile.mkdtemp(prefix="volflow-test-prefect-"),
    }
)
os.environ.pop("VOLFLOW_CONFIG", None)
for _key in [k for k in os.environ if k.startswith("VOLFLOW_") and k != "VOLFLOW_LEAN_DATA"]:
    os.environ.pop(_key)  # the user's settings must not leak into tests

# The full LEAN sample (tests needing it skip, naming this path, where it is absent):
# $VOLFLOW_LEAN_DATA, else ../shared/data/lean beside the repository.
LEAN_SAMPLE = Path(
    os.environ.get("VOLFLOW_LEAN_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "lean"
)

import polars as pl  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

from data_lake.lake import Lake  # noqa: E402
from data_lake.schemas import OPTION_QUOTES  # noqa: E402

# Property tests draw the same examples on every machine and run (deterministic CI);
# a failure prints its reproduction blob.
hypothesis_settings.register_profile("volflow", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("volflow")

SNAPSHOT = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)
DAY = date(2024, 1, 2)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh VOLFLOW_HOME for code that loads settings."""
    path = tmp_path / "home"
    monkeypatch.setenv("VOLFLOW_HOME", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def make_quotes(n: int = 4, ts: datetime = SNAPSHOT, **overrides: Any) -> pl.DataFrame:
    """A small valid option_quotes frame (one snapshot of SPY on 2024-01-02)."""
    strikes = [470.0 + 5 * i for i in range(n)]
    rows = {
        "underlying": ["SPY"] * n,
        "date": [DAY] * n,
        "contract_id": [f"SPY240119C{int(k * 1000):08d}" for k in strikes],
        "expiry": [date(2024, 1, 19)] * n,
        "strike": strikes,
        "right": ["C"] * n,
        "exercise_style": ["american"] * n,
        "settlement": ["PM"] * n,
        "multiplier": [100.0] * n,
        "bid": [5.0 - i * 0.5 for i in range(n)],
        "ask": [5.2 - i * 0.5 for i in range(n)],
        "bid_size": [10] * n,
        "ask_size": [12] * n,
        "last": [5.1] * n,
        "volume": [100] * n,
        "open_interest": [1000] * n,
        "underlying_price": [472.65] * n,
        "ts_event": [ts] * n,
        "ts_init": [ts] * n,
        "source": ["test"] * n,
        "batch_id": ["test-batch"] * n,
    }
    rows.update({k: v if isinstance(v, list) else [v] * n for k, v in overrides.items()})
    return pl.DataFrame(rows, schema=OPTION_QUOTES.schema)


@pytest.fixture
def quotes() -> Callable[..., pl.DataFrame]:
    return make_quotes


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real temporary Prefect server for the whole session (~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


# The longest files go first: with ``--dist loadfile`` each file runs whole on one
# worker in collection order, so a long file collected last runs alone at the end.
# The third is short on purpose: xdist hands the first worker its second file as soon
# as two of the deployment test's three tests are left, long before that worker is free.
LONGEST_FIRST = (
    "tests/test_deployments.py",
    "tests/flows/test_cli_errors.py",
    "tests/test_prefect_yaml.py",
    "tests/flows/test_trading_cli.py",
    "tests/models/test_edge.py",
    "tests/execution/test_signal_crash.py",
    "tests/data_lake/test_integrity.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).resolve().parents[1]

    def rank(item: pytest.Item) -> int:
        where = Path(str(item.path)).resolve().relative_to(root).as_posix()
        return LONGEST_FIRST.index(where) if where in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept
