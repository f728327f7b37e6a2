"""Compiled pricing kernels: Let's Be Rational implied volatility, BSM Greeks, parallel loops.

All of volflow's numba code lives in this one module on purpose: numba's on-disk cache
(``cache=True``) is invalidated only when the file of the cached function changes, so a
kernel calling a function from another of our modules would keep a stale compiled copy
of it after an edit. (py_lets_be_rational, whose jitted blocks are still called here for
rare branches, is pinned.) The Polars-facing APIs are ``features.greeks`` and
``features.american``.

Implied volatility by Jäckel's "Let's Be Rational" (2015), compiled for parallel loops.

py_vollib's ``py_lets_be_rational`` (MIT; a port of Jäckel's reference code) jit-compiles
the building blocks of the algorithm but runs the top-level solver as plain Python, which
raises exceptions for prices outside the arbitrage bounds and so cannot be called from a
numba loop. This module is that top-level routine as a ``nopython`` function that returns
a status code instead of raising: same initial guess (four branches, transformed rational
guess), same Householder(3) iterations (two suffice for full double precision, per the
paper), the same answer to round-off.

The blocks on the solver's hot path are ported from py_lets_be_rational (and from the
references it follows) rather than called: numba compiles each jitted function on its
own and calls it through memory (arguments spilled, the result written through a
pointer, an error status checked), and sharing work between blocks needs them in one
place. The solver is latency-bound (each step waits for the last), so the ports are
arranged to shorten the chain of dependent operations:

* ``normalised_black_call_and_vega``: the normalised Black price and its vega together
  (the library's ``normalised_black_call`` and ``normalised_vega``, the same four regions
  and thresholds), sharing the one exponential exp(-(h^2+t^2)/2);
* the small-t expansion (Jäckel's 12th-order series in t = s/2, used below t = 0.21, so
  for most quotes) regrouped as 2t (a A + B) so that the polynomials A and B are
  evaluated while erfcx(-h/sqrt 2) is, instead of after it;
* W. J. Cody's erfcx (CALERF with JINT = 2 only; its rational functions by Estrin's
  scheme) and Phi from a known exp(-z^2/2) with one rational function;
* the lower map and its two derivatives with Phi(-z) and phi(z) from one exponential
  (two exponentials instead of five), and its inverse with the cube root taken on the
  logarithm that AS 241's tail needs anyway (one logarithm instead of pow and log);
* AS 241 (Wichura's inverse normal CDF), Delbourgo and Gregory's rational cubic
  interpolation and its control parameter, and the Householder factor, inlined.

Still called from the library, on rare branches: the asymptotic expansion for h < -10,
the norm-cdf form of the price above ~85% of its maximum, and the upper map and its
inverse. Against 60-digit mpmath on 40,000 (x, s) pairs the ported price is as accurate
as the library's in every region (the same largest error to within an ulp).

Small helpers are ``inline="always"`` (numba inlines them in its own IR);
``normalised_black_call_and_vega`` is not: inlined at its six call sites it made the
first (uncached) compile four times longer for about 3% of speed.

Reference: P. Jäckel, "Let's Be Rational", Wilmott (2015) 40-53. The ported code derives
from py_lets_be_rational (copyright 2017 Gammon Capital LLC, MIT license) and from
Jäckel's LetsBeRational (copyright 2013-2014 Peter Jäckel: "Permission to use, copy,
modify, and distribute this software is freely granted, provided that this notice is
preserved.").
"""

from __future__ import annotations

import sys
from math import erfc, exp, fabs, isfinite, log, sqrt

import numpy as np
from numba import njit, prange
from py_lets_be_rational.lets_be_rational import (
    _asymptotic_expansion_of_normalized_black_call,
    _compute_f_upper_map_and_first_two_derivatives,
    _inverse_f_upper_map,
    _normalized_black_call_using_norm_cdf,
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

ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
SQRT_TWO_PI = 2.506628274631000502415765284811045253006986740610
SQRT_THREE = 1.732050807568877293527446341505872366942805253810
SQRT_ONE_OVER_THREE = 0.577350269189625764509148780501957455647601751270
PI_OVER_SIX = 0.523598775598298873077107230546583814032861566563
TWO_PI = 6.283185307179586476925286766559005768394338798750
TWO_PI_OVER_SQRT_TWENTY_SEVEN = 1.209199576156145233729385505094770488189377498728
# the normalised Black function's regions (py_lets_be_rational's thresholds)
ASYMPTOTIC_EXPANSION_THRESHOLD = -10.0  # h = x/s below this: asymptotic expansion
SMALL_T_EXPANSION_THRESHOLD = 2 * sqrt(sqrt(sqrt(sqrt(DBL_EPSILON))))  # t = s/2 below: Taylor
INV_FACT = (1 / 6, 1 / 120, 1 / 5040, 1 / 362880, 1 / 39916800, 1 / 6227020800)  # 1/(2k+1)!
# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23
# (1969) 631-638, as in his CALERF (netlib specfun) and py_lets_be_rational's erf_cody
ERF_THRESHOLD = 0.46875
ERF_A = (3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947,
         0.185777706184603153)  # fmt: skip
ERF_B = (23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
ERFC_C = (0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131,
          881.95222124176909, 1712.04761263407058, 2051.07837782607147, 1230.33935479799725,
          2.15311535474403846e-8)  # fmt: skip
ERFC_D = (15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019,
          3290.79923573345963, 4362.61909014324716, 3439.36767414372164,
          1230.33935480374942)  # fmt: skip
ERFC_P = (0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
          0.0160837851487422766, 6.58749161529837803e-4, 0.0163153871373020978)  # fmt: skip
ERFC_Q = (2.56852019228982242, 1.87295284992346047, 0.527905102951428412,
          0.0605183413124413191, 0.00233520497626869185)  # fmt: skip
ONE_OVER_SQRT_PI = 0.56418958354775628695
ERFCX_XINF = 1.79e308  # erfcx(x) for x below XNEG
ERFCX_XNEG = -26.628  # erfcx(x) overflows below
ERFCX_XHUGE = 6.71e7  # 1 - 1/(2 x^2) rounds to 1 above
ERFCX_XMAX = 2.53e307  # erfcx(x) underflows above
# M. J. Wichura, "Algorithm AS 241: The percentage points of the normal distribution",
# Applied Statistics 37 (1988) 477-484 (PPND16), as py_lets_be_rational's inverse_norm_cdf
AS241_A = (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
           1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
           3.3430575583588128105e4, 2.5090809287301226727e3)  # fmt: skip
AS241_B = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
           2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
           5.2264952788528545610e3)  # fmt: skip
AS241_C = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
           3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
           2.27238449892691845833e-2, 7.74545014278341407640e-4)  # fmt: skip
AS241_D = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
           1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
           1.05075007164441684324e-9)  # fmt: skip
AS241_E = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
           2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
           2.71155556874348757815e-5, 2.01033439929228813265e-7)  # fmt: skip
AS241_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
           7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
           2.04426310338993978564e-15)  # fmt: skip
LOG_AS241_SPLIT = log(0.075)  # u below this (|u - 1/2| > 0.425): the tail approximations
# R. Delbourgo and J. A. Gregory, "Shape preserving piecewise rational interpolation",
# SIAM J. Sci. Stat. Comput. 6 (1985) 967-976: the bounds of the control parameter r
RATIONAL_CUBIC_MIN_R = -(1 - sqrt(DBL_EPSILON))
RATIONAL_CUBIC_MAX_R = 2 / (DBL_EPSILON * DBL_EPSILON)  # at or above: linear


# --- Special functions: Cody's erf and erfcx, AS 241's inverse normal CDF ---------------


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _erf_small(x: float) -> float:
    """erf(x) for |x| <= 0.46875 (Cody's first interval). Cody's rational functions are
    evaluated by Estrin's scheme (about half Horner's chain of dependent operations): their
    coefficients and arguments are all positive, so the order of summation loses nothing."""
    z = x * x
    z2 = z * z
    num = (ERF_A[3] + ERF_A[2] * z) + z2 * ((ERF_A[1] + ERF_A[0] * z) + z2 * ERF_A[4])
    den = (ERF_B[3] + ERF_B[2] * z) + z2 * ((ERF_B[1] + ERF_B[0] * z) + z2)
    return x * num / den


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _erfcx_tail(y: float) -> float:
    """erfcx(y) = exp(y^2) erfc(y) for y > 0.46875 (Cody's second and third intervals):
    rational functions only, no exponential."""
    if y <= 4.0:
        y2 = y * y
        y4 = y2 * y2
        c, d = ERFC_C, ERFC_D
        num = ((c[7] + c[6] * y) + y2 * (c[5] + c[4] * y)) + y4 * (
            ((c[3] + c[2] * y) + y2 * (c[1] + c[0] * y)) + y4 * c[8]
        )
        den = ((d[7] + d[6] * y) + y2 * (d[5] + d[4] * y)) + y4 * (
            ((d[3] + d[2] * y) + y2 * (d[1] + d[0] * y)) + y4
        )
        return num / den
    if y >= ERFCX_XHUGE:
        return ONE_OVER_SQRT_PI / y if y < ERFCX_XMAX else 0.0
    ysq = 1.0 / (y * y)
    xnum = ERFC_P[5] * ysq
    xden = ysq
    for i in range(4):
        xnum = (xnum + ERFC_P[i]) * ysq
        xden = (xden + ERFC_Q[i]) * ysq
    return (ONE_OVER_SQRT_PI - ysq * (xnum + ERFC_P[4]) / (xden + ERFC_Q[4])) / y


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _erfcx(x: float) -> float:
    """erfcx(x) = exp(x^2) erfc(x): Cody's CALERF with JINT = 2."""
    if fabs(x) <= ERF_THRESHOLD:
        return exp(x * x) * (1.0 - _erf_small(x))
    if x > 0:
        return _erfcx_tail(x)
    if x < ERFCX_XNEG:
        return ERFCX_XINF
    # erfcx(x) = 2 exp(x^2) - erfcx(-x); exp(x^2) as Cody: x^2 split so no bits are lost
    x16 = -np.floor(-16.0 * x) / 16.0
    e = exp(x16 * x16) * exp((x - x16) * (x + x16))
    return (e + e) - _erfcx_tail(-x)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _norm_cdf_from_exp(z: float, e: float) -> float:
    """Phi(z) given e = exp(-z^2 / 2): one rational function, no exponential."""
    y = ONE_OVER_SQRT_TWO * z  # Phi(z) = erfc(-y) / 2 = (1 + erf(y)) / 2
    if fabs(y) <= ERF_THRESHOLD:
        return 0.5 + 0.5 * _erf_small(y)
    if y < 0:
        return 0.5 * e * _erfcx_tail(-y)
    return 1.0 - 0.5 * e * _erfcx_tail(y)


# --- Let's Be Rational ------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _minimum_rational_cubic_control(
    d_l: float, d_r: float, slope: float, prefer_shape: bool
) -> float:
    """The smallest r keeping the interpolant monotone (Delbourgo-Gregory 3.8) and
    convex or concave (3.18) where the end slopes ``d_l``, ``d_r`` and the secant slope
    allow it; with ``prefer_shape``, linear interpolation where they are inconsistent."""
    monotonic = d_l * slope >= 0 and d_r * slope >= 0
    convex = d_l <= slope <= d_r
    concave = d_l >= slope >= d_r
    if not monotonic and not convex and not concave:
        return RATIONAL_CUBIC_MIN_R
    r1 = -DBL_MAX
    r2 = r1
    if monotonic:
        if not fabs(slope) < DBL_MIN:
            r1 = (d_r + d_l) / slope
        elif prefer_shape:
            r1 = RATIONAL_CUBIC_MAX_R
    if convex or concave:
        d_r_m_s = d_r - slope
        s_m_d_l = slope - d_l
        if not (fabs(s_m_d_l) < DBL_MIN or fabs(d_r_m_s) < DBL_MIN):
            d_r_m_d_l = d_r - d_l
            r2 = max(fabs(d_r_m_d_l / d_r_m_s), fabs(d_r_m_d_l / s_m_d_l))
        elif prefer_shape:
            r2 = RATIONAL_CUBIC_MAX_R
    elif monotonic and prefer_shape:
        r2 = RATIONAL_CUBIC_MAX_R
    r = max(r1, r2)
    return max(RATIONAL_CUBIC_MIN_R, r)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _convex_rational_cubic_control(
    x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float,
    second_derivative: float, at_right: bool, prefer_shape: bool,
) -> float:  # fmt: skip
    """The control parameter r that fits ``second_derivative`` at the right (else left)
    end of [x_l, x_r], raised to the minimum that preserves the shape."""
    h = x_r - x_l
    numerator = 0.5 * h * second_derivative + (d_r - d_l)
    if fabs(numerator) < DBL_MIN:
        r = 0.0
    else:
        denominator = d_r - (y_r - y_l) / h if at_right else (y_r - y_l) / h - d_l
        if fabs(denominator) < DBL_MIN:
            r = RATIONAL_CUBIC_MAX_R if numerator > 0 else RATIONAL_CUBIC_MIN_R
        else:
            r = numerator / denominator
    return max(r, _minimum_rational_cubic_control(d_l, d_r, (y_r - y_l) / h, prefer_shape))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _rational_cubic_interpolation(
    x: float, x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, r: float
) -> float:
    """Delbourgo and Gregory's rational cubic through (x_l, y_l), (x_r, y_r) with end
    slopes d_l, d_r and control parameter r (2.4 / 2.5), at x."""
    h = x_r - x_l
    if fabs(h) <= 0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / h
    if not r >= RATIONAL_CUBIC_MAX_R:
        omt = 1 - t
        t2 = t * t
        omt2 = omt * omt
        return (
            y_r * t2 * t
            + (r * y_r - h * d_r) * t2 * omt
            + (r * y_l + h * d_l) * t * omt2
            + y_l * omt2 * omt
        ) / (1 + (r - 3) * t * omt)
    return y_r * t + y_l * (1 - t)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _householder_factor(newton: float, halley: float, hh3: float) -> float:
    """[1 + halley newton / 2] / [1 + newton (halley + hh3 newton / 6)]: the Householder(3)
    step is newton times this."""
    return (1 + 0.5 * halley * newton) / (1 + newton * (halley + hh3 * newton * (1 / 6)))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _polynomial7(c: tuple[float, ...], r: float) -> float:
    """c[0] + c[1] r + ... + c[7] r^7 by Estrin's scheme (half Horner's latency; all of
    AS 241's coefficients and arguments are positive, so the order loses nothing)."""
    r2 = r * r
    return ((c[0] + c[1] * r) + r2 * (c[2] + c[3] * r)) + (r2 * r2) * (
        (c[4] + c[5] * r) + r2 * (c[6] + c[7] * r)
    )


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _inverse_norm_cdf_of_exp(log_u: float) -> float:
    """Phi^-1(u) for u = exp(log_u) by AS 241, from log(u): the lower tail needs only
    sqrt(-log u), so u itself is computed only for the other branches."""
    if log_u == -np.inf:
        return -np.inf
    sign = -1.0
    if log_u >= LOG_AS241_SPLIT:
        u = exp(log_u)
        if u >= 1:
            return log(1 - u)  # as the library (u > 1 cannot occur in the solver)
        q = u - 0.5
        if q <= 0.425:
            r = 0.180625 - q * q
            return q * _polynomial7(AS241_A, r) / _polynomial7(AS241_B, r)
        log_u = log(1.0 - u)  # the upper tail: Phi^-1(u) = -Phi^-1(1 - u)
        sign = 1.0
    r = sqrt(-log_u)
    if r < 5.0:
        r -= 1.6
        return sign * _polynomial7(AS241_C, r) / _polynomial7(AS241_D, r)
    r -= 5.0
    return sign * _polynomial7(AS241_E, r) / _polynomial7(AS241_F, r)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _inverse_f_lower_map(x: float, f: float) -> float:
    """s with f = the lower map of s, as py_lets_be_rational's: |x| / (sqrt(3)
    |Phi^-1((f / (2 pi / sqrt(27) |x|))^(1/3))|), the cube root taken on the logarithm."""
    ax = fabs(x)
    log_u = log(f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax)) / 3
    return fabs(x / (SQRT_THREE * _inverse_norm_cdf_of_exp(log_u)))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _small_t_expansion(h: float, t: float, v: float) -> float:
    """b for t < 0.21 (h <= 0) by the 12th-order Taylor expansion in t of
    Y(h+t) - Y(h-t), Y = Phi/phi; ``v`` is the vega, exp(-(h^2+t^2)/2)/sqrt(2 pi).

    Jäckel's expansion is 2t sum_k w^k (alpha_k + a beta_k) / (2k+1)!, w = t^2, with
    a = 1 + h Y(h) and alpha_k, beta_k polynomials in h^2. Summed as 2t (a A + B),
    A = sum_k w^k beta_k / (2k+1)! and B = sum_k w^k alpha_k / (2k+1)!: A and B do not
    need a, so they are evaluated while erfcx is (all of A's terms are positive and all
    of B's negative, so any order of summation is accurate)."""
    w = t * t
    w2 = w * w
    h2 = h * h
    h4 = h2 * h2
    a = 1 + h * (0.5 * SQRT_TWO_PI) * _erfcx(-ONE_OVER_SQRT_TWO * h)
    beta1 = 3 + h2
    beta2 = (15 + 10 * h2) + h4
    beta3 = (105 + 105 * h2) + h4 * (21 + h2)
    beta4 = (945 + 1260 * h2) + h4 * ((378 + 36 * h2) + h4)
    beta5 = (10395 + 17325 * h2) + h4 * ((6930 + 990 * h2) + h4 * (55 + h2))
    beta6 = (135135 + 270270 * h2) + h4 * ((135135 + 25740 * h2) + h4 * ((2145 + 78 * h2) + h4))
    alpha2 = 7 + h2  # alpha_k with the sign flipped; alpha_1 = -1
    alpha3 = (57 + 18 * h2) + h4
    alpha4 = (561 + 285 * h2) + h4 * (33 + h2)
    alpha5 = (6555 + 4680 * h2) + h4 * ((840 + 52 * h2) + h4)
    alpha6 = (89055 + 82845 * h2) + h4 * ((20370 + 1926 * h2) + h4 * (75 + h2))
    big_a = (1 + w * (beta1 * INV_FACT[0])) + w2 * (
        (beta2 * INV_FACT[1] + w * (beta3 * INV_FACT[2]))
        + w2 * ((beta4 * INV_FACT[3] + w * (beta5 * INV_FACT[4])) + w2 * (beta6 * INV_FACT[5]))
    )
    minus_b = w * INV_FACT[0] + w2 * (
        (alpha2 * INV_FACT[1] + w * (alpha3 * INV_FACT[2]))
        + w2 * ((alpha4 * INV_FACT[3] + w * (alpha5 * INV_FACT[4])) + w2 * (alpha6 * INV_FACT[5]))
    )
    return fabs(max((2 * t * v) * (a * big_a - minus_b), 0.0))


@njit(cache=True, nogil=True, error_model="numpy")
def normalised_black_call_and_vega(x: float, s: float) -> tuple[float, float]:
    """(b, db/ds) of the normalised Black call b(x, s) = Phi(x/s + s/2) exp(x/2)
    - Phi(x/s - s/2) exp(-x/2) for x <= 0, as py_lets_be_rational's normalised_black_call
    and normalised_vega (the same four regions), sharing their one exponential."""
    if s <= 0:
        return 0.0, (ONE_OVER_SQRT_TWO_PI * exp(-0.125 * s * s) if x == 0 else 0.0)
    h = x / s
    t = 0.5 * s
    g = exp(-0.5 * (h * h + t * t))
    v = ONE_OVER_SQRT_TWO_PI * g
    if x < s * ASYMPTOTIC_EXPANSION_THRESHOLD and 0.5 * s * s + x < s * (
        SMALL_T_EXPANSION_THRESHOLD + ASYMPTOTIC_EXPANSION_THRESHOLD
    ):
        return _asymptotic_expansion_of_normalized_black_call(h, t), v
    if t < SMALL_T_EXPANSION_THRESHOLD:
        return _small_t_expansion(h, t, v), v
    if x + 0.5 * s * s > s * 0.85:  # b > ~85% of exp(x/2): the two terms kept apart
        return _normalized_black_call_using_norm_cdf(x, s), v
    # Phi(z) = exp(-z^2/2) erfcx(-z/sqrt(2)) / 2: one exponential, shared with the vega
    b = 0.5 * g * (_erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - _erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    return fabs(max(b, 0.0)), v


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _f_lower_map_and_first_two_derivatives(x: float, s: float) -> tuple[float, float, float]:
    """Jäckel's lower map f(b) and its first two derivatives in beta at s, as
    py_lets_be_rational's, with Phi(-z) and phi(z) from one exponential."""
    ax = fabs(x)
    z = SQRT_ONE_OVER_THREE * ax / s
    y = z * z
    s2 = s * s
    e = exp(-0.5 * y)
    phi = ONE_OVER_SQRT_TWO_PI * e
    big_phi = _norm_cdf_from_exp(-z, e)
    ratio = big_phi / phi
    growth = exp(y + 0.125 * s2)  # squared: exp(2y + s^2/4)
    bracket = 8 * SQRT_THREE * s * ax + (3 * s2 * (s2 - 8) - 8 * x * x) * ratio
    fpp = PI_OVER_SIX * y / (s2 * s) * big_phi * bracket * (growth * growth)
    phi2 = big_phi * big_phi
    fp = TWO_PI * y * phi2 * growth
    f = TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (phi2 * big_phi)
    return f, fp, fpp


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
        b, bp = normalised_black_call_and_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        if b <= 0 or bp <= 0:
            ds = 0.5 * (s_left + s_right) - s
        else:
            # what needs only b and b' is computed while log(b) is
            bpob = bp / b
            newton_scale = 1 / (ln_beta * bpob)
            h = x / s
            b_halley = h * h / s - s / 4
            b_hh3 = b_halley * b_halley - 3 * (h / s) * (h / s) - 0.25
            ln_b = log(b)
            inv_ln_b = 1 / ln_b
            newton = (ln_beta - ln_b) * ln_b * newton_scale
            halley = b_halley - bpob * (1 + 2 * inv_ln_b)
            hh3 = (
                b_hh3
                + 2 * bpob * bpob * (1 + 3 * inv_ln_b * (1 + inv_ln_b))
                - 3 * b_halley * bpob * (1 + 2 * inv_ln_b)
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
        b, bp = normalised_black_call_and_vega(x, s)
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
        b, bp = normalised_black_call_and_vega(x, s)
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
    return _normalised_call_volatility(beta, x, exp(0.5 * x))


@njit(cache=True, nogil=True, error_model="numpy")
def _normalised_call_volatility(beta: float, x: float, b_max: float) -> float:
    """``normalised_call_volatility`` given b_max = exp(x / 2)."""
    s_c = sqrt(fabs(2 * x))
    b_c, v_c = normalised_black_call_and_vega(x, s_c)
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l, v_l = normalised_black_call_and_vega(x, s_l)
        if beta < b_l:
            f_l, d_f_l, d2_f_l = _f_lower_map_and_first_two_derivatives(x, s_l)
            r_ll = _convex_rational_cubic_control(
                0.0, b_l, 0.0, f_l, 1.0, d_f_l, d2_f_l, True, True
            )
            f = _rational_cubic_interpolation(beta, 0.0, b_l, 0.0, f_l, 1.0, d_f_l, r_ll)
            if not f > 0:  # round-off for extreme |x|: quadratic through f(0)=0, f'(0)=1
                t = beta / b_l
                f = (f_l * t + b_l * (1 - t)) * t
            s = _inverse_f_lower_map(x, f)
            return _iterate_lower(beta, x, s, DBL_MIN, s_l)
        r_lm = _convex_rational_cubic_control(
            b_l, b_c, s_l, s_c, 1 / v_l, 1 / v_c, 0.0, True, False
        )
        s = _rational_cubic_interpolation(beta, b_l, b_c, s_l, s_c, 1 / v_l, 1 / v_c, r_lm)
        return _iterate_middle(beta, x, s, s_l, s_c)
    s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
    b_h, v_h = normalised_black_call_and_vega(x, s_h)
    if beta <= b_h:
        r_hm = _convex_rational_cubic_control(
            b_c, b_h, s_c, s_h, 1 / v_c, 1 / v_h, 0.0, False, False
        )
        s = _rational_cubic_interpolation(beta, b_c, b_h, s_c, s_h, 1 / v_c, 1 / v_h, r_hm)
        return _iterate_middle(beta, x, s, s_c, s_h)
    f_u, d_f_u, d2_f_u = _compute_f_upper_map_and_first_two_derivatives(x, s_h)
    f = -DBL_MAX
    if -SQRT_DBL_MAX < d2_f_u < SQRT_DBL_MAX:
        r_hh = _convex_rational_cubic_control(
            b_h, b_max, f_u, 0.0, d_f_u, -0.5, d2_f_u, False, True
        )
        f = _rational_cubic_interpolation(beta, b_h, b_max, f_u, 0.0, d_f_u, -0.5, r_hh)
    if f <= 0:  # quadratic through f(b_h), f(b_max)=0 and f'(b_max)=-1/2
        h = b_max - b_h
        t = (beta - b_h) / h
        f = (f_u * (1 - t) + 0.5 * h * t) * (1 - t)
    s = _inverse_f_upper_map(f)
    if beta > 0.5 * b_max:
        return _iterate_upper(beta, x, s, s_h, DBL_MAX, b_max)
    return _iterate_middle(beta, x, s, s_h, DBL_MAX)


@njit(cache=True, nogil=True, error_model="numpy")
def _black_total_volatility(  # noqa: PLR0911 (one exit per status)
    price: float, forward: float, strike: float, call: bool
) -> tuple[float, float, int]:
    """(s, x, status) of an undiscounted Black price: the total volatility s = sigma
    sqrt(T) (NaN unless SOLVED) and x = ln(F/K) (NaN if not computed)."""
    nan = float("nan")
    intrinsic = max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    upper = forward if call else strike
    if price < intrinsic:
        return nan, nan, BELOW_INTRINSIC
    if price >= upper:
        return nan, nan, ABOVE_MAXIMUM
    x = log(forward / strike)
    time_value = price
    if (x > 0) == call and x != 0:  # in the money: price the out-of-the-money twin
        time_value = price - intrinsic
        if time_value <= ITM_TIME_VALUE_FLOOR * price:
            # deep in the money: what is left of the price after the intrinsic value is
            # within the price's own round-off (a price computed or quoted to double
            # precision carries errors of ~1e-14 of itself), so it says nothing about
            # volatility and a solve would fit noise
            return nan, x, NO_TIME_VALUE
    if time_value <= 0:
        return nan, x, NO_TIME_VALUE
    beta = time_value / (sqrt(forward) * sqrt(strike))
    if beta < DBL_MIN:  # a subnormal normalised price: too few bits to solve from
        return nan, x, NO_TIME_VALUE
    x_otm = -fabs(x)
    b_max = exp(0.5 * x_otm)
    if beta >= b_max:
        return nan, x, ABOVE_MAXIMUM
    return _normalised_call_volatility(beta, x_otm, b_max), x, SOLVED


@njit(cache=True, nogil=True, error_model="numpy")
def black_implied_volatility(
    price: float, forward: float, strike: float, t: float, call: bool
) -> tuple[float, int]:
    """(sigma, status) of an undiscounted Black price; sigma is NaN unless SOLVED."""
    s, _, status = _black_total_volatility(price, forward, strike, call)
    return s / sqrt(t), status


# --- Black-Scholes-Merton: IV and Greeks per row, and the parallel loop ------------------

# solver_status codes (names: features.greeks.SOLVER_STATUSES); 1-3 are the solver's own
OK, EXPIRED, INVALID = SOLVED, 4, 5


@njit(cache=True, nogil=True, error_model="numpy")
def _norm_cdf(x: float) -> float:
    return 0.5 * erfc(-x / sqrt(2.0))


@njit(cache=True, nogil=True, error_model="numpy")
def _price_row(
    price: float, spot: float, strike: float, t: float, r: float, q: float, right: int
) -> tuple[float, float, float, float, float, float, int]:
    """(iv, delta, gamma, vega, theta, rho, status) of one option.

    The Greeks reuse x = ln(F/K) and the total volatility s = sigma sqrt(T) from the
    solve, and take N(d1), N(d2) and n(d1) from one exponential: exp(-d2^2/2) =
    exp(-d1^2/2) F/K, and Phi(d) = exp(-d^2/2) erfcx(-d/sqrt 2) / 2."""
    nan = float("nan")
    finite = isfinite(price) and isfinite(spot) and isfinite(strike)
    finite = finite and isfinite(t) and isfinite(r) and isfinite(q)
    if not finite or right > 1 or spot <= 0 or strike <= 0 or price < 0:
        return nan, nan, nan, nan, nan, nan, INVALID
    if t <= 0:
        return nan, nan, nan, nan, nan, nan, EXPIRED
    call = right == 1
    discount = exp(-r * t)
    forward = spot * exp((r - q) * t)  # as py_vollib: one exp, the same last bit
    total_vol, x, solved = _black_total_volatility(price / discount, forward, strike, call)
    if solved != SOLVED:
        return nan, nan, nan, nan, nan, nan, solved  # the solver's codes are the statuses
    root_t = sqrt(t)
    sigma = total_vol / root_t
    carry = exp(-q * t)
    d1 = x / total_vol + 0.5 * total_vol  # x = ln(F/K) = ln(S/K) + (r-q)t
    d2 = d1 - total_vol
    e1 = exp(-0.5 * d1 * d1)
    # exp(-d2^2/2) = exp(-d1^2/2) exp(x), unless the first has (nearly) underflowed
    e2 = e1 * (forward / strike) if e1 >= DBL_MIN else exp(-0.5 * d2 * d2)
    pdf = ONE_OVER_SQRT_TWO_PI * e1
    gamma = carry * pdf / (spot * total_vol)
    vega = spot * carry * pdf * root_t / 100.0
    decay = -spot * carry * pdf * sigma / (2.0 * root_t)
    if call:
        n1, n2 = _norm_cdf_from_exp(d1, e1), _norm_cdf_from_exp(d2, e2)
        delta = carry * n1
        theta = decay - r * strike * discount * n2 + q * spot * carry * n1
        rho = strike * t * discount * n2 / 100.0
    else:
        n1, n2 = _norm_cdf_from_exp(-d1, e1), _norm_cdf_from_exp(-d2, e2)
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
