"""A real signal process for the crash tests: one ``run_signal`` of the rule strategy
against a lake, the order store and the paper broker in WORK.

``python -m tests.execution.signal_worker LAKE WORK SLOT RUN_ID [--kill-at POINT]``
where POINT is ``before-send:N`` (the store says order N is submitted, the broker has
not been called: the request is lost with the process) or ``after-send:N`` (the broker
took order N, the process dies before the store hears the answer). The process
SIGKILLs itself there; without it, the run's summary is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from datetime import datetime, timedelta
from pathlib import Path

from data_lake.lake import Lake
from execution.domain import OrderReport, OrderRequest
from execution.market import LakeQuotes
from execution.oms import OrderManager
from execution.paper import PaperBroker
from execution.signal_run import SignalConfig, run_signal
from execution.store import open_store

CONFIG = SignalConfig("hourly-signal", ["SPY", "QQQ"], strategy="rule", rule_every_sessions=1,
                      slot_lease=timedelta(0))  # fmt: skip


class DyingBroker(PaperBroker):
    """The paper venue, with a process that dies at one chosen moment of a submit."""

    kill_at: tuple[str, int] | None = None
    sent = 0

    def submit(self, request: OrderRequest) -> OrderReport:
        self.sent += 1
        if self.kill_at == ("before-send", self.sent):
            os.kill(os.getpid(), signal.SIGKILL)
        report = super().submit(request)
        if self.kill_at == ("after-send", self.sent):
            os.kill(os.getpid(), signal.SIGKILL)
        return report


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("lake", "work", "slot", "run_id"):
        parser.add_argument(name)
    parser.add_argument("--kill-at")
    parser.add_argument("--minutes-after", type=float, default=5.0)
    args = parser.parse_args()
    work = Path(args.work)
    slot = datetime.fromisoformat(args.slot)
    now = slot + timedelta(minutes=args.minutes_after)
    lake = Lake(Path(args.lake))
    broker = DyingBroker(work / "paper.sqlite", LakeQuotes(lake), lambda: now)
    if args.kill_at:
        point, number = args.kill_at.split(":")
        broker.kill_at = (point, int(number))
    oms = OrderManager(open_store(f"sqlite:///{work / 'orders.sqlite'}"), broker, lambda: now)
    summary = run_signal(CONFIG, oms, lake, slot, args.run_id)
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
