"""Labels: the only forward-looking code in volflow. Each label at a snapshot ``t`` with
horizon ``h`` uses the snapshots ``t .. t+h`` of the same underlying (h counted in
that underlying's snapshots) and records ``ts_end``, the snapshot it becomes known.

* ``atm_iv_30d_change``: ``atm_iv_30d(t+h) - atm_iv_30d(t)`` (``cost`` 0: a forecast
  target, not a traded return).
* ``straddle_dh_ret``: the return of a delta-hedged at-the-money straddle bought at
  ``t`` and sold at ``t+h``, net of costs. The straddle is the call and put of the
  expiry nearest 30 days (at least ``2h + 2`` calendar days away, so it outlives the
  horizon) at the strike nearest the forward (ties: the earlier expiry, the lower strike). It is
  bought at the ask and sold at the bid (half the quoted spread each way:
  ``SPREAD_COST_SHARE`` of the relative spread on each leg), and its delta is hedged
  with the underlying at every snapshot in between, at no cost. Return = (straddle
  P&L + hedge P&L - costs) / straddle premium at t; ``cost`` is the round trip's
  costs / premium at t (a short straddle returns ``-value - 2 * cost``). A straddle
  whose legs are missing at any snapshot in between has no label.
* ``straddle_mv_ret``: the same straddle hedged with the **minimum-variance** delta
  (Hull and White 2017): the BSM delta ignores that IV moves with spot (falls as
  spot rises, for an index), so a BSM-hedged straddle keeps a directional bet (the
  5-day ``straddle_dh_ret`` correlated -0.49 with the underlying's 5-day return on
  SPY): noise for any model of volatility. The hedge adds vega times the expected
  change of the straddle's (fixed-strike) IV per unit of spot: ``(beta - slope) / S``,
  ``beta`` the trailing regression of the ATM IV change on the log return
  (``spot_vol_beta_63``, point-in-time, as of each hedge step) and ``slope`` the
  smile's slope in log-moneyness from the 25-delta skew (spot up moves the strike
  down the skew); no label where the regression has fewer than 20 snapshots.
"""

from __future__ import annotations

import polars as pl

from features.timeseries import SPOT_VOL_BETA

HORIZONS = (1, 5)  # snapshots ahead
BETA = SPOT_VOL_BETA  # the ATM IV change per log return (features.timeseries)
TARGET_DTE_DAYS = 30.0
SPREAD_COST_SHARE = 0.5  # pay half the quoted spread to enter, half to exit


def snapshot_index(snapshots: pl.DataFrame) -> pl.DataFrame:
    """``underlying, ts_event, _i``: each snapshot's position in its underlying's series."""
    return (
        snapshots.select("underlying", "ts_event")
        .unique()
        .sort("underlying", "ts_event")
        .with_columns(pl.int_range(pl.len()).over("underlying").alias("_i"))
    )


def iv_change_labels(surface: pl.DataFrame, horizon: int) -> pl.DataFrame:
    ordered = surface.sort("underlying", "ts_event")
    ahead = pl.col("atm_iv_30d").shift(-horizon).over("underlying")
    return ordered.select(
        "underlying",
        "date",
        "ts_event",
        pl.lit("atm_iv_30d_change").alias("label"),
        pl.lit(horizon, pl.Int32).alias("horizon_periods"),
        (ahead - pl.col("atm_iv_30d")).alias("value"),
        pl.lit(0.0).alias("cost"),  # a forecast target, not a traded return
        pl.col("ts_event").shift(-horizon).over("underlying").alias("ts_end"),
    ).filter(pl.col("ts_end").is_not_null() & pl.col("value").is_not_null())


def _straddles(analytics: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """The straddle chosen at each snapshot: its call and put contract ids."""
    ok = analytics.filter(
        (pl.col("price_source") == "mid") & (pl.col("dte_days") >= 2.0 * horizon + 2)
    )
    by_expiry = ok.group_by("underlying", "ts_event", "expiry").agg(
        (pl.col("dte_days").first() - TARGET_DTE_DAYS).abs().alias("_gap")
    )
    expiry = by_expiry.sort("_gap", "expiry").group_by("underlying", "ts_event").first()
    legs = ok.join(expiry.drop("_gap"), on=["underlying", "ts_event", "expiry"])
    both = (
        legs.group_by("underlying", "ts_event", "expiry", "strike")
        .agg(
            pl.col("contract_id").filter(pl.col("right") == "C").first().alias("call_id"),
            pl.col("contract_id").filter(pl.col("right") == "P").first().alias("put_id"),
            pl.col("log_moneyness").first().abs().alias("_distance"),
        )
        .drop_nulls(["call_id", "put_id"])
    )
    return (
        both.sort("_distance", "strike")
        .group_by("underlying", "ts_event")
        .first()
        .drop("_distance")
    )


def _fixed_strike_beta(surface: pl.DataFrame) -> pl.DataFrame:
    """``underlying, _ts`` and the IV change of a fixed-strike ATM option per log return
    of spot: the ATM IV's own move (``spot_vol_beta_63``) less the smile's slope in
    log-moneyness at the money (a rise in spot moves a fixed strike down the skew).
    The slope is read from the 25-delta skew: the 25-delta strikes lie about
    ``0.674 * iv * sqrt(t)`` either side of the forward in log-moneyness."""
    width = 2 * 0.674 * pl.col("atm_iv_30d") * (TARGET_DTE_DAYS / 365.0) ** 0.5
    slope = -pl.col("skew_25d_30d") / width  # dIV / d ln(K/F), negative for a put skew
    return surface.select(
        "underlying", pl.col("ts_event").alias("_ts"), (pl.col(BETA) - slope).alias(BETA)
    )


def straddle_labels(
    analytics: pl.DataFrame, horizon: int, surface: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``straddle_dh_ret`` at every snapshot that has ``horizon`` snapshots after it;
    with ``surface`` (its ``spot_vol_beta_63``), ``straddle_mv_ret`` beside it."""
    index = snapshot_index(analytics)
    dates = analytics.select("underlying", "ts_event", "date").unique()
    # a leg without a price or a finite delta (unquoted, or the IV solver failed) is a
    # missing leg: no label, rather than a null or NaN step in the sums
    if "vega_per_vol_point" not in analytics.columns:  # no vega: no minimum-variance hedge
        analytics = analytics.with_columns(pl.lit(None, pl.Float64).alias("vega_per_vol_point"))
    usable = analytics.filter(
        pl.col("price").is_not_null()
        & pl.col("delta").is_finite()
        & pl.col("underlying_price").is_not_null()
    )
    chosen = (
        _straddles(usable, horizon)
        .join(index, on=["underlying", "ts_event"])
        .join(dates, on=["underlying", "ts_event"])
    )
    steps = pl.DataFrame({"_step": list(range(horizon + 1))}, schema={"_step": pl.Int64})
    path = (
        chosen.join(steps, how="cross")
        .with_columns((pl.col("_i") + pl.col("_step")).alias("_j"))
        .join(index.rename({"ts_event": "_ts", "_i": "_j"}), on=["underlying", "_j"])
    )
    quotes = usable.select(
        "underlying",
        pl.col("ts_event").alias("_ts"),
        "contract_id",
        "price",
        "delta",
        "spread_rel",
        "underlying_price",
        "vega_per_vol_point",
    )
    legs = (
        path.join(
            quotes.rename(
                {
                    "contract_id": "call_id",
                    "price": "c",
                    "delta": "c_delta",
                    "spread_rel": "c_spread",
                    "vega_per_vol_point": "c_vega",
                }
            ),
            on=["underlying", "_ts", "call_id"],
        )
        .join(
            quotes.rename(
                {
                    "contract_id": "put_id",
                    "price": "p",
                    "delta": "p_delta",
                    "spread_rel": "p_spread",
                    "underlying_price": "_s_put",
                    "vega_per_vol_point": "p_vega",
                }
            ),
            on=["underlying", "_ts", "put_id"],
        )
        .sort("underlying", "ts_event", "_step")
    )
    if surface is not None and BETA in surface.columns:
        legs = legs.join(_fixed_strike_beta(surface), on=["underlying", "_ts"], how="left")
    else:
        legs = legs.with_columns(pl.lit(None, pl.Float64).alias(BETA))
    value = pl.col("c") + pl.col("p")
    hedge_delta = -(pl.col("c_delta") + pl.col("p_delta"))
    spot = pl.col("underlying_price")
    # the minimum-variance delta: the BSM delta plus vega times the fixed-strike IV's
    # expected move per unit of spot (its beta per log return, over the spot; vega is
    # per vol point, so times 100)
    smile = (pl.col("c_vega") + pl.col("p_vega")) * 100.0 * pl.col(BETA) / spot
    move = (spot.shift(-1) - spot).over("underlying", "ts_event")
    per_step = legs.with_columns(
        (hedge_delta * move).alias("_hedge"),
        ((hedge_delta - smile) * move).alias("_hedge_mv"),
        (
            SPREAD_COST_SHARE
            * (pl.col("c") * pl.col("c_spread") + pl.col("p") * pl.col("p_spread"))
        ).alias("_cost"),
    )
    summary = per_step.group_by("underlying", "ts_event").agg(
        pl.len().alias("_n"),
        value.first().alias("_v0"),
        value.last().alias("_v1"),
        pl.col("_hedge").filter(pl.col("_step") < horizon).sum().alias("_hedge_pnl"),
        # null where any step lacks the beta (the regression's first snapshots)
        pl.col("_hedge_mv").filter(pl.col("_step") < horizon).sum().alias("_hedge_mv_pnl"),
        pl.col("_hedge_mv").filter(pl.col("_step") < horizon).null_count().alias("_mv_missing"),
        (pl.col("_cost").first() + pl.col("_cost").last()).alias("_costs"),
        pl.col("_ts").last().alias("ts_end"),
        pl.col("date").first(),
    )
    complete = summary.filter(pl.col("_n") == horizon + 1)

    def label(name: str, hedge: str) -> pl.DataFrame:
        return complete.select(
            "underlying",
            "date",
            "ts_event",
            pl.lit(name).alias("label"),
            pl.lit(horizon, pl.Int32).alias("horizon_periods"),
            (
                (pl.col("_v1") - pl.col("_v0") + pl.col(hedge) - pl.col("_costs")) / pl.col("_v0")
            ).alias("value"),
            (pl.col("_costs") / pl.col("_v0")).alias("cost"),
            "ts_end",
        )

    bsm = label("straddle_dh_ret", "_hedge_pnl")
    if surface is None:
        return bsm
    complete = complete.filter(pl.col("_mv_missing") == 0)
    return pl.concat([bsm, label("straddle_mv_ret", "_hedge_mv_pnl")])


def labels(
    analytics: pl.DataFrame, surface: pl.DataFrame, horizons: tuple[int, ...] = HORIZONS
) -> pl.DataFrame:
    """Every label at every horizon, ``labels`` table columns (without ts_init/source)."""
    frames = [iv_change_labels(surface, h) for h in horizons]
    frames += [straddle_labels(analytics, h, surface) for h in horizons]
    return pl.concat(frames, how="vertical_relaxed").sort("underlying", "ts_event", "label")
