"""The ``reconcile`` flow: the broker's positions, open orders and fills against the
order store, every 15 minutes in trading hours. Missed fills are repaired; anything
unexplained is alerted and blocks trading until ``volflow reconcile --accept``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from execution import reconcile as reconciliation
from flows.settings import Settings, load_settings
from tasks.failures import fails_cleanly
from tasks.trading import close_oms, copy_to_lake, open_oms


class ReconcileParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    as_of: datetime | None = None  # the clock (default: now), for replays and tests


@task(name="reconcile-broker", cache_policy=NO_CACHE)
def reconcile_task(params: ReconcileParams, settings: Settings) -> dict[str, Any]:
    at = params.as_of.astimezone(UTC) if params.as_of else None
    oms = open_oms(settings, lambda: at or datetime.now(UTC))  # the clock's one reader
    try:
        result = reconciliation.reconcile(oms)
        copy_to_lake(oms, settings)
    finally:
        close_oms(oms)
    if result.blocked:
        raise reconciliation.ReconciliationError(
            f"{len(result.discrepancies)} unexplained difference(s) with the broker, trading "
            "blocked until `volflow reconcile --accept`: " + "; ".join(
                d.detail for d in result.discrepancies)
        )  # fmt: skip
    return result.summary()


@flow(name="reconcile", validate_parameters=True)
@fails_cleanly
def reconcile(params: ReconcileParams | None = None) -> dict[str, Any]:
    """Compare the broker with the order store; repair missed fills; block on drift."""
    return reconcile_task(params or ReconcileParams(), load_settings())
