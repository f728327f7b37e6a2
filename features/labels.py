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
"""

from __future__ import annotations

import polars as pl

HORIZONS = (1, 5)  # snapshots ahead
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


def straddle_labels(analytics: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """``straddle_dh_ret`` at every snapshot that has ``horizon`` snapshots after it."""
    index = snapshot_index(analytics)
    dates = analytics.select("underlying", "ts_event", "date").unique()
    # a leg without a price or a finite delta (unquoted, or the IV solver failed) is a
    # missing leg: no label, rather than a null or NaN step in the sums
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
    )
    legs = (
        path.join(
            quotes.rename(
                {
                    "contract_id": "call_id",
                    "price": "c",
                    "delta": "c_delta",
                    "spread_rel": "c_spread",
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
                }
            ),
            on=["underlying", "_ts", "put_id"],
        )
        .sort("underlying", "ts_event", "_step")
    )
    value = pl.col("c") + pl.col("p")
    hedge_delta = -(pl.col("c_delta") + pl.col("p_delta"))
    spot = pl.col("underlying_price")
    per_step = legs.with_columns(
        (hedge_delta * (spot.shift(-1) - spot)).over("underlying", "ts_event").alias("_hedge"),
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
        (pl.col("_cost").first() + pl.col("_cost").last()).alias("_costs"),
        pl.col("_ts").last().alias("ts_end"),
        pl.col("date").first(),
    )
    complete = summary.filter(pl.col("_n") == horizon + 1)
    return complete.select(
        "underlying",
        "date",
        "ts_event",
        pl.lit("straddle_dh_ret").alias("label"),
        pl.lit(horizon, pl.Int32).alias("horizon_periods"),
        (
            (pl.col("_v1") - pl.col("_v0") + pl.col("_hedge_pnl") - pl.col("_costs"))
            / pl.col("_v0")
        ).alias("value"),
        (pl.col("_costs") / pl.col("_v0")).alias("cost"),
        "ts_end",
    )


def labels(
    analytics: pl.DataFrame, surface: pl.DataFrame, horizons: tuple[int, ...] = HORIZONS
) -> pl.DataFrame:
    """Every label at every horizon, ``labels`` table columns (without ts_init/source)."""
    frames = [iv_change_labels(surface, h) for h in horizons]
    frames += [straddle_labels(analytics, h) for h in horizons]
    return pl.concat(frames, how="vertical_relaxed").sort("underlying", "ts_event", "label")
