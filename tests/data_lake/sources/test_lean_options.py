"""LEAN option chains: universe files, quote/trade/open-interest zips, the AAPL split,
vendor IV/Greeks, minute snapshots, and bad files that fail clearly."""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_lake.calendar import exchange_calendar
from data_lake.catalog import query
from data_lake.errors import SourceError
from data_lake.ingest import write_batches
from data_lake.lake import Lake
from data_lake.schemas import OPTION_QUOTES, OPTION_VENDOR_ANALYTICS, UNDERLYING_BARS
from data_lake.sources import lean_options
from data_lake.sources.lean import load_underlying
from tests.conftest import LEAN_SAMPLE

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "lean"
JUNE_9 = date(2014, 6, 9)


def _quotes(batches: list, day: date) -> pl.DataFrame:  # type: ignore[type-arg]
    return next(b.frames[OPTION_QUOTES.name] for b in batches if b.day == day)


def _vendor(batches: list) -> pl.DataFrame:  # type: ignore[type-arg]
    return next(
        b.frames[OPTION_VENDOR_ANALYTICS.name]
        for b in batches
        if OPTION_VENDOR_ANALYTICS.name in b.frames
    )


def test_daily_bars_and_universe_join_into_one_snapshot_per_session() -> None:
    batches = load_underlying(FIXTURE, "AAPL", date(2014, 6, 6), JUNE_9, options="daily")
    chain = _quotes(batches, JUNE_9)
    row = chain.filter(pl.col("contract_id") == "AAPL140719C00095000").row(0, named=True)
    # bid/ask from the quote bar, last and volume from the trade bar, OI from the universe
    assert (row["bid"], row["ask"], row["bid_size"], row["ask_size"]) == (1.92, 1.96, 10, 75)
    assert (row["last"], row["volume"]) == (1.93, 4058)
    assert row["open_interest"] == 21333
    assert row["ts_event"] == datetime(2014, 6, 9, 20, tzinfo=UTC)  # the session's close
    assert row["underlying_price"] == 93.70  # the day's raw close, not the file's row
    assert (row["exercise_style"], row["settlement"], row["multiplier"]) == ("american", "PM", 100)
    assert chain["contract_id"].is_unique().all()


def test_vendor_iv_and_greeks_are_kept_apart_as_published() -> None:
    batches = load_underlying(FIXTURE, "AAPL", date(2014, 6, 5), date(2014, 6, 5), options="daily")
    vendor = _vendor(batches)
    row = vendor.filter(pl.col("contract_id") == "AAPL140719C00665000").row(0, named=True)
    assert row["vendor_iv"] == pytest.approx(1.2755028)
    assert (row["vendor_delta"], row["vendor_vega"]) == (0.5107712, 0.8518934)
    after = load_underlying(FIXTURE, "AAPL", JUNE_9, JUNE_9, options="daily")
    vendor_after = _vendor(after)
    assert vendor_after["vendor_iv"].null_count() == vendor_after.height  # 0 = not computed


def test_aapl_chains_stay_on_their_own_days_price_scale_across_the_split(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    batches = load_underlying(FIXTURE, "AAPL", date(2014, 6, 5), date(2014, 6, 10), options="daily")
    write_batches(lake, batches, mode="upsert")
    ratios = query(
        lake,
        "SELECT date, min(strike / underlying_price) lo, max(strike / underlying_price) hi, "
        "count(*) n FROM option_quotes GROUP BY date ORDER BY date",
    ).rows()
    assert [r[0] for r in ratios] == [date(2014, 6, d) for d in (5, 6, 9, 10)]
    for _, lo, hi, _ in ratios:
        assert lo > 0.8 and hi < 1.1  # no strike/spot scale mix on any day
    quarantined = query(
        lake, "SELECT date, record, reason FROM quarantine WHERE date >= '2014-06-09'"
    )
    pre_split = quarantined.filter(pl.col("record").str.contains('"strike":(600|645|665)\\.0,'))
    # the vendor's stale pre-split strikes in the post-split chains are all quarantined
    assert pre_split.height == 2 * 6
    assert pre_split["reason"].str.contains("strike_scale_mismatch").all()
    # the 06-06 universe (post-split strikes, no prices) is dirt too, with its reason
    june_6 = query(lake, "SELECT reason FROM quarantine WHERE date = '2014-06-06'")
    assert june_6.height == 6 and june_6["reason"].str.contains("no_price").all()


def test_minute_snapshots_use_the_underlying_minute_bar_at_or_before_them() -> None:
    batches = load_underlying(FIXTURE, "GOOG", options="minute")
    (batch,) = batches
    chain, bars = batch.frames[OPTION_QUOTES.name], batch.frames[UNDERLYING_BARS.name]
    assert batch.day == date(2015, 12, 23) and set(bars["bar_seconds"]) == {60}
    first = chain.filter(pl.col("right") == "C").sort("ts_event").row(0, named=True)
    # the 09:30 bar (34200000 ms) ends at 09:31 New York = 14:31 UTC; closes 3.90 / 5.00
    assert first["ts_event"] == datetime(2015, 12, 23, 14, 31, tzinfo=UTC)
    assert (first["bid"], first["ask"], first["contract_id"]) == (3.9, 5.0, "GOOG151224C00750000")
    spot = bars.filter(pl.col("ts_event") <= first["ts_event"]).sort("ts_event")["close"][-1]
    assert first["underlying_price"] == spot
    assert chain.group_by("ts_event").len()["len"].max() == 2  # call and put per minute


def test_hour_bars_end_an_hour_after_their_start_and_never_after_the_close(
    tmp_path: Path,
) -> None:
    root = tmp_path / "lean"
    hour = root / "option" / "usa" / "hour"
    hour.mkdir(parents=True)
    with zipfile.ZipFile(hour / "xyz_2014_quote_american.zip", "w") as archive:
        archive.writestr(
            "xyz_hour_quote_american_call_500000_20140719.csv",
            "20140703 12:00,10000,10000,10000,10000,5,11000,11000,11000,11000,6\n"
            "20140703 13:00,10100,10100,10100,10100,5,11100,11100,11100,11100,6",
        )  # 2014-07-03 closed at 13:00: the 12:00 bar ends at 13:00 and the 13:00 one too
    chains = list(
        lean_options.load_options(root, "XYZ", "hour", None, None, None, [], exchange_calendar())
    )
    ((day, frames),) = chains
    ends = frames[OPTION_QUOTES.name]["ts_event"].to_list()
    assert day == date(2014, 7, 3)
    assert ends == [datetime(2014, 7, 3, 17, tzinfo=UTC)] * 2  # 13:00 New York, early close


def _copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "lean"
    shutil.copytree(FIXTURE, root)
    return root


def test_a_bad_universe_file_costs_its_session_only(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path)
    path = root / "option" / "usa" / "universes" / "aapl" / "20140609.csv"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("0.0758039", "0.07580.39")
    path.write_text("\n".join(lines))
    problems: list[str] = []
    batches = load_underlying(
        root, "AAPL", date(2014, 6, 5), date(2014, 6, 10), options="daily", problems=problems
    )
    assert problems == [f"{path}: line 5, column 'theta': '0.07580.39' is not a number"]
    days = {b.day for b in batches if OPTION_QUOTES.name in b.frames}
    assert days == {date(2014, 6, 5), date(2014, 6, 6), date(2014, 6, 10)}  # 06-09 left out
    with pytest.raises(SourceError, match="line 5, column 'theta'"):
        load_underlying(root, "AAPL", date(2014, 6, 5), date(2014, 6, 10), options="daily")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("corrupt", r"aapl_2014_quote_american\.zip: corrupt zip file"),
        ("member_name", r"aapl_2014_quote_american\.zip!notes\.txt: unknown file layout"),
        ("non_numeric", r"quote_american_call_950000_20140719\.csv line 1: 'x17200' in column"),
        ("short_line", r"call_950000_20140719\.csv line 1: expected 11 fields, found 3"),
    ],
)
def test_bad_bar_zips_fail_naming_file_member_and_line(
    tmp_path: Path, damage: str, message: str
) -> None:
    root = _copy_fixture(tmp_path)
    path = root / "option" / "usa" / "daily" / "aapl_2014_quote_american.zip"
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    target = "aapl_quote_american_call_950000_20140719.csv"
    if damage == "corrupt":
        path.write_bytes(path.read_bytes()[:200])
    else:
        if damage == "member_name":
            members["notes.txt"] = b"hello"
        elif damage == "non_numeric":
            members[target] = members[target].replace(b",17200,", b",x17200,")
        else:
            members[target] = b"20140609 00:00,1,2"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    problems: list[str] = []
    batches = load_underlying(
        root, "AAPL", date(2014, 6, 5), date(2014, 6, 10), options="daily", problems=problems
    )
    assert len(problems) == 1 and re.search(message, problems[0]), problems
    # the year's zip is lost: no session of 2014 keeps a half chain (bars only, or none)
    assert not any(OPTION_QUOTES.name in b.frames for b in batches)


def test_unknown_universe_layout_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "20140609.csv"
    path.write_text("expiry,strike,kind\n20140719,95,C\n")
    with pytest.raises(SourceError, match=r"20140609\.csv: unknown universe layout"):
        lean_options.read_universe(path, JUNE_9, exchange_calendar())


def test_no_option_data_for_a_symbol_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="no LEAN daily option data for IBM"):
        load_underlying(FIXTURE, "IBM", options="daily")


universe_text = (FIXTURE / "option" / "usa" / "universes" / "aapl" / "20140609.csv").read_bytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(universe_text) - 1),
    replacement=st.binary(min_size=0, max_size=3),
    cut=st.booleans(),
)
def test_damaged_universe_files_parse_or_fail_with_a_source_error(
    tmp_path_factory: pytest.TempPathFactory, position: int, replacement: bytes, cut: bool
) -> None:
    """Fuzz: a mutated or truncated chain either parses into a valid frame or raises a
    SourceError naming the file; never another exception."""
    data = (
        universe_text[:position]
        if cut
        else (universe_text[:position] + replacement + universe_text[position + 1 :])
    )
    path = tmp_path_factory.mktemp("fuzz") / "20140609.csv"
    path.write_bytes(data)
    try:
        frame = lean_options.read_universe(path, JUNE_9, exchange_calendar())
    except SourceError as exc:
        message = str(exc)
    else:
        message = str(path)
        assert frame["right"].is_in(["C", "P"]).all()
        assert frame["expiry"].null_count() == 0 and frame["strike"].null_count() == 0
    assert str(path) in message  # an error always names the file


needs_sample = pytest.mark.skipif(
    not LEAN_SAMPLE.is_dir(),
    reason=f"the full LEAN sample is absent ({LEAN_SAMPLE}; set VOLFLOW_LEAN_DATA)",
)


@pytest.mark.lean
@needs_sample
def test_full_aapl_june_2014_no_valid_chain_mixes_price_scales(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    batches = load_underlying(
        LEAN_SAMPLE, "AAPL", date(2014, 6, 2), date(2014, 6, 16), options="daily"
    )
    write_batches(lake, batches, mode="upsert")
    per_day = query(
        lake,
        "SELECT date, count(*) n, min(strike / underlying_price) lo, "
        "max(strike / underlying_price) hi, median(strike / underlying_price) mid "
        "FROM option_quotes GROUP BY date ORDER BY date",
    )
    assert per_day.height == 11  # every session 06-02..06-16 has a chain
    assert (per_day["lo"] > 0.25).all() and (per_day["hi"] < 2.0).all()
    assert ((per_day["mid"] - 1).abs() < 0.25).all()
    reasons = query(
        lake,
        "SELECT count(*) FILTER (WHERE reason LIKE '%strike_scale_mismatch%') scale, "
        "count(*) FILTER (WHERE reason LIKE '%stale_quote%') stale FROM quarantine "
        "WHERE date >= '2014-06-09'",
    ).row(0)
    assert reasons[0] > 1000 and reasons[1] > 1000  # the vendor's carried pre-split rows
    vendor = query(lake, "SELECT count(*) FROM option_vendor_analytics WHERE vendor_iv > 0")
    assert vendor.item() > 5000


@pytest.mark.lean
@needs_sample
def test_full_sample_minute_chains_of_goog_and_twx(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for symbol in ("GOOG", "TWX"):
        write_batches(lake, load_underlying(LEAN_SAMPLE, symbol, options="minute"), "upsert")
    counts = query(
        lake,
        "SELECT underlying, count(DISTINCT ts_event) snapshots, count(*) n, "
        "count(*) FILTER (WHERE underlying_price IS NULL) no_spot FROM option_quotes "
        "GROUP BY underlying ORDER BY underlying",
    ).rows()
    assert [c[0] for c in counts] == ["GOOG", "TWX"]
    for _, snapshots, rows, no_spot in counts:
        assert snapshots > 300 and rows > 50_000 and no_spot == 0


quote_member = b"20140609 00:00,17200,20900,13200,19200,10,18900,21000,13600,19600,75"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(quote_member) - 1),
    replacement=st.binary(min_size=0, max_size=3),
)
def test_damaged_bar_members_parse_or_fail_with_a_source_error(
    tmp_path_factory: pytest.TempPathFactory, position: int, replacement: bytes
) -> None:
    """Fuzz: a mutated bar line either parses into valid rows or raises a SourceError
    naming the zip; never another exception, never a row with a silently lost field."""
    data = quote_member[:position] + replacement + quote_member[position + 1 :]
    path = tmp_path_factory.mktemp("fuzz") / "aapl_2014_quote_american.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("aapl_quote_american_call_950000_20140719.csv", quote_member)
        archive.writestr("aapl_quote_american_put_950000_20140719.csv", data)
    try:
        frame = lean_options.read_bar_zip(
            lean_options.BarFile(path, "quote", "daily"), exchange_calendar()
        )
    except SourceError as exc:
        message = str(exc)
    else:
        message = str(path)
        assert frame["ts_event"].null_count() == 0 and frame.height >= 2
    assert str(path) in message  # an error always names the zip


def _hour_sample(root: Path) -> None:
    """XYZ on 2014-07-03 (a 13:00 early close): hour option quotes, hour and daily bars."""
    (root / "option" / "usa" / "hour").mkdir(parents=True)
    with zipfile.ZipFile(root / "option" / "usa" / "hour" / "xyz_2014_quote_american.zip",
                         "w") as archive:  # fmt: skip
        archive.writestr(
            "xyz_hour_quote_american_call_5000000_20140719.csv",
            "20140703 10:00,10000,10000,10000,10000,5,11000,11000,11000,11000,6\n"
            "20140703 11:00,10100,10100,10100,10100,5,11100,11100,11100,11100,6",
        )
    for folder, name, rows in (
        ("hour", "xyz.zip", "20140703 10:00,5000000,5010000,4990000,5005000,1000\n"
                            "20140703 11:00,5005000,5020000,5000000,5015000,1200\n"
                            "20140703 12:00,5015000,5030000,5010000,5025000,900"),
        ("daily", "xyz.zip", "20140703 00:00,5000000,5030000,4990000,5025000,3100"),
    ):  # fmt: skip
        (root / "equity" / "usa" / folder).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(root / "equity" / "usa" / folder / name, "w") as archive:
            archive.writestr("xyz.csv", rows)


def test_hour_chains_are_priced_from_the_hour_bars_and_the_daily_bar_written_once(
    tmp_path: Path,
) -> None:
    """Regression (lake review, item 6): --resolution hour passed the daily bars where
    hourly bars were expected: 6 of 7 snapshots were quarantined as
    missing_underlying_price and the daily bar was written twice."""
    root = tmp_path / "lean"
    _hour_sample(root)
    (batch,) = load_underlying(root, "XYZ", options="hour")
    chain, bars = batch.frames[OPTION_QUOTES.name], batch.frames[UNDERLYING_BARS.name]
    assert sorted(bars["bar_seconds"].to_list()) == [3600, 3600, 3600, 86400]
    # 10:00 bar ends 11:00 New York (15:00 UTC): spot is the 10:00 hour bar's close
    priced = chain.sort("ts_event").select("ts_event", "underlying_price").rows()
    assert priced == [(datetime(2014, 7, 3, 15, tzinfo=UTC), 500.5),
                      (datetime(2014, 7, 3, 16, tzinfo=UTC), 501.5)]  # fmt: skip
    lake = Lake(tmp_path / "lake", durable=False)
    write_batches(lake, [batch], mode="upsert")
    reasons = query(lake, "SELECT reason, count(*) n FROM quarantine GROUP BY ALL")
    assert reasons.is_empty(), reasons
    stored = query(lake, "SELECT bar_seconds, count(*) n FROM underlying_bars GROUP BY ALL "
                         "ORDER BY ALL")  # fmt: skip
    assert stored.rows() == [(3600, 3), (86400, 1)]


def test_hour_chains_without_hour_bars_are_a_reported_problem(tmp_path: Path) -> None:
    root = tmp_path / "lean"
    _hour_sample(root)
    (root / "equity" / "usa" / "hour" / "xyz.zip").unlink()
    problems: list[str] = []
    batches = load_underlying(root, "XYZ", options="hour", problems=problems)
    assert [set(b.frames) for b in batches] == [{UNDERLYING_BARS.name}]  # the daily bar only
    assert len(problems) == 1 and "hour/xyz.zip: no such file" in problems[0]
