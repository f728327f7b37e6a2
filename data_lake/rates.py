"""Risk-free rate series: import (LEAN ``interest-rate.csv``, FRED CSV), storage, as-of lookup.

A series is small and revised as a whole, so it is a reference table rather than a
partitioned one: ``<lake>/rates/series=<NAME>/part-0.parquet``, replaced atomically on
each import. Rates are stored as decimals (4.25% -> 0.0425) by the date they took
effect. ``rates_asof`` gives each snapshot date the latest rate on or before it, or
the configured fallback where the series has no value yet.

Accepted files: LEAN's ``DATE,PCREDIT8`` (percent, one row per change) and FRED's
``DATE,<SERIES>`` or ``observation_date,<SERIES>`` (percent; "." marks a missing day).
"""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path

import polars as pl

from data_lake.errors import SourceError
from data_lake.lake import Lake, atomic_write_parquet, read_parquet_file

RATES_TABLE = "rates"
RATE_SCHEMA = pl.Schema({"date": pl.Date, "rate": pl.Float64, "source": pl.String})
_SERIES = re.compile(r"^[A-Z0-9_]{1,32}$")


def series_file(lake: Lake, series: str) -> Path:
    if not _SERIES.match(series):
        raise SourceError(f"invalid rate series name {series!r}: use letters, digits and _")
    return lake.root / RATES_TABLE / f"series={series}" / "part-0.parquet"


def parse_rate_csv(data: bytes, origin: str) -> tuple[str, pl.DataFrame]:
    """(series name from the header, rows as decimals by date) of a LEAN or FRED file."""
    text = data.decode("utf-8", errors="replace")
    header = [c.strip() for c in text.split("\n", 1)[0].split(",")]
    if len(header) != 2 or header[0].lower() not in ("date", "observation_date"):
        raise SourceError(
            f"{origin}: not a rate series: expected a header 'DATE,<SERIES>' "
            f"(LEAN interest-rate.csv or FRED), found {','.join(header)!r}"
        )
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False, new_columns=["date", "value"])
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{origin}: unreadable CSV: {str(exc).splitlines()[0]}") from exc
    rows = raw.with_row_index("line", offset=2).filter(pl.col("value").str.strip_chars() != ".")
    parsed = rows.with_columns(
        pl.col("date")
        .str.strip_chars()
        .str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        .alias("day"),
        (pl.col("value").str.strip_chars().cast(pl.Float64, strict=False) / 100)
        .round(12)
        .alias("rate"),
    )
    bad = parsed.filter(
        pl.col("day").is_null() | pl.col("rate").is_null() | ~pl.col("rate").is_finite()
    )
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise SourceError(
            f"{origin}: line {row['line']}: {row['date']!r},{row['value']!r} is not a "
            "YYYY-MM-DD date and a rate in percent"
        )
    if parsed.is_empty():
        raise SourceError(f"{origin}: no rate values")
    if parsed.get_column("day").is_duplicated().any():
        raise SourceError(f"{origin}: a date appears twice")
    if (parsed.get_column("rate").abs() > 0.5).any():
        raise SourceError(f"{origin}: a rate above 50%: is the file in percent?")
    series = re.sub(r"[^A-Z0-9_]", "_", header[1].upper())
    source = "lean" if header[0] == "DATE" and series == "PCREDIT8" else "fred"
    frame = parsed.select(
        pl.col("day").alias("date"), pl.col("rate"), pl.lit(source).alias("source")
    ).sort("date")
    return series, frame


def import_rate_file(lake: Lake, path: Path, series: str | None = None) -> tuple[str, int]:
    """Parse ``path`` in full, then replace the series atomically: (series, rows)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    found, frame = parse_rate_csv(data, str(path))
    name = (series or found).upper()
    lake.ensure_writable()
    atomic_write_parquet(lake, frame, series_file(lake, name))
    return name, frame.height


def read_series(lake: Lake, series: str) -> pl.DataFrame:
    path = series_file(lake, series)
    if not path.exists():
        return pl.DataFrame(schema=RATE_SCHEMA)
    return read_parquet_file(path).select(RATE_SCHEMA.names())


def rates_asof(
    series: pl.DataFrame, days: list[date], fallback: float, publication_lag_days: int = 0
) -> pl.DataFrame:
    """Each of ``days`` with the latest rate known on it: dated on or before the day
    minus ``publication_lag_days`` (FRED's daily H.15 values are published the next
    business day: a lag of 1 keeps a snapshot from using a rate not yet released).
    ``fallback`` (and ``rate_source`` "fallback") before the series starts or when it
    is empty."""
    if publication_lag_days < 0:
        raise ValueError(f"publication_lag_days must be >= 0, not {publication_lag_days}")
    wanted = pl.DataFrame({"date": days}, schema={"date": pl.Date}).with_row_index("_order")
    known = series.with_columns(pl.col("date") + pl.duration(days=publication_lag_days))
    joined = wanted.sort("date").join_asof(
        known.sort("date").select("date", "rate", pl.col("source").alias("rate_source")),
        on="date",
        strategy="backward",
    )
    return (
        joined.with_columns(
            pl.col("rate").fill_null(fallback),
            pl.col("rate_source").fill_null("fallback"),
        )
        .sort("_order")
        .drop("_order")
    )
