"""CBOE DataShop "Option EOD Summary" files (CSV, plain or zipped).

Layout (CBOE DataShop documentation), with the ``*_1545`` calcs columns optional::

    underlying_symbol,quote_date,root,expiration,strike,option_type,open,high,low,close,
    trade_volume,bid_size_1545,bid_1545,ask_size_1545,ask_1545,underlying_bid_1545,
    underlying_ask_1545,[implied_underlying_price_1545,]active_underlying_price_1545,
    [implied_volatility_1545,delta_1545,gamma_1545,theta_1545,vega_1545,rho_1545,]
    bid_size_eod,bid_eod,ask_size_eod,ask_eod,underlying_bid_eod,underlying_ask_eod,
    vwap,open_interest,delivery_code

Each row becomes two snapshots of the contract: 15:45 New York, 12:45 on an early
close (the ``*_1545``
quotes, underlying at ``active_underlying_price_1545``) and the session close
(the ``*_eod`` quotes, underlying at the mid of its end-of-day bid and ask, the
day's volume and last trade). A file may hold several quote dates and
underlyings; it yields one batch per (underlying, quote date).

A file is parsed and checked completely before anything is written: a corrupt
zip, a truncated line, a missing or renamed column, a non-numeric value or a
malformed date rejects the whole file with an error naming the file, the line
and the column. Row-level problems in well-formed files (crossed quotes,
duplicates, ...) go to the quarantine like any source's.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from data_lake.calendar import ExchangeCalendar, exchange_calendar
from data_lake.errors import ConfigError, SourceError
from data_lake.lake import validate_symbol
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.base import SourceBatch

SOURCE_NAME = "cboe"
# what a damaged, truncated, encrypted or exotic zip raises while being read
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError,
              RuntimeError, ValueError)  # fmt: skip
BASE_COLUMNS = (
    "underlying_symbol", "quote_date", "root", "expiration", "strike", "option_type",
    "open", "high", "low", "close", "trade_volume", "bid_size_1545", "bid_1545",
    "ask_size_1545", "ask_1545", "underlying_bid_1545", "underlying_ask_1545",
    "active_underlying_price_1545", "bid_size_eod", "bid_eod", "ask_size_eod", "ask_eod",
    "underlying_bid_eod", "underlying_ask_eod", "vwap", "open_interest", "delivery_code",
)  # fmt: skip
CALCS_COLUMNS = (
    "implied_underlying_price_1545", "implied_volatility_1545", "delta_1545", "gamma_1545",
    "theta_1545", "vega_1545", "rho_1545",
)  # fmt: skip
TEXT_COLUMNS = (
    "underlying_symbol",
    "quote_date",
    "root",
    "expiration",
    "option_type",
    "delivery_code",
)
DATE_COLUMNS = ("quote_date", "expiration")
# the "1545" calcs are taken 15 minutes before the close (12:45 on a half day)
BEFORE_CLOSE_1545 = timedelta(minutes=15)

# Index option roots: (exercise style, settlement). Standard monthlies are AM-settled,
# weeklies and P.M. roots PM-settled; VIX and VIXW settle on the morning's SOQ; OEX is
# the American-style S&P 100 option, XEO its European twin.
# CBOE index options close 15 minutes after the equity session (16:15 New York, 13:15
# on an early close): their end-of-day quotes are stamped then.
INDEX_CLOSE_EXTENSION = timedelta(minutes=15)
INDEX_ROOTS: dict[str, tuple[str, str]] = {
    "SPX": ("european", "AM"), "SPXW": ("european", "PM"), "SPXPM": ("european", "PM"),
    "XSP": ("european", "PM"), "NDX": ("european", "AM"), "NDXP": ("european", "PM"),
    "RUT": ("european", "AM"), "RUTW": ("european", "PM"), "MRUT": ("european", "PM"),
    "VIX": ("european", "AM"), "VIXW": ("european", "AM"), "DJX": ("european", "AM"),
    "XEO": ("european", "PM"), "OEX": ("american", "PM"),
}  # fmt: skip


def read_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(origin, bytes) of a CSV file or of each CSV inside a zip; SourceError if unreadable."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
                if not names:
                    raise SourceError(f"{path}: the zip holds no .csv file")
                for name in names:
                    yield f"{path}!{name}", archive.read(name)
            return
        if path.suffix.lower() == ".zip":
            raise SourceError(f"{path}: corrupt zip file (not a readable zip archive)")
        yield str(path), path.read_bytes()
    except ZIP_ERRORS as exc:
        raise SourceError(f"{path}: corrupt zip file ({exc})") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _check_layout(data: bytes, origin: str) -> list[str]:
    """The header's columns, after checking the layout and that every line is complete."""
    first = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip()
    if not first:
        raise SourceError(f"{origin}: empty file")
    header = [c.strip().lower() for c in first.split(",")]
    missing = [c for c in BASE_COLUMNS if c not in header]
    if missing:
        raise SourceError(
            f"{origin}: not a CBOE Option EOD Summary layout: missing column(s) "
            f"{', '.join(missing)}"
        )
    present_calcs = [c for c in CALCS_COLUMNS if c in header]
    if present_calcs and len(present_calcs) != len(CALCS_COLUMNS):
        absent = [c for c in CALCS_COLUMNS if c not in header]
        raise SourceError(f"{origin}: incomplete calcs columns: missing {', '.join(absent)}")
    unknown = [c for c in header if c not in BASE_COLUMNS and c not in CALCS_COLUMNS]
    if unknown:
        raise SourceError(f"{origin}: unknown column(s) {', '.join(unknown)}: unknown file layout")
    _check_field_counts(data, origin, len(header))
    return header


def _check_field_counts(data: bytes, origin: str, width: int) -> None:
    """Every line has the header's number of fields (CBOE files quote no field). Fast
    path: one count of separators over the whole file; the line is located only when
    the total is off."""
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if data.count(b",") == lines * (width - 1) and b"\n\n" not in data:
        return
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip() and line.count(b",") + 1 != width:
            raise SourceError(
                f"{origin}: line {number} has {line.count(b',') + 1} fields, the header has "
                f"{width} (truncated or malformed line)"
            )


def _bad_value(frame: pl.DataFrame, checked: dict[str, pl.Expr]) -> tuple[str, int, str] | None:
    """(column, line, text) of the first value that did not parse, scanning all columns
    in one pass and locating the line only for a column that has one."""

    def failed(column: str, parsed: pl.Expr) -> pl.Expr:
        raw = pl.col(column)
        return raw.is_not_null() & (raw.str.strip_chars() != "") & parsed.is_null()

    flags = frame.select(failed(c, e).any().alias(c) for c, e in checked.items()).row(0)
    for (column, parsed), bad in zip(checked.items(), flags, strict=True):
        if bad:
            rows = frame.with_row_index("_line", offset=2).filter(failed(column, parsed))
            return column, int(rows["_line"][0]), str(rows[column][0])
    return None


def parse_eod_summary(data: bytes, origin: str) -> pl.DataFrame:
    """Typed rows of one file, or SourceError naming the line and column of the first
    value that is not a number or a ``YYYY-MM-DD`` date.

    Fast path: the CSV reader parses numbers itself. If anything fails to parse, the
    file is read again as text to find and name the first bad value.
    """
    header = _check_layout(data, origin)
    schema = {c: pl.String if c in TEXT_COLUMNS else pl.Float64 for c in header}
    try:
        typed = pl.read_csv(io.BytesIO(data), schema=schema, has_header=True)
    except pl.exceptions.PolarsError:
        return _parse_as_text(data, origin, header)
    dates = {c: pl.col(c).str.strptime(pl.Date, "%Y-%m-%d", strict=False) for c in DATE_COLUMNS}
    unparsed = pl.any_horizontal(pl.col(c).is_not_null() & dates[c].is_null() for c in DATE_COLUMNS)
    if typed.select(unparsed.any()).item():
        return _parse_as_text(data, origin, header)
    parsed = typed.with_columns(**dates)
    if parsed.is_empty():
        raise SourceError(f"{origin}: no data rows")
    return parsed


def _parse_as_text(data: bytes, origin: str, header: list[str]) -> pl.DataFrame:
    """Read every field as text, parse it, and raise naming the first bad value."""
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False, new_columns=header)
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{origin}: unreadable CSV: {str(exc).splitlines()[0]}") from exc
    if raw.is_empty():
        raise SourceError(f"{origin}: no data rows")
    typed: dict[str, pl.Expr] = {}
    for column in raw.columns:
        value = pl.col(column).str.strip_chars()
        if column in DATE_COLUMNS:
            typed[column] = value.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        elif column in TEXT_COLUMNS:
            typed[column] = value
        else:
            typed[column] = value.cast(pl.Float64, strict=False)
    checked = {c: e for c, e in typed.items() if c not in TEXT_COLUMNS or c in DATE_COLUMNS}
    found = _bad_value(raw, checked)
    if found:
        column, line, text = found
        kind = "a YYYY-MM-DD date" if column in DATE_COLUMNS else "a number"
        raise SourceError(f"{origin}: line {line}, column {column!r}: {text!r} is not {kind}")
    return raw.select(**typed)


def _underlying_mid(bid: str, ask: str) -> pl.Expr:
    both = (pl.col(bid) > 0) & (pl.col(ask) > 0)
    return pl.when(both).then((pl.col(bid) + pl.col(ask)) / 2)


def _snapshot(rows: pl.DataFrame, suffix: str, spot: pl.Expr) -> pl.DataFrame:
    eod = suffix == "eod"
    traded = pl.col("trade_volume") > 0
    ts = pl.col(f"_ts_{suffix}")
    if eod:  # index options (SPX, SPXW, VIX, ...) trade until 15 minutes after the close
        extended = pl.col("root").str.to_uppercase().is_in(list(INDEX_ROOTS))
        ts = pl.when(extended).then(ts + INDEX_CLOSE_EXTENSION).otherwise(ts)
    return rows.select(
        pl.col("underlying"),
        pl.col("quote_date").alias("date"),
        pl.col("contract_id"),
        pl.col("expiration").alias("expiry"),
        pl.col("strike"),
        pl.col("right"),
        pl.col("exercise_style"),
        pl.col("settlement"),
        pl.col("multiplier"),
        pl.col(f"bid_{suffix}").alias("bid"),
        pl.col(f"ask_{suffix}").alias("ask"),
        pl.col(f"bid_size_{suffix}").cast(pl.Int64, strict=False).alias("bid_size"),
        pl.col(f"ask_size_{suffix}").cast(pl.Int64, strict=False).alias("ask_size"),
        (pl.when(traded).then(pl.col("close")) if eod else pl.lit(None, pl.Float64)).alias("last"),
        (
            pl.col("trade_volume").cast(pl.Int64, strict=False) if eod else pl.lit(None, pl.Int64)
        ).alias("volume"),
        pl.col("open_interest").cast(pl.Int64, strict=False),
        spot.alias("underlying_price"),
        ts.alias("ts_event"),
        ts.alias("ts_init"),
        pl.lit(SOURCE_NAME).alias("source"),
    )


def _snapshot_times(days: list[date], origin: str, calendar: ExchangeCalendar) -> pl.DataFrame:
    """The "1545" snapshot and the session close of each quote date (UTC); SourceError
    for a date that is not a session. CBOE takes the "1545" columns 15 minutes before
    the close: 15:45 New York, 12:45 on an early close (13:00)."""
    rows = []
    for day in days:
        if not calendar.is_session(day):
            raise SourceError(f"{origin}: quote_date {day} is not an exchange session")
        close = calendar.session_on_or_before(day).close
        rows.append({"quote_date": day, "_ts_1545": close - BEFORE_CLOSE_1545,
                     "_ts_eod": close})  # fmt: skip
    utc = OPTION_QUOTES.schema["ts_event"]
    return pl.DataFrame(rows, schema={"quote_date": pl.Date, "_ts_1545": utc, "_ts_eod": utc})


def _with_contract_columns(frame: pl.DataFrame) -> pl.DataFrame:
    root = pl.col("root").str.to_uppercase()
    right = pl.col("option_type").str.to_uppercase().str.slice(0, 1)
    styles = {root_: style for root_, (style, _) in INDEX_ROOTS.items()}
    settlements = {root_: settle for root_, (_, settle) in INDEX_ROOTS.items()}
    return frame.with_columns(
        pl.col("underlying_symbol").str.strip_prefix("^").str.to_uppercase().alias("underlying"),
        right.alias("right"),
        root.replace_strict(styles, default="american").alias("exercise_style"),
        root.replace_strict(settlements, default="PM").alias("settlement"),
        # a non-standard deliverable (after a special dividend, a spin-off, ...) is not
        # 100 shares: no multiplier, so the row is quarantined until deliverables are modelled
        pl.when(pl.col("delivery_code").fill_null("").str.strip_chars() == "")
        .then(pl.lit(100.0))
        .otherwise(pl.lit(None, pl.Float64))
        .alias("multiplier"),
        pl.concat_str(
            root,
            pl.col("expiration").dt.strftime("%y%m%d"),
            right,
            (pl.col("strike") * 1000)
            .round()
            .cast(pl.Int64, strict=False)
            .cast(pl.String)
            .str.zfill(8),
        ).alias("contract_id"),
    )


def batches_from_rows(
    rows: pl.DataFrame, origin: str, calendar: ExchangeCalendar
) -> list[SourceBatch]:
    """One batch per (underlying, quote date), each with the 15:45 and close snapshots."""
    if rows["underlying_symbol"].null_count() or rows["quote_date"].null_count():
        raise SourceError(f"{origin}: a row has no underlying_symbol or quote_date")
    unknown_index = rows.filter(
        pl.col("underlying_symbol").str.starts_with("^")
        & ~pl.col("root").str.to_uppercase().is_in(list(INDEX_ROOTS))
    )
    if not unknown_index.is_empty():
        root = unknown_index["root"][0]
        raise SourceError(
            f"{origin}: index option root {root!r} is not in the known index roots "
            "(its exercise style and settlement are unknown): add it to cboe.INDEX_ROOTS"
        )
    frame = _with_contract_columns(rows)
    for underlying in frame["underlying"].unique().to_list():
        try:
            validate_symbol(underlying)
        except ConfigError as exc:
            raise SourceError(f"{origin}: {exc}") from None
    times = _snapshot_times(sorted(frame["quote_date"].unique().to_list()), origin, calendar)
    frame = frame.join(times, on="quote_date", how="left", maintain_order="left")
    spot_1545 = (
        pl.when(pl.col("active_underlying_price_1545") > 0)
        .then(pl.col("active_underlying_price_1545"))
        .otherwise(_underlying_mid("underlying_bid_1545", "underlying_ask_1545"))
    )
    quotes = pl.concat(
        [
            _snapshot(frame.filter(pl.col("_ts_1545").is_not_null()), "1545", spot_1545),
            _snapshot(frame, "eod", _underlying_mid("underlying_bid_eod", "underlying_ask_eod")),
        ]
    )
    parts = quotes.partition_by("underlying", "date", as_dict=True, maintain_order=True)
    # the file's name (and member), not its folder: a corrected file re-published by
    # CBOE under the same name replaces the first one's rows wherever it was saved
    batch_id = f"cboe:{Path(origin).name}"
    return [
        SourceBatch(str(underlying), day, {OPTION_QUOTES.name: part}, origin, batch_id)
        for (underlying, day), part in parts.items()
    ]


def load_file(path: Path, calendar: ExchangeCalendar | None = None) -> list[SourceBatch]:
    """Every batch of one file (all of its CSV members), parsed and checked in full first."""
    calendar = calendar or exchange_calendar()
    batches: list[SourceBatch] = []
    for origin, data in read_members(path):
        batches.extend(batches_from_rows(parse_eod_summary(data, origin), origin, calendar))
    return batches
