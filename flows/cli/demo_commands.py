"""``volflow demo``: the embedded pipeline end to end (flows/demo.py)."""

from __future__ import annotations

from typing import Any

import typer

from flows.cli.common import EndOpt, StartOpt, cli_settings, day, out, run_flow
from flows.cli.feature_commands import emit_features
from flows.cli.ingest_commands import emit_summary, progress_plan


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def demo_cmd(start: StartOpt = None, end: EndOpt = None) -> None:
    """Run the embedded pipeline end to end on the synthetic market (no network, no keys)."""
    from flows.demo import run_demo

    settings = cli_settings()

    def run(flow_fn: Any, params: Any) -> dict[str, Any]:
        if hasattr(params, "source"):  # an ingest
            label, total = progress_plan(params, settings)
            return run_flow(flow_fn, params, label=label, total=total, emit=emit_summary)
        if hasattr(params, "full"):
            return run_flow(flow_fn, params, label="build features", emit=emit_features)
        if hasattr(params, "slot"):
            return run_flow(flow_fn, params, label="signal")
        return run_flow(flow_fn, params, label="train model")

    run_demo(settings, start=day(start), end=day(end), console=out, run_flow=run)
