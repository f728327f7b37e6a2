"""Every lake table's schema, declared in one place.

Each table is Hive-partitioned by ``underlying`` and ``date`` (the exchange-local
trading date, America/New_York). Partition columns are part of the logical schema
but are not stored inside the Parquet files: readers (DuckDB views, Polars scans)
take them from the path, as Hive/Spark do.

Times are UTC. Every record carries ``ts_event`` (when it happened: the quote
time, or a bar's end) and ``ts_init`` (when volflow could first know it). For
live sources ``ts_init`` is the clock at receipt; for historical and synthetic
sources it is the moment the record became available (the snapshot time for a
quote, the bar's end for a bar), so replayed history stays point-in-time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from data_lake.errors import ConfigError

UTC_TIME = pl.Datetime("us", "UTC")
Columns = dict[str, Any]  # polars accepts data type classes and instances
PARTITION_COLUMNS: tuple[str, str] = ("underlying", "date")
# Version 1: files named ``part-*.parquet``, before versions were recorded (some lack
# columns added since: ``labels.cost``, ``batch_id``, ``quarantine.bar_seconds``).
# Version 2: ``batch_id`` on raw rows and rejects, ``bar_seconds`` on rejects.
SCHEMA_VERSION = 2
LEGACY_FILES = "part-*.parquet"  # version 1 names


@dataclass(frozen=True)
class TableSpec:
    """A lake table: its columns (partition columns included) and its keys."""

    name: str
    schema: pl.Schema
    # rows sharing these values form one snapshot: the unit a merge write replaces. Raw
    # tables key by ``source`` too: one source's snapshot never replaces another's (a
    # CBOE and a yfinance close share ``ts_event``); the feature build picks one source
    # per snapshot (``data_lake.source_preference``)
    snapshot_key: tuple[str, ...]
    unique_key: tuple[str, ...]  # at most one row per key within a partition
    description: str
    # the version of the file layout, in every file's name (``data-v2.parquet``): readers
    # know a file's columns without opening it (see ``data_lake.catalog``). Bump it when
    # columns are added; files of older versions stay readable (nulls for new columns)
    version: int = SCHEMA_VERSION

    @property
    def file_name(self) -> str:
        """The name of a partition's data file written now."""
        return f"data-v{self.version}.parquet"

    @property
    def file_schema(self) -> pl.Schema:
        """Columns stored in each Parquet file (partition columns removed)."""
        return pl.Schema({k: v for k, v in self.schema.items() if k not in PARTITION_COLUMNS})


UNDERLYING_BARS = TableSpec(
    name="underlying_bars",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # bar end
                "bar_seconds": pl.Int32,  # 86400 daily, 3600 hourly, 60 minute
                "open": pl.Float64,
                "high": pl.Float64,
                "low": pl.Float64,
                "close": pl.Float64,
                "volume": pl.Int64,
                "ts_init": UTC_TIME,
                "source": pl.String,
                "batch_id": pl.String,  # the file or batch the row came from
            }
        )
    ),
    snapshot_key=("ts_event", "bar_seconds", "source"),
    unique_key=("ts_event", "bar_seconds", "source"),
    description="Underlying OHLCV bars, raw (unadjusted) prices; ts_event is the bar's end.",
)

OPTION_QUOTES = TableSpec(
    name="option_quotes",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                # OCC/OSI symbol without root padding, e.g. SPY240119C00450000
                "contract_id": pl.String,
                "expiry": pl.Date,
                "strike": pl.Float64,
                "right": pl.String,  # "C" or "P"
                "exercise_style": pl.String,  # "american" or "european"
                "settlement": pl.String,  # "PM" or "AM"
                "multiplier": pl.Float64,
                "bid": pl.Float64,
                "ask": pl.Float64,
                "bid_size": pl.Int64,
                "ask_size": pl.Int64,
                "last": pl.Float64,
                "volume": pl.Int64,
                "open_interest": pl.Int64,
                "underlying_price": pl.Float64,
                "ts_event": UTC_TIME,  # quote (snapshot) time
                "ts_init": UTC_TIME,  # ingest time (see module docstring)
                "source": pl.String,
                "batch_id": pl.String,  # the file or batch the row came from
            }
        )
    ),
    snapshot_key=("ts_event", "source"),
    unique_key=("contract_id", "ts_event", "source"),
    description="Raw option chain snapshots, one row per contract per snapshot.",
)

QUARANTINE = TableSpec(
    name="quarantine",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "source_table": pl.String,
                "ts_event": UTC_TIME,
                "bar_seconds": pl.Int32,  # bars: part of their key (null for other tables)
                "source": pl.String,
                "batch_id": pl.String,
                # ';'-separated check names, e.g. "bid_above_ask;negative_price"
                "reason": pl.String,
                "record": pl.String,  # the rejected row as JSON
            }
        )
    ),
    snapshot_key=("ts_event", "bar_seconds", "source"),
    unique_key=(),
    description="Rows rejected by the write-time quality checks, with the reason and source.",
)

CORPORATE_ACTIONS = TableSpec(
    name="corporate_actions",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,  # the factor row's date
                "ts_event": UTC_TIME,  # 16:00 New York on ``date``
                "price_factor": pl.Float64,  # dividends
                "split_factor": pl.Float64,
                "reference_price": pl.Float64,
                "ts_init": UTC_TIME,
                "source": pl.String,
                "batch_id": pl.String,  # the file or batch the row came from
            }
        )
    ),
    snapshot_key=("ts_event", "source"),
    unique_key=("ts_event", "source"),
    description=(
        "Split and dividend adjustment factors, LEAN factor-file semantics: a bar dated d "
        "is adjusted by price_factor * split_factor of the first row dated on or after d."
    ),
)

OPTION_VENDOR_ANALYTICS = TableSpec(
    name="option_vendor_analytics",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "contract_id": pl.String,
                "ts_event": UTC_TIME,  # the option_quotes snapshot these belong to
                # as the vendor publishes them, in the vendor's units (LEAN: vega per
                # vol point, theta per calendar day); not volflow's own analytics
                "vendor_iv": pl.Float64,
                "vendor_delta": pl.Float64,
                "vendor_gamma": pl.Float64,
                "vendor_vega": pl.Float64,
                "vendor_theta": pl.Float64,
                "vendor_rho": pl.Float64,
                "ts_init": UTC_TIME,
                "source": pl.String,
                "batch_id": pl.String,  # the file or batch the row came from
            }
        )
    ),
    snapshot_key=("ts_event", "source"),
    unique_key=("contract_id", "ts_event", "source"),
    description=(
        "A data vendor's own implied volatility and Greeks per contract and snapshot, kept "
        "apart from volflow's analytics so the two can be compared."
    ),
)

OPTION_ANALYTICS = TableSpec(
    name="option_analytics",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "contract_id": pl.String,
                "ts_event": UTC_TIME,  # the option_quotes snapshot
                "expiry": pl.Date,
                "strike": pl.Float64,
                "right": pl.String,
                "exercise_style": pl.String,
                "underlying_price": pl.Float64,
                "price": pl.Float64,  # what the IV was solved from (see price_source)
                "price_source": pl.String,  # "mid", or "last" for trade-only rows
                "spread_rel": pl.Float64,  # (ask - bid) / mid
                "log_moneyness": pl.Float64,  # ln(strike / forward)
                "dte_days": pl.Float64,  # calendar days to the last trading time
                "t_years": pl.Float64,  # dte_days / 365
                "rate": pl.Float64,  # continuous, as of the snapshot
                "div_yield": pl.Float64,  # continuous, as of the snapshot
                "iv": pl.Float64,
                # the IVs of the bid and of the ask of a two-sided quote (same model);
                # null where that side has no IV (e.g. a bid below intrinsic value)
                "iv_bid": pl.Float64,
                "iv_ask": pl.Float64,
                "delta": pl.Float64,
                "gamma": pl.Float64,
                "vega_per_vol_point": pl.Float64,
                "theta_per_day": pl.Float64,
                "rho_per_pct_rate": pl.Float64,
                "solver_status": pl.String,
                "model": pl.String,  # "bsm_european"
                "volume": pl.Int64,
                "open_interest": pl.Int64,
                "ts_init": UTC_TIME,
                "source": pl.String,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=("contract_id", "ts_event"),
    description="Per contract and snapshot: price used, moneyness, time, IV and Greeks.",
)

SURFACE_FEATURES = TableSpec(
    name="surface_features",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # the snapshot the features are as of
                "underlying_price": pl.Float64,
                **{f"atm_iv_{d}d": pl.Float64 for d in (7, 30, 60, 90)},
                "skew_25d_30d": pl.Float64,  # 25-delta put IV minus 25-delta call IV
                "curvature_25d_30d": pl.Float64,  # (put25 + call25) / 2 - ATM
                "term_slope_30_90": pl.Float64,  # atm_iv_90d - atm_iv_30d
                "term_spread_7_30": pl.Float64,  # atm_iv_7d - atm_iv_30d
                "term_spread_30_60": pl.Float64,  # atm_iv_60d - atm_iv_30d
                "term_log_7_30": pl.Float64,  # ln(atm_iv_7d / atm_iv_30d)
                "term_log_30_60": pl.Float64,  # ln(atm_iv_60d / atm_iv_30d)
                "term_log_30_90": pl.Float64,  # ln(atm_iv_90d / atm_iv_30d)
                "front_vs_curve_7d": pl.Float64,  # ln(iv_7d) less the curve's fair value
                "day_of_week": pl.Float64,  # 0 Monday .. 4 Friday (New York)
                "put_call_volume_ratio": pl.Float64,
                "put_call_oi_ratio": pl.Float64,
                "rv_cc_10d": pl.Float64,  # close-to-close realized vol, annualized
                "rv_cc_21d": pl.Float64,
                "rv_cc_63d": pl.Float64,
                "rv_parkinson_21d": pl.Float64,
                "rv_garman_klass_21d": pl.Float64,
                "rv_yang_zhang_21d": pl.Float64,
                "vrp_30d": pl.Float64,  # atm_iv_30d - rv_cc_21d
                # ln(atm_iv_30d / the HAR-RV volatility forecast)
                "iv_vs_har_30d": pl.Float64,
                # the trailing regression slope of the ATM IV change on the log return
                "spot_vol_beta_63": pl.Float64,
                # per-underlying z-scores over the trailing 63 snapshots
                **{
                    f"z63_{name}": pl.Float64
                    for name in (
                        "log_atm_iv_30d",
                        "term_log_7_30",
                        "term_log_30_90",
                        "front_vs_curve_7d",
                        "iv_vs_har_30d",
                    )
                },
                "iv_rank_252": pl.Float64,
                "iv_percentile_252": pl.Float64,
                **{
                    f"{name}_chg_{n}": pl.Float64
                    for name in ("atm_iv_30d", "skew_25d_30d", "term_slope_30_90")
                    for n in (1, 5, 20)
                },
                "ts_init": UTC_TIME,
                "source": pl.String,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=("ts_event",),
    description=(
        "One row per underlying and snapshot: ATM IV by tenor, skew, curvature, term "
        "structure spreads and log ratios, the front against the curve, realized "
        "volatility, IV against a HAR-RV forecast, z-scores, IV rank, flows; point-in-time."
    ),
    version=3,  # 3: the term-structure, HAR, spot-vol beta, z-score and weekday columns
)

LABELS = TableSpec(
    name="labels",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # the snapshot the label starts at
                "label": pl.String,  # e.g. "straddle_dh_ret"
                "horizon_periods": pl.Int32,  # snapshots of this underlying ahead
                "value": pl.Float64,
                # round-trip trading cost in the value's units (a traded label's value is
                # net of it on the long side; 0 for labels that are not traded returns)
                "cost": pl.Float64,
                "ts_end": UTC_TIME,  # the snapshot the label ends at (known from then)
                "ts_init": UTC_TIME,
                "source": pl.String,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=("ts_event", "label", "horizon_periods"),
    description="Forward-looking targets, the only forward-looking data: kept apart.",
)

SIGNALS = TableSpec(
    name="signals",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # when the decision was made
                "deployment": pl.String,
                "slot": UTC_TIME,
                "strategy": pl.String,
                "model_name": pl.String,
                "model_version": pl.String,
                "ts_features": UTC_TIME,
                "prediction": pl.Float64,
                "decision": pl.String,  # order | close | hold | rejected | no_trade
                "reason": pl.String,
                "client_order_id": pl.String,
                "ts_init": UTC_TIME,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=(),
    description="Analysis copy of the order store's signals: every decision of every "
    "signal run, with the model version, the prediction and the reason.",
)

ORDERS = TableSpec(
    name="orders",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # when the order was created (its intent)
                "client_order_id": pl.String,
                "deployment": pl.String,
                "slot": UTC_TIME,
                "structure": pl.String,
                "legs": pl.String,  # "BUY 1 SPY240419C00510000, ..."
                "quantity": pl.Int64,
                "order_type": pl.String,
                "limit_price": pl.Float64,
                "time_in_force": pl.String,
                "status": pl.String,
                "broker_order_id": pl.String,
                "filled_quantity": pl.Int64,
                "avg_fill_price": pl.Float64,
                "reason": pl.String,
                "ts_last": UTC_TIME,
                "ts_init": UTC_TIME,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=("client_order_id",),
    description="Analysis copy of the order store's orders with their latest state.",
)

FILLS = TableSpec(
    name="fills",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,
                "fill_id": pl.String,
                "client_order_id": pl.String,
                "contract_id": pl.String,
                "side": pl.String,
                "quantity": pl.Int64,
                "price": pl.Float64,
                "commission": pl.Float64,
                "ts_init": UTC_TIME,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=("fill_id",),
    description="Analysis copy of the order store's fills (one row per execution).",
)

POSITIONS = TableSpec(
    name="positions",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # as of
                "contract_id": pl.String,
                "expiry": pl.Date,
                "strike": pl.Float64,
                "right": pl.String,
                "quantity": pl.Int64,
                "avg_price": pl.Float64,
                "structure": pl.String,
                "ts_init": UTC_TIME,
            }
        )
    ),
    snapshot_key=("ts_event",),
    unique_key=("contract_id", "ts_event"),
    description="Positions by the order store as of each signal or reconcile run.",
)

SYNTHETIC_TRUTH = TableSpec(
    name="synthetic_truth",
    schema=pl.Schema(
        Columns(
            {
                "underlying": pl.String,
                "date": pl.Date,
                "ts_event": UTC_TIME,  # the session's close
                # the planted front-tenor mispricing m_t of the day (its IVs carry
                # exp(m_t * exp(-tau / 45 days))), and the AR(1) that drew it
                "mispricing": pl.Float64,
                "planted_sd": pl.Float64,
                "planted_phi": pl.Float64,
                "seed": pl.Int64,
                "ts_init": UTC_TIME,
                "source": pl.String,
                "batch_id": pl.String,
            }
        )
    ),
    snapshot_key=("ts_event", "source"),
    unique_key=("ts_event", "source"),
    description=(
        "What the synthetic generator planted (planted-signal markets only): the day's "
        "mispricing m_t, the ground truth for the oracle IC; never a feature."
    ),
)

EXECUTION_TABLES: tuple[str, ...] = ("signals", "orders", "fills", "positions")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        UNDERLYING_BARS,
        OPTION_QUOTES,
        CORPORATE_ACTIONS,
        OPTION_VENDOR_ANALYTICS,
        OPTION_ANALYTICS,
        SURFACE_FEATURES,
        LABELS,
        QUARANTINE,
        SIGNALS,
        ORDERS,
        FILLS,
        POSITIONS,
        SYNTHETIC_TRUTH,
    )
}
DATA_TABLES: tuple[str, ...] = (
    UNDERLYING_BARS.name,
    OPTION_QUOTES.name,
    CORPORATE_ACTIONS.name,
    OPTION_VENDOR_ANALYTICS.name,
)
FEATURE_TABLES: tuple[str, ...] = (OPTION_ANALYTICS.name, SURFACE_FEATURES.name, LABELS.name)


def table_spec(name: str) -> TableSpec:
    """The spec of a table by name, or a clear error listing the known tables."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise ConfigError(f"unknown lake table {name!r}; known tables: {known}") from None


def empty_frame(spec: TableSpec) -> pl.DataFrame:
    """A zero-row frame with the table's full schema."""
    return pl.DataFrame(schema=spec.schema)
