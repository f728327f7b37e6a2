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
CONVERGED_STEP = 1e-4  # a step this small (relative) leaves an error of order its 4th power
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
        if fabs(ds) <= CONVERGED_STEP * s:
            break  # Householder(3) converges in the fourth order: the next step is < 1e-16
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
        if fabs(ds) <= CONVERGED_STEP * s:
            break  # Householder(3) converges in the fourth order: the next step is < 1e-16
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
        if fabs(ds) <= CONVERGED_STEP * s:
            break  # Householder(3) converges in the fourth order: the next step is < 1e-16
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
def black_implied_volatility(  # noqa: PLR0911 (one exit per status)
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
    if beta < DBL_MIN:  # a subnormal normalised price: too few bits to solve from
        return float("nan"), NO_TIME_VALUE
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


# --- American exercise: Barone-Adesi & Whaley (1987), de-Americanized IV, Greeks ---------
#
# G. Barone-Adesi and R. E. Whaley, "Efficient Analytic Approximation of American Option
# Values", Journal of Finance 42 (1987) 301-320; the critical-price seed and Newton step
# as in E. G. Haug, "The Complete Guide to Option Pricing Formulas" (McGraw-Hill).
# Cost of carry b = r - q; the American value is the European one plus A (S / S*)^Q on the
# continuation side of the critical price S*, and the intrinsic value beyond it.

BOUNDARY_ITERATIONS = 100  # Newton on the critical price from Haug's seed (a handful)
WARM_ITERATIONS = 20  # Newton from the critical price of a nearby volatility (one or two)
BOUNDARY_TOLERANCE = 1e-10  # relative Newton step after which S* is taken as converged
SIGMA_LOW, SIGMA_HIGH = 1e-4, 5.0  # the bracket of the safeguarded (Brent) fallback
FIXED_POINT_ITERATIONS = 30
FIXED_POINT_TOLERANCE = 1e-12  # |d sigma| at which the de-Americanization has converged
REPRICE_TOLERANCE = 1e-7  # relative: a converged fixed point must reprice the option
BRENT_ITERATIONS = 200
DAY = 1.0 / 365.0
SPOT_BUMP = 1e-4  # relative: delta and gamma
SIGMA_BUMP = 1e-4  # relative: vega
RATE_BUMP = 1e-4  # absolute: rho


@njit(cache=True, nogil=True, error_model="numpy")
def _norm_pdf(x: float) -> float:
    return ONE_OVER_SQRT_TWO_PI * exp(-0.5 * x * x)


@njit(cache=True, nogil=True, error_model="numpy")
def _bsm_price(
    spot: float, strike: float, t: float, r: float, q: float, sigma: float, call: bool
) -> float:
    """Black-Scholes-Merton price with continuous dividend yield q."""
    discount = exp(-r * t)
    forward = spot * exp((r - q) * t)
    total_vol = sigma * sqrt(t)
    if not total_vol > 0:
        return discount * (max(forward - strike, 0.0) if call else max(strike - forward, 0.0))
    d1 = log(forward / strike) / total_vol + 0.5 * total_vol
    d2 = d1 - total_vol
    if call:
        return discount * (forward * _norm_cdf(d1) - strike * _norm_cdf(d2))
    return discount * (strike * _norm_cdf(-d2) - forward * _norm_cdf(-d1))


@njit(cache=True, nogil=True, error_model="numpy")
def _european_exercise_is_optimal(r: float, q: float, call: bool) -> bool:
    """BAW's rule: a call with q <= 0 (b >= r) and a put with r <= 0 are never exercised
    early, so their American values are the European ones."""
    return q <= 0 if call else r <= 0


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_exponent(t: float, r: float, q: float, sigma: float, call: bool) -> float:
    """BAW's Q2 (call, > 1) or Q1 (put, < 0) for maturity t."""
    v2 = sigma * sigma
    n_minus_1 = 2.0 * (r - q) / v2 - 1.0
    # M / K = 2 r / (sigma^2 (1 - exp(-r t))), whose limit at r = 0 is 2 / (sigma^2 t)
    m_over_k = 2.0 / (v2 * t) if r == 0 else 2.0 * r / (v2 * -np.expm1(-r * t))
    root = sqrt(n_minus_1 * n_minus_1 + 4.0 * m_over_k)
    return 0.5 * (-n_minus_1 + root) if call else 0.5 * (-n_minus_1 - root)


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_boundary_gap(
    s: float, strike: float, t: float, r: float, q: float, sigma: float, call: bool, e: float
) -> tuple[float, float]:
    """(f, f') of the critical-price equation at S* = s; f < 0 on the continuation side.

    Call: f = s - K - c(s) - (1 - e^{-qT} N(d1)) s / Q2, increasing in s.
    Put: f = K - s - p(s) + (1 - e^{-qT} N(-d1)) s / Q1, decreasing in s.
    """
    total_vol = sigma * sqrt(t)
    carry = exp(-q * t)
    d1 = (log(s / strike) + (r - q + 0.5 * sigma * sigma) * t) / total_vol
    euro = _bsm_price(s, strike, t, r, q, sigma, call)
    if call:
        nd1 = _norm_cdf(d1)
        rhs = euro + (1.0 - carry * nd1) * s / e
        slope = carry * nd1 * (1.0 - 1.0 / e) + (1.0 - carry * _norm_pdf(d1) / total_vol) / e
        return s - strike - rhs, 1.0 - slope
    nd1 = _norm_cdf(-d1)
    rhs = euro - (1.0 - carry * nd1) * s / e
    slope = -carry * nd1 * (1.0 - 1.0 / e) - (1.0 + carry * _norm_pdf(-d1) / total_vol) / e
    return strike - s - rhs, -1.0 - slope


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_newton(
    s: float, strike: float, t: float, r: float, q: float, sigma: float, call: bool, e: float,
    iterations: int,
) -> float:  # fmt: skip
    """Newton on the critical-price equation from s; NaN if it leaves the side of K the
    root is on, or does not converge in ``iterations`` steps."""
    if not (isfinite(s) and (s > strike if call else 0 < s < strike)):
        return float("nan")
    for _ in range(iterations):
        f, fp = _baw_boundary_gap(s, strike, t, r, q, sigma, call, e)
        step = f / fp
        s_new = s - step
        if not (isfinite(s_new) and (s_new > strike if call else 0 < s_new < strike)):
            return float("nan")
        s = s_new
        if fabs(step) <= BOUNDARY_TOLERANCE * s:  # quadratic: what is left is far smaller
            return s
    return float("nan")


@njit(cache=True, nogil=True, error_model="numpy")
def _haug_seed(strike: float, t: float, r: float, q: float, sigma: float, call: bool) -> float:
    """Haug's starting point for S*: the perpetual option's critical price, pulled toward
    the strike for short maturities."""
    b = r - q
    v2 = sigma * sigma
    total_vol = sigma * sqrt(t)
    n_minus_1 = 2.0 * b / v2 - 1.0
    disc = sqrt(max(n_minus_1 * n_minus_1 + 8.0 * r / v2, 0.0))
    if call:
        s_inf = strike / (1.0 - 1.0 / (0.5 * (-n_minus_1 + disc)))
        h = -(b * t + 2.0 * total_vol) * strike / (s_inf - strike)
        return strike + (s_inf - strike) * (1.0 - exp(h))
    s_inf = strike / (1.0 - 1.0 / (0.5 * (-n_minus_1 - disc)))
    h = (b * t - 2.0 * total_vol) * strike / (strike - s_inf)
    return s_inf + (strike - s_inf) * exp(h)


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_bisect(
    strike: float, t: float, r: float, q: float, sigma: float, call: bool, e: float
) -> float:
    """S* by bisection: f < 0 at K, and changes sign at the other end of the bracket
    (found by doubling for calls). +inf (call) or 0 (put) when it does not."""
    if call:
        lo, hi = strike, 2.0 * strike
        while isfinite(hi) and not _baw_boundary_gap(hi, strike, t, r, q, sigma, call, e)[0] > 0:
            lo, hi = hi, 2.0 * hi
        if not isfinite(hi):
            return np.inf
    else:
        lo, hi = 1e-12 * strike, strike  # f > 0 at lo, f < 0 at hi
        if not _baw_boundary_gap(lo, strike, t, r, q, sigma, call, e)[0] > 0:
            return 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if (_baw_boundary_gap(mid, strike, t, r, q, sigma, call, e)[0] > 0) == call:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_critical_price(
    strike: float, t: float, r: float, q: float, sigma: float, call: bool, e: float,
    seed: float,
) -> float:  # fmt: skip
    """The critical price S*: Newton from ``seed`` (the S* of a nearby volatility, time or
    rate; NaN for none), else from Haug's seed, else bisection.

    Returns +inf (call) or 0 (put) when there is no finite critical price (the premium
    then vanishes: the limits q -> 0+ for calls and r -> 0+ for puts).
    """
    s = _baw_newton(seed, strike, t, r, q, sigma, call, e, WARM_ITERATIONS)
    if isfinite(s):
        return s
    s = _haug_seed(strike, t, r, q, sigma, call)
    s = _baw_newton(s, strike, t, r, q, sigma, call, e, BOUNDARY_ITERATIONS)
    if isfinite(s):
        return s
    return _baw_bisect(strike, t, r, q, sigma, call, e)


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_boundary(
    strike: float, t: float, r: float, q: float, sigma: float, call: bool, seed: float
) -> tuple[float, float, float]:
    """(S*, Q, A) of the BAW approximation: the premium is A (S / S*)^Q before S*.
    ``seed``: a nearby S* to start Newton from, or NaN."""
    e = _baw_exponent(t, r, q, sigma, call)
    s_star = _baw_critical_price(strike, t, r, q, sigma, call, e, seed)
    if not (0 < s_star < np.inf):
        return s_star, e, 0.0
    d1 = (log(s_star / strike) + (r - q + 0.5 * sigma * sigma) * t) / (sigma * sqrt(t))
    carry = exp(-q * t)
    if call:
        return s_star, e, s_star / e * (1.0 - carry * _norm_cdf(d1))
    return s_star, e, -s_star / e * (1.0 - carry * _norm_cdf(-d1))


@njit(cache=True, nogil=True, error_model="numpy")
def _baw_price_on_boundary(
    spot: float,
    strike: float,
    t: float,
    r: float,
    q: float,
    sigma: float,
    call: bool,
    s_star: float,
    e: float,
    a: float,
) -> float:
    """The BAW price at ``spot`` given the (spot-independent) boundary terms."""
    intrinsic = max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    if (spot >= s_star) if call else (spot <= s_star):
        return intrinsic
    euro = _bsm_price(spot, strike, t, r, q, sigma, call)
    premium = a * (spot / s_star) ** e if a != 0 else 0.0
    return max(euro + premium, intrinsic)


@njit(cache=True, nogil=True, error_model="numpy")
def _american_price_seeded(
    spot: float, strike: float, t: float, r: float, q: float, sigma: float, call: bool,
    seed: float,
) -> tuple[float, float]:  # fmt: skip
    """(BAW price, S*) with Newton for S* started from ``seed`` (NaN: Haug's seed);
    S* is NaN where the European value is the American one."""
    intrinsic = max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    if t <= 0:
        return intrinsic, float("nan")
    if _european_exercise_is_optimal(r, q, call) or not sigma > 0:
        return max(_bsm_price(spot, strike, t, r, q, sigma, call), intrinsic), float("nan")
    s_star, e, a = _baw_boundary(strike, t, r, q, sigma, call, seed)
    return _baw_price_on_boundary(spot, strike, t, r, q, sigma, call, s_star, e, a), s_star


@njit(cache=True, nogil=True, error_model="numpy")
def american_price(
    spot: float, strike: float, t: float, r: float, q: float, sigma: float, call: bool
) -> float:
    """Barone-Adesi & Whaley (1987) American price; never below intrinsic."""
    return _american_price_seeded(spot, strike, t, r, q, sigma, call, float("nan"))[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _american_gap(
    sigma: float, price: float, spot: float, strike: float, t: float, r: float, q: float,
    call: bool, seed: float,
) -> tuple[float, float]:  # fmt: skip
    """(BAW(sigma) - price, S* at sigma)."""
    value, s_star = _american_price_seeded(spot, strike, t, r, q, sigma, call, seed)
    return value - price, s_star


@njit(cache=True, nogil=True, error_model="numpy")
def _brent_american(
    price: float, spot: float, strike: float, t: float, r: float, q: float, call: bool,
    lo: float, hi: float, f_lo: float, f_hi: float, seed: float,
) -> float:  # fmt: skip
    """Brent's method (zeroin) on BAW(sigma) - price over a sign-changing bracket."""
    a, b, c = lo, hi, hi
    fa, fb, fc = f_lo, f_hi, f_hi
    d = e = b - a
    for _ in range(BRENT_ITERATIONS):
        if (fb > 0) == (fc > 0):
            c, fc = a, fa
            d = e = b - a
        if fabs(fc) < fabs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = 2.0 * DBL_EPSILON * fabs(b) + 0.5 * FIXED_POINT_TOLERANCE
        xm = 0.5 * (c - b)
        if fabs(xm) <= tol or fb == 0:
            return b
        if fabs(e) >= tol and fabs(fa) > fabs(fb):
            s = fb / fa
            if a == c:  # secant
                p = 2.0 * xm * s
                qq = 1.0 - s
            else:  # inverse quadratic interpolation
                qq = fa / fc
                rr = fb / fc
                p = s * (2.0 * xm * qq * (qq - rr) - (b - a) * (rr - 1.0))
                qq = (qq - 1.0) * (rr - 1.0) * (s - 1.0)
            if p > 0:
                qq = -qq
            p = fabs(p)
            if 2.0 * p < min(3.0 * xm * qq - fabs(tol * qq), fabs(e * qq)):
                e = d
                d = p / qq
            else:
                d = xm
                e = d
        else:
            d = xm
            e = d
        a, fa = b, fb
        b += d if fabs(d) > tol else (tol if xm > 0 else -tol)
        fb, seed = _american_gap(b, price, spot, strike, t, r, q, call, seed)
    return b


@njit(cache=True, nogil=True, error_model="numpy")
def american_implied_volatility(
    price: float, spot: float, strike: float, t: float, r: float, q: float, call: bool
) -> tuple[float, int]:
    """(sigma, status) with BAW(sigma) = price, for a price already checked to lie
    strictly between the American lower bound and the upper bound.

    De-Americanization: sigma <- EuropeanIV(price - (BAW(sigma) - BSM(sigma))), from the
    European IV of the price itself, each step exact by Let's Be Rational; if that does
    not converge (or a step leaves the European bounds), Brent on BAW(sigma) - price.
    """
    discount = exp(-r * t)
    forward = spot * exp((r - q) * t)
    sigma, code = black_implied_volatility(price / discount, forward, strike, t, call)
    if code != SOLVED or not (isfinite(sigma) and sigma > 0):
        sigma = 0.3
    s_star = float("nan")  # each step starts Newton for S* from the last step's
    for _ in range(FIXED_POINT_ITERATIONS):
        value, s_star = _american_price_seeded(spot, strike, t, r, q, sigma, call, s_star)
        premium = value - _bsm_price(spot, strike, t, r, q, sigma, call)
        new, code = black_implied_volatility((price - premium) / discount, forward, strike, t, call)
        if code != SOLVED or not (isfinite(new) and new > 0):
            break
        step = new - sigma
        sigma = new
        if fabs(step) < FIXED_POINT_TOLERANCE:
            if fabs(value - price) <= REPRICE_TOLERANCE * price:
                return sigma, SOLVED
            break  # a European step fitted noise (a subnormal price): solve directly
    f_lo = _american_gap(SIGMA_LOW, price, spot, strike, t, r, q, call, float("nan"))[0]
    if f_lo >= 0:  # at or below the price at ~zero volatility: nothing to imply
        return float("nan"), NO_TIME_VALUE
    f_hi, s_star = _american_gap(SIGMA_HIGH, price, spot, strike, t, r, q, call, float("nan"))
    if f_hi <= 0:  # beyond the volatilities we solve for
        return float("nan"), ABOVE_MAXIMUM
    sigma = _brent_american(
        price, spot, strike, t, r, q, call, SIGMA_LOW, SIGMA_HIGH, f_lo, f_hi, s_star
    )
    return sigma, SOLVED


@njit(cache=True, nogil=True, error_model="numpy")
def _american_bounds(
    price: float, spot: float, strike: float, t: float, r: float, q: float, call: bool
) -> int:
    """SOLVED if an American price lies strictly inside its no-arbitrage bounds, else
    the status saying on which side it is. The lower bound is the larger of exercising
    now (the intrinsic value on the spot) and the European bound (the forward's
    discounted intrinsic value); within a relative 1e-11 of it, no time value is left."""
    if price >= (spot if call else strike):
        return ABOVE_MAXIMUM
    intrinsic = max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    forward = spot * exp((r - q) * t)
    european = max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    floor = max(intrinsic, exp(-r * t) * european)
    tolerance = ITM_TIME_VALUE_FLOOR * floor
    if price < floor - tolerance:
        return BELOW_INTRINSIC
    if price - floor <= tolerance:  # on the bound (in the exercise region, if ITM)
        return NO_TIME_VALUE
    return SOLVED


@njit(cache=True, nogil=True, error_model="numpy")
def _american_row(
    price: float, spot: float, strike: float, t: float, r: float, q: float, right: int
) -> tuple[float, float, float, float, float, float, int]:
    """(iv, delta, gamma, vega, theta, rho, status) of one American option (BAW)."""
    nan = float("nan")
    finite = isfinite(price) and isfinite(spot) and isfinite(strike)
    finite = finite and isfinite(t) and isfinite(r) and isfinite(q)
    if not finite or right > 1 or spot <= 0 or strike <= 0 or price < 0:
        return nan, nan, nan, nan, nan, nan, INVALID
    call = right == 1
    intrinsic = max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    if t > 0 and _european_exercise_is_optimal(r, q, call):
        if price >= intrinsic * (1.0 - ITM_TIME_VALUE_FLOOR):  # not so only if r or q < 0
            return _price_row(price, spot, strike, t, r, q, right)  # exactly the European row
        code = BELOW_INTRINSIC
    else:
        code = EXPIRED if t <= 0 else _american_bounds(price, spot, strike, t, r, q, call)
    sigma = nan
    if code == SOLVED:
        sigma, code = american_implied_volatility(price, spot, strike, t, r, q, call)
    if code != SOLVED:
        return nan, nan, nan, nan, nan, nan, code
    # Greeks: finite differences of the BAW price at the solved volatility; S* does not
    # depend on the spot, and seeds Newton for the S* of the bumped volatility, time, rate
    s_star, e, a = _baw_boundary(strike, t, r, q, sigma, call, float("nan"))
    h = SPOT_BUMP * spot
    mid = _baw_price_on_boundary(spot, strike, t, r, q, sigma, call, s_star, e, a)
    up = _baw_price_on_boundary(spot + h, strike, t, r, q, sigma, call, s_star, e, a)
    down = _baw_price_on_boundary(spot - h, strike, t, r, q, sigma, call, s_star, e, a)
    delta = (up - down) / (2.0 * h)
    gamma = (up - 2.0 * mid + down) / (h * h)
    h = SIGMA_BUMP * sigma
    up = _american_price_seeded(spot, strike, t, r, q, sigma + h, call, s_star)[0]
    down = _american_price_seeded(spot, strike, t, r, q, sigma - h, call, s_star)[0]
    vega = (up - down) / (2.0 * h * 100.0)
    if t > DAY:  # one calendar day passes
        theta = _american_price_seeded(spot, strike, t - DAY, r, q, sigma, call, s_star)[0] - mid
    else:  # less than a day left: the day before, one-sided
        theta = mid - _american_price_seeded(spot, strike, t + DAY, r, q, sigma, call, s_star)[0]
    up = _american_price_seeded(spot, strike, t, r + RATE_BUMP, q, sigma, call, s_star)[0]
    down = _american_price_seeded(spot, strike, t, r - RATE_BUMP, q, sigma, call, s_star)[0]
    rho = (up - down) / (2.0 * RATE_BUMP * 100.0)
    return sigma, delta, gamma, vega, theta, rho, OK


@njit(cache=True, parallel=True, error_model="numpy")
def price_all_american(
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
    """``price_all`` for American options (BAW): ``out`` (6 x n) and ``status``."""
    for i in prange(price.shape[0]):
        iv, delta, gamma, vega, theta, rho, code = _american_row(
            price[i], spot[i], strike[i], t[i], r[i], q[i], right[i]
        )
        out[0, i] = iv
        out[1, i] = delta
        out[2, i] = gamma
        out[3, i] = vega
        out[4, i] = theta
        out[5, i] = rho
        status[i] = code
