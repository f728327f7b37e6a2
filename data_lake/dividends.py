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

from datetime import date, timedelta

import polars as pl


def dividend_events(actions: pl.DataFrame) -> pl.DataFrame:
    """(underlying, ex_date, fraction) of each dividend in ``corporate_actions`` rows:
    ``fraction`` is D/P; the ex-date is the day after the factor row's date."""
    ordered = actions.sort("underlying", "date")
    step = pl.col("price_factor") / pl.col("price_factor").shift(-1).over("underlying")
    events = ordered.select(
        "underlying",
        (pl.col("date") + pl.duration(days=1)).alias("ex_date"),
        (1 - step).alias("fraction"),
    )
    return events.filter(pl.col("fraction").is_not_null() & (pl.col("fraction") > 1e-9))


def trailing_dividend_yield(
    events: pl.DataFrame, underlying: str, days: list[date], fallback: float
) -> list[float]:
    """Continuous trailing 12-month dividend yield of ``underlying`` on each day (only
    dividends with an ex-date on or before the day: point-in-time); ``fallback`` when
    the underlying has no dividend events at all."""
    own = events.filter(pl.col("underlying") == underlying)
    if own.is_empty():
        return [fallback] * len(days)
    ex_dates = own.get_column("ex_date").to_list()
    logs = (1 - own.get_column("fraction")).log().to_list()
    yields = []
    for day in days:
        window_start = day - timedelta(days=365)
        total = sum(
            (-lg for ex, lg in zip(ex_dates, logs, strict=True) if window_start < ex <= day), 0.0
        )
        yields.append(total)
    return yields
