"""The brokers' chain snapshots: Alpaca's ``OptionsSnapshot`` (built from the API's
documented JSON by alpaca-py itself) and ib_async's ``Ticker`` objects become one
``option_quotes`` snapshot with the broker's IV and Greeks beside it, through the same
write path as every source."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from alpaca.data.models.snapshots import OptionsSnapshot
from ib_async import Contract, OptionComputation, Ticker

from data_lake.catalog import query
from data_lake.errors import SourceError
from data_lake.ingest import write_batch
from data_lake.lake import Lake
from data_lake.sources.broker_chains import alpaca_rows, chain_batch, ibkr_rows

IN_SESSION = datetime(2024, 3, 12, 15, 0, 30, tzinfo=UTC)
AFTER_CLOSE = datetime(2024, 3, 12, 23, 0, tzinfo=UTC)


def _alpaca(symbol: str, bid: float, ask: float) -> OptionsSnapshot:
    raw = {
        "latestQuote": {"t": "2024-03-12T15:00:29.5Z", "ax": "C", "ap": ask, "as": 12,
                        "bx": "N", "bp": bid, "bs": 7, "c": "A"},
        "latestTrade": {"t": "2024-03-12T14:58:00Z", "x": "C", "p": (bid + ask) / 2, "s": 1,
                        "c": "I"},
        "impliedVolatility": 0.181,
        "greeks": {"delta": 0.52, "gamma": 0.031, "rho": 0.2, "theta": -0.11, "vega": 0.55},
    }  # fmt: skip
    return OptionsSnapshot(symbol, raw)


def test_an_alpaca_chain_is_one_snapshot_with_alpacas_greeks(lake: Lake) -> None:
    snapshots = {s: _alpaca(s, 6.0, 6.2) for s in ("SPY240419C00510000", "SPY240419P00510000")}
    batch = chain_batch("alpaca", "SPY", alpaca_rows(snapshots), 509.3, IN_SESSION, IN_SESSION)
    write_batch(lake, batch, "merge")
    quotes = query(lake, "SELECT * FROM option_quotes ORDER BY contract_id")
    assert quotes["contract_id"].to_list() == ["SPY240419C00510000", "SPY240419P00510000"]
    row = quotes.row(0, named=True)
    assert (row["expiry"], row["strike"], row["right"], row["bid"], row["ask"]) == (
        date(2024, 4, 19), 510.0, "C", 6.0, 6.2)  # fmt: skip
    assert (row["bid_size"], row["ask_size"], row["source"]) == (7, 12, "alpaca")
    assert row["ts_event"] == IN_SESSION  # during a session: the poll's time
    vendor = query(lake, "SELECT vendor_iv, vendor_delta FROM option_vendor_analytics")
    assert vendor.row(0) == (pytest.approx(0.181), pytest.approx(0.52))


def test_ib_tickers_become_rows_with_ibs_model_greeks_and_open_interest() -> None:
    def ticker(local: str, right: str, bid: float) -> Ticker:
        """As ib_async builds one: the contract first, then the ticks TWS sends."""
        t = Ticker(contract=Contract(secType="OPT", symbol="SPY", localSymbol=local,
                                     right=right))  # fmt: skip
        t.bid, t.ask, t.bidSize, t.askSize, t.last, t.volume = bid, bid + 0.2, 10, 4, bid, 1200
        t.callOpenInterest, t.putOpenInterest = 5000, 7000
        t.modelGreeks = OptionComputation(0, impliedVol=0.2, delta=0.5, gamma=0.03, vega=0.5,
                                          theta=-0.1)  # fmt: skip
        return t

    rows = ibkr_rows([ticker("SPY   240419C00510000", "C", 6.0),
                      ticker("SPY   240419P00510000", "P", -1.0)])  # fmt: skip
    assert [(r.symbol, r.bid, r.open_interest, r.delta) for r in rows] == [
        ("SPY   240419C00510000", 6.0, 5000, 0.5),
        ("SPY   240419P00510000", None, 7000, 0.5)]  # fmt: skip
    batch = chain_batch("ibkr", "SPY", rows, 509.3, AFTER_CLOSE, AFTER_CLOSE)
    quotes = batch.frames["option_quotes"]
    assert quotes["contract_id"].to_list() == ["SPY240419C00510000", "SPY240419P00510000"]
    assert quotes["ts_event"][0] == datetime(2024, 3, 12, 20, 0, tzinfo=UTC)  # the close
    assert quotes["bid"][1] is None  # IB's -1: no bid


def test_a_chain_without_a_price_or_contracts_is_refused() -> None:
    with pytest.raises(SourceError, match="no underlying price"):
        chain_batch("ibkr", "SPY", [], math.nan, IN_SESSION, IN_SESSION)
    with pytest.raises(SourceError, match="empty chain"):
        chain_batch("alpaca", "SPY", [], 500.0, IN_SESSION, IN_SESSION)
    bad = alpaca_rows({"not-a-symbol": _alpaca("not-a-symbol", 1.0, 1.1)})
    with pytest.raises(SourceError, match="is not an OCC symbol"):
        chain_batch("alpaca", "SPY", bad, 500.0, IN_SESSION, IN_SESSION)


def test_the_alpaca_fetcher_polls_through_alpaca_pys_data_clients() -> None:
    """The real OptionHistoricalDataClient and StockHistoricalDataClient, their HTTP
    answered with the market-data API's documented JSON."""
    import json

    import requests
    from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
    from requests.adapters import BaseAdapter

    from data_lake.sources.broker_chains import AlpacaChainFetcher, ChainWindow

    seen: list[str] = []

    class DataApi(BaseAdapter):
        def send(self, request: requests.PreparedRequest, **_: object) -> requests.Response:  # type: ignore[override]
            seen.append(request.path_url or "")
            if "/stocks/trades/latest" in (request.path_url or ""):
                body: object = {"trades": {"SPY": {"t": "2024-03-12T15:00:29Z", "x": "V",
                                                   "p": 509.3, "s": 100, "c": ["@"], "i": 1,
                                                   "z": "B"}}}  # fmt: skip
            else:
                body = {"snapshots": {
                    "SPY240419C00510000": {"latestQuote": {"t": "2024-03-12T15:00:29Z",
                        "ap": 6.2, "as": 12, "bp": 6.0, "bs": 7, "ax": "C", "bx": "N",
                        "c": "A"}, "impliedVolatility": 0.18,
                        "greeks": {"delta": 0.5, "gamma": 0.03, "rho": 0.2, "theta": -0.1,
                                   "vega": 0.5}}},
                    "next_page_token": None}  # fmt: skip
            response = requests.Response()
            response.status_code, response._content = 200, json.dumps(body).encode()
            response.request, response.url = request, request.url or ""
            return response

        def close(self) -> None:
            pass

    options, stocks = OptionHistoricalDataClient("k", "s"), StockHistoricalDataClient("k", "s")
    for client in (options, stocks):
        client._session.mount("https://", DataApi())
    batch = AlpacaChainFetcher(options, stocks).poll(
        "SPY", ChainWindow(min_dte=0, max_dte=60), lambda: IN_SESSION
    )
    quotes = batch.frames["option_quotes"]
    assert quotes["contract_id"].to_list() == ["SPY240419C00510000"]
    assert quotes["underlying_price"][0] == 509.3
    chain_request = next(p for p in seen if "/options/snapshots/SPY" in p)
    assert "expiration_date_lte=2024-05-11" in chain_request
    assert "strike_price_gte=381.97" in chain_request


def test_the_ib_fetcher_qualifies_the_window_and_snapshots_its_tickers() -> None:
    """A stand-in for TWS answering with ib_async's own ``OptionChain`` and ``Ticker``."""
    from ib_async import OptionChain

    from data_lake.sources.broker_chains import ChainWindow, IbkrChainFetcher

    asked: list[object] = []

    class Tws:
        def qualifyContracts(self, *contracts: Contract) -> list[Contract]:
            for i, c in enumerate(contracts):
                c.conId = 100 + i
                if c.secType == "OPT":
                    c.localSymbol = f"SPY   {c.lastTradeDateOrContractMonth[2:]}{c.right}" + (
                        f"{round(c.strike * 1000):08d}")  # fmt: skip
            return list(contracts)

        def reqTickers(self, *contracts: Contract) -> list[Ticker]:
            asked.extend(contracts)
            out = []
            for c in contracts:
                t = Ticker(contract=c)
                if c.secType == "STK":
                    t.last, t.bid, t.ask = 500.0, 499.9, 500.1
                else:
                    t.last, t.bid, t.ask, t.bidSize, t.askSize = 5.1, 5.0, 5.2, 3, 4
                out.append(t)
            return out

        def reqSecDefOptParams(self, *_: object) -> list[OptionChain]:
            expiries = ["20240315", "20240419", "20241220"]
            return [OptionChain("SMART", 756733, "SPY", "100", expiries,
                                [300.0, 495.0, 505.0, 800.0])]  # fmt: skip

    batch = IbkrChainFetcher(Tws()).poll("SPY", ChainWindow(min_dte=1, max_dte=60),
                                         lambda: IN_SESSION)  # fmt: skip
    ids = sorted(batch.frames["option_quotes"]["contract_id"].to_list())
    assert ids == sorted(f"SPY{e}{r}{k}" for e in ("240315", "240419") for r in "CP"
                         for k in ("00495000", "00505000"))  # fmt: skip
    assert len(asked) == 1 + 8  # the stock, then the eight options in the window
