"""The order store on SQLite (WAL) and PostgreSQL, the same code: migrations, intent
before sending, reports and fills in one transaction, slots, the trading state."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from execution.domain import (
    BrokerOrderId,
    Fill,
    OptionContract,
    OrderLeg,
    OrderReport,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Right,
    TimeInForce,
)
from execution.ids import client_order_id
from execution.orders import OrderState, apply_fill, apply_report, submitted
from execution.store import (
    MIGRATIONS,
    SCHEMA_REVISION,
    OrderStore,
    StoreError,
    TradingState,
    default_url,
    open_store,
)

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("VOLFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
SLOT = datetime(2024, 3, 15, 14, 0, tzinfo=UTC)
CALL = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.CALL)
PUT = OptionContract("SPY", date(2024, 4, 19), 510.0, Right.PUT)


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped after it."""
    admin = create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"volflow_{uuid.uuid4().hex[:12]}"
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # no server here: say so
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES} ({type(exc).__name__})")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield default_url(tmp_path / "home")
    else:
        yield from _postgres_database()


@pytest.fixture
def store(url: str) -> Iterator[OrderStore]:
    opened = open_store(url)
    yield opened
    opened.close()


def _request(structure: str = "straddle", quantity: int = 2) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id("hourly-signal", SLOT, "SPY", structure),
        legs=(OrderLeg(CALL, OrderSide.BUY), OrderLeg(PUT, OrderSide.BUY)),
        quantity=quantity,
        order_type=OrderType.LIMIT,
        limit_price=12.35,
        time_in_force=TimeInForce.DAY,
        ts_init=SLOT,
        structure=structure,
        underlying="SPY",
    )


def test_a_new_store_is_migrated_to_the_latest_revision_and_reopens(url: str) -> None:
    first = open_store(url)
    with first.engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if first.engine.dialect.name == "sqlite":
            mode = connection.execute(text("PRAGMA journal_mode")).scalar()
            assert mode == "wal"
    assert revision == SCHEMA_REVISION
    first.close()
    open_store(url).close()  # already at head: nothing to do


def test_a_store_of_an_older_revision_is_upgraded_on_open(url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    store = open_store(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")  # as a store of the first release was
    assert "signals" not in inspect(store.engine).get_table_names()
    store.close()
    reopened = open_store(url)
    with reopened.engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == SCHEMA_REVISION
    assert "signals" in inspect(reopened.engine).get_table_names()
    reopened.close()


def test_an_order_is_stored_before_sending_and_its_life_after(store: OrderStore, url: str) -> None:
    request = _request()
    state, created = store.record_intent(request, "hourly-signal", SLOT)
    assert created and state.status is OrderStatus.INITIALIZED
    again, created = store.record_intent(request, "hourly-signal", SLOT)  # a re-run
    assert not created and again == state
    state = submitted(state, SLOT)
    store.save(state)
    assert [s.request.client_order_id for s in store.in_flight()] == [request.client_order_id]
    at = SLOT + timedelta(seconds=2)
    report = OrderReport(
        request.client_order_id, BrokerOrderId("901"), OrderStatus.ACCEPTED, 0, None, at, at
    )
    state = apply_report(state, report)
    store.save(state, report)
    fill = Fill(
        "exec-1", request.client_order_id, BrokerOrderId("901"), CALL, OrderSide.BUY, 1, 6.2,
        0.65, at, at,
    )  # fmt: skip
    state = apply_fill(state, fill, units=1)
    assert store.record_fill(state, fill)
    assert not store.record_fill(state, fill)  # the same execution reported again
    reopened = open_store(url)
    loaded = reopened.load(request.client_order_id)
    reopened.close()
    assert loaded == state and loaded is not None
    assert loaded.status is OrderStatus.PARTIALLY_FILLED and loaded.fill_ids == {"exec-1"}
    assert loaded.ts_last.tzinfo is not None and loaded.request == request
    assert [e["status"] for e in store.events(request.client_order_id)] == ["ACCEPTED"]
    assert store.in_flight() == []


def test_one_id_for_two_different_orders_is_refused(store: OrderStore) -> None:
    store.record_intent(_request(quantity=2), "hourly-signal", SLOT)
    with pytest.raises(StoreError, match="the same id for two different orders"):
        store.record_intent(_request(quantity=5), "hourly-signal", SLOT)


def test_a_slot_is_claimed_once(store: OrderStore) -> None:
    assert store.claim_slot("hourly-signal", SLOT, "run-a", SLOT)
    assert store.claim_slot("hourly-signal", SLOT, "run-a", SLOT)  # a retry of the same run
    assert not store.claim_slot("hourly-signal", SLOT, "run-b", SLOT)
    assert store.claim_slot("hourly-signal", SLOT + timedelta(hours=1), "run-b", SLOT)
    assert store.slot_owner("hourly-signal", SLOT) == "run-a"


def test_the_trading_state_and_rejections_survive_a_restart(store: OrderStore, url: str) -> None:
    assert store.trading_state() == (TradingState.ACTIVE, "", None)
    store.set_trading_state(TradingState.HALTED, "daily loss limit breached", SLOT)
    store.record_rejection(None, "max_orders_per_hour", "7 orders this hour, limit 6", SLOT)
    reopened = open_store(url)
    assert reopened.trading_state() == (TradingState.HALTED, "daily loss limit breached", SLOT)
    assert [r["check_name"] for r in reopened.rejections()] == ["max_orders_per_hour"]
    reopened.close()


CLAIM = """
import sys
from datetime import UTC, datetime
from execution.store import open_store
store = open_store(sys.argv[1])
won = store.claim_slot("hourly-signal", datetime(2024, 3, 15, 14, tzinfo=UTC), sys.argv[2],
                       datetime.now(UTC))
print("won" if won else "taken")
"""


def test_two_processes_claiming_one_slot_at_once_one_wins(url: str) -> None:
    """Two signal runs of one slot (a duplicate scheduled run): real processes open a
    new store at the same moment (the migration is locked) and claim the slot."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, url, f"run-{i}"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        results.append(out.strip())
    assert sorted(results) == ["taken", "won"]


def test_an_unreachable_store_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot open the order store postgresql\+psycopg://"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="invalid order store URL"):
        open_store("notadialect://x")


def test_orders_states_are_listed_by_status(store: OrderStore) -> None:
    one, _ = store.record_intent(_request("straddle"), "hourly-signal", SLOT)
    two, _ = store.record_intent(_request("vertical"), "hourly-signal", SLOT)
    store.save(submitted(two, SLOT))
    assert [s.request.structure for s in store.orders({OrderStatus.INITIALIZED})] == ["straddle"]
    assert {s.request.structure for s in store.orders()} == {"straddle", "vertical"}
    assert isinstance(one, OrderState)
