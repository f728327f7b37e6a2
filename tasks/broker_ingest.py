"""The brokers' chain snapshots as an ingest task: connect, poll one underlying, write
it as one snapshot, disconnect. A connection per task, because an ib_async client
belongs to the thread that opened it (the flow runs these one at a time for IB)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from data_lake.errors import ConfigError, SourceError
from data_lake.ingest import IngestSummary, write_batch
from data_lake.lake import Lake
from data_lake.sources.base import SourceBatch
from data_lake.sources.broker_chains import AlpacaChainFetcher, ChainWindow, IbkrChainFetcher
from tasks import progress
from tasks.ingest import retry_on_io_error

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerFeed:
    """Where a broker's market data comes from (the execution settings' connection)."""

    source: Literal["ibkr", "alpaca"]
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 17
    timeout: float = 10.0
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    url_override: str | None = None


def _poll(feed: BrokerFeed, underlying: str, window: ChainWindow,
          clock: Callable[[], datetime]) -> SourceBatch:  # fmt: skip
    if feed.source == "alpaca":
        from alpaca.data.historical import (  # noqa: PLC0415 (loaded only for this source)
            OptionHistoricalDataClient,
            StockHistoricalDataClient,
        )

        if feed.api_key is None or feed.secret_key is None:
            raise ConfigError("alpaca market data needs VOLFLOW_EXECUTION__ALPACA__API_KEY "
                              "and VOLFLOW_EXECUTION__ALPACA__SECRET_KEY")  # fmt: skip
        keys = (feed.api_key.get_secret_value(), feed.secret_key.get_secret_value())
        fetcher: Any = AlpacaChainFetcher(OptionHistoricalDataClient(*keys),
                                          StockHistoricalDataClient(*keys))  # fmt: skip
        return fetcher.poll(underlying, window, clock)
    from ib_async import IB  # noqa: PLC0415 (loaded only for this source)

    ib = IB()
    try:
        ib.connect(feed.host, feed.port, clientId=feed.client_id, timeout=feed.timeout,
                   readonly=True)  # fmt: skip
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise SourceError(
            f"ibkr {underlying}: cannot reach TWS/IB Gateway at {feed.host}:{feed.port}: {exc}"
        ) from exc
    try:
        return IbkrChainFetcher(ib).poll(underlying, window, clock)
    finally:
        ib.disconnect()


@task(
    name="ingest-broker-snapshot", task_run_name="ingest-{feed.source}-snapshot-{underlying}",
    tags=["volflow-ingest"], retries=1, retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error, cache_policy=NO_CACHE,
)  # fmt: skip
def ingest_broker_snapshot(
    lake: Lake, feed: BrokerFeed, underlying: str, window: ChainWindow,
    as_of: datetime | None = None,
) -> dict[str, object]:  # fmt: skip
    """Poll ``underlying``'s chain at the broker once; write it as one snapshot."""
    lake.ensure_writable()
    clock = (lambda: as_of) if as_of is not None else (lambda: datetime.now(UTC))
    batch = _poll(feed, underlying, window, clock)
    summary = IngestSummary(underlying, feed.source)
    summary.add(write_batch(lake, batch, "merge"))
    progress.report(underlying, batch.day, sum(summary.rows.values()))
    logger.info("%s: rows %s from %s", underlying, dict(summary.rows), batch.origin)
    return summary.as_dict()
