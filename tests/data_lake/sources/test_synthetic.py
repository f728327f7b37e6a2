from __future__ import annotations

import math
from datetime import UTC, date, datetime
from types import GeneratorType

import numpy as np
import polars as pl
import pytest
from scipy.optimize import brentq

from data_lake.calendar import EXCHANGE_TZ, exchange_calendar
from data_lake.errors import ConfigError
from data_lake.quality import check
from data_lake.schemas import OPTION_QUOTES, UNDERLYING_BARS
from data_lake.sources.synthetic import (
    SyntheticConfig,
    TradingClock,
    generate,
    latest_snapshot,
    simulate_path,
)
from data_lake.sources.synthetic_chain import atm_implied_vol, bsm_price, nice_strike_step

START, END = date(2024, 3, 1), date(2024, 3, 15)


def _quotes(
    config: SyntheticConfig, start: date = START, end: date = END, underlying: str = "SPY"
) -> pl.DataFrame:
    return pl.concat(b.frames[OPTION_QUOTES.name] for b in generate(underlying, start, end, config))


def _bars(config: SyntheticConfig, start: date, end: date, underlying: str = "SPY") -> pl.DataFrame:
    return pl.concat(
        b.frames[UNDERLYING_BARS.name] for b in generate(underlying, start, end, config)
    )


def test_same_seed_same_market_other_seed_other_market() -> None:
    a, b = _quotes(SyntheticConfig(seed=1)), _quotes(SyntheticConfig(seed=1))
    assert a.equals(b)
    assert not a.equals(_quotes(SyntheticConfig(seed=2)))


def test_a_day_is_the_same_whatever_range_is_asked() -> None:
    config = SyntheticConfig(seed=3)
    long = _quotes(config, date(2024, 3, 1), date(2024, 3, 28)).filter(
        pl.col("date") == date(2024, 3, 12)
    )
    short = _quotes(config, date(2024, 3, 12), date(2024, 3, 12))
    assert short.height > 500 and long.equals(short)


def test_daily_close_equals_the_intraday_close_snapshot() -> None:
    daily = _quotes(SyntheticConfig(seed=4), START, START)
    intraday = _quotes(SyntheticConfig(seed=4, intraday=True), START, START)
    close = intraday.filter(pl.col("ts_event") == intraday["ts_event"].max())
    assert daily.drop("bid_size", "ask_size", "last").equals(
        close.drop("bid_size", "ask_size", "last")
    )
    local_hours = sorted({t.astimezone(EXCHANGE_TZ).hour for t in intraday["ts_event"].unique()})
    assert local_hours == [10, 11, 12, 13, 14, 15, 16]


def test_only_exchange_sessions_are_generated() -> None:
    days = [b.day for b in generate("SPY", date(2024, 3, 25), date(2024, 4, 5), SyntheticConfig())]
    expected = [s.day for s in exchange_calendar().sessions(date(2024, 3, 25), date(2024, 4, 5))]
    assert days == expected and date(2024, 3, 29) not in days  # Good Friday


def test_generation_streams_one_day_at_a_time() -> None:
    stream = generate("SPY", date(2022, 1, 3), date(2025, 12, 31), SyntheticConfig())
    assert isinstance(stream, GeneratorType)
    first = next(stream)
    assert first.day == date(2022, 1, 3)
    assert first.frames[OPTION_QUOTES.name]["date"].unique().to_list() == [date(2022, 1, 3)]
    stream.close()


def test_generated_chains_fail_no_check_but_the_zero_bid_of_far_wings() -> None:
    quotes = _quotes(SyntheticConfig(seed=5, intraday=True), START, date(2024, 3, 5), "XYZ")
    result = check(quotes, OPTION_QUOTES)
    assert set(result.reason_counts) <= {"zero_bid"}
    assert result.quarantined.height < 0.05 * quotes.height
    no_bid = quotes.filter(pl.col("bid") == 0)
    otm = pl.when(pl.col("right") == "C").then(pl.col("strike") > pl.col("underlying_price"))
    otm = otm.otherwise(pl.col("strike") < pl.col("underlying_price"))
    assert no_bid.select(otm.all()).item()  # only out-of-the-money wings lack a bid
    assert (quotes["ask"] > quotes["bid"]).all()


def test_expiries_are_weeklies_and_monthlies_out_to_a_year() -> None:
    chain = _quotes(SyntheticConfig(), date(2024, 3, 28), date(2024, 3, 28))
    expiries = sorted(chain["expiry"].unique().to_list())
    assert expiries[0] == date(2024, 3, 28)  # Good Friday holiday: weekly moves to Thursday
    assert all(e.weekday() == 4 for e in expiries[1:])
    assert date(2024, 4, 19) in expiries  # third Friday of April
    horizon = (expiries[-1] - date(2024, 3, 28)).days
    assert 330 <= horizon <= 400


def test_strikes_sit_on_customary_increments_and_bracket_spot() -> None:
    chain = _quotes(SyntheticConfig(), START, START)
    spot = chain["underlying_price"][0]
    for (_expiry,), group in chain.group_by("expiry"):
        strikes = np.sort(group["strike"].unique().to_numpy())
        step = float(np.min(np.diff(strikes)))
        assert step in (0.5, 1.0, 2.5, 5.0, 10.0, 25.0)
        assert np.allclose(strikes / step, np.round(strikes / step))
        assert strikes[0] < spot < strikes[-1]


def test_contract_ids_are_occ_symbols() -> None:
    row = _quotes(SyntheticConfig(), START, START).row(0, named=True)
    expected = f"SPY{row['expiry']:%y%m%d}{row['right']}{round(row['strike'] * 1000):08d}"
    assert row["contract_id"] == expected and len(expected) == 18


def test_spreads_widen_for_short_dated_and_far_otm_contracts() -> None:
    chain = (
        _quotes(SyntheticConfig(seed=8), START, date(2024, 3, 8))
        .with_columns(
            dte=(pl.col("expiry") - pl.col("date")).dt.total_days(),
            spread_rel=(pl.col("ask") - pl.col("bid")) / ((pl.col("ask") + pl.col("bid")) / 2),
            otm=((pl.col("right") == "C") & (pl.col("strike") > pl.col("underlying_price")))
            | ((pl.col("right") == "P") & (pl.col("strike") < pl.col("underlying_price"))),
            moneyness=(pl.col("strike") / pl.col("underlying_price")).log().abs(),
        )
        .filter(pl.col("otm"))
    )
    near = chain.filter(pl.col("moneyness") < 0.01)
    short = near.filter(pl.col("dte") <= 3)["spread_rel"].median()
    medium = near.filter(pl.col("dte").is_between(25, 60))["spread_rel"].median()
    assert short > 1.3 * medium
    month = chain.filter(pl.col("dte").is_between(25, 60))
    assert month.filter(pl.col("moneyness") > 0.08)["spread_rel"].median() > 2 * medium


def _implied_vol(
    price: float, spot: float, strike: float, tau: float, r: float, q: float, is_call: bool
) -> float:
    def f(sigma: float) -> float:
        value = bsm_price(
            np.array([is_call]),
            np.array([spot]),
            np.array([strike]),
            np.array([tau]),
            r,
            q,
            np.array([sigma]),
        )
        return float(value[0]) - price

    return float(brentq(f, 1e-4, 5.0, xtol=1e-10))


@pytest.mark.slow
def test_implied_volatility_is_above_realized_on_average_with_a_put_skew() -> None:
    config = SyntheticConfig(seed=11)
    q = config.profile("SPY").dividend_yield
    start, end = date(2021, 1, 4), date(2023, 12, 29)
    bars = _bars(config, start, end)
    realized = float(np.diff(np.log(bars["close"].to_numpy())).std() * math.sqrt(252))
    ivs, skews = [], []
    for batch in generate("SPY", start, end, config, skip_day=lambda d: d.toordinal() % 10 != 0):
        chain = batch.frames[OPTION_QUOTES.name].with_columns(
            dte=(pl.col("expiry") - pl.col("date")).dt.total_days(),
            mid=(pl.col("bid") + pl.col("ask")) / 2,
        )
        expiry_chain = chain.filter(pl.col("dte") >= 25).filter(
            pl.col("dte") == pl.col("dte").min()
        )
        spot, tau = expiry_chain["underlying_price"][0], (expiry_chain["dte"][0] + 0.0) / 365
        calls = expiry_chain.filter(pl.col("right") == "C").sort((pl.col("strike") - spot).abs())
        puts = expiry_chain.filter(pl.col("right") == "P").sort(
            (pl.col("strike") - 0.93 * spot).abs()
        )
        atm = calls.row(0, named=True)
        ivs.append(_implied_vol(atm["mid"], spot, atm["strike"], tau, config.rate, q, True))
        otm_put = puts.row(0, named=True)
        put_iv = _implied_vol(otm_put["mid"], spot, otm_put["strike"], tau, config.rate, q, False)
        skews.append(put_iv - ivs[-1])
    assert np.mean(np.square(ivs)) > 1.1 * realized**2  # implied variance above realized
    assert np.mean(skews) > 0.01  # 7% OTM puts are richer than ATM


def test_planted_signal_moves_prices_but_not_the_underlying() -> None:
    none = SyntheticConfig(seed=9, signal="none")
    planted = SyntheticConfig(seed=9, signal="planted")
    assert _bars(none, START, END).equals(_bars(planted, START, END))
    q_none, q_planted = _quotes(none), _quotes(planted)
    assert q_none.select("contract_id", "ts_event").equals(
        q_planted.select("contract_id", "ts_event")
    )
    assert not q_none["bid"].equals(q_planted["bid"])


def test_planted_mispricing_is_a_documented_ar1() -> None:
    config = SyntheticConfig(seed=10, signal="planted", planted_sd=0.06, planted_phi=0.8)
    m = np.array(
        [
            d.mispricing
            for d in simulate_path("QQQ", date(2019, 12, 31), config, exchange_calendar())
        ]
    )
    m = m[250:]
    assert abs(m.std() - 0.06) < 0.006
    assert abs(np.corrcoef(m[:-1], m[1:])[0, 1] - 0.8) < 0.03


def test_unknown_underlying_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown underlying 'NOPE'.*known: AAPL"):
        next(generate("NOPE", START, END, SyntheticConfig()))


def test_nice_strike_steps() -> None:
    assert [nice_strike_step(x) for x in (0.2, 0.7, 1.0, 1.3, 3.0, 7.0)] == [
        0.5,
        1.0,
        1.0,
        2.5,
        5.0,
        10.0,
    ]


@pytest.mark.parametrize(
    ("now", "expected_local", "with_bar"),
    [
        (datetime(2024, 3, 12, 15, 40, tzinfo=UTC), "2024-03-12 11:00", False),  # 11:40 EDT
        (datetime(2024, 3, 12, 13, 0, tzinfo=UTC), "2024-03-11 16:00", True),  # before the open
        (datetime(2024, 3, 12, 21, 5, tzinfo=UTC), "2024-03-12 16:00", True),  # after the close
        (datetime(2024, 3, 16, 12, 0, tzinfo=UTC), "2024-03-15 16:00", True),  # Saturday
    ],
)
def test_latest_snapshot_is_the_last_one_published(
    now: datetime, expected_local: str, with_bar: bool
) -> None:
    batch = latest_snapshot("SPY", now, SyntheticConfig())
    quotes = batch.frames[OPTION_QUOTES.name]
    assert quotes["ts_event"].n_unique() == 1
    local = quotes["ts_event"][0].astimezone(EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M")
    assert local == expected_local
    assert (UNDERLYING_BARS.name in batch.frames) == with_bar
    assert quotes["ts_event"][0] <= now


def test_resuming_from_a_checkpoint_gives_the_identical_path() -> None:
    config = SyntheticConfig(seed=12, signal="planted")
    cal = exchange_calendar()
    full = [
        d
        for d in simulate_path("IWM", date(2016, 6, 30), config, cal)
        if d.session.day >= date(2016, 6, 1)
    ]
    resumed = [
        d
        for d in simulate_path("IWM", date(2016, 6, 30), config, cal, start=date(2016, 6, 10))
        if d.session.day >= date(2016, 6, 1)
    ]
    assert [(d.spots, d.variances, d.mispricing) for d in full] == [
        (d.spots, d.variances, d.mispricing) for d in resumed
    ]


def test_injected_dirt_is_deterministic_and_every_bad_row_is_quarantined() -> None:
    clean = _quotes(SyntheticConfig(seed=13), START, date(2024, 3, 5))
    dirty_config = SyntheticConfig(seed=13, dirt_rate=0.02)
    dirty = _quotes(dirty_config, START, date(2024, 3, 5))
    assert dirty.equals(_quotes(dirty_config, START, date(2024, 3, 5)))
    result = check(dirty, OPTION_QUOTES)
    slipped = result.valid.join(clean, on=clean.columns, how="anti", nulls_equal=True)
    assert slipped.is_empty()  # nothing damaged reached the valid rows
    assert set(result.reason_counts) - {"zero_bid"} == {
        "bid_above_ask",
        "negative_price",
        "missing_underlying_price",
        "non_finite_price",
        "duplicate_row",
        "conflicting_duplicate",
    }
    injected = result.quarantined.filter(pl.col("reason") != "zero_bid").height
    assert 0.015 * clean.height < injected < 0.04 * clean.height


def test_expiries_two_years_ahead_are_real_fridays() -> None:
    chain = _quotes(SyntheticConfig(expiry_months=24), date(2026, 12, 1), date(2026, 12, 1))
    expiries = sorted(chain["expiry"].unique().to_list())
    assert expiries[-1] == date(2028, 12, 15)
    assert all(e.weekday() in (3, 4) for e in expiries)  # Friday, or Thursday before a holiday


def test_quotes_respect_the_european_no_arbitrage_bounds() -> None:
    config = SyntheticConfig(seed=14)
    q = config.profile("SPY").dividend_yield
    chain = _quotes(config, START, START).with_columns(
        tau=(pl.col("expiry") - pl.col("date")).dt.total_days() / 365.0
    )
    assert chain["exercise_style"].unique().to_list() == ["european"]
    spot, strike, tau = pl.col("underlying_price"), pl.col("strike"), pl.col("tau")
    forward_intrinsic = spot * (-q * tau).exp() - strike * (-config.rate * tau).exp()
    lower = pl.when(pl.col("right") == "C").then(forward_intrinsic).otherwise(-forward_intrinsic)
    assert chain.filter(pl.col("ask") < lower.clip(lower_bound=0) - 1e-9).is_empty()


def test_a_zero_variance_risk_premium_prices_at_the_expected_variance() -> None:
    fair = SyntheticConfig(seed=11, variance_risk_premium=0.0)
    rich = SyntheticConfig(seed=11)
    assert fair.profile("SPY").variance_risk_premium == 0.0
    assert rich.profile("SPY").variance_risk_premium == pytest.approx(0.3)
    mid = ((pl.col("bid") + pl.col("ask")) / 2).alias("mid")
    both = (
        _quotes(fair)
        .select("contract_id", "ts_event", mid)
        .join(_quotes(rich).select("contract_id", "ts_event", mid), on=["contract_id", "ts_event"])
    )
    assert both.height > 10_000
    assert both["mid"].equals(both["mid_right"]) is False
    assert (both["mid"] <= both["mid_right"]).all()  # same path, lower volatility everywhere


def test_the_variance_clock_runs_on_sessions_not_calendar_days() -> None:
    calendar = exchange_calendar()
    clock = TradingClock.of(calendar)
    friday, monday = calendar.sessions(date(2024, 3, 8), date(2024, 3, 11))
    friday_close, monday_open = friday.close.timestamp(), monday.open.timestamp()
    day = 1 / 252
    assert clock.now(friday_close + 3600) == pytest.approx(clock.now(friday_close))  # weekend
    assert clock.now(monday_open) - clock.now(friday_close) == pytest.approx(0.2 * day)
    assert clock.now(monday.close.timestamp()) - clock.now(friday_close) == pytest.approx(day)
    # from one Friday's close to the next: five sessions, however many calendar days
    next_friday = calendar.sessions(date(2024, 3, 15), date(2024, 3, 15))[0]
    until = clock.years_until(friday_close, np.array([next_friday.close.timestamp()]))
    assert until[0] == pytest.approx(5 * day)


def test_a_straddle_is_priced_for_the_variance_of_its_sessions() -> None:
    """Implied variance x calendar time = expected variance over the trading time left,
    so a Friday close prices no variance for the weekend it will not see."""
    params = SyntheticConfig().profile("SPY").surface()
    v = params.mean_variance  # the variance at its long-run mean: flat expected variance
    tau = np.array([7 / 365, 7 / 365])
    trading = np.array([5 / 252, 4 / 252])  # a week, and a week with a holiday
    iv = atm_implied_vol(params, v, tau, 0.0, trading)
    per_trading_year = (v + params.jump_variance) * (1 + params.variance_risk_premium)
    assert iv**2 * tau == pytest.approx(per_trading_year * trading, rel=1e-12)
