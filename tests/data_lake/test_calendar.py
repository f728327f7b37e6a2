from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from data_lake.calendar import (
    EXCHANGE_TZ,
    exchange_calendar,
    intraday_grid,
    last_trading_time,
    trading_date,
)
from data_lake.errors import ConfigError


def test_sessions_skip_weekends_and_holidays() -> None:
    days = [s.day for s in exchange_calendar().sessions(date(2024, 12, 23), date(2025, 1, 3))]
    assert date(2024, 12, 25) not in days and date(2025, 1, 1) not in days
    assert date(2024, 12, 28) not in days  # Saturday
    assert date(2024, 12, 24) in days


def test_early_close_is_known_and_the_grid_stops_there() -> None:
    session = exchange_calendar().sessions(date(2024, 11, 29), date(2024, 11, 29))[0]
    assert session.is_early_close
    local = [t.astimezone(EXCHANGE_TZ).strftime("%H:%M") for t in intraday_grid(session)]
    assert local == ["09:30", "10:00", "11:00", "12:00", "13:00"]


def test_regular_session_grid_has_open_hours_and_close() -> None:
    session = exchange_calendar().sessions(date(2024, 7, 1), date(2024, 7, 1))[0]
    local = [t.astimezone(EXCHANGE_TZ).strftime("%H:%M") for t in intraday_grid(session)]
    assert local == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    assert session.close == datetime(2024, 7, 1, 20, 0, tzinfo=UTC)  # EDT


def test_bad_ranges_are_clear_errors() -> None:
    cal = exchange_calendar()
    with pytest.raises(ConfigError, match="before start"):
        cal.sessions(date(2024, 2, 1), date(2024, 1, 1))
    with pytest.raises(ConfigError, match="outside the XNYS calendar"):
        cal.sessions(date(1990, 1, 1), date(1990, 2, 1))


def test_trading_date_uses_new_york_time() -> None:
    assert trading_date(datetime(2024, 1, 3, 2, 0, tzinfo=UTC)) == date(2024, 1, 2)


def test_last_session_closed_by_skips_an_open_session() -> None:
    cal = exchange_calendar()
    during = datetime(2024, 1, 3, 16, 0, tzinfo=UTC)
    assert cal.last_session_closed_by(during).day == date(2024, 1, 2)


def test_dates_past_the_calendar_are_an_error_not_the_last_session() -> None:
    cal = exchange_calendar()
    with pytest.raises(ConfigError, match="after the XNYS calendar ends"):
        cal.session_on_or_before(date(2040, 1, 5))
    assert cal.session_on_or_before(date(2030, 11, 17)).day == date(2030, 11, 15)  # a Friday


def test_last_trading_time_depends_on_the_settlement_style() -> None:
    cal = exchange_calendar()
    friday = date(2024, 1, 19)
    assert last_trading_time(friday, "PM", cal) == datetime(2024, 1, 19, 21, 0, tzinfo=UTC)
    assert last_trading_time(friday, "AM", cal) == datetime(2024, 1, 18, 21, 0, tzinfo=UTC)
    good_friday = date(2024, 3, 29)  # a holiday: PM expiries trade until Thursday's close
    assert last_trading_time(good_friday, "PM", cal) == datetime(2024, 3, 28, 20, 0, tzinfo=UTC)
    with pytest.raises(ConfigError, match="unknown settlement style"):
        last_trading_time(friday, "XX", cal)
