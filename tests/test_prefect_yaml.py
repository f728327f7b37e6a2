"""prefect.yaml registers against a real Prefect server with the declared schedules."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PREFECT = Path(sys.executable).parent / "prefect"


def test_every_deployment_points_at_a_flow_with_its_name() -> None:
    import importlib

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {d["name"] for d in config["deployments"]}
    assert names == {"ingest-chains", "backfill", "yfinance", "build-features", "train-model"}
    flows = {"ingest-chains": "ingest-chains", "backfill": "backfill", "yfinance": "ingest-chains",
             "build-features": "build-features", "train-model": "train-model"}  # fmt: skip
    for deployment in config["deployments"]:
        module_path, _, attr = deployment["entrypoint"].partition(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        assert getattr(module, attr).name == flows[deployment["name"]]


@pytest.mark.integration
@pytest.mark.slow
def test_prefect_deploy_registers_both_deployments_with_schedules(prefect_server: None) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "VOLFLOW_REPO": str(REPO)}

    def prefect(*args: str) -> None:
        done = subprocess.run(
            [str(PREFECT), *args],
            check=False,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    prefect("work-pool", "create", "volflow-process", "--type", "process", "--overwrite")
    prefect("--no-prompt", "deploy", "--all")
    deployments = asyncio.run(_read_deployments())
    ingest = deployments["ingest-chains"]
    assert ingest["work_pool_name"] == "volflow-process"
    assert sorted(ingest["schedules"]) == [
        ("0,30 10-15 * * 1-5", "America/New_York", True),
        ("15 16 * * 1-5", "America/New_York", True),
    ]
    assert deployments["build-features"]["schedules"] == [
        ("40 16 * * 1-5", "America/New_York", True)
    ]
    assert deployments["train-model"]["schedules"] == [("0 6 * * 6", "America/New_York", True)]
    live = deployments["yfinance"]  # needs the network: registered paused
    assert live["schedules"] == [("5,35 10-15 * * 1-5", "America/New_York", False)]
    assert live["parameters"]["params"]["source"] == "yfinance"
    assert deployments["backfill"]["schedules"] == []
    assert deployments["backfill"]["parameters"]["params"]["start"] == "2024-01-02"


async def _read_deployments() -> dict[str, dict[str, Any]]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        found = await client.read_deployments()
        return {
            d.name: {
                "work_pool_name": d.work_pool_name,
                "parameters": d.parameters,
                "schedules": [
                    (s.schedule.cron, s.schedule.timezone, s.active)  # type: ignore[union-attr]
                    for s in d.schedules
                ],
            }
            for d in found
        }
