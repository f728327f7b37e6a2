"""The order state machine: which reports may follow which, and what fills do.

Modelled on NautilusTrader's order FSM. Transitions not in :data:`TRANSITIONS` raise
:class:`InvalidOrderTransition` (corrupt state is worse than none): the OMS stores
the report it could not apply and alerts, it does not guess. Two real-world cases
are allowed on purpose:

* ``CANCELED -> FILLED`` (and fills applied to a canceled or expired order): a fill
  that happened before the cancel was processed can be reported after it;
* a report repeating the current status (a lookup, a duplicated stream event) is a
  no-op, as is a fill whose ``fill_id`` was already applied.

Filled quantities only grow and never exceed the order's quantity; the status
follows from them (``PARTIALLY_FILLED`` or ``FILLED``) whatever status a report
claims, so a venue that reports "filled" with a partial quantity cannot make us
believe the order is done.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from data_lake.errors import BrokerError
from execution.domain import (
    BrokerOrderId,
    Fill,
    OrderReport,
    OrderRequest,
    OrderStatus,
)

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.INITIALIZED: frozenset({S.DENIED, S.SUBMITTED, S.REJECTED, S.CANCELED}),
    S.SUBMITTED: frozenset(
        {S.ACCEPTED, S.REJECTED, S.CANCELED, S.PENDING_CANCEL, S.PARTIALLY_FILLED}
        | {S.FILLED, S.EXPIRED}
    ),
    S.ACCEPTED: frozenset(
        {S.PENDING_CANCEL, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}
    ),
    S.PENDING_CANCEL: frozenset(
        {S.CANCELED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.EXPIRED, S.REJECTED}
    ),
    S.PARTIALLY_FILLED: frozenset({S.PENDING_CANCEL, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.CANCELED: frozenset({S.FILLED}),  # the cancel/fill race
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.DENIED: frozenset(),
}
WORKING = frozenset({S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL, S.PARTIALLY_FILLED})


class InvalidOrderTransition(BrokerError):  # noqa: N818 (named like the other errors)
    """A report or fill that cannot follow the order's state."""


@dataclass(frozen=True)
class OrderState:
    """What we know of one order: the request, the venue's id, status, fills."""

    request: OrderRequest
    status: OrderStatus
    broker_order_id: BrokerOrderId | None
    filled_quantity: int  # units of the order (combo units for a combo)
    avg_fill_price: float | None
    fill_ids: frozenset[str]
    reason: str
    ts_last: datetime

    @classmethod
    def new(cls, request: OrderRequest) -> OrderState:
        return cls(request, S.INITIALIZED, None, 0, None, frozenset(), "", request.ts_init)

    @property
    def leaves_quantity(self) -> int:
        return self.request.quantity - self.filled_quantity


def _check(state: OrderState, target: OrderStatus) -> None:
    if target is state.status:
        return
    if target not in TRANSITIONS[state.status]:
        raise InvalidOrderTransition(
            f"order {state.request.client_order_id}: {state.status} cannot become {target}"
        )


def apply_report(state: OrderState, report: OrderReport) -> OrderState:
    """The state after a broker's report about this order."""
    order = state.request.client_order_id
    if report.client_order_id != order:
        raise InvalidOrderTransition(f"report for {report.client_order_id} applied to {order}")
    if state.broker_order_id and report.broker_order_id not in (None, state.broker_order_id):
        raise InvalidOrderTransition(
            f"order {order}: broker id {report.broker_order_id} differs from the known "
            f"{state.broker_order_id} (two venue orders for one client order id)"
        )
    if report.filled_quantity > state.request.quantity:
        raise InvalidOrderTransition(
            f"order {order}: filled {report.filled_quantity} of {state.request.quantity}"
        )
    filled = max(state.filled_quantity, report.filled_quantity)  # reports can be stale
    status = _status_for(report.status, filled, state.request.quantity)
    if status is S.SUBMITTED and state.status is not S.INITIALIZED:
        status = state.status  # "submitted" after more was known: a stale report
    if status is S.REJECTED and filled > 0:
        raise InvalidOrderTransition(
            f"order {order}: reported rejected with {filled} filled (look the order up)"
        )
    stale = filled == state.filled_quantity
    if state.status.is_terminal and status in WORKING and stale:
        status = state.status  # a late report about a finished order, adding nothing
    if state.status in (S.CANCELED, S.EXPIRED) and status is S.PARTIALLY_FILLED:
        status = state.status  # fills that raced the cancel: the order stays canceled
    _check(state, status)
    price = report.avg_fill_price if report.avg_fill_price is not None else state.avg_fill_price
    return replace(
        state,
        status=status,
        broker_order_id=report.broker_order_id or state.broker_order_id,
        filled_quantity=filled,
        avg_fill_price=price if filled else None,
        reason=report.reason or state.reason,
        ts_last=max(state.ts_last, report.ts_event),
    )


def _status_for(claimed: OrderStatus, filled: int, quantity: int) -> OrderStatus:
    """The status the filled quantity implies: a venue's "filled" with part of the
    quantity is a partial fill; a working order with fills is partially filled."""
    if filled == quantity and claimed in WORKING | {S.FILLED, S.CANCELED, S.EXPIRED}:
        return S.FILLED
    if claimed in (S.FILLED, S.PARTIALLY_FILLED) or (claimed in WORKING and filled > 0):
        return S.PARTIALLY_FILLED if filled > 0 else S.ACCEPTED
    return claimed


def submitted(state: OrderState, at: datetime) -> OrderState:
    """The order was handed to the broker (its answer may never come: in flight)."""
    _check(state, S.SUBMITTED)
    return replace(state, status=S.SUBMITTED, ts_last=max(state.ts_last, at))


def denied(state: OrderState, reason: str, at: datetime) -> OrderState:
    """Refused before sending (risk engine, trading state)."""
    _check(state, S.DENIED)
    return replace(state, status=S.DENIED, reason=reason, ts_last=max(state.ts_last, at))


def apply_fill(state: OrderState, fill: Fill, units: int) -> OrderState:
    """The state after one execution worth ``units`` of the order (for a combo, the
    units its legs' fills complete; the OMS counts them). A repeated ``fill_id`` is a
    no-op."""
    order = state.request.client_order_id
    if fill.client_order_id != order:
        raise InvalidOrderTransition(
            f"fill {fill.fill_id} of {fill.client_order_id} applied to {order}"
        )
    if fill.fill_id in state.fill_ids:
        return state
    if units == 0:  # one leg of a combo unit not yet complete (or a report counted it)
        return replace(
            state,
            fill_ids=state.fill_ids | {fill.fill_id},
            broker_order_id=state.broker_order_id or fill.broker_order_id,
            ts_last=max(state.ts_last, fill.ts_event),
        )
    filled = state.filled_quantity + units
    if filled > state.request.quantity:
        raise InvalidOrderTransition(
            f"order {order}: fill {fill.fill_id} would fill {filled} of {state.request.quantity}"
        )
    status = S.FILLED if filled == state.request.quantity else S.PARTIALLY_FILLED
    if state.status in (S.CANCELED, S.EXPIRED) and status is S.PARTIALLY_FILLED:
        status = state.status  # a fill that raced the cancel or the expiry
    elif state.status is S.EXPIRED:
        status = S.EXPIRED
    else:
        _check(state, status)
    price = fill.price
    if units and state.avg_fill_price is not None and state.filled_quantity:
        price = (state.avg_fill_price * state.filled_quantity + fill.price * units) / filled
    return replace(
        state,
        status=status,
        filled_quantity=filled,
        avg_fill_price=price if units else state.avg_fill_price,
        fill_ids=state.fill_ids | {fill.fill_id},
        broker_order_id=fill.broker_order_id or state.broker_order_id,
        ts_last=max(state.ts_last, fill.ts_event),
    )
