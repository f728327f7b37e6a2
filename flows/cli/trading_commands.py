"""``volflow signal``, ``reconcile``, ``halt``, ``resume``, ``positions``, ``orders``:
the money path from the terminal (the hourly-signal and reconcile flows, and the
order store)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from data_lake.errors import ConfigError
from execution.store import TradingState
from flows.cli.common import UnderlyingsOpt, cli_settings, fmt, out, run_flow, validated

AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object")]
AsOf = Annotated[datetime | None, typer.Option(help="The clock (UTC unless given), for replays")]


def register(app: typer.Typer) -> None:
    app.command("signal")(signal_cmd)
    app.command("reconcile")(reconcile_cmd)
    app.command("halt")(halt_cmd)
    app.command("resume")(resume_cmd)
    app.command("positions")(positions_cmd)
    app.command("orders")(orders_cmd)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _dump(result: Any) -> None:
    sys.stdout.write(json.dumps(result, default=str) + "\n")


def signal_cmd(
    underlyings: UnderlyingsOpt = None,
    as_of: AsOf = None,
    slot: Annotated[datetime | None, typer.Option(help="Schedule slot (default: the hour)")] = None,
    strategy: Annotated[str | None, typer.Option(help="model or rule (settings)")] = None,
    refresh: Annotated[bool | None, typer.Option(
        "--refresh/--no-refresh", help="Ingest the latest snapshot first (settings)")] = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Run one signal slot now (the hourly-signal flow): reconcile, then trade the
    approved champion or the rule through risk and the OMS."""
    cli_settings()
    from flows.hourly_signal import SignalParams, hourly_signal

    params = validated(SignalParams, underlyings=underlyings, as_of=_utc(as_of),
                       slot=_utc(slot), strategy=strategy, refresh_market=refresh)  # fmt: skip
    result = run_flow(hourly_signal, params, label="signal")
    if as_json:
        _dump(result)
        return
    out.print(f"slot {result.get('slot')}: {result.get('status')}"
              + (f" ({result['reason']})" if result.get("reason") else ""))  # fmt: skip
    for u, decision in (result.get("decisions") or {}).items():
        out.print(f"  {u}: {decision}")
    for u, why in (result.get("failed") or {}).items():
        out.print(f"  {u}: FAILED {why}")
    for order in result.get("orders") or []:
        out.print(f"  order {order['client_order_id']}: {order['quantity']} x "
                  f"{order['structure']} at {order['limit']:+.2f} -> "
                  f"{order['status']}")  # fmt: skip
    if result.get("failed"):
        sys.exit(1)


def reconcile_cmd(
    accept: Annotated[bool, typer.Option("--accept", help="Accept the last differences")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (recorded; with --accept)")] = None,
    as_of: AsOf = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Compare the broker with the order store (the reconcile flow); with --accept,
    adopt the broker's view of the last differences and unblock trading."""
    settings = cli_settings()
    if accept:
        if not reason:
            raise ConfigError("--accept needs --reason (it is recorded with the adjustment)")
        from execution.reconcile import accept as accept_differences
        from tasks.trading import close_oms, open_oms

        at = _utc(as_of)
        oms = open_oms(settings, lambda: at or datetime.now(UTC))
        try:
            done = accept_differences(oms, reason)
        finally:
            close_oms(oms)
        if as_json:
            _dump({"accepted": done})
            return
        out.print("\n".join(f"accepted: {d}" for d in done) or "nothing to accept")
        return
    from flows.reconcile import ReconcileParams, reconcile

    result = run_flow(reconcile, validated(ReconcileParams, as_of=_utc(as_of)), label="reconcile")
    if as_json:
        _dump(result)
        return
    out.print(f"reconciled at {result['ts']}: {result['repaired_fills']} missed fill(s) "
              f"repaired, {result['resolved_orders']} order(s) updated, "
              "no differences")  # fmt: skip


def _set_state(state: TradingState, reason: str) -> None:
    from execution.store import open_store

    store = open_store(cli_settings().order_store_url)
    try:
        store.set_trading_state(state, reason, datetime.now(UTC))
    finally:
        store.close()
    out.print(f"trading {state.value}: {reason}")


def halt_cmd(
    reason: Annotated[str, typer.Option(help="Why (recorded, shown by every run)")],
) -> None:
    """Kill switch: no new orders until `volflow resume` (persists across restarts)."""
    _set_state(TradingState.HALTED, reason)


def resume_cmd(
    reason: Annotated[str, typer.Option(help="Why trading may go on")] = "resumed by hand",
) -> None:
    """Back to ACTIVE after a halt or a drawdown's REDUCING."""
    _set_state(TradingState.ACTIVE, reason)


def positions_cmd(as_of: AsOf = None, as_json: AsJson = False) -> None:
    """What the order store says is held (at ``--as-of``: expired contracts are gone),
    and the trading state."""
    from execution.ledger import holdings
    from execution.store import open_store

    store = open_store(cli_settings().order_store_url)
    try:
        state, why, _ = store.trading_state()
        held = holdings(store, _utc(as_of) or datetime.now(UTC))
    finally:
        store.close()
    rows = [{"contract": h.contract.contract_id, "quantity": h.quantity,
             "avg_price": h.avg_price, "structure": h.structure} for h in held]  # fmt: skip
    if as_json:
        _dump({"trading_state": state.value, "reason": why, "positions": rows})
        return
    out.print(f"trading {state.value}" + (f": {why}" if why else ""))
    table = Table(title="positions (order store)")
    for column in ("contract", "quantity", "avg_price", "structure"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["contract"]), str(r["quantity"]), fmt(r["avg_price"]),
                      str(r["structure"]))  # fmt: skip
    out.print(table)


def orders_cmd(as_json: AsJson = False) -> None:
    """Every order in the store with its status."""
    from execution.store import open_store

    store = open_store(cli_settings().order_store_url)
    try:
        states = store.orders()
    finally:
        store.close()
    rows = [{"client_order_id": s.request.client_order_id.value, "underlying":
             s.request.underlying, "structure": s.request.structure,
             "quantity": s.request.quantity, "limit": s.request.limit_price,
             "status": s.status.value, "filled": s.filled_quantity,
             "avg_fill_price": s.avg_fill_price, "reason": s.reason} for s in states]  # fmt: skip
    if as_json:
        _dump(rows)
        return
    table = Table(title="orders")
    for column in ("client_order_id", "underlying", "structure", "quantity", "limit",
                   "status", "filled", "reason"):  # fmt: skip
        table.add_column(column)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("client_order_id", "underlying", "structure",
                                            "quantity")), fmt(r["limit"]),
                      str(r["status"]), str(r["filled"]), str(r["reason"]))  # fmt: skip
    out.print(table)
