"""Option-chain snapshots from the brokers' market data, as ingest sources: Alpaca's
option snapshots (``alpaca-py``) and Interactive Brokers' tickers (``ib_async``).

Each poll is one snapshot of one underlying, written to ``option_quotes`` like every
other source, with the broker's own IV and Greeks in ``option_vendor_analytics``.
The translation is pure (the libraries' objects in, a :class:`SourceBatch` out) and
tested on objects built with the libraries' own types; the fetchers that talk to
the broker are thin. The snapshot time follows the yfinance rule: during a session
the poll's time, else the last close.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from data_lake.calendar import exchange_calendar
from data_lake.errors import SourceError
from data_lake.schemas import OPTION_QUOTES, OPTION_VENDOR_ANALYTICS
from data_lake.sources.base import SourceBatch
from data_lake.sources.cboe import INDEX_ROOTS
from data_lake.sources.yahoo import OCC, snapshot_time


@dataclass(frozen=True)
class ChainRow:
    """One contract of a broker's chain snapshot (prices per share)."""

    symbol: str  # OCC/OSI symbol, padded or not
    bid: float | None
    ask: float | None
    bid_size: int | None
    ask_size: int | None
    last: float | None
    volume: int | None
    open_interest: int | None
    iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None


@dataclass(frozen=True)
class ChainWindow:
    min_dte: int = 0
    max_dte: int | None = 120
    strike_band: float = 0.25  # strikes within spot x (1 -/+ this)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def chain_batch(
    source: str, underlying: str, rows: Iterable[ChainRow], spot: float, started: datetime,
    received: datetime,
) -> SourceBatch:  # fmt: skip
    """The lake frames of one broker snapshot (quotes and the broker's analytics)."""
    if not math.isfinite(spot) or spot <= 0:
        raise SourceError(f"{source} {underlying}: no underlying price in the snapshot")
    day, ts_event = snapshot_time(started, exchange_calendar())
    records = []
    for row in rows:
        text = row.symbol.replace(" ", "")
        match = OCC.match(text)
        if not match:
            raise SourceError(f"{source} {underlying}: {row.symbol!r} is not an OCC symbol")
        root = match["root"]
        ymd = match["expiry"]
        style, settle = INDEX_ROOTS.get(root, ("american", "PM"))
        records.append({
            "underlying": underlying, "date": day, "contract_id": text,
            "expiry": date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])),
            "strike": int(match["strike"]) / 1000, "right": match["right"],
            "exercise_style": style, "settlement": settle, "multiplier": 100.0,
            "bid": _finite(row.bid), "ask": _finite(row.ask), "bid_size": _count(row.bid_size),
            "ask_size": _count(row.ask_size), "last": _finite(row.last),
            "volume": _count(row.volume), "open_interest": _count(row.open_interest),
            "underlying_price": spot, "ts_event": ts_event, "ts_init": received,
            "source": source, "vendor_iv": _finite(row.iv), "vendor_delta": _finite(row.delta),
            "vendor_gamma": _finite(row.gamma), "vendor_vega": _finite(row.vega),
            "vendor_theta": _finite(row.theta), "vendor_rho": _finite(row.rho),
        })  # fmt: skip
    if not records:
        raise SourceError(f"{source} {underlying}: empty chain (no contracts in the window)")
    frame = pl.DataFrame(records, infer_schema_length=None)
    quotes = frame.select(
        [pl.col(c).cast(t) for c, t in OPTION_QUOTES.schema.items() if c in frame.columns]
    )
    vendor = frame.select(
        [pl.col(c).cast(t) for c, t in OPTION_VENDOR_ANALYTICS.schema.items() if c in frame.columns]
    )
    origin = f"{source} {underlying} at {started.isoformat()} ({len(records)} contracts)"
    frames = {OPTION_QUOTES.name: quotes, OPTION_VENDOR_ANALYTICS.name: vendor}
    return SourceBatch(underlying, day, frames, origin=origin)


# Alpaca ------------------------------------------------------------------------------


def alpaca_rows(snapshots: dict[str, Any]) -> list[ChainRow]:
    """Rows from alpaca-py's ``OptionsSnapshot`` objects (keyed by OCC symbol)."""
    rows = []
    for symbol, snap in sorted(snapshots.items()):
        quote, trade, greeks = snap.latest_quote, snap.latest_trade, snap.greeks
        rows.append(ChainRow(
            symbol=symbol,
            bid=quote.bid_price if quote and quote.bid_price else None,
            ask=quote.ask_price if quote and quote.ask_price else None,
            bid_size=int(quote.bid_size) if quote else None,
            ask_size=int(quote.ask_size) if quote else None,
            last=trade.price if trade else None, volume=None, open_interest=None,
            iv=snap.implied_volatility,
            delta=greeks.delta if greeks else None, gamma=greeks.gamma if greeks else None,
            vega=greeks.vega if greeks else None, theta=greeks.theta if greeks else None,
            rho=greeks.rho if greeks else None,
        ))  # fmt: skip
    return rows


@dataclass
class AlpacaChainFetcher:
    """alpaca-py's option snapshot and latest stock trade endpoints."""

    options: Any  # OptionHistoricalDataClient
    stocks: Any  # StockHistoricalDataClient

    def poll(
        self, underlying: str, window: ChainWindow, clock: Callable[[], datetime]
    ) -> SourceBatch:
        from alpaca.data.requests import (  # noqa: PLC0415 (loaded only for this source)
            OptionChainRequest,
            StockLatestTradeRequest,
        )

        started = clock()
        trade = self.stocks.get_stock_latest_trade(
            StockLatestTradeRequest(symbol_or_symbols=underlying)
        )[underlying]
        spot = float(trade.price)
        day = started.date()
        request = OptionChainRequest(
            underlying_symbol=underlying, expiration_date_gte=day + timedelta(window.min_dte),
            expiration_date_lte=(day + timedelta(window.max_dte)) if window.max_dte else None,
            strike_price_gte=spot * (1 - window.strike_band),
            strike_price_lte=spot * (1 + window.strike_band),
        )  # fmt: skip
        snapshots = self.options.get_option_chain(request)
        return chain_batch("alpaca", underlying, alpaca_rows(snapshots), spot, started, clock())


# Interactive Brokers ---------------------------------------------------------------


def ibkr_rows(tickers: Iterable[Any]) -> list[ChainRow]:
    """Rows from ib_async ``Ticker`` objects of option contracts (localSymbol = OSI)."""
    rows = []
    for t in tickers:
        greeks = t.modelGreeks
        open_interest = t.callOpenInterest if t.contract.right == "C" else t.putOpenInterest
        bid = _finite(t.bid)
        ask = _finite(t.ask)
        rows.append(ChainRow(
            symbol=t.contract.localSymbol, bid=bid if bid and bid > 0 else None,
            ask=ask if ask and ask > 0 else None, bid_size=_count(t.bidSize),
            ask_size=_count(t.askSize), last=_finite(t.last), volume=_count(t.volume),
            open_interest=_count(open_interest),
            iv=greeks.impliedVol if greeks else None, delta=greeks.delta if greeks else None,
            gamma=greeks.gamma if greeks else None, vega=greeks.vega if greeks else None,
            theta=greeks.theta if greeks else None,
        ))  # fmt: skip
    return rows


@dataclass
class IbkrChainFetcher:
    """ib_async: the underlying's price, its option parameters, the contracts in the
    window qualified, one ticker snapshot each."""

    ib: Any  # a connected ib_async.IB

    def poll(
        self, underlying: str, window: ChainWindow, clock: Callable[[], datetime]
    ) -> SourceBatch:
        from ib_async import Option, Stock  # noqa: PLC0415 (loaded only for this source)

        started = clock()
        stock = Stock(underlying, "SMART", "USD")
        self.ib.qualifyContracts(stock)
        if not stock.conId:
            raise SourceError(f"ibkr {underlying}: no stock contract at IB")
        (ticker,) = self.ib.reqTickers(stock)
        spot = _finite(ticker.marketPrice())
        if spot is None:
            raise SourceError(f"ibkr {underlying}: no price for the underlying")
        chains = [c for c in self.ib.reqSecDefOptParams(underlying, "", "STK", stock.conId)
                  if c.exchange == "SMART" and c.tradingClass == underlying]  # fmt: skip
        if not chains:
            raise SourceError(f"ibkr {underlying}: no SMART option chain")
        day = started.date()
        longest = window.max_dte if window.max_dte is not None else 10**6
        expiries = [e for e in chains[0].expirations
                    if window.min_dte <= (_ib_date(e) - day).days <= longest]  # fmt: skip
        strikes = [k for k in chains[0].strikes if abs(k / spot - 1) <= window.strike_band]
        contracts = [Option(underlying, e, k, r, "SMART", tradingClass=underlying)
                     for e in expiries for k in strikes for r in ("C", "P")]  # fmt: skip
        qualified = [c for c in self.ib.qualifyContracts(*contracts) if c and c.conId]
        tickers = self.ib.reqTickers(*qualified)
        return chain_batch("ibkr", underlying, ibkr_rows(tickers), spot, started, clock())


def _ib_date(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
