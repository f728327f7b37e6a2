"""yfinance live chains: parsed by the real library from constructed payloads (no
network), rate limited, retried with backoff, and refused when empty or partial."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yfinance
from pyrate_limiter import BucketFullException, Duration, Limiter, Rate

from data_lake.errors import SourceError
from data_lake.ingest import write_batch
from data_lake.lake import Lake
from data_lake.schemas import OPTION_QUOTES, OPTION_VENDOR_ANALYTICS
from data_lake.sources import yahoo
from data_lake.sources.yahoo import PollConfig, YFinanceFetcher, poll

PAYLOADS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "yahoo" / "spy_20240102.json").read_text()
)
MIDDAY = datetime(2024, 1, 2, 17, 0, tzinfo=UTC)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]  # 12:00 New York, in the session


class RecordedResponse:
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def json(self) -> dict[str, Any]:
        return self._body


class RecordedData:
    """Stands in for yfinance's HTTP layer: answers each URL from the payloads and
    raises ``failures`` first (transient errors), recording every request."""

    def __init__(self, payloads: dict[str, Any], failures: int = 0) -> None:
        self.payloads = payloads
        self.failures = failures
        self.urls: list[str] = []

    def get(self, url: str, params: Any = None, timeout: int = 30) -> RecordedResponse:
        self.urls.append(url)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("recorded: connection reset by peer")
        key = url.split("?date=")[1] if "?date=" in url else ""
        return RecordedResponse(copy.deepcopy(self.payloads[key]))


def fetcher_for(data: RecordedData) -> YFinanceFetcher:
    def make(symbol: str) -> Any:
        ticker = yfinance.Ticker(symbol)
        ticker._data = data  # the library's own parsing runs on the recorded payloads
        return ticker

    return YFinanceFetcher(ticker_factory=make)


def config(**overrides: Any) -> PollConfig:
    sleeps: list[float] = []
    values: dict[str, Any] = {"sleep": sleeps.append, "requests_per_second": 1000.0}
    values.update(overrides)
    return PollConfig(**values)


def fixed(clock: datetime) -> Callable[[], datetime]:
    return lambda: clock


def test_a_poll_is_one_snapshot_of_every_listed_expiry() -> None:
    data = RecordedData(PAYLOADS)
    batch = poll("SPY", fetcher_for(data), config(), fixed(MIDDAY))
    quotes = batch.frames[OPTION_QUOTES.name]
    assert batch.day == date(2024, 1, 2) and quotes.height == 9
    assert set(quotes["expiry"]) == {date(2024, 1, 3), date(2024, 1, 4), date(2024, 3, 15)}
    assert set(quotes["ts_event"]) == {MIDDAY} and set(quotes["underlying_price"]) == {472.65}
    row = quotes.filter(pl.col("contract_id") == "SPY240103C00470000").row(0, named=True)
    assert (row["bid"], row["ask"], row["last"], row["volume"], row["open_interest"]) == (
        2.9, 3.0, 2.95, 5120, 8100,
    )  # fmt: skip
    assert (row["right"], row["strike"], row["exercise_style"], row["settlement"]) == (
        "C", 470.0, "american", "PM",
    )  # fmt: skip
    missing_volume = quotes.filter(pl.col("contract_id") == "SPY240103P00475000")
    assert missing_volume["volume"].to_list() == [None]  # absent in the payload: null, not 0
    vendor = batch.frames[OPTION_VENDOR_ANALYTICS.name]
    assert vendor.filter(pl.col("contract_id") == "SPY240315P00460000")["vendor_iv"][0] == 0.142
    assert len(data.urls) == 1 + 3  # the listing, then one request per expiry


def test_dte_window_limits_the_requests() -> None:
    data = RecordedData(PAYLOADS)
    batch = poll("SPY", fetcher_for(data), config(min_dte=1, max_dte=2), fixed(MIDDAY))
    assert set(batch.frames[OPTION_QUOTES.name]["expiry"]) == {
        date(2024, 1, 3),
        date(2024, 1, 4),
    }
    assert len(data.urls) == 1 + 2


@pytest.mark.parametrize(
    ("clock", "day", "ts_event"),
    [
        (MIDDAY, date(2024, 1, 2), MIDDAY),
        # evening: the quotes are the session's close
        (_utc(2024, 1, 2, 23, 30), date(2024, 1, 2), _utc(2024, 1, 2, 21)),
        # Saturday and Monday pre-market: the last session's close (Friday 2024-01-05)
        (_utc(2024, 1, 6, 15), date(2024, 1, 5), _utc(2024, 1, 5, 21)),
        (_utc(2024, 1, 8, 13), date(2024, 1, 5), _utc(2024, 1, 5, 21)),
    ],
)
def test_snapshot_time_is_when_the_quotes_are_from(
    clock: datetime, day: date, ts_event: datetime
) -> None:
    batch = poll("SPY", fetcher_for(RecordedData(PAYLOADS)), config(max_dte=400), fixed(clock))
    quotes = batch.frames[OPTION_QUOTES.name]
    assert batch.day == day and set(quotes["ts_event"]) == {ts_event}
    assert set(quotes["ts_init"]) == {clock}  # when volflow got them


def test_transient_failures_are_retried_with_growing_jittered_backoff() -> None:
    sleeps: list[float] = []
    data = RecordedData(PAYLOADS, failures=3)
    batch = poll("SPY", fetcher_for(data), config(sleep=sleeps.append, attempts=5), fixed(MIDDAY))
    assert batch.frames[OPTION_QUOTES.name].height == 9
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):  # initial 1 s doubling, plus up to 1 s jitter
        assert 2**attempt <= slept <= 2**attempt + 1


def test_giving_up_after_the_attempts_names_the_request() -> None:
    sleeps: list[float] = []
    data = RecordedData(PAYLOADS, failures=10)
    with pytest.raises(SourceError, match=r"SPY expiries: failed after 3 attempts \(.*connection"):
        poll("SPY", fetcher_for(data), config(sleep=sleeps.append, attempts=3), fixed(MIDDAY))
    assert len(data.urls) == 3 and len(sleeps) == 2


def test_every_request_passes_the_rate_limiter() -> None:
    limiter = Limiter(Rate(2, Duration.SECOND), raise_when_fail=True, max_delay=None)
    limiter.try_acquire("yfinance")  # one slot taken: the listing gets the second
    with pytest.raises(SourceError, match="rate limiter full"):
        # the first chain request finds the bucket full (no waiting allowed here), and
        # its retries within the same second do too
        poll("SPY", fetcher_for(RecordedData(PAYLOADS)), config(limiter=limiter, attempts=2),
             fixed(MIDDAY))  # fmt: skip
    with pytest.raises(BucketFullException):
        limiter.try_acquire("yfinance")


def _damaged(change: Callable[[dict[str, Any]], None], key: str = "1704326400") -> dict[str, Any]:
    payloads = copy.deepcopy(PAYLOADS)
    change(payloads[key]["optionChain"]["result"][0])
    return payloads


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        (_damaged(lambda r: r.update(expirationDates=[]), key=""), "empty response: no expiries"),
        (
            _damaged(lambda r: r["options"][0].update(calls=[], puts=[])),
            r"SPY 2024-01-04: empty response \(no calls and no puts\)",
        ),
        (
            _damaged(lambda r: r["quote"].pop("regularMarketPrice")),
            r"SPY 2024-01-04: partial response: no underlying price",
        ),
        (
            _damaged(lambda r: r["options"][0]["calls"][0].update(contractSymbol="SPY 4C")),
            r"SPY 2024-01-04: row 1: contractSymbol 'SPY 4C' is not an OCC symbol",
        ),
    ],
)
def test_empty_or_partial_responses_fail_the_underlying(
    payloads: dict[str, Any], message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        poll("SPY", fetcher_for(RecordedData(payloads)), config(), fixed(MIDDAY))


def test_written_poll_lands_in_one_partition_with_vendor_iv(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    batch = poll("SPY", fetcher_for(RecordedData(PAYLOADS)), config(), fixed(MIDDAY))
    writes = write_batch(lake, batch)
    assert {w.partition.table for w in writes} == {"option_quotes", "option_vendor_analytics"}
    assert sum(w.rows_written for w in writes if w.partition.table == "option_quotes") == 9
    assert all(w.quarantined == 0 for w in writes)


def test_shared_limiter_is_one_per_rate() -> None:
    assert yahoo.shared_limiter(3.0, 1.0) is yahoo.shared_limiter(3.0, 1.0)
    assert yahoo.shared_limiter(3.0, 1.0) is not yahoo.shared_limiter(4.0, 1.0)
