"""What the money path reads from the lake: the latest chain snapshot of an underlying
as of a time, with volflow's analytics where built, and an underlying's close.

Only these functions touch the lake; the strategy and the risk engine get frames and
records. A snapshot is the latest ``ts_event`` at or before ``now`` within
``max_age`` (older quotes are not a market to trade on), one source per snapshot
(the features' source preference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from data_lake.calendar import trading_date
from data_lake.catalog import query
from data_lake.lake import Lake
from data_lake.source_preference import DEFAULT_SOURCE_PREFERENCE, one_source_per_snapshot
from execution.risk import LegQuote

CHAIN_COLUMNS = (
    "contract_id", "underlying", "expiry", "strike", "right", "exercise_style", "multiplier",
    "bid", "ask", "bid_size", "ask_size", "underlying_price", "ts_event", "source",
)  # fmt: skip
SELECTED = ", ".join(f'"{c}"' for c in CHAIN_COLUMNS)  # quoted: "right" is a keyword
ANALYTICS_COLUMNS = ("iv", "delta", "gamma", "vega_per_vol_point", "dte_days")


@dataclass(frozen=True)
class ChainSnapshot:
    """One underlying's chain at one time: quotes, and analytics columns (null where
    the feature build has not run for this snapshot)."""

    underlying: str
    ts_event: datetime
    frame: pl.DataFrame  # CHAIN_COLUMNS + ANALYTICS_COLUMNS

    @property
    def underlying_price(self) -> float:
        return float(self.frame["underlying_price"].drop_nulls().median() or 0.0)  # type: ignore[arg-type]

    def quotes(self) -> dict[str, LegQuote]:
        return quotes_by_contract(self.frame)


def quotes_by_contract(frame: pl.DataFrame) -> dict[str, LegQuote]:
    return {
        row["contract_id"]: LegQuote(
            row["bid"],
            row["ask"],
            int(row["bid_size"] or 0),
            int(row["ask_size"] or 0),
            row["ts_event"],
        )
        for row in frame.select(
            "contract_id", "bid", "ask", "bid_size", "ask_size", "ts_event"
        ).iter_rows(named=True)
    }


def latest_chain(
    lake: Lake,
    underlying: str,
    now: datetime,
    max_age: timedelta = timedelta(hours=2),
    preference: Sequence[str] = DEFAULT_SOURCE_PREFERENCE,
    contracts: Sequence[str] | None = None,
    *,
    analytics: bool = True,
) -> ChainSnapshot | None:
    """The chain of ``underlying`` at its latest snapshot in ``(now - max_age, now]``,
    or None where the lake has none."""
    first, last = trading_date(now - max_age), trading_date(now)
    only = ""
    params: list[object] = [underlying, first, last, now - max_age, now]
    if contracts is not None:
        only = f"AND contract_id IN ({', '.join('?' for _ in contracts)})"
        params += list(contracts)
    quotes = query(
        lake,
        f"SELECT {SELECTED} FROM option_quotes WHERE underlying = ? "
        f"AND date BETWEEN ? AND ? AND ts_event > ? AND ts_event <= ? {only} "
        "AND ts_event = (SELECT max(ts_event) FROM option_quotes WHERE underlying = ? "
        "AND date BETWEEN ? AND ? AND ts_event > ? AND ts_event <= ?)",
        [*params, underlying, first, last, now - max_age, now],
    )
    if quotes.is_empty():
        return None
    quotes = one_source_per_snapshot(quotes, ["ts_event"], preference)
    ts = quotes["ts_event"][0]
    found = _analytics(lake, underlying, ts) if analytics else pl.DataFrame()
    if found.is_empty():
        frame = quotes.with_columns(*(pl.lit(None, pl.Float64).alias(c) for c in ANALYTICS_COLUMNS))
    else:
        frame = quotes.join(found, on="contract_id", how="left")
    return ChainSnapshot(underlying, ts, frame.sort("expiry", "strike", "right"))


def _analytics(lake: Lake, underlying: str, ts: datetime) -> pl.DataFrame:
    return query(
        lake,
        f"SELECT contract_id, {', '.join(ANALYTICS_COLUMNS)} FROM option_analytics "
        "WHERE underlying = ? AND date = ? AND ts_event = ?",
        [underlying, trading_date(ts), ts],
    )


def underlying_close(lake: Lake, underlying: str, day: date) -> float | None:
    """The underlying's last price on ``day``: the daily bar's close, else the last
    chain snapshot's underlying price (what expiry settlement uses)."""
    bars = query(
        lake,
        "SELECT close FROM underlying_bars WHERE underlying = ? AND date = ? "
        "ORDER BY bar_seconds DESC, ts_event DESC LIMIT 1",
        [underlying, day],
    )
    if not bars.is_empty():
        return float(bars["close"][0])
    quotes = query(
        lake,
        "SELECT underlying_price FROM option_quotes WHERE underlying = ? AND date = ? "
        "ORDER BY ts_event DESC LIMIT 1",
        [underlying, day],
    )
    return None if quotes.is_empty() else float(quotes["underlying_price"][0])


@dataclass(frozen=True)
class LakeQuotes:
    """The paper broker's market: the lake's latest snapshot at or before a time."""

    lake: Lake
    max_age: timedelta = timedelta(hours=2)
    preference: tuple[str, ...] = DEFAULT_SOURCE_PREFERENCE

    def snapshot(
        self, underlying: str, contracts: list[str], now: datetime
    ) -> tuple[datetime, dict[str, LegQuote]] | None:
        chain = latest_chain(
            self.lake, underlying, now, self.max_age, self.preference, contracts, analytics=False
        )
        return None if chain is None else (chain.ts_event, chain.quotes())

    def close_price(self, underlying: str, day: date) -> float | None:
        return underlying_close(self.lake, underlying, day)
