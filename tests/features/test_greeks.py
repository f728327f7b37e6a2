"""IV and Greeks: py_vollib as the reference, Hull's worked examples as golden values,
finite differences for the Greeks, and the hard cases flagged rather than priced."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_vollib.black_scholes_merton import black_scholes_merton
from py_vollib.black_scholes_merton.greeks import analytical
from py_vollib.black_scholes_merton.implied_volatility import implied_volatility

from features.greeks import implied_vol_and_greeks


def options(**columns: list[object]) -> pl.DataFrame:
    return pl.DataFrame(columns).with_columns(pl.col("right").cast(pl.String))


def bsm(right: str, s: float, k: float, t: float, r: float, sigma: float, q: float) -> float:
    return float(black_scholes_merton(right.lower(), s, k, t, r, sigma, q))


def grid() -> pl.DataFrame:
    """Calls and puts across moneyness, maturity, volatility, rates and dividends."""
    rows = []
    for right in ("C", "P"):
        for k in (60.0, 85.0, 100.0, 115.0, 160.0):
            for t in (2 / 365, 30 / 365, 0.5, 3.0):
                for sigma in (0.05, 0.2, 0.6, 1.5):
                    for r, q in ((0.0, 0.0), (0.05, 0.02), (-0.005, 0.04)):
                        price = bsm(right, 100.0, k, t, r, sigma, q)
                        rows.append((price, 100.0, k, t, r, q, right, sigma))
    names = ["price", "spot", "strike", "t_years", "rate", "div_yield", "right", "sigma"]
    return pl.DataFrame(rows, schema=names, orient="row")


def test_iv_recovers_the_volatility_that_priced_the_option() -> None:
    frame = grid()
    result = implied_vol_and_greeks(frame)
    true_vega = [
        analytical.vega(r["right"].lower(), r["spot"], r["strike"], r["t_years"], r["rate"],
                        r["sigma"], r["div_yield"]) * 100
        for r in frame.iter_rows(named=True)
    ]  # fmt: skip
    # identifiable: the price's own round-off (a few ulps of the spot and strike it was
    # computed from) moves sigma by less than 1e-11 (vega per unit of sigma: x 100)
    noise = 16 * np.finfo(float).eps * frame["strike"]
    identifiable = (noise / (pl.Series(true_vega) * 100) < 1e-11) & (frame["price"] > 0)
    solved = result.filter(identifiable)
    assert solved.height > 0.7 * frame.height  # the grid includes extreme corners
    assert (solved["solver_status"] == "ok").all()
    error = (solved["iv"] - solved["sigma"]).abs().max()
    assert error is not None and error <= 1e-10  # type: ignore[operator]


def test_iv_matches_py_vollib_lets_be_rational() -> None:
    frame = grid().filter(pl.col("price") > 1e-6).sample(120, seed=3)
    result = implied_vol_and_greeks(frame)
    for row in result.iter_rows(named=True):
        reference = implied_volatility(
            row["price"], row["spot"], row["strike"], row["t_years"], row["rate"],
            row["div_yield"], row["right"].lower(),
        )  # fmt: skip
        if reference == 0.0:  # py_vollib's answer when the time value is lost to round-off
            assert row["solver_status"] == "no_time_value"
            continue
        # the two agree to the conditioning of the problem: a few ulps of the strike,
        # divided by vega per unit of sigma
        noise = 16 * np.finfo(float).eps * row["strike"] / (row["vega"] * 100)
        assert row["iv"] == pytest.approx(reference, rel=1e-10, abs=max(1e-12, noise))


def test_greeks_match_py_vollib_analytical_greeks() -> None:
    frame = grid().filter(pl.col("price") > 1e-4).sample(120, seed=5)
    result = implied_vol_and_greeks(frame).filter(pl.col("solver_status") == "ok")
    for row in result.iter_rows(named=True):
        args = (row["right"].lower(), row["spot"], row["strike"], row["t_years"], row["rate"],
                row["iv"], row["div_yield"])  # fmt: skip
        assert row["delta"] == pytest.approx(analytical.delta(*args), rel=1e-9, abs=1e-12)
        assert row["gamma"] == pytest.approx(analytical.gamma(*args), rel=1e-9, abs=1e-12)
        assert row["vega"] == pytest.approx(analytical.vega(*args), rel=1e-9, abs=1e-12)
        assert row["theta"] == pytest.approx(analytical.theta(*args), rel=1e-9, abs=1e-12)
        assert row["rho"] == pytest.approx(analytical.rho(*args), rel=1e-9, abs=1e-12)


def test_greeks_agree_with_finite_differences_of_the_price() -> None:
    s, k, t, r, q, sigma = 100.0, 105.0, 0.4, 0.03, 0.01, 0.27
    for right in ("C", "P"):
        price = bsm(right, s, k, t, r, sigma, q)
        frame = options(price=[price], spot=[s], strike=[k], t_years=[t], rate=[r],
                        div_yield=[q], right=[right])  # fmt: skip
        got = implied_vol_and_greeks(frame).row(0, named=True)
        h = 1e-3

        def value(right: str = right, **bump: float) -> float:
            p = {"s": s, "t": t, "r": r, "sigma": sigma} | bump
            return bsm(right, p["s"], k, p["t"], p["r"], p["sigma"], q)

        assert got["delta"] == pytest.approx((value(s=s + h) - value(s=s - h)) / (2 * h), rel=1e-6)
        gamma = (value(s=s + h) - 2 * price + value(s=s - h)) / h**2
        assert got["gamma"] == pytest.approx(gamma, rel=1e-4)
        vega = (value(sigma=sigma + h) - value(sigma=sigma - h)) / (2 * h) / 100
        assert got["vega"] == pytest.approx(vega, rel=1e-6)
        day = 1 / 365
        assert got["theta"] == pytest.approx(value(t=t - day) - price, rel=2e-3)  # one day
        rho = (value(r=r + h) - value(r=r - h)) / (2 * h) / 100
        assert got["rho"] == pytest.approx(rho, rel=1e-6)


# Golden values: J. C. Hull, "Options, Futures, and Other Derivatives", 9th ed.
def test_hull_example_15_6_prices_give_back_twenty_percent_volatility() -> None:
    # Example 15.6: S0=42, K=40, r=10%, sigma=20%, T=0.5: call 4.76, put 0.81
    frame = options(price=[4.7594, 0.8086], spot=[42.0] * 2, strike=[40.0] * 2,
                    t_years=[0.5] * 2, rate=[0.1] * 2, div_yield=[0.0] * 2,
                    right=["C", "P"])  # fmt: skip
    assert implied_vol_and_greeks(frame)["iv"].to_list() == pytest.approx([0.2, 0.2], abs=1e-4)


def test_hull_section_15_11_implied_volatility_example() -> None:
    # Section 15.11: call at 1.875 with S0=21, K=20, r=0.1, T=0.25 -> implied vol 0.235
    frame = options(price=[1.875], spot=[21.0], strike=[20.0], t_years=[0.25], rate=[0.1],
                    div_yield=[0.0], right=["C"])  # fmt: skip
    assert implied_vol_and_greeks(frame)["iv"][0] == pytest.approx(0.235, abs=5e-4)


def test_hull_chapter_19_greeks_of_the_example_call() -> None:
    # Examples 19.1-19.8: S0=49, K=50, r=5%, sigma=20%, T=20 weeks (0.3846):
    # delta 0.522, gamma 0.066, vega 12.1 (per unit sigma), theta -4.31 (per year),
    # rho 8.91 (per unit rate)
    t = 0.3846
    price = bsm("C", 49.0, 50.0, t, 0.05, 0.2, 0.0)
    frame = options(price=[price], spot=[49.0], strike=[50.0], t_years=[t], rate=[0.05],
                    div_yield=[0.0], right=["C"])  # fmt: skip
    row = implied_vol_and_greeks(frame).row(0, named=True)
    assert price == pytest.approx(2.40, abs=5e-3)
    assert row["delta"] == pytest.approx(0.522, abs=5e-4)
    assert row["gamma"] == pytest.approx(0.066, abs=5e-4)
    assert row["vega"] * 100 == pytest.approx(12.1, abs=0.05)  # per volatility point
    assert row["theta"] * 365 == pytest.approx(-4.31, abs=0.01)  # per calendar day
    assert row["rho"] * 100 == pytest.approx(8.91, abs=0.01)  # per 1% of rate


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"price": 4.0}, "below_intrinsic"),  # call with S=110, K=100: worth >= ~10
        ({"price": 111.0}, "above_max_price"),  # a call is worth less than the spot
        ({"t_years": 0.0}, "expired"),
        ({"t_years": -0.01}, "expired"),
        ({"spot": None}, "invalid_input"),
        ({"price": float("nan")}, "invalid_input"),
        ({"strike": 0.0}, "invalid_input"),
        ({"right": "X"}, "invalid_input"),
        ({"price": -1.0}, "invalid_input"),
    ],
)
def test_hard_cases_get_a_status_and_nan_never_garbage(
    overrides: dict[str, object], status: str
) -> None:
    base: dict[str, object] = {"price": 12.0, "spot": 110.0, "strike": 100.0, "t_years": 0.25,
                               "rate": 0.02, "div_yield": 0.0, "right": "C"}  # fmt: skip
    frame = pl.DataFrame([base | overrides], schema_overrides={"spot": pl.Float64})
    row = implied_vol_and_greeks(frame).row(0, named=True)
    assert row["solver_status"] == status
    assert all(math.isnan(row[c]) for c in ("iv", "delta", "gamma", "vega", "theta", "rho"))


def test_price_at_discounted_intrinsic_has_no_time_value() -> None:
    s, k, t, r = 110.0, 100.0, 0.25, 0.02
    intrinsic = s - k * math.exp(-r * t)  # the European lower bound, exactly
    frame = options(price=[intrinsic], spot=[s], strike=[k], t_years=[t], rate=[r],
                    div_yield=[0.0], right=["C"])  # fmt: skip
    assert implied_vol_and_greeks(frame)["solver_status"][0] in ("no_time_value", "below_intrinsic")


def test_deep_out_of_the_money_tiny_prices_are_solved_exactly() -> None:
    sigma = 0.15
    prices = [bsm("P", 100.0, k, 7 / 365, 0.01, sigma, 0.0) for k in (80.0, 75.0)]
    assert prices[1] < 1e-12  # far below any tick, but a well-defined number
    frame = options(price=prices, spot=[100.0] * 2, strike=[80.0, 75.0], t_years=[7 / 365] * 2,
                    rate=[0.01] * 2, div_yield=[0.0] * 2, right=["P", "P"])  # fmt: skip
    result = implied_vol_and_greeks(frame)
    assert result["solver_status"].to_list() == ["ok", "ok"]
    assert result["iv"].to_list() == pytest.approx([sigma, sigma], rel=1e-9)


def test_rows_keep_their_order_and_inputs_are_untouched() -> None:
    frame = grid().sample(fraction=1.0, shuffle=True, seed=11)
    result = implied_vol_and_greeks(frame)
    assert result.select(frame.columns).equals(frame)
    assert result.columns[-7:] == ["iv", "delta", "gamma", "vega", "theta", "rho", "solver_status"]


def test_empty_frame_and_missing_columns() -> None:
    empty = grid().clear()
    assert implied_vol_and_greeks(empty).height == 0
    with pytest.raises(ValueError, match="missing div_yield"):
        implied_vol_and_greeks(grid().drop("div_yield"))


@settings(max_examples=200, deadline=None)
@given(
    spot=st.floats(1.0, 5000.0),
    moneyness=st.floats(0.5, 1.6),
    t=st.floats(1 / 365, 5.0),
    sigma=st.floats(0.02, 3.0),
    r=st.floats(-0.01, 0.1),
    q=st.floats(0.0, 0.08),
    call=st.booleans(),
)
def test_round_trip_property(
    spot: float, moneyness: float, t: float, sigma: float, r: float, q: float, call: bool
) -> None:
    """Whatever the inputs, the solved volatility reprices the option (a slow, obvious
    oracle: py_vollib's analytical BSM price), or the row says why it could not."""
    right = "C" if call else "P"
    strike = spot * moneyness
    price = bsm(right, spot, strike, t, r, sigma, q)
    frame = options(price=[price], spot=[spot], strike=[strike], t_years=[t], rate=[r],
                    div_yield=[q], right=[right])  # fmt: skip
    row = implied_vol_and_greeks(frame).row(0, named=True)
    if row["solver_status"] == "ok":
        repriced = bsm(right, spot, strike, t, r, row["iv"], q)
        assert repriced == pytest.approx(price, rel=1e-9, abs=1e-12 * spot)
    else:  # only where the price carries no information about sigma
        vega = analytical.vega(right.lower(), spot, strike, t, r, sigma, q) * 100
        assert row["solver_status"] in ("no_time_value", "below_intrinsic")
        assert vega * sigma < 1e-9 * max(price, 1e-300) or price < 1e-300
    assert np.isfinite(row["iv"]) == (row["solver_status"] == "ok")


def test_subnormal_price_is_not_solved_into_a_plausible_looking_volatility() -> None:
    # regression: the solver returned "ok" with sigma 0.305 for a price of 5e-324
    frame = options(price=[5e-324], spot=[192.63], strike=[259.99], t_years=[0.0456],
                    rate=[0.0688], div_yield=[0.0], right=["C"])  # fmt: skip
    row = implied_vol_and_greeks(frame).row(0, named=True)
    assert row["solver_status"] == "no_time_value" and math.isnan(row["iv"])
