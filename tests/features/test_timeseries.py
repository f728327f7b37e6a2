"""Realized volatility, IV rank and changes: slow numpy oracles of the published
formulas, hand-worked golden values, and point-in-time as a property.

Sources for the range estimators:

* Parkinson, M. (1980), "The Extreme Value Method for Estimating the Variance of the
  Rate of Return", Journal of Business 53(1), 61-65:
  ``sigma^2 = 1 / (4 n ln 2) * sum (ln H/L)^2``.
* Garman, M. B. and Klass, M. J. (1980), "On the Estimation of Security Price
  Volatilities from Historical Data", Journal of Business 53(1), 67-78 (the
  "practical" estimator): ``sigma^2 = 1/n * sum [0.5 (ln H/L)^2 - (2 ln 2 - 1) (ln C/O)^2]``.
* Yang, D. and Zhang, Q. (2000), "Drift-Independent Volatility Estimation Based on
  High, Low, Open, and Close Prices", Journal of Business 73(3), 477-491:
  ``sigma^2 = V_o + k V_c + (1 - k) V_rs`` with ``V_o``, ``V_c`` the sample variances
  (n - 1) of the overnight ``ln(O_t / C_{t-1})`` and open-to-close ``ln(C_t / O_t)``
  returns, ``V_rs`` the mean of Rogers-Satchell terms
  ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)``, and ``k = 0.34 / (1.34 + (n + 1) / (n - 1))``.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.timeseries import realized_vol, with_time_series

ANNUAL = math.sqrt(252)
CLOSE = time(21, 0)  # 16:00 New York (EST): the session close, when a daily bar is known
MIDDAY = time(15, 0)  # 10:00 New York: an intraday snapshot
CHANGED = ("atm_iv_30d", "skew_25d_30d", "term_slope_30_90")
RV_COLUMNS = (
    "rv_cc_10d",
    "rv_cc_21d",
    "rv_cc_63d",
    "rv_parkinson_21d",
    "rv_garman_klass_21d",
    "rv_yang_zhang_21d",
)


def sessions(n: int, first: date = date(2023, 1, 2)) -> list[date]:
    """``n`` weekdays from ``first`` (holidays do not matter here)."""
    days, day = [], first
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=UTC)


def random_ohlc(n: int, seed: int) -> dict[str, np.ndarray]:
    """A seeded daily path with overnight gaps and consistent highs and lows."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.012, n)))
    prev = np.concatenate([[100.0], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.006, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, n)))
    return {"open": open_, "high": high, "low": low, "close": close}


def bars_frame(underlying: str, days: list[date], ohlc: dict[str, np.ndarray]) -> pl.DataFrame:
    """Daily bars as ``with_time_series`` gets them: ``ts_init`` is the session close."""
    return pl.DataFrame(
        {
            "underlying": [underlying] * len(days),
            "ts_init": [at(d, CLOSE) for d in days],
            **{k: v.tolist() for k, v in ohlc.items()},
        },
        schema_overrides={"ts_init": pl.Datetime("us", "UTC")},
    )


def snapshots_frame(
    underlying: str, times: list[datetime], values: dict[str, list[float | None]]
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "underlying": [underlying] * len(times),
            "date": [t.date() for t in times],
            "ts_event": times,
            **values,
        },
        schema_overrides={
            "ts_event": pl.Datetime("us", "UTC"),
            **{name: pl.Float64 for name in values},
        },
    )


# --- slow oracles: one window at a time, straight from the formulas above -------------


def oracle_cc(close: np.ndarray, window: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(close)):
        if i < window:  # `window` returns need window + 1 closes
            out.append(None)
            continue
        returns = np.log(close[i - window + 1 : i + 1] / close[i - window : i])
        out.append(float(np.std(returns, ddof=1)) * ANNUAL)
    return out


def oracle_parkinson(high: np.ndarray, low: np.ndarray, n: int = 21) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(high)):
        if i < n - 1:
            out.append(None)
            continue
        hl = np.log(high[i - n + 1 : i + 1] / low[i - n + 1 : i + 1])
        out.append(math.sqrt(np.sum(hl**2) / (4 * n * math.log(2))) * ANNUAL)
    return out


def oracle_garman_klass(ohlc: dict[str, np.ndarray], n: int = 21) -> list[float | None]:
    o, h, lo, c = ohlc["open"], ohlc["high"], ohlc["low"], ohlc["close"]
    out: list[float | None] = []
    for i in range(len(c)):
        if i < n - 1:
            out.append(None)
            continue
        w = slice(i - n + 1, i + 1)
        terms = 0.5 * np.log(h[w] / lo[w]) ** 2 - (2 * math.log(2) - 1) * np.log(c[w] / o[w]) ** 2
        out.append(math.sqrt(np.mean(terms)) * ANNUAL)
    return out


def oracle_yang_zhang(ohlc: dict[str, np.ndarray], n: int = 21) -> list[float | None]:
    o, h, lo, c = ohlc["open"], ohlc["high"], ohlc["low"], ohlc["close"]
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    out: list[float | None] = []
    for i in range(len(c)):
        if i < n:  # n overnight returns need the close before the window
            out.append(None)
            continue
        w = slice(i - n + 1, i + 1)
        overnight = np.log(o[w] / c[i - n : i])
        open_close = np.log(c[w] / o[w])
        rs = np.log(h[w] / c[w]) * np.log(h[w] / o[w]) + np.log(lo[w] / c[w]) * np.log(lo[w] / o[w])
        v_o = np.sum((overnight - overnight.mean()) ** 2) / (n - 1)
        v_c = np.sum((open_close - open_close.mean()) ** 2) / (n - 1)
        out.append(math.sqrt(v_o + k * v_c + (1 - k) * np.mean(rs)) * ANNUAL)
    return out


def assert_series_close(got: pl.Series, expected: list[float | None], rel: float = 1e-10) -> None:
    assert got.len() == len(expected)
    assert got.is_null().to_list() == [e is None for e in expected]
    known = [(g, e) for g, e in zip(got.to_list(), expected, strict=True) if e is not None]
    assert known, "the oracle gave no values: the test would check nothing"
    assert [g for g, _ in known] == pytest.approx([e for _, e in known], rel=rel)


# --- realized volatility ---------------------------------------------------------------


@pytest.mark.parametrize("window", [10, 21, 63])
def test_close_to_close_rv_equals_annualized_sample_std_of_log_returns(window: int) -> None:
    days = sessions(90)
    ohlc = random_ohlc(90, seed=7)
    rv = realized_vol(bars_frame("SPY", days, ohlc))
    assert rv["_bar_known"].to_list() == [at(d, CLOSE) for d in days]
    assert_series_close(rv[f"rv_cc_{window}d"], oracle_cc(ohlc["close"], window))


def test_close_to_close_rv_hand_worked_alternating_path() -> None:
    # log returns alternate +r, -r (r = 1%): over 10 returns the mean is 0 and the sum
    # of squares 10 r^2, so the sample std (ddof=1) is r sqrt(10/9); annualized
    # 0.01 * sqrt(10/9) * sqrt(252) = 0.167332...
    r = 0.01
    closes = 100.0 * np.exp(r * (np.arange(11) % 2))  # 100, 100e^r, 100, 100e^r, ...
    ohlc = {"open": closes, "high": closes * 1.001, "low": closes / 1.001, "close": closes}
    rv = realized_vol(bars_frame("SPY", sessions(11), ohlc))
    assert rv["rv_cc_10d"][-1] == pytest.approx(r * math.sqrt(10 / 9) * math.sqrt(252), rel=1e-9)
    assert rv["rv_cc_10d"][-1] == pytest.approx(0.1673320053, rel=1e-9)
    assert rv["rv_cc_10d"][:-1].is_null().all()


def test_parkinson_garman_klass_and_yang_zhang_match_the_published_formulas() -> None:
    days = sessions(70)
    ohlc = random_ohlc(70, seed=11)
    rv = realized_vol(bars_frame("SPY", days, ohlc))
    assert_series_close(rv["rv_parkinson_21d"], oracle_parkinson(ohlc["high"], ohlc["low"]))
    assert_series_close(rv["rv_garman_klass_21d"], oracle_garman_klass(ohlc))
    assert_series_close(rv["rv_yang_zhang_21d"], oracle_yang_zhang(ohlc))


def test_parkinson_hand_worked_constant_range() -> None:
    # every day ln(H/L) = 0.02: sigma^2 = 0.02^2 / (4 ln 2), so the annualized
    # Parkinson volatility is 0.02 / (2 sqrt(ln 2)) * sqrt(252) = 0.190672...
    closes = np.full(21, 50.0)
    ohlc = {"open": closes, "high": closes * math.exp(0.01), "low": closes * math.exp(-0.01),
            "close": closes}  # fmt: skip
    rv = realized_vol(bars_frame("SPY", sessions(21), ohlc))
    expected = 0.02 / (2 * math.sqrt(math.log(2))) * math.sqrt(252)
    assert rv["rv_parkinson_21d"][-1] == pytest.approx(expected, rel=1e-12)
    assert rv["rv_parkinson_21d"][-1] == pytest.approx(0.1906723, rel=1e-6)
    # open = close every day: the Garman-Klass close-open term vanishes, leaving
    # 0.5 * 0.02^2 a day: 0.02 * sqrt(0.5) * sqrt(252) = 0.224499...
    assert rv["rv_garman_klass_21d"][-1] == pytest.approx(0.02 * math.sqrt(0.5 * 252), rel=1e-12)


def test_realized_vol_keeps_underlyings_apart_and_sorts_bars() -> None:
    days = sessions(40)
    a, b = random_ohlc(40, seed=1), random_ohlc(40, seed=2)
    mixed = pl.concat([bars_frame("AAA", days, a), bars_frame("BBB", days, b)])
    shuffled = mixed.sample(fraction=1.0, shuffle=True, seed=3)
    rv = realized_vol(shuffled)
    for name, ohlc in (("AAA", a), ("BBB", b)):
        alone = realized_vol(bars_frame(name, days, ohlc))
        assert rv.filter(pl.col("underlying") == name).equals(alone)
        assert_series_close(alone["rv_cc_21d"], oracle_cc(ohlc["close"], 21))


# --- as of each snapshot -----------------------------------------------------------------


def test_intraday_snapshot_sees_bars_up_to_the_previous_close_only() -> None:
    days = sessions(80)
    ohlc = random_ohlc(80, seed=5)
    rv = realized_vol(bars_frame("SPY", days, ohlc))
    # day 70 is a Monday in this calendar: its midday snapshot falls back to Friday's bar
    monday = 70
    assert days[monday].weekday() == 0
    times = [
        at(days[monday], MIDDAY),  # before Monday's close: Friday's bar
        at(days[monday], CLOSE) - timedelta(microseconds=1),  # still Friday's bar
        at(days[monday], CLOSE),  # at the close: Monday's bar is known
        at(days[monday + 1], MIDDAY),  # next day intraday: Monday's bar
    ]
    known_bar = [monday - 1, monday - 1, monday, monday]
    snaps = snapshots_frame("SPY", times, {c: [0.2, 0.21, 0.22, 0.23] for c in CHANGED})
    out = with_time_series(snaps, bars_frame("SPY", days, ohlc))
    assert out["ts_event"].to_list() == times
    for column in RV_COLUMNS:
        expected = [rv[column][i] for i in known_bar]
        assert out[column].to_list() == expected, column
    assert out["vrp_30d"].to_list() == pytest.approx(
        [iv - rv["rv_cc_21d"][i] for iv, i in zip([0.2, 0.21, 0.22, 0.23], known_bar, strict=True)]
    )
    # and the numbers are the oracle's: the close-to-close window ends at the known bar
    assert out["rv_cc_21d"][0] == pytest.approx(oracle_cc(ohlc["close"], 21)[monday - 1])


def test_snapshot_before_any_bar_has_no_realized_vol() -> None:
    days = sessions(30)
    ohlc = random_ohlc(30, seed=8)
    snaps = snapshots_frame(
        "SPY", [at(days[0], MIDDAY), at(days[-1], CLOSE)], {c: [0.2, 0.2] for c in CHANGED}
    )
    out = with_time_series(snaps, bars_frame("SPY", days, ohlc))
    assert out["rv_cc_21d"][0] is None
    assert out["rv_cc_21d"][1] == pytest.approx(oracle_cc(ohlc["close"], 21)[-1])


def oracle_rank_and_percentile(
    iv: list[float | None], window: int = 252, min_samples: int = 20
) -> tuple[list[float | None], list[float | None]]:
    ranks: list[float | None] = []
    percentiles: list[float | None] = []
    for i, now in enumerate(iv):
        seen = [v for v in iv[max(0, i - window + 1) : i + 1] if v is not None]
        if now is None or len(seen) < min_samples:
            ranks.append(None)
            percentiles.append(None)
            continue
        lo, hi = min(seen), max(seen)
        ranks.append((now - lo) / (hi - lo) if hi > lo else None)
        percentiles.append(sum(v <= now for v in seen) / len(seen))
    return ranks, percentiles


def oracle_change(values: list[float | None], periods: int) -> list[float | None]:
    return [
        None if i < periods or v is None or values[i - periods] is None else v - values[i - periods]
        for i, v in enumerate(values)
    ]


def test_iv_rank_percentile_and_changes_equal_an_oracle_loop() -> None:
    n = 300  # past the 252-snapshot window, so old snapshots leave it
    rng = np.random.default_rng(21)
    days = sessions(n)
    values: dict[str, list[float | None]] = {
        "atm_iv_30d": (0.2 + 0.05 * np.sin(np.arange(n) / 17) + rng.normal(0, 0.01, n)).tolist(),
        "skew_25d_30d": rng.normal(0.04, 0.01, n).tolist(),
        "term_slope_30_90": rng.normal(0.01, 0.005, n).tolist(),
    }
    # gaps: a snapshot without a 30-day ATM IV, one early on inside the warm-up
    for i in (5, 150):
        values["atm_iv_30d"][i] = None
    values["atm_iv_30d"][100] = max(v for v in values["atm_iv_30d"] if v is not None) + 0.1
    snaps = snapshots_frame("SPY", [at(d, CLOSE) for d in days], values)
    out = with_time_series(snaps, bars_frame("SPY", days, random_ohlc(n, seed=4)))
    ranks, percentiles = oracle_rank_and_percentile(values["atm_iv_30d"])
    assert_series_close(out["iv_rank_252"], ranks, rel=1e-12)
    assert_series_close(out["iv_percentile_252"], percentiles, rel=1e-12)
    # the spike at 100 is the window's maximum until it leaves the window at 352
    assert out["iv_rank_252"][100] == 1.0
    for name in CHANGED:
        for periods in (1, 5, 20):
            got = out[f"{name}_chg_{periods}"]
            assert_series_close(got, oracle_change(values[name], periods), rel=1e-12)


def test_iv_rank_is_null_while_the_window_is_flat() -> None:
    days = sessions(25)
    snaps = snapshots_frame("SPY", [at(d, CLOSE) for d in days], {c: [0.3] * 25 for c in CHANGED})
    out = with_time_series(snaps, bars_frame("SPY", days, random_ohlc(25, seed=1)))
    assert out["iv_rank_252"].is_null().all()  # max == min: no rank, never a division by 0
    assert out["iv_percentile_252"].to_list() == [None] * 19 + [1.0] * 6


def test_series_of_two_underlyings_do_not_mix() -> None:
    days = sessions(60)
    rng = np.random.default_rng(2)
    frames, bars, alone = [], [], {}
    for name, seed in (("AAA", 31), ("BBB", 32)):
        values: dict[str, list[float | None]] = {
            c: rng.normal(0.2, 0.03, 60).tolist() for c in CHANGED
        }
        # AAA snaps intraday, BBB at the close: their times interleave
        clock = MIDDAY if name == "AAA" else CLOSE
        snaps = snapshots_frame(name, [at(d, clock) for d in days], values)
        b = bars_frame(name, days, random_ohlc(60, seed=seed))
        frames.append(snaps)
        bars.append(b)
        alone[name] = with_time_series(snaps, b)
    both = with_time_series(
        pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=9),
        pl.concat(bars).sample(fraction=1.0, shuffle=True, seed=10),
    )
    for name, expected in alone.items():
        assert both.filter(pl.col("underlying") == name).equals(expected)
    assert alone["AAA"]["iv_rank_252"].drop_nulls().len() > 0


# --- point-in-time, as a property ------------------------------------------------------------


def random_history(seed: int, n_days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two underlyings: daily bars and snapshots at random times of day (some days
    without a snapshot, some with two)."""
    rng = np.random.default_rng(seed)
    days = sessions(n_days)
    snaps, bars = [], []
    for u, name in enumerate(("AAA", "BBB")):
        bars.append(bars_frame(name, days, random_ohlc(n_days, seed=seed + u)))
        times = [at(d, clock) for d in days for clock in (MIDDAY, CLOSE) if rng.random() < 0.6]
        values = {c: rng.normal(0.2, 0.04, len(times)).tolist() for c in CHANGED}
        snaps.append(snapshots_frame(name, times, values))
    return pl.concat(snaps), pl.concat(bars)


def perturbed_after(frame: pl.DataFrame, ts: str, cut: datetime, seed: int) -> pl.DataFrame:
    """Every float after ``cut`` scaled by a random factor; rows up to ``cut`` untouched."""
    rng = np.random.default_rng(seed)
    factor = pl.Series(rng.uniform(0.5, 1.5, frame.height))
    floats = [c for c, t in frame.schema.items() if t == pl.Float64]
    later = pl.col(ts) > cut
    return frame.with_columns(
        pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in floats
    )


def as_of(frame: pl.DataFrame, cut: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("ts_event") <= cut).sort("underlying", "ts_event")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n_days=st.integers(30, 90),
    cut_day=st.floats(0.0, 1.0),
    cut_clock=st.sampled_from([MIDDAY, CLOSE, time(20, 59, 59, 999999), time(23, 0)]),
)
def test_rows_up_to_a_cut_ignore_everything_after_it(
    seed: int, n_days: int, cut_day: float, cut_clock: time
) -> None:
    snaps, bars = random_history(seed, n_days)
    days = sessions(n_days)
    cut = at(days[min(n_days - 1, int(cut_day * n_days))], cut_clock)
    reference = as_of(with_time_series(snaps, bars), cut)
    # only the past, as the pipeline had it at the cut
    past = with_time_series(
        snaps.filter(pl.col("ts_event") <= cut), bars.filter(pl.col("ts_init") <= cut)
    )
    # a different future: every later snapshot and bar changed, more of them appended
    later_snaps, later_bars = random_history(seed + 1, n_days + 20)
    future = with_time_series(
        pl.concat([
            perturbed_after(snaps, "ts_event", cut, seed),
            later_snaps.filter(pl.col("ts_event") > at(days[-1], time(23, 0))),
        ]),
        pl.concat([
            perturbed_after(bars, "ts_init", cut, seed + 2),
            later_bars.filter(pl.col("ts_init") > at(days[-1], time(23, 0))),
        ]),
    )  # fmt: skip
    assert as_of(past, cut).equals(reference)
    assert as_of(future, cut).equals(reference)
    assert past.height == reference.height


def test_har_beta_and_z_scores_equal_an_oracle_loop() -> None:
    """``iv_vs_har_30d``, ``spot_vol_beta_63`` and the z-scores, one window at a time
    from their definitions."""
    n = 120
    rng = np.random.default_rng(22)
    days = sessions(n)
    ohlc = random_ohlc(n, seed=5)
    spot = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    iv = 0.2 - 0.5 * np.concatenate([[0.0], np.diff(np.log(spot))]).cumsum() * 0.1
    iv = iv + rng.normal(0, 0.003, n)
    values: dict[str, list[float | None]] = {
        "atm_iv_30d": iv.tolist(), "underlying_price": spot.tolist(),
        "term_log_7_30": rng.normal(0, 0.05, n).tolist(),
        **{c: rng.normal(0.02, 0.005, n).tolist() for c in ("skew_25d_30d", "term_slope_30_90")},
    }  # fmt: skip
    snaps = snapshots_frame("SPY", [at(d, CLOSE) for d in days], values)
    out = with_time_series(snaps, bars_frame("SPY", days, ohlc))
    # HAR: 252 * (0.2 r_t^2 + 0.3 mean_5 r^2 + 0.5 mean_22 r^2) of the bars' log returns
    ret = np.concatenate([[np.nan], np.diff(np.log(ohlc["close"]))])
    har: list[float | None] = []
    for i in range(n):
        means = [np.mean(ret[i - w + 1 : i + 1] ** 2) if i >= w else np.nan for w in (1, 5, 22)]
        var = 252 * (0.2 * means[0] + 0.3 * means[1] + 0.5 * means[2])
        har.append(math.log(iv[i]) - 0.5 * math.log(var) if np.isfinite(var) else None)
    assert_series_close(out["iv_vs_har_30d"], har, rel=1e-9)
    # beta: cov(d iv, log return) / var(log return) over the trailing 63 (from 20)
    r = np.concatenate([[np.nan], np.diff(np.log(spot))])
    div = np.concatenate([[np.nan], np.diff(iv)])
    full = list(range(63, n))  # windows of 63 whole returns
    windows = [slice(i - 62, i + 1) for i in full]
    betas = [float(np.cov(r[w], div[w])[0, 1] / np.var(r[w], ddof=1)) for w in windows]
    got = out["spot_vol_beta_63"].gather(full)
    assert_series_close(got, betas, rel=1e-9)
    assert all(b is not None and b < 0 for b in got.to_list())  # IV falls as spot rises
    # z-score of the term log ratio over the trailing 63 (from 20)
    x = np.array(values["term_log_7_30"], dtype=float)
    z: list[float | None] = []
    for i in range(n):
        w = x[max(0, i - 62) : i + 1]
        z.append(float((x[i] - w.mean()) / w.std(ddof=1)) if len(w) >= 20 else None)
    assert_series_close(out["z63_term_log_7_30"], z, rel=1e-9)
    assert out["z63_front_vs_curve_7d"].is_null().all()  # its input is absent here
