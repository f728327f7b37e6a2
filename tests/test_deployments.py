"""Every deployment of prefect.yaml, run the way an operator runs it.

A real ``prefect server start`` (temporary home, free port, scheduler off so that no
cron run interferes), the process work pool, ``prefect deploy --all`` from the
repository's prefect.yaml, a real ``prefect worker start`` in another folder (the
pull step must find the code), then each deployment run through the API with small
parameters and its final state asserted, the lake read afterwards. A deployment
added to prefect.yaml must join ``RUNS`` (a test fails until it does).

The worker's runs get a small synthetic chain (few strikes and expiries) so that
the whole module stays near two minutes, and a proxy on a closed port so that the
yfinance deployment fails the same way offline or on a networked machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prefect_processes import (
    PREFECT,
    REPO,
    PrefectServer,
    Process,
    clean_environment,
    free_port,
    run_command,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BACKFILL_START, BACKFILL_END = date(2024, 1, 2), date(2024, 3, 8)
AS_OF = "2024-03-11T20:30:00+00:00"  # 16:30 New York: after that session's close
SIGNAL_AT = "2024-03-12T15:05:00+00:00"  # 11:05 New York, the next session
RULE_RUN = {"as_of": "2024-03-12T15:06:00+00:00", "slot": "2024-03-12T16:00:00+00:00",
            "strategy": "rule", "refresh_market": False}  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One deployment run: its parameters, the state it must end in, and a phrase its
    state message must hold (the one-line reason of an expected failure)."""

    deployment: str  # flow-name/deployment-name
    parameters: dict[str, Any]
    state: str = "COMPLETED"
    message: str | None = None


# In order: each builds on the lake the runs before it left.
BACKFILL = {"start": str(BACKFILL_START), "end": str(BACKFILL_END), "underlyings": ["SPY"]}
NO_ROWS = "no training rows for label 'straddle_dh_ret' at horizon 5"
RUNS = [
    Run("backfill/backfill", {"params": BACKFILL}),
    Run("ingest-chains/ingest-chains", {"params": {"as_of": AS_OF}}),
    Run("build-features/build-features", {}),
    Run("train-model/train-model", {"params": {"trials": 2}}),
    Run("train-model/train-model", {"params": {"underlyings": ["QQQ"]}}, "FAILED", NO_ROWS),
    Run("ingest-chains/yfinance", {}, "FAILED", "live polls need internet access"),
    # 11:05 New York: refresh the snapshot, then the champion of two trials is not approved
    Run("hourly-signal/hourly-signal", {"params": {"as_of": SIGNAL_AT}}),
    # the rule baseline on the snapshot just written: real paper orders
    Run("hourly-signal/hourly-signal", {"params": RULE_RUN}),
    Run("reconcile/reconcile", {"params": {"as_of": "2024-03-12T15:10:00+00:00"}}),
    Run("ingest-chains/ingest-chains", {}),  # the scheduled form: the latest snapshot, now
]


@dataclass
class Operator:
    server: PrefectServer
    worker: Process
    home: Path  # the worker's VOLFLOW_HOME
    env: dict[str, str]
    deploy_output: str


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    root = tmp_path_factory.mktemp("deployments")
    prefect_home = root / "prefect-home"
    server = PrefectServer.start(prefect_home, root)
    worker: Process | None = None
    try:
        env = clean_environment(
            PREFECT_HOME=str(prefect_home), PREFECT_API_URL=server.url, VOLFLOW_REPO=str(REPO)
        )
        for args in (
            ["work-pool", "create", "volflow-process", "--type", "process", "--overwrite"],
            ["--no-prompt", "deploy", "--all"],
        ):
            done = run_command([str(PREFECT), *args], env)
            assert done.returncode == 0, done.stdout + done.stderr
        home = root / "volflow-home"
        worker_env = {
            **env,
            "VOLFLOW_HOME": str(home),
            "VOLFLOW_SYNTHETIC__EXPIRY_MONTHS": "3",
            "VOLFLOW_SYNTHETIC__STRIKES_PER_SD": "4",
            "VOLFLOW_YAHOO__ATTEMPTS": "2",
            "VOLFLOW_YAHOO__BACKOFF_INITIAL_SECONDS": "0.1",
            "VOLFLOW_INGEST__RETRY_DELAY_SECONDS": "0.1",
            "VOLFLOW_EXECUTION__RULE_EVERY_SESSIONS": "1",
            "HTTPS_PROXY": f"http://127.0.0.1:{free_port()}",
            "HTTP_PROXY": f"http://127.0.0.1:{free_port()}",
            "NO_PROXY": "127.0.0.1,localhost",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
        worker_dir = root / "elsewhere"  # not the repository: the pull step must get there
        worker_dir.mkdir()
        worker = Process.start(
            [str(PREFECT), "worker", "start", "--pool", "volflow-process"],
            worker_env, root / "worker.log", worker_dir,
        )  # fmt: skip
        yield Operator(server, worker, home, env, done.stdout)
    finally:
        if worker is not None:
            worker.stop()
        server.process.stop()


def test_every_deployment_in_prefect_yaml_is_run_here() -> None:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    declared = {d["name"] for d in config["deployments"]}
    assert declared == {run.deployment.split("/")[1] for run in RUNS}


def test_deploy_registers_every_deployment_with_its_schedules(operator: Operator) -> None:
    deployments = {d["name"]: d for d in _client_call(operator, "deployments")}
    ingest = deployments["ingest-chains"]
    assert ingest["work_pool_name"] == "volflow-process"
    assert ingest["entrypoint"] == "flows.ingest_chains:ingest_chains"
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
    signal = deployments["hourly-signal"]
    assert signal["schedules"] == [("0 10-15 * * 1-5", "America/New_York", True)]
    assert signal["collision_strategy"] == "CANCEL_NEW"
    assert deployments["reconcile"]["schedules"] == [
        ("*/15 9-16 * * 1-5", "America/New_York", True)
    ]
    assert deployments["backfill"]["schedules"] == []
    assert deployments["backfill"]["parameters"]["params"]["start"] == "2024-01-02"
    for deployment in deployments.values():  # every run gets the offline environment
        env = deployment["job_variables"]["env"]
        assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["DO_NOT_TRACK"] == "1"
        assert "models" in env["PREFECT_LOGGING_EXTRA_LOGGERS"].split(",")


def test_every_deployment_runs_under_the_worker(operator: Operator) -> None:
    outcomes = []
    for run in RUNS:
        flow_run_id = _client_call(operator, "create", run.deployment, run.parameters)
        state, message, logs = _wait(operator, flow_run_id, timeout=240)
        outcomes.append((run, state, message, logs))
        assert state == run.state, _report(operator, run, state, message, logs)
        if run.message is not None:
            assert message is not None and run.message in message, message
            assert "\n" not in message and "Traceback" not in message
            # the reason, said once: not Prefect's "encountered an exception" wrapper
            assert not message.startswith("Flow run encountered an exception"), message
        assert not any("Traceback" in line for line in logs), _report(
            operator, run, state, message, logs
        )
    _check_lake(operator.home, outcomes)
    assert "Traceback" not in operator.worker.output(), operator.worker.output()[-6000:]


def _check_lake(home: Path, outcomes: list[tuple[Run, str, str | None, list[str]]]) -> None:
    from data_lake.calendar import exchange_calendar
    from data_lake.lake import Lake, iter_partitions
    from models.registry import list_versions

    lake = Lake(home / "lake")
    days = {
        (table, u): sorted(p.day for p in iter_partitions(lake, table) if p.underlying == u)
        for table in ("option_quotes", "surface_features")
        for u in ("SPY", "QQQ")
    }
    backfilled = [s.day for s in exchange_calendar().sessions(BACKFILL_START, BACKFILL_END)]
    ingested = [date(2024, 3, 11), date(2024, 3, 12)]  # ingest-chains, then hourly-signal
    assert days["option_quotes", "SPY"][: len(backfilled) + 2] == [*backfilled, *ingested]
    assert days["option_quotes", "QQQ"][:2] == ingested
    assert len(days["option_quotes", "SPY"]) == len(backfilled) + 3  # + today's snapshot
    assert days["surface_features", "SPY"] == [*backfilled, *ingested]
    assert days["surface_features", "QQQ"] == ingested
    # the weekly training run fitted the folds the short history supports, and said so
    train_logs = outcomes[3][3]
    planned = [line for line in train_logs if line.startswith("walk-forward over")]
    assert len(planned) == 1 and "folds 2 of the 5 requested" in planned[0], train_logs
    versions = list_versions(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    assert [v["aliases"] for v in versions] == [["champion"]]
    experiment_kind = _experiment_tag(home, "mlflow.experimentKind")
    assert experiment_kind == "custom_model_development"
    _check_trading(home, outcomes)


def _check_trading(home: Path, outcomes: list[tuple[Run, str, str | None, list[str]]]) -> None:
    """The signal runs under the worker: the unapproved champion traded nothing and
    said why; the rule traded both underlyings on paper."""
    from execution.ledger import signals
    from execution.store import OrderStatus, open_store

    store = open_store(f"sqlite:///{home / 'orders.sqlite'}")
    try:
        rows = signals(store)
        orders = store.orders()
    finally:
        store.close()
    refused = [r for r in rows if r["slot"].isoformat() == "2024-03-12T15:00:00+00:00"]
    assert {r["underlying"] for r in refused} == {"SPY", "QQQ"}
    assert all("model not approved" in r["reason"] for r in refused), refused
    assert {(o.request.underlying, o.status) for o in orders} == {
        ("SPY", OrderStatus.FILLED), ("QQQ", OrderStatus.FILLED)}  # fmt: skip
    rule = next(o for o in outcomes if o[0].parameters.get("params") == RULE_RUN)
    assert rule[1] == "COMPLETED"


def _experiment_tag(home: Path, key: str) -> str | None:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("volflow-train")
    assert experiment is not None
    return experiment.tags.get(key)


def _wait(
    operator: Operator, flow_run_id: str, timeout: float
) -> tuple[str, str | None, list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, message = _client_call(operator, "state", flow_run_id)
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state, message, _client_call(operator, "logs", flow_run_id)
        if not operator.worker.alive():
            raise AssertionError(f"the worker exited:\n{operator.worker.output()[-6000:]}")
        time.sleep(1)
    raise AssertionError(f"flow run {flow_run_id} not final after {timeout:.0f}s: {state}")


def _report(operator: Operator, run: Run, state: str, message: str | None, logs: list[str]) -> str:
    return (
        f"{run.deployment} {run.parameters}: {state} ({message})\n"
        + "\n".join(logs[-40:])
        + "\n--- worker ---\n"
        + operator.worker.output()[-4000:]
    )


def _client_call(operator: Operator, what: str, *args: Any) -> Any:
    """One call to the test's Prefect server (not the session's harness server)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    with SyncPrefectClient(operator.server.url) as client:
        if what == "create":
            deployment = client.read_deployment_by_name(args[0])
            return str(client.create_flow_run_from_deployment(deployment.id, parameters=args[1]).id)
        if what == "state":
            found = client.read_flow_run(args[0])
            assert found.state is not None
            return found.state.type.value, found.state.message
        if what == "logs":
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[args[0]])),
                sort=LogSort.TIMESTAMP_ASC,
            )
            return [log.message for log in logs]
        return [
            {
                "name": d.name,
                "entrypoint": d.entrypoint,
                "work_pool_name": d.work_pool_name,
                "parameters": d.parameters,
                "job_variables": d.job_variables,
                "collision_strategy": (
                    d.concurrency_options.collision_strategy.value
                    if d.concurrency_options
                    else None
                ),
                "schedules": [
                    (s.schedule.cron, s.schedule.timezone, s.active)  # type: ignore[union-attr]
                    for s in d.schedules
                ],
            }
            for d in client.read_deployments()
        ]
