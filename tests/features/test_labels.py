"""Labels: hand-worked delta-hedged straddle returns, the straddle's choice, missing
legs, and "known at ts_end" as a property."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_lake.schemas import LABELS, OPTION_ANALYTICS, SURFACE_FEATURES
from features.labels import iv_change_labels, labels, straddle_labels

# four sessions, one snapshot each at the close (16:00 New York = 21:00 UTC)
DAYS = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)]
TS = [datetime(d.year, d.month, d.day, 21, 0, tzinfo=UTC) for d in DAYS]
NEAR, MONTH, FAR = date(2024, 3, 15), date(2024, 4, 5), date(2024, 5, 17)
ANALYTICS_COLUMNS = [
    "underlying", "date", "ts_event", "contract_id", "expiry", "strike", "right",
    "underlying_price", "price", "price_source", "spread_rel", "log_moneyness", "dte_days",
    "delta",
]  # fmt: skip


def contract(expiry: date, right: str, strike: float, underlying: str = "SPY") -> str:
    return f"{underlying}{expiry:%y%m%d}{right}{int(strike * 1000):08d}"


def quote(
    i: int,
    expiry: date,
    strike: float,
    right: str,
    price: float | None,
    delta: float | None,
    spread: float | None,
    spot: float,
    *,
    forward: float | None = None,
    source: str = "mid",
    underlying: str = "SPY",
    ts: list[datetime] = TS,
) -> dict[str, object]:
    """One option_analytics row at snapshot ``i``; dte counted from the snapshot to the
    expiry's 16:00 New York close."""
    t = ts[i]
    close = datetime(expiry.year, expiry.month, expiry.day, 21, 0, tzinfo=UTC)
    return {
        "underlying": underlying,
        "date": t.date(),
        "ts_event": t,
        "contract_id": contract(expiry, right, strike, underlying),
        "expiry": expiry,
        "strike": strike,
        "right": right,
        "underlying_price": spot,
        "price": price,
        "price_source": source,
        "spread_rel": spread,
        "log_moneyness": math.log(strike / (forward or spot)),
        "dte_days": (close - t) / timedelta(days=1),
        "delta": delta,
    }


def analytics_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {c: OPTION_ANALYTICS.schema[c] for c in ANALYTICS_COLUMNS}
    return pl.DataFrame(rows, schema=schema)


def surface_frame(underlying: str, times: list[datetime], iv: list[float | None]) -> pl.DataFrame:
    schema = {c: SURFACE_FEATURES.schema[c] for c in ("underlying", "date", "ts_event")}
    return pl.DataFrame(
        {
            "underlying": [underlying] * len(times),
            "date": [t.date() for t in times],
            "ts_event": times,
            "atm_iv_30d": iv,
        },
        schema=schema | {"atm_iv_30d": pl.Float64},
    )


def value_at(frame: pl.DataFrame, ts: datetime, label: str = "straddle_dh_ret") -> float | None:
    rows = frame.filter((pl.col("ts_event") == ts) & (pl.col("label") == label))
    assert rows.height <= 1
    return rows["value"][0] if rows.height else None


# --- atm_iv_30d_change ------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 5])
def test_iv_change_is_the_value_h_snapshots_later_minus_now(horizon: int) -> None:
    rng = np.random.default_rng(4)
    times = [TS[0] + timedelta(days=i, hours=(i % 3) - 1) for i in range(12)]
    ivs = rng.uniform(0.1, 0.4, 12).tolist()
    other = [t + timedelta(minutes=30) for t in times]  # interleaved with a second series
    surface = pl.concat(
        [surface_frame("SPY", times, ivs), surface_frame("QQQ", other, [0.5] * 12)]
    ).sample(fraction=1.0, shuffle=True, seed=1)
    out = iv_change_labels(surface, horizon)
    spy = out.filter(pl.col("underlying") == "SPY").sort("ts_event")
    assert spy["ts_event"].to_list() == times[:-horizon]  # the last h have no label
    assert spy["ts_end"].to_list() == times[horizon:]
    assert spy["value"].to_list() == [ivs[i + horizon] - ivs[i] for i in range(12 - horizon)]
    assert spy["date"].to_list() == [t.date() for t in times[:-horizon]]
    assert (spy["label"] == "atm_iv_30d_change").all()
    assert (spy["horizon_periods"] == horizon).all()
    qqq = out.filter(pl.col("underlying") == "QQQ")
    assert qqq.height == 12 - horizon
    assert (qqq["value"] == 0.0).all()  # never a difference across the two series


def test_iv_change_with_fewer_snapshots_than_the_horizon_is_empty() -> None:
    surface = surface_frame("SPY", TS[:3], [0.2, 0.25, 0.3])
    assert iv_change_labels(surface, 5).height == 0
    assert iv_change_labels(surface, 2)["value"].to_list() == pytest.approx([0.1])


# --- straddle_dh_ret ---------------------------------------------------------------------------


def worked_example() -> pl.DataFrame:
    """The ATM straddle (April 5 expiry, strike 100) over four snapshots, among
    distractors: a near (March 15) and a far (May 17) expiry and strikes 95 and 105.

    ======  =====  ============================  ============================
    snap    spot   call 100: mid, delta, spread  put 100: mid, delta, spread
    ======  =====  ============================  ============================
    t0      100    4.00, 0.55, 0.05              3.50, -0.45, 0.04
    t1      102    5.00, 0.62, 0.04              2.60, -0.38, 0.05
    t2       99    3.20, 0.48, 0.05              3.90, -0.52, 0.10
    t3      101    4.10, 0.53, 0.02              2.90, -0.47, 0.02
    ======  =====  ============================  ============================
    """
    spots = [100.0, 102.0, 99.0, 101.0]
    atm = [
        ((4.00, 0.55, 0.05), (3.50, -0.45, 0.04)),
        ((5.00, 0.62, 0.04), (2.60, -0.38, 0.05)),
        ((3.20, 0.48, 0.05), (3.90, -0.52, 0.10)),
        ((4.10, 0.53, 0.02), (2.90, -0.47, 0.02)),
    ]
    rows = []
    for i, spot in enumerate(spots):
        (c, cd, cs), (p, pd, ps) = atm[i]
        rows += [
            quote(i, MONTH, 100.0, "C", c, cd, cs, spot),
            quote(i, MONTH, 100.0, "P", p, pd, ps, spot),
        ]
        for expiry in (NEAR, MONTH, FAR):
            for strike in (95.0, 105.0):
                rows += [
                    quote(i, expiry, strike, "C", 9.0 + i, 0.7, 0.03, spot),
                    quote(i, expiry, strike, "P", 8.0 - i, -0.3, 0.03, spot),
                ]
        for right, delta in (("C", 0.5), ("P", -0.5)):
            # at the money in the wrong expiries: other prices, so a wrong choice shows
            rows.append(quote(i, NEAR, 100.0, right, 1.0 + 0.5 * i, delta, 0.2, spot))
            rows.append(quote(i, FAR, 100.0, right, 7.0 - 0.3 * i, delta, 0.01, spot))
    return analytics_frame(rows)


def test_delta_hedged_straddle_return_worked_by_hand() -> None:
    frame = worked_example()
    two = straddle_labels(frame, 2).sort("ts_event")
    # bought at t0, sold at t2:
    #   premium v0 = 4.00 + 3.50 = 7.50; exit value v2 = 3.20 + 3.90 = 7.10
    #   hedge, short the straddle's delta in between:
    #     t0 -> t1: -(0.55 - 0.45) * (102 - 100) = -0.10 * 2 = -0.20
    #     t1 -> t2: -(0.62 - 0.38) * (99 - 102)  = -0.24 * -3 = +0.72   total +0.52
    #   costs, half the quoted spread of each leg at entry and at exit:
    #     t0: 0.5 * (4.00 * 0.05 + 3.50 * 0.04) = 0.5 * (0.20 + 0.14) = 0.170
    #     t2: 0.5 * (3.20 * 0.05 + 3.90 * 0.10) = 0.5 * (0.16 + 0.39) = 0.275  total 0.445
    #   return = (7.10 - 7.50 + 0.52 - 0.445) / 7.50 = -0.325 / 7.50 = -0.043333...
    assert value_at(two, TS[0]) == pytest.approx(-0.325 / 7.50, rel=1e-12)
    # bought at t1, sold at t3:
    #   v1 = 5.00 + 2.60 = 7.60; v3 = 4.10 + 2.90 = 7.00
    #   hedge: -(0.24) * (99 - 102) = +0.72; -(0.48 - 0.52) * (101 - 99) = +0.04 * 2 = +0.08
    #   costs: 0.5 * (5.00 * 0.04 + 2.60 * 0.05) = 0.165; 0.5 * (4.10 * 0.02 + 2.90 * 0.02) = 0.07
    #   return = (7.00 - 7.60 + 0.80 - 0.235) / 7.60 = -0.035 / 7.60 = -0.004605...
    assert value_at(two, TS[1]) == pytest.approx(-0.035 / 7.60, rel=1e-12)
    # the round trip's costs as a share of the premium: short pays them again
    assert two["cost"].to_list() == pytest.approx([0.445 / 7.50, 0.235 / 7.60], rel=1e-12)
    assert two["ts_event"].to_list() == TS[:2]  # t2 and t3 have no two snapshots ahead
    assert two["ts_end"].to_list() == TS[2:]
    assert two["date"].to_list() == DAYS[:2]
    assert (two["horizon_periods"] == 2).all()
    one = straddle_labels(frame, 1).sort("ts_event")
    # t2 -> t3: v = 7.10 -> 7.00; hedge -(0.48 - 0.52) * (101 - 99) = +0.08;
    # costs 0.275 + 0.5 * (4.10 * 0.02 + 2.90 * 0.02) = 0.275 + 0.07 = 0.345
    # return = (7.00 - 7.10 + 0.08 - 0.345) / 7.10 = -0.365 / 7.10
    assert value_at(one, TS[2]) == pytest.approx(-0.365 / 7.10, rel=1e-12)
    assert one["ts_event"].to_list() == TS[:3]


def test_straddle_is_the_expiry_nearest_30_days_at_the_strike_nearest_the_forward() -> None:
    # one start (t0) and its end (t1); expiries 11, 32 and 74 days away (the 32-day one
    # is nearest 30); forward 101.4 above the spot 100: strikes 100 (|ln 100/101.4| =
    # 0.0139), 102 (0.0059, but only a call is listed), 103 (0.0157), 98 (0.0345)
    forward = 101.4
    rows = []
    legs = {  # (expiry, strike, right): (mid at t0, mid at t1); deltas and spreads 0
        (MONTH, 100.0, "C"): (3.0, 3.3),
        (MONTH, 100.0, "P"): (2.0, 2.1),  # chosen: (3.3 + 2.1 - 5.0) / 5.0 = 0.08
        (MONTH, 102.0, "C"): (2.0, 4.0),
        (MONTH, 103.0, "C"): (1.6, 1.0),
        (MONTH, 103.0, "P"): (3.0, 3.0),
        (MONTH, 98.0, "C"): (4.0, 4.0),
        (MONTH, 98.0, "P"): (1.0, 1.0),
        (NEAR, 101.0, "C"): (1.0, 2.0),  # nearer the forward, but an 11-day expiry
        (NEAR, 101.0, "P"): (1.0, 2.0),
        (FAR, 101.0, "C"): (5.0, 1.0),  # nearer the forward, but a 74-day expiry
        (FAR, 101.0, "P"): (5.0, 1.0),
    }
    for (expiry, strike, right), mids in legs.items():
        for i in (0, 1):
            rows.append(quote(i, expiry, strike, right, mids[i], 0.0, 0.0, 100.0, forward=forward))
    frame = analytics_frame(rows)
    assert frame.filter(pl.col("expiry") == MONTH)["dte_days"][0] == pytest.approx(32.0)
    out = straddle_labels(frame, 1)
    assert out.height == 1
    assert out["value"][0] == pytest.approx((3.3 + 2.1 - 5.0) / 5.0, rel=1e-12)
    # with the put at 102 listed too, 102 is the nearest strike with both legs
    both = pl.concat([frame, analytics_frame([
        quote(i, MONTH, 102.0, "P", mid, 0.0, 0.0, 100.0, forward=forward)
        for i, mid in ((0, 2.0), (1, 1.0))
    ])])  # fmt: skip
    assert straddle_labels(both, 1)["value"][0] == pytest.approx((4.0 + 1.0 - 4.0) / 4.0)


def test_equally_near_expiries_and_strikes_are_chosen_the_same_way_every_run() -> None:
    # monthly expiries four weeks apart, 16 and 44 days away at the close: both 14 days
    # from 30 (dte at the close is a whole number of days, so such ties are common);
    # strikes 99 and 101 equally far from the forward. The earlier expiry and the lower
    # strike win: (2 + 2 - 1 - 1) / (1 + 1) = 1.0, where the others give 2.0, 3.0, 4.0
    front, back = date(2024, 3, 20), date(2024, 4, 17)
    mids = {(front, 99.0): 2.0, (front, 101.0): 3.0, (back, 99.0): 4.0, (back, 101.0): 5.0}
    rows = [
        quote(i, expiry, strike, right, [1.0, end][i], 0.0, 0.0, 100.0)
        for (expiry, strike), end in mids.items()
        for right in ("C", "P")
        for i in (0, 1)
    ]
    frame = analytics_frame(rows).with_columns(
        pl.when(pl.col("strike") < 100).then(-0.01).otherwise(0.01).alias("log_moneyness")
    )
    at_t0 = frame.filter(pl.col("ts_event") == TS[0])
    assert sorted(set(at_t0["dte_days"].to_list())) == [16.0, 44.0]
    values = {value_at(straddle_labels(frame, 1), TS[0]) for _ in range(30)}
    assert values == {1.0}


def test_straddle_keeps_the_contracts_chosen_at_the_start() -> None:
    # at t1 the spot jumps to 110: a new straddle would be chosen there, but the label
    # bought at t0 follows the t0 straddle's contracts (strike 100) to the end
    rows = []
    for i, spot in ((0, 100.0), (1, 110.0)):
        rows += [
            quote(i, MONTH, 100.0, "C", [4.0, 11.0][i], 0.0, 0.0, spot),
            quote(i, MONTH, 100.0, "P", [4.0, 1.0][i], 0.0, 0.0, spot),
            quote(i, MONTH, 110.0, "C", [1.0, 4.5][i], 0.0, 0.0, spot),
            quote(i, MONTH, 110.0, "P", [10.0, 4.5][i], 0.0, 0.0, spot),
        ]
    out = straddle_labels(analytics_frame(rows), 1)
    assert value_at(out, TS[0]) == pytest.approx((12.0 - 8.0) / 8.0)


def test_a_leg_missing_at_an_intermediate_snapshot_gives_no_label() -> None:
    frame = worked_example()
    put_t1 = (pl.col("ts_event") == TS[1]) & (pl.col("contract_id") == contract(MONTH, "P", 100.0))
    assert frame.filter(put_t1).height == 1
    holed = frame.filter(~put_t1)
    two = straddle_labels(holed, 2)
    assert value_at(two, TS[0]) is None  # its path crosses t1
    one = straddle_labels(holed, 1)
    assert value_at(one, TS[0]) is None  # t1 is its end
    # the straddle bought at t2 never needs t1
    assert value_at(one, TS[2]) == pytest.approx(-0.365 / 7.10, rel=1e-12)
    # at t1 itself another strike (both legs listed) is bought instead
    assert value_at(two, TS[1]) is not None


@pytest.mark.parametrize(
    "hole",
    [
        {"price": None, "delta": None, "spread_rel": None, "price_source": None},  # no quote
        {"delta": float("nan")},  # priced, but the IV solver failed
    ],
)
def test_a_leg_without_a_price_or_delta_in_between_counts_as_missing(
    hole: dict[str, object],
) -> None:
    frame = worked_example()
    put_t1 = (pl.col("ts_event") == TS[1]) & (pl.col("contract_id") == contract(MONTH, "P", 100.0))
    holed = frame.with_columns(
        pl.when(put_t1).then(pl.lit(v, frame.schema[c])).otherwise(pl.col(c)).alias(c)
        for c, v in hole.items()
    )
    two = straddle_labels(holed, 2)
    # never a silently unhedged step (a null delta summed as zero) nor a NaN label
    assert value_at(two, TS[0]) is None
    assert value_at(two, TS[1]) is not None  # the t1 straddle is then another strike
    assert two["value"].is_not_nan().all()


def test_labels_gathers_both_kinds_at_every_horizon_with_the_table_columns() -> None:
    frame = worked_example()
    surface = surface_frame("SPY", TS, [0.20, 0.22, 0.19, 0.21])
    out = labels(frame, surface, horizons=(1, 2))
    expected = [c for c in LABELS.schema.names() if c not in ("ts_init", "source")]
    assert out.columns == expected
    assert out.schema == pl.Schema({c: LABELS.schema[c] for c in expected})
    counts = out.group_by("label", "horizon_periods").len().sort("label", "horizon_periods")
    assert counts.rows() == [
        ("atm_iv_30d_change", 1, 3),
        ("atm_iv_30d_change", 2, 2),
        ("straddle_dh_ret", 1, 3),
        ("straddle_dh_ret", 2, 2),
    ]
    assert out.equals(out.sort("underlying", "ts_event", "label", "horizon_periods"))
    row = out.filter((pl.col("label") == "atm_iv_30d_change") & (pl.col("horizon_periods") == 2))
    assert row["value"].to_list() == pytest.approx([-0.01, -0.01])


# --- known at ts_end, as a property -------------------------------------------------------------


def random_market(seed: int, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` daily snapshots of a small chain (two expiries, three strikes) on a random
    walk, with random holes, and the matching surface rows."""
    rng = np.random.default_rng(seed)
    times = [TS[0] + timedelta(days=i) for i in range(n)]
    spot = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    rows = []
    for i in range(n):
        for expiry in (MONTH, FAR):
            for strike in (95.0, 100.0, 105.0):
                for right, sign in (("C", 1.0), ("P", -1.0)):
                    if rng.random() < 0.1:  # a leg not quoted at this snapshot
                        continue
                    rows.append(
                        quote(
                            i, expiry, strike, right,
                            float(rng.uniform(0.5, 10.0)),
                            sign * float(rng.uniform(0.05, 0.95)),
                            float(rng.uniform(0.0, 0.2)),
                            float(spot[i]),
                            forward=float(spot[i]) * 1.002,
                            ts=times,
                        )
                    )  # fmt: skip
    surface = surface_frame("SPY", times, rng.uniform(0.1, 0.5, n).tolist())
    return analytics_frame(rows), surface


def rescaled_after(frame: pl.DataFrame, cut: datetime, seed: int) -> pl.DataFrame:
    """Every float after ``cut`` scaled at random, and a random third of the rows dropped."""
    rng = np.random.default_rng(seed)
    later = pl.col("ts_event") > cut
    floats = ("price", "delta", "spread_rel", "underlying_price", "atm_iv_30d")
    factor = pl.Series(rng.uniform(0.5, 1.5, frame.height))
    keep = pl.Series(rng.random(frame.height) > 1 / 3)
    return frame.with_columns(
        pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
        for c in floats
        if c in frame.columns
    ).filter(~later | keep)


def known_by(frame: pl.DataFrame, cut: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("ts_end") <= cut).sort(
        "underlying", "ts_event", "label", "horizon_periods"
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(3, 9), cut_at=st.floats(0.0, 1.0))
def test_a_label_changes_only_with_data_up_to_its_end(seed: int, n: int, cut_at: float) -> None:
    analytics, surface = random_market(seed, n)
    cut = TS[0] + timedelta(days=min(n - 1, int(cut_at * n)))
    reference = labels(analytics, surface, horizons=(1, 2))
    assert reference["value"].is_not_nan().all()
    changed = labels(
        rescaled_after(analytics, cut, seed), rescaled_after(surface, cut, seed + 1), (1, 2)
    )
    assert known_by(changed, cut).equals(known_by(reference, cut))
    # and a label at t never needs anything after t + h: the past alone gives it
    past = labels(
        analytics.filter(pl.col("ts_event") <= cut),
        surface.filter(pl.col("ts_event") <= cut),
        (1, 2),
    )
    assert known_by(past, cut).equals(known_by(reference, cut))
    assert past.filter(pl.col("ts_end") > cut).height == 0


# --- straddle_mv_ret ---------------------------------------------------------------------------


def test_the_minimum_variance_hedge_adds_vega_times_the_fixed_strike_beta() -> None:
    """The worked example with vegas (call 0.12, put 0.11 per vol point) and a spot-vol
    beta of -0.5: the hedge holds the BSM delta plus vega * 100 * beta / S."""
    frame = worked_example().with_columns(
        pl.when(pl.col("right") == "C").then(0.12).otherwise(0.11).alias("vega_per_vol_point")
    )

    def surface(beta: float | None, skew: float) -> pl.DataFrame:
        return pl.DataFrame({
            "underlying": "SPY", "ts_event": TS, "spot_vol_beta_63": [beta] * 4,
            "skew_25d_30d": skew, "atm_iv_30d": 0.2,
        }, schema_overrides={"ts_event": SURFACE_FEATURES.schema["ts_event"],
                             "spot_vol_beta_63": pl.Float64})  # fmt: skip

    flat = straddle_labels(frame, 2, surface(-0.5, 0.0))
    # smile term: 0.23 * 100 * -0.5 / S = -11.5 / S: -0.115 at t0 (S 100), -11.5/102 at t1
    #   t0 -> t1: -(0.10 - 0.115) * 2 = +0.03; t1 -> t2: -(0.24 - 11.5/102) * -3
    hedge = 0.03 + (0.24 - 11.5 / 102) * 3
    expected = (7.10 - 7.50 + hedge - 0.445) / 7.50
    assert value_at(flat, TS[0], "straddle_mv_ret") == pytest.approx(expected, rel=1e-12)
    assert value_at(flat, TS[0]) == pytest.approx(-0.325 / 7.50, rel=1e-12)  # BSM unchanged
    # a put skew: a fixed strike's IV falls less than the ATM IV as spot rises
    skewed = straddle_labels(frame, 2, surface(-0.5, 0.04))
    slope = -0.04 / (2 * 0.674 * 0.2 * math.sqrt(30 / 365))
    smile = [0.23 * 100 * (-0.5 - slope) / s for s in (100.0, 102.0)]
    hedge = -(0.10 + smile[0]) * 2 - (0.24 + smile[1]) * -3
    got = value_at(skewed, TS[0], "straddle_mv_ret")
    assert got == pytest.approx((7.10 - 7.50 + hedge - 0.445) / 7.50, rel=1e-12)
    # no beta yet (the regression's first snapshots): no minimum-variance label
    assert value_at(straddle_labels(frame, 2, surface(None, 0.0)), TS[0], "straddle_mv_ret") is None
