"""Deterministic client order ids: the last line of defence against double trading.

The id of an order is a function of what the order *is for*, not of when or how
often it was computed: (deployment, schedule slot, underlying, structure, leg). A
re-run of a slot, a Prefect retry, a duplicate scheduled run or a restart after a
crash derives the same id, finds it in the store (and at the broker) and does not
send a second order.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from data_lake.errors import ConfigError
from execution.domain import ClientOrderId

_PART = re.compile(r"^[A-Za-z0-9._\-]+$")


def client_order_id(
    deployment: str, slot: datetime, underlying: str, structure: str, leg: int | str = 0
) -> ClientOrderId:
    """``vf-<slot yyyymmddThhmm>-<underlying>-<digest>``: readable in a broker's blotter,
    unique per (deployment, slot, underlying, structure, leg), at most 64 characters
    (Alpaca allows 128, IB's orderRef more)."""
    if slot.tzinfo is None:
        raise ConfigError(f"slot {slot!r} must be a timezone-aware time")
    for name, part in (("deployment", deployment), ("underlying", underlying),
                       ("structure", structure), ("leg", str(leg))):  # fmt: skip
        if not _PART.match(part):
            raise ConfigError(f"invalid {name} {part!r} for a client order id")
    at = slot.astimezone(UTC)
    key = "|".join([deployment, at.isoformat(), underlying, structure, str(leg)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return ClientOrderId(f"vf-{at:%Y%m%dT%H%M}-{underlying}-{digest}")
