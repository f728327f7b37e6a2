"""Full feature rebuild throughput on a multi-year synthetic lake.

Run::

    python benchmarks/bench_features.py [--underlyings SPY,QQQ] [--start 2023-01-03]
        [--end 2024-12-31]

Builds a synthetic lake (not timed), then times ``tasks.feature_build.build_underlying``
with ``full=True`` per underlying: reading the quote partitions, option analytics
(prices, moneyness, time, rates, dividend yields, IV and Greeks), their partition
writes, surface features, the time-series features over the whole history, and the
labels. Reports option rows/s end to end, and the share of the time spent in the IV
and Greeks kernel (measured separately on the same rows).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_lake.catalog import query
from data_lake.ingest import chunked, write_batches
from data_lake.lake import Lake
from data_lake.sources.synthetic import SyntheticConfig, generate
from features.greeks import implied_vol_and_greeks
from tasks.feature_build import FeatureInputs, build_underlying

INPUTS = FeatureInputs("PCREDIT8", 0.04, 1, 0.013, (1, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--underlyings", default="SPY,QQQ")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 3))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 12, 31))
    args = parser.parse_args()
    underlyings = args.underlyings.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        started = time.perf_counter()
        for underlying in underlyings:
            for chunk in chunked(generate(underlying, args.start, args.end, SyntheticConfig()), 20):
                write_batches(lake, chunk)
        quotes = query(lake, "SELECT count(*) FROM option_quotes").item()
        print(
            f"bench_features: {','.join(underlyings)} {args.start}..{args.end}: "
            f"{quotes:,} option rows (lake built in {time.perf_counter() - started:.0f} s)\n"
        )
        implied_vol_and_greeks(
            query(
                lake,
                "SELECT 1.0 AS price, 1.0 AS spot, 1.0 AS strike, "
                "0.1 AS t_years, 0.0 AS rate, 0.0 AS div_yield, 'C' AS "
                '"right"',
            )
        )  # warm the kernel: compiling is not timed
        total_rows, total_seconds = 0, 0.0
        for underlying in underlyings:
            started = time.perf_counter()
            summary = build_underlying(lake, underlying, INPUTS, full=True)
            seconds = time.perf_counter() - started
            rows = summary["rows"]["option_analytics"]
            total_rows, total_seconds = total_rows + rows, total_seconds + seconds
            print(
                f"{underlying}: {summary['days']} days, {rows:,} option rows in {seconds:.1f} s "
                f"= {rows / seconds:,.0f} rows/s; surface {summary['rows']['surface_features']}, "
                f"labels {summary['rows']['labels']}"
            )
        kernel_input = query(
            lake,
            'SELECT price, underlying_price AS spot, strike, t_years, rate, div_yield, "right" '
            "FROM option_analytics WHERE price IS NOT NULL",
        )
        implied_vol_and_greeks(kernel_input.head(1000))  # compiled (or loaded) already
        runs = []
        for _ in range(3):  # the best of 3: the first call after a build pays page faults
            started = time.perf_counter()
            implied_vol_and_greeks(kernel_input)
            runs.append(time.perf_counter() - started)
        kernel = min(runs)
        print(
            f"\nfull rebuild: {total_rows:,} option rows in {total_seconds:.1f} s = "
            f"{total_rows / total_seconds:,.0f} option rows/s end to end"
        )
        print(
            f"IV + Greeks kernel alone on the same {kernel_input.height:,} rows: {kernel:.2f} s "
            f"(best of 3; first {runs[0]:.2f} s), {100 * kernel / total_seconds:.0f}% of the "
            "rebuild; the build solves each row three times (mid, bid, ask)"
        )


if __name__ == "__main__":
    main()
