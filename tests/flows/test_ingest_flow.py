"""The ingest-chains and backfill flows on a real (temporary) Prefect server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from data_lake.catalog import query
from data_lake.ingest import PartialIngestError
from flows.backfill import BackfillParams, backfill
from flows.ingest_chains import IngestParams, ingest_chains
from flows.settings import load_settings
from tests.flows.conftest import lake_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
START, END = date(2024, 3, 4), date(2024, 3, 8)


def test_ingest_flow_writes_every_partition_and_reports_counts(home: Path) -> None:
    summary = ingest_chains(IngestParams(underlyings=["SPY", "XYZ"], start=START, end=END))
    assert summary["failed"] == {}
    lake = load_settings().lake
    counts = query(
        lake,
        "SELECT underlying, count(*) AS n, count(DISTINCT date) AS days"
        " FROM option_quotes GROUP BY ALL ORDER BY ALL",
    )
    for row in counts.iter_rows(named=True):
        reported = summary["underlyings"][row["underlying"]]
        assert row["days"] == 5
        assert row["n"] == reported["rows"]["option_quotes"]
        assert reported["partitions"] == 10  # quotes + bars, five sessions
    assert query(lake, "SELECT count(*) AS n FROM underlying_bars")["n"][0] == 10


def test_running_the_same_ingest_twice_leaves_identical_files(home: Path) -> None:
    params = IngestParams(underlyings=["SPY"], start=START, end=START)
    ingest_chains(params)
    first = lake_snapshot(load_settings().lake.root)
    ingest_chains(params)
    assert lake_snapshot(load_settings().lake.root) == first


def test_one_failing_underlying_is_reported_and_the_others_are_written(home: Path) -> None:
    ingest_chains(IngestParams(underlyings=["QQQ"], start=START, end=START))
    lake = load_settings().lake
    corrupt = lake.data_file("option_quotes", "QQQ", START)
    corrupt.write_bytes(b"corrupted by a test")
    with pytest.raises(PartialIngestError) as failure:
        ingest_chains(IngestParams(underlyings=["SPY", "QQQ"], start=START, end=START))
    summary = failure.value.summary
    assert set(summary["underlyings"]) == {"SPY"}
    assert "corrupt or unreadable lake file" in summary["failed"]["QQQ"]
    assert corrupt.read_bytes() == b"corrupted by a test"
    assert lake.data_file("option_quotes", "SPY", START).exists()


def test_backfill_skips_written_partitions_and_fills_gaps(home: Path) -> None:
    params = BackfillParams(underlyings=["SPY"], start=START, end=END)
    backfill(params)
    lake = load_settings().lake
    gap = lake.data_file("option_quotes", "SPY", date(2024, 3, 6))
    gap.unlink()
    again = backfill(params)["underlyings"]["SPY"]
    assert again["skipped_partitions"] == 4
    assert again["partitions"] == 2 and gap.exists()  # the quotes and bar of the missing day


def test_scheduled_run_without_dates_writes_the_latest_snapshot(home: Path) -> None:
    as_of = datetime(2024, 3, 5, 16, 10, tzinfo=UTC)  # 11:10 in New York
    summary = ingest_chains(IngestParams(underlyings=["SPY"], as_of=as_of))
    assert summary["underlyings"]["SPY"]["rows"]["option_quotes"] > 500
    times = query(load_settings().lake, "SELECT DISTINCT ts_event FROM option_quotes")[
        "ts_event"
    ].to_list()
    assert times == [datetime(2024, 3, 5, 16, 0, tzinfo=UTC)]


def test_backfill_requires_a_date_range() -> None:
    with pytest.raises(ValueError, match="needs start and end"):
        BackfillParams(underlyings=["SPY"])


def test_yfinance_poll_writes_good_underlyings_and_reports_an_empty_response(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_lake.sources import yahoo
    from tests.data_lake.sources.test_yahoo import MIDDAY, PAYLOADS, RecordedData, fetcher_for

    empty = {"": {"optionChain": {"result": [], "error": None}}}

    class PerSymbol:
        """SPY answers from its recorded payloads; QQQ gets an empty answer."""

        def __init__(self) -> None:
            self.spy = fetcher_for(RecordedData(PAYLOADS))
            self.qqq = fetcher_for(RecordedData(empty))

        def expiries(self, symbol: str) -> tuple[str, ...]:
            return tuple((self.spy if symbol == "SPY" else self.qqq).expiries(symbol))

        def chain(self, symbol: str, expiry: str) -> yahoo.ChainResponse:
            return (self.spy if symbol == "SPY" else self.qqq).chain(symbol, expiry)

    monkeypatch.setattr(yahoo, "make_fetcher", PerSymbol)
    params = IngestParams(source="yfinance", underlyings=["SPY", "QQQ"], as_of=MIDDAY, max_dte=5)
    with pytest.raises(PartialIngestError) as raised:
        ingest_chains(params)
    summary = raised.value.summary
    assert summary["failed"] == {"QQQ": "QQQ: empty response: no expiries listed"}
    assert summary["underlyings"]["SPY"]["rows"]["option_quotes"] == 7  # two expiries
    lake = load_settings().lake
    stored = query(
        lake, "SELECT underlying, count(*) n, min(source) s FROM option_quotes GROUP BY 1"
    )
    assert stored.rows() == [("SPY", 7, "yfinance")]  # nothing at all for QQQ
