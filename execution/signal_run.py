"""One signal run, in order: claim the slot -> reconcile -> the trading state -> the
champion (only if approved) or the rule -> per underlying: the latest chain ->
target -> risk -> OMS -> broker -> the store.

Every decision is a row in ``signals`` (an order, a hold, a refusal, "no trade:
model not approved"), every refusal a row in ``risk_rejections``. One underlying's
failure is reported in the summary and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from data_lake.calendar import exchange_calendar, trading_date
from data_lake.errors import VolflowError
from data_lake.lake import Lake
from execution.champion import (
    ApprovalGate,
    champion_approval,
    latest_features,
    load_champion,
    predict,
)
from execution.domain import OrderReport, OrderStatus
from execution.ids import client_order_id
from execution.ledger import Holding, holdings, record_signal, signals
from execution.market import ChainSnapshot, latest_chain, underlying_close
from execution.oms import OrderManager
from execution.orders import WORKING
from execution.portfolio import Marks, portfolio_risk, value
from execution.reconcile import reconcile
from execution.risk import (
    Greeks,
    PortfolioRisk,
    ProposedOrder,
    RiskLimits,
    check_order,
    next_trading_state,
    worst_loss,
)
from execution.store import OrderStore, TradingState
from execution.strategy import (
    Direction,
    StrategySettings,
    Target,
    build_target,
    close_target,
    direction_of,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignalConfig:
    deployment: str
    underlyings: list[str]
    strategy: str = "model"  # model | rule
    model_name: str = ""
    tracking_uri: str = ""
    gate: ApprovalGate = field(default_factory=ApprovalGate)
    settings: StrategySettings = field(default_factory=StrategySettings)
    limits: RiskLimits = field(default_factory=RiskLimits)
    capital: float = 100_000.0
    max_quote_age: timedelta = timedelta(hours=2)
    rule_direction: Direction = Direction.SHORT_VOL
    rule_every_sessions: int = 5
    slot_lease: timedelta = timedelta(minutes=30)


def sessions_between(first: date, last: date) -> int:
    """Exchange sessions after ``first`` up to and including ``last``."""
    if last <= first:
        return 0
    return len(exchange_calendar().sessions(first, last)) - int(
        exchange_calendar().is_session(first)
    )


def decide(  # noqa: PLR0911 (one return per case of the strategy, in order)
    config: SignalConfig, snapshot: ChainSnapshot, signal: float | None, held: list[Holding],
    last_opened: date | None = None,
) -> Target:  # fmt: skip
    """The strategy: what to do on one underlying (pure). The rule opens when nothing
    is held and its last opening is ``rule_every_sessions`` sessions ago (or never)."""
    u, s = snapshot.underlying, config.settings
    held_name = held[0].structure if held else ""
    if config.strategy == "rule":
        if held:
            return Target(u, held_name, direction_of(held_name), reason="holding to expiry")
        today, every = trading_date(snapshot.ts_event), config.rule_every_sessions
        if last_opened is not None and sessions_between(last_opened, today) < every:
            return Target(u, "", None, reason=f"the rule opens every {every} sessions (last "
                          f"on {last_opened})")  # fmt: skip
        direction = config.rule_direction
        structure = s.long_structure if direction is Direction.LONG_VOL else s.short_structure
        return build_target(snapshot, structure, direction, s)
    if signal is None:
        return Target(u, "", None, reason="no prediction (no fresh features)")
    direction = Direction.LONG_VOL if signal > 0 else Direction.SHORT_VOL
    if held:
        if direction_of(held_name) is direction:
            return Target(u, held_name, direction, signal=signal, reason="holding: same view")
        contracts = {h.contract.contract_id: h.quantity for h in held}
        return replace(close_target(snapshot, contracts, held_name, s), signal=signal)
    if abs(signal) < s.min_abs_signal:
        return Target(u, "", None, signal=signal, reason=f"|signal| below {s.min_abs_signal}")
    structure = s.long_structure if direction is Direction.LONG_VOL else s.short_structure
    return build_target(snapshot, structure, direction, s, signal)


@dataclass
class SignalRun:
    config: SignalConfig
    oms: OrderManager
    lake: Lake
    slot: datetime
    run_id: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.oms.clock

    def note(self, underlying: str, decision: str, reason: str, **extra: Any) -> None:
        record_signal(
            self.oms.store, deployment=self.config.deployment, slot=self.slot,
            underlying=underlying, strategy=self.config.strategy, decision=decision,
            reason=reason, ts=self.clock(), **extra,
        )  # fmt: skip
        self.summary.setdefault("decisions", {})[underlying] = f"{decision}: {reason}"

    def no_trade(self, reason: str, **extra: Any) -> dict[str, Any]:
        for u in self.config.underlyings:
            self.note(u, "no_trade", reason, **extra)
        self.summary["status"] = "no_trade"
        self.summary["reason"] = reason
        return self.summary


def run_signal(config: SignalConfig, oms: OrderManager, lake: Lake, slot: datetime,
               run_id: str) -> dict[str, Any]:  # fmt: skip
    """The whole run (see the module docstring); returns its summary."""
    store, now = oms.store, oms.clock()
    run = SignalRun(config, oms, lake, slot, run_id, {"slot": slot.isoformat(), "orders": []})
    if not store.claim_slot(config.deployment, slot, run_id, now, config.slot_lease):
        owner = store.slot_owner(config.deployment, slot)
        return {**run.summary, "status": "skipped", "reason": f"slot taken by run {owner}"}
    result = reconcile(oms)
    run.summary["reconciliation"] = result.summary()
    if result.blocked:
        logger.error("no trading this slot: reconciliation found %d discrepancies",
                     len(result.discrepancies))  # fmt: skip
        done = run.no_trade("reconciliation blocks trading (see `volflow reconcile`)")
        store.complete_slot(config.deployment, slot, run_id, oms.clock())
        return done
    state, _, _ = store.trading_state()
    run.summary["trading_state"] = state.value
    predictions: dict[str, tuple[datetime, float]] = {}
    signal_range = None
    extra: dict[str, Any] = {}
    if config.strategy == "model" and state is not TradingState.HALTED:
        approval = champion_approval(config.tracking_uri, config.model_name, config.gate)
        extra = {"model_name": approval.model_name, "model_version": approval.version}
        run.summary["approval"] = approval.reason
        if not approval.approved:
            logger.error("no trade: %s", approval.reason)
            done = run.no_trade(f"no trade: {approval.reason}", **extra)
            store.complete_slot(config.deployment, slot, run_id, oms.clock())
            return done
        champion = load_champion(config.tracking_uri, approval)
        signal_range = champion.signal_range
        features = latest_features(lake, config.underlyings, now, config.max_quote_age)
        predictions = predict(champion, features)
    trade_underlyings(run, state, predictions, signal_range, extra)
    run.summary["status"] = "done" if not run.summary.get("failed") else "partial"
    store.complete_slot(config.deployment, slot, run_id, oms.clock())
    return run.summary


def trade_underlyings(
    run: SignalRun, state: TradingState, predictions: dict[str, tuple[datetime, float]],
    signal_range: tuple[float, float] | None, extra: dict[str, Any],
) -> None:  # fmt: skip
    config, oms, now = run.config, run.oms, run.clock()
    chains: dict[str, ChainSnapshot] = {}
    for u in config.underlyings:
        try:
            chain = latest_chain(run.lake, u, now, config.max_quote_age)
        except VolflowError as exc:
            run.summary.setdefault("failed", {})[u] = str(exc)
            continue
        if chain is not None:
            chains[u] = chain
    portfolio = _portfolio(run, chains, now)
    new_state, why = next_trading_state(state, portfolio, config.limits)
    if new_state is not state:
        oms.store.set_trading_state(new_state, why, now)
        logger.error("trading state %s -> %s: %s", state, new_state, why)
        state = new_state
        run.summary["trading_state"] = state.value
    held = holdings(oms.store, now)
    working = {s.request.underlying for s in oms.store.orders(set(WORKING))}
    opened = last_openings(oms.store, config.deployment)
    for u in config.underlyings:
        if u in run.summary.get("failed", {}):
            continue
        chain = chains.get(u)
        ts_features, signal = predictions.get(u, (None, None))
        info = {**extra, "ts_features": ts_features, "prediction": signal}
        if chain is None:
            run.note(u, "no_trade", f"no quotes in the last {config.max_quote_age}", **info)
            continue
        if u in working:
            run.note(u, "hold", "an order is working on this underlying", **info)
            continue
        try:
            mine = [h for h in held if h.contract.underlying == u]
            target = decide(config, chain, signal, mine, opened.get(u))
            portfolio = _act(run, target, portfolio, state, signal_range, info)
        except VolflowError as exc:
            logger.error("%s: %s", u, exc)
            run.summary.setdefault("failed", {})[u] = str(exc)
    _drop_unsent(run)
    if run.summary["orders"]:  # record what filled on submission now, not at the next run
        oms.sync_fills(now - timedelta(days=1))


def last_openings(store: OrderStore, deployment: str) -> dict[str, date]:
    """Per underlying, the trading date of the last opening order that filled."""
    filled = {s.request.client_order_id.value for s in store.orders() if s.filled_quantity > 0}
    found: dict[str, date] = {}
    for row in signals(store):
        if (
            row["decision"] == "order"
            and row["client_order_id"] in filled
            and (row["deployment"] == deployment)
        ):
            found[row["underlying"]] = max(found.get(row["underlying"], date.min),
                                           trading_date(row["slot"]))  # fmt: skip
    return found


def _drop_unsent(run: SignalRun) -> None:
    """Intents a crashed run wrote but never sent (still ``INITIALIZED``: the store
    marks an order submitted *before* it goes out) that this run did not take up:
    closed, so that nothing sends them later."""
    sent = {o["client_order_id"] for o in run.summary["orders"]}
    for state in run.oms.store.orders({OrderStatus.INITIALIZED}):
        if state.request.client_order_id.value not in sent:
            now = run.clock()
            why = "never sent: superseded by a later run"
            gone = OrderReport(state.request.client_order_id, None, OrderStatus.CANCELED, 0,
                               None, now, now, reason=why)  # fmt: skip
            run.oms.apply(state, gone)


def _act(
    run: SignalRun, target: Target, portfolio: PortfolioRisk, state: TradingState,
    signal_range: tuple[float, float] | None, info: dict[str, Any],
) -> PortfolioRisk:  # fmt: skip
    config, oms, now, u = run.config, run.oms, run.clock(), target.underlying
    if not target.trades:
        run.note(u, "hold" if target.structure else "no_trade", target.reason, **info)
        return portfolio
    cid = client_order_id(config.deployment, run.slot, u, target.structure or "close",
                          "close" if target.closes else 0)  # fmt: skip
    request = target.request(cid, now, config.settings.time_in_force)
    proposed = ProposedOrder(request, target.quotes, target.greeks_per_unit,
                             target.signal, signal_range, target.closes)  # fmt: skip
    rejections = check_order(proposed, portfolio, config.limits, state, now)
    if rejections:
        for r in rejections:
            oms.store.record_rejection(cid, r.check, r.reason, now)
        reasons = "; ".join(f"{r.check}: {r.reason}" for r in rejections)
        run.note(u, "rejected", reasons, client_order_id=cid.value, **info)
        return portfolio
    order = oms.submit(request, config.deployment, run.slot)
    run.note(u, "close" if target.closes else "order", target.reason,
             client_order_id=cid.value, **info)  # fmt: skip
    run.summary["orders"].append({
        "client_order_id": cid.value, "underlying": u, "structure": target.structure,
        "quantity": request.quantity, "limit": request.limit_price, "status": order.status.value,
    })  # fmt: skip
    if target.closes:
        return replace(portfolio, orders_last_hour=portfolio.orders_last_hour + 1)
    q, g, net = request.quantity, target.greeks_per_unit, portfolio.net
    losses = dict(portfolio.worst_loss_by_underlying)
    losses[u] = losses.get(u, 0.0) + worst_loss(request)
    return replace(
        portfolio,
        net=Greeks(net.delta + g.delta * q, net.gamma + g.gamma * q, net.vega + g.vega * q),
        worst_loss_by_underlying=losses, orders_last_hour=portfolio.orders_last_hour + 1,
    )  # fmt: skip


def _portfolio(run: SignalRun, chains: dict[str, ChainSnapshot], now: datetime) -> PortfolioRisk:
    marks: Marks = {}
    for chain in chains.values():
        for r in chain.frame.select(
            "contract_id", "bid", "ask", "delta", "gamma", "vega_per_vol_point"
        ).iter_rows():
            cid, bid, ask, d, g, v = r
            mid = (bid + ask) / 2 if bid is not None and ask is not None else None
            marks[cid] = (mid, d, g, v)
    valuation = value(run.oms.store, run.config.capital, marks, now,
                      lambda u, day: underlying_close(run.lake, u, day))  # fmt: skip
    recent = [s for s in run.oms.store.orders() if s.request.ts_init >= now - timedelta(hours=1)
              and s.status.value != "DENIED"]  # fmt: skip
    return portfolio_risk(run.oms.store, valuation, now, len(recent))
