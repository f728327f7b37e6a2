"""Real Prefect processes for the tests that run volflow the way production does: a
``prefect server start`` on a free port with its own home, a process worker, the
``volflow`` console script. Each runs in its own process group and is stopped by its
process id (the group), never by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flows.environment import OFFLINE_DEFAULTS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PREFECT = BIN / "prefect"
VOLFLOW = BIN / "volflow"

# what the CLI sets for itself (a child started here gets the same, whatever it is)
OFFLINE = dict(OFFLINE_DEFAULTS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """The parent's environment without any Prefect, MLflow or volflow settings (the
    test session's own Prefect server must not leak into a child), plus ``extra``."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "VOLFLOW_", "MLFLOW_")) or k == "VOLFLOW_LEAN_DATA"
    }
    return {**keep, **OFFLINE, **extra}


@dataclass
class Process:
    """A child in its own process group, its output in a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, args: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> Process:
        handle = log.open("ab")
        popen = subprocess.Popen(
            args, env=dict(env), cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        handle.close()
        return cls(popen, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace_seconds: float = 20) -> None:
        """SIGTERM to the group (the server's and worker's own children too), then
        SIGKILL what is left after the grace period."""
        pgid = self.popen.pid  # start_new_session: the group id is the child's pid
        for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; children in its group may not be
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break


@dataclass
class PrefectServer:
    url: str  # the API URL, .../api
    process: Process

    @classmethod
    def start(cls, home: Path, logs: Path, timeout: float = 180) -> PrefectServer:
        """``prefect server start`` on a free port, with its database under ``home``;
        the scheduler is off so that no cron run starts while a test drives runs."""
        port = free_port()
        env = clean_environment(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
            PREFECT_UI_ENABLED="false",
        )
        process = Process.start(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env, logs / "server.log", REPO,
        )  # fmt: skip
        server = cls(f"http://127.0.0.1:{port}/api", process)
        server.wait_healthy(timeout)
        return server

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"prefect server exited:\n{self.process.output()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"prefect server not healthy in {timeout:.0f}s")


def run_command(
    args: list[str], env: Mapping[str, str], cwd: Path = REPO, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
