"""Per-contract analytics of option chain snapshots: the ``option_analytics`` rows.

Pure functions of their inputs (quotes, the rate and dividend yield per day, the
calendar): no I/O, no clock. For each quote row:

* ``price``: the mid of a two-sided quote (bid > 0, ask >= bid); for a row with no
  quote but a last trade (trade-only end-of-day chains) the last trade, with
  ``price_source`` saying which. No price, or a crossed quote, gets that status.
* ``t_years``: calendar time from the snapshot to the contract's last trading time
  (the expiry session's close for PM settlement, the previous session's close for
  AM), over 365 days; ``dte_days`` the same in days.
* ``rate`` and ``div_yield`` as of the snapshot's date; the forward
  ``F = S exp((r - q) t)`` and ``log_moneyness = ln(K / F)``.
* ``iv_bid`` and ``iv_ask``: the bid and the ask of a two-sided quote solved the same
  way (the quote's width in volatility).
* IV and Greeks: European contracts by Black-Scholes-Merton (``features.greeks``,
  ``model`` "bsm_european"); American ones (US single stocks) by Barone-Adesi-Whaley
  (``features.american``, ``model`` "baw_american"), so the early-exercise premium
  of in-the-money puts and calls before dividends is not read as volatility.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from data_lake.calendar import ExchangeCalendar, last_trading_time
from data_lake.schemas import OPTION_ANALYTICS
from features.american import american_implied_vol_and_greeks
from features.greeks import implied_vol_and_greeks

YEAR_SECONDS = 365.0 * 86400.0
YEARS_PER_MICROSECOND = 1.0 / (YEAR_SECONDS * 1e6)
MODELS = {"european": "bsm_european", "american": "baw_american"}


def _last_trading_times(quotes: pl.DataFrame, calendar: ExchangeCalendar) -> pl.DataFrame:
    pairs = quotes.select("expiry", "settlement").unique()
    times = [
        last_trading_time(expiry, settlement or "PM", calendar)
        for expiry, settlement in pairs.iter_rows()
    ]
    return pairs.with_columns(pl.Series("_last_trade", times, dtype=pl.Datetime("us", "UTC")))


def with_prices(quotes: pl.DataFrame) -> pl.DataFrame:
    """``price``, ``price_source``, ``spread_rel`` and a pre-solve status per row."""
    bid, ask, last = pl.col("bid"), pl.col("ask"), pl.col("last")
    two_sided = ((bid > 0) & (ask >= bid)).fill_null(False)
    mid = (bid + ask) / 2
    trade_only = (bid.is_null() & ask.is_null() & (last > 0)).fill_null(False)
    return quotes.with_columns(
        pl.when(two_sided).then(mid).when(trade_only).then(last).alias("price"),
        pl.when(two_sided)
        .then(pl.lit("mid"))
        .when(trade_only)
        .then(pl.lit("last"))
        .alias("price_source"),
        pl.when(two_sided).then((ask - bid) / mid).alias("spread_rel"),
        pl.when(bid > ask)
        .then(pl.lit("crossed_quote"))
        .when(~two_sided & ~trade_only)
        .then(pl.lit("no_price"))
        .alias("_pre_status"),
    )


def option_analytics(
    quotes: pl.DataFrame,
    rates: pl.DataFrame,
    div_yields: pl.DataFrame,
    calendar: ExchangeCalendar,
) -> pl.DataFrame:
    """``option_analytics`` rows for ``quotes`` (``option_quotes`` schema).

    ``rates``: ``date, rate`` per quote date; ``div_yields``: ``underlying, date,
    div_yield``. Every quote row gives one row, in the input order.
    """
    if quotes.is_empty():
        return pl.DataFrame(schema=OPTION_ANALYTICS.schema)
    frame = (
        with_prices(quotes)
        .join(_last_trading_times(quotes, calendar), on=["expiry", "settlement"], how="left")
        .join(rates.select("date", "rate"), on="date", how="left")
        .join(
            div_yields.select("underlying", "date", "div_yield"),
            on=["underlying", "date"],
            how="left",
        )
        .with_columns(
            # times a constant, never divided by a literal: Polars divides a one-row
            # column by a literal exactly and a longer one by the reciprocal, which
            # would make a row's bits depend on how many rows it was built with
            (
                (pl.col("_last_trade") - pl.col("ts_event")).dt.total_microseconds()
                * YEARS_PER_MICROSECOND
            ).alias("t_years"),
            pl.col("div_yield").fill_null(0.0),
        )
    )
    frame = frame.with_columns(pl.col("underlying_price").alias("spot"))
    solved = _solved(frame).with_columns(_side_ivs(frame))
    status = pl.coalesce(pl.col("_pre_status"), pl.col("solver_status").cast(pl.String))
    greeks = ("iv", "delta", "gamma", "vega", "theta", "rho")
    unpriced = pl.col("_pre_status").is_not_null()
    forward = (
        pl.col("underlying_price")
        * ((pl.col("rate") - pl.col("div_yield")) * pl.col("t_years")).exp()
    )
    return solved.select(
        "underlying",
        "date",
        "contract_id",
        "ts_event",
        "expiry",
        "strike",
        "right",
        "exercise_style",
        "underlying_price",
        "price",
        "price_source",
        "spread_rel",
        (pl.col("strike") / forward).log().alias("log_moneyness"),
        (pl.col("t_years") * 365.0).alias("dte_days"),
        "t_years",
        "rate",
        "div_yield",
        pl.when(unpriced).then(None).otherwise(pl.col("iv")).alias("iv"),
        "iv_bid",
        "iv_ask",
        *(pl.when(unpriced).then(None).otherwise(pl.col(g)).alias(g) for g in greeks[1:3]),
        pl.when(unpriced).then(None).otherwise(pl.col("vega")).alias("vega_per_vol_point"),
        pl.when(unpriced).then(None).otherwise(pl.col("theta")).alias("theta_per_day"),
        pl.when(unpriced).then(None).otherwise(pl.col("rho")).alias("rho_per_pct_rate"),
        status.alias("solver_status"),
        pl.when(pl.col("exercise_style") == "american")
        .then(pl.lit(MODELS["american"]))
        .otherwise(pl.lit(MODELS["european"]))
        .alias("model"),
        "volume",
        "open_interest",
        "ts_init",
        "source",
    ).cast(dict(OPTION_ANALYTICS.schema))  # type: ignore[arg-type]


def _solved(frame: pl.DataFrame) -> pl.DataFrame:
    """IV and Greeks by each row's exercise style, rows in their input order."""
    american = pl.col("exercise_style") == "american"
    if not frame.select(american.any()).item():
        return implied_vol_and_greeks(frame)
    indexed = frame.with_row_index("_row")
    parts = [
        implied_vol_and_greeks(indexed.filter(~american)),
        american_implied_vol_and_greeks(indexed.filter(american)),
    ]
    return pl.concat(parts).sort("_row").drop("_row")


def _side_ivs(frame: pl.DataFrame) -> list[pl.Series]:
    """``iv_bid`` and ``iv_ask``: each side of a two-sided quote solved like the mid
    (same model, same inputs); null where the quote is not two-sided or that side has
    no IV (a bid at or below intrinsic value, say)."""
    two_sided = pl.col("price_source") == "mid"
    inputs = frame.select("spot", "strike", "t_years", "rate", "div_yield", "right",
                          "exercise_style", two_sided.alias("_two"), "bid", "ask")  # fmt: skip
    sides = []
    for side in ("bid", "ask"):
        priced = inputs.with_columns(pl.when("_two").then(pl.col(side)).alias("price"))
        iv = _solved(priced)["iv"]
        sides.append(iv.fill_nan(None).alias(f"iv_{side}"))
    return sides


def constant_rates(days: list[date], rate: float) -> pl.DataFrame:
    """A ``date, rate`` frame with one rate for every day (tests and fallbacks)."""
    return pl.DataFrame(
        {"date": days, "rate": [rate] * len(days)}, schema={"date": pl.Date, "rate": pl.Float64}
    )
