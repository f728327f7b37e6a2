"""Black-Scholes-Merton implied volatility and Greeks: exact, vectorized, on all cores.

``implied_vol_and_greeks(frame)`` takes a Polars frame with ``price, spot, strike,
t_years, rate, div_yield, right`` (``right`` "C" or "P"; rates and yields continuous,
as decimals) and returns it with ``iv, delta, gamma, vega, theta, rho, solver_status``
added, rows in the same order. One compiled pass per row, in parallel over the rows
(numba ``prange``): the price becomes an undiscounted Black price on the forward
``F = S exp((r - q) T)``, Jäckel's Let's Be Rational gives the volatility to machine
precision (``features.kernels``), and the analytic Greeks are computed in the same pass.

Units (the textbook ones, Hull): ``delta`` per 1 of underlying, ``gamma`` per 1 of
underlying per 1 of underlying, ``vega`` per volatility point (a 0.01 change in
sigma), ``theta`` per calendar day (annual theta / 365), ``rho`` per 1% of rate.

A row the model cannot price gets NaN in every output and a ``solver_status`` saying
why (``SOLVER_STATUSES``), never a number that looks like an answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from features.kernels import price_all

INPUT_COLUMNS = ("price", "spot", "strike", "t_years", "rate", "div_yield", "right")
OUTPUT_COLUMNS = ("iv", "delta", "gamma", "vega", "theta", "rho")
# code -> name; order matters (codes are stored in the kernel's output)
SOLVER_STATUSES: tuple[str, ...] = (
    "ok",
    "below_intrinsic",  # price below the no-arbitrage lower bound (discounted intrinsic)
    "above_max_price",  # price at or above the upper bound (the forward or the strike)
    "no_time_value",  # price equals the lower bound: every small volatility fits
    "expired",  # t_years <= 0: at or past expiry, no volatility to imply
    "invalid_input",  # a null, non-finite or non-positive input, or right not C/P
    # set before solving by the chain builder (features.chain), never by the kernel:
    "no_price",  # no two-sided quote and no last trade
    "crossed_quote",  # bid above ask
)
SOLVER_STATUS = pl.Enum(list(SOLVER_STATUSES))  # codes: features.kernels
_STATUS_NAMES = pl.Series("solver_status", SOLVER_STATUSES, dtype=SOLVER_STATUS)


def _floats(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A column as contiguous float64 (zero-copy when it already is); nulls -> NaN."""
    column = frame.get_column(name)
    if column.dtype != pl.Float64 or column.null_count():
        column = column.cast(pl.Float64).fill_null(float("nan"))
    return np.ascontiguousarray(column.to_numpy())


def _rights(frame: pl.DataFrame) -> np.ndarray:
    """1 for calls, 0 for puts, 2 for anything else (invalid)."""
    right = frame.get_column("right")
    codes = (
        pl.select(
            pl.when(right == "C").then(1).when(right == "P").then(0).otherwise(2).cast(pl.UInt8)
        )
        .to_series()
        .to_numpy()
    )
    return np.ascontiguousarray(codes)


def implied_vol_and_greeks(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``iv, delta, gamma, vega, theta, rho, solver_status`` added."""
    return solve_frame(frame, price_all, "implied_vol_and_greeks")


def solve_frame(frame: pl.DataFrame, kernel: Any, caller: str) -> pl.DataFrame:
    """Run a row kernel (``price_all`` or its American twin) over ``frame``'s input
    columns and add the seven output columns, rows in order."""
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{caller} needs columns {', '.join(INPUT_COLUMNS)}; missing {', '.join(missing)}"
        )
    n = frame.height
    out = np.empty((len(OUTPUT_COLUMNS), n), dtype=np.float64)
    status = np.empty(n, dtype=np.uint8)
    if n:
        arrays = [_floats(frame, c) for c in INPUT_COLUMNS[:-1]]
        kernel(*arrays, _rights(frame), out, status)
    names = _STATUS_NAMES.gather(pl.Series(status)).alias("solver_status")
    return frame.with_columns(
        *(pl.Series(name, out[i]) for i, name in enumerate(OUTPUT_COLUMNS)), names
    )
