"""Wiring of the money path from the settings: the order store, the broker, the OMS
and the signal run's configuration. The flows and the CLI build them here, once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from data_lake.errors import VolflowError
from execution.broker import Broker
from execution.champion import ApprovalGate
from execution.lake_copy import export_to_lake
from execution.market import LakeQuotes
from execution.oms import OrderManager
from execution.paper import CommissionSchedule, PaperBroker
from execution.signal_run import SignalConfig
from execution.store import open_store
from execution.strategy import Direction
from flows.settings import Settings
from models.train import model_name

logger = logging.getLogger(__name__)


def make_broker(settings: Settings, clock: Callable[[], datetime]) -> Broker:
    e = settings.execution
    if e.broker == "alpaca":
        from execution.alpaca import AlpacaBroker, connect_alpaca  # noqa: PLC0415 (only if used)

        a = e.alpaca
        reads, submits = connect_alpaca(
            a.api_key.get_secret_value() if a.api_key else "",
            a.secret_key.get_secret_value() if a.secret_key else "",
            paper=a.paper, live_trading=a.live_trading, url_override=a.url_override,
        )  # fmt: skip
        return AlpacaBroker(reads, submits, clock)
    if e.broker == "ibkr":
        from execution.ibkr import connect_ibkr  # noqa: PLC0415 (loaded only if chosen)

        i = e.ibkr
        return connect_ibkr(i.host, i.port, i.client_id, clock, account=i.account,
                            timeout=i.timeout_seconds, live_trading=i.live_trading)  # fmt: skip
    p = e.paper
    path = p.path or settings.home.resolve() / "paper.sqlite"
    quotes = LakeQuotes(
        settings.lake, timedelta(minutes=e.max_quote_age_minutes),
        tuple(settings.features.source_preference),
    )  # fmt: skip
    commissions = CommissionSchedule(
        p.per_contract, p.per_contract_low, p.per_contract_penny, p.minimum_per_order
    )
    return PaperBroker(path, quotes, clock, commissions, p.price_band, e.structures.tick)


def open_oms(settings: Settings, clock: Callable[[], datetime]) -> OrderManager:
    """The order store (created or migrated) and the configured broker."""
    store = open_store(settings.order_store_url)
    return OrderManager(store, make_broker(settings, clock), clock)


def close_oms(oms: OrderManager) -> None:
    oms.broker.close()
    oms.store.close()


def signal_config(settings: Settings) -> SignalConfig:
    e = settings.execution
    return SignalConfig(
        deployment=e.deployment,
        underlyings=list(e.underlyings or settings.underlyings),
        strategy=e.strategy,
        model_name=model_name(settings.train.label, settings.train.horizon),
        tracking_uri=settings.tracking_uri,
        gate=ApprovalGate(e.approval.min_sharpe_tstat, e.approval.min_oos_rows),
        settings=e.structures,
        limits=e.risk,
        capital=e.capital,
        max_quote_age=timedelta(minutes=e.max_quote_age_minutes),
        rule_direction=Direction.SHORT_VOL if e.rule_direction == "short" else Direction.LONG_VOL,
        rule_every_sessions=e.rule_every_sessions,
        slot_lease=timedelta(minutes=e.slot_lease_minutes),
    )


def copy_to_lake(oms: OrderManager, settings: Settings) -> dict[str, int] | str:
    """The lake's analysis copy; a failure is reported, it never undoes a trade."""
    try:
        return export_to_lake(oms.store, settings.lake, oms.clock())
    except VolflowError as exc:
        logger.error("lake copy of the order store failed: %s", exc)
        return f"failed: {exc}"
