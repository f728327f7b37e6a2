"""What every command group shares: consoles, errors, parameter validation, output
formats and the progress bar of a flow run in this process."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from data_lake.errors import ConfigError
from data_lake.ingest import PartialIngestError
from flows.environment import prepare_environment
from flows.settings import Settings, load_settings

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

# A flow summary printer: (summary, as_json) -> None
Emit = Callable[[dict[str, Any], bool], None]


def fail(message: str, code: int) -> None:
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


def cli_settings() -> Settings:
    """Settings, with the process environment prepared for Prefect (before it loads)."""
    settings = load_settings()
    prepare_environment(settings.home)
    return settings


def validated(model: type[BaseModel], **values: Any) -> Any:
    """``model(**values)`` without the unset options; a bad value is one ConfigError."""
    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where + ': ' if where else ''}{message}") from None


def day(value: datetime | None) -> date | None:
    """The date of a ``--start``/``--end`` option."""
    return value.date() if value else None


def run_flow(
    flow_fn: Any,
    params: Any,
    *,
    label: str,
    total: int | None = None,
    emit: Emit | None = None,
    as_json: bool = False,
) -> dict[str, Any]:
    """Run a flow in this process with a progress bar fed by its tasks. On a partial
    failure the summary (written and failed units) is printed before the error."""
    from tasks import progress

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
            if emit is not None:
                emit(exc.summary, as_json)
            raise
        finally:
            progress.remove_listener(advance)


def fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON")]
BuildFeaturesOpt = Annotated[
    bool, typer.Option("--build-features", help="Then build their features (build-features)")
]
ReplaceOpt = Annotated[
    bool, typer.Option(help="Replace whole partitions instead of merging snapshots")
]
