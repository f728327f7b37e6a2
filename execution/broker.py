"""The one contract every broker adapter implements, in domain types only.

Adapters (``paper``, ``ibkr``, ``alpaca``) translate; they hold no trading logic.
What the OMS relies on:

* ``submit`` is idempotent on the client order id: an order the venue already has
  under that id is reported, never placed twice (Alpaca refuses a reused id; IB does
  not check ``orderRef``, so its adapter looks the id up first);
* an outcome that is not known (a timeout, a disconnect, a 5xx) raises
  :class:`BrokerUnavailable`: the order stays *in flight* in the store and is
  resolved by :meth:`Broker.lookup`, not by sending it again; a refusal the venue
  states is a ``REJECTED`` report, not an exception;
* ``lookup`` returns None only where the venue positively has no order under the id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from data_lake.errors import BrokerError
from execution.domain import ClientOrderId, Fill, OrderReport, OrderRequest, Position


class BrokerUnavailable(BrokerError):  # noqa: N818 (named like the other errors)
    """The broker could not be reached or did not answer: what happened to the request
    is not known (look the order up later; never resend blindly)."""


@runtime_checkable
class Broker(Protocol):
    name: str

    def submit(self, request: OrderRequest) -> OrderReport:
        """Place ``request`` (idempotent on its client order id)."""
        ...

    def cancel(self, client_order_id: ClientOrderId) -> OrderReport:
        """Ask to cancel; the report says what the venue did (it may have filled)."""
        ...

    def lookup(self, client_order_id: ClientOrderId) -> OrderReport | None:
        """The venue's view of one order (open or done), None if it has none."""
        ...

    def open_orders(self) -> list[OrderReport]:
        """Orders the venue is working."""
        ...

    def fills(self, since: datetime) -> list[Fill]:
        """Executions at or after ``since`` (every leg of a combo), by execution id."""
        ...

    def positions(self) -> list[Position]:
        """What the account holds (options only; expired contracts are gone)."""
        ...

    def close(self) -> None: ...
