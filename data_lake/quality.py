"""Write-time quality checks: conform a frame to its table, split off bad rows.

Rows that fail go to the ``quarantine`` table with every failed check named in
``reason`` (``;``-separated) and the row itself as JSON; the rest are written.
A whole frame that cannot be conformed (missing column, uncastable type) is a
:class:`DataQualityError` that names the origin and the column.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from data_lake.errors import DataQualityError
from data_lake.schemas import (
    CORPORATE_ACTIONS,
    OPTION_QUOTES,
    OPTION_VENDOR_ANALYTICS,
    PARTITION_COLUMNS,
    QUARANTINE,
    UNDERLYING_BARS,
    TableSpec,
)

EXCHANGE_TZ = "America/New_York"

# A chain that mixes price scales (a split applied to the underlying but not to the
# strikes, or a pre-split contract carried into a post-split chain) puts strikes near
# the split ratio times the spot. Listed strikes stay much closer: across the LEAN
# sample's real chains strike/spot spans 0.09..1.74. A 7:1 mix gives ~7. A genuine
# strike beyond these bounds (after a crash of more than 80%) is quarantined with
# this reason, visible in `volflow lake quality`, not lost.
MAX_STRIKE_TO_SPOT = 5.0
MAX_SPOT_TO_STRIKE = 20.0

# A stale quote: a contract's prices (bid, ask, last) unchanged for STALE_SNAPSHOTS
# consecutive snapshots while the underlying moved more than STALE_MIN_MOVE (log
# return since the prices last changed), for prices of at least STALE_MIN_PRICE (a
# far wing quoted at a tick legitimately does not move). Runs are counted within one
# write: a chunk of sessions, or one intraday file's snapshots; a run that straddles
# two writes is counted from the second (fewer flags, never a false one).
STALE_SNAPSHOTS = 3
STALE_MIN_MOVE = 0.01
STALE_MIN_PRICE = 0.10
_STALE = "_stale"

PRICE_COLUMNS: dict[str, tuple[str, ...]] = {
    OPTION_QUOTES.name: ("bid", "ask", "last", "underlying_price", "strike"),
    UNDERLYING_BARS.name: ("open", "high", "low", "close"),
    CORPORATE_ACTIONS.name: ("reference_price",),
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    OPTION_QUOTES.name: (
        "contract_id",
        "underlying",
        "date",
        "expiry",
        "strike",
        "right",
        "ts_event",
        "ts_init",
        "source",
    ),
    OPTION_VENDOR_ANALYTICS.name: (
        "underlying",
        "date",
        "contract_id",
        "ts_event",
        "ts_init",
        "source",
    ),
    CORPORATE_ACTIONS.name: (
        "underlying",
        "date",
        "ts_event",
        "price_factor",
        "split_factor",
        "ts_init",
        "source",
    ),
    UNDERLYING_BARS.name: (
        "underlying",
        "date",
        "ts_event",
        "bar_seconds",
        "open",
        "high",
        "low",
        "close",
        "ts_init",
        "source",
    ),
}


@dataclass(frozen=True)
class CheckedFrame:
    """The outcome of the checks: rows to write and rows to quarantine."""

    valid: pl.DataFrame
    quarantined: pl.DataFrame  # QUARANTINE schema

    @property
    def reason_counts(self) -> dict[str, int]:
        """How many quarantined rows failed each check (a row may fail several)."""
        if self.quarantined.is_empty():
            return {}
        exploded = self.quarantined.select(pl.col("reason").str.split(";")).explode("reason")
        counts = exploded.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def conform(frame: pl.DataFrame, spec: TableSpec, origin: str) -> pl.DataFrame:
    """Select and cast ``frame`` to ``spec``'s schema, in its column order.

    Missing optional columns are added as nulls; a missing required column or a
    value that cannot be cast raises :class:`DataQualityError` naming ``origin``.
    """
    required = REQUIRED_COLUMNS.get(spec.name, ())
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataQualityError(
            f"{origin}: missing required column(s) {', '.join(missing)} for table "
            f"{spec.name}; expected columns: {', '.join(spec.schema.names())}"
        )
    if frame.schema == spec.schema:
        return frame  # already conformed (the common case for our own sources)
    naive = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None and name in spec.schema
    ]
    if naive:
        raise DataQualityError(
            f"{origin}: column(s) {', '.join(naive)} hold naive timestamps; the lake stores "
            "UTC: attach the source's time zone and convert to UTC before writing"
        )
    exprs = [
        pl.col(name).cast(dtype, strict=True)
        if name in frame.columns
        else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in spec.schema.items()
    ]
    try:
        return frame.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        pass  # find and name the offending column below
    for name, dtype in spec.schema.items():
        if name not in frame.columns:
            continue
        try:
            frame.select(pl.col(name).cast(dtype, strict=True))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            raise DataQualityError(
                f"{origin}: column {name!r} of table {spec.name} cannot be read as "
                f"{dtype}: {str(exc).splitlines()[0]}"
            ) from exc
    raise DataQualityError(f"{origin}: cannot conform to table {spec.name}")  # pragma: no cover


def _row_checks(spec: TableSpec) -> list[tuple[str, pl.Expr]]:
    """(check name, expression true where the row fails) for one table."""
    prices = [pl.col(c) for c in PRICE_COLUMNS.get(spec.name, ())]
    checks: list[tuple[str, pl.Expr]] = [
        (
            "missing_field",
            pl.any_horizontal(
                pl.col(c).is_null()
                for c in REQUIRED_COLUMNS.get(spec.name, (*PARTITION_COLUMNS, "ts_event"))
            ),
        ),
        (
            "ts_event_outside_partition_date",
            pl.col("ts_event").dt.convert_time_zone(EXCHANGE_TZ).dt.date() != pl.col("date"),
        ),
    ]
    if prices:
        checks += [
            (
                "non_finite_price",
                pl.any_horizontal(p.is_not_null() & ~p.is_finite() for p in prices),
            ),
            ("negative_price", pl.any_horizontal(p < 0 for p in prices)),
        ]
    if spec.name == OPTION_QUOTES.name:
        checks += _market_checks()
        checks += [
            ("bid_above_ask", pl.col("bid") > pl.col("ask")),
            ("non_positive_strike", pl.col("strike") <= 0),
            ("invalid_right", ~pl.col("right").is_in(["C", "P"])),
            ("expiry_before_quote_date", pl.col("expiry") < pl.col("date")),
            # AM-settled contracts stop trading the session before their expiry date
            (
                "quote_after_last_trading_time",
                (pl.col("settlement") == "AM") & (pl.col("date") >= pl.col("expiry")),
            ),
            ("unknown_deliverable", pl.col("multiplier").is_null()),
            (
                "missing_underlying_price",
                pl.col("underlying_price").is_null() | (pl.col("underlying_price") <= 0),
            ),
            (
                "negative_size",
                pl.any_horizontal(
                    pl.col(c) < 0 for c in ("bid_size", "ask_size", "volume", "open_interest")
                ),
            ),
        ]
    elif spec.name == CORPORATE_ACTIONS.name:
        factors = (pl.col("price_factor"), pl.col("split_factor"))
        checks += [
            ("non_positive_factor", pl.any_horizontal(~(f > 0) | ~f.is_finite() for f in factors))
        ]
    elif spec.name == UNDERLYING_BARS.name:
        checks += [
            (
                "high_low_inconsistent",
                (pl.col("high") < pl.max_horizontal("open", "close", "low"))
                | (pl.col("low") > pl.min_horizontal("open", "close", "high")),
            ),
            ("non_positive_bar_seconds", pl.col("bar_seconds") <= 0),
            ("negative_size", pl.col("volume") < 0),
        ]
    return checks


def _market_checks() -> list[tuple[str, pl.Expr]]:
    """Real-world dirt in option quotes: locked markets, no bid, and quotes outside the
    no-arbitrage bounds given the snapshot's underlying price.

    Bounds that hold whatever the rate and dividend: an American option is worth at
    least its intrinsic value; a call at most the underlying, a put at most the
    strike. Tolerance: one cent plus 0.2% of the underlying, for the small timing
    gap between an option quote and its underlying price.
    """
    spot, strike, bid, ask, last = (
        pl.col(c) for c in ("underlying_price", "strike", "bid", "ask", "last")
    )
    is_call = pl.col("right") == "C"
    intrinsic = pl.when(is_call).then(spot - strike).otherwise(strike - spot).clip(lower_bound=0)
    tolerance = 0.01 + 0.002 * spot
    upper = pl.when(is_call).then(spot).otherwise(strike)
    american = pl.col("exercise_style") == "american"
    # the highest price anyone would sell at, and the lowest anyone paid or bid: the
    # ask, or the last trade where a source has no quote (end-of-day trade chains)
    offered = pl.coalesce(ask, last)
    paid = pl.coalesce(bid, last)
    moneyness = strike / spot
    return [
        ("no_price", bid.is_null() & ask.is_null() & last.is_null()),
        ("locked_quote", (bid == ask) & (bid > 0)),
        ("zero_bid", bid == 0),
        ("below_intrinsic", american & (offered < intrinsic - tolerance)),
        ("above_upper_bound", paid > upper + tolerance),
        (
            "strike_scale_mismatch",
            (moneyness > MAX_STRIKE_TO_SPOT) | (moneyness < 1 / MAX_SPOT_TO_STRIKE),
        ),
    ]


def stale_quote_flags(frame: pl.DataFrame) -> pl.Series | None:
    """True where an option row is a stale quote (see ``STALE_SNAPSHOTS``), in the
    frame's row order; None when the frame has too few snapshots to hold a run."""
    if frame.get_column("ts_event").n_unique() < STALE_SNAPSHOTS:
        return None
    key = ["underlying", "contract_id"]
    prices = ("bid", "ask", "last")
    previous_ts = pl.col("ts_event").shift(1).over(key)
    unchanged = (
        previous_ts.is_not_null()
        & (pl.col("ts_event") != previous_ts)
        & pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift(1).over(key)) for c in prices)
    )
    run = [*key, "_run"]
    mid = (pl.col("bid") + pl.col("ask")) / 2
    flags = (
        frame.select(*key, "ts_event", *prices, "underlying_price")
        .with_row_index("_row")
        .sort([*key, "ts_event"])
        .with_columns(_run=(~unchanged.fill_null(False)).cum_sum().over(key))
        .with_columns(
            _pos=pl.int_range(pl.len()).over(run),
            _move=(pl.col("underlying_price") / pl.col("underlying_price").first().over(run))
            .log()
            .abs(),
        )
        .select(
            "_row",
            (
                (pl.col("_pos") >= STALE_SNAPSHOTS - 1)
                & (pl.col("_move") > STALE_MIN_MOVE)
                & (pl.coalesce(mid, pl.col("last")) >= STALE_MIN_PRICE)
            )
            .fill_null(False)
            .alias(_STALE),
        )
        .sort("_row")
    )
    return flags.get_column(_STALE)


def _duplicate_checks(spec: TableSpec) -> list[tuple[str, pl.Expr]]:
    """Rows sharing the unique key: identical copies beyond the first, or conflicting rows."""
    if not spec.unique_key:
        return []
    key = [*PARTITION_COLUMNS, *spec.unique_key]
    in_dup_group = pl.len().over(key) > 1
    row = pl.struct(pl.all().exclude(_STALE))
    conflicting = row.n_unique().over(key) > 1
    extra_copy = ~row.is_first_distinct()
    return [
        ("conflicting_duplicate", in_dup_group & conflicting),
        ("duplicate_row", in_dup_group & ~conflicting & extra_copy),
    ]


def check(frame: pl.DataFrame, spec: TableSpec) -> CheckedFrame:
    """Split a conformed frame into valid rows and quarantined rows with reasons.

    One vectorized pass flags every row that fails a check or shares its key with
    another row; the costlier reason strings and the duplicate analysis then run on
    the flagged rows only (every member of a duplicate group is flagged, so the
    analysis sees whole groups). Valid rows keep their input order.
    """
    empty = pl.DataFrame(schema=QUARANTINE.schema)
    if frame.is_empty():
        return CheckedFrame(frame, empty)
    row_checks = _row_checks(spec)
    stale = stale_quote_flags(frame) if spec.name == OPTION_QUOTES.name else None
    if stale is not None and stale.any():
        frame = frame.with_columns(stale)
        row_checks.append(("stale_quote", pl.col(_STALE)))
    failed_any = pl.any_horizontal(failed.fill_null(False) for _, failed in row_checks)
    if spec.unique_key:
        failed_any = failed_any | pl.struct([*PARTITION_COLUMNS, *spec.unique_key]).is_duplicated()
    flags = frame.select(failed_any.alias("_failed")).to_series()
    if not flags.any():
        return CheckedFrame(frame, empty)
    indexed = frame.with_row_index("_row")
    flagged = indexed.filter(flags).drop("_row")
    checks = row_checks + _duplicate_checks(spec)
    reason = pl.concat_str(
        [pl.when(failed.fill_null(False)).then(pl.lit(name)) for name, failed in checks],
        separator=";",
        ignore_nulls=True,
    )
    tagged = flagged.with_columns(_reason=reason).with_columns(
        indexed.filter(flags).get_column("_row")
    )
    bad = tagged.filter(pl.col("_reason") != "").drop("_row")
    readmitted = tagged.filter(pl.col("_reason") == "").drop("_reason")  # first copies
    valid = indexed.filter(~flags)
    if not readmitted.is_empty():
        valid = pl.concat([valid, readmitted.select(valid.columns)]).sort("_row")
    valid = valid.drop(_STALE, strict=False)
    quarantined = bad.select(
        pl.col("underlying"),
        pl.col("date"),
        pl.lit(spec.name).alias("source_table"),
        pl.col("ts_event"),
        pl.col("bar_seconds")
        if "bar_seconds" in bad.columns
        else pl.lit(None, pl.Int32).alias("bar_seconds"),
        pl.col("source"),
        pl.col("batch_id")
        if "batch_id" in bad.columns
        else pl.lit(None, pl.String).alias("batch_id"),
        pl.col("_reason").alias("reason"),
        pl.struct(pl.all().exclude("_reason", _STALE)).struct.json_encode().alias("record"),
    ).cast(dict(QUARANTINE.schema))  # type: ignore[arg-type]
    return CheckedFrame(valid.drop("_row"), quarantined)
