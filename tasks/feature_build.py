"""Prefect task for the build-features flow: one underlying's analytics, surface
features and labels, incremental by partition."""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from data_lake.calendar import ExchangeCalendar, exchange_calendar
from data_lake.catalog import query
from data_lake.commit import Commit, recover
from data_lake.dividends import dividend_events, trailing_dividend_yield
from data_lake.lake import (
    Lake,
    PartitionInput,
    iter_partitions,
    partition_exists,
    read_partition,
    remove_partition,
    write_partitions,
)
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
from features.timeseries import TIME_SERIES_COLUMNS, with_time_series
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


# Bump when the feature code's output changes: every day's fingerprint changes with it,
# so the next incremental build rebuilds everything.
FEATURE_CODE_VERSION = 3
BUILD_RECORDS = "_builds"


def build_record_path(lake: Lake, underlying: str) -> Path:
    """The fingerprints of what ``underlying``'s features were last built from."""
    return lake.root / BUILD_RECORDS / "features" / f"{underlying}.json"


def _read_record(lake: Lake, underlying: str) -> dict[str, Any]:
    path = build_record_path(lake, underlying)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: every day is rebuilt


def _file_identity(lake: Lake, underlying: str, day: date) -> str:
    """A day's quote file as stored: any rewrite (a correction, a new snapshot) changes it."""
    files = lake.stored_data_files(OPTION_QUOTES.name, underlying, day)
    if not files:
        return ""
    stat = files[0].stat()
    return f"{files[0].name}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


def day_fingerprints(
    lake: Lake,
    underlying: str,
    days: list[date],
    rates: pl.DataFrame,
    divs: pl.DataFrame,
    inputs: FeatureInputs,
) -> dict[str, str]:
    """Per quote day, a digest of everything its analytics and surface levels are made
    from: its quote file, the rate and dividend yield it uses, the settings and the
    feature code's version."""
    settings = json.dumps([FEATURE_CODE_VERSION, repr(inputs)])
    rate = dict(zip(rates["date"].to_list(), rates["rate"].to_list(), strict=True))
    div = dict(zip(divs["date"].to_list(), divs["div_yield"].to_list(), strict=True))
    found = {}
    for day in days:
        text = f"{settings}|{_file_identity(lake, underlying, day)}|{rate[day]!r}|{div[day]!r}"
        found[day.isoformat()] = hashlib.sha256(text.encode()).hexdigest()[:24]
    return found


def _digest(frame: pl.DataFrame) -> str:
    """An order-free digest of a frame's rows."""
    hashes = sorted(frame.hash_rows().to_list()) if not frame.is_empty() else []
    return hashlib.sha256(json.dumps(hashes).encode()).hexdigest()[:24]


def days_to_build(fingerprints: dict[str, str], built: dict[str, str], full: bool) -> list[date]:
    """The quote days whose inputs differ from those their features were built from
    (never built, corrected, a new snapshot, another rate...); every day with ``full``."""
    return sorted(
        date.fromisoformat(day)
        for day, fingerprint in fingerprints.items()
        if full or built.get(day) != fingerprint
    )


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


def _write(
    lake: Lake, spec: TableSpec, frame: pl.DataFrame, underlying: str, days: list[date]
) -> int:
    """Replace the partitions of ``days`` with ``frame``'s rows; a day of ``days`` with
    no rows loses its stored partition (its features can no longer be computed)."""
    parts = frame.partition_by("date", as_dict=True) if not frame.is_empty() else {}
    items: list[PartitionInput] = [
        (underlying, day, rows, f"{spec.name} {underlying} {day}") for (day,), rows in parts.items()
    ]
    writes = write_partitions(lake, spec, items, mode="replace") if items else []
    for day in set(days) - {d for (d,) in parts}:
        if partition_exists(lake, spec.name, underlying, day):
            remove_partition(lake, spec.name, underlying, day)
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
    """Build ``underlying``'s features so that they equal a full build's (incremental ==
    full): the analytics and surface levels of every quote day in range whose inputs
    changed (``day_fingerprints``); the time-series columns recomputed over the whole
    series and written where they changed (a backfill or a correction reaches every
    later day whose trailing window holds it); the labels of every day whose horizon
    reaches a changed day. Features of days whose quotes are gone are removed."""
    recover(lake)
    calendar = exchange_calendar()
    quote_days = _days(lake, OPTION_QUOTES.name, underlying)

    def chosen(day: date) -> bool:
        return (start is None or day >= start) and (end is None or day <= end)

    wanted = [d for d in quote_days if chosen(d)]
    record = _read_record(lake, underlying)
    series = read_series(lake, inputs.rate_series)
    preference = inputs.source_preference
    events = _dividend_events(lake, underlying, calendar, preference)
    rates = rates_asof(series, wanted, inputs.rate_fallback, inputs.publication_lag_days)
    divs = _div_yields(events, underlying, wanted, inputs.fallback_div_yield)
    fingerprints = day_fingerprints(lake, underlying, wanted, rates, divs, inputs)
    todo = days_to_build(fingerprints, record.get("days", {}), full)
    built = {d for d in _days(lake, SURFACE_FEATURES.name, underlying) if chosen(d)}
    gone = sorted(built - set(quote_days))  # features of days whose quotes were removed
    bars = _daily_bars(lake, underlying, preference)
    bars_digest = _digest(bars)
    summary: dict[str, Any] = {"underlying": underlying, "days": len(todo), "rows": {}}
    if not todo and not gone and bars_digest == record.get("bars"):
        return summary
    for table in (OPTION_ANALYTICS, SURFACE_FEATURES, LABELS):
        for day in gone:
            remove_partition(lake, table.name, underlying, day)
    new_surface = []
    analytics_rows = 0
    for i in range(0, len(todo), CHUNK_DAYS):
        days = todo[i : i + CHUNK_DAYS]
        quotes = one_source_per_snapshot(
            pl.concat([read_partition(lake, OPTION_QUOTES, underlying, d) for d in days]),
            snapshot_times(OPTION_QUOTES),  # per ts_event: one source's chain
            preference,
        )
        day_rates = rates.filter(pl.col("date").is_in(days))
        day_divs = divs.filter(pl.col("date").is_in(days))
        analytics = option_analytics(quotes, day_rates, day_divs, calendar)
        analytics_rows += _write(lake, OPTION_ANALYTICS, analytics, underlying, days)
        new_surface.append(surface_features(analytics))
    # time-series columns: recomputed over the whole series (point-in-time, so rows
    # before a change come out identical), written where they differ from the stored
    rebuilt = set(todo)
    stored = [
        read_partition(lake, SURFACE_FEATURES, underlying, d)
        for d in _days(lake, SURFACE_FEATURES.name, underlying)
        if d not in rebuilt
    ]
    level_columns = [c for c in SURFACE_FEATURES.schema if c not in TIME_SERIES_COLUMNS]
    history = pl.concat(
        [s.select(level_columns) for s in stored]
        + [n.select(level_columns) for n in new_surface if not n.is_empty()],
        how="diagonal_relaxed",
    ).sort("ts_event")
    full_series = with_time_series(history, bars)
    fresh = _stamped(full_series, SURFACE_FEATURES)
    old = pl.concat(stored, how="diagonal_relaxed") if stored else fresh.clear()
    changed = sorted(rebuilt | _changed_days(fresh, old.select(fresh.columns)))
    surface_rows = _write(
        lake,
        SURFACE_FEATURES,
        fresh.filter(pl.col("date").is_in(changed)),
        underlying,
        changed,
    )
    label_rows = _relabel(lake, underlying, full_series, changed + gone, inputs.horizons)
    summary["rows"] = {
        "option_analytics": analytics_rows,
        "surface_features": surface_rows,
        "labels": label_rows,
    }
    if changed:
        summary["first_day"], summary["last_day"] = changed[0].isoformat(), changed[-1].isoformat()
    days_record = {**record.get("days", {}), **fingerprints}
    for day in gone:
        days_record.pop(day.isoformat(), None)
    _write_record(lake, underlying, {"days": days_record, "bars": bars_digest})
    return summary


def _changed_days(new: pl.DataFrame, old: pl.DataFrame) -> set[date]:
    """Dates whose rows differ between two frames of the same columns."""

    def keyed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select("date", frame.hash_rows().alias("_row"))

    a, b = keyed(new), keyed(old)
    differ = pl.concat(
        [a.join(b, on=["date", "_row"], how="anti"), b.join(a, on=["date", "_row"], how="anti")]
    )
    return set(differ.get_column("date").to_list())


def _write_record(lake: Lake, underlying: str, record: dict[str, Any]) -> None:
    """The build's fingerprints, written after its partitions: a build that dies
    before this is redone by the next one."""
    path = build_record_path(lake, underlying)
    with Commit(lake) as commit:
        commit.put_bytes(path, json.dumps(record, indent=0, sort_keys=True).encode())
        commit.commit()


def _relabel(
    lake: Lake,
    underlying: str,
    surface: pl.DataFrame,
    changed: list[date],
    horizons: tuple[int, ...],
) -> int:
    """Labels of the changed days and of every day whose horizon reaches one."""
    if not changed or surface.is_empty():
        return 0
    days = sorted(surface["date"].unique().to_list())
    first = bisect.bisect_left(days, min(changed))
    span = days[max(0, first - max(horizons) - 1) :]
    analytics = pl.concat([read_partition(lake, OPTION_ANALYTICS, underlying, d) for d in span])
    found = labels(analytics, surface.filter(pl.col("date").is_in(span)), horizons)
    return _write(lake, LABELS, _stamped(found, LABELS), underlying, span)


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
