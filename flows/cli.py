"""The ``volflow`` command line: ingest, backfill, lake status, SQL, demo.

User errors (bad arguments, bad settings, unreadable lake files) exit with code 2
and one line on stderr; a run where some underlyings failed exits with code 1
after writing the others and reporting each failure.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from data_lake.errors import ConfigError, VolflowError
from data_lake.ingest import PartialIngestError
from flows.environment import prepare_environment
from flows.settings import Settings, load_settings

app = typer.Typer(
    help="volflow: options volatility research-to-trading pipeline.", no_args_is_help=True
)
ingest_app = typer.Typer(help="Ingest option chains into the lake.", no_args_is_help=True)
backfill_app = typer.Typer(help="Load a date range (resumable).", no_args_is_help=True)
lake_app = typer.Typer(help="Inspect the lake.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(backfill_app, name="backfill")
app.add_typer(lake_app, name="lake")
features_app = typer.Typer(help="Build and inspect features.", no_args_is_help=True)
app.add_typer(features_app, name="features")
models_app = typer.Typer(help="Registered models and their aliases.", no_args_is_help=True)
app.add_typer(models_app, name="models")
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


def _fail(message: str, code: int) -> None:
    """One line on stderr, no traceback, then exit."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.exit(code)


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class SignalChoice(str, Enum):
    none = "none"
    planted = "planted"


def _settings() -> Settings:
    settings = load_settings()
    prepare_environment(settings.home)
    return settings


def _params(**values: Any) -> Any:
    from flows.ingest import BackfillParams, IngestParams

    cls = BackfillParams if values.pop("_backfill", False) else IngestParams
    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where + ': ' if where else ''}{message}") from None


def _run_with_progress(
    flow_fn: Any, params: Any, settings: Settings, as_json: bool = False
) -> dict[str, Any]:
    """Run a flow in this process with a progress bar fed by the tasks. On a partial
    failure the summary (written and failed units) is printed before the error."""
    from data_lake.calendar import exchange_calendar
    from flows.ingest import validate_files, validate_request
    from tasks import progress

    total = None
    source = getattr(params, "source", None)
    if source is None:  # not an ingest: the build-features or train-model flow
        label = "train model" if hasattr(params, "trials") else "build features"
    elif params.source == "synthetic":
        underlyings, _ = validate_request(params, settings)  # fail fast, before Prefect starts
        label = f"ingest {','.join(underlyings)}"
        if params.start and params.end:
            total = len(exchange_calendar().sessions(params.start, params.end)) * len(underlyings)
    elif params.source == "lean":
        validate_files(params)
        label = f"ingest LEAN {','.join(params.underlyings or [])}"
    elif params.source == "yfinance":
        symbols = params.underlyings or settings.underlyings
        label = f"poll yfinance {','.join(symbols)}"
        total = len(symbols)
    else:
        label = f"ingest {len(validate_files(params))} {params.source} file(s)"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    ) as bar:
        job = bar.add_task(label, total=total, rows=0)

        def advance(underlying: str, day: date, rows: int) -> None:
            current = bar.tasks[0].fields["rows"]
            bar.update(job, advance=1, rows=current + rows)

        progress.add_listener(advance)
        try:
            return dict(flow_fn(params))
        except PartialIngestError as exc:
            _emit_summary(exc.summary, as_json)
            raise
        finally:
            progress.remove_listener(advance)


def _print_ingest_summary(summary: dict[str, Any]) -> None:
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


UnderlyingsOpt = Annotated[
    str | None, typer.Option(help="Comma-separated, e.g. SPY,QQQ (default: settings)")
]
StartOpt = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First trading date")]
EndOpt = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last trading date")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (default: settings)")]
SignalOpt = Annotated[
    SignalChoice | None, typer.Option(help="none: no edge; planted: weak documented edge")
]
VrpOpt = Annotated[
    float | None,
    typer.Option(
        "--vrp",
        help="Variance risk premium of every underlying (default: each profile's, 0.3); "
        "0 prices options fair, the edge-free market of the model tests",
    ),
]


@ingest_app.command("synthetic")
def ingest_synthetic(
    underlyings: UnderlyingsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    seed: SeedOpt = None,
    signal: SignalOpt = None,
    vrp: VrpOpt = None,
    intraday: Annotated[
        bool, typer.Option(help="Hourly snapshots in regular trading hours")
    ] = False,
    replace: Annotated[
        bool, typer.Option(help="Replace whole partitions instead of merging snapshots")
    ] = False,
    dirt_rate: Annotated[
        float | None, typer.Option(help="Fraction of quote rows made bad on purpose (0-0.5)")
    ] = None,
    build_features: Annotated[
        bool, typer.Option("--build-features", help="Then build their features (build-features)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Generate the seeded synthetic market and ingest it (runs the ingest-chains flow).

    Without --start/--end, writes the latest snapshot as of now.
    """
    settings = _settings()
    params = _params(
        build_features=build_features,
        **_market_options(underlyings, start, end, seed, signal, vrp, intraday),
        dirt_rate=dirt_rate,
        mode="replace" if replace else "merge",
    )
    from flows.ingest import ingest_chains

    summary = _run_with_progress(ingest_chains, params, settings, as_json)
    _emit_summary(summary, as_json)


@ingest_app.command("cboe")
def ingest_cboe(
    files: Annotated[
        list[Path], typer.Argument(help="CBOE DataShop Option EOD Summary files (.csv or .zip)")
    ],
    underlyings: Annotated[
        str | None, typer.Option(help="Only these underlyings, e.g. SPX,AAPL (default: all)")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace whole partitions instead of merging snapshots")
    ] = False,
    build_features: Annotated[
        bool, typer.Option("--build-features", help="Then build their features (build-features)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Import CBOE DataShop Option EOD Summary files (runs the ingest-chains flow).

    Each file is parsed and checked in full before any of it is written; a bad file
    is reported and the other files are still imported.
    """
    settings = _settings()
    params = _params(
        build_features=build_features,
        source="cboe",
        files=[str(f) for f in files],
        underlyings=underlyings,
        mode="replace" if replace else "merge",
    )
    from flows.ingest import ingest_chains

    summary = _run_with_progress(ingest_chains, params, settings, as_json)
    _emit_summary(summary, as_json)


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
    replace: Annotated[
        bool, typer.Option(help="Replace whole partitions instead of merging snapshots")
    ] = False,
    build_features: Annotated[
        bool, typer.Option("--build-features", help="Then build their features (build-features)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Import LEAN data: daily equity bars (raw), factor files (split and dividend
    factors) and option chains with the vendor's IV and Greeks.

    The adjusted history is the underlying_bars_adjusted view; the vendor analytics are
    the option_vendor_analytics table. Minute and hour chains bring the underlying's
    bars of that resolution. A file that cannot be read is reported (exit 1) and only
    the sessions it covers are left out.
    """
    settings = _settings()
    if resolution not in ("daily", "hour", "minute", "none"):
        raise ConfigError(f"--resolution {resolution!r}: use daily, hour, minute or none")
    params = _params(
        build_features=build_features,
        source="lean",
        files=[str(path)],
        underlyings=underlyings,
        resolution=None if resolution == "none" else resolution,
        start=start.date() if start else None,
        end=end.date() if end else None,
        mode="replace" if replace else "merge",
    )
    from flows.ingest import ingest_chains

    summary = _run_with_progress(ingest_chains, params, settings, as_json)
    _emit_summary(summary, as_json)


@ingest_app.command("yfinance")
def ingest_yfinance(
    underlyings: UnderlyingsOpt = None,
    min_dte: Annotated[
        int | None, typer.Option(help="Skip expiries closer than this many days")
    ] = None,
    max_dte: Annotated[
        int | None, typer.Option(help="Skip expiries further than this many days")
    ] = None,
    build_features: Annotated[
        bool, typer.Option("--build-features", help="Then build their features (build-features)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Poll live chains from Yahoo Finance (yfinance) once and write one snapshot each.

    Requests are rate limited (settings: yahoo.requests_per_second) and retried with
    exponential backoff and jitter; an empty or partial response fails that underlying
    (exit 1) and writes nothing for it. Quotes are delayed by Yahoo (~15 min).
    """
    settings = _settings()
    params = _params(
        build_features=build_features,
        source="yfinance",
        underlyings=underlyings,
        min_dte=min_dte,
        max_dte=max_dte,
    )
    from flows.ingest import ingest_chains

    summary = _run_with_progress(ingest_chains, params, settings, as_json)
    _emit_summary(summary, as_json)


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

    name, rows = import_rate_file(_settings().lake, file, series)
    out.print(f"rates: series {name}: {rows} values from {file}")


@backfill_app.command("synthetic")
def backfill_synthetic(
    start: StartOpt = None,
    end: EndOpt = None,
    underlyings: UnderlyingsOpt = None,
    seed: SeedOpt = None,
    signal: SignalOpt = None,
    vrp: VrpOpt = None,
    intraday: Annotated[
        bool, typer.Option(help="Hourly snapshots in regular trading hours")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Rewrite partitions that already exist")] = False,
    build_features: Annotated[
        bool, typer.Option("--build-features", help="Then build their features (build-features)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Load a date range of the synthetic market, skipping partitions already written."""
    settings = _settings()
    params = _params(
        build_features=build_features,
        _backfill=True,
        **_market_options(underlyings, start, end, seed, signal, vrp, intraday),
        overwrite=overwrite,
    )
    from flows.ingest import backfill

    summary = _run_with_progress(backfill, params, settings, as_json)
    _emit_summary(summary, as_json)


def _market_options(
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
        "start": start.date() if start else None,
        "end": end.date() if end else None,
        "seed": seed,
        "signal": signal.value if signal else None,
        "vrp": vrp,
        "intraday": intraday,
    }


def _emit_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(summary, default=str))
        return
    _print_ingest_summary(summary)
    if summary.get("features"):
        _emit_features(summary["features"], as_json=False)


@lake_app.command("status")
def lake_status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Tables, partitions, rows, date ranges, quarantine counts and the last ingest."""
    from data_lake.status import lake_status

    report = lake_status(_settings().lake)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    _print_status(report)


@lake_app.command("quality")
def lake_quality_cmd(
    underlying: Annotated[str | None, typer.Option(help="Only this underlying")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only this source (synthetic, cboe, lean, ...)")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List clean partitions too, not only those with dirt")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Rows written and quarantined with the failed checks: totals per source, underlying
    and table, then each day that had quarantined rows (every day with --all)."""
    from data_lake.status import quality_report

    rows = [
        r
        for r in quality_report(_settings().lake)
        if (underlying is None or r["underlying"] == underlying.upper())
        and (source is None or r["source"] == source)
    ]
    days = rows if show_all else [r for r in rows if r["quarantined"]]
    if as_json:
        sys.stdout.write(json.dumps(days, indent=2, default=str) + "\n")
        return
    totals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        total = totals.setdefault(
            (r["source"], r["underlying"], r["table"]),
            {"days": 0, "written": 0, "quarantined": 0, "reasons": {}},
        )
        total["days"] += 1
        total["written"] += r["written"]
        total["quarantined"] += r["quarantined"]
        for reason, n in r["reasons"].items():
            total["reasons"][reason] = total["reasons"].get(reason, 0) + n
    summary = Table(title="lake quality: totals (quarantined rows per failed check)")
    for column in ("source", "underlying", "table", "days", "written", "quarantined", "rate",
                   "reasons"):  # fmt: skip
        summary.add_column(column)
    for (src, und, tbl), t in sorted(totals.items()):
        seen = t["written"] + t["quarantined"]
        rate = t["quarantined"] / seen if seen else 0.0
        reasons = sorted(t["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
        summary.add_row(
            src, und, tbl, f"{t['days']:,}", f"{t['written']:,}", f"{t['quarantined']:,}",
            f"{100 * rate:.2f}%", ", ".join(f"{k} {v:,}" for k, v in reasons) or "-",
        )  # fmt: skip
    out.print(summary)
    if not days:
        return
    table = Table(title="by day" if show_all else "days with quarantined rows")
    for column in (
        "source",
        "underlying",
        "date",
        "table",
        "written",
        "quarantined",
        "rate",
        "reasons",
    ):
        table.add_column(column)
    for r in days:
        listed = ", ".join(f"{k} {v}" for k, v in r["reasons"].items())
        table.add_row(
            r["source"], r["underlying"], r["date"], r["table"], f"{r['written']:,}",
            f"{r['quarantined']:,}", f"{100 * r['quarantine_rate']:.2f}%", listed or "-",
        )  # fmt: skip
    out.print(table)


def _print_status(report: dict[str, Any]) -> None:
    table = Table(title=f"lake {report['lake']}")
    for column in ("table", "partitions", "rows", "MB", "underlyings", "dates", "last write (UTC)"):
        table.add_column(column)
    for t in report["tables"]:
        dates = f"{t['first_date']} .. {t['last_date']}" if t["first_date"] else "-"
        table.add_row(
            t["table"],
            f"{t['partitions']:,}",
            f"{t['rows']:,}",
            f"{t['bytes'] / 1e6:.1f}",
            ",".join(t["underlyings"]) or "-",
            dates,
            (t["last_write"] or "-")[:19],
        )
    out.print(table)
    if report["quarantine"]:
        q = Table(title="quarantine (rows per failed check)")
        for column in ("source_table", "source", "underlying", "reason", "rows"):
            q.add_column(column)
        for row in report["quarantine"]:
            q.add_row(
                *(str(row[c]) for c in ("source_table", "source", "underlying", "reason", "rows"))
            )
        out.print(q)
    else:
        out.print("quarantine: empty")
    for bad in report["corrupt_files"]:
        err.print(f"[red]corrupt file[/red] {bad['file']}: {bad['error']}")
    out.print(f"last ingest: {report['last_ingest'] or 'never'}")


@app.command("sql")
def sql_cmd(
    query: Annotated[
        str,
        typer.Argument(
            help="SQL over the lake's views (option_quotes, underlying_bars, quarantine)"
        ),
    ],
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format")
    ] = OutputFormat.table,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format")] = 50,
) -> None:
    """Run DuckDB SQL against the lake."""
    import polars as pl

    from data_lake.catalog import query as run_query

    frame = run_query(_settings().lake, query)
    if fmt is OutputFormat.csv:
        sys.stdout.write(frame.write_csv())
    elif fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str) + "\n")
    else:
        with pl.Config(tbl_rows=max_rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=40):
            out.print(str(frame), markup=False, highlight=False)


@app.command("demo")
def demo_cmd(
    start: StartOpt = None,
    end: EndOpt = None,
) -> None:
    """Run the embedded pipeline end to end on the synthetic market (no network, no keys)."""
    from flows.demo import run_demo

    settings = _settings()
    run_demo(
        settings,
        start=start.date() if start else None,
        end=end.date() if end else None,
        console=out,
        run_flow=lambda flow_fn, params: _run_with_progress(flow_fn, params, settings),
    )


@features_app.command("build")
def features_build(
    underlyings: UnderlyingsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    full: Annotated[
        bool, typer.Option(help="Rebuild every day in range, not only new ones")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Compute IV/Greeks per contract, surface features and labels (the build-features
    flow): only days not built yet unless --full."""
    from pydantic import ValidationError as PydanticError

    from flows.features import FeatureParams, build_features

    settings = _settings()
    try:
        params = FeatureParams(
            underlyings=underlyings,  # type: ignore[arg-type]  # split by the validator
            start=start.date() if start else None,
            end=end.date() if end else None, full=full,
        )  # fmt: skip
    except PydanticError as exc:
        raise ConfigError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
    try:
        summary = build_features(params)
    except PartialIngestError as exc:
        _emit_features(exc.summary, as_json)
        raise
    _emit_features(summary, as_json)
    del settings


def _emit_features(summary: dict[str, Any], as_json: bool) -> None:
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


def _as_of(text: str | None) -> datetime:
    """The upper time bound of --at: a date means the end of that New York day."""
    if text is None:
        return datetime(9999, 1, 1, tzinfo=UTC)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            end = datetime.combine(day + timedelta(days=1), time(), ZoneInfo("America/New_York"))
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

    lake = _settings().lake
    symbol = underlying.upper()
    bound = _as_of(at)
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


@app.command("train")
def train_cmd(
    underlyings: UnderlyingsOpt = None,
    label: Annotated[str | None, typer.Option(help="Label to predict (settings.train)")] = None,
    horizon: Annotated[int | None, typer.Option(help="Label horizon, in snapshots")] = None,
    trials: Annotated[int | None, typer.Option(help="Optuna trials per outer fold")] = None,
    timeout: Annotated[float | None, typer.Option(help="Optuna time limit per fold (s)")] = None,
    folds: Annotated[int | None, typer.Option(help="Outer walk-forward folds")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Walk-forward LightGBM study (the train-model flow): MLflow runs, a registered
    model version, promoted to champion only if it beats the current one."""
    from pydantic import ValidationError as PydanticError

    from flows.train import TrainParams, train_model

    settings = _settings()
    try:
        params = TrainParams(
            underlyings=underlyings,  # type: ignore[arg-type]  # split by the validator
            label=label, horizon=horizon, trials=trials, timeout_seconds=timeout, n_folds=folds,
        )  # fmt: skip
    except PydanticError as exc:
        raise ConfigError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
    result = train_model(params)
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return
    out.print(
        f"run {result['run_id']}: {result['model_name']} version {result['model_version']} "
        f"-> {result['alias']} ({result['reason']})\n"
        f"out of sample ({result['n_oos']} rows): IC {_fmt(result.get('oos_ic'))} "
        f"(t {_fmt(result.get('oos_ic_tstat'))}), rank IC {_fmt(result.get('oos_rank_ic'))}, "
        f"Sharpe net {_fmt(result.get('oos_sharpe_net'))} (t "
        f"{_fmt(result.get('oos_sharpe_net_tstat'))}), gross {_fmt(result.get('oos_sharpe_gross'))}"
        "\n"
        f"MLflow UI: make mlflow-ui (tracking store {settings.tracking_uri})"
    )


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Registered model versions with their aliases and out-of-sample metrics."""
    from models.registry import list_versions

    rows = list_versions(_settings().tracking_uri)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table(title="registered models")
    for column in ("model", "version", "aliases", "oos_rank_ic", "oos_sharpe_net", "created",
                   "decision"):  # fmt: skip
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["model"], r["version"], ",".join(r["aliases"]) or "-",
            _fmt(r["oos_rank_ic"]), _fmt(r["oos_sharpe_net"]), r["created"], r["decision"],
        )  # fmt: skip
    out.print(table)


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The model version to make champion")],
    name: Annotated[
        str | None, typer.Option(help="Registered model (default: the only one)")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (logged)")] = "manual promotion",
) -> None:
    """Make VERSION the champion by hand (logged on the version with the reason)."""
    from models.registry import promote

    model = promote(_settings().tracking_uri, version, name, reason)
    out.print(f"{model} version {version} is now the champion ({reason})")


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr."""
    try:
        prepare_environment(load_settings().home)  # before anything imports prefect
        app(standalone_mode=False)
    except PartialIngestError as exc:
        _fail(str(exc), 1)
    except VolflowError as exc:
        _fail(str(exc), 2)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (unknown option, bad value, ...)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(int(getattr(exc, "exit_code", 2)))
