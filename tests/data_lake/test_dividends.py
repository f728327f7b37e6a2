from __future__ import annotations

import itertools
import math
from datetime import date
from pathlib import Path

import pytest

from data_lake.calendar import exchange_calendar
from data_lake.dividends import dividend_events, trailing_dividend_yield
from data_lake.sources.lean import read_factor_file
from tests.conftest import LEAN_SAMPLE

LEAN = Path(__file__).resolve().parents[1] / "fixtures" / "lean"


def test_aapl_dividends_come_out_on_their_real_ex_dates() -> None:
    events = dividend_events(read_factor_file(LEAN, "AAPL"), exchange_calendar())
    in_2014 = events.filter(events["ex_date"].dt.year() == 2014)
    assert in_2014["ex_date"].to_list() == [
        date(2014, 2, 6), date(2014, 5, 8), date(2014, 8, 7), date(2014, 11, 6),
    ]  # fmt: skip
    assert in_2014["fraction"][0] == pytest.approx(3.05 / 512.59, rel=2e-3)  # $3.05 on $512.59


def test_trailing_yield_is_point_in_time_with_a_fallback() -> None:
    events = dividend_events(read_factor_file(LEAN, "AAPL"), exchange_calendar())
    june_2014, before_first, no_events = trailing_dividend_yield(
        events, "AAPL", [date(2014, 6, 9), date(2012, 6, 1), date(2012, 8, 8)], fallback=0.01
    )
    assert 0.02 < june_2014 < 0.028  # the last four quarterly dividends, ~0.6% each
    assert before_first == 0.0  # AAPL paid its first modern dividend in August 2012
    assert no_events == 0.0
    assert trailing_dividend_yield(events, "SPY", [date(2014, 6, 9)], fallback=0.013) == [0.013]
    fractions = dict(zip(events["ex_date"].to_list(), events["fraction"].to_list(), strict=True))
    paid = sorted(fractions)

    def last_four(day: date) -> float:
        return sum(-math.log(1 - fractions[d]) for d in [d for d in paid if d <= day][-4:])

    for day in (date(2014, 5, 7), date(2014, 5, 8)):  # the May dividend counts from its ex-date
        assert trailing_dividend_yield(events, "AAPL", [day], 0.0)[0] == pytest.approx(
            last_four(day)
        )
    assert last_four(date(2014, 5, 7)) != last_four(date(2014, 5, 8))


def test_ex_dates_are_sessions_and_yields_do_not_jump_on_anniversaries() -> None:
    shared = LEAN_SAMPLE
    if not (shared / "equity" / "usa" / "factor_files" / "qqq.csv").exists():
        pytest.skip(f"the full LEAN sample is absent ({shared}; set VOLFLOW_LEAN_DATA)")
    cal = exchange_calendar()
    events = dividend_events(read_factor_file(shared, "QQQ"), cal)
    assert all(cal.is_session(d) for d in events["ex_date"].to_list())
    assert date(2018, 3, 19) in events["ex_date"].to_list()  # not Saturday the 17th
    days = [s.day for s in cal.sessions(date(2018, 1, 2), date(2020, 12, 31))]
    yields = trailing_dividend_yield(events, "QQQ", days, 0.0)
    changes = [abs(b - a) for a, b in itertools.pairwise(yields)]
    assert max(changes) < 0.002  # one quarterly payment replaces another: small steps only
