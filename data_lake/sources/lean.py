"""QuantConnect LEAN data folders: daily equity bars and factor files.

Layout below the data root (LEAN's ``Data/`` folder)::

    equity/usa/daily/<symbol>.zip          one CSV: "YYYYMMDD HH:MM,open,high,low,close,volume"
                                           prices in 1/10000 dollar, raw (not adjusted)
    equity/usa/factor_files/<symbol>.csv   "YYYYMMDD,price_factor,split_factor,reference_price"

Bars are written raw to ``underlying_bars`` (``ts_event`` is the session's close);
factor rows go to ``corporate_actions``, so the split- and dividend-adjusted history
is the ``underlying_bars_adjusted`` view (a bar dated d uses the first factor row
dated on or after d, as LEAN does). Option chains from LEAN folders come with the
options part of the LEAN importer.

A file that cannot be read or parsed fails that underlying with an error naming the
file (and the line where the CSV reader reports one); nothing of it is written.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from data_lake.calendar import EXCHANGE_TZ, ExchangeCalendar, exchange_calendar
from data_lake.errors import SourceError
from data_lake.schemas import CORPORATE_ACTIONS, UNDERLYING_BARS
from data_lake.sources.base import SourceBatch
from data_lake.sources.cboe import ZIP_ERRORS

SOURCE_NAME = "lean"
PRICE_SCALE = 10_000.0
BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume")


def daily_bars_path(root: Path, symbol: str) -> Path:
    return root / "equity" / "usa" / "daily" / f"{symbol.lower()}.zip"


def factor_file_path(root: Path, symbol: str) -> Path:
    return root / "equity" / "usa" / "factor_files" / f"{symbol.lower()}.csv"


def _zip_member(path: Path) -> tuple[str, bytes]:
    if not path.is_file():
        raise SourceError(f"{path}: no such file (LEAN daily bars for this symbol)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise SourceError(f"{path}: expected one CSV inside, found {len(names)}")
            return f"{path}!{names[0]}", archive.read(names[0])
    except ZIP_ERRORS as exc:
        raise SourceError(f"{path}: corrupt zip file ({exc})") from exc


def _read_csv(
    data: bytes, origin: str, names: Sequence[str], schema: dict[str, Any]
) -> pl.DataFrame:
    try:
        frame = pl.read_csv(
            io.BytesIO(data), has_header=False, new_columns=list(names), schema_overrides=schema
        )
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{origin}: unreadable LEAN CSV: {str(exc).splitlines()[0]}") from exc
    if frame.width != len(names):
        raise SourceError(f"{origin}: expected {len(names)} columns, found {frame.width}")
    if frame.is_empty():
        raise SourceError(f"{origin}: no rows")
    return frame


def _parsed_dates(frame: pl.DataFrame, column: str, origin: str) -> pl.Series:
    parsed = frame.get_column(column).str.slice(0, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
    if parsed.null_count():
        line = int(parsed.is_null().arg_true()[0]) + 1
        value = frame.get_column(column)[line - 1]
        raise SourceError(f"{origin}: line {line}, column {column!r}: {value!r} is not YYYYMMDD")
    return parsed


def read_daily_bars(
    root: Path, symbol: str, calendar: ExchangeCalendar, start: date | None, end: date | None
) -> pl.DataFrame:
    """Raw daily bars of ``symbol`` in the ``underlying_bars`` schema (dollars, UTC close)."""
    origin, data = _zip_member(daily_bars_path(root, symbol))
    numbers = dict.fromkeys(BAR_COLUMNS[1:], pl.Float64)
    frame = _read_csv(data, origin, BAR_COLUMNS, {"time": pl.String, **numbers})
    days = _parsed_dates(frame, "time", origin)
    frame = frame.with_columns(days.alias("date"))
    if start or end:
        frame = frame.filter(pl.col("date").is_between(start or date.min, end or date.max))
    closes = []
    for day in frame.get_column("date").to_list():
        if not calendar.is_session(day):
            raise SourceError(f"{origin}: bar dated {day}, which is not an exchange session")
        closes.append(calendar.session_on_or_before(day).close)
    close_ts = pl.Series("ts_event", closes, dtype=UNDERLYING_BARS.schema["ts_event"])
    return frame.select(
        pl.lit(symbol).alias("underlying"),
        pl.col("date"),
        close_ts,
        pl.lit(86400, pl.Int32).alias("bar_seconds"),
        *(pl.col(c) / PRICE_SCALE for c in ("open", "high", "low", "close")),
        pl.col("volume").cast(pl.Int64, strict=False),
        close_ts.alias("ts_init"),
        pl.lit(SOURCE_NAME).alias("source"),
    )


def read_factor_file(root: Path, symbol: str) -> pl.DataFrame:
    """LEAN factor rows of ``symbol`` in the ``corporate_actions`` schema."""
    path = factor_file_path(root, symbol)
    if not path.is_file():
        raise SourceError(f"{path}: no such file (LEAN factor file for this symbol)")
    names = ("date", "price_factor", "split_factor", "reference_price")
    schema = {"date": pl.String, **dict.fromkeys(names[1:], pl.Float64)}
    frame = _read_csv(path.read_bytes(), str(path), names, schema)
    days = _parsed_dates(frame, "date", str(path))
    at_1600 = [
        datetime.combine(d, time(16), EXCHANGE_TZ) for d in days.to_list()
    ]  # the day's trading is over: its factors apply to it and the days before
    ts = pl.Series("ts_event", at_1600).dt.convert_time_zone("UTC")
    return frame.select(
        pl.lit(symbol).alias("underlying"),
        days.alias("date"),
        ts.cast(CORPORATE_ACTIONS.schema["ts_event"]).alias("ts_event"),
        pl.col("price_factor"),
        pl.col("split_factor"),
        pl.col("reference_price"),
        ts.cast(CORPORATE_ACTIONS.schema["ts_init"]).alias("ts_init"),
        pl.lit(SOURCE_NAME).alias("source"),
    )


def load_underlying(
    root: Path,
    symbol: str,
    start: date | None = None,
    end: date | None = None,
    calendar: ExchangeCalendar | None = None,
) -> list[SourceBatch]:
    """Batches of one symbol: a bar per session in range, and every factor row (factor
    files are small, and a range filter would cut the adjustment of the bars)."""
    calendar = calendar or exchange_calendar()
    symbol = symbol.upper()
    bars = read_daily_bars(root, symbol, calendar, start, end)
    factors = read_factor_file(root, symbol)
    origin = f"LEAN {root} {symbol}"
    batches = [
        SourceBatch(symbol, day, {UNDERLYING_BARS.name: part}, origin=origin)
        for (day,), part in bars.partition_by("date", as_dict=True, maintain_order=True).items()
    ]
    batches += [
        SourceBatch(symbol, day, {CORPORATE_ACTIONS.name: part}, origin=origin)
        for (day,), part in factors.partition_by("date", as_dict=True, maintain_order=True).items()
    ]
    return batches
