"""The order store: the source of truth for what the money path decided and did.

SQLAlchemy Core over SQLite (WAL, under ``VOLFLOW_HOME`` by default) or PostgreSQL
(by URL), the same code for both; the schema is created and upgraded by Alembic
migrations (``execution/migrations``) when a store is opened, under a lock so two
processes opening a new store at once do not race.

The order of writes is what makes the money path safe: an order's intent is
written (``record_intent``, status ``INITIALIZED``, keyed by its deterministic client
order id) *before* it is sent; every report and fill is stored with the order's new
state in one transaction, so the store never holds half of an update; a fill is
stored once per venue execution id. A signal run first claims its slot
(``claim_slot``): a unique row, so of two runs for one slot exactly one proceeds.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from data_lake.errors import BrokerError, ConfigError
from execution.domain import (
    BrokerOrderId,
    ClientOrderId,
    ExerciseStyle,
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
from execution.orders import OrderState

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMA_REVISION = "0002"


class StoreError(BrokerError):
    """The order store cannot be opened, read or written."""


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce risk
    HALTED = "HALTED"  # no orders


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (which keeps no zone)
    and PostgreSQL alike; a naive time is refused, not assumed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ConfigError(f"naive time {value!r} given to the order store: use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


METADATA = MetaData()
ORDERS = Table(
    "orders",
    METADATA,
    Column("client_order_id", String(64), primary_key=True),
    Column("deployment", String(100), nullable=False),
    Column("slot", UTCDateTime(), nullable=False),
    Column("underlying", String(16), nullable=False),
    Column("structure", String(40), nullable=False),
    Column("request", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("broker_order_id", String(100)),
    Column("filled_quantity", Integer, nullable=False),
    Column("avg_fill_price", Float),
    Column("reason", Text, nullable=False),
    Column("ts_init", UTCDateTime(), nullable=False),
    Column("ts_last", UTCDateTime(), nullable=False),
)
ORDER_EVENTS = Table(
    "order_events",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_order_id", String(64), ForeignKey("orders.client_order_id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("filled_quantity", Integer, nullable=False),
    Column("avg_fill_price", Float),
    Column("broker_order_id", String(100)),
    Column("reason", Text, nullable=False),
    Column("ts_event", UTCDateTime(), nullable=False),
    Column("ts_init", UTCDateTime(), nullable=False),
)
FILLS = Table(
    "fills",
    METADATA,
    Column("fill_id", String(100), primary_key=True),
    Column("client_order_id", String(64), ForeignKey("orders.client_order_id"), nullable=False),
    Column("contract_id", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Column("commission", Float, nullable=False),
    Column("ts_event", UTCDateTime(), nullable=False),
    Column("ts_init", UTCDateTime(), nullable=False),
)
SIGNAL_SLOTS = Table(
    "signal_slots",
    METADATA,
    Column("deployment", String(100), primary_key=True),
    Column("slot", UTCDateTime(), primary_key=True),
    Column("run_id", String(100), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),  # migration 0002
)
TRADING_STATE = Table(
    "trading_state",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("state", String(12), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
)
RISK_REJECTIONS = Table(
    "risk_rejections",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_order_id", String(64)),
    Column("check_name", String(60), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
)


def default_url(home: Path) -> str:
    """The SQLite store under ``VOLFLOW_HOME``."""
    return f"sqlite:///{home / 'orders.sqlite'}"


def sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a committed order survives a power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """One process migrates a SQLite store at a time: a lock file beside it."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _at_head(engine: Engine) -> bool:
    """Whether the store already has the latest schema: one query, so a process that
    opens a current store neither imports nor runs Alembic (most of a short CLI
    command's start-up)."""
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False  # a new store (no version table yet): migrate it
    return [row[0] for row in found] == [SCHEMA_REVISION]


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the latest migration (one process at a time: a file
    lock for SQLite, an advisory lock for PostgreSQL)."""
    if _at_head(engine):
        return
    from alembic import command  # noqa: PLC0415 (only to migrate)
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _file_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7270011)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> OrderStore:
    """Open (creating or upgrading it) the store at ``url``; a clear error naming it
    when it cannot be reached."""
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreError(f"invalid order store URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
        if engine.url.database and engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        first = str(exc).splitlines()[0]
        raise StoreError(f"cannot open the order store {shown}: {first}") from exc
    return OrderStore(engine)


def _contract_dict(contract: OptionContract) -> dict[str, Any]:
    return {
        "underlying": contract.underlying,
        "expiry": contract.expiry.isoformat(),
        "strike": contract.strike,
        "right": contract.right.value,
        "multiplier": contract.multiplier,
        "exercise_style": contract.exercise_style.value,
        "root": contract.root,
    }


def _contract(data: dict[str, Any]) -> OptionContract:
    return OptionContract(
        underlying=data["underlying"],
        expiry=date.fromisoformat(data["expiry"]),
        strike=float(data["strike"]),
        right=Right(data["right"]),
        multiplier=float(data["multiplier"]),
        exercise_style=ExerciseStyle(data["exercise_style"]),
        root=data["root"],
    )


def contract_json(contract: OptionContract) -> str:
    return json.dumps(_contract_dict(contract), sort_keys=True)


def contract_from_json(stored: str) -> OptionContract:
    return _contract(json.loads(stored))


def request_json(request: OrderRequest) -> str:
    """An order request as stored (JSON with every field)."""
    return json.dumps(
        {
            "client_order_id": request.client_order_id.value,
            "legs": [
                {
                    "contract": _contract_dict(leg.contract),
                    "side": leg.side.value,
                    "ratio": leg.ratio,
                }
                for leg in request.legs
            ],
            "quantity": request.quantity,
            "order_type": request.order_type.value,
            "limit_price": request.limit_price,
            "time_in_force": request.time_in_force.value,
            "ts_init": request.ts_init.astimezone(UTC).isoformat(),
            "structure": request.structure,
            "underlying": request.underlying,
        },
        sort_keys=True,
    )


def request_from_json(stored: str) -> OrderRequest:
    data = json.loads(stored)
    return OrderRequest(
        client_order_id=ClientOrderId(data["client_order_id"]),
        legs=tuple(
            OrderLeg(_contract(leg["contract"]), OrderSide(leg["side"]), int(leg["ratio"]))
            for leg in data["legs"]
        ),
        quantity=int(data["quantity"]),
        order_type=OrderType(data["order_type"]),
        limit_price=data["limit_price"],
        time_in_force=TimeInForce(data["time_in_force"]),
        ts_init=datetime.fromisoformat(data["ts_init"]),
        structure=data["structure"],
        underlying=data["underlying"],
    )


@dataclass
class OrderStore:
    """Reads and writes of the order store (see the module docstring)."""

    engine: Engine

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"order store: {str(exc).splitlines()[0]}") from exc

    # slots -------------------------------------------------------------------------

    def claim_slot(
        self, deployment: str, slot: datetime, run_id: str, now: datetime,
        lease: timedelta = timedelta(minutes=30),
    ) -> bool:  # fmt: skip
        """Claim a schedule slot for one signal run; False if another run holds it.

        The same run (a Prefect retry) gets it again. Another run gets it only if the
        holder never finished it and its lease ran out (it crashed): the deterministic
        order ids make that takeover safe, since what the dead run sent is found, not
        resent. A finished slot is never run again."""
        row = {"deployment": deployment, "slot": slot, "run_id": run_id, "claimed_at": now}
        try:
            with self._tx() as connection:
                connection.execute(insert(SIGNAL_SLOTS).values(**row))
            return True
        except IntegrityError:
            pass
        if self.slot_owner(deployment, slot) == run_id:
            return True
        with self._tx() as connection:
            taken = connection.execute(
                update(SIGNAL_SLOTS)
                .where(
                    SIGNAL_SLOTS.c.deployment == deployment, SIGNAL_SLOTS.c.slot == slot,
                    SIGNAL_SLOTS.c.completed_at.is_(None),
                    SIGNAL_SLOTS.c.claimed_at <= now - lease,
                )
                .values(run_id=run_id, claimed_at=now)
            )  # fmt: skip
            return bool(taken.rowcount == 1)

    def complete_slot(self, deployment: str, slot: datetime, run_id: str, now: datetime) -> None:
        with self._tx() as connection:
            connection.execute(
                update(SIGNAL_SLOTS)
                .where(SIGNAL_SLOTS.c.deployment == deployment, SIGNAL_SLOTS.c.slot == slot,
                       SIGNAL_SLOTS.c.run_id == run_id)
                .values(completed_at=now)
            )  # fmt: skip

    def slot_owner(self, deployment: str, slot: datetime) -> str | None:
        with self._tx() as connection:
            return connection.execute(
                select(SIGNAL_SLOTS.c.run_id).where(
                    SIGNAL_SLOTS.c.deployment == deployment, SIGNAL_SLOTS.c.slot == slot
                )
            ).scalar_one_or_none()

    # orders ------------------------------------------------------------------------

    def record_intent(
        self, request: OrderRequest, deployment: str, slot: datetime
    ) -> tuple[OrderState, bool]:
        """Write an order before it is sent. If its id is already stored (a re-run, a
        retry, a restart), the stored state is returned instead, with ``False``."""
        state = OrderState.new(request)
        row = {
            **_state_row(state),
            "client_order_id": request.client_order_id.value,
            "deployment": deployment,
            "slot": slot,
            "underlying": request.underlying or request.legs[0].contract.underlying,
            "structure": request.structure,
            "request": request_json(request),
            "ts_init": request.ts_init,
        }
        try:
            with self._tx() as connection:
                connection.execute(insert(ORDERS).values(**row))
            return state, True
        except IntegrityError:
            stored = self.load(request.client_order_id)
            if stored is None:
                raise StoreError(
                    f"order {request.client_order_id} clashed but is not stored"
                ) from None
            if request_json(stored.request) != request_json(request):
                raise StoreError(
                    f"order {request.client_order_id} is stored with another request: the "
                    "same id for two different orders"
                ) from None
            return stored, False

    def load(self, client_order_id: ClientOrderId) -> OrderState | None:
        with self._tx() as connection:
            row = connection.execute(
                select(ORDERS).where(ORDERS.c.client_order_id == client_order_id.value)
            ).one_or_none()
            fill_ids = connection.execute(
                select(FILLS.c.fill_id).where(FILLS.c.client_order_id == client_order_id.value)
            ).scalars()
            ids = frozenset(fill_ids)
        return None if row is None else _state(row._mapping, ids)

    def orders(self, statuses: set[OrderStatus] | None = None) -> list[OrderState]:
        """Stored orders (of ``statuses`` if given), oldest first."""
        query = select(ORDERS).order_by(ORDERS.c.ts_init, ORDERS.c.client_order_id)
        if statuses:
            query = query.where(ORDERS.c.status.in_([s.value for s in statuses]))
        with self._tx() as connection:
            rows = connection.execute(query).all()
            fills = connection.execute(select(FILLS.c.client_order_id, FILLS.c.fill_id)).all()
        by_order: dict[str, set[str]] = {}
        for order, fill_id in fills:
            by_order.setdefault(order, set()).add(fill_id)
        return [_state(r._mapping, frozenset(by_order.get(r.client_order_id, ()))) for r in rows]

    def in_flight(self) -> list[OrderState]:
        """Orders sent whose outcome is not known: to be looked up, never resent."""
        return self.orders({OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL})

    def save(self, state: OrderState, report: OrderReport | None = None) -> None:
        """Store an order's new state, and the report that led to it, in one transaction."""
        with self._tx() as connection:
            self._update(connection, state)
            if report is not None:
                connection.execute(
                    insert(ORDER_EVENTS).values(
                        client_order_id=report.client_order_id.value,
                        status=report.status.value,
                        filled_quantity=report.filled_quantity,
                        avg_fill_price=report.avg_fill_price,
                        broker_order_id=str(report.broker_order_id or "") or None,
                        reason=report.reason,
                        ts_event=report.ts_event,
                        ts_init=report.ts_init,
                    )
                )

    def record_fill(self, state: OrderState, fill: Fill) -> bool:
        """Store a fill with the order's state after it, in one transaction; False (and
        nothing written) if this execution id is already stored."""
        try:
            with self._tx() as connection:
                connection.execute(
                    insert(FILLS).values(
                        fill_id=fill.fill_id,
                        client_order_id=fill.client_order_id.value,
                        contract_id=fill.contract.contract_id,
                        side=fill.side.value,
                        quantity=fill.quantity,
                        price=fill.price,
                        commission=fill.commission,
                        ts_event=fill.ts_event,
                        ts_init=fill.ts_init,
                    )
                )
                self._update(connection, state)
            return True
        except IntegrityError:
            return False

    def _update(self, connection: Connection, state: OrderState) -> None:
        done = connection.execute(
            update(ORDERS)
            .where(ORDERS.c.client_order_id == state.request.client_order_id.value)
            .values(**_state_row(state))
        )
        if done.rowcount != 1:
            raise StoreError(f"order {state.request.client_order_id} is not in the store")

    def events(self, client_order_id: ClientOrderId) -> list[dict[str, Any]]:
        with self._tx() as connection:
            rows = connection.execute(
                select(ORDER_EVENTS)
                .where(ORDER_EVENTS.c.client_order_id == client_order_id.value)
                .order_by(ORDER_EVENTS.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    # trading state and rejections ---------------------------------------------------

    def trading_state(self) -> tuple[TradingState, str, datetime | None]:
        """The persisted trading state (ACTIVE until set otherwise)."""
        with self._tx() as connection:
            row = connection.execute(
                select(TRADING_STATE).where(TRADING_STATE.c.id == 1)
            ).one_or_none()
        if row is None:
            return TradingState.ACTIVE, "", None
        return TradingState(row.state), row.reason, row.ts

    def set_trading_state(self, state: TradingState, reason: str, now: datetime) -> None:
        values = {"state": state.value, "reason": reason, "ts": now}
        with self._tx() as connection:
            done = connection.execute(
                update(TRADING_STATE).where(TRADING_STATE.c.id == 1).values(**values)
            )
            if done.rowcount == 0:
                connection.execute(insert(TRADING_STATE).values(id=1, **values))

    def record_rejection(
        self, client_order_id: ClientOrderId | None, check: str, reason: str, now: datetime
    ) -> None:
        with self._tx() as connection:
            connection.execute(
                insert(RISK_REJECTIONS).values(
                    client_order_id=client_order_id.value if client_order_id else None,
                    check_name=check,
                    reason=reason,
                    ts=now,
                )
            )

    def rejections(self) -> list[dict[str, Any]]:
        with self._tx() as connection:
            rows = connection.execute(select(RISK_REJECTIONS).order_by(RISK_REJECTIONS.c.id)).all()
        return [dict(r._mapping) for r in rows]


def _state_row(state: OrderState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "broker_order_id": state.broker_order_id.value if state.broker_order_id else None,
        "filled_quantity": state.filled_quantity,
        "avg_fill_price": state.avg_fill_price,
        "reason": state.reason,
        "ts_last": state.ts_last,
    }


def _state(row: Any, fill_ids: frozenset[str]) -> OrderState:
    broker = row["broker_order_id"]
    return OrderState(
        request=request_from_json(row["request"]),
        status=OrderStatus(row["status"]),
        broker_order_id=BrokerOrderId(broker) if broker else None,
        filled_quantity=row["filled_quantity"],
        avg_fill_price=row["avg_fill_price"],
        fill_ids=fill_ids,
        reason=row["reason"],
        ts_last=row["ts_last"],
    )
