"""Fitted asymptotic classes, for patterns without closed forms, and the families a fixed lag list comes from.

``fit_classes(p, n)`` measures the total cost ``nnz_a + nnz_b``, the max decode cost and the cache peak
exactly at lengths ``m = n_lo, 2 n_lo, ..., n_hi`` and fits ``c m^a (log m)^b`` to each: the slope ``a`` of
log-cost against log m by least squares over the upper half of the range, then the class
``m^a' (log m)^b`` (``a'`` a simple fraction, b in {0, 1, 2}) whose ratio to the counts varies least
(the test for log factors: a log factor wins only when it cuts that variation by ``LOG_GAIN``). These
are measurements over a finite range, reported as ``fitted`` with the range and the residual: never a
proof.

``fixed_lags(p, n)`` tells whether both sides are lag sets that stop growing with n (then closed forms
treat them as constant), and ``lag_families`` names the built-in families whose lags, truncated at the
largest lag, are exactly that list (``lags:1,2,4,...,2^k`` is ``power2`` truncated at 2^k).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import GLRError, WorkLimitError
from ..patterns import Pattern
from .counts import check_pattern, decode_costs, supports, total_cost
from .liveness import cache_peak

#: Fitted lengths: powers of two from FIT_MAX_N / 2^FIT_DOUBLINGS (at least FIT_MIN_N) up to
#: max(n, FIT_MAX_N), within the pattern's own limit.
FIT_MAX_N = 2**16
FIT_DOUBLINGS = 9
FIT_MIN_N = 8
#: Fewest lengths a fit accepts.
FIT_MIN_POINTS = 4
#: A log factor must cut the residual by this factor to be reported.
LOG_GAIN = 2.0
#: Candidate exponents: fractions with denominators up to 5, in [0, 3].
EXPONENTS = sorted({Fraction(k, d) for d in range(1, 6) for k in range(0, 3 * d + 1)})

QUANTITIES = {"total": total_cost, "decode": lambda p, m: int(decode_costs(p, m).max()), "cache": cache_peak}


def fit_lengths(p: Pattern, n: int) -> list[int]:
    """The lengths of the fit: powers of two up to ``max(n, FIT_MAX_N)`` (capped by ``p.max_length``)."""
    hi = max(n, FIT_MAX_N)
    if p.max_length is not None:
        hi = min(hi, p.max_length)
    lo = max(FIT_MIN_N, hi >> FIT_DOUBLINGS)
    ms = [lo << k for k in range(FIT_DOUBLINGS + 1) if lo << k < hi]
    return ms + [hi]


def _class_string(a: Fraction, b: int) -> str:
    import sympy as sp

    m = sp.Symbol("n", positive=True)
    return str(m ** sp.Rational(a.numerator, a.denominator) * sp.log(m) ** b)


def fit_class(ms, ys, least: Fraction = Fraction(0)) -> dict:
    """Fit ``c m^a (log m)^b`` to positive counts ys at lengths ms (see the module docstring), ``a >= least`` (a
    work that reads every position is at least linear: over a short range a log factor can pass for a power).

    Returns ``{"class", "slope", "residual"}``: the class as a sympy string, the least-squares slope of
    ``log y`` against ``log m`` over the upper half, and the residual of the class, the largest deviation
    of ``log(y / class)`` from its mean over that half (0: exact up to a constant factor).
    """
    ms, ys = np.asarray(ms, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if (ys == 0).all():
        return {"class": "0", "slope": 0.0, "residual": 0.0}
    if (ys <= 0).any():
        raise GLRError("a fitted class needs positive counts at every fitted length")
    upper = len(ms) // 2 - (len(ms) % 2 == 0 and len(ms) >= 2 * FIT_MIN_POINTS)
    half = slice(min(upper, max(0, len(ms) - FIT_MIN_POINTS)), None)   # never fewer than FIT_MIN_POINTS
    x, y = np.log(ms[half]), np.log(ys[half])
    slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
    best = None
    for b in (0, 1, 2):
        for a in (e for e in EXPONENTS if e >= least):
            r = y - float(a) * x - b * np.log(x)
            res = float(np.abs(r - r.mean()).max())
            score = res * (LOG_GAIN ** b)
            if best is None or score < best[0]:
                best = (score, a, b, res)
    _, a, b, res = best
    return {"class": _class_string(a, b), "slope": round(slope, 4), "residual": round(res, 4)}


def fit_classes(p: Pattern, n: int) -> dict:
    """Fitted classes of the total cost, max decode cost and cache peak of p.

    Parameters
    ----------
    p : Pattern
        Any pattern that gives its supports at the fitted lengths (``fit_lengths``).
    n : int
        The length of the report; the fit covers up to ``max(n, FIT_MAX_N)``.

    Returns
    -------
    dict
        ``{"basis": "fitted", "range": [lo, hi], "points": k, "total": {...}, "decode": {...},
        "cache": {...}}``, each quantity as ``fit_class`` gives it.

    Raises
    ------
    GLRError
        Fewer than ``FIT_MIN_POINTS`` lengths (a pattern defined only up to a small n).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> fit = fit_classes(Pattern.from_lags((0,), (1, 2)) + Pattern.from_spec("fenwick"), 4096)
    >>> fit["total"]["class"], fit["cache"]["class"]
    ('n*log(n)', 'log(n)')
    """
    p = check_pattern(p)
    supports(p, n)
    ms = fit_lengths(p, n)
    if len(ms) < FIT_MIN_POINTS:
        raise GLRError(f"fitting classes of {p.spec!r} needs lengths up to at least {FIT_MIN_N << 3}; the "
                       f"pattern is defined only up to n={p.max_length}")
    out = {"basis": "fitted", "range": [ms[0], ms[-1]], "points": len(ms)}
    counts = [[quantity(p, m) for quantity in QUANTITIES.values()] for m in ms]   # each length's supports once
    for name, ys in zip(QUANTITIES, zip(*counts)):
        out[name] = fit_class(ms, list(ys))
    return out


# -- fixed lag lists ------------------------------------------------------------------------------------
#: Built-in lag-set families whose lags grow with n (``exponent:0``, the lag 1 alone, does not), however far
#: their next lag lies; other families' lag sets are judged by comparing them at two lengths.
GROWING_LAG_FAMILIES = ("power", "quadratic", "exponent")


def _grows(term) -> bool:
    return term.family in GROWING_LAG_FAMILIES and not (term.family == "exponent" and term.params[0] == 0)


def fixed_lags(p: Pattern, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(a_lags, b_lags)`` when both sides of p are lag sets that stay the same from n on: no family term of p
    grows (``GROWING_LAG_FAMILIES``; ``power:1000`` has the lag 1 alone up to n = 1000), and the sets are equal at
    ``m = max(n, 2 (L + 1))`` and 2m, L the largest lag (all that other patterns are judged by); None otherwise
    (also when a side's index table is over its limit: lag sets build no table, so such a side is not one)."""
    try:
        sa, sb = supports(p, n)
    except WorkLimitError:
        return None
    if sa.lags is None or sb.lags is None or p.max_length is not None or any(map(_grows, p.terms)):
        return None
    largest = int(max(sa.lags.max(initial=0), sb.lags.max(initial=0)))
    m = max(n, 2 * (largest + 1))
    first, second = p.support_a(m), p.support_b(m)
    again_a, again_b = p.support_a(2 * m), p.support_b(2 * m)
    same = all(x.lags is not None and y.lags is not None and np.array_equal(x.lags, y.lags)
               for x, y in ((first, again_a), (second, again_b)))
    return (first.lags, second.lags) if same else None


def lag_families(b_lags) -> list[tuple[str, int, int | None]]:
    """The built-in families with ``A(t) = {t}`` whose B-lags equal ``b_lags`` at some length: ``power:b``
    (``power2``), ``quadratic`` and ``exponent:alpha`` (alpha to two decimals, fewest decimals first) are tried,
    in that order. Each match is ``(spec, lo, hi)``: the family has exactly these lags for ``lo <= n <= hi`` (hi
    None when its next lag lies beyond 4 lo)."""
    lags = np.asarray(b_lags, dtype=np.int64)
    if lags.size < 2:
        return []
    lo = int(lags[-1]) + 1
    candidates = []
    if lags[0] == 1 and lags[1] >= 2:
        candidates.append("power2" if lags[1] == 2 else f"power:{int(lags[1])}")
    candidates.append("quadratic")
    # exponent:alpha has ceil(lo^alpha) - 1 lags below lo: lags.size of them where
    # log(size) / log(lo) < alpha <= log(size + 1) / log(lo); every alpha of two decimals there (and one beyond),
    # the fewest decimals first (exponent:0.5 before exponent:0.49, both [1, 4, 9, 16])
    low, high = (math.log(k) / math.log(lo) for k in (lags.size, lags.size + 1))
    alphas = range(max(1, math.floor(low * 100)), min(100, math.ceil(high * 100) + 1) + 1)
    candidates += [f"exponent:{a / 100:g}" for a in sorted(alphas, key=lambda a: (a % 10 != 0, a % 100 != 0, a))]
    out = []
    for spec in candidates:
        family = Pattern.from_spec(spec)
        if np.array_equal(family.support_b(lo).lags, lags):
            later = family.support_b(4 * lo).lags
            nxt = later[later >= lo]
            out.append((spec, lo, int(nxt[0]) if nxt.size else None))
    return out
