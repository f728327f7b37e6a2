"""CBOE DataShop import benchmark: volflow's Polars reader against a pandas reader.

Run::

    python benchmarks/bench_import.py [--days N] [--underlyings SPY,QQQ]

The input is a CBOE "Option EOD Summary" file (calcs layout) written from the
seeded synthetic market: every option quote of the close snapshot becomes one
CSV row (the 15:45 columns repeat the close quotes; the numbers do not matter
for parsing cost). Timed, on the same bytes in the same run:

* volflow: ``parse_eod_summary`` + ``batches_from_rows`` (layout and line
  checks, typed parse with the first bad value located, two snapshots per row,
  OCC ids, exercise style and settlement per root) -> lake-schema frames;
* volflow + write: the above plus ``write_batches`` into a temporary lake
  (quality checks, quarantine, atomic Parquet);
* BASELINE, a pandas reader doing the same mapping the way a notebook would:
  ``pd.read_csv`` with inferred types, ``pd.to_datetime`` on the date columns,
  the two snapshots built with ``DataFrame.assign``, OCC ids with ``.str``
  methods and ``.map`` for the root table (vectorized pandas, no row loops).

Read the ratios: the machine has 2 shared cores, so absolute times are noisy.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import polars as pl
from bench_ingest import median_seconds  # run as a script: benchmarks/ is on the path

from data_lake.calendar import exchange_calendar
from data_lake.ingest import write_batches
from data_lake.lake import Lake
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.cboe import (
    BASE_COLUMNS,
    CALCS_COLUMNS,
    INDEX_ROOTS,
    batches_from_rows,
    parse_eod_summary,
)
from data_lake.sources.synthetic import SyntheticConfig, generate

START = date(2024, 1, 2)
HEADER = [*BASE_COLUMNS[:17], "implied_underlying_price_1545", BASE_COLUMNS[17]]
HEADER += [c for c in CALCS_COLUMNS if c != "implied_underlying_price_1545"] + list(
    BASE_COLUMNS[18:]
)


def cboe_csv(underlyings: Sequence[str], days: int) -> bytes:
    """A CBOE EOD Summary file with the synthetic market's close quotes."""
    end = exchange_calendar().sessions(START, date(2025, 12, 31))[days - 1].day
    frames = []
    for underlying in underlyings:
        for batch in generate(underlying, START, end, SyntheticConfig()):
            q = batch.frames[OPTION_QUOTES.name]
            spot = pl.col("underlying_price")
            frames.append(
                q.select(
                    pl.lit(underlying).alias("underlying_symbol"),
                    pl.col("date").dt.strftime("%Y-%m-%d").alias("quote_date"),
                    pl.lit(underlying).alias("root"),
                    pl.col("expiry").dt.strftime("%Y-%m-%d").alias("expiration"),
                    pl.col("strike"),
                    pl.col("right").alias("option_type"),
                    *(
                        pl.col("last").fill_null(0).alias(c)
                        for c in ("open", "high", "low", "close")
                    ),
                    pl.col("volume").alias("trade_volume"),
                    pl.col("bid_size").alias("bid_size_1545"),
                    pl.col("bid").alias("bid_1545"),
                    pl.col("ask_size").alias("ask_size_1545"),
                    pl.col("ask").alias("ask_1545"),
                    (spot - 0.01).alias("underlying_bid_1545"),
                    (spot + 0.01).alias("underlying_ask_1545"),
                    spot.alias("implied_underlying_price_1545"),
                    spot.alias("active_underlying_price_1545"),
                    *(pl.lit(0.1).alias(c) for c in CALCS_COLUMNS[1:]),
                    pl.col("bid_size").alias("bid_size_eod"),
                    pl.col("bid").alias("bid_eod"),
                    pl.col("ask_size").alias("ask_size_eod"),
                    pl.col("ask").alias("ask_eod"),
                    (spot - 0.01).alias("underlying_bid_eod"),
                    (spot + 0.01).alias("underlying_ask_eod"),
                    pl.col("last").fill_null(0).alias("vwap"),
                    pl.col("open_interest"),
                    pl.lit("").alias("delivery_code"),
                ).select(HEADER)
            )
    buffer = io.BytesIO()
    pl.concat(frames).write_csv(buffer)
    return buffer.getvalue()


def volflow_reader(data: bytes) -> int:
    batches = batches_from_rows(
        parse_eod_summary(data, "bench.csv"), "bench.csv", exchange_calendar()
    )
    return sum(b.frames[OPTION_QUOTES.name].height for b in batches)


def volflow_reader_and_write(data: bytes, workdir: Path) -> int:
    batches = batches_from_rows(
        parse_eod_summary(data, "bench.csv"), "bench.csv", exchange_calendar()
    )
    lake = Lake(Path(tempfile.mkdtemp(dir=workdir)))
    return sum(w.rows_written + w.quarantined for w in write_batches(lake, batches))


def pandas_reader(data: bytes) -> int:
    """The same mapping in idiomatic, vectorized pandas (the baseline)."""
    df = pd.read_csv(io.BytesIO(data))
    df["quote_date"] = pd.to_datetime(df["quote_date"], format="%Y-%m-%d")
    df["expiration"] = pd.to_datetime(df["expiration"], format="%Y-%m-%d")
    root = df["root"].str.upper()
    right = df["option_type"].str.upper().str[0]
    df["contract_id"] = (
        root + df["expiration"].dt.strftime("%y%m%d") + right
        + (df["strike"] * 1000).round().astype("int64").astype(str).str.zfill(8)
    )  # fmt: skip
    df["exercise_style"] = root.map({r: s for r, (s, _) in INDEX_ROOTS.items()}).fillna("american")
    df["settlement"] = root.map({r: s for r, (_, s) in INDEX_ROOTS.items()}).fillna("PM")
    df["underlying"] = df["underlying_symbol"].str.lstrip("^").str.upper()
    snapshots = []
    for suffix in ("1545", "eod"):
        snap = df[["underlying", "quote_date", "contract_id", "expiration", "strike"]].assign(
            right=right,
            exercise_style=df["exercise_style"],
            settlement=df["settlement"],
            bid=df[f"bid_{suffix}"],
            ask=df[f"ask_{suffix}"],
            bid_size=df[f"bid_size_{suffix}"],
            ask_size=df[f"ask_size_{suffix}"],
            open_interest=df["open_interest"],
            underlying_price=(df[f"underlying_bid_{suffix}"] + df[f"underlying_ask_{suffix}"]) / 2,
        )
        snapshots.append(snap)
    return len(pd.concat(snapshots, ignore_index=True))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=20, help="sessions in the file")
    parser.add_argument("--underlyings", default="SPY,QQQ")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    underlyings = [u.strip().upper() for u in args.underlyings.split(",") if u.strip()]
    data = cboe_csv(underlyings, args.days)
    rows = data.count(b"\n") - 1
    print(
        f"bench_import: CBOE EOD Summary, {len(underlyings)} underlyings x {args.days} sessions,"
        f" {rows:,} CSV rows, {len(data) / 1e6:.1f} MB; median of {args.repeats}"
    )
    assert volflow_reader(data) == pandas_reader(data) == 2 * rows  # two snapshots per row
    with tempfile.TemporaryDirectory(prefix="volflow-bench-import-") as tmp:
        timed = {
            "volflow reader (parse + checks + map)": lambda: volflow_reader(data),
            "volflow reader + lake write": lambda: volflow_reader_and_write(data, Path(tmp)),
            "baseline pandas reader (same mapping)": lambda: pandas_reader(data),
        }
        results = [(name, median_seconds(fn, args.repeats)) for name, fn in timed.items()]
    baseline = results[-1][1]
    print(f"{'reader':<40} {'seconds':>8} {'CSV rows/s':>12} {'vs pandas':>10}")
    for name, seconds in results:
        print(f"{name:<40} {seconds:>8.3f} {rows / seconds:>12,.0f} {baseline / seconds:>9.2f}x")


if __name__ == "__main__":
    main()
