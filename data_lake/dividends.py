"""Dividend yields per underlying, from corporate-action factors or configuration.

LEAN factor rows carry a cumulative ``price_factor``: between consecutive rows
``i`` and ``i+1`` it steps by ``price_factor[i] / price_factor[i+1] = 1 - D / P``,
where ``D`` is the cash dividend going ex right after ``date[i]`` and ``P`` the
row's ``reference_price`` (the close before the ex-date). The trailing dividend
yield as of a day is the continuous yield of the dividends that went ex in the
365 days up to it, ``-sum(ln(1 - D/P))``; a configured yield is used where an
underlying has no factor rows.
"""

from __future__ import annotations

import itertools
from datetime import date

import polars as pl

from data_lake.calendar import ExchangeCalendar


def dividend_events(actions: pl.DataFrame, calendar: ExchangeCalendar) -> pl.DataFrame:
    """(underlying, ex_date, fraction) of each dividend in ``corporate_actions`` rows:
    ``fraction`` is D/P; the ex-date is the first session after the factor row's date."""
    ordered = actions.sort("underlying", "date")
    step = pl.col("price_factor") / pl.col("price_factor").shift(-1).over("underlying")
    events = ordered.select("underlying", "date", (1 - step).alias("fraction")).filter(
        pl.col("fraction").is_not_null() & (pl.col("fraction") > 1e-9)
    )
    ex_dates = [calendar.next_session(day) for day in events.get_column("date").to_list()]
    return events.select("underlying", pl.Series("ex_date", ex_dates, dtype=pl.Date), "fraction")


def trailing_dividend_yield(
    events: pl.DataFrame, underlying: str, days: list[date], fallback: float
) -> list[float]:
    """Continuous dividend yield of ``underlying`` on each day from the dividends that
    went ex on or before it (point-in-time): the last year's worth of payments, counted
    by their usual spacing (four for a quarterly payer) so that a payment falling just
    inside or outside a 365-day window does not make the yield jump. 0 once payments
    have stopped (none for 1.5 spacings); ``fallback`` with no dividend history at all."""
    own = events.filter(pl.col("underlying") == underlying).sort("ex_date")
    if own.is_empty():
        return [fallback] * len(days)
    ex_dates = own.get_column("ex_date").to_list()
    logs = [-x for x in (1 - own.get_column("fraction")).log().to_list()]
    yields = []
    for day in days:
        past = [i for i, ex in enumerate(ex_dates) if ex <= day]
        if not past:
            yields.append(0.0)
            continue
        recent = [ex_dates[i] for i in past[-9:]]
        gaps = sorted((b - a).days for a, b in itertools.pairwise(recent))
        spacing = gaps[len(gaps) // 2] if gaps else 365
        if (day - ex_dates[past[-1]]).days > 1.5 * spacing + 30:
            yields.append(0.0)
            continue
        per_year = max(1, round(365 / max(spacing, 1)))
        yields.append(sum((logs[i] for i in past[-per_year:]), 0.0))
    return yields
