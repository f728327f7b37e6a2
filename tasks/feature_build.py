"""Prefect task for the build-features flow: one underlying's analytics, surface
features and labels, incremental by partition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from data_lake.calendar import ExchangeCalendar, exchange_calendar
from data_lake.catalog import query
from data_lake.dividends import dividend_events, trailing_dividend_yield
from data_lake.lake import Lake, PartitionInput, iter_partitions, read_partition, write_partitions
from data_lake.rates import rates_asof, read_series
from data_lake.schemas import (
    CORPORATE_ACTIONS,
    LABELS,
    OPTION_ANALYTICS,
    OPTION_QUOTES,
    SURFACE_FEATURES,
    TableSpec,
)
from data_lake.source_preference import (
    DEFAULT_SOURCE_PREFERENCE,
    one_source_per_snapshot,
    snapshot_times,
)
from features.chain import option_analytics
from features.labels import labels
from features.surface import surface_features
from features.timeseries import with_time_series
from tasks.ingest import _logger, retry_on_io_error

CHUNK_DAYS = 20  # sessions of quotes in memory at once


@dataclass(frozen=True)
class FeatureInputs:
    """What the features need besides the lake: rates and dividend assumptions."""

    rate_series: str
    rate_fallback: float
    publication_lag_days: int
    fallback_div_yield: float  # where the underlying has no dividend history
    horizons: tuple[int, ...]
    # where several sources share a snapshot, the features read the first one's rows
    source_preference: tuple[str, ...] = DEFAULT_SOURCE_PREFERENCE


def _days(lake: Lake, table: str, underlying: str) -> list[date]:
    return sorted(p.day for p in iter_partitions(lake, table) if p.underlying == underlying)


def days_to_build(
    quote_days: list[date], built: list[date], start: date | None, end: date | None, full: bool
) -> list[date]:
    """Quote days in range not built yet, and the last built day (it may have gained
    snapshots since); every quote day in range with ``full``."""
    wanted = [d for d in quote_days if (start is None or d >= start) and (end is None or d <= end)]
    if full or not built:
        return wanted
    done, last = set(built), max(built)
    return [d for d in wanted if d not in done or d >= last]


def _dividend_events(
    lake: Lake, underlying: str, calendar: ExchangeCalendar, preference: tuple[str, ...]
) -> pl.DataFrame:
    """The underlying's dividends from its stored factor rows (read once per build), one
    source's per factor date."""
    parts = [
        read_partition(lake, CORPORATE_ACTIONS, underlying, d)
        for d in _days(lake, CORPORATE_ACTIONS.name, underlying)
    ]
    if not parts:
        return pl.DataFrame(
            schema={"underlying": pl.String, "ex_date": pl.Date, "fraction": pl.Float64}
        )
    factors = one_source_per_snapshot(
        pl.concat(parts, how="diagonal_relaxed"), snapshot_times(CORPORATE_ACTIONS), preference
    )
    return dividend_events(factors, calendar)


def _div_yields(
    events: pl.DataFrame, underlying: str, days: list[date], fallback: float
) -> pl.DataFrame:
    yields = trailing_dividend_yield(events, underlying, days, fallback)
    schema = {"underlying": pl.String, "date": pl.Date, "div_yield": pl.Float64}
    return pl.DataFrame(
        {"underlying": [underlying] * len(days), "date": days, "div_yield": yields}, schema=schema
    )


def _write(lake: Lake, spec: TableSpec, frame: pl.DataFrame, underlying: str) -> int:
    items: list[PartitionInput] = [
        (underlying, day, rows, f"{spec.name} {underlying} {day}")
        for (day,), rows in frame.partition_by("date", as_dict=True).items()
    ]
    writes = write_partitions(lake, spec, items, mode="replace") if items else []
    return sum(w.rows_written for w in writes)


def _stamped(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Derived rows: known when their inputs were (``ts_init``), source ``volflow``."""
    known = "ts_end" if "ts_end" in frame.columns else "ts_event"
    if "ts_init" not in frame.columns:
        frame = frame.with_columns(pl.col(known).alias("ts_init"))
    if "source" not in frame.columns:
        frame = frame.with_columns(pl.lit("volflow").alias("source"))
    return frame.select(spec.schema.names()).cast(dict(spec.schema))  # type: ignore[arg-type]


def _daily_bars(lake: Lake, underlying: str, preference: tuple[str, ...]) -> pl.DataFrame:
    """Adjusted daily bars, one source's per session."""
    bars = query(
        lake,
        "SELECT underlying, ts_event AS ts_init, open, high, low, close, source "
        "FROM underlying_bars_adjusted WHERE underlying = ? AND bar_seconds = 86400 "
        "ORDER BY ts_event, source",
        [underlying],
    )
    return one_source_per_snapshot(bars, ["ts_init"], preference).drop("source")


def build_underlying(
    lake: Lake,
    underlying: str,
    inputs: FeatureInputs,
    start: date | None = None,
    end: date | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Build ``underlying``'s features for the quote days that need it (see
    ``days_to_build``); returns counts."""
    calendar = exchange_calendar()
    quote_days = _days(lake, OPTION_QUOTES.name, underlying)
    todo = days_to_build(
        quote_days, _days(lake, SURFACE_FEATURES.name, underlying), start, end, full
    )
    summary: dict[str, Any] = {"underlying": underlying, "days": len(todo), "rows": {}}
    if not todo:
        return summary
    series = read_series(lake, inputs.rate_series)
    preference = inputs.source_preference
    events = _dividend_events(lake, underlying, calendar, preference)
    new_surface = []
    analytics_rows = 0
    for i in range(0, len(todo), CHUNK_DAYS):
        days = todo[i : i + CHUNK_DAYS]
        quotes = one_source_per_snapshot(
            pl.concat([read_partition(lake, OPTION_QUOTES, underlying, d) for d in days]),
            snapshot_times(OPTION_QUOTES),  # per ts_event: one source's chain
            preference,
        )
        rates = rates_asof(series, days, inputs.rate_fallback, inputs.publication_lag_days)
        divs = _div_yields(events, underlying, days, inputs.fallback_div_yield)
        analytics = option_analytics(quotes, rates, divs, calendar)
        analytics_rows += _write(lake, OPTION_ANALYTICS, analytics, underlying)
        new_surface.append(surface_features(analytics))
    # time-series columns: recomputed over the whole series (point-in-time, so earlier
    # rows come out identical), written for the new days only
    new_days = set(todo)
    stored = [
        read_partition(lake, SURFACE_FEATURES, underlying, d)
        for d in _days(lake, SURFACE_FEATURES.name, underlying)
        if d not in new_days
    ]
    level_columns = pl.concat(new_surface, how="diagonal_relaxed").columns
    history = pl.concat(
        [s.select(level_columns) for s in stored] + new_surface, how="diagonal_relaxed"
    ).sort("ts_event")
    full_series = with_time_series(history, _daily_bars(lake, underlying, preference))
    fresh = full_series.filter(pl.col("date").is_in(todo))
    surface_rows = _write(lake, SURFACE_FEATURES, _stamped(fresh, SURFACE_FEATURES), underlying)
    label_rows = _relabel(lake, underlying, full_series, todo, inputs.horizons)
    summary["rows"] = {
        "option_analytics": analytics_rows,
        "surface_features": surface_rows,
        "labels": label_rows,
    }
    summary["first_day"], summary["last_day"] = todo[0].isoformat(), todo[-1].isoformat()
    return summary


def _relabel(
    lake: Lake, underlying: str, surface: pl.DataFrame, todo: list[date], horizons: tuple[int, ...]
) -> int:
    """Labels of the new days and of the days whose horizon reaches into them."""
    days = sorted(surface["date"].unique().to_list())
    first = days.index(todo[0])
    span = days[max(0, first - max(horizons) - 1) :]
    analytics = pl.concat([read_partition(lake, OPTION_ANALYTICS, underlying, d) for d in span])
    found = labels(analytics, surface.filter(pl.col("date").is_in(span)), horizons)
    return _write(lake, LABELS, _stamped(found, LABELS), underlying)


@task(
    name="build-features",
    task_run_name="build-features-{underlying}",
    tags=["volflow-features"],
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error,
    cache_policy=NO_CACHE,
)
def build_features_task(
    lake: Lake,
    underlying: str,
    inputs: FeatureInputs,
    start: date | None = None,
    end: date | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Analytics, surface features and labels of one underlying (incremental)."""
    summary = build_underlying(lake, underlying, inputs, start, end, full)
    _logger().info("features %s: %d days, rows %s", underlying, summary["days"], summary["rows"])
    return summary
