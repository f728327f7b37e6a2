"""The ``volflow`` command line: one module per command group.

``ingest_commands`` (ingest, backfill), ``lake_commands`` (lake, sql),
``feature_commands`` (features), ``model_commands`` (train, models),
``trading_commands`` (signal, reconcile, halt, resume, positions, orders),
``demo_commands`` (demo); ``common`` holds what they share (errors, output formats,
the progress bar of a flow run). The trading and operations groups join the same way:
a module with a ``register(app)`` function, listed in ``GROUPS``.

User errors (bad arguments, bad settings, unreadable lake files) exit with code 2
and one line on stderr; a run where some underlyings failed exits with code 1
after writing the others and reporting each failure.
"""

from __future__ import annotations

import sys

import typer

from data_lake.errors import VolflowError
from data_lake.ingest import PartialIngestError
from flows.cli import (
    demo_commands,
    feature_commands,
    ingest_commands,
    lake_commands,
    model_commands,
    trading_commands,
)
from flows.cli.common import fail
from flows.environment import prepare_environment
from flows.settings import load_settings

GROUPS = (
    ingest_commands, lake_commands, feature_commands, model_commands, trading_commands,
    demo_commands,
)  # fmt: skip

app = typer.Typer(
    help="volflow: options volatility research-to-trading pipeline.", no_args_is_help=True
)
for group in GROUPS:
    group.register(app)


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr."""
    try:
        prepare_environment(load_settings().home)  # before anything imports prefect
        app(standalone_mode=False)
    except PartialIngestError as exc:
        fail(str(exc), 1)
    except VolflowError as exc:
        fail(str(exc), 2)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (unknown option, bad value, ...)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(int(getattr(exc, "exit_code", 2)))
