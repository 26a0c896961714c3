"""Closed forms of the built-in families (the ``forms`` builders of the family registry), each derived
in ``proofs/`` and checked against exact counts in ``tests/test_symbolic_costs.py``. Every builder takes
the arguments of its family's constructor and returns ``CostForms`` (see ``glrtheory.symbolic.costs``).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import sympy as sp

from ..patterns.rational_power import exact_fraction
from .costs import N_SYM, T_SYM, Bounds, CostForms, popcount

n, t = N_SYM, T_SYM


def _ilog(x, base):
    """``floor(log_base x)`` for x >= 1."""
    return sp.floor(sp.log(x) / sp.log(base))


def _at_least(k: int, expr, below=0):
    """``expr`` for n >= k, ``below`` for smaller n."""
    return sp.Piecewise((below, N_SYM < k), (expr, True))


def _ones_from(k: int, var=T_SYM):
    """Indicator ``[var >= k]`` for integer var."""
    return sp.Piecewise((0, var < k), (1, True))


LOG2 = sp.log(2)


# -- the families -------------------------------------------------------------------------------------

def ssm_forms() -> CostForms:
    return CostForms("ssm", n, n - 1, 1 + _ones_from(1), sp.Min(1, n - 1), n - 1,
                     n, sp.Integer(1), sp.Integer(1), 2, 2, 1)


def attention_forms() -> CostForms:
    return CostForms("attention", n * (n + 1) / 2, sp.Integer(0), t + 1, n - 1, sp.Integer(0),
                     n**2, n, n, sp.Rational(1, 2), 1, 1)


def window_forms(w: int) -> CostForms:
    m = sp.Min(n, w)
    cache_class = sp.Integer(1) if w > 1 else sp.Integer(0)
    return CostForms(f"window:{w}", m * (m + 1) / 2 + (n - m) * w, sp.Integer(0), sp.Min(t + 1, w),
                     sp.Min(n, w) - 1, sp.Piecewise((0, n <= w), (sp.oo, True)),
                     n, sp.Integer(1), cache_class, w, w, w - 1 if w > 1 else None)


def _largest_lag(lags: list[int], var):
    """``max{l in lags : l <= var}`` (0 when none) and the lag before it, as Piecewise in var."""
    pieces_last, pieces_prev = [], []
    for i, l in enumerate(lags):
        nxt = lags[i + 1] if i + 1 < len(lags) else None
        cond = var < nxt if nxt is not None else sp.true
        pieces_last.append((l, cond))
        pieces_prev.append((lags[i - 1] if i else 0, cond))
    first = (var < lags[0])
    return (sp.Piecewise((0, first), *pieces_last), sp.Piecewise((0, first), *pieces_prev))


def lag_cache_peak(last, prev):
    """Cache of a diagonal-A lag pattern with nondecreasing gaps (proofs/lag_cache_linear):
    ``min(l_k, n - l_k + l_{k-1})`` with l_k the largest lag <= n-1 and l_{k-1} the one before (0)."""
    return sp.Max(0, sp.Min(last, n - last + prev))


def lags_forms(*lags: int) -> CostForms:
    spec = "lags:" + ",".join(map(str, lags))
    lags = sorted(set(lags))
    nnz_b = sp.Add(*[sp.Max(0, n - l) for l in lags])
    decode = 1 + sp.Add(*[_ones_from(l) for l in lags])
    last, prev = _largest_lag(lags, n - 1)
    gaps = np.diff([0] + lags)
    if np.all(np.diff(gaps) >= 0):
        cache = lag_cache_peak(last, prev)
    else:
        cache = Bounds(sp.Max(0, *[sp.Min(l, n - l) for l in lags]), lag_cache_peak(last, prev))
    lmax = lags[-1]
    if lags == [1]:
        hops = n - 1
    elif lags[0] == 1:   # greedy: floor(d / lmax) hops of lmax, the rest with lag 1
        hops = Bounds(sp.ceiling((n - 1) / sp.Integer(lmax)), sp.floor((n - 1) / sp.Integer(lmax)) + lmax - 1)
    else:                # d = 1 is unreachable
        hops = _at_least(2, sp.oo)
    k = len(lags)
    return CostForms(spec, n, nnz_b, decode, cache, hops, n, sp.Integer(1), sp.Integer(1), 1 + k, 1 + k, lmax)


def power_forms(b: int) -> CostForms:
    k = _ilog(n - 1, b)                               # largest lag b^k <= n-1
    nnz_b = (k + 1) * n - (b ** (k + 1) - 1) / sp.Integer(b - 1)
    decode = sp.Piecewise((1, t < 1), (_ilog(t, b) + 2, True))
    cache = sp.Min(b**k, n - b**k + sp.Integer(b) ** (k - 1))
    if b == 2:
        hops = _ilog(n, 2)                            # max popcount of d <= n-1
    else:                                             # max base-b digit sum of d <= n-1
        top = sp.floor((n - 1) / sp.Integer(b) ** k)  # leading digit of n-1
        hops = Bounds(top - 1 + (b - 1) * k, top + (b - 1) * k)
        hops = Bounds(_at_least(2, hops.lower), _at_least(2, hops.upper))
    spec = "power2" if b == 2 else f"power:{b}"
    return CostForms(spec, n, _at_least(2, nnz_b), decode, _at_least(2, cache), hops,
                     n * sp.log(n), sp.log(n), n, 1 / sp.log(b), 1 / sp.log(b),
                     Bounds(sp.Rational(1, b), sp.Rational(b, 2 * b - 1)))


def quadratic_forms() -> CostForms:
    k = sp.floor(sp.sqrt(n - 2))                      # largest lag k^2 + 1 <= n-1
    nnz_b = (k + 1) * (n - 1) - k * (k + 1) * (2 * k + 1) / 6
    decode = sp.Piecewise((1, t < 1), (sp.floor(sp.sqrt(t - 1)) + 2, True))
    cache = sp.Min(k**2 + 1, n - 2 * k + 1)
    hops = sp.Piecewise((0, n < 2), (1, n < 4), (2, n < 9), (3, n < 59), (4, True))
    return CostForms("quadratic", n, _at_least(2, nnz_b), decode, _at_least(2, cache), hops,
                     n ** sp.Rational(3, 2), sp.sqrt(n), n, sp.Rational(2, 3), 1, 1)


def exponent_forms(alpha: float) -> CostForms:
    """alpha as the exact fraction of its shortest decimal, as the family reads it."""
    spec = "exponent:" + np.format_float_positional(float(alpha), trim="-")
    alpha = sp.Rational(exact_fraction(alpha))
    if alpha == 0:
        return dataclasses.replace(ssm_forms(), spec=spec)
    if alpha == 1:
        return CostForms(spec, n, n * (n - 1) / 2, t + 1, n - 1, sp.Min(1, n - 1),
                         n**2, n, n, sp.Rational(1, 2), 1, 1)
    p = 1 / alpha
    decode = sp.ceiling((t + 1) ** alpha)             # 1 + #{k >= 1 : floor(k^p) <= t}
    # nnz_b = sum_{m=1}^{n} (ceil(m^alpha) - 1) and int_0^n x^a <= sum_{m<=n} m^a <= int_1^{n+1} x^a
    nnz_b = Bounds(n ** (1 + alpha) / (1 + alpha) - n, ((n + 1) ** (1 + alpha) - 1) / (1 + alpha))
    k = sp.ceiling(n**alpha) - 1                      # lags floor(j^p) <= n-1 for j = 1..k
    last, prev = sp.floor(k**p), sp.floor((k - 1) ** p)
    upper = lag_cache_peak(last, prev)
    cache = Bounds(_at_least(2, upper - 1), _at_least(2, upper))
    if alpha == sp.Rational(1, 2):                   # sums of squares: Lagrange / Legendre
        hops = sp.Piecewise((n - 1, n < 4), (3, n < 8), (4, True))
    else:   # lag 1 is always there. The true diameter stays bounded (a Waring problem for floor(k^p),
        # e.g. 12 for alpha = 0.3 up to n = 130) but has no known closed form: these bounds are loose.
        hops = Bounds(sp.Min(1, n - 1), n - 1)
    return CostForms(spec, n, nnz_b, decode, cache, hops, n ** (1 + alpha), n**alpha, n,
                     1 / (1 + alpha), 1, 1)


def fenwick_forms() -> CostForms:
    m = n - 1
    kk = _ilog(m, 2)
    # nnz_b = m + S(m), S(m) = sum_{x<m} popcount(x): McIlroy's upper bound (m/2) log2 m, and the
    # per-bit lower bound sum_{j<=K} (m/2 - 2^(j-1)), K = floor(log2 m) (proofs/fenwick_cache).
    lower = m + (kk + 1) * m / 2 - 2**kk + sp.Rational(1, 2)
    upper = m + m * sp.log(m) / (2 * LOG2)
    nnz_b = Bounds(_at_least(2, lower), _at_least(2, upper))
    decode = sp.Piecewise((1, t < 1), (popcount(t - 1) + 2, True))
    cache = sp.ceiling(sp.log(n) / LOG2)
    hops = sp.Piecewise((n - 1, n < 3), (sp.ceiling(sp.log(n - 1) / LOG2), True))
    return CostForms("fenwick", n, nnz_b, decode, cache, hops, n * sp.log(n), sp.log(n), sp.log(n),
                     1 / (2 * LOG2), 1 / LOG2, 1 / LOG2)


def blocks_forms(c: int | None = None) -> CostForms:
    C = sp.ceiling(sp.sqrt(n)) if c is None else sp.Integer(c)
    q, r = sp.floor(n / C), n - C * sp.floor(n / C)
    nnz_a = q * C * (C + 1) / 2 + r * (r + 1) / 2
    nnz_b = sp.Max(0, n - C)
    decode = t - C * sp.floor(t / C) + 1 + sp.Min(1, sp.floor(t / C))
    cache = sp.Max(0, sp.Min(C - 1, n - 1), sp.Min(C, n - C))
    hops = sp.floor((n - 1) / C)
    if c is None:
        return CostForms("blocks", nnz_a, nnz_b, decode, cache, hops, n ** sp.Rational(3, 2), sp.sqrt(n),
                         sp.sqrt(n), sp.Rational(1, 2), 1, 1)
    return CostForms(f"blocks:{c}", nnz_a, nnz_b, decode, cache, hops, n, sp.Integer(1),
                     sp.Integer(1), sp.Rational(c + 3, 2), c + 1, c)


def kron_forms(base) -> CostForms:
    K = np.asarray(base, dtype=np.int64)
    spec = "kron:" + ",".join("".join(str(int(K[i, j])) for j in range(i + 1)) for i in range(len(K)))
    m = K.shape[0]
    rows = K.sum(axis=1)
    S, rmax = int(K.sum()), int(rows.max())
    lo_k, hi_k = _ilog(n, m), sp.ceiling(sp.log(n) / sp.log(m))
    # total(n) = sum_{t<n} prod_j rowsum(t_j) is nondecreasing and equals S^k at n = m^k
    nnz_b = Bounds(S**lo_k - n, S**hi_k - n)
    decode = Bounds(sp.Integer(1), sp.Integer(rmax) ** sp.ceiling(sp.log(t + 1) / sp.log(m)))
    # two positions whose digits are not ordered digit-wise never reach (K is lower triangular):
    # s = 1, t = m is such a pair; below n = m + 1, hops are the distances in the digit graph of K
    dist = _digit_distances(K)
    pieces = [(0, n < 2)] + [(_finite(dist[: j + 1, : j + 1].max()), n < j + 2) for j in range(1, m)]
    hops = sp.Piecewise(*pieces, (sp.oo, True))
    below = [i for i in range(1, m) if K[i, 0]]
    if below:   # all s < m^j stay live until s + i m^j (i = first row with K[i, 0] = 1)
        i = below[0]
        cache = Bounds(_at_least(i + 1, sp.Integer(m) ** _ilog(n / sp.Integer(i + 1), m)), n - 1)
        theta_cache, const_cache = n, Bounds(sp.Rational(1, m * (i + 1)), 1)
    else:
        cache = Bounds(sp.Integer(0), sp.Max(0, n - 1))
        theta_cache, const_cache = None, None
    if S == m:  # identity: B is empty
        return CostForms(spec, n, sp.Integer(0), sp.Integer(1), sp.Integer(0), sp.Piecewise((0, n < 2), (sp.oo, True)),
                         n, sp.Integer(1), sp.Integer(0), 1, 1, None)
    gamma = sp.log(S) / sp.log(m)
    theta_decode = n ** (sp.log(rmax) / sp.log(m))
    return CostForms(spec, n, nnz_b, decode, cache, hops, n**gamma, theta_decode, theta_cache,
                     Bounds(sp.Rational(1, S), S), Bounds(sp.Rational(1, rmax), rmax), const_cache)


def _finite(x):
    return sp.oo if np.isinf(x) else int(x)


def _digit_distances(K: np.ndarray) -> np.ndarray:
    """Least B-hops between single digits x <= y of a Kronecker base (inf if unreachable)."""
    m = K.shape[0]
    d = np.where(K.astype(bool), 1.0, np.inf).T      # d[x, y]: edge x -> y when K[y, x]
    np.fill_diagonal(d, 0.0)
    for k in range(m):                                 # Floyd-Warshall on m <= 16 digits
        d = np.minimum(d, d[:, [k]] + d[[k], :])
    return np.triu(d)


