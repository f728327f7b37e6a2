"""``volflow ingest ...`` and ``volflow backfill ...``: the ingest-chains and backfill
flows, run in this process."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from data_lake.errors import ConfigError
from flows.cli.common import (
    BuildFeaturesOpt,
    EndOpt,
    JsonOpt,
    ReplaceOpt,
    SeedOpt,
    SignalChoice,
    SignalOpt,
    StartOpt,
    UnderlyingsOpt,
    VrpOpt,
    cli_settings,
    day,
    out,
    run_flow,
    validated,
)
from flows.cli.feature_commands import emit_features
from flows.settings import Settings

ingest_app = typer.Typer(help="Ingest option chains into the lake.", no_args_is_help=True)
backfill_app = typer.Typer(help="Load a date range (resumable).", no_args_is_help=True)
IntradayOpt = Annotated[bool, typer.Option(help="Hourly snapshots in regular trading hours")]


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(backfill_app, name="backfill")


def ingest_params(*, backfill: bool = False, **values: Any) -> Any:
    """Validated flow parameters (IngestParams, or BackfillParams with ``backfill``)."""
    from flows.backfill import BackfillParams
    from flows.ingest_chains import IngestParams

    return validated(BackfillParams if backfill else IngestParams, **values)


def progress_plan(params: Any, settings: Settings) -> tuple[str, int | None]:
    """The progress bar's label and total; checks what can be checked before Prefect
    starts (underlyings, dates, files), so a user error fails fast."""
    from data_lake.calendar import exchange_calendar
    from flows.ingest_chains import validate_files, validate_request

    if params.source == "synthetic":
        underlyings, _ = validate_request(params, settings)
        total = None
        if params.start and params.end:
            total = len(exchange_calendar().sessions(params.start, params.end)) * len(underlyings)
        return f"ingest {','.join(underlyings)}", total
    if params.source == "lean":
        validate_files(params)
        return f"ingest LEAN {','.join(params.underlyings or [])}", None
    if params.source in ("yfinance", "ibkr", "alpaca"):
        symbols = params.underlyings or settings.underlyings
        return f"poll {params.source} {','.join(symbols)}", len(symbols)
    return f"ingest {len(validate_files(params))} {params.source} file(s)", None


def run_ingest(flow_fn: Any, params: Any, settings: Settings, as_json: bool) -> dict[str, Any]:
    """Run an ingest flow with its progress bar; print the summary."""
    label, total = progress_plan(params, settings)
    summary = run_flow(
        flow_fn, params, label=label, total=total, emit=emit_summary, as_json=as_json
    )
    emit_summary(summary, as_json)
    return summary


def emit_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(summary, default=str))
        return
    table = Table(title=f"ingest into {summary['lake']}")
    unit = "file" if "files" in summary else "underlying"
    for column in (unit, "partitions", "skipped", "option rows", "bar rows", "quarantined"):
        table.add_column(column, justify="right" if column != unit else "left")
    for name, s in summary.get("files", summary.get("underlyings", {})).items():
        table.add_row(
            name,
            str(s["partitions"]),
            str(s["skipped_partitions"]),
            f"{s['rows'].get('option_quotes', 0):,}",
            f"{s['rows'].get('underlying_bars', 0):,}",
            f"{sum(s['quarantined'].values()):,}",
        )
    for underlying, message in summary["failed"].items():
        table.add_row(underlying, "FAILED", "", "", "", message)
    out.print(table)
    if summary.get("features"):
        emit_features(summary["features"], as_json=False)


def market_options(
    underlyings: str | None,
    start: datetime | None,
    end: datetime | None,
    seed: int | None,
    signal: SignalChoice | None,
    vrp: float | None,
    intraday: bool,
) -> dict[str, Any]:
    """The options every synthetic-market command shares, as flow parameters."""
    return {
        "underlyings": underlyings,
        "start": day(start),
        "end": day(end),
        "seed": seed,
        "signal": signal.value if signal else None,
        "vrp": vrp,
        "intraday": intraday,
    }


@ingest_app.command("synthetic")
def ingest_synthetic(
    underlyings: UnderlyingsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    seed: SeedOpt = None,
    signal: SignalOpt = None,
    vrp: VrpOpt = None,
    intraday: IntradayOpt = False,
    replace: ReplaceOpt = False,
    dirt_rate: Annotated[
        float | None, typer.Option(help="Fraction of quote rows made bad on purpose (0-0.5)")
    ] = None,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate the seeded synthetic market and ingest it (runs the ingest-chains flow).

    Without --start/--end, writes the latest snapshot as of now.
    """
    settings = cli_settings()
    params = ingest_params(
        build_features=build_features,
        **market_options(underlyings, start, end, seed, signal, vrp, intraday),
        dirt_rate=dirt_rate,
        mode="replace" if replace else "merge",
    )
    from flows.ingest_chains import ingest_chains

    run_ingest(ingest_chains, params, settings, as_json)


@ingest_app.command("cboe")
def ingest_cboe(
    files: Annotated[
        list[Path], typer.Argument(help="CBOE DataShop Option EOD Summary files (.csv or .zip)")
    ],
    underlyings: Annotated[
        str | None, typer.Option(help="Only these underlyings, e.g. SPX,AAPL (default: all)")
    ] = None,
    replace: ReplaceOpt = False,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import CBOE DataShop Option EOD Summary files (runs the ingest-chains flow).

    Each file is parsed and checked in full before any of it is written; a bad file
    is reported and the other files are still imported.
    """
    settings = cli_settings()
    params = ingest_params(
        build_features=build_features,
        source="cboe",
        files=[str(f) for f in files],
        underlyings=underlyings,
        mode="replace" if replace else "merge",
    )
    from flows.ingest_chains import ingest_chains

    run_ingest(ingest_chains, params, settings, as_json)


@ingest_app.command("lean")
def ingest_lean(
    path: Annotated[Path, typer.Argument(help="LEAN's Data folder (holds equity/usa/...)")],
    underlyings: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. AAPL,GOOG")],
    resolution: Annotated[
        str,
        typer.Option(
            help="Option chains at daily (universe chains + daily bars), hour or minute "
            "resolution; 'none' for underlying bars and factors only"
        ),
    ] = "daily",
    start: StartOpt = None,
    end: EndOpt = None,
    replace: ReplaceOpt = False,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import LEAN data: daily equity bars (raw), factor files (split and dividend
    factors) and option chains with the vendor's IV and Greeks.

    The adjusted history is the underlying_bars_adjusted view; the vendor analytics are
    the option_vendor_analytics table. Minute and hour chains bring the underlying's
    bars of that resolution. A file that cannot be read is reported (exit 1) and only
    the sessions it covers are left out.
    """
    settings = cli_settings()
    if resolution not in ("daily", "hour", "minute", "none"):
        raise ConfigError(f"--resolution {resolution!r}: use daily, hour, minute or none")
    params = ingest_params(
        build_features=build_features,
        source="lean",
        files=[str(path)],
        underlyings=underlyings,
        resolution=None if resolution == "none" else resolution,
        start=day(start),
        end=day(end),
        mode="replace" if replace else "merge",
    )
    from flows.ingest_chains import ingest_chains

    run_ingest(ingest_chains, params, settings, as_json)


@ingest_app.command("yfinance")
def ingest_yfinance(
    underlyings: UnderlyingsOpt = None,
    min_dte: Annotated[
        int | None, typer.Option(help="Skip expiries closer than this many days")
    ] = None,
    max_dte: Annotated[
        int | None, typer.Option(help="Skip expiries further than this many days")
    ] = None,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Poll live chains from Yahoo Finance (yfinance) once and write one snapshot each.

    Requests are rate limited (settings: yahoo.requests_per_second) and retried with
    exponential backoff and jitter; an empty or partial response fails that underlying
    (exit 1) and writes nothing for it. Quotes are delayed by Yahoo (~15 min).
    """
    settings = cli_settings()
    params = ingest_params(
        build_features=build_features,
        source="yfinance",
        underlyings=underlyings,
        min_dte=min_dte,
        max_dte=max_dte,
    )
    from flows.ingest_chains import ingest_chains

    run_ingest(ingest_chains, params, settings, as_json)


def _broker_poll(
    source: str, underlyings: str | None, min_dte: int | None, max_dte: int | None,
    build_features: bool, as_json: bool,
) -> None:  # fmt: skip
    settings = cli_settings()
    params = ingest_params(build_features=build_features, source=source,
                           underlyings=underlyings, min_dte=min_dte, max_dte=max_dte)  # fmt: skip
    from flows.ingest_chains import ingest_chains

    run_ingest(ingest_chains, params, settings, as_json)


@ingest_app.command("ibkr")
def ingest_ibkr(
    underlyings: UnderlyingsOpt = None,
    min_dte: Annotated[int | None, typer.Option(help="Skip expiries closer than this")] = None,
    max_dte: Annotated[int | None, typer.Option(help="Skip expiries further than this")] = None,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Snapshot option chains from Interactive Brokers (TWS or IB Gateway at
    execution.ibkr.host:port, read-only): strikes within 25% of spot, expiries in the
    DTE window, with IB's model IV and Greeks; one snapshot per underlying."""
    _broker_poll("ibkr", underlyings, min_dte, max_dte, build_features, as_json)


@ingest_app.command("alpaca")
def ingest_alpaca(
    underlyings: UnderlyingsOpt = None,
    min_dte: Annotated[int | None, typer.Option(help="Skip expiries closer than this")] = None,
    max_dte: Annotated[int | None, typer.Option(help="Skip expiries further than this")] = None,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Snapshot option chains from Alpaca's market data (keys: execution.alpaca):
    strikes within 25% of spot, expiries in the DTE window, with Alpaca's IV and
    Greeks; one snapshot per underlying."""
    _broker_poll("alpaca", underlyings, min_dte, max_dte, build_features, as_json)


@ingest_app.command("rates")
def ingest_rates(
    file: Annotated[Path, typer.Argument(help="LEAN interest-rate.csv or a FRED series CSV")],
    series: Annotated[
        str | None, typer.Option(help="Store under this name (default: the file's column)")
    ] = None,
) -> None:
    """Import a risk-free rate series (percent in the file, stored as decimals); it
    replaces the stored series of that name atomically."""
    from data_lake.rates import import_rate_file

    name, rows = import_rate_file(cli_settings().lake, file, series)
    out.print(f"rates: series {name}: {rows} values from {file}")


@backfill_app.command("synthetic")
def backfill_synthetic(
    start: StartOpt = None,
    end: EndOpt = None,
    underlyings: UnderlyingsOpt = None,
    seed: SeedOpt = None,
    signal: SignalOpt = None,
    vrp: VrpOpt = None,
    intraday: IntradayOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Rewrite partitions that already exist")] = False,
    build_features: BuildFeaturesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Load a date range of the synthetic market, skipping partitions already written."""
    settings = cli_settings()
    params = ingest_params(
        backfill=True,
        build_features=build_features,
        **market_options(underlyings, start, end, seed, signal, vrp, intraday),
        overwrite=overwrite,
    )
    from flows.backfill import backfill

    run_ingest(backfill, params, settings, as_json)
