from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from data_lake.dividends import dividend_events, trailing_dividend_yield
from data_lake.sources.lean import read_factor_file

LEAN = Path(__file__).resolve().parents[1] / "fixtures" / "lean"


def test_aapl_dividends_come_out_on_their_real_ex_dates() -> None:
    events = dividend_events(read_factor_file(LEAN, "AAPL"))
    in_2014 = events.filter(events["ex_date"].dt.year() == 2014)
    assert in_2014["ex_date"].to_list() == [
        date(2014, 2, 6), date(2014, 5, 8), date(2014, 8, 7), date(2014, 11, 6),
    ]  # fmt: skip
    assert in_2014["fraction"][0] == pytest.approx(3.05 / 512.59, rel=2e-3)  # $3.05 on $512.59


def test_trailing_yield_is_point_in_time_with_a_fallback() -> None:
    events = dividend_events(read_factor_file(LEAN, "AAPL"))
    june_2014, before_first, no_events = trailing_dividend_yield(
        events, "AAPL", [date(2014, 6, 9), date(2012, 6, 1), date(2012, 8, 8)], fallback=0.01
    )
    assert 0.02 < june_2014 < 0.028  # four quarterly dividends of ~0.6%
    assert before_first == 0.0  # AAPL paid its first modern dividend in August 2012
    assert no_events == 0.0
    assert trailing_dividend_yield(events, "SPY", [date(2014, 6, 9)], fallback=0.013) == [0.013]
    before_ex = trailing_dividend_yield(events, "AAPL", [date(2014, 5, 7)], 0.0)[0]
    on_ex = trailing_dividend_yield(events, "AAPL", [date(2014, 5, 8)], 0.0)[0]
    assert on_ex > before_ex  # the May dividend counts from its ex-date, not before
