"""Reconciliation: the broker's positions, open orders and recent fills against the
store.

What can be explained is repaired: an order in flight or working is looked up, and
a fill of ours that the store missed (a crash between the venue's execution and our
write) is applied. What cannot - a position we did not order, a quantity that
differs, an open order or a fill that is not ours - is a discrepancy: it is logged
as an alert, stored, and **blocks trading** until an operator accepts it
(``volflow reconcile --accept``: position differences become adjustments to our
record, the rest is acknowledged). Nothing here ever trades to close a gap.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from data_lake.errors import BrokerError
from execution.ledger import (
    acknowledge,
    acknowledged,
    adjust_position,
    holdings,
    is_expired,
    last_reconciliation,
    record_reconciliation,
)
from execution.oms import OrderManager
from execution.store import contract_from_json, contract_json

logger = logging.getLogger(__name__)


class ReconciliationError(BrokerError):
    """The broker and the store differ in a way nothing explains: trading is blocked."""


@dataclass(frozen=True)
class Discrepancy:
    kind: str  # position | open_order | foreign_fill
    key: str  # what an acknowledgement names
    detail: str
    contract: str | None = None  # the contract (JSON) of a position difference
    ours: int | None = None
    theirs: int | None = None


@dataclass(frozen=True)
class Reconciliation:
    ts: datetime
    repaired_fills: int
    resolved_orders: int
    discrepancies: tuple[Discrepancy, ...]

    @property
    def blocked(self) -> bool:
        return bool(self.discrepancies)

    def summary(self) -> dict[str, Any]:
        return {
            "ts": self.ts.isoformat(), "blocked": self.blocked,
            "repaired_fills": self.repaired_fills, "resolved_orders": self.resolved_orders,
            "discrepancies": [d.detail for d in self.discrepancies],
        }  # fmt: skip


def reconcile(oms: OrderManager, lookback: timedelta = timedelta(days=3)) -> Reconciliation:
    """Repair what can be explained, report the rest (see the module docstring)."""
    now = oms.clock()
    resolved = oms.resolve_open()
    repaired, foreign = oms.sync_fills(now - lookback)
    store, broker = oms.store, oms.broker
    acked = acknowledged(store)
    found: list[Discrepancy] = []
    for fill in foreign:
        key = f"fill:{fill.fill_id}"
        if key not in acked:
            found.append(Discrepancy("foreign_fill", key, (
                f"fill {fill.fill_id} ({fill.side} {fill.quantity} {fill.contract.contract_id}) "
                f"is for order {fill.client_order_id}, which is not ours")))  # fmt: skip
    ours = {h.contract.contract_id: h for h in holdings(store, now)}
    theirs = {
        p.contract.contract_id: p for p in broker.positions() if not is_expired(p.contract, now)
    }
    for contract_id in sorted(set(ours) | set(theirs)):
        mine = ours[contract_id].quantity if contract_id in ours else 0
        venue = theirs[contract_id].quantity if contract_id in theirs else 0
        if mine != venue:
            contract = (theirs.get(contract_id) or ours[contract_id]).contract
            found.append(Discrepancy(
                "position", f"position:{contract_id}:{mine}:{venue}",
                f"{contract_id}: we hold {mine}, {broker.name} says {venue}",
                contract_json(contract), mine, venue,
            ))  # fmt: skip
    for report in broker.open_orders():
        state = store.load(report.client_order_id)
        key = f"order:{report.client_order_id}"
        if (state is None or state.status.is_terminal) and key not in acked:
            what = "not ours" if state is None else f"{state.status} in our store"
            found.append(Discrepancy("open_order", key, (
                f"{broker.name} works order {report.client_order_id}, {what}")))  # fmt: skip
    result = Reconciliation(now, repaired, resolved, tuple(found))
    record_reconciliation(
        store, now, result.blocked, [asdict(d) for d in found], repaired, resolved
    )
    if result.blocked:
        for d in found:
            logger.error("reconciliation: %s (trading blocked until `volflow reconcile "
                         "--accept`)", d.detail)  # fmt: skip
    return result


def accept(oms: OrderManager, reason: str) -> list[str]:
    """Accept the last reconciliation's discrepancies: our record of each position
    becomes the broker's, the rest is acknowledged. Returns what was accepted."""
    now = oms.clock()
    last = last_reconciliation(oms.store)
    if last is None or not last["blocked"]:
        return []
    done = []
    for item in last["discrepancies"]:
        d = Discrepancy(**item)
        if not acknowledge(oms.store, d.key, reason, now):
            continue  # accepted already
        if d.kind == "position" and d.contract is not None:
            assert d.ours is not None
            assert d.theirs is not None
            adjust_position(oms.store, contract_from_json(d.contract), d.theirs - d.ours,
                            f"accepted: {reason}", now)  # fmt: skip
        done.append(d.detail)
    record_reconciliation(oms.store, now, False, [], 0, 0)
    return done


def trading_blocked(oms: OrderManager) -> str:
    """Why trading is blocked by reconciliation (empty: it is not)."""
    last = last_reconciliation(oms.store)
    if last is None or not last["blocked"]:
        return ""
    return "; ".join(d["detail"] for d in last["discrepancies"])
