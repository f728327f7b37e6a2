"""The ``ingest-chains`` flow (also the body of ``backfill``, see flows/backfill.py).

With no dates it writes the latest snapshot (what the scheduled deployment does
every 30 minutes in trading hours); with a date range it writes every session in it.
One task per underlying runs in a bounded thread pool (``ingest.concurrency``);
an underlying that fails is reported and the others still complete.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_lake.calendar import exchange_calendar
from data_lake.errors import ConfigError
from data_lake.ingest import PartialIngestError
from data_lake.lake import validate_symbol
from data_lake.sources.broker_chains import ChainWindow
from data_lake.sources.yahoo import PollConfig
from flows.build_features import FeatureParams, run_build
from flows.fanout import gather_results
from flows.settings import Settings, SymbolList, load_settings
from tasks.broker_ingest import BrokerFeed, ingest_broker_snapshot
from tasks.failures import fails_cleanly
from tasks.ingest import (
    ingest_synthetic_range,
    ingest_synthetic_snapshot,
    ingest_vendor_file,
    ingest_yfinance_snapshot,
)

LIVE = ("yfinance", "ibkr", "alpaca")  # polls of a live chain, no files or dates


class IngestParams(BaseModel):
    """Parameters of an ingest run (validated before any work starts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: Literal["synthetic", "cboe", "lean", "yfinance", "ibkr", "alpaca"] = "synthetic"
    files: list[str] | None = None  # vendor files (cboe: one task each); lean: the data folder
    underlyings: SymbolList | None = None  # synthetic default: settings; files: all in the file
    start: date | None = None
    end: date | None = None
    seed: int | None = None
    signal: Literal["none", "planted"] | None = None
    # synthetic: every underlying's variance risk premium (0: options priced fair)
    vrp: float | None = Field(default=None, ge=0, le=3)
    intraday: bool = False
    # lean: option chains at this resolution with the bars and factors; None: no options
    resolution: Literal["daily", "hour", "minute"] | None = None
    dirt_rate: float | None = Field(default=None, ge=0, le=0.5)  # synthetic: bad rows on purpose
    mode: Literal["merge", "upsert", "replace"] = "merge"  # vendor files: merge means upsert
    skip_existing: bool = False
    as_of: datetime | None = None  # the clock for a snapshot run; default: now (UTC)
    build_features: bool = False  # run build-features for the ingested underlyings after
    # yfinance: the DTE window (default: settings.yahoo)
    min_dte: int | None = Field(default=None, ge=0)
    max_dte: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check_range(self) -> IngestParams:
        if self.source == "synthetic" and (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither (for the latest snapshot)")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end date {self.end} is before start date {self.start}")
        if self.source in LIVE and (self.files or self.start or self.end):
            raise ValueError(f"{self.source} polls the live chain: no files or dates")
        if self.min_dte is not None and self.max_dte is not None and self.max_dte < self.min_dte:
            raise ValueError(f"max_dte {self.max_dte} is below min_dte {self.min_dte}")
        if self.source not in ("synthetic", *LIVE) and not self.files:
            raise ValueError(f"source {self.source} needs files to ingest")
        if self.source == "synthetic" and self.files:
            raise ValueError("files are for vendor sources, not the synthetic market")
        if self.source == "lean" and (len(self.files or []) != 1 or not self.underlyings):
            raise ValueError("source lean needs one data folder and --underlyings")
        return self


def validate_request(params: IngestParams, settings: Settings) -> tuple[list[str], Any]:
    """Resolve and check underlyings, source config and dates; ConfigError if wrong."""
    requested = params.underlyings or settings.underlyings
    underlyings = list(dict.fromkeys(validate_symbol(u) for u in requested))  # once each
    if not underlyings:
        raise ConfigError("no underlyings given: pass --underlyings or set underlyings in settings")
    config = settings.synthetic.to_config(
        seed=params.seed,
        signal=params.signal,
        intraday=params.intraday,
        dirt_rate=params.dirt_rate,
        variance_risk_premium=params.vrp,
    )
    for underlying in underlyings:
        config.profile(underlying)
    if params.start and params.end and not exchange_calendar().sessions(params.start, params.end):
        raise ConfigError(f"no exchange sessions between {params.start} and {params.end}")
    return underlyings, config


def validate_files(params: IngestParams) -> list[Path]:
    """Every named file must exist; the contents are checked by the file's task."""
    paths = [Path(f).expanduser() for f in dict.fromkeys(params.files or [])]
    if params.source == "lean":
        if not paths[0].is_dir():
            raise ConfigError(f"no such folder: {paths[0]} (give LEAN's Data folder)")
        return paths
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"no such file: {', '.join(missing)}")
    if params.underlyings:
        for underlying in params.underlyings:
            validate_symbol(underlying)
    return paths


def run_file_ingest(params: IngestParams, settings: Settings) -> dict[str, Any]:
    """One task per vendor file: parse it all, then write its partitions."""
    paths = validate_files(params)
    lake = settings.lake
    lake.ensure_writable()
    task = ingest_vendor_file.with_options(
        retries=settings.ingest.retries, retry_delay_seconds=settings.ingest.retry_delay_seconds
    )
    futures: dict[str, PrefectFuture[dict[str, object]]] = {}
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(
        max_workers=settings.ingest.concurrency
    )
    # cboe: one task per file; lean: one task per symbol below the data folder
    units = (
        [(u, str(paths[0]), [u]) for u in params.underlyings or []]
        if params.source == "lean"
        else [(str(p), str(p), params.underlyings) for p in paths]
    )
    with runner:
        for unit, path, underlyings in units:
            args = {
                "lake": lake, "source": params.source, "path": path, "underlyings": underlyings,
                "mode": "upsert" if params.mode == "merge" else params.mode,
                "start": params.start, "end": params.end, "options": params.resolution,
            }  # fmt: skip
            futures[unit] = runner.submit(task, args)
        key = "underlyings" if params.source == "lean" else "files"
        summary: dict[str, Any] = {"lake": str(lake.root), key: {}, "failed": {}}
        return gather_results(futures, summary, key)


def run_live_ingest(params: IngestParams, settings: Settings) -> dict[str, Any]:
    """One yfinance poll per underlying (a shared rate limiter paces all of them)."""
    requested = params.underlyings or settings.underlyings
    underlyings = list(dict.fromkeys(validate_symbol(u) for u in requested))
    lake = settings.lake
    lake.ensure_writable()
    yahoo = settings.yahoo
    config = PollConfig(
        min_dte=yahoo.min_dte if params.min_dte is None else params.min_dte,
        max_dte=yahoo.max_dte if params.max_dte is None else params.max_dte,
        requests_per_second=yahoo.requests_per_second,
        max_wait_seconds=yahoo.max_wait_seconds,
        attempts=yahoo.attempts,
        backoff_initial_seconds=yahoo.backoff_initial_seconds,
        backoff_max_seconds=yahoo.backoff_max_seconds,
    )
    task = ingest_yfinance_snapshot.with_options(
        retries=settings.ingest.retries, retry_delay_seconds=settings.ingest.retry_delay_seconds
    )
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(
        max_workers=settings.ingest.concurrency
    )
    futures: dict[str, PrefectFuture[dict[str, object]]] = {}
    with runner:
        for underlying in underlyings:
            args = {"lake": lake, "underlying": underlying, "config": config,
                    "as_of": params.as_of}  # fmt: skip
            futures[underlying] = runner.submit(task, args)
        summary: dict[str, Any] = {"lake": str(lake.root), "underlyings": {}, "failed": {}}
        return gather_results(futures, summary, "underlyings")


def run_broker_ingest(params: IngestParams, settings: Settings) -> dict[str, Any]:
    """One chain snapshot per underlying from the broker's market data (IB: one at a
    time, since a client id is one connection)."""
    requested = params.underlyings or settings.underlyings
    underlyings = list(dict.fromkeys(validate_symbol(u) for u in requested))
    lake = settings.lake
    lake.ensure_writable()
    e = settings.execution
    feed = BrokerFeed(
        source="ibkr" if params.source == "ibkr" else "alpaca", host=e.ibkr.host,
        port=e.ibkr.port, client_id=e.ibkr.client_id, timeout=e.ibkr.timeout_seconds,
        api_key=e.alpaca.api_key, secret_key=e.alpaca.secret_key,
        url_override=e.alpaca.url_override,
    )  # fmt: skip
    window = ChainWindow(
        min_dte=settings.yahoo.min_dte if params.min_dte is None else params.min_dte,
        max_dte=(settings.yahoo.max_dte or 120) if params.max_dte is None else params.max_dte,
    )
    workers = 1 if params.source == "ibkr" else settings.ingest.concurrency
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=workers)
    futures: dict[str, PrefectFuture[dict[str, object]]] = {}
    with runner:
        for underlying in underlyings:
            args = {"lake": lake, "feed": feed, "underlying": underlying, "window": window,
                    "as_of": params.as_of}  # fmt: skip
            futures[underlying] = runner.submit(ingest_broker_snapshot, args)
        summary: dict[str, Any] = {"lake": str(lake.root), "underlyings": {}, "failed": {}}
        return gather_results(futures, summary, "underlyings")


def run_ingest(params: IngestParams, settings: Settings) -> dict[str, Any]:
    """The body shared by both flows: validate, fan out per underlying or file, gather."""
    if params.source == "yfinance":
        return run_live_ingest(params, settings)
    if params.source in ("ibkr", "alpaca"):
        return run_broker_ingest(params, settings)
    if params.source != "synthetic":
        return run_file_ingest(params, settings)
    underlyings, config = validate_request(params, settings)
    lake = settings.lake
    lake.ensure_writable()
    as_of = params.as_of or datetime.now(UTC)  # the flow is the clock's one reader
    futures: dict[str, PrefectFuture[dict[str, object]]] = {}
    range_task = ingest_synthetic_range.with_options(
        retries=settings.ingest.retries, retry_delay_seconds=settings.ingest.retry_delay_seconds
    )
    snapshot_task = ingest_synthetic_snapshot.with_options(
        retries=settings.ingest.retries, retry_delay_seconds=settings.ingest.retry_delay_seconds
    )
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(
        max_workers=settings.ingest.concurrency
    )
    with runner:
        for underlying in underlyings:
            if params.start and params.end:
                args = {
                    "lake": lake,
                    "config": config,
                    "underlying": underlying,
                    "start": params.start,
                    "end": params.end,
                    "mode": params.mode,
                    "skip_existing": params.skip_existing,
                }
                futures[underlying] = runner.submit(range_task, args)
            else:
                args = {"lake": lake, "config": config, "underlying": underlying, "as_of": as_of}
                futures[underlying] = runner.submit(snapshot_task, args)
        summary: dict[str, Any] = {"lake": str(lake.root), "underlyings": {}, "failed": {}}
        return gather_results(futures, summary, "underlyings")


def run_with_features(params: IngestParams, settings: Settings) -> dict[str, Any]:
    """Ingest, then (with ``build_features``) build the features of what was written,
    also when some units failed (their error is raised after)."""
    try:
        summary = run_ingest(params, settings)
    except PartialIngestError as exc:
        if params.build_features:
            exc.summary["features"] = _build_written(exc.summary, settings)
        raise
    if params.build_features:
        summary["features"] = _build_written(summary, settings)
    return summary


def _build_written(summary: dict[str, Any], settings: Settings) -> dict[str, Any]:
    written = sorted(
        {u for unit in (summary.get("underlyings") or summary.get("files") or {}).values()
         for u in unit.get("underlyings", [])}
    )  # fmt: skip
    if not written:
        return {}
    try:
        return run_build(FeatureParams(underlyings=written), settings)
    except PartialIngestError as exc:
        return exc.summary


@flow(name="ingest-chains", validate_parameters=True)
@fails_cleanly
def ingest_chains(params: IngestParams | None = None) -> dict[str, Any]:
    """Fetch chains per underlying, check them and write raw lake partitions; with
    ``build_features``, then build their features (the build-features flow's body)."""
    return run_with_features(params or IngestParams(), load_settings())
