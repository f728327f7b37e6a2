from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_lake.errors import DataQualityError
from data_lake.quality import check, conform
from data_lake.schemas import OPTION_QUOTES, UNDERLYING_BARS
from tests.conftest import DAY, SNAPSHOT, make_quotes

QuotesFactory = Callable[..., pl.DataFrame]


def test_valid_frame_passes_untouched(quotes: QuotesFactory) -> None:
    frame = quotes()
    result = check(frame, OPTION_QUOTES)
    assert result.quarantined.is_empty()
    assert result.valid.equals(frame)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("bid", float("nan"), "non_finite_price"),
        ("ask", float("inf"), "non_finite_price"),
        ("bid", -0.05, "negative_price"),
        ("strike", 0.0, "non_positive_strike"),
        ("strike", -5.0, "non_positive_strike"),
        ("expiry", date(2023, 12, 29), "expiry_before_quote_date"),
        ("underlying_price", None, "missing_underlying_price"),
        ("underlying_price", 0.0, "missing_underlying_price"),
        ("right", "X", "invalid_right"),
        ("contract_id", None, "missing_field"),
        ("volume", -1, "negative_size"),
    ],
)
def test_bad_row_is_quarantined_with_its_reason(
    quotes: QuotesFactory, column: str, value: object, reason: str
) -> None:
    frame = quotes()
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit(value, dtype=OPTION_QUOTES.schema[column]))
        .otherwise(pl.col(column))
        .alias(column)
    )
    result = check(frame, OPTION_QUOTES)
    assert result.valid.height == 3
    assert result.quarantined.height == 1
    assert reason in result.quarantined["reason"][0].split(";")
    assert result.quarantined["source_table"][0] == "option_quotes"
    assert result.quarantined["source"][0] == "test"


def test_bid_above_ask_is_quarantined(quotes: QuotesFactory) -> None:
    frame = quotes(bid=[5.0, 6.0, 4.0, 3.0], ask=[5.2, 5.5, 4.2, 3.1])
    result = check(frame, OPTION_QUOTES)
    assert result.quarantined["reason"].to_list() == ["bid_above_ask"]
    assert result.reason_counts == {"bid_above_ask": 1}


def test_row_failing_several_checks_lists_every_reason(quotes: QuotesFactory) -> None:
    frame = quotes(n=1, bid=-1.0, strike=0.0)
    reasons = set(check(frame, OPTION_QUOTES).quarantined["reason"][0].split(";"))
    assert {"negative_price", "non_positive_strike"} <= reasons


def test_exact_duplicate_keeps_one_copy_and_quarantines_the_rest(quotes: QuotesFactory) -> None:
    frame = quotes()
    doubled = pl.concat([frame, frame.head(1)])
    result = check(doubled, OPTION_QUOTES)
    assert result.valid.height == 4
    assert result.quarantined["reason"].to_list() == ["duplicate_row"]


def test_conflicting_duplicates_are_all_quarantined(quotes: QuotesFactory) -> None:
    frame = quotes()
    conflicting = frame.head(1).with_columns(pl.col("bid") + 0.01)
    result = check(pl.concat([frame, conflicting]), OPTION_QUOTES)
    assert result.valid.height == 3
    assert result.quarantined["reason"].to_list() == ["conflicting_duplicate"] * 2


def test_quarantine_record_keeps_the_row_as_json(quotes: QuotesFactory) -> None:
    frame = quotes(n=1, strike=-1.0)
    record = check(frame, OPTION_QUOTES).quarantined["record"][0]
    assert '"strike":-1.0' in record and '"contract_id":"SPY240119C00470000"' in record


def test_conform_names_the_missing_column() -> None:
    frame = pl.DataFrame({"underlying": ["SPY"], "bid": [1.0]})
    with pytest.raises(
        DataQualityError, match=r"origin\.csv: missing required column\(s\).*contract_id"
    ):
        conform(frame, OPTION_QUOTES, "origin.csv")


def test_conform_names_the_uncastable_column(quotes: QuotesFactory) -> None:
    frame = quotes().with_columns(pl.lit("abc").alias("bid"))
    with pytest.raises(DataQualityError, match=r"file\.csv: column 'bid'.*Float64"):
        conform(frame, OPTION_QUOTES, "file.csv")


def test_bar_with_high_below_close_is_quarantined() -> None:
    bars = pl.DataFrame(
        {
            "underlying": ["SPY"],
            "date": [date(2024, 1, 2)],
            "ts_event": [SNAPSHOT],
            "bar_seconds": [86400],
            "open": [470.0],
            "high": [471.0],
            "low": [469.0],
            "close": [472.0],
            "volume": [10],
            "ts_init": [SNAPSHOT],
            "source": ["t"],
        }
    )
    result = check(conform(bars, UNDERLYING_BARS, "t"), UNDERLYING_BARS)
    assert result.quarantined["reason"].to_list() == ["high_low_inconsistent"]


prices = st.one_of(
    st.floats(min_value=-10, max_value=1000, allow_nan=False, allow_infinity=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
)


@settings(max_examples=60, deadline=None)
@given(
    bids=st.lists(prices, min_size=1, max_size=12),
    asks=st.lists(prices, min_size=12, max_size=12),
    strikes=st.lists(st.sampled_from([-1.0, 0.0, 100.0, 105.0]), min_size=12, max_size=12),
    spots=st.lists(st.one_of(st.none(), prices), min_size=12, max_size=12),
)
def test_checks_lose_no_row_and_keep_only_clean_rows(
    bids: list[float], asks: list[float], strikes: list[float], spots: list[float | None]
) -> None:
    n = len(bids)
    frame = make_quotes(
        n=n, bid=bids, ask=asks[:n], strike=strikes[:n], underlying_price=spots[:n]
    ).with_columns(pl.format("SPY240119C{}", pl.int_range(pl.len())).alias("contract_id"))
    result = check(frame, OPTION_QUOTES)
    assert result.valid.height + result.quarantined.height == n  # nothing lost

    def clean(row: dict[str, object]) -> bool:  # the slow, obvious oracle
        bid, ask, strike, spot = row["bid"], row["ask"], row["strike"], row["underlying_price"]
        values = [bid, ask, strike]
        if spot is None or not all(math.isfinite(v) for v in values):  # type: ignore[arg-type]
            return False
        if not (math.isfinite(spot) and spot > 0 and strike > 0 and 0 < bid < ask):  # type: ignore[operator]
            return False  # (bid == ask is a locked market, bid == 0 has no bid)
        if not 1 / 20 <= strike / spot <= 5:  # type: ignore[operator]
            return False  # a strike on another price scale than the spot
        tolerance = 0.01 + 0.002 * spot  # type: ignore[operator]
        intrinsic = max(spot - strike, 0.0)  # type: ignore[operator]  # American calls
        return bool(ask >= intrinsic - tolerance and bid <= spot + tolerance)  # type: ignore[operator]

    expected = sum(clean(row) for row in frame.iter_rows(named=True))
    assert result.valid.height == expected  # every clean row is kept
    valid = result.valid
    for column in ("bid", "ask", "underlying_price", "strike"):
        assert valid[column].is_finite().all()
    assert (valid["bid"] >= 0).all() and (valid["bid"] <= valid["ask"]).all()
    assert (valid["strike"] > 0).all() and (valid["underlying_price"] > 0).all()
    assert (result.quarantined["reason"] != "").all()


def test_naive_timestamps_are_refused_not_assumed_utc(quotes: QuotesFactory) -> None:
    naive = quotes().with_columns(pl.col("ts_event").dt.replace_time_zone(None))
    with pytest.raises(
        DataQualityError, match=r"feed\.csv: column\(s\) ts_event hold naive timestamps"
    ):
        conform(naive, OPTION_QUOTES, "feed.csv")


def test_quote_time_on_another_trading_day_is_quarantined(quotes: QuotesFactory) -> None:
    late = SNAPSHOT.replace(hour=5) + timedelta(days=1)  # 00:00 New York, the next day
    frame = quotes(ts_event=[SNAPSHOT, late, SNAPSHOT, SNAPSHOT])
    result = check(frame, OPTION_QUOTES)
    assert result.quarantined["reason"].to_list() == ["ts_event_outside_partition_date"]


def test_same_key_in_different_partitions_is_not_a_duplicate() -> None:
    bars = pl.DataFrame(
        {
            "underlying": ["SPY", "QQQ"],
            "date": [DAY, DAY],
            "ts_event": [SNAPSHOT] * 2,
            "bar_seconds": [86400] * 2,
            "open": [470.0, 400.0],
            "high": [471.0, 401.0],
            "low": [469.0, 399.0],
            "close": [470.5, 400.5],
            "volume": [10, 20],
            "ts_init": [SNAPSHOT] * 2,
            "source": ["t"] * 2,
        }
    )
    result = check(conform(bars, UNDERLYING_BARS, "t"), UNDERLYING_BARS)
    assert result.quarantined.is_empty() and result.valid.height == 2


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"bid": 5.0, "ask": 5.0}, "locked_quote"),
        ({"strike": 500.0, "bid": 0.0, "ask": 0.05}, "zero_bid"),
        ({"strike": 400.0, "bid": 60.0, "ask": 60.5}, "below_intrinsic"),  # call worth >= 72.65
        ({"strike": 400.0, "bid": 480.0, "ask": 481.0}, "above_upper_bound"),  # call above spot
        ({"bid": None, "ask": None, "last": None}, "no_price"),
        # trade-only chains (no quote): the last trade is held to the same bounds
        ({"strike": 400.0, "bid": None, "ask": None, "last": 60.0}, "below_intrinsic"),
        ({"strike": 400.0, "bid": None, "ask": None, "last": 480.0}, "above_upper_bound"),
        # a pre-split contract in a post-split chain: strike 7x the spot
        ({"strike": 3300.0, "bid": 1.0, "ask": 1.2}, "strike_scale_mismatch"),
        ({"strike": 20.0, "bid": 452.0, "ask": 453.0}, "strike_scale_mismatch"),
    ],
)
def test_real_world_dirt_is_quarantined_with_its_reason(
    quotes: QuotesFactory, overrides: dict[str, float], reason: str
) -> None:
    frame = quotes(n=1, **overrides)
    assert check(frame, OPTION_QUOTES).quarantined["reason"].to_list() == [reason]


def test_trade_only_row_is_kept(quotes: QuotesFactory) -> None:
    frame = quotes(n=1, bid=None, ask=None, bid_size=None, ask_size=None, last=5.1)
    assert check(frame, OPTION_QUOTES).valid.height == 1


def _snapshots(quotes: QuotesFactory, spots: list[float], bids: list[float]) -> pl.DataFrame:
    """One put (out of the money throughout) over consecutive snapshots of one day."""
    frames = [
        quotes(
            n=1,
            ts=SNAPSHOT + timedelta(minutes=i),
            right="P",
            contract_id="SPY240119P00470000",
            bid=b,
            ask=b + 0.2,
            underlying_price=s,
        )
        for i, (s, b) in enumerate(zip(spots, bids, strict=True))
    ]
    return pl.concat(frames)


def test_quote_unchanged_while_the_underlying_moves_is_stale(quotes: QuotesFactory) -> None:
    frame = _snapshots(quotes, [472.0, 475.0, 478.0, 481.0], [5.0] * 4)
    result = check(frame, OPTION_QUOTES)
    # the third unchanged snapshot onward, once the spot is more than 1% away
    assert result.quarantined["reason"].to_list() == ["stale_quote", "stale_quote"]
    assert result.valid["ts_event"].to_list() == frame["ts_event"].head(2).to_list()


def test_quote_unchanged_with_a_still_underlying_is_not_stale(quotes: QuotesFactory) -> None:
    flat = _snapshots(quotes, [472.0, 472.5, 472.0, 472.4], [5.0] * 4)
    moving = _snapshots(quotes, [472.0, 475.0, 478.0, 481.0], [5.0, 5.3, 5.0, 5.3])
    assert check(flat, OPTION_QUOTES).quarantined.is_empty()
    assert check(moving, OPTION_QUOTES).quarantined.is_empty()


def test_european_quote_below_spot_intrinsic_is_not_dirt(quotes: QuotesFactory) -> None:
    deep_put = quotes(n=1, right="P", strike=560.0, bid=84.0, ask=84.5, exercise_style="european")
    assert check(deep_put, OPTION_QUOTES).quarantined.is_empty()  # 87.35 intrinsic, but European
