"""Live option chains from Yahoo Finance through the ``yfinance`` library.

One poll of an underlying lists its expiries, keeps those inside the DTE window, and
fetches each expiry's chain: every request passes a shared rate limiter
(``pyrate-limiter``: a sliding-window bucket, blocking up to ``max_wait_seconds``), and
a transient failure (network, HTTP 429, a library exception) is retried with
exponential backoff and full jitter (``tenacity``). A response that is empty or
partial (no expiries, an expiry with no contracts, no underlying price, a missing
column) fails the underlying with an error naming what was missing; nothing of that
poll is written, never an empty partition.

Time: Yahoo's option quotes are delayed (about 15 minutes) and are the last session's
close outside trading hours. A poll's snapshot (``ts_event``) is the poll's clock
during a session, else the close of the session the quotes belong to; ``ts_init`` is
the clock when the response arrived. The poll's rows form one snapshot.

Yahoo's own implied volatility goes to ``option_vendor_analytics`` (``vendor_iv``).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import pandas as pd
import polars as pl
from pyrate_limiter import BucketFullException, Duration, Limiter, LimiterDelayException, Rate
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from data_lake.calendar import EXCHANGE_TZ, ExchangeCalendar, exchange_calendar
from data_lake.errors import SourceError
from data_lake.schemas import OPTION_QUOTES, OPTION_VENDOR_ANALYTICS
from data_lake.sources.base import SourceBatch
from data_lake.sources.cboe import INDEX_ROOTS

SOURCE_NAME = "yfinance"
CHAIN_COLUMNS = ("contractSymbol", "strike", "lastPrice", "bid", "ask", "volume", "openInterest",
                 "impliedVolatility")  # fmt: skip
OCC = re.compile(r"^(?P<root>[A-Z]{1,6})(?P<expiry>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


class TransientFetchError(SourceError):
    """A failure worth retrying: network, throttling, a server error."""


@dataclass(frozen=True)
class ChainResponse:
    """One expiry's chain as yfinance returns it (pandas frames, the quote dict)."""

    calls: pd.DataFrame | None
    puts: pd.DataFrame | None
    underlying: dict[str, Any] | None


class ChainFetcher(Protocol):
    """What a poll needs from the vendor; the real one wraps ``yfinance.Ticker``."""

    def expiries(self, symbol: str) -> Sequence[str]: ...  # "YYYY-MM-DD"

    def chain(self, symbol: str, expiry: str) -> ChainResponse: ...


class YFinanceFetcher:
    """``yfinance.Ticker`` calls, with library and network failures marked transient."""

    def __init__(self, ticker_factory: Callable[[str], Any] | None = None) -> None:
        self._tickers: dict[str, Any] = {}
        self._factory = ticker_factory

    def _ticker(self, symbol: str) -> Any:
        if symbol not in self._tickers:
            if self._factory is None:
                import yfinance  # noqa: PLC0415 (slow to import: only live polls need it)

                self._factory = yfinance.Ticker
            self._tickers[symbol] = self._factory(symbol)
        return self._tickers[symbol]

    def expiries(self, symbol: str) -> Sequence[str]:
        try:
            return tuple(self._ticker(symbol).options)
        except Exception as exc:
            raise TransientFetchError(f"listing expiries failed: {exc}") from exc

    def chain(self, symbol: str, expiry: str) -> ChainResponse:
        try:
            found = self._ticker(symbol).option_chain(expiry)
        except ValueError as exc:  # yfinance: an expiry it does not list
            raise SourceError(f"{symbol} {expiry}: {exc}") from exc
        except Exception as exc:
            raise TransientFetchError(f"chain request failed: {exc}") from exc
        return ChainResponse(found.calls, found.puts, found.underlying)


@dataclass
class PollConfig:
    """How to poll: DTE window, rate limit and retry policy."""

    min_dte: int = 0
    max_dte: int | None = None  # None: every listed expiry
    requests_per_second: float = 2.0
    max_wait_seconds: float = 60.0  # longest a request waits for the limiter
    attempts: int = 4
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    sleep: Callable[[float], None] | None = None  # tests: record instead of sleeping
    limiter: Limiter | None = field(default=None, repr=False)


_LIMITERS: dict[tuple[float, float], Limiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(requests_per_second: float, max_wait_seconds: float) -> Limiter:
    """One limiter per rate in this process, shared by every poll thread."""
    key = (requests_per_second, max_wait_seconds)
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            # n requests per n / rate seconds: bursts of at most n (n >= 1)
            burst = max(1, round(requests_per_second))
            rate = Rate(burst, int(Duration.SECOND * (burst / requests_per_second)))
            _LIMITERS[key] = Limiter(
                rate, raise_when_fail=True, max_delay=int(max_wait_seconds * 1000)
            )
        return _LIMITERS[key]


def _request(config: PollConfig, what: str, call: Callable[[], Any]) -> Any:
    """One vendor request: wait for the limiter, retry transient failures with backoff."""
    limiter = config.limiter or shared_limiter(config.requests_per_second, config.max_wait_seconds)
    retrying = Retrying(
        stop=stop_after_attempt(config.attempts),
        wait=wait_exponential_jitter(
            initial=config.backoff_initial_seconds,
            max=config.backoff_max_seconds,
            jitter=config.backoff_initial_seconds,
        ),
        retry=retry_if_exception_type(TransientFetchError),
        sleep=config.sleep or _sleep,
        reraise=False,
    )

    def attempt() -> Any:
        try:
            limiter.try_acquire(SOURCE_NAME)
        except (BucketFullException, LimiterDelayException) as exc:
            raise TransientFetchError(f"rate limiter full ({exc})") from exc
        return call()

    try:
        return retrying(attempt)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise SourceError(
            f"{what}: failed after {config.attempts} attempts ({last}); live polls need "
            "internet access to Yahoo Finance"
        ) from last


def _sleep(seconds: float) -> None:
    threading.Event().wait(seconds)


def snapshot_time(clock: datetime, calendar: ExchangeCalendar) -> tuple[date, datetime]:
    """(session, ts_event) the quotes of a poll at ``clock`` belong to."""
    local_day = clock.astimezone(EXCHANGE_TZ).date()
    session = calendar.session_on_or_before(local_day)
    if session.day == local_day and session.open <= clock <= session.close:
        return session.day, clock
    closed = calendar.last_session_closed_by(clock)  # after hours, weekend, pre-market
    return closed.day, closed.close


def _chain_frame(
    symbol: str, expiry: str, response: ChainResponse, what: str
) -> tuple[pl.DataFrame, float]:
    """Calls and puts of one expiry as rows, and the underlying's price."""
    sides = [(side, frame) for side, frame in (("C", response.calls), ("P", response.puts))]
    present = [(side, f) for side, f in sides if f is not None and not f.empty]
    if not present:
        raise SourceError(f"{what}: empty response (no calls and no puts)")
    quote = response.underlying or {}
    spot = quote.get("regularMarketPrice")
    if not isinstance(spot, int | float) or not math.isfinite(spot) or spot <= 0:
        raise SourceError(f"{what}: partial response: no underlying price (regularMarketPrice)")
    parts = []
    for side, frame in present:
        missing = [c for c in CHAIN_COLUMNS if c not in frame.columns]
        if missing:
            raise SourceError(f"{what}: partial response: column(s) {', '.join(missing)} missing")
        part = pl.from_pandas(frame[list(CHAIN_COLUMNS)], nan_to_null=True)
        parts.append(part.with_columns(pl.lit(side).alias("_side")))
    rows = pl.concat(parts, how="vertical_relaxed")
    symbols = rows["contractSymbol"].cast(pl.String)
    parsed = symbols.str.extract_groups(OCC.pattern)
    bad = parsed.struct.field("root").is_null() | (parsed.struct.field("right") != rows["_side"])
    if bad.any():
        index = int(bad.arg_true()[0])
        raise SourceError(
            f"{what}: row {index + 1}: contractSymbol {symbols[index]!r} is not an OCC symbol "
            "of this side"
        )
    expiry_date = date.fromisoformat(expiry)
    return rows.with_columns(
        parsed.struct.field("root").alias("_root"),
        pl.lit(expiry_date).alias("expiry"),
    ), float(spot)


def _chain_call(fetcher: ChainFetcher, symbol: str, expiry: str) -> Callable[[], ChainResponse]:
    return lambda: fetcher.chain(symbol, expiry)


def poll(
    symbol: str,
    fetcher: ChainFetcher,
    config: PollConfig,
    clock: Callable[[], datetime],
    calendar: ExchangeCalendar | None = None,
) -> SourceBatch:
    """One snapshot of ``symbol``'s chain: every expiry in the DTE window."""
    calendar = calendar or exchange_calendar()
    started = clock()
    day, ts_event = snapshot_time(started, calendar)
    listed = _request(config, f"{symbol} expiries", lambda: fetcher.expiries(symbol))
    if not listed:
        raise SourceError(f"{symbol}: empty response: no expiries listed")
    chosen = []
    for text in listed:
        try:
            expiry = date.fromisoformat(str(text))
        except ValueError as exc:
            raise SourceError(f"{symbol}: expiry {text!r} is not YYYY-MM-DD") from exc
        dte = (expiry - day).days
        if dte >= config.min_dte and (config.max_dte is None or dte <= config.max_dte):
            chosen.append(str(text))
    if not chosen:
        raise SourceError(
            f"{symbol}: no listed expiry within {config.min_dte}..{config.max_dte} days "
            f"({len(listed)} listed)"
        )
    frames, spots = [], []
    for listed_expiry in chosen:
        what = f"{symbol} {listed_expiry}"
        response = _request(config, what, _chain_call(fetcher, symbol, listed_expiry))
        frame, spot = _chain_frame(symbol, listed_expiry, response, what)
        frames.append(frame)
        spots.append(spot)
    received = clock()
    rows = pl.concat(frames, how="vertical_relaxed")
    # one snapshot, one underlying price: the last response's (closest to ts_init)
    spot = spots[-1]
    styles = {root: style for root, (style, _) in INDEX_ROOTS.items()}
    settles = {root: settle for root, (_, settle) in INDEX_ROOTS.items()}
    utc = pl.Datetime("us", "UTC")
    quotes = rows.select(
        pl.lit(symbol).alias("underlying"),
        pl.lit(day).alias("date"),
        pl.col("contractSymbol").alias("contract_id"),
        pl.col("expiry"),
        pl.col("strike").cast(pl.Float64),
        pl.col("_side").alias("right"),
        pl.col("_root").replace_strict(styles, default="american").alias("exercise_style"),
        pl.col("_root").replace_strict(settles, default="PM").alias("settlement"),
        pl.lit(100.0).alias("multiplier"),
        pl.col("bid").cast(pl.Float64),
        pl.col("ask").cast(pl.Float64),
        pl.lit(None, pl.Int64).alias("bid_size"),
        pl.lit(None, pl.Int64).alias("ask_size"),
        pl.col("lastPrice").cast(pl.Float64).alias("last"),
        pl.col("volume").cast(pl.Int64, strict=False),
        pl.col("openInterest").cast(pl.Int64, strict=False).alias("open_interest"),
        pl.lit(spot).alias("underlying_price"),
        pl.lit(ts_event).cast(utc).alias("ts_event"),
        pl.lit(received).cast(utc).alias("ts_init"),
        pl.lit(SOURCE_NAME).alias("source"),
    )
    vendor = quotes.select(
        "underlying", "date", "contract_id", "ts_event",
        rows["impliedVolatility"].cast(pl.Float64).alias("vendor_iv"),
        *(pl.lit(None, pl.Float64).alias(c) for c in (
            "vendor_delta", "vendor_gamma", "vendor_vega", "vendor_theta", "vendor_rho")),
        "ts_init", "source",
    )  # fmt: skip
    origin = f"yfinance {symbol} at {started.isoformat()} ({len(chosen)} expiries)"
    return SourceBatch(
        symbol,
        day,
        {OPTION_QUOTES.name: quotes, OPTION_VENDOR_ANALYTICS.name: vendor},
        origin=origin,
    )


def make_fetcher() -> ChainFetcher:
    """The fetcher live polls use (tests replace it with recorded payloads)."""
    return YFinanceFetcher()


def now_utc() -> datetime:
    """The production clock."""
    return datetime.now(UTC)
