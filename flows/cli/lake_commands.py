"""``volflow lake ...`` and ``volflow sql``: what the lake holds, its quality, SQL."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from data_lake.ingest import failure_line
from flows.cli.common import OutputFormat, cli_settings, out

lake_app = typer.Typer(help="Inspect the lake.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(lake_app, name="lake")
    app.command("sql")(sql_cmd)


@lake_app.command("status")
def lake_status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Tables, partitions, rows, date ranges, quarantine counts and the last ingest."""
    from data_lake.status import lake_status

    report = lake_status(cli_settings().lake)
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
        for r in quality_report(cli_settings().lake)
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


@lake_app.command("check")
def lake_check_cmd(
    deep: Annotated[
        bool, typer.Option("--deep", help="Read every page of every file, not only footers")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """List every damaged, stray or old-version lake file and unfinished commits; exits
    1 if a file is damaged (queries that read it fail; the others work)."""
    from data_lake.maintenance import check_lake

    report = check_lake(cli_settings().lake, deep=deep)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        table = Table(title=f"lake check: {report.files:,} files")
        for column in ("kind", "file", "problem"):
            table.add_column(column, overflow="fold")
        for p in report.problems:
            table.add_row(p["kind"], p["file"], p["problem"])
        if report.problems:
            out.print(table)
        else:
            out.print(f"lake check: {report.files:,} files, no problems")
    if report.damaged:
        sys.stderr.write(f"error: {len(report.damaged)} damaged or unknown lake file(s)\n")
        sys.exit(1)


@lake_app.command("migrate")
def lake_migrate_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Rewrite files of older schema versions in the current one (optional: readers
    accept older files; migrated lakes skip the search for them)."""
    from data_lake.maintenance import migrate_lake

    result = migrate_lake(cli_settings().lake)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        out.print(
            f"lake migrate: {result['rewritten_files']:,} file(s) rewritten, "
            f"{result['old_files_left']:,} old file(s) left"
        )
    for line in result["failed"]:
        sys.stderr.write(f"error: {line}\n")
    if result["failed"]:
        sys.exit(1)


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
        sys.stderr.write(f"corrupt file: {failure_line(bad['file'], bad['error'])}\n")
    out.print(f"last ingest: {report['last_ingest'] or 'never'}")


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

    frame = run_query(cli_settings().lake, query)
    if fmt is OutputFormat.csv:
        sys.stdout.write(frame.write_csv())
    elif fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str) + "\n")
    else:
        with pl.Config(tbl_rows=max_rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=40):
            out.print(str(frame), markup=False, highlight=False)
