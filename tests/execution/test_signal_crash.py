"""A real signal process killed (SIGKILL) at the two moments that can double trade:
just before an order goes out (the store says submitted, the broker never heard)
and just after the broker took it (the store never heard the answer). A re-run of
the slot by another process must send nothing twice, learn what the dead one did
from the broker, and leave the store and the broker agreeing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from data_lake.lake import Lake
from execution.ledger import holdings
from execution.market import LakeQuotes
from execution.oms import OrderManager
from execution.orders import WORKING
from execution.paper import PaperBroker
from execution.reconcile import reconcile
from execution.store import OrderStatus, open_store
from tests.execution.conftest import SNAPSHOTS

ROOT = Path(__file__).resolve().parents[2]
SLOT = SNAPSHOTS[0]

pytestmark = pytest.mark.slow


def _run(lake: Lake, work: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tests.execution.signal_worker", str(lake.root), str(work),
         SLOT.isoformat(), run_id, *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _venue(work: Path, lake: Lake, minutes: float) -> tuple[OrderManager, PaperBroker]:
    now = SLOT + timedelta(minutes=minutes)
    broker = PaperBroker(work / "paper.sqlite", LakeQuotes(lake), lambda: now)
    oms = OrderManager(open_store(f"sqlite:///{work / 'orders.sqlite'}"), broker, lambda: now)
    return oms, broker


@pytest.mark.parametrize("point", ["before-send:1", "after-send:2"])
def test_a_signal_process_killed_mid_order_is_resolved_by_the_next_run(
    lake_copy: Lake, tmp_path: Path, point: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    killed = _run(lake_copy, work, "run-a", "--kill-at", point)
    assert killed.returncode == -9, killed.stderr[-3000:]
    rerun = _run(lake_copy, work, "run-b", "--minutes-after", "6")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    oms, broker = _venue(work, lake_copy, 6)
    try:
        placed = [r.client_order_id for r in broker.open_orders()] + [
            f.client_order_id for f in broker.fills(SLOT - timedelta(days=1))]  # fmt: skip
        by_underlying: dict[str, set[str]] = {}
        for state in oms.store.orders():
            by_underlying.setdefault(state.request.underlying, set()).add(
                state.request.client_order_id.value
            )
        # one order per underlying for the slot, in the store and at the venue
        assert all(len(ids) == 1 for ids in by_underlying.values()), by_underlying
        assert {c.value for c in placed} <= set().union(*by_underlying.values())
        if point.startswith("after-send"):
            # the dead run's order was found at the broker and its fills applied
            assert summary["reconciliation"]["resolved_orders"] >= 1, summary
            assert {s.status for s in oms.store.orders()} == {OrderStatus.FILLED}
            assert {h.contract.underlying for h in holdings(oms.store, SLOT)} == {"SPY", "QQQ"}
        else:
            # the lost request stays in flight (looked up, not resent) until the broker
            # has had time to show it, then is closed as never placed
            lost = [s for s in oms.store.orders() if s.status in WORKING]
            assert len(lost) == 1
            assert lost[0].status is OrderStatus.SUBMITTED
            assert broker.lookup(lost[0].request.client_order_id) is None
        later, _ = _venue(work, lake_copy, 30)
        result = reconcile(later)
        assert not result.blocked, result.discrepancies
        assert later.store.in_flight() == []
        later.store.close()
    finally:
        oms.store.close()
