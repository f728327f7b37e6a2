"""The strategy: structures chosen from a chain, sized by the loss budget and the
displayed size, priced from the quotes; and a property test that whatever the chain,
a target it makes is covered and inside its budget."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.domain import OrderSide, Right
from execution.market import ChainSnapshot
from execution.risk import unprotected_legs, worst_loss
from execution.strategy import (
    Direction,
    StrategySettings,
    build_target,
    choose_expiry,
    close_target,
    leg_limit,
)

TS = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
NEAR, TARGET, FAR = date(2024, 3, 15), date(2024, 4, 12), date(2024, 6, 21)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def chain(
    spot: float = 100.0, vol: float = 0.2, half_spread: float = 0.05, size: int = 40,
    step: float = 1.0,
) -> ChainSnapshot:  # fmt: skip
    """A Black-Scholes chain (no rates) with its deltas, gammas and vegas."""
    rows = []
    for expiry in (NEAR, TARGET, FAR):
        t = (expiry - TS.date()).days / 365
        k = spot * 0.7
        while k <= spot * 1.3:
            d1 = (math.log(spot / k) + vol * vol * t / 2) / (vol * math.sqrt(t))
            d2 = d1 - vol * math.sqrt(t)
            pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
            for right in ("C", "P"):
                if right == "C":
                    price, delta = spot * _norm_cdf(d1) - k * _norm_cdf(d2), _norm_cdf(d1)
                else:
                    price = k * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
                    delta = _norm_cdf(d1) - 1
                mid = max(price, 0.03)
                rows.append({
                    "contract_id": f"SPY{expiry:%y%m%d}{right}{round(k * 1000):08d}",
                    "underlying": "SPY", "expiry": expiry, "strike": round(k, 3), "right": right,
                    "exercise_style": "american", "multiplier": 100.0,
                    "bid": round(max(mid - half_spread, 0.01), 2),
                    "ask": round(mid + half_spread, 2), "bid_size": size, "ask_size": size,
                    "underlying_price": spot, "ts_event": TS, "source": "test", "iv": vol,
                    "delta": delta, "gamma": pdf / (spot * vol * math.sqrt(t)),
                    "vega_per_vol_point": spot * pdf * math.sqrt(t) / 100,
                    "dte_days": float((expiry - TS.date()).days),
                })  # fmt: skip
            k += step
    return ChainSnapshot("SPY", TS, pl.DataFrame(rows))


def test_the_expiry_nearest_the_target_inside_the_window_is_chosen() -> None:
    frame = chain().frame
    assert choose_expiry(frame, TS.date(), StrategySettings()) == TARGET
    assert choose_expiry(frame, TS.date(), StrategySettings(target_dte=90, max_dte=120)) == FAR
    assert choose_expiry(frame, TS.date(), StrategySettings(min_dte=200, max_dte=300)) is None


def test_a_short_iron_butterfly_sells_the_atm_straddle_and_buys_delta_wings() -> None:
    target = build_target(chain(), "iron_butterfly", Direction.SHORT_VOL, StrategySettings())
    assert target.trades, target.reason
    legs = {(g.contract.strike, g.contract.right, g.side) for g in target.legs}
    assert (100.0, Right.CALL, OrderSide.SELL) in legs
    assert (100.0, Right.PUT, OrderSide.SELL) in legs
    wings = sorted(g.contract.strike for g in target.legs if g.side is OrderSide.BUY)
    assert wings[0] < 100 < wings[1]
    assert all(g.contract.expiry == TARGET for g in target.legs)
    assert target.limit_price is not None
    assert target.limit_price < 0  # a credit
    assert target.structure == "short_iron_butterfly"
    assert target.greeks_per_unit.vega < 0  # short volatility


def test_size_is_the_most_units_inside_the_loss_budget_and_the_displayed_size() -> None:
    s = StrategySettings(max_loss_per_structure=2_000, max_contracts=50)
    target = build_target(chain(size=40), "iron_butterfly", Direction.SHORT_VOL, s)
    per_unit = worst_loss(target.request(_id(), TS, s.time_in_force)) / target.quantity
    assert target.quantity == min(math.floor(2_000 / per_unit), 20)  # 50% of 40 displayed
    thin = build_target(chain(size=4), "iron_butterfly", Direction.SHORT_VOL, s)
    assert thin.quantity == 2
    none = build_target(chain(size=1), "iron_butterfly", Direction.SHORT_VOL, s)
    assert not none.trades
    assert none.reason == "not enough displayed size"


def test_limits_are_the_mid_moved_toward_the_far_side() -> None:
    assert leg_limit(1.00, 1.20, OrderSide.BUY, 0.5) == pytest.approx(1.15)
    assert leg_limit(1.00, 1.20, OrderSide.SELL, 0.5) == pytest.approx(1.05)
    s = StrategySettings(price_aggression=0.0)
    target = build_target(chain(), "straddle", Direction.LONG_VOL, s)
    mids = [(q.bid + q.ask) / 2 for q in target.quotes.values()]  # type: ignore[operator]
    assert target.limit_price == pytest.approx(round(sum(mids), 2))


def test_refusals_say_why() -> None:
    s = StrategySettings()
    naked = build_target(chain(), "straddle", Direction.SHORT_VOL, s)
    assert not naked.trades
    assert "no protection" in naked.reason
    wide = build_target(chain(half_spread=1.5), "iron_butterfly", Direction.SHORT_VOL, s)
    assert not wide.trades
    assert "spread" in wide.reason
    no_greeks = chain()
    frame = no_greeks.frame.with_columns(pl.lit(None, pl.Float64).alias("delta"))
    blind = build_target(ChainSnapshot("SPY", TS, frame), "straddle", Direction.LONG_VOL, s)
    assert "no Greeks" in blind.reason


def test_a_close_reverses_every_held_leg_in_one_combo() -> None:
    opened = build_target(chain(), "iron_condor", Direction.SHORT_VOL, StrategySettings())
    assert opened.trades, opened.reason
    held = {g.contract.contract_id: g.side.sign * opened.quantity for g in opened.legs}
    closing = close_target(chain(), held, opened.structure, StrategySettings())
    assert closing.closes
    assert closing.quantity == opened.quantity
    assert {g.contract.contract_id: -g.side.sign for g in closing.legs} == {
        c: 1 if q > 0 else -1 for c, q in held.items()
    }


def _id():  # type: ignore[no-untyped-def]
    from execution.domain import ClientOrderId

    return ClientOrderId("vf-test")


@settings(max_examples=40, deadline=None)
@given(
    spot=st.floats(20, 600),
    vol=st.floats(0.08, 0.9),
    half_spread=st.floats(0.01, 0.5),
    size=st.integers(0, 200),
    budget=st.floats(100, 10_000),
    structure=st.sampled_from(["iron_butterfly", "iron_condor", "straddle", "vertical"]),
    direction=st.sampled_from(list(Direction)),
)
def test_every_target_is_covered_and_inside_its_budget(
    spot: float, vol: float, half_spread: float, size: int, budget: float, structure: str,
    direction: Direction,
) -> None:  # fmt: skip
    s = StrategySettings(max_loss_per_structure=budget)
    snapshot = chain(spot, vol, half_spread, size, step=max(round(spot / 100), 1))
    target = build_target(snapshot, structure, direction, s)
    if not target.trades:
        assert target.reason
        return
    request = target.request(_id(), TS, s.time_in_force)
    assert unprotected_legs(request) == []
    assert worst_loss(request) <= budget + 1e-6
    assert target.quantity <= s.max_contracts
    for leg in request.legs:
        quote = target.quotes[leg.contract.contract_id]
        shown = quote.ask_size if leg.side is OrderSide.BUY else quote.bid_size
        assert request.quantity * leg.ratio <= shown * s.max_displayed_fraction
