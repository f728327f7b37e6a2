"""``volflow features ...``: the build-features flow and the features of a snapshot."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from data_lake.errors import ConfigError
from flows.cli.common import (
    EndOpt,
    JsonOpt,
    StartOpt,
    UnderlyingsOpt,
    cli_settings,
    day,
    out,
    run_flow,
    validated,
)

features_app = typer.Typer(help="Build and inspect features.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")


@features_app.command("build")
def features_build(
    underlyings: UnderlyingsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    full: Annotated[
        bool, typer.Option(help="Rebuild every day in range, not only new ones")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compute IV/Greeks per contract, surface features and labels (the build-features
    flow): only days not built yet unless --full."""
    cli_settings()
    from flows.build_features import FeatureParams, build_features

    params = validated(
        FeatureParams, underlyings=underlyings, start=day(start), end=day(end), full=full
    )
    summary = run_flow(
        build_features, params, label="build features", emit=emit_features, as_json=as_json
    )
    emit_features(summary, as_json)


def emit_features(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(summary, default=str))
        return
    table = Table(title=f"features in {summary['lake']}")
    for column in ("underlying", "days built", "first", "last", "analytics rows",
                   "surface rows", "label rows"):  # fmt: skip
        table.add_column(column)
    for name, s in summary["underlyings"].items():
        rows = s.get("rows", {})
        table.add_row(
            name, str(s["days"]), s.get("first_day", "-"), s.get("last_day", "-"),
            f"{rows.get('option_analytics', 0):,}", f"{rows.get('surface_features', 0):,}",
            f"{rows.get('labels', 0):,}",
        )  # fmt: skip
    for name, message in summary.get("failed", {}).items():
        table.add_row(name, "FAILED", "", "", "", "", message)
    out.print(table)


def as_of_bound(text: str | None) -> datetime:
    """The upper time bound of --at: a date means the end of that New York day."""
    if text is None:
        return datetime(9999, 1, 1, tzinfo=UTC)
    try:
        if len(text) == 10:
            on = date.fromisoformat(text)
            end = datetime.combine(on + timedelta(days=1), time(), ZoneInfo("America/New_York"))
            return (end - timedelta(microseconds=1)).astimezone(UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--at {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@features_app.command("show")
def features_show(
    underlying: Annotated[str, typer.Argument(help="The underlying, e.g. SPY")],
    at: Annotated[
        str | None,
        typer.Option(
            help="As of: a date (its end, New York time) or YYYY-MM-DDTHH:MM (UTC); "
            "default: the latest snapshot"
        ),
    ] = None,
    history: Annotated[int, typer.Option(help="Also list the last N snapshots' key features")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """The surface features of UNDERLYING at the last snapshot at or before --at."""
    from data_lake.catalog import query

    lake = cli_settings().lake
    symbol = underlying.upper()
    bound = as_of_bound(at)
    rows = query(
        lake,
        "SELECT * FROM surface_features WHERE underlying = ? AND ts_event <= ? "
        "ORDER BY ts_event DESC LIMIT ?",
        [symbol, bound, max(1, history)],
    )
    if rows.is_empty():
        raise ConfigError(
            f"no features for {symbol} at or before {at or 'now'}: run `volflow features build`"
        )
    if as_json:
        sys.stdout.write(json.dumps(rows.to_dicts(), indent=2, default=str) + "\n")
        return
    latest = rows.row(0, named=True)
    table = Table(title=f"{symbol} features at {latest['ts_event']}")
    table.add_column("feature")
    table.add_column("value", justify="right")
    for name, value in latest.items():
        if name in ("underlying", "ts_event", "ts_init", "source"):
            continue
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        table.add_row(name, shown)
    out.print(table)
    if history > 1:
        series = Table(title=f"{symbol}: last {rows.height} snapshots")
        for column in ("date", "atm_iv_30d", "skew_25d_30d", "term_slope_30_90", "rv_cc_21d",
                       "vrp_30d", "iv_rank_252"):  # fmt: skip
            series.add_column(column, justify="right")
        for r in reversed(rows.to_dicts()):
            series.add_row(str(r["date"]), *(
                f"{r[c]:.4f}" if isinstance(r[c], float) else "-"
                for c in ("atm_iv_30d", "skew_25d_30d", "term_slope_30_90", "rv_cc_21d",
                          "vrp_30d", "iv_rank_252")
            ))  # fmt: skip
        out.print(series)
