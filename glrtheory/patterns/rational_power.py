"""Exact ``floor(x^(num/den))`` for integer arrays: float64 for the bulk, integers or mpmath near integers.

Used by ``exponent:alpha`` (lags ``floor(k^(1/alpha))``) and by ``glrtheory.symbolic.costs.evaluate``
(floor / ceiling of rational powers in the closed forms).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import GLRError

#: Values of x^(num/den) within this relative distance of an integer are decided exactly (the float64
#: error of x ** (num/den) is below 6e-15 relative for x^(num/den) < 2^62).
NEAR_INTEGER = 1e-12
#: Integer test x^num <= m^den when both exponents are at most this; larger ones use mpmath.
SMALL_EXPONENT = 4096


def floor_rational_power(x, num: int, den: int) -> tuple[np.ndarray, np.ndarray]:
    """``floor(x^(num/den))`` and whether ``x^(num/den)`` is an integer, for integers ``x >= 0``.

    Exact: float64 for the bulk; a value within ``NEAR_INTEGER`` of an integer m is decided by
    ``m^den <= x^num`` in integers when ``num, den <= SMALL_EXPONENT``, else by mpmath at growing
    precision after the tie test (with ``gcd(num, den) = 1``, ``x^(num/den)`` is an integer iff x is a
    perfect den-th power; otherwise it is irrational and never equals m). Values above 2^53 and
    non-integer or negative x keep the float result (NaN for negative x).
    """
    g = math.gcd(num, den)
    num, den = num // g, den // g
    xf = np.atleast_1d(np.asarray(x, dtype=np.float64))
    q = num / den if num.bit_length() - den.bit_length() < 1000 else math.inf
    with np.errstate(all="ignore"):
        v = np.where(xf >= 0, xf, np.nan) ** q
        m = np.rint(v)
        near = np.abs(v - m) <= NEAR_INTEGER * np.maximum(1.0, v)
    out, is_int = np.floor(v), near.copy()
    if den > 1:                     # integer powers below 2^53 are exact in float64
        for i in np.flatnonzero(near & (xf == np.rint(xf)) & (v < 2.0**53)):
            out[i], is_int[i] = _decide(int(xf[i]), num, den, int(m[i]))
    shape = np.shape(x)
    return out.reshape(shape), is_int.reshape(shape)


def _decide(x: int, num: int, den: int, m: int) -> tuple[int, bool]:
    """floor and integrality of ``x^(num/den)`` known to lie within NEAR_INTEGER of the integer m."""
    if max(num, den) <= SMALL_EXPONENT:
        lhs, rhs = x**num, m**den
        return (m, lhs == rhs) if lhs >= rhs else (m - 1, False)
    root = round(x ** (1 / den))                 # x < 2^63: the den-th root is exact after rounding
    if root**den == x:
        return root**num, True
    import mpmath

    dps = 50
    while dps <= 10_000:            # irrational: some precision separates it from m
        with mpmath.workdps(dps):
            w = mpmath.exp(mpmath.log(x) * num / den)
            if abs(w - m) > mpmath.mpf(10) ** (15 - dps) * m:
                return (m if w > m else m - 1), False
        dps *= 2
    raise GLRError(f"cannot decide floor({x}^({num}/{den})) within 10000 digits")


def exact_fraction(alpha) -> Fraction:
    """alpha as the exact fraction of its shortest decimal (the number the spec string shows)."""
    return Fraction(np.format_float_positional(float(alpha), trim="-"))
