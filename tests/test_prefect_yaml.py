"""prefect.yaml and the modules it points at: entrypoints that load the same way under
a worker as here, and no flow or task module that can hide a package.

(Registration and runs under a real server and worker: tests/test_deployments.py.)"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


CONFIG = yaml.safe_load((REPO / "prefect.yaml").read_text())
FLOW_OF = {"ingest-chains": "ingest-chains", "backfill": "backfill", "yfinance": "ingest-chains",
           "build-features": "build-features", "train-model": "train-model",
           "hourly-signal": "hourly-signal", "reconcile": "reconcile"}  # fmt: skip


def test_every_deployment_points_at_a_flow_with_its_name() -> None:
    assert {d["name"] for d in CONFIG["deployments"]} == set(FLOW_OF)
    for deployment in CONFIG["deployments"]:
        module_path, _, attr = deployment["entrypoint"].partition(":")
        module = importlib.import_module(module_path)
        assert getattr(module, attr).name == FLOW_OF[deployment["name"]]


def test_entrypoints_are_module_paths_to_a_module_named_for_its_flow() -> None:
    """A file entrypoint runs as a script with its folder first on sys.path (the bug
    that failed every deployment); a module path imports the package the normal way."""
    for deployment in CONFIG["deployments"]:
        module_path, _, attr = deployment["entrypoint"].partition(":")
        assert re.fullmatch(r"flows\.[a-z_]+", module_path), deployment["entrypoint"]
        assert module_path == f"flows.{FLOW_OF[deployment['name']].replace('-', '_')}"
        assert attr == FLOW_OF[deployment["name"]].replace("-", "_")


def top_level_names() -> set[str]:
    """What ``import NAME`` can mean: our packages, the standard library, and every
    installed distribution's top-level modules."""
    ours = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    installed = set(importlib.metadata.packages_distributions())
    return ours | installed | set(sys.stdlib_module_names)


def modules_under(folder: Path) -> list[Path]:
    """Every module and subpackage below ``folder`` (not ``__init__``)."""
    found = [p for p in folder.rglob("*.py") if p.name != "__init__.py"]
    found += [p for p in folder.rglob("*") if p.is_dir() and (p / "__init__.py").is_file()]
    return sorted(found)


def test_no_flow_or_task_module_is_named_like_a_top_level_package() -> None:
    taken = top_level_names()
    assert {"features", "data_lake", "models", "polars", "json"} <= taken  # the check's teeth
    clashes = [
        str(p.relative_to(REPO))
        for folder in ("flows", "tasks")
        for p in modules_under(REPO / folder)
        if p.stem in taken
    ]
    assert clashes == [], f"rename these: a script run from their folder would hide {clashes}"


def test_the_name_check_catches_the_module_that_broke_every_deployment(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text("")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "__init__.py").write_text("")
    (tmp_path / "cli" / "json.py").write_text("")
    names = {p.stem for p in modules_under(tmp_path)} & top_level_names()
    assert names == {"features", "json"}


def test_deployments_get_the_environment_the_cli_sets() -> None:
    from flows.environment import OFFLINE_DEFAULTS

    pool = CONFIG["definitions"]["work_pools"]["volflow_process"]
    env = pool["job_variables"]["env"]
    for key in ("DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "OMP_WAIT_POLICY",
                "PREFECT_LOGGING_EXTRA_LOGGERS"):  # fmt: skip
        assert env[key] == OFFLINE_DEFAULTS[key], key
    assert all(d["work_pool"] == pool for d in CONFIG["deployments"])
