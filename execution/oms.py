"""Order management: intent, submission, lookups and fills, against the store and a
broker.

The rules that keep it from double trading:

* the intent is in the store before anything is sent (``record_intent``); an id
  already stored is never sent again from ``INITIALIZED`` by a second process
  without the first's record being there to see;
* an order marked ``SUBMITTED`` whose answer never came (timeout, disconnect, a
  crash right after sending) is *in flight*: it is looked up at the broker by its
  client order id, never sent again. Only when the broker positively has no order
  under that id, ``unknown_after`` after it was sent, is it closed as never placed;
* fills are applied once per execution id, with the order's state, in one
  transaction; a combo's fills count as units when every leg has its share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from execution.broker import Broker, BrokerUnavailable
from execution.domain import Fill, OrderReport, OrderRequest, OrderStatus
from execution.ledger import fill_rows
from execution.orders import (
    WORKING,
    InvalidOrderTransition,
    OrderState,
    apply_fill,
    apply_report,
    submitted,
)
from execution.store import OrderStore

logger = logging.getLogger(__name__)


@dataclass
class OrderManager:
    store: OrderStore
    broker: Broker
    clock: Callable[[], datetime]
    unknown_after: timedelta = timedelta(minutes=10)

    def submit(self, request: OrderRequest, deployment: str, slot: datetime) -> OrderState:
        """Place ``request`` at most once: a stored id is resolved, not resent."""
        state, _created = self.store.record_intent(request, deployment, slot)
        if state.status is not OrderStatus.INITIALIZED:
            logger.info("order %s already %s: not sent again", request.client_order_id,
                        state.status)  # fmt: skip
            return self.resolve(state) if state.status.is_in_flight else state
        state = submitted(state, self.clock())
        self.store.save(state)  # from here on, a crash leaves it in flight
        try:
            report = self.broker.submit(request)
        except BrokerUnavailable as exc:
            logger.warning("order %s in flight: %s (it will be looked up, not resent)",
                           request.client_order_id, exc)  # fmt: skip
            return state
        return self.apply(state, report)

    def apply(self, state: OrderState, report: OrderReport) -> OrderState:
        """Store a broker's report with the state it leads to (an impossible one is
        raised: corrupt state is worse than none)."""
        new = apply_report(state, report)
        if new != state or report.status is not state.status:
            self.store.save(new, report)
        return new

    def resolve(self, state: OrderState) -> OrderState:
        """Look one order up at the broker and apply what it says."""
        try:
            report = self.broker.lookup(state.request.client_order_id)
        except BrokerUnavailable as exc:
            logger.warning("lookup of %s failed: %s", state.request.client_order_id, exc)
            return state
        now = self.clock()
        if report is None:
            if state.status is OrderStatus.SUBMITTED and now - state.ts_last >= self.unknown_after:
                gone = OrderReport(
                    state.request.client_order_id, None, OrderStatus.REJECTED, 0, None, now, now,
                    reason=f"{self.broker.name} has no order under this id "
                    f"{self.unknown_after} after it was sent: never placed",
                )  # fmt: skip
                return self.apply(state, gone)
            return state
        return self.apply(state, report)

    def resolve_open(self) -> int:
        """Look up every order in flight or working; the number whose state changed."""
        changed = 0
        for state in self.store.orders(set(WORKING)):
            try:
                if self.resolve(state) != state:
                    changed += 1
            except InvalidOrderTransition as exc:
                logger.error("order %s: %s", state.request.client_order_id, exc)
        return changed

    def cancel(self, state: OrderState) -> OrderState:
        try:
            report = self.broker.cancel(state.request.client_order_id)
        except BrokerUnavailable as exc:
            logger.warning("cancel of %s not confirmed: %s", state.request.client_order_id, exc)
            return state
        return self.apply(state, report)

    def sync_fills(self, since: datetime) -> tuple[int, list[Fill]]:
        """Apply the broker's executions since ``since`` that the store lacks; returns
        how many were new, and the fills of orders that are not ours."""
        new, foreign = 0, []
        counted = _leg_quantities(self.store)
        for fill in self.broker.fills(since):
            state = self.store.load(fill.client_order_id)
            if state is None:
                foreign.append(fill)
                continue
            if fill.fill_id in state.fill_ids:
                continue
            legs = counted.setdefault(fill.client_order_id.value, {})
            legs[fill.contract.contract_id] = legs.get(fill.contract.contract_id, 0) + fill.quantity
            # units a report has counted already are not counted again
            units = max(0, _units(state, legs) - state.filled_quantity)
            after = apply_fill(state, fill, units)
            if self.store.record_fill(after, fill):
                new += 1
                logger.info("fill %s: %s %d %s at %.2f", fill.fill_id, fill.side,
                            fill.quantity, fill.contract.contract_id, fill.price)  # fmt: skip
        return new, foreign


def _leg_quantities(store: OrderStore) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in fill_rows(store):
        legs = out.setdefault(row["client_order_id"], {})
        legs[row["contract_id"]] = legs.get(row["contract_id"], 0) + row["quantity"]
    return out


def _units(state: OrderState, legs: dict[str, int]) -> int:
    """Whole units of the order its legs' fills complete."""
    return min(legs.get(g.contract.contract_id, 0) // g.ratio for g in state.request.legs)
