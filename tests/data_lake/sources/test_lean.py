"""LEAN daily bars and factor files: raw and split-adjusted history across AAPL's 7:1 split."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from data_lake.catalog import query
from data_lake.errors import SourceError
from data_lake.ingest import write_batches
from data_lake.lake import Lake
from data_lake.schemas import CORPORATE_ACTIONS, UNDERLYING_BARS
from data_lake.sources.lean import load_underlying
from tests.conftest import LEAN_SAMPLE

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "lean"
SHARED = LEAN_SAMPLE


def _lake_with(root: Path, tmp_path: Path, symbol: str = "AAPL", **kw: date) -> Lake:
    lake = Lake(tmp_path / "lake")
    writes = write_batches(lake, load_underlying(root, symbol, **kw))
    assert sum(w.quarantined for w in writes) == 0
    return lake


def test_bars_are_raw_dollars_stamped_at_the_close() -> None:
    batches = load_underlying(FIXTURE, "aapl", date(2014, 6, 5), date(2014, 6, 9))
    bars = [b.frames[UNDERLYING_BARS.name] for b in batches if UNDERLYING_BARS.name in b.frames]
    assert [b["date"][0] for b in bars] == [date(2014, 6, 5), date(2014, 6, 6), date(2014, 6, 9)]
    first = bars[0].row(0, named=True)
    assert (first["open"], first["close"], first["volume"]) == (646.25, 647.35, 10445282)
    assert first["ts_event"] == datetime(2014, 6, 5, 20, 0, tzinfo=UTC)  # 16:00 New York (EDT)
    assert first["underlying"] == "AAPL" and first["source"] == "lean"


def test_factor_rows_become_dated_corporate_actions() -> None:
    batches = load_underlying(FIXTURE, "AAPL", date(2014, 6, 5), date(2014, 6, 9))
    factors = {b.day: b.frames[CORPORATE_ACTIONS.name].row(0, named=True)
               for b in batches if CORPORATE_ACTIONS.name in b.frames}  # fmt: skip
    assert factors[date(2014, 6, 6)]["split_factor"] == pytest.approx(1 / 28, rel=1e-5)
    assert factors[date(2014, 8, 6)]["split_factor"] == 0.25
    assert factors[date(2050, 12, 31)]["price_factor"] == 1.0


def test_the_split_shows_in_raw_bars_and_vanishes_in_adjusted_ones(tmp_path: Path) -> None:
    lake = _lake_with(FIXTURE, tmp_path, start=date(2014, 5, 1), end=date(2014, 7, 31))
    rows = query(
        lake,
        "SELECT date, close_raw, close FROM underlying_bars_adjusted "
        "WHERE date IN ('2014-06-06', '2014-06-09') ORDER BY date",
    ).rows()
    (_, raw_before, adj_before), (_, raw_after, adj_after) = rows
    assert raw_after / raw_before == pytest.approx(93.70 / 645.57)  # 7:1 in the raw history
    # adjusted: the day's real return (93.70 against 645.57 / 7, +1.6%), no 86% drop
    assert adj_after / adj_before == pytest.approx(93.70 / (645.57 / 7), rel=1e-5)


def test_adjusted_returns_have_no_split_sized_jump(tmp_path: Path) -> None:
    lake = _lake_with(FIXTURE, tmp_path)
    returns = query(
        lake,
        "SELECT close / lag(close) OVER (ORDER BY date) - 1 AS r FROM underlying_bars_adjusted",
    )["r"].drop_nulls()
    assert returns.abs().max() < 0.1


def test_missing_symbol_and_corrupt_zip_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"daily/nope\.zip: no such file"):
        load_underlying(FIXTURE, "NOPE")
    daily = tmp_path / "equity" / "usa" / "daily"
    daily.mkdir(parents=True)
    (daily / "aapl.zip").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(SourceError, match=r"aapl\.zip: corrupt zip file"):
        load_underlying(tmp_path, "AAPL")


def test_unparseable_bar_names_the_line(tmp_path: Path) -> None:
    daily = tmp_path / "equity" / "usa" / "daily"
    daily.mkdir(parents=True)
    with zipfile.ZipFile(daily / "aapl.zip", "w") as archive:
        archive.writestr("aapl.csv", "20140605 00:00,1,2,1,2,10\n2014-06-06 00:00,1,2,1,2,10\n")
    with pytest.raises(
        SourceError, match=r"line 2, column 'time': '2014-06-06 00:00' is not YYYYMMDD"
    ):
        load_underlying(tmp_path, "AAPL")


@pytest.mark.lean
@pytest.mark.slow
@pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"the full LEAN sample is absent ({SHARED}; set VOLFLOW_LEAN_DATA)"
)
def test_full_sample_aapl_and_spy_adjust_away_every_split(tmp_path: Path) -> None:
    """AAPL splits 4:1 on 2020-08-31; SPY has dividends only. (GOOG is left out:
    before 2014-04-03 LEAN's goog series is another share class, joined by a map file,
    which this importer does not apply yet.)"""
    for symbol in ("AAPL", "SPY"):
        lake = _lake_with(
            SHARED, tmp_path / symbol, symbol, start=date(2020, 6, 1), end=date(2020, 10, 30)
        )
        count = query(lake, "SELECT count(*) AS n FROM underlying_bars")["n"][0]
        assert count == 108  # every session of 2020-06-01 .. 2020-10-30
        jumps = query(
            lake,
            "SELECT max(abs(close / lag_close - 1)) AS m FROM (SELECT close, "
            "lag(close) OVER (ORDER BY date) AS lag_close FROM underlying_bars_adjusted)",
        )["m"][0]
        assert jumps < 0.11  # the 4:1 split (-75% raw) is gone; real days moved < 11%
