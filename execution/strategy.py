"""Strategy: predictions (or a rule) and the latest chain -> defined-risk target orders.

Pure: a chain snapshot, a signal, what is held and the settings in; target orders
out, each with the reason it was or was not made. No I/O, no clock.

The model predicts the delta-hedged straddle return: a positive prediction says
options are cheap (buy volatility), a negative one that they are dear (sell it).
Structures, all with a worst loss known at expiry:

* ``straddle`` (long): buy the ATM call and put; loses at most its debit;
* ``iron_butterfly``: the ATM straddle with protective wings (short: sell the body,
  buy the wings; long: the reverse);
* ``iron_condor``: like the butterfly with the short strikes apart (by delta);
* ``vertical``: a call or put spread, ATM against the wing.

The expiry is the listed one nearest ``target_dte`` inside the DTE window; strikes
by delta where the chain has volflow's analytics, else by moneyness. Sizing: the
most units whose worst loss fits ``max_loss_per_structure``, no more than a fraction
of the displayed size on the side each leg takes, and no more than
``max_contracts``. The limit price of each leg is its mid moved toward the far side
by ``price_aggression`` of the half-spread; the order's is their net (rounded to the
tick), sent as one combo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import reduce
from typing import Any

import polars as pl

from data_lake.calendar import trading_date
from execution.domain import (
    ClientOrderId,
    ExerciseStyle,
    OptionContract,
    OrderLeg,
    OrderRequest,
    OrderSide,
    OrderType,
    Right,
    TimeInForce,
)
from execution.market import ChainSnapshot
from execution.risk import Greeks, LegQuote, worst_loss

LONG_VOL_STRUCTURES = ("straddle", "iron_butterfly", "iron_condor")
SHORT_VOL_STRUCTURES = ("iron_butterfly", "iron_condor")


class Direction(StrEnum):
    LONG_VOL = "long"
    SHORT_VOL = "short"


@dataclass(frozen=True)
class StrategySettings:
    target_dte: int = 30
    min_dte: int = 7
    max_dte: int = 60
    long_structure: str = "straddle"
    short_structure: str = "iron_butterfly"
    wing_delta: float = 0.10  # long wings (|delta|)
    condor_delta: float = 0.30  # short strikes of a condor (|delta|)
    wing_moneyness: float = 0.05  # wings at spot x (1 -/+ this) where no deltas
    condor_moneyness: float = 0.02
    max_loss_per_structure: float = 2_000.0  # dollars, whole order (the risk limit too)
    max_contracts: int = 10  # units
    max_displayed_fraction: float = 0.5
    max_relative_spread: float = 0.20  # (ask - bid) / mid, each leg ...
    max_absolute_spread: float = 0.10  # ... or this many dollars (cheap wings)
    # of the half-spread, from the mid toward the far side: 1 is the far side (marketable;
    # the paper broker fills only there), less waits for the market to come to it
    price_aggression: float = 1.0
    min_abs_signal: float = 0.0  # smaller predictions open nothing
    tick: float = 0.01
    time_in_force: TimeInForce = TimeInForce.DAY


@dataclass(frozen=True)
class Target:
    """One order the strategy wants (``quantity`` units of ``legs``), or none with the
    reason (``request`` None)."""

    underlying: str
    structure: str
    direction: Direction | None
    legs: tuple[OrderLeg, ...] = ()
    quantity: int = 0
    limit_price: float | None = None
    greeks_per_unit: Greeks = field(default_factory=Greeks)
    quotes: dict[str, LegQuote] = field(default_factory=dict)
    signal: float | None = None
    closes: bool = False
    reason: str = ""

    @property
    def trades(self) -> bool:
        return self.quantity > 0

    def request(
        self, client_order_id: ClientOrderId, ts_init: datetime, tif: TimeInForce
    ) -> OrderRequest:
        return OrderRequest(
            client_order_id, self.legs, self.quantity, OrderType.LIMIT, self.limit_price, tif,
            ts_init, structure=self.structure, underlying=self.underlying,
        )  # fmt: skip


def structure_name(structure: str, direction: Direction) -> str:
    return f"{direction.value}_{structure}"


def direction_of(structure_name_: str) -> Direction | None:
    head = structure_name_.split("_", 1)[0]
    return Direction(head) if head in {d.value for d in Direction} else None


def choose_expiry(chain: pl.DataFrame, today: date, settings: StrategySettings) -> date | None:
    """The listed expiry nearest ``target_dte`` with ``min_dte <= dte <= max_dte``."""
    expiries = sorted(set(chain["expiry"].to_list()))
    inside = [e for e in expiries if settings.min_dte <= (e - today).days <= settings.max_dte]
    if not inside:
        return None
    return min(inside, key=lambda e: (abs((e - today).days - settings.target_dte), e))


def _two_sided(chain: pl.DataFrame) -> pl.DataFrame:
    return chain.filter(
        pl.col("bid").is_not_null() & pl.col("ask").is_not_null() & (pl.col("bid") > 0)
        & (pl.col("ask") > pl.col("bid"))
    )  # fmt: skip


def atm_strike(expiry_chain: pl.DataFrame, spot: float) -> float | None:
    """The strike nearest spot where both the call and the put are two-sided."""
    quoted = _two_sided(expiry_chain)
    calls = set(quoted.filter(pl.col("right") == "C")["strike"].to_list())
    puts = set(quoted.filter(pl.col("right") == "P")["strike"].to_list())
    both = sorted(calls & puts)
    return min(both, key=lambda k: (abs(k - spot), k)) if both else None


def strike_by_delta(
    expiry_chain: pl.DataFrame, right: Right, target: float, beyond: float
) -> float | None:
    """The two-sided strike of ``right`` past ``beyond`` (above for calls, below for
    puts) whose |delta| is nearest ``target``; None where no deltas are known."""
    side = _two_sided(expiry_chain).filter(
        (pl.col("right") == right.value) & pl.col("delta").is_not_null()
    )
    side = side.filter(
        pl.col("strike") > beyond if right is Right.CALL else pl.col("strike") < beyond
    )
    if side.is_empty():
        return None
    best = side.with_columns((pl.col("delta").abs() - target).abs().alias("_d")).sort(
        "_d", "strike"
    )
    return float(best["strike"][0])


def strike_by_moneyness(
    expiry_chain: pl.DataFrame, right: Right, spot: float, moneyness: float, beyond: float
) -> float | None:
    side = _two_sided(expiry_chain).filter(pl.col("right") == right.value)
    side = side.filter(
        pl.col("strike") > beyond if right is Right.CALL else pl.col("strike") < beyond
    )
    if side.is_empty():
        return None
    goal = spot * (1 + moneyness if right is Right.CALL else 1 - moneyness)
    return float(
        side.with_columns((pl.col("strike") - goal).abs().alias("_d")).sort("_d", "strike")[
            "strike"
        ][0]
    )


def _away(
    chain: pl.DataFrame, right: Right, spot: float, delta: float, moneyness: float, beyond: float
) -> float | None:
    return strike_by_delta(chain, right, delta, beyond) or strike_by_moneyness(
        chain, right, spot, moneyness, beyond
    )


LegSpec = tuple[float, Right, OrderSide]


def _iron(
    chain: pl.DataFrame, spot: float, atm: float, direction: Direction, settings: StrategySettings,
    condor: bool,
) -> list[LegSpec] | str:  # fmt: skip
    body, wing = (OrderSide.SELL, OrderSide.BUY)
    if direction is Direction.LONG_VOL:
        body, wing = wing, body
    call_body = put_body = atm
    if condor:
        d, cm = settings.condor_delta, settings.condor_moneyness
        found_call = _away(chain, Right.CALL, spot, d, cm, atm - 1e-9)
        found_put = _away(chain, Right.PUT, spot, d, cm, atm + 1e-9)
        if found_call is None or found_put is None:
            return "no condor body strikes"
        call_body, put_body = found_call, found_put
    w, m = settings.wing_delta, settings.wing_moneyness
    call_wing = _away(chain, Right.CALL, spot, w, m, call_body)
    put_wing = _away(chain, Right.PUT, spot, w, m, put_body)
    if call_wing is None or put_wing is None:
        return f"no wing strikes beyond {put_body:g}/{call_body:g}"
    return [(call_body, Right.CALL, body), (put_body, Right.PUT, body),
            (call_wing, Right.CALL, wing), (put_wing, Right.PUT, wing)]  # fmt: skip


def structure_legs(
    snapshot: ChainSnapshot, structure: str, direction: Direction, settings: StrategySettings,
    right: Right = Right.CALL,
) -> tuple[list[LegSpec], date] | str:  # fmt: skip
    """The (strike, right, side) legs of ``structure`` at the chosen expiry, or why none."""
    chain = snapshot.frame
    expiry = choose_expiry(chain, trading_date(snapshot.ts_event), settings)
    if expiry is None:
        return f"no expiry with {settings.min_dte}-{settings.max_dte} days to go"
    one = chain.filter(pl.col("expiry") == expiry)
    spot = snapshot.underlying_price
    atm = atm_strike(one, spot)
    if atm is None:
        return f"no two-sided ATM call and put at {expiry}"
    legs: list[LegSpec] | str
    if structure == "straddle":
        if direction is Direction.SHORT_VOL:
            return "a short straddle has no protection: use iron_butterfly or iron_condor"
        legs = [(atm, Right.CALL, OrderSide.BUY), (atm, Right.PUT, OrderSide.BUY)]
    elif structure in ("iron_butterfly", "iron_condor"):
        legs = _iron(one, spot, atm, direction, settings, structure == "iron_condor")
    elif structure == "vertical":
        far = _away(one, right, spot, settings.wing_delta, settings.wing_moneyness, atm)
        legs = f"no far {right.name.lower()} strike" if far is None else [
            (atm, right, OrderSide.BUY), (far, right, OrderSide.SELL)]  # fmt: skip
    else:
        return f"unknown structure {structure!r}"
    return (legs, expiry) if not isinstance(legs, str) else f"{legs} at {expiry}"


def leg_limit(bid: float, ask: float, side: OrderSide, aggression: float) -> float:
    """The leg's mid, moved toward the far side by ``aggression`` of the half-spread."""
    return (bid + ask) / 2 + side.sign * aggression * (ask - bid) / 2


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 6)


@dataclass(frozen=True)
class PricedLeg:
    leg: OrderLeg
    quote: LegQuote
    limit: float  # per share, this leg's side
    greeks: Greeks  # per unit of the order, signed by the side, in dollars
    displayed: int  # size on the side the leg takes


def price_leg(
    row: dict[str, Any], side: OrderSide, ratio: int, settings: StrategySettings, ts: datetime
) -> PricedLeg | str:
    """One leg from its chain row: contract, quote, limit, Greeks; or why it cannot."""
    contract = OptionContract.from_contract_id(
        row["contract_id"], row["underlying"], multiplier=float(row["multiplier"] or 100.0),
        exercise_style=ExerciseStyle(row["exercise_style"] or "american"),
    )  # fmt: skip
    bid, ask = row["bid"], row["ask"]
    if bid is None or ask is None or not 0 < bid < ask:
        return f"{contract.contract_id}: no two-sided quote"
    spread = (ask - bid) / ((bid + ask) / 2)
    if spread > settings.max_relative_spread and ask - bid > settings.max_absolute_spread + 1e-9:
        return (
            f"{contract.contract_id}: spread {spread:.0%} of mid over "
            f"{settings.max_relative_spread:.0%}"
        )
    if row["delta"] is None or row["gamma"] is None or row["vega_per_vol_point"] is None:
        return f"{contract.contract_id}: no Greeks for the snapshot (build the features)"
    scale = side.sign * ratio * contract.multiplier
    quote = LegQuote(bid, ask, int(row["bid_size"] or 0), int(row["ask_size"] or 0), ts)
    return PricedLeg(
        OrderLeg(contract, side, ratio), quote,
        leg_limit(bid, ask, side, settings.price_aggression),
        Greeks(scale * row["delta"], scale * row["gamma"], scale * row["vega_per_vol_point"]),
        quote.ask_size if side is OrderSide.BUY else quote.bid_size,
    )  # fmt: skip


def assemble(
    underlying: str, name: str, direction: Direction | None, priced: list[PricedLeg],
    settings: StrategySettings, signal: float | None, closes: bool = False,
    units: int | None = None,
) -> Target:  # fmt: skip
    """A combo from priced legs: net limit on the tick, sized by the worst-loss budget,
    the displayed size and ``max_contracts`` (a close: ``units`` as held)."""
    legs = tuple(p.leg for p in priced)
    net = sum(p.leg.side.sign * p.leg.ratio * p.limit for p in priced)
    limit = round_to_tick(net, settings.tick)
    greeks = Greeks(
        *(sum(getattr(p.greeks, g) for p in priced) for g in ("delta", "gamma", "vega"))
    )
    quotes = {p.leg.contract.contract_id: p.quote for p in priced}
    if units is None:
        probe = OrderRequest(ClientOrderId("probe"), legs, 1, OrderType.LIMIT, limit,
                             settings.time_in_force, priced[0].quote.ts_event)  # fmt: skip
        per_unit = worst_loss(probe)
        if not math.isfinite(per_unit):
            return Target(underlying, name, direction, signal=signal, reason="unbounded worst loss")
        by_size = min(math.floor(p.displayed * settings.max_displayed_fraction / p.leg.ratio)
                      for p in priced)  # fmt: skip
        by_loss = math.floor(settings.max_loss_per_structure / per_unit) if per_unit > 0 else 10**9
        units = min(settings.max_contracts, by_size, by_loss)
        if units < 1:
            why = "not enough displayed size" if by_size < 1 else (
                f"one unit's worst loss {per_unit:,.0f} is over "
                f"{settings.max_loss_per_structure:,.0f}")  # fmt: skip
            return Target(underlying, name, direction, signal=signal, reason=why)
        reason = f"{units} x {name} at {limit:+.2f}, worst loss {per_unit * units:,.0f}"
    else:
        reason = f"close {units} x {name} at {limit:+.2f}"
    return Target(underlying, name, direction, legs, units, limit, greeks, quotes, signal,
                  closes, reason)  # fmt: skip


def _chain_row(chain: pl.DataFrame, expiry: date, strike: float, right: Right) -> dict[str, Any]:
    rows = chain.filter(
        (pl.col("expiry") == expiry) & (pl.col("strike") == strike)
        & (pl.col("right") == right.value)
    ).to_dicts()  # fmt: skip
    return rows[0]


def build_target(
    snapshot: ChainSnapshot, structure: str, direction: Direction, settings: StrategySettings,
    signal: float | None = None, right: Right = Right.CALL,
) -> Target:  # fmt: skip
    """The sized, priced order for one structure, or a Target saying why not."""
    name = structure_name(structure, direction)
    under = snapshot.underlying
    found = structure_legs(snapshot, structure, direction, settings, right)
    if isinstance(found, str):
        return Target(under, name, direction, signal=signal, reason=found)
    specs, expiry = found
    priced = []
    for strike, leg_right, side in specs:
        row = _chain_row(snapshot.frame, expiry, strike, leg_right)
        leg = price_leg(row, side, 1, settings, snapshot.ts_event)
        if isinstance(leg, str):
            return Target(under, name, direction, signal=signal, reason=leg)
        priced.append(leg)
    return assemble(under, name, direction, priced, settings, signal)


def close_target(
    snapshot: ChainSnapshot, held: dict[str, int], name: str, settings: StrategySettings
) -> Target:
    """One combo that closes ``held`` (signed contracts by contract id): every leg
    reversed, ratios from the quantities, ``closes`` set (allowed while REDUCING)."""
    under = snapshot.underlying
    open_ = {c: q for c, q in held.items() if q}
    units = reduce(math.gcd, (abs(q) for q in open_.values()))
    rows = {r["contract_id"]: r for r in snapshot.frame.to_dicts() if r["contract_id"] in open_}
    priced = []
    for contract_id, qty in sorted(open_.items()):
        if contract_id not in rows:
            return Target(under, name, direction_of(name), closes=True,
                          reason=f"{contract_id}: not quoted now")  # fmt: skip
        side = OrderSide.SELL if qty > 0 else OrderSide.BUY
        leg = price_leg(rows[contract_id], side, abs(qty) // units, settings, snapshot.ts_event)
        if isinstance(leg, str):
            return Target(under, name, direction_of(name), closes=True, reason=leg)
        priced.append(leg)
    return assemble(under, name, direction_of(name), priced, settings, None, True, units)
