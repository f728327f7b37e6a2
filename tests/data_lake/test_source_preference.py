"""One source per snapshot for the features: the preferred one present, checked
against a slow obvious loop."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from data_lake.schemas import OPTION_QUOTES, UNDERLYING_BARS
from data_lake.source_preference import (
    DEFAULT_SOURCE_PREFERENCE,
    one_source_per_snapshot,
    snapshot_times,
)


def test_the_preferred_source_of_each_snapshot_is_kept_whole() -> None:
    frame = pl.DataFrame({
        "ts_event": [1, 1, 1, 2, 2, 3],
        "source": ["yfinance", "cboe", "cboe", "yfinance", "synthetic", "lean"],
        "row": [0, 1, 2, 3, 4, 5],
    })  # fmt: skip
    kept = one_source_per_snapshot(frame, ["ts_event"], DEFAULT_SOURCE_PREFERENCE)
    assert kept["row"].to_list() == [1, 2, 3, 5]


def test_a_configured_order_wins_and_unlisted_sources_come_last_alphabetically() -> None:
    frame = pl.DataFrame({"ts_event": [1, 1, 2, 2], "source": ["cboe", "yfinance", "b", "a"]})
    kept = one_source_per_snapshot(frame, ["ts_event"], ("yfinance",))
    assert kept.rows() == [(1, "yfinance"), (2, "a")]


def test_snapshot_times_leave_out_the_source() -> None:
    assert snapshot_times(OPTION_QUOTES) == ("ts_event",)
    assert snapshot_times(UNDERLYING_BARS) == ("ts_event", "bar_seconds")


SOURCES = ["cboe", "lean", "yfinance", "synthetic", "zeta", "alpha"]


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(SOURCES)), max_size=40),
    preference=st.permutations(SOURCES[:4]).map(lambda p: tuple(p[:3])),
)
def test_matches_a_loop_over_snapshots(
    rows: list[tuple[int, str]], preference: tuple[str, ...]
) -> None:
    frame = pl.DataFrame(
        {"ts_event": [t for t, _ in rows], "source": [s for _, s in rows],
         "row": list(range(len(rows)))},
        schema={"ts_event": pl.Int64, "source": pl.String, "row": pl.Int64},
    )  # fmt: skip

    def rank(source: str) -> tuple[int, str]:
        return (preference.index(source), "") if source in preference else (99, source)

    best = {t: min((s for u, s in rows if u == t), key=rank) for t, _ in rows}
    expected = [i for i, (t, s) in enumerate(rows) if s == best[t]]
    assert one_source_per_snapshot(frame, ["ts_event"], preference)["row"].to_list() == expected
