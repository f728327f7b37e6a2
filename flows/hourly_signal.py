"""The ``hourly-signal`` flow: one signal run per schedule slot, trading hours only.

claim the slot -> reconcile -> (refresh the latest snapshot and its features) ->
the champion, only if approved, or the rule -> targets -> risk -> OMS -> broker.
The deployment has ``concurrency_limit: 1`` with ``CANCEL_NEW``; the slot claim in
the order store and the deterministic client order ids stand behind it, since
Prefect can create duplicate scheduled runs and leak concurrency slots.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from data_lake.calendar import EXCHANGE_TZ, exchange_calendar, trading_date
from data_lake.errors import VolflowError
from data_lake.ingest import PartialIngestError
from execution.signal_run import run_signal
from flows.ingest_chains import IngestParams, run_with_features
from flows.settings import Settings, SymbolList, load_settings
from models.train import model_name
from tasks.failures import fails_cleanly
from tasks.trading import close_oms, copy_to_lake, open_oms, signal_config

logger = logging.getLogger(__name__)


class SignalParams(BaseModel):
    """A signal run. ``slot``: the schedule slot (default: the run's scheduled time,
    else now, to the hour); ``as_of``: the clock (default: now), for replays and tests."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    slot: datetime | None = None
    as_of: datetime | None = None
    underlyings: SymbolList | None = None
    refresh_market: bool | None = None  # default: settings.execution.refresh_market
    strategy: Literal["model", "rule"] | None = None  # default: settings.execution.strategy
    # the model traded: its label and horizon (default: settings.train)
    label: str | None = None
    horizon: int | None = Field(default=None, ge=1)


def slot_of(params: SignalParams, now: datetime) -> datetime:
    if params.slot is not None:
        return params.slot.astimezone(UTC)
    scheduled = flow_run.scheduled_start_time
    at = scheduled if scheduled is not None and params.as_of is None else now
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def in_session(now: datetime) -> bool:
    calendar = exchange_calendar()
    day = trading_date(now)
    if not calendar.is_session(day):
        return False
    session = calendar.session_on_or_before(day)
    return session.open <= now < session.close


def _refresh(settings: Settings, underlyings: list[str], now: datetime) -> dict[str, Any]:
    params = IngestParams(underlyings=underlyings, as_of=now, build_features=True)
    try:
        return run_with_features(params, settings)
    except PartialIngestError as exc:  # the others still trade; the summary names it
        logger.error("market refresh: %s", exc)
        return exc.summary


@task(name="signal-run", cache_policy=NO_CACHE)
def signal_task(params: SignalParams, settings: Settings) -> dict[str, Any]:
    fixed = params.as_of.astimezone(UTC) if params.as_of else None
    start = datetime.now(UTC)  # the flow is the clock's one reader

    def clock() -> datetime:
        return fixed + (datetime.now(UTC) - start) if fixed else datetime.now(UTC)

    now = clock()
    config = signal_config(settings)
    if params.underlyings:
        config = replace(config, underlyings=list(params.underlyings))
    if params.strategy:
        config = replace(config, strategy=params.strategy)
    if params.label or params.horizon:
        name = model_name(params.label or settings.train.label,
                          params.horizon or settings.train.horizon)  # fmt: skip
        config = replace(config, model_name=name)
    slot = slot_of(params, now)
    if not in_session(now):
        local = now.astimezone(EXCHANGE_TZ)
        why = f"{local:%Y-%m-%d %H:%M} New York is outside a trading session"
        return {"status": "closed", "slot": slot.isoformat(), "reason": why}
    refresh = settings.execution.refresh_market
    if params.refresh_market is not None:
        refresh = params.refresh_market
    refreshed = _refresh(settings, config.underlyings, now) if refresh else {}
    oms = open_oms(settings, clock)
    try:
        run_id = str(flow_run.id or f"local-{start.timestamp()}")
        summary = run_signal(config, oms, settings.lake, slot, run_id)
        summary["lake_copy"] = copy_to_lake(oms, settings)
    finally:
        close_oms(oms)
    if refreshed.get("failed"):
        summary.setdefault("failed", {}).update(
            {u: f"market refresh: {why}" for u, why in refreshed["failed"].items()}
        )
    return summary


@flow(name="hourly-signal", validate_parameters=True)
@fails_cleanly
def hourly_signal(params: SignalParams | None = None) -> dict[str, Any]:
    """Claim the slot, reconcile, and trade the approved champion (or the rule)."""
    summary = signal_task(params or SignalParams(), load_settings())
    failed = summary.get("failed") or {}
    decided = summary.get("decisions") or {}
    if failed and not decided:
        raise VolflowError(
            "every underlying failed: " + "; ".join(f"{u}: {w}" for u, w in failed.items())
        )
    return summary
