"""Compiled pricing kernels: Let's Be Rational implied volatility, BSM Greeks, parallel loops.

All of volflow's numba code lives in this one module on purpose: numba's on-disk cache
(``cache=True``) is invalidated only when the file of the cached function changes, so a
kernel calling a function from another of our modules would keep a stale compiled copy
of it after an edit. (py_lets_be_rational, whose jitted blocks are called here, is
pinned.) The Polars-facing APIs are ``features.greeks`` and ``features.american``.

Implied volatility by Jäckel's "Let's Be Rational" (2015), compiled for parallel loops.

py_vollib's ``py_lets_be_rational`` (MIT) jit-compiles the building blocks of the
algorithm (normalised Black prices and vegas, the rational cubic interpolations, the
lower and upper maps) but runs the top-level solver as plain Python, which raises
exceptions for prices outside the arbitrage bounds and so cannot be called from a
numba loop. This module is that top-level routine as a ``nopython`` function that
returns a status code instead of raising, calling the library's own jitted blocks:
same initial guess (four branches, transformed rational guess), same Householder(3)
iterations (two suffice for full double precision, per the paper), same answer.

Reference: P. Jäckel, "Let's Be Rational", Wilmott (2015) 40-53.
"""

from __future__ import annotations

import sys
from math import erfc, exp, fabs, isfinite, log, pi, sqrt

import numpy as np
from numba import njit, prange
from py_lets_be_rational.lets_be_rational import (
    _compute_f_lower_map_and_first_two_derivatives,
    _compute_f_upper_map_and_first_two_derivatives,
    _householder_factor,
    _inverse_f_lower_map,
    _inverse_f_upper_map,
    normalised_black_call,
    normalised_vega,
)
from py_lets_be_rational.rationalcubic import (
    convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side,
    convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side,
    rational_cubic_interpolation,
)

DBL_EPSILON = sys.float_info.epsilon
DBL_MIN = sys.float_info.min
DBL_MAX = sys.float_info.max
SQRT_DBL_MAX = sqrt(DBL_MAX)
ITM_TIME_VALUE_FLOOR = 1e-11  # an in-the-money time value below this share of the price
ITERATIONS = 2  # Householder(3) steps after the rational guess (the paper's choice)

# statuses of the normalised solver
SOLVED = 0
BELOW_INTRINSIC = 1
ABOVE_MAXIMUM = 2
NO_TIME_VALUE = 3  # price equals intrinsic: any volatility near 0 fits


@njit(cache=True, nogil=True, error_model="numpy")
def _iterate_lower(beta: float, x: float, s: float, s_left: float, s_right: float) -> float:
    """Householder(3) on g(s) = 1/ln(b(s)) - 1/ln(beta): the lowest price segment."""
    ds = -DBL_MAX
    ds_previous = 0.0
    reversals = 0
    ln_beta = log(beta)
    for iteration in range(ITERATIONS):
        if fabs(ds) <= DBL_EPSILON * s:
            break
        if ds * ds_previous < 0:
            reversals += 1
        if iteration > 0 and (reversals == 3 or not (s_left < s < s_right)):
            s = 0.5 * (s_left + s_right)  # bisect: the step left the bracket
            if s_right - s_left <= DBL_EPSILON * s:
                break
            reversals = 0
            ds = 0.0
        ds_previous = ds
        b = normalised_black_call(x, s)
        bp = normalised_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        if b <= 0 or bp <= 0:
            ds = 0.5 * (s_left + s_right) - s
        else:
            ln_b = log(b)
            bpob = bp / b
            h = x / s
            b_halley = h * h / s - s / 4
            newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
            halley = b_halley - bpob * (1 + 2 / ln_b)
            b_hh3 = b_halley * b_halley - 3 * (h / s) * (h / s) - 0.25
            hh3 = (
                b_hh3
                + 2 * bpob * bpob * (1 + 3 / ln_b * (1 + 1 / ln_b))
                - 3 * b_halley * bpob * (1 + 2 / ln_b)
            )
            ds = newton * _householder_factor(newton, halley, hh3)
        ds = max(-0.5 * s, ds)
        s += ds
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def _iterate_upper(
    beta: float, x: float, s: float, s_left: float, s_right: float, b_max: float
) -> float:
    """Householder(3) on g(s) = ln((b_max - beta) / (b_max - b(s))): the top segment."""
    ds = -DBL_MAX
    ds_previous = 0.0
    reversals = 0
    for iteration in range(ITERATIONS):
        if fabs(ds) <= DBL_EPSILON * s:
            break
        if ds * ds_previous < 0:
            reversals += 1
        if iteration > 0 and (reversals == 3 or not (s_left < s < s_right)):
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            reversals = 0
            ds = 0.0
        ds_previous = ds
        b = normalised_black_call(x, s)
        bp = normalised_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        if b >= b_max or bp <= DBL_MIN:
            ds = 0.5 * (s_left + s_right) - s
        else:
            b_max_minus_b = b_max - b
            g = log((b_max - beta) / b_max_minus_b)
            gp = bp / b_max_minus_b
            b_halley = (x / s) * (x / s) / s - s / 4
            b_hh3 = b_halley * b_halley - 3 * (x / (s * s)) * (x / (s * s)) - 0.25
            newton = -g / gp
            halley = b_halley + gp
            hh3 = b_hh3 + gp * (2 * gp + 3 * b_halley)
            ds = newton * _householder_factor(newton, halley, hh3)
        ds = max(-0.5 * s, ds)
        s += ds
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def _iterate_middle(beta: float, x: float, s: float, s_left: float, s_right: float) -> float:
    """Householder(3) on g(s) = b(s) - beta: the two middle segments."""
    ds = -DBL_MAX
    ds_previous = 0.0
    reversals = 0
    for iteration in range(ITERATIONS):
        if fabs(ds) <= DBL_EPSILON * s:
            break
        if ds * ds_previous < 0:
            reversals += 1
        if iteration > 0 and (reversals == 3 or not (s_left < s < s_right)):
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            reversals = 0
            ds = 0.0
        ds_previous = ds
        b = normalised_black_call(x, s)
        bp = normalised_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        newton = (beta - b) / bp
        halley = (x / s) * (x / s) / s - s / 4
        hh3 = halley * halley - 3 * (x / (s * s)) * (x / (s * s)) - 0.25
        ds = max(-0.5 * s, newton * _householder_factor(newton, halley, hh3))
        s += ds
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def normalised_call_volatility(beta: float, x: float) -> float:
    """Total volatility s = sigma * sqrt(T) of an out-of-the-money normalised call
    (x = ln(F/K) <= 0) priced beta = price / sqrt(F K), 0 < beta < exp(x / 2)."""
    b_max = exp(0.5 * x)
    s_c = sqrt(fabs(2 * x))
    b_c = normalised_black_call(x, s_c)
    v_c = normalised_vega(x, s_c)
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l = normalised_black_call(x, s_l)
        if beta < b_l:
            f_l, d_f_l, d2_f_l = _compute_f_lower_map_and_first_two_derivatives(x, s_l)
            r_ll = convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
                0.0, b_l, 0.0, f_l, 1.0, d_f_l, d2_f_l, True
            )
            f = rational_cubic_interpolation(beta, 0.0, b_l, 0.0, f_l, 1.0, d_f_l, r_ll)
            if not f > 0:  # round-off for extreme |x|: quadratic through f(0)=0, f'(0)=1
                t = beta / b_l
                f = (f_l * t + b_l * (1 - t)) * t
            s = _inverse_f_lower_map(x, f)
            return _iterate_lower(beta, x, s, DBL_MIN, s_l)
        v_l = normalised_vega(x, s_l)
        r_lm = convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
            b_l, b_c, s_l, s_c, 1 / v_l, 1 / v_c, 0.0, False
        )
        s = rational_cubic_interpolation(beta, b_l, b_c, s_l, s_c, 1 / v_l, 1 / v_c, r_lm)
        return _iterate_middle(beta, x, s, s_l, s_c)
    s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
    b_h = normalised_black_call(x, s_h)
    if beta <= b_h:
        v_h = normalised_vega(x, s_h)
        r_hm = convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
            b_c, b_h, s_c, s_h, 1 / v_c, 1 / v_h, 0.0, False
        )
        s = rational_cubic_interpolation(beta, b_c, b_h, s_c, s_h, 1 / v_c, 1 / v_h, r_hm)
        return _iterate_middle(beta, x, s, s_c, s_h)
    f_u, d_f_u, d2_f_u = _compute_f_upper_map_and_first_two_derivatives(x, s_h)
    f = -DBL_MAX
    if -SQRT_DBL_MAX < d2_f_u < SQRT_DBL_MAX:
        r_hh = convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
            b_h, b_max, f_u, 0.0, d_f_u, -0.5, d2_f_u, True
        )
        f = rational_cubic_interpolation(beta, b_h, b_max, f_u, 0.0, d_f_u, -0.5, r_hh)
    if f <= 0:  # quadratic through f(b_h), f(b_max)=0 and f'(b_max)=-1/2
        h = b_max - b_h
        t = (beta - b_h) / h
        f = (f_u * (1 - t) + 0.5 * h * t) * (1 - t)
    s = _inverse_f_upper_map(f)
    if beta > 0.5 * b_max:
        return _iterate_upper(beta, x, s, s_h, DBL_MAX, b_max)
    return _iterate_middle(beta, x, s, s_h, DBL_MAX)


@njit(cache=True, nogil=True, error_model="numpy")
def black_implied_volatility(
    price: float, forward: float, strike: float, t: float, call: bool
) -> tuple[float, int]:
    """(sigma, status) of an undiscounted Black price; sigma is NaN unless SOLVED."""
    intrinsic = max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    upper = forward if call else strike
    if price < intrinsic:
        return float("nan"), BELOW_INTRINSIC
    if price >= upper:
        return float("nan"), ABOVE_MAXIMUM
    x = log(forward / strike)
    time_value = price
    if (x > 0) == call and x != 0:  # in the money: price the out-of-the-money twin
        time_value = price - intrinsic
        if time_value <= ITM_TIME_VALUE_FLOOR * price:
            # deep in the money: what is left of the price after the intrinsic value is
            # within the price's own round-off (a price computed or quoted to double
            # precision carries errors of ~1e-14 of itself), so it says nothing about
            # volatility and a solve would fit noise
            return float("nan"), NO_TIME_VALUE
    if time_value <= 0:
        return float("nan"), NO_TIME_VALUE
    beta = time_value / (sqrt(forward) * sqrt(strike))
    x_otm = -fabs(x)
    if beta >= exp(0.5 * x_otm):
        return float("nan"), ABOVE_MAXIMUM
    return normalised_call_volatility(beta, x_otm) / sqrt(t), SOLVED


# --- Black-Scholes-Merton: IV and Greeks per row, and the parallel loop ------------------

# solver_status codes (names: features.greeks.SOLVER_STATUSES); 1-3 are the solver's own
OK, EXPIRED, INVALID = SOLVED, 4, 5
ONE_OVER_SQRT_TWO_PI = 1 / sqrt(2 * pi)


@njit(cache=True, nogil=True, error_model="numpy")
def _norm_cdf(x: float) -> float:
    return 0.5 * erfc(-x / sqrt(2.0))


@njit(cache=True, nogil=True, error_model="numpy")
def _price_row(
    price: float, spot: float, strike: float, t: float, r: float, q: float, right: int
) -> tuple[float, float, float, float, float, float, int]:
    """(iv, delta, gamma, vega, theta, rho, status) of one option."""
    nan = float("nan")
    finite = isfinite(price) and isfinite(spot) and isfinite(strike)
    finite = finite and isfinite(t) and isfinite(r) and isfinite(q)
    if not finite or right > 1 or spot <= 0 or strike <= 0 or price < 0:
        return nan, nan, nan, nan, nan, nan, INVALID
    if t <= 0:
        return nan, nan, nan, nan, nan, nan, EXPIRED
    call = right == 1
    discount = exp(-r * t)
    carry = exp(-q * t)
    forward = spot * exp((r - q) * t)  # as py_vollib: one exp, the same last bit
    sigma, solved = black_implied_volatility(price / discount, forward, strike, t, call)
    if solved != SOLVED:
        return nan, nan, nan, nan, nan, nan, solved  # the solver's codes are the statuses
    root_t = sqrt(t)
    total_vol = sigma * root_t
    d1 = log(forward / strike) / total_vol + 0.5 * total_vol  # ln(S/K) + (r-q)t = ln(F/K)
    d2 = d1 - total_vol
    pdf = ONE_OVER_SQRT_TWO_PI * exp(-0.5 * d1 * d1)
    gamma = carry * pdf / (spot * sigma * root_t)
    vega = spot * carry * pdf * root_t / 100.0
    decay = -spot * carry * pdf * sigma / (2.0 * root_t)
    if call:
        n1, n2 = _norm_cdf(d1), _norm_cdf(d2)
        delta = carry * n1
        theta = decay - r * strike * discount * n2 + q * spot * carry * n1
        rho = strike * t * discount * n2 / 100.0
    else:
        n1, n2 = _norm_cdf(-d1), _norm_cdf(-d2)
        delta = -carry * n1
        theta = decay + r * strike * discount * n2 - q * spot * carry * n1
        rho = -strike * t * discount * n2 / 100.0
    return sigma, delta, gamma, vega, theta / 365.0, rho, OK


@njit(cache=True, parallel=True, error_model="numpy")
def price_all(
    price: np.ndarray,
    spot: np.ndarray,
    strike: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    right: np.ndarray,
    out: np.ndarray,
    status: np.ndarray,
) -> None:
    """Fill ``out`` (6 x n: iv and the five Greeks) and ``status`` row by row."""
    for i in prange(price.shape[0]):
        iv, delta, gamma, vega, theta, rho, code = _price_row(
            price[i], spot[i], strike[i], t[i], r[i], q[i], right[i]
        )
        out[0, i] = iv
        out[1, i] = delta
        out[2, i] = gamma
        out[3, i] = vega
        out[4, i] = theta
        out[5, i] = rho
        status[i] = code
