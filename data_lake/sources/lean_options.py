"""QuantConnect LEAN option data: end-of-day universe chains and option bars.

Layout below the data root (LEAN's ``Data/`` folder)::

    option/usa/universes/<sym>/<YYYYMMDD>.csv        one end-of-day chain per session
    option/usa/daily/<sym>_<YYYY>_<kind>_american.zip one CSV per contract, a bar per day
    option/usa/hour/<sym>_<YYYY>_<kind>_american.zip  one CSV per contract, a bar per hour
    option/usa/minute/<sym>/<YYYYMMDD>_<kind>_american.zip   a bar per minute
    equity/usa/minute/<sym>/<YYYYMMDD>_trade.zip      the underlying's minute bars
    equity/usa/hour/<sym>.zip                         the underlying's hour bars

``kind`` is ``quote`` (bid and ask OHLC bars with their last sizes), ``trade`` (OHLCV)
or ``openinterest``. A contract's CSV name carries it:
``[YYYYMMDD_]sym_[res_]kind_american_{call|put}_{strike x 10000}_{expiry}.csv``.
Bar prices are integers in 1/10000 dollar; universe prices are dollars. Times are
New York local: ``YYYYMMDD HH:MM`` (daily, hour; the bar's start) or milliseconds
since midnight (minute). A price of 0 means no market and becomes null.

A snapshot is a bar's end: the session's close for daily bars (an early close
included), start + 1 h (at most the close) for hour bars, start + 1 min for minute
bars. Quote, trade and open-interest bars of a contract are joined on the snapshot;
at daily resolution the universe chain of the same session joins them, bringing the
vendor's IV and Greeks (to ``option_vendor_analytics``) and its trade prices where
no bar exists. Each snapshot's underlying price is the underlying's raw close of the
same bar (the daily close, or the last minute/hour bar at or before the snapshot):
the universe files' own underlying row is not used, being often a different moment
of the day (and, in the sample, on the wrong side of the AAPL 2014 split).

Point-in-time caveat: LEAN's universe chain for a session carries the open interest
published the next morning (the sample's AAPL 2014-06-09 chain has the OI dated
06-10), a vendor look-ahead of one night. Features that use OI should lag it a day.

Not covered here: index options (``indexoption/``), tick and second data.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from data_lake.calendar import ExchangeCalendar, exchange_calendar
from data_lake.errors import SourceError
from data_lake.schemas import OPTION_QUOTES, OPTION_VENDOR_ANALYTICS, UNDERLYING_BARS
from data_lake.sources.cboe import ZIP_ERRORS
from data_lake.sources.synthetic_chain import occ_symbol_expr

SOURCE_NAME = "lean"
EXCHANGE_TZ = "America/New_York"
PRICE_SCALE = 10_000.0
Resolution = Literal["daily", "hour", "minute"]
RESOLUTIONS: tuple[str, ...] = ("daily", "hour", "minute")
BAR_SECONDS = {"daily": 86400, "hour": 3600, "minute": 60}
KIND_COLUMNS = {
    "quote": (
        "time", "bid_open", "bid_high", "bid_low", "bid", "bid_size",
        "ask_open", "ask_high", "ask_low", "ask", "ask_size",
    ),
    "trade": ("time", "open", "high", "low", "last", "volume"),
    "openinterest": ("time", "open_interest"),
}  # fmt: skip
PRICE_FIELDS = ("bid", "ask", "last", "open", "high", "low")
SIZE_FIELDS = ("bid_size", "ask_size", "volume", "open_interest")
UNIVERSE_HEADER = (
    "#expiry", "strike", "right", "open", "high", "low", "close", "volume",
    "open_interest", "implied_volatility", "delta", "gamma", "vega", "theta", "rho",
)  # fmt: skip
VENDOR_COLUMNS = {
    "implied_volatility": "vendor_iv",
    "delta": "vendor_delta",
    "gamma": "vendor_gamma",
    "vega": "vendor_vega",
    "theta": "vendor_theta",
    "rho": "vendor_rho",
}
MEMBER = re.compile(
    r"^(?:(?P<day>\d{8})_)?(?P<ticker>[a-z0-9.]+?)_(?:(?:minute|hour|daily|second|tick)_)?"
    r"(?P<kind>quote|trade|openinterest)_(?P<style>american|european)_"
    r"(?P<right>call|put)_(?P<strike>\d+)_(?P<expiry>\d{8})\.csv$",
    re.IGNORECASE,
)
CONTRACT = ("right", "strike", "expiry", "exercise_style")


@dataclass(frozen=True)
class BarFile:
    """One LEAN option zip: a kind of bar for every contract inside."""

    path: Path
    kind: str
    resolution: str


# --- paths -----------------------------------------------------------------------------


def _ticker_on(root: Path, symbol: str, day: date) -> str:
    """The folder name ``symbol`` had on ``day`` (LEAN map files: each row is the last
    date a ticker was used, e.g. GOOG data before 2014-04-03 lives under GOOCV)."""
    path = root / "equity" / "usa" / "map_files" / f"{symbol.lower()}.csv"
    if not path.is_file():
        return symbol.lower()
    for line in path.read_text().splitlines():
        fields = line.split(",")
        last_day = _file_date(fields[0]) if len(fields) >= 2 else None
        if last_day is not None and last_day >= day:
            return fields[1].strip().lower()
    return symbol.lower()


def universe_files(
    root: Path, symbol: str, start: date | None, end: date | None
) -> list[tuple[date, Path]]:
    """(session, file) for each universe chain of ``symbol`` in range, by date."""
    found: dict[date, Path] = {}
    base = root / "option" / "usa" / "universes"
    for folder in {symbol.lower(), *_historic_tickers(root, symbol)}:
        for path in sorted((base / folder).glob("*.csv")):
            day = _file_date(path.stem)
            if day is None or _ticker_on(root, symbol, day) != folder:
                continue
            if (start is None or day >= start) and (end is None or day <= end):
                found[day] = path
    return sorted(found.items())


def _historic_tickers(root: Path, symbol: str) -> set[str]:
    path = root / "equity" / "usa" / "map_files" / f"{symbol.lower()}.csv"
    if not path.is_file():
        return set()
    return {
        line.split(",")[1].strip().lower()
        for line in path.read_text().splitlines()
        if line.count(",") >= 1
    }


def _file_date(text: str) -> date | None:
    """``YYYYMMDD`` at the start of ``text`` as a date, or None."""
    digits = text[:8]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def bar_files(
    root: Path, symbol: str, resolution: str, start: date | None, end: date | None
) -> dict[date | int, list[BarFile]]:
    """The option zips of ``symbol`` at ``resolution`` in range, grouped by the unit each
    covers: a session (minute) or a year (daily, hour)."""
    groups: dict[date | int, list[BarFile]] = {}
    if resolution == "minute":
        for folder in {symbol.lower(), *_historic_tickers(root, symbol)}:
            base = root / "option" / "usa" / "minute" / folder
            for path in sorted(base.glob("*_american.zip")):
                day = _file_date(path.name)
                kind = path.name[9:].removesuffix("_american.zip")
                if day is None or kind not in KIND_COLUMNS:
                    continue
                if _ticker_on(root, symbol, day) != folder:
                    continue
                if (start is None or day >= start) and (end is None or day <= end):
                    groups.setdefault(day, []).append(BarFile(path, kind, resolution))
        return groups
    base = root / "option" / "usa" / resolution
    pattern = re.compile(rf"^([a-z0-9.]+)_(\d{{4}})_({'|'.join(KIND_COLUMNS)})_american\.zip$")
    tickers = {symbol.lower(), *_historic_tickers(root, symbol)}
    for path in sorted(base.glob("*_american.zip")):
        match = pattern.match(path.name.lower())
        if not match or match.group(1) not in tickers:
            continue
        year = int(match.group(2))
        if (start and year < start.year) or (end and year > end.year):
            continue
        groups.setdefault(year, []).append(BarFile(path, match.group(3), resolution))
    return groups


# --- option bar zips -----------------------------------------------------------------


def _members(path: Path) -> Iterator[tuple[str, re.Match[str], bytes]]:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                match = MEMBER.match(Path(info.filename).name)
                if match is None:
                    raise SourceError(
                        f"{path}!{info.filename}: unknown file layout (expected "
                        "[date_]symbol_[resolution_]kind_american_call|put_strike_expiry.csv)"
                    )
                yield info.filename, match, archive.read(info)
    except ZIP_ERRORS as exc:
        raise SourceError(f"{path}: corrupt zip file ({exc})") from exc


def _first_bad_line(
    path: Path, names: list[str], chunks: list[bytes], width: int, column: int | None = None
) -> str:
    """Where a malformed line is: 'file!member line k: ...' (the slow path, on error)."""
    for name, chunk in zip(names, chunks, strict=True):
        for number, line in enumerate(chunk.split(b"\n"), start=1):
            fields = line.rstrip(b"\r").split(b",")
            if len(fields) != width:
                return f"{path}!{name} line {number}: expected {width} fields, found {len(fields)}"
            if column is not None:
                value = fields[column].strip()
                if value and not re.fullmatch(rb"-?\d+(\.\d+)?", value):
                    return f"{path}!{name} line {number}: {value.decode(errors='replace')!r}"
    return f"{path}: unreadable"


def read_bar_zip(bar_file: BarFile, calendar: ExchangeCalendar) -> pl.DataFrame:
    """Every contract's bars in one zip: contract columns, ``ts_event`` (UTC bar end),
    ``date`` and the kind's fields, prices in dollars (0 -> null)."""
    path, kind = bar_file.path, bar_file.kind
    columns = KIND_COLUMNS[kind]
    names: list[str] = []
    chunks: list[bytes] = []
    contracts: list[tuple[str, float, date, str, date | None]] = []
    for name, match, content in _members(path):
        if match.group("kind").lower() != kind:
            raise SourceError(f"{path}!{name}: a {match.group('kind')} file in a {kind} zip")
        data = content.strip(b"\r\n")
        if not data:
            continue
        right = "C" if match.group("right").lower() == "call" else "P"
        expiry = _file_date(match.group("expiry"))
        if expiry is None:
            raise SourceError(f"{path}!{name}: expiry {match.group('expiry')} is not a date")
        day = _file_date(match.group("day")) if match.group("day") else None
        strike = int(match.group("strike")) / PRICE_SCALE
        contracts.append((right, strike, expiry, match.group("style").lower(), day))
        names.append(name)
        chunks.append(data)
    if not chunks:
        raise SourceError(f"{path}: no bars inside")
    counts = np.fromiter((c.count(b"\n") + 1 for c in chunks), dtype=np.int64, count=len(chunks))
    commas = sum(c.count(b",") for c in chunks)
    if commas != int(counts.sum()) * (len(columns) - 1):  # a short or long line somewhere
        raise SourceError(_first_bad_line(path, names, chunks, len(columns)))
    try:
        raw = pl.read_csv(
            io.BytesIO(b"\n".join(chunks)),
            has_header=False,
            new_columns=list(columns),
            schema_overrides=dict.fromkeys(columns, pl.String),
        )
    except pl.exceptions.PolarsError as exc:
        detail = _first_bad_line(path, names, chunks, len(columns))
        raise SourceError(f"{detail} ({str(exc).splitlines()[0]})") from exc
    if raw.width != len(columns) or raw.height != int(counts.sum()):
        raise SourceError(_first_bad_line(path, names, chunks, len(columns)))
    index = pl.Series("_member", np.repeat(np.arange(len(chunks)), counts))
    info = pl.DataFrame(
        {
            "_member": np.arange(len(chunks)),
            "right": [c[0] for c in contracts],
            "strike": [c[1] for c in contracts],
            "expiry": [c[2] for c in contracts],
            "exercise_style": [c[3] for c in contracts],
            "_day": [c[4] for c in contracts],
        },
        schema_overrides={"expiry": pl.Date, "_day": pl.Date},
    )
    frame = raw.with_columns(index).join(info, on="_member", how="left", maintain_order="left")
    numbers = {}
    for position, column in enumerate(columns[1:], start=1):
        parsed = pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
        numbers[column] = parsed
        bad = frame.select(
            (parsed.is_null() & (pl.col(column).str.strip_chars() != "")).arg_true().first()
        ).item()
        if bad is not None:
            member = int(frame["_member"][bad])
            raise SourceError(
                _first_bad_line(path, [names[member]], [chunks[member]], len(columns), position)
                + f" in column {column!r} is not a number"
            )
    frame = frame.with_columns(**numbers)
    frame = _bar_times(frame, bar_file, calendar, names)
    prices = [c for c in columns if c in PRICE_FIELDS]
    sizes = [c for c in columns if c in SIZE_FIELDS]
    return frame.select(
        *CONTRACT,
        "date",
        "ts_event",
        *(
            pl.when(pl.col(c) > 0).then((pl.col(c) / PRICE_SCALE).round(4)).alias(c)  # 0: none
            for c in prices
        ),
        *(pl.col(c).cast(pl.Int64) for c in sizes),
    )


def _bar_times(
    frame: pl.DataFrame, bar_file: BarFile, calendar: ExchangeCalendar, names: list[str]
) -> pl.DataFrame:
    """Add ``date`` (the session) and ``ts_event`` (the bar's end, UTC)."""
    path = bar_file.path
    if bar_file.resolution == "minute":
        day = frame["_day"].first() if frame.height else None
        if not isinstance(day, date) or frame["_day"].null_count() or frame["_day"].n_unique() > 1:
            raise SourceError(f"{path}: minute bars need one date in every member name")
        ms = pl.col("time").cast(pl.Int64, strict=False)
        start = pl.lit(datetime.combine(day, time())) + pl.duration(milliseconds=ms)
        frame = frame.with_columns(
            pl.lit(day).alias("date"),
            (start + pl.duration(minutes=1))
            .dt.replace_time_zone(EXCHANGE_TZ)
            .dt.convert_time_zone("UTC")
            .alias("ts_event"),
            ms.alias("_ms"),
        )
        bad = frame.select(pl.col("_ms").is_null().arg_true().first()).item()
        if bad is not None:
            member = names[int(frame["_member"][bad])]
            raise SourceError(f"{path}!{member}: time {frame['time'][bad]!r} is not milliseconds")
        return frame
    local = pl.col("time").str.strptime(pl.Datetime("us"), "%Y%m%d %H:%M", strict=False)
    frame = frame.with_columns(local.alias("_start"))
    bad = frame.select(pl.col("_start").is_null().arg_true().first()).item()
    if bad is not None:
        member = names[int(frame["_member"][bad])]
        raise SourceError(f"{path}!{member}: time {frame['time'][bad]!r} is not 'YYYYMMDD HH:MM'")
    frame = frame.with_columns(pl.col("_start").dt.date().alias("date"))
    closes = {}
    for day in frame["date"].unique().to_list():
        if not calendar.is_session(day):
            raise SourceError(f"{path}: bars dated {day}, which is not an exchange session")
        closes[day] = calendar.session_on_or_before(day).close
    close = pl.col("date").replace_strict(closes, return_dtype=pl.Datetime("us", "UTC"))
    if bar_file.resolution == "daily":
        return frame.with_columns(close.alias("ts_event"))
    end = (
        (pl.col("_start") + pl.duration(hours=1))
        .dt.replace_time_zone(EXCHANGE_TZ)
        .dt.convert_time_zone("UTC")
    )
    return frame.with_columns(pl.min_horizontal(end, close).alias("ts_event"))


def combine_bars(parts: dict[str, list[pl.DataFrame]]) -> pl.DataFrame:
    """One row per contract and snapshot from quote, trade and open-interest bars."""
    key = [*CONTRACT, "date", "ts_event"]

    def stacked(kind: str) -> pl.DataFrame | None:
        frames = parts.get(kind)
        return pl.concat(frames) if frames else None

    quotes, trades, interest = stacked("quote"), stacked("trade"), stacked("openinterest")
    priced = [f for f in (quotes, trades) if f is not None]
    if not priced:
        raise SourceError("open interest alone is not a chain: quote or trade bars are needed")
    if quotes is not None and trades is not None:
        combined = quotes.join(
            trades.select(*key, "last", "volume"), on=key, how="full", coalesce=True
        )
    else:
        combined = priced[0]
    if interest is not None:
        # open interest is published once a session: attach it to the session's snapshots
        daily = (
            interest.sort("ts_event")
            .group_by([*CONTRACT, "date"])
            .agg(pl.col("open_interest").last())
        )
        combined = combined.join(daily, on=[*CONTRACT, "date"], how="left")
    return combined


# --- universe chains ----------------------------------------------------------------------


def _locate_universe_error(data: bytes, origin: str, numeric: list[str]) -> pl.DataFrame:
    """The slow path of a universe file that did not parse: name the line and column."""
    try:
        raw = pl.read_csv(
            io.BytesIO(data), schema_overrides=dict.fromkeys(UNIVERSE_HEADER, pl.String)
        )
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{origin}: unreadable universe CSV: {str(exc).splitlines()[0]}") from exc
    raw = raw.rename({"#expiry": "expiry_text"}).with_columns(pl.all().str.strip_chars())
    parsed = {c: pl.col(c).cast(pl.Float64, strict=False) for c in numeric}
    for column, expr in parsed.items():
        bad = raw.select((expr.is_null() & pl.col(column).is_not_null()).arg_true().first()).item()
        if bad is not None:
            raise SourceError(
                f"{origin}: line {bad + 2}, column {column!r}: {raw[column][bad]!r} is not a number"
            )
    return raw.with_columns(**parsed)


def read_universe(path: Path, day: date, calendar: ExchangeCalendar) -> pl.DataFrame:
    """One end-of-day chain: contract columns, ``last``/``volume``/``open_interest``,
    the vendor's IV and Greeks, the file's own underlying row close as
    ``_file_underlying``."""
    origin = str(path)
    if not calendar.is_session(day):
        raise SourceError(f"{origin}: chain dated {day}, which is not an exchange session")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{origin}: cannot read ({exc})") from exc
    header = data.split(b"\n", 1)[0].decode(errors="replace").strip().split(",")
    if tuple(h.strip().lower() for h in header) != UNIVERSE_HEADER:
        raise SourceError(
            f"{origin}: unknown universe layout; expected header {','.join(UNIVERSE_HEADER)}, "
            f"found {','.join(header)}"
        )
    numeric = [*UNIVERSE_HEADER[3:], "strike"]
    try:  # the fast path: typed parse; on failure, find and name the bad value below
        frame = pl.read_csv(
            io.BytesIO(data),
            schema_overrides={
                "#expiry": pl.String, "right": pl.String, **dict.fromkeys(numeric, pl.Float64),
            },
        ).rename({"#expiry": "expiry_text"})  # fmt: skip
    except pl.exceptions.PolarsError:
        frame = _locate_universe_error(data, origin, numeric)
    if frame.is_empty() or frame["expiry_text"][0] not in (None, ""):
        raise SourceError(f"{origin}: line 2 should be the underlying's row (empty expiry)")
    file_underlying = frame["close"][0]
    chain = frame.slice(1)
    expiry = pl.col("expiry_text").str.strptime(pl.Date, "%Y%m%d", strict=False)
    checks = {
        "expiry": expiry.is_null(),
        "right": ~pl.col("right").is_in(["C", "P"]),
        "strike": pl.col("strike").is_null(),
    }
    for column, failed in checks.items():
        bad = chain.select(failed.fill_null(True).arg_true().first()).item()
        if bad is not None:
            value = chain["expiry_text" if column == "expiry" else column][bad]
            raise SourceError(f"{origin}: line {bad + 3}, column {column!r}: {value!r} is invalid")
    close = calendar.session_on_or_before(day).close
    no_market = pl.col("close").fill_null(0) <= 0
    return chain.select(
        pl.col("right"),
        pl.col("strike"),
        expiry.alias("expiry"),
        pl.lit("american").alias("exercise_style"),
        pl.lit(day).alias("date"),
        pl.lit(close).cast(pl.Datetime("us", "UTC")).alias("ts_event"),
        pl.when(~no_market).then(pl.col("close")).alias("u_last"),
        pl.col("volume").cast(pl.Int64).alias("u_volume"),
        pl.col("open_interest").cast(pl.Int64).alias("u_open_interest"),
        # an IV of 0 is the vendor's "not computed"; Greeks are kept as published
        pl.when(pl.col("implied_volatility") > 0)
        .then(pl.col("implied_volatility"))
        .alias("vendor_iv"),
        *(pl.col(c).alias(v) for c, v in VENDOR_COLUMNS.items() if c != "implied_volatility"),
        pl.lit(file_underlying, pl.Float64).alias("_file_underlying"),
    )


# --- underlying prices -------------------------------------------------------------------


def read_equity_minute(root: Path, symbol: str, day: date) -> pl.DataFrame | None:
    """The underlying's minute trade bars of one session (raw), or None if absent."""
    path = (
        root / "equity" / "usa" / "minute" / _ticker_on(root, symbol, day)
        / f"{day:%Y%m%d}_trade.zip"
    )  # fmt: skip
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise SourceError(f"{path}: expected one CSV inside, found {len(members)}")
            data = archive.read(members[0])
    except ZIP_ERRORS as exc:
        raise SourceError(f"{path}: corrupt zip file ({exc})") from exc
    names = ("ms", "open", "high", "low", "close", "volume")
    try:
        frame = pl.read_csv(
            io.BytesIO(data), has_header=False, new_columns=list(names),
            schema_overrides={"ms": pl.Int64, **dict.fromkeys(names[1:], pl.Float64)},
        )  # fmt: skip
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{path}: unreadable minute bars: {str(exc).splitlines()[0]}") from exc
    end = (
        (pl.lit(datetime.combine(day, time())) + pl.duration(milliseconds=pl.col("ms") + 60_000))
        .dt.replace_time_zone(EXCHANGE_TZ)
        .dt.convert_time_zone("UTC")
    )
    return frame.select(
        pl.lit(symbol).alias("underlying"),
        pl.lit(day).alias("date"),
        end.alias("ts_event"),
        pl.lit(60, pl.Int32).alias("bar_seconds"),
        *((pl.col(c) / PRICE_SCALE).round(4) for c in ("open", "high", "low", "close")),
        pl.col("volume").cast(pl.Int64),
        end.alias("ts_init"),
        pl.lit(SOURCE_NAME).alias("source"),
    )


def _with_underlying_price(chain: pl.DataFrame, bars: pl.DataFrame | None) -> pl.DataFrame:
    """The underlying's last close at or before each snapshot (``bars``: one session's)."""
    if bars is None or bars.is_empty():
        return chain.with_columns(pl.lit(None, pl.Float64).alias("underlying_price"))
    prices = bars.select(
        "date", pl.col("ts_event").alias("_bar_end"), pl.col("close").alias("underlying_price")
    ).sort("_bar_end")
    return (
        chain.with_row_index("_order")
        .sort("ts_event")
        .join_asof(prices, left_on="ts_event", right_on="_bar_end", strategy="backward")
        .sort("_order")
        .drop("_order", "_bar_end")
    )


# --- snapshots -> lake frames ----------------------------------------------------------------


def to_lake_frames(
    symbol: str, chain: pl.DataFrame, source: str = SOURCE_NAME
) -> dict[str, pl.DataFrame]:
    """``option_quotes`` (and, where the chain has vendor columns,
    ``option_vendor_analytics``) frames from combined snapshot rows."""
    for column, dtype in {
        "bid": pl.Float64, "ask": pl.Float64, "last": pl.Float64, "bid_size": pl.Int64,
        "ask_size": pl.Int64, "volume": pl.Int64, "open_interest": pl.Int64,
    }.items():  # fmt: skip
        if column not in chain.columns:
            chain = chain.with_columns(pl.lit(None, dtype).alias(column))
    with_id = chain.with_columns(occ_symbol_expr(symbol.upper()).alias("contract_id"))
    quotes = with_id.select(
        pl.lit(symbol).alias("underlying"),
        "date",
        "contract_id",
        "expiry",
        "strike",
        "right",
        "exercise_style",
        pl.lit("PM").alias("settlement"),  # US equity options: PM-settled
        pl.lit(100.0).alias("multiplier"),
        "bid",
        "ask",
        "bid_size",
        "ask_size",
        "last",
        "volume",
        "open_interest",
        "underlying_price",
        "ts_event",
        pl.col("ts_event").alias("ts_init"),
        pl.lit(source).alias("source"),
    )
    frames = {OPTION_QUOTES.name: quotes}
    if "vendor_iv" in with_id.columns:
        vendor = with_id.filter(pl.col("_in_universe")).select(
            pl.lit(symbol).alias("underlying"),
            "date",
            "contract_id",
            "ts_event",
            *VENDOR_COLUMNS.values(),
            pl.col("ts_event").alias("ts_init"),
            pl.lit(source).alias("source"),
        )
        frames[OPTION_VENDOR_ANALYTICS.name] = vendor
    return frames


def _join_universe(bars: pl.DataFrame | None, universe: pl.DataFrame) -> pl.DataFrame:
    """Bars of a session joined with its universe chain (strikes matched to the cent)."""
    universe = universe.with_columns(pl.lit(True).alias("_in_universe"))
    if bars is None:
        return universe.rename(
            {"u_last": "last", "u_volume": "volume", "u_open_interest": "open_interest"}
        )
    key = [*CONTRACT, "date", "ts_event"]
    rounded = pl.col("strike").round(2)
    joined = bars.with_columns(rounded).join(
        universe.with_columns(rounded), on=key, how="full", coalesce=True
    )
    merged = {"last": "u_last", "volume": "u_volume", "open_interest": "u_open_interest"}
    joined = joined.with_columns(
        pl.lit(None, joined.schema[vendor]).alias(own)
        for own, vendor in merged.items()
        if own not in joined.columns
    )
    return joined.with_columns(
        *(pl.coalesce(own, vendor).alias(own) for own, vendor in merged.items()),
        pl.col("_in_universe").fill_null(False),
    ).drop(merged.values())


def _read_bar_groups(
    groups: dict[date | int, list[BarFile]],
    start: date | None,
    end: date | None,
    calendar: ExchangeCalendar,
    problems: list[str],
) -> tuple[dict[date, pl.DataFrame], list[date | int]]:
    """Combined snapshot rows per session, and the units (sessions or years) whose
    files could not be read (their errors appended to ``problems``)."""
    by_day: dict[date, pl.DataFrame] = {}
    failed: list[date | int] = []
    for unit, files in groups.items():
        try:
            parts: dict[str, list[pl.DataFrame]] = {}
            for bar_file in files:
                parts.setdefault(bar_file.kind, []).append(read_bar_zip(bar_file, calendar))
            combined = combine_bars(parts)
        except SourceError as exc:
            problems.append(str(exc))
            failed.append(unit)
            continue
        if start or end:
            combined = combined.filter(
                pl.col("date").is_between(start or date.min, end or date.max)
            )
        for (day,), rows in combined.partition_by("date", as_dict=True).items():
            by_day[day] = rows if day not in by_day else pl.concat([by_day[day], rows])
    return by_day, failed


def _session_underlying(
    root: Path, symbol: str, resolution: str, day: date, bars: pl.DataFrame | None
) -> tuple[pl.DataFrame | None, bool]:
    """The underlying's bars a session's snapshots are priced from, and whether they
    are to be written with the chain (minute and hour bars: daily bars are written by
    the bar importer)."""
    if resolution == "minute":
        minute = read_equity_minute(root, symbol, day)
        return minute, minute is not None
    if bars is None:
        return None, False
    return bars.filter(pl.col("date") == day), resolution == "hour"


def load_options(
    root: Path,
    symbol: str,
    resolution: str,
    start: date | None,
    end: date | None,
    bars: pl.DataFrame | None,
    problems: list[str],
    calendar: ExchangeCalendar | None = None,
) -> Iterator[tuple[date, dict[str, pl.DataFrame]]]:
    """(session, lake frames) of ``symbol``'s option chains at ``resolution``.

    ``bars`` are the underlying's raw bars of the resolution (``underlying_bars``
    schema: daily bars for daily chains, ``equity/usa/hour`` bars for hour chains),
    the price of each snapshot. Without them a universe chain falls back to its own
    underlying row. Minute chains read the underlying's minute bars of each session
    from the same folder and return them with the chain.

    A file that cannot be read costs only the sessions it covers: its error (naming
    the file, and the line and column where known) is appended to ``problems`` and
    those sessions are left out whole, never half-written.
    """
    if resolution not in RESOLUTIONS:
        raise SourceError(f"unknown LEAN resolution {resolution!r}; use one of {RESOLUTIONS}")
    calendar = calendar or exchange_calendar()
    symbol = symbol.upper()
    groups = bar_files(root, symbol, resolution, start, end)
    universes = universe_files(root, symbol, start, end) if resolution == "daily" else []
    if not groups and not universes:
        raise SourceError(
            f"{root}: no LEAN {resolution} option data for {symbol} in range (looked in "
            f"option/usa/{resolution} and option/usa/universes)"
        )
    by_day, failed = _read_bar_groups(groups, start, end, calendar, problems)
    # a year's zip that failed takes every session of that year with it
    failed_days = {d for d, _ in universes if d in failed or d.year in failed}
    failed_days.update(u for u in failed if isinstance(u, date))
    universe_by_day: dict[date, pl.DataFrame] = {}
    for day, path in universes:
        try:
            universe_by_day[day] = read_universe(path, day, calendar)
        except SourceError as exc:
            problems.append(str(exc))
            failed_days.add(day)
    for day in sorted((set(by_day) | set(universe_by_day)) - failed_days):
        chain = by_day.get(day)
        if day in universe_by_day:
            chain = _join_universe(chain, universe_by_day[day])
        assert chain is not None
        underlying, write_bars = _session_underlying(root, symbol, resolution, day, bars)
        frames: dict[str, pl.DataFrame] = {}
        if write_bars and underlying is not None and not underlying.is_empty():
            frames[UNDERLYING_BARS.name] = underlying
        chain = _with_underlying_price(chain, underlying)
        if "_file_underlying" in chain.columns:  # no bar: the chain's own underlying row
            chain = chain.with_columns(
                pl.coalesce("underlying_price", "_file_underlying").alias("underlying_price")
            )
        frames.update(to_lake_frames(symbol, chain))
        yield day, frames
