"""Signal runs on a real lake, a real MLflow registry, the paper broker and the order
store: the slot is traded once whatever re-runs it, only an approved champion
trades, a halt holds across restarts, reconciliation drift blocks, one underlying's
trouble leaves the others alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from data_lake.lake import Lake
from execution.domain import (
    ClientOrderId,
    OrderLeg,
    OrderRequest,
    OrderSide,
    OrderType,
    TimeInForce,
)
from execution.ledger import holdings, signals
from execution.market import LakeQuotes
from execution.oms import OrderManager
from execution.paper import PaperBroker
from execution.signal_run import SignalConfig, run_signal
from execution.store import TradingState, open_store
from tests.execution.conftest import SNAPSHOTS, Registry, register_champion

SLOT = SNAPSHOTS[0]
RULE = SignalConfig("hourly-signal", ["SPY", "QQQ"], strategy="rule", rule_every_sessions=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _oms(lake: Lake, tmp_path: Path, clock: Clock) -> OrderManager:
    store = open_store(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    broker = PaperBroker(tmp_path / "paper.sqlite", LakeQuotes(lake), clock)
    return OrderManager(store, broker, clock)


def _venue_orders(oms: OrderManager) -> list[str]:
    from sqlalchemy import select

    from execution.paper import PAPER_ORDERS

    assert isinstance(oms.broker, PaperBroker)
    with oms.broker.engine.begin() as connection:
        return sorted(connection.execute(select(PAPER_ORDERS.c.client_order_id)).scalars())


def test_the_rule_trades_a_slot_once_whoever_runs_it(lake_copy: Lake, tmp_path: Path) -> None:
    clock = Clock(SLOT + timedelta(minutes=5))
    oms = _oms(lake_copy, tmp_path, clock)
    first = run_signal(RULE, oms, lake_copy, SLOT, "run-a")
    assert first["status"] == "done", first
    assert {o["underlying"] for o in first["orders"]} == {"SPY", "QQQ"}
    assert {o["status"] for o in first["orders"]} == {"FILLED"}
    placed = _venue_orders(oms)
    assert len(placed) == 2
    duplicate = run_signal(RULE, oms, lake_copy, SLOT, "run-b")  # Prefect's duplicate run
    assert duplicate["status"] == "skipped"
    assert "run-a" in duplicate["reason"]
    retry = run_signal(RULE, oms, lake_copy, SLOT, "run-a")  # the same run, retried
    assert retry["orders"] == []
    assert _venue_orders(oms) == placed
    held = holdings(oms.store, clock.now)
    assert {h.contract.underlying for h in held} == {"SPY", "QQQ"}
    assert {h.structure for h in held} == {"short_iron_butterfly"}
    clock.now = SNAPSHOTS[1] + timedelta(minutes=5)
    later = run_signal(RULE, oms, lake_copy, SNAPSHOTS[1], "run-c")
    assert later["orders"] == []
    assert later["decisions"] == {
        "SPY": "hold: holding to expiry",
        "QQQ": "hold: holding to expiry",
    }
    assert not later["reconciliation"]["blocked"]


def test_a_champion_that_did_not_earn_it_does_not_trade(
    lake_copy: Lake, tmp_path: Path, registry: Registry
) -> None:
    version = register_champion(registry.tracking_uri, registry.model_name, tstat=-7.95,
                                n=2_000, prediction=0.05)  # fmt: skip
    config = SignalConfig("hourly-signal", ["SPY", "QQQ"], model_name=registry.model_name,
                          tracking_uri=registry.tracking_uri)  # fmt: skip
    oms = _oms(lake_copy, tmp_path, Clock(SLOT + timedelta(minutes=5)))
    summary = run_signal(config, oms, lake_copy, SLOT, "run-a")
    assert summary["status"] == "no_trade"
    assert "model not approved" in summary["reason"]
    assert "t -7.95 < 2.00" in summary["reason"]
    assert _venue_orders(oms) == []
    rows = signals(oms.store)
    assert [(r["underlying"], r["decision"], r["model_version"]) for r in rows] == [
        ("SPY", "no_trade", version), ("QQQ", "no_trade", version)]  # fmt: skip
    few = register_champion(registry.tracking_uri, registry.model_name, tstat=3.0, n=100,
                            prediction=0.05)  # fmt: skip
    assert few != version
    again = run_signal(config, oms, lake_copy, SNAPSHOTS[1], "run-b")
    assert "100 out-of-sample rows < 500" in again["reason"]


def test_an_approved_champion_trades_its_predictions(
    lake_copy: Lake, tmp_path: Path, registry: Registry
) -> None:
    version = register_champion(registry.tracking_uri, registry.model_name, tstat=3.1,
                                n=2_000, prediction=0.05)  # fmt: skip
    config = SignalConfig("hourly-signal", ["SPY", "QQQ"], model_name=registry.model_name,
                          tracking_uri=registry.tracking_uri)  # fmt: skip
    oms = _oms(lake_copy, tmp_path, Clock(SLOT + timedelta(minutes=5)))
    summary = run_signal(config, oms, lake_copy, SLOT, "run-a")
    assert {o["structure"] for o in summary["orders"]} == {"long_straddle"}, summary
    rows = [r for r in signals(oms.store) if r["decision"] == "order"]
    assert {r["model_version"] for r in rows} == {version}
    assert [r["prediction"] for r in rows] == pytest.approx([0.05, 0.05], abs=1e-9)
    # a prediction outside the range the model showed out of sample is refused
    register_champion(registry.tracking_uri, registry.model_name, tstat=3.1, n=2_000,
                      prediction=0.9, oos_range=(-0.1, 0.1))  # fmt: skip
    other = replace(config, deployment="other")
    refused = run_signal(other, _oms(lake_copy, tmp_path / "b", oms.clock), lake_copy, SLOT, "x")
    assert refused["orders"] == []
    assert all("signal 0.9 outside the training range" in d for d in refused["decisions"].values())


def test_a_halt_refuses_every_order_and_outlives_a_restart(lake_copy: Lake, tmp_path: Path) -> None:
    clock = Clock(SLOT + timedelta(minutes=5))
    oms = _oms(lake_copy, tmp_path, clock)
    oms.store.set_trading_state(TradingState.HALTED, "desk says stop", clock.now)
    oms.store.close()
    oms = _oms(lake_copy, tmp_path, clock)  # a new process
    assert oms.store.trading_state()[:2] == (TradingState.HALTED, "desk says stop")
    summary = run_signal(RULE, oms, lake_copy, SLOT, "run-a")
    assert summary["orders"] == []
    assert _venue_orders(oms) == []
    assert {r["check_name"] for r in oms.store.rejections()} == {"trading_state"}
    assert all("HALTED" in d for d in summary["decisions"].values())


def test_drift_at_the_broker_blocks_the_run_until_accepted(lake_copy: Lake, tmp_path: Path) -> None:
    from execution.reconcile import accept

    clock = Clock(SLOT + timedelta(minutes=5))
    oms = _oms(lake_copy, tmp_path, clock)
    run_signal(RULE, oms, lake_copy, SLOT, "run-a")
    spy = next(h for h in holdings(oms.store, clock.now) if h.contract.underlying == "SPY")
    hand = OrderRequest(ClientOrderId("by-hand"), (OrderLeg(spy.contract, OrderSide.BUY),), 1,
                        OrderType.MARKET, None, TimeInForce.DAY, clock.now)  # fmt: skip
    oms.broker.submit(hand)  # the desk closes part of a leg in the broker's own app
    clock.now = SNAPSHOTS[1] + timedelta(minutes=5)
    blocked = run_signal(RULE, oms, lake_copy, SNAPSHOTS[1], "run-b")
    assert blocked["status"] == "no_trade"
    assert blocked["reconciliation"]["blocked"]
    assert any(spy.contract.contract_id in d for d in blocked["reconciliation"]["discrepancies"])
    assert len(_venue_orders(oms)) == 3  # nothing traded to close the gap
    accept(oms, "closed by hand")
    clock.now += timedelta(minutes=1)
    after = run_signal(RULE, oms, lake_copy, SNAPSHOTS[1] + timedelta(hours=1), "run-c")
    assert not after["reconciliation"]["blocked"]


def test_an_underlying_without_quotes_does_not_stop_the_others(
    lake_copy: Lake, tmp_path: Path
) -> None:
    config = replace(RULE, underlyings=["IWM", "SPY"])
    oms = _oms(lake_copy, tmp_path, Clock(SLOT + timedelta(minutes=5)))
    summary = run_signal(config, oms, lake_copy, SLOT, "run-a")
    assert summary["decisions"]["IWM"].startswith("no_trade: no quotes")
    assert [o["underlying"] for o in summary["orders"]] == ["SPY"]


def test_quotes_older_than_the_limit_are_not_traded(lake_copy: Lake, tmp_path: Path) -> None:
    oms = _oms(lake_copy, tmp_path, Clock(SLOT + timedelta(minutes=40)))
    summary = run_signal(RULE, oms, lake_copy, SLOT, "run-a")
    assert summary["orders"] == []
    assert all("s old" in d for d in summary["decisions"].values()), summary
