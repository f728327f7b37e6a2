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
from data_lake.sources import lean_options
from data_lake.sources.base import SourceBatch
from data_lake.sources.cboe import ZIP_ERRORS

SOURCE_NAME = "lean"
PRICE_SCALE = 10_000.0
BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume")


def daily_bars_path(root: Path, symbol: str) -> Path:
    return root / "equity" / "usa" / "daily" / f"{symbol.lower()}.zip"


def hour_bars_path(root: Path, symbol: str) -> Path:
    return root / "equity" / "usa" / "hour" / f"{symbol.lower()}.zip"


def factor_file_path(root: Path, symbol: str) -> Path:
    return root / "equity" / "usa" / "factor_files" / f"{symbol.lower()}.csv"


def _zip_member(path: Path) -> tuple[str, bytes]:
    if not path.is_file():
        raise SourceError(f"{path}: no such file (LEAN bars for this symbol)")
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
    return read_bar_file(daily_bars_path(root, symbol), symbol, calendar, start, end)


def read_bar_file(
    path: Path,
    symbol: str,
    calendar: ExchangeCalendar,
    start: date | None,
    end: date | None,
    bar_seconds: int = 86400,
) -> pl.DataFrame:
    """Raw daily (or hour) bars from one LEAN zip, ``underlying_bars`` schema. A bar's
    ``ts_event`` is its end: the session's close for a daily bar, start + 1 h (at most
    the close) for an hour bar."""
    origin, data = _zip_member(path)
    numbers = dict.fromkeys(BAR_COLUMNS[1:], pl.Float64)
    frame = _read_csv(data, origin, BAR_COLUMNS, {"time": pl.String, **numbers})
    days = _parsed_dates(frame, "time", origin)
    frame = frame.with_columns(days.alias("date"))
    if start or end:
        frame = frame.filter(pl.col("date").is_between(start or date.min, end or date.max))
    closes = {}
    for day in frame.get_column("date").unique().to_list():
        if not calendar.is_session(day):
            raise SourceError(f"{origin}: bar dated {day}, which is not an exchange session")
        closes[day] = calendar.session_on_or_before(day).close
    dtype = UNDERLYING_BARS.schema["ts_event"]
    close_ts = pl.col("date").replace_strict(closes, return_dtype=dtype)
    if bar_seconds != 86400:
        start_ts = pl.col("time").str.strptime(pl.Datetime("us"), "%Y%m%d %H:%M", strict=False)
        bar_end = (
            (start_ts + pl.duration(seconds=bar_seconds))
            .dt.replace_time_zone(EXCHANGE_TZ.key)
            .dt.convert_time_zone("UTC")
        )
        close_ts = pl.min_horizontal(bar_end, close_ts)
    frame = frame.with_columns(close_ts.alias("ts_event"))
    if frame["ts_event"].null_count():
        line = int(frame["ts_event"].is_null().arg_true()[0]) + 1
        raise SourceError(f"{origin}: line {line}: time is not 'YYYYMMDD HH:MM'")
    return frame.select(
        pl.lit(symbol).alias("underlying"),
        pl.col("date"),
        pl.col("ts_event"),
        pl.lit(bar_seconds, pl.Int32).alias("bar_seconds"),
        *((pl.col(c) / PRICE_SCALE).round(4) for c in ("open", "high", "low", "close")),
        pl.col("volume").cast(pl.Int64, strict=False),
        pl.col("ts_event").alias("ts_init"),
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


def _option_chains(
    root: Path,
    symbol: str,
    resolution: str,
    start: date | None,
    end: date | None,
    daily_bars: pl.DataFrame | None,
    problems: list[str],
    calendar: ExchangeCalendar,
) -> list[tuple[date, dict[str, pl.DataFrame]]]:
    """The option chains at ``resolution``: hour chains are priced from (and written
    with) LEAN's hour bars, daily chains from the daily bars; minute chains read their
    minute bars per session. Missing hour bars are a problem, not a chain of quotes
    without an underlying price."""
    bars = daily_bars
    if resolution == "hour":
        hourly = hour_bars_path(root, symbol)
        if not hourly.is_file():
            problems.append(f"{hourly}: no such file (hour chains are priced from LEAN's "
                            "hour bars)")  # fmt: skip
            return []
        bars = read_bar_file(hourly, symbol, calendar, start, end, bar_seconds=3600)
    return list(
        lean_options.load_options(root, symbol, resolution, start, end, bars, problems, calendar)
    )


def load_underlying(
    root: Path,
    symbol: str,
    start: date | None = None,
    end: date | None = None,
    calendar: ExchangeCalendar | None = None,
    options: str | None = None,
    problems: list[str] | None = None,
) -> list[SourceBatch]:
    """Batches of one symbol: a bar per session in range, every factor row (factor files
    are small, and a range filter would cut the adjustment of the bars), and with
    ``options`` (a resolution: daily, hour or minute) its option chains in range.

    Everything is parsed before anything is returned. A bad bar or factor file fails
    the symbol, nothing of it written; a bad option file costs only its sessions, its
    error appended to ``problems`` (without that list, it fails the symbol too). The
    daily bars and factor file may be absent when option chains are asked for (LEAN
    samples often hold options only). One batch per session holds all its tables.
    """
    calendar = calendar or exchange_calendar()
    symbol = symbol.upper()
    bars: pl.DataFrame | None = None
    factors: pl.DataFrame | None = None
    if not options or daily_bars_path(root, symbol).is_file():
        bars = read_daily_bars(root, symbol, calendar, start, end)
    if not options or factor_file_path(root, symbol).is_file():
        factors = read_factor_file(root, symbol)
    origin = f"LEAN {root} {symbol}"
    frames: dict[date, dict[str, list[pl.DataFrame]]] = {}

    def add(day: date, table: str, frame: pl.DataFrame, resolution: str = "daily") -> None:
        # a re-import replaces the rows of the same symbol, table and resolution
        batch = pl.lit(f"lean:{symbol}:{table}:{resolution}").alias("batch_id")
        frames.setdefault(day, {}).setdefault(table, []).append(frame.with_columns(batch))

    for table, frame in ((UNDERLYING_BARS.name, bars), (CORPORATE_ACTIONS.name, factors)):
        if frame is not None:
            for (day,), part in frame.partition_by("date", as_dict=True).items():
                add(day, table, part)
    if options:
        found: list[str] = []
        for day, tables in _option_chains(root, symbol, options, start, end, bars, found,
                                          calendar):  # fmt: skip
            for table, frame in tables.items():
                add(day, table, frame, options)
        if found and problems is None:
            raise SourceError("; ".join(found))
        if problems is not None:
            problems.extend(found)
    return [
        SourceBatch(
            symbol,
            day,
            {t: pl.concat(parts, how="vertical_relaxed") for t, parts in tables.items()},
            origin=origin,
        )
        for day, tables in sorted(frames.items())
    ]
