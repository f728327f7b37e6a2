"""Exchange sessions from the ``exchange_calendars`` package (XNYS), not a hand-written list.

Sessions, early closes and holidays come from the package; times are returned as
UTC-aware datetimes and trading dates are America/New_York dates.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals

from data_lake.errors import ConfigError

EXCHANGE_TZ = ZoneInfo("America/New_York")
CALENDAR_START = date(1990, 1, 2)  # vendor histories (LEAN's daily bars) start in the 1990s
# A fixed end, not "today + 1 year" (the package default): sessions far ahead follow the
# exchange's published rules, and listed expiries up to three years out must be real days.
CALENDAR_END = date(2036, 12, 31)


@dataclass(frozen=True)
class Session:
    """One exchange session (UTC times)."""

    day: date
    open: datetime
    close: datetime

    @property
    def is_early_close(self) -> bool:
        return self.close.astimezone(EXCHANGE_TZ).hour < 16


@dataclass(frozen=True)
class ExchangeCalendar:
    """An immutable, preloaded session table for one exchange."""

    name: str
    days: tuple[date, ...]
    opens: tuple[datetime, ...]
    closes: tuple[datetime, ...]

    @property
    def first_day(self) -> date:
        return self.days[0]

    @property
    def last_day(self) -> date:
        return self.days[-1]

    def sessions(self, start: date, end: date) -> list[Session]:
        """Sessions with ``start <= day <= end``; dates outside the table are an error."""
        if end < start:
            raise ConfigError(f"end date {end} is before start date {start}")
        if start < self.first_day or end > self.last_day:
            raise ConfigError(
                f"dates {start}..{end} are outside the {self.name} calendar's range "
                f"{self.first_day}..{self.last_day}"
            )
        lo, hi = bisect_left(self.days, start), bisect_right(self.days, end)
        return [Session(self.days[i], self.opens[i], self.closes[i]) for i in range(lo, hi)]

    def is_session(self, day: date) -> bool:
        i = bisect_left(self.days, day)
        return i < len(self.days) and self.days[i] == day

    def next_session(self, day: date) -> date:
        """The first session strictly after ``day``."""
        i = bisect_right(self.days, day)
        if i >= len(self.days):
            raise ConfigError(
                f"no {self.name} session after {day} (the calendar ends {self.last_day})"
            )
        return self.days[i]

    def session_on_or_before(self, day: date) -> Session:
        i = bisect_right(self.days, day) - 1
        if i < 0:
            raise ConfigError(f"{day} is before the {self.name} calendar starts ({self.first_day})")
        if day > self.last_day:
            raise ConfigError(f"{day} is after the {self.name} calendar ends ({self.last_day})")
        return Session(self.days[i], self.opens[i], self.closes[i])

    def last_session_closed_by(self, now: datetime) -> Session:
        """The latest session whose close is at or before ``now``."""
        session = self.session_on_or_before(now.astimezone(EXCHANGE_TZ).date())
        if session.close > now:
            session = self.session_on_or_before(session.day - timedelta(days=1))
        return session


@lru_cache(maxsize=4)
def exchange_calendar(name: str = "XNYS") -> ExchangeCalendar:
    """The calendar ``name`` from ``exchange_calendars``, loaded once per process."""
    cal = xcals.get_calendar(name, start=CALENDAR_START.isoformat(), end=CALENDAR_END.isoformat())
    schedule = cal.schedule
    days = tuple(ts.date() for ts in schedule.index)
    opens = tuple(ts.to_pydatetime().astimezone(UTC) for ts in schedule["open"])
    closes = tuple(ts.to_pydatetime().astimezone(UTC) for ts in schedule["close"])
    return ExchangeCalendar(name, days, opens, closes)


def trading_date(ts: datetime) -> date:
    """The America/New_York date of a UTC timestamp (the lake's ``date`` partition)."""
    return ts.astimezone(EXCHANGE_TZ).date()


def intraday_grid(session: Session) -> list[datetime]:
    """Open, each full hour in the session (10:00, 11:00, ...), and the close (UTC)."""
    local_open = session.open.astimezone(EXCHANGE_TZ)
    points = [session.open]
    hour = local_open.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while hour.astimezone(UTC) < session.close:
        points.append(hour.astimezone(UTC))
        hour += timedelta(hours=1)
    points.append(session.close)
    return points


def last_trading_time(expiry: date, settlement: str, calendar: ExchangeCalendar) -> datetime:
    """When a contract stops trading (UTC). PM-settled: the close of the expiry session
    (the session on or before the expiry date, so a holiday Friday moves it to
    Thursday). AM-settled (SPX, NDX, RUT monthlies): the close of the session before,
    since the settlement value comes from the expiry morning's opening prints."""
    if settlement not in ("AM", "PM"):
        raise ConfigError(f"unknown settlement style {settlement!r}: expected AM or PM")
    session = calendar.session_on_or_before(expiry)
    if settlement == "AM":
        session = calendar.session_on_or_before(session.day - timedelta(days=1))
    return session.close
