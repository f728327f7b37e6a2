"""Our implied volatilities against LEAN's own, on the real AAPL and GOOG chains.

Run::

    python benchmarks/compare_vendor_iv.py [--data ../shared/data/lean]

Ingests LEAN's daily AAPL (2014-06) and GOOG (2015-12) chains into a temporary lake
(universe files joined with the daily quote/trade bars; the underlying's raw daily
close as the spot), builds the features, and compares ``option_analytics.iv`` with
``option_vendor_analytics.vendor_iv`` for every contract both have (the vendor's
IV of 0, "not computed", is left out). Prints the distribution of the difference
(ours - vendor, in vol points) overall and by moneyness and right.

What to expect: LEAN's universe prices are last trades (often hours older than the
close used as spot) and LEAN's model is its own; the differences measure data and
model conventions as much as solvers. Ours is European BSM; the American column (if
``features.american`` is available) solves the same prices with Barone-Adesi-Whaley.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_lake.catalog import query
from data_lake.ingest import write_batches
from data_lake.lake import Lake
from data_lake.sources.lean import load_underlying
from tasks.feature_build import FeatureInputs, build_underlying

PERIODS = {"AAPL": ("2014-06-02", "2014-06-16"), "GOOG": ("2015-12-22", "2015-12-31")}


def compared(lake: Lake) -> pl.DataFrame:
    return query(
        lake,
        """
        SELECT a.underlying, a.date, a."right", a.strike, a.underlying_price, a.price,
               a.t_years, a.rate, a.div_yield, a.iv, v.vendor_iv,
               (a.iv - v.vendor_iv) * 100 AS diff_vol_points,
               CASE WHEN a.log_moneyness < -0.1 THEN 'k<-0.1'
                    WHEN a.log_moneyness > 0.1 THEN 'k>0.1' ELSE '|k|<=0.1' END AS moneyness
        FROM option_analytics a
        JOIN option_vendor_analytics v USING (underlying, date, contract_id, ts_event)
        WHERE a.solver_status = 'ok' AND v.vendor_iv > 0
        """,
    )


def describe(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    diff = pl.col("diff_vol_points")
    return (
        frame.group_by(by)
        .agg(
            pl.len().alias("n"),
            (pl.col("iv").median() * 100).round(1).alias("ours_median"),
            (pl.col("vendor_iv").median() * 100).round(1).alias("vendor_median"),
            diff.median().round(2).alias("median"),
            diff.quantile(0.1).round(2).alias("p10"),
            diff.quantile(0.9).round(2).alias("p90"),
            (diff.abs() < 1).mean().round(3).alias("share_within_1pt"),
        )
        .sort(by)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lean"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        for symbol, (start, end) in PERIODS.items():
            batches = load_underlying(
                args.data, symbol, pl.Series([start]).str.to_date()[0],
                pl.Series([end]).str.to_date()[0], options="daily", problems=[],
            )  # fmt: skip
            write_batches(lake, batches, mode="upsert")
            inputs = FeatureInputs("PCREDIT8", 0.0025, 1, 0.0, (1,))
            build_underlying(lake, symbol, inputs, full=True)
        frame = compared(lake)
        with pl.Config(tbl_rows=40, tbl_cols=-1, tbl_width_chars=160):
            print(f"contracts with both IVs: {frame.height:,}\n")
            print("ours (American, BAW) - vendor, vol points (IV medians in vol points):")
            print(describe(frame, ["underlying"]))
            print(describe(frame, ["underlying", "right", "moneyness"]))


if __name__ == "__main__":
    main()
