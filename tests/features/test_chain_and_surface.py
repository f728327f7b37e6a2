"""option_analytics rows and surface features on constructed chains with known vols."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest
from py_vollib.black_scholes_merton import black_scholes_merton
from py_vollib.black_scholes_merton.implied_volatility import implied_volatility

from data_lake.calendar import exchange_calendar
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.synthetic_market import TradingClock
from features.chain import constant_rates, option_analytics
from features.surface import surface_features

DAY = date(2024, 1, 2)
CLOSE = datetime(2024, 1, 2, 21, tzinfo=UTC)  # 16:00 New York
SPOT, RATE, DIV = 100.0, 0.03, 0.01


def years_to(expiry: date) -> float:
    """Calendar time from the 2024-01-02 close to the expiry session's close (16:00 New
    York: 21:00 UTC in winter, 20:00 after the March DST change)."""
    last = exchange_calendar().session_on_or_before(expiry).close
    return (last - CLOSE).total_seconds() / (365 * 86400)


def chain(vol: callable, expiries: list[date], strikes: list[float]) -> pl.DataFrame:  # type: ignore[valid-type]
    """A European chain priced exactly with BSM at vol(strike, t): bid/ask 1% around
    the model price, so the mid is the model price."""
    rows = []
    for expiry in expiries:
        t = years_to(expiry)
        for strike in strikes:
            for right in ("C", "P"):
                sigma = vol(strike, t)
                price = black_scholes_merton(right.lower(), SPOT, strike, t, RATE, sigma, DIV)
                rows.append({
                    "underlying": "XYZ", "date": DAY,
                    "contract_id": f"XYZ{expiry:%y%m%d}{right}{int(strike * 1000):08d}",
                    "expiry": expiry, "strike": strike, "right": right,
                    "exercise_style": "european", "settlement": "PM", "multiplier": 100.0,
                    "bid": price * 0.99, "ask": price * 1.01, "bid_size": 1, "ask_size": 1,
                    "last": None, "volume": 10 if right == "P" else 5, "open_interest": 100,
                    "underlying_price": SPOT, "ts_event": CLOSE, "ts_init": CLOSE,
                    "source": "test",
                })  # fmt: skip
    return pl.DataFrame(rows, schema=OPTION_QUOTES.schema)


def analytics_of(quotes: pl.DataFrame) -> pl.DataFrame:
    divs = pl.DataFrame({"underlying": ["XYZ"], "date": [DAY], "div_yield": [DIV]})
    return option_analytics(quotes, constant_rates([DAY], RATE), divs, exchange_calendar())


EXPIRIES = [date(2024, 1, 12), date(2024, 2, 16), date(2024, 4, 19)]
STRIKES = [float(k) for k in range(70, 131, 2)]


def test_analytics_recover_the_pricing_volatility_and_time() -> None:
    quotes = chain(lambda k, t: 0.2 + 0.1 * math.log(k / 100) ** 2, EXPIRIES, STRIKES)
    result = analytics_of(quotes)
    assert result.height == quotes.height
    row = result.filter(pl.col("contract_id") == "XYZ240216C00100000").row(0, named=True)
    assert row["t_years"] == pytest.approx(years_to(date(2024, 2, 16)), abs=1e-12)
    assert row["dte_days"] == pytest.approx(45.0, abs=1e-9)
    assert (row["price_source"], row["solver_status"], row["model"]) == (
        "mid",
        "ok",
        "bsm_european",
    )
    assert row["iv"] == pytest.approx(0.2, abs=1e-9)
    forward = SPOT * math.exp((RATE - DIV) * row["t_years"])
    assert row["log_moneyness"] == pytest.approx(math.log(100 / forward), abs=1e-12)
    assert row["spread_rel"] == pytest.approx(0.02 / 1.0, rel=1e-9)
    solved = result.filter(pl.col("solver_status") == "ok")
    expected = 0.2 + 0.1 * (solved["strike"] / 100).log() ** 2
    assert ((solved["iv"] - expected).abs() < 1e-8).all()


def test_unpriceable_rows_say_why() -> None:
    quotes = chain(lambda k, t: 0.2, EXPIRIES[:1], [100.0]).with_columns(
        pl.Series("bid", [None, 3.0]), pl.Series("ask", [None, 2.0]), pl.Series("last", [1.2, None])
    )
    quotes = pl.concat([quotes, quotes.head(1).with_columns(
        pl.lit("XYZ240112C00999000").alias("contract_id"), pl.lit(None, pl.Float64).alias("last"),
    )])  # fmt: skip
    result = analytics_of(quotes)
    assert result["price_source"].to_list() == ["last", None, None]
    assert result["solver_status"].to_list() == ["ok", "crossed_quote", "no_price"]
    assert result["iv"][1] is None and result["delta"][2] is None
    # no two-sided quote, no side IVs (the trade-only row has an IV from its last trade)
    assert result["iv_bid"].to_list() == [None] * 3 and result["iv_ask"].to_list() == [None] * 3


def test_bid_and_ask_ivs_are_the_quote_width_in_volatility() -> None:
    quotes = chain(lambda k, t: 0.25, EXPIRIES, STRIKES)
    result = analytics_of(quotes).filter(pl.col("solver_status") == "ok")
    row = result.filter(pl.col("contract_id") == "XYZ240216P00096000").row(0, named=True)
    t = row["t_years"]
    for side, factor in (("iv_bid", 0.99), ("iv_ask", 1.01)):
        price = black_scholes_merton("p", SPOT, 96.0, t, RATE, 0.25, DIV) * factor
        expected = implied_volatility(price, SPOT, 96.0, t, RATE, DIV, "p")
        assert row[side] == pytest.approx(expected, abs=1e-10), side
    otm = result.filter((pl.col("log_moneyness") > 0) == (pl.col("right") == "C"))
    assert otm["iv_bid"].null_count() == 0 and otm["iv_ask"].null_count() == 0
    both = result.drop_nulls(["iv_bid", "iv_ask"])
    assert ((both["iv_bid"] < both["iv"]) & (both["iv"] < both["iv_ask"])).all()
    # deep in the money, 1% under the model price is below intrinsic value: no bid IV
    missing = result.filter(pl.col("iv_bid").is_null())
    assert (missing["log_moneyness"] > 0).eq(missing["right"] == "P").all()
    # a bid below intrinsic value has no IV: a null, never a number
    deep = quotes.filter(pl.col("contract_id") == "XYZ240112C00070000").with_columns(
        pl.lit(29.0).alias("bid"), pl.lit(31.0).alias("ask")
    )
    row = analytics_of(deep).row(0, named=True)
    assert row["iv_bid"] is None and row["iv_ask"] is not None and row["iv_ask"] > 0


def test_am_settled_contracts_stop_a_session_early() -> None:
    quotes = chain(lambda k, t: 0.2, [date(2024, 1, 19)], [100.0]).with_columns(
        pl.lit("AM").alias("settlement")
    )
    result = analytics_of(quotes)
    # last trading time: the close of Thursday 2024-01-18, 16 days after the 01-02 close
    assert result["dte_days"].to_list() == pytest.approx([16.0, 16.0], abs=1e-9)


def test_flat_surface_gives_its_vol_at_every_tenor_and_no_skew() -> None:
    """Flat in calendar IV: the tenors come out within 2% of it (interpolation runs in
    trading time, where a calendar-flat surface is not quite flat), the 7-day one,
    before the first expiry, exactly; no skew or curvature."""
    quotes = chain(lambda k, t: 0.25, EXPIRIES, STRIKES)
    row = surface_features(analytics_of(quotes)).row(0, named=True)
    assert row["atm_iv_7d"] == pytest.approx(0.25, abs=1e-8)
    for tenor in (30, 60, 90):
        assert row[f"atm_iv_{tenor}d"] == pytest.approx(0.25, rel=0.02)
    assert row["skew_25d_30d"] == pytest.approx(0.0, abs=1e-8)
    assert row["curvature_25d_30d"] == pytest.approx(0.0, abs=0.01)
    assert row["term_slope_30_90"] == pytest.approx(0.0, abs=0.01)
    assert row["day_of_week"] == CLOSE.weekday()
    assert row["put_call_volume_ratio"] == pytest.approx(2.0)
    assert row["put_call_oi_ratio"] == pytest.approx(1.0)


def test_tenors_interpolate_in_total_variance_and_hold_flat_outside() -> None:
    vols = {EXPIRIES[0]: 0.30, EXPIRIES[1]: 0.20, EXPIRIES[2]: 0.22}
    t_of = {years_to(e): v for e, v in vols.items()}
    quotes = chain(lambda k, t: t_of[t], EXPIRIES, STRIKES)
    row = surface_features(analytics_of(quotes)).row(0, named=True)
    t1, t2 = years_to(EXPIRIES[0]), years_to(EXPIRIES[1])
    tenor = 30 / 365
    # total variance linear in trading time: the sessions' clock, weekends carry none
    clock = TradingClock.of(exchange_calendar())
    now = CLOSE.timestamp()
    tau1, tau2, tau = (float(clock.at(np.array([now + x * 365 * 86400]))[0] - clock.now(now))
                       for x in (t1, t2, tenor))  # fmt: skip
    w = 0.30**2 * t1 + (tau - tau1) / (tau2 - tau1) * (0.20**2 * t2 - 0.30**2 * t1)
    assert row["atm_iv_30d"] == pytest.approx(math.sqrt(w / tenor), abs=1e-7)
    # in calendar time it would be another number: the test tells the two apart
    w_calendar = 0.30**2 * t1 + (tenor - t1) / (t2 - t1) * (0.20**2 * t2 - 0.30**2 * t1)
    assert abs(math.sqrt(w_calendar / tenor) - row["atm_iv_30d"]) > 1e-4
    assert row["atm_iv_7d"] == pytest.approx(0.30, abs=1e-7)  # before the first expiry
    t3 = years_to(EXPIRIES[2])
    assert t3 * 365 < 120  # 90 days is inside; beyond the last expiry IV is held flat
    # the desk's term-structure columns, from the tenors
    logs = {d: math.log(row[f"atm_iv_{d}d"]) for d in (7, 30, 60, 90)}
    assert row["term_log_7_30"] == pytest.approx(logs[7] - logs[30], abs=1e-12)
    assert row["term_log_30_90"] == pytest.approx(logs[90] - logs[30], abs=1e-12)
    assert row["term_spread_7_30"] == pytest.approx(row["atm_iv_7d"] - row["atm_iv_30d"])
    slope, intercept = np.polyfit([30, 60, 90], [logs[30], logs[60], logs[90]], 1)
    fair = intercept + 7 * slope  # the line through the rest of the curve, at 7 days
    assert row["front_vs_curve_7d"] == pytest.approx(logs[7] - fair, abs=1e-12)


def test_skewed_surface_has_positive_put_skew() -> None:
    quotes = chain(lambda k, t: 0.2 - 0.3 * math.log(k / 100), EXPIRIES, STRIKES)
    row = surface_features(analytics_of(quotes)).row(0, named=True)
    assert row["skew_25d_30d"] > 0.02  # 25-delta puts (low strikes) priced richer
    assert row["atm_iv_30d"] == pytest.approx(0.2, abs=0.01)


def test_american_contracts_are_solved_with_the_american_model() -> None:
    quotes = chain(lambda k, t: 0.25, EXPIRIES[1:2], [80.0, 100.0, 120.0]).with_columns(
        pl.when(pl.col("strike") != 100.0)
        .then(pl.lit("american"))
        .otherwise(pl.lit("european"))
        .alias("exercise_style")
    )
    result = analytics_of(quotes)
    assert result["contract_id"].to_list() == quotes["contract_id"].to_list()  # row order
    models = dict(zip(result["contract_id"], result["model"], strict=True))
    assert models["XYZ240216P00120000"] == "baw_american"
    assert models["XYZ240216P00100000"] == "bsm_european"
    # a European price read as American: early exercise is worth something, so the
    # American IV of the deep in-the-money put is below the European one
    put = result.filter(pl.col("contract_id") == "XYZ240216P00120000").row(0, named=True)
    assert put["solver_status"] in ("ok", "no_time_value", "below_intrinsic")
    if put["solver_status"] == "ok":
        assert put["iv"] < 0.25


def test_a_snapshot_alone_gives_the_same_bits_as_among_others() -> None:
    """An incremental build can compute one snapshot alone: its features must equal,
    bit for bit, those computed with other snapshots in the frame (Polars divides a
    one-row column by a literal differently from a longer one)."""
    vols = {EXPIRIES[0]: 0.31, EXPIRIES[1]: 0.23, EXPIRIES[2]: 0.217}
    t_of = {years_to(e): v for e, v in vols.items()}
    first = analytics_of(chain(lambda k, t: t_of[t] + 0.0003 * (100 - k), EXPIRIES, STRIKES))
    later = [
        first.with_columns(
            pl.col("ts_event") - pl.duration(days=d),
            pl.col("iv") * (1 + d / 97),
        )
        for d in range(1, 4)
    ]
    alone = surface_features(first)
    together = surface_features(pl.concat([first, *later])).filter(pl.col("ts_event") == CLOSE)
    assert together.height == 1
    for column in alone.columns:
        assert alone[column].equals(together[column]), column
