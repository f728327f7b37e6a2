"""``volflow train`` and ``volflow models ...``: the train-model flow and the registry."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.common import UnderlyingsOpt, cli_settings, fmt, out, run_flow, validated

models_app = typer.Typer(help="Registered models and their aliases.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.add_typer(models_app, name="models")


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
    settings = cli_settings()
    from flows.train_model import TrainParams, train_model

    params = validated(
        TrainParams, underlyings=underlyings, label=label, horizon=horizon, trials=trials,
        timeout_seconds=timeout, n_folds=folds,
    )  # fmt: skip
    result = run_flow(train_model, params, label="train model")
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return
    across = result.get("oos_ic_is_cross_section") == 1.0
    basis = "across underlyings" if across else "over time, against trailing means"
    out.print(
        f"run {result['run_id']}: {result['model_name']} version {result['model_version']} "
        f"-> {result['alias']} ({result['reason']})\n"
        f"out of sample ({result['n_oos']} rows): IC {fmt(result.get('oos_ic'))} "
        f"({basis}, t {fmt(result.get('oos_ic_tstat'))}), rank IC "
        f"{fmt(result.get('oos_rank_ic'))}, "
        f"Sharpe net {fmt(result.get('oos_sharpe_net'))} (t "
        f"{fmt(result.get('oos_sharpe_net_tstat'))}), gross {fmt(result.get('oos_sharpe_gross'))}"
        "\n"
        f"MLflow UI: make mlflow-ui (tracking store {settings.tracking_uri})"
    )


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Registered model versions with their aliases and out-of-sample metrics."""
    from models.registry import list_versions

    rows = list_versions(cli_settings().tracking_uri)
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
            fmt(r["oos_rank_ic"]), fmt(r["oos_sharpe_net"]), r["created"], r["decision"],
        )  # fmt: skip
    out.print(table)


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

    model = promote(cli_settings().tracking_uri, version, name, reason)
    out.print(f"{model} version {version} is now the champion ({reason})")
