"""The feature build on a real lake: incremental days, and point-in-time end to end."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from data_lake.catalog import query
from data_lake.ingest import write_batches
from data_lake.lake import Lake
from data_lake.sources.synthetic import SyntheticConfig, generate
from tasks.feature_build import FeatureInputs, build_underlying, days_to_build

INPUTS = FeatureInputs(
    rate_series="PCREDIT8",
    rate_fallback=0.04,
    publication_lag_days=1,
    fallback_div_yield=0.013,
    horizons=(1, 5),
)
START, CUT, END = date(2024, 1, 2), date(2024, 2, 15), date(2024, 3, 15)


def _ingest(lake: Lake, start: date, end: date, seed: int = 7) -> None:
    batches = list(generate("SPY", start, end, SyntheticConfig(seed=seed)))
    write_batches(lake, batches, mode="replace")


def test_days_to_build_is_the_new_days_and_the_last_built_one() -> None:
    days = [date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    assert days_to_build(days, [], None, None, False) == days
    assert days_to_build(days, days[:3], None, None, False) == days[2:]
    assert days_to_build(days, days, None, None, True) == days
    assert days_to_build(days, days[:3], days[3], None, True) == days[3:]


def test_incremental_build_matches_a_full_build(tmp_path: Path) -> None:
    once, twice = Lake(tmp_path / "once"), Lake(tmp_path / "twice")
    _ingest(once, START, END)
    first = build_underlying(once, "SPY", INPUTS)
    assert first["days"] > 40 and first["rows"]["labels"] > 0
    _ingest(twice, START, CUT)
    build_underlying(twice, "SPY", INPUTS)
    _ingest(twice, CUT, END)
    again = build_underlying(twice, "SPY", INPUTS)
    assert again["first_day"] == CUT.isoformat()  # only the new days (and the last built)
    for table in ("surface_features", "labels"):
        sql = f"SELECT * EXCLUDE (ts_init) FROM {table} ORDER BY ALL"
        assert query(once, sql).equals(query(twice, sql)), table


def test_features_before_a_time_ignore_everything_after_it(tmp_path: Path) -> None:
    """Point-in-time, end to end: perturb every quote and bar after CUT (another seed)
    and add more days: every feature as of a snapshot before CUT is bit-identical,
    and so is every label whose horizon ends before CUT."""
    base, other = Lake(tmp_path / "base"), Lake(tmp_path / "other")
    _ingest(base, START, END)
    _ingest(other, START, END)
    _ingest(other, CUT, date(2024, 4, 30), seed=99)  # a different future
    for lake in (base, other):
        build_underlying(lake, "SPY", INPUTS)
    cut = f"'{CUT.isoformat()}'"
    for sql in (
        f"SELECT * FROM option_analytics WHERE date < {cut} ORDER BY contract_id, ts_event",
        f"SELECT * FROM surface_features WHERE date < {cut} ORDER BY ts_event",
        f"SELECT * FROM labels WHERE ts_end < TIMESTAMPTZ {cut} ORDER BY ALL",
    ):
        before, after = query(base, sql), query(other, sql)
        assert before.height > 0 and before.equals(after), sql
    changed = query(other, f"SELECT count(*) FROM surface_features WHERE date >= {cut}").item()
    assert changed > 0
    # the future did change: the features after the cut differ between the two lakes
    sql = f"SELECT atm_iv_30d FROM surface_features WHERE date >= {cut} ORDER BY ts_event"
    assert not query(base, sql).head(5).equals(query(other, sql).head(5))


def test_option_analytics_are_solved_for_nearly_every_quote(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    _ingest(lake, START, date(2024, 1, 12))
    build_underlying(lake, "SPY", INPUTS)
    statuses = query(
        lake, "SELECT solver_status, count(*) n FROM option_analytics GROUP BY 1 ORDER BY 2 DESC"
    )
    counts = dict(statuses.iter_rows())
    assert counts["ok"] / sum(counts.values()) > 0.97
    assert set(counts) <= {"ok", "no_price", "expired", "below_intrinsic", "no_time_value"}
    surface = query(lake, "SELECT atm_iv_30d, rv_cc_21d FROM surface_features")
    assert surface["atm_iv_30d"].is_between(0.05, 1.0).all()
    assert surface["rv_cc_21d"].null_count() == surface.height  # fewer than 21 days of bars
    assert pl.Series(surface["atm_iv_30d"]).is_finite().all()


def test_features_read_one_source_per_snapshot_by_preference(tmp_path: Path) -> None:
    """Two sources with the same snapshot (a vendor file and a poll at the close) are
    both stored; the features read the preferred one's chain, never the two mixed."""
    from dataclasses import replace

    from data_lake.lake import read_partition, write_partition
    from data_lake.schemas import OPTION_QUOTES

    lake = Lake(tmp_path / "lake")
    _ingest(lake, date(2024, 1, 2), date(2024, 1, 10))
    day = date(2024, 1, 5)
    synthetic = read_partition(lake, OPTION_QUOTES, "SPY", day)
    poll = synthetic.head(400).with_columns(
        pl.lit("yfinance").alias("source"), pl.col("underlying_price") * 1.01
    )
    write_partition(lake, OPTION_QUOTES, poll, "SPY", day)
    assert read_partition(lake, OPTION_QUOTES, "SPY", day).height == synthetic.height + 400

    def built(preference: tuple[str, ...]) -> tuple[list[str], int, float]:
        build_underlying(lake, "SPY", replace(INPUTS, source_preference=preference), full=True)
        analytics = query(
            lake, "SELECT source, count(*) n, max(underlying_price) spot FROM option_analytics "
            "WHERE date = ? GROUP BY ALL", [day],
        )  # fmt: skip
        spot = query(lake, "SELECT underlying_price FROM surface_features WHERE date = ?", [day])
        assert analytics["spot"].to_list() == spot["underlying_price"].to_list()
        return analytics["source"].to_list(), int(analytics["n"].sum()), float(spot.item())

    sources, rows, spot = built(INPUTS.source_preference)  # default: yfinance before synthetic
    assert (sources, rows) == (["yfinance"], 400)
    assert spot == pytest.approx(synthetic["underlying_price"][0] * 1.01)
    sources, rows, spot = built(("synthetic",))
    assert (sources, rows) == (["synthetic"], synthetic.height)
    assert spot == pytest.approx(synthetic["underlying_price"][0])
