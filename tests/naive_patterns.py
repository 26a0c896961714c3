"""Definition-level references for the built-in families, written from their docstrings and
independent of the library: plain Python sets, and exact floors of rational powers for exponent:alpha."""
import math
from fractions import Fraction

import mpmath
import numpy as np


def _mp_floor(k: int, num: int, den: int) -> int:
    """``floor(k^(num/den))`` by mpmath at 50 digits; an integer within 1e-30 is confirmed in integers."""
    with mpmath.workdps(50):
        w = mpmath.power(k, mpmath.mpf(num) / den)
        m = int(mpmath.nint(w))
        if abs(w - m) < mpmath.mpf(10) ** -30 * max(m, 1):
            return m if k**num >= m**den else m - 1
        return int(mpmath.floor(w))


def exact_root_floors(alpha: str, kmax: int, k0: int = 1) -> np.ndarray:
    """``floor(k^(1/alpha))`` for k = k0..kmax, alpha the exact fraction of its decimal string (capped at
    2^63, beyond any length: ``exponent:0.001`` has ``2^1000``).

    Small problems (under 10^4 values): mpmath at 50 digits for every k. Large ones: float64 where
    the value lies at least 1e-12 (relative) from an integer (its float error is below 1e-14), mpmath
    for the others."""
    frac = Fraction(alpha)
    num, den = frac.denominator, frac.numerator
    if kmax - k0 < 10_000:
        return np.array([min(_mp_floor(k, num, den), 2**63) for k in range(k0, kmax + 1)], dtype=np.float64)
    k = np.arange(k0, kmax + 1, dtype=np.float64)
    with np.errstate(over="ignore"):
        v = k ** (num / den)
    out = np.floor(v)
    near = np.flatnonzero((np.abs(v - np.rint(v)) < 1e-12 * np.maximum(1.0, v)) & (v < 2.0**53))
    for i in near:
        out[i] = _mp_floor(int(k[i]), num, den)
    return out


def exponent_lag_list(alpha: str, n: int) -> list[int]:
    """The exponent:alpha lags <= n-1."""
    if Fraction(alpha) == 0:
        return [1] if n > 1 else []
    v = exact_root_floors(alpha, int(n ** float(Fraction(alpha))) + 3)
    return [int(x) for x in v if x <= n - 1]


def _lag_sets(lag_list, n):
    return [sorted(t - l for l in set(lag_list) if 1 <= l <= t) for t in range(n)]


def _digits(x, m, k):
    return [(x // m**j) % m for j in range(k)]


def naive_sets(spec: str, n: int):
    """A(t), B(t) straight from each family's definition (one term only)."""
    name, _, arg = spec.partition(":")
    diag = [[t] for t in range(n)]
    if name == "ssm":
        return diag, [[t - 1] if t else [] for t in range(n)]
    if name == "attention":
        return [list(range(t + 1)) for t in range(n)], [[] for _ in range(n)]
    if name == "window":
        w = int(arg)
        return [list(range(max(0, t - w + 1), t + 1)) for t in range(n)], [[] for _ in range(n)]
    if name == "lags":
        return diag, _lag_sets([int(x) for x in arg.split(",")], n)
    if name in ("power", "power2"):
        base = int(arg) if arg else 2
        return diag, _lag_sets([base**k for k in range(40) if base**k < 2 * n + 2], n)
    if name == "quadratic":
        return diag, _lag_sets([k * k + 1 for k in range(n + 1)], n)
    if name == "exponent":
        return diag, _lag_sets(exponent_lag_list(arg, n), n)
    if name == "fenwick":
        return diag, [sorted({((t - 1) >> k) << k for k in range(40)}) if t else [] for t in range(n)]
    if name == "blocks":
        c = int(arg) if arg else math.ceil(math.sqrt(n))
        return ([list(range(c * (t // c), t + 1)) for t in range(n)],
                [[c * (t // c) - 1] if t >= c else [] for t in range(n)])
    if name == "kron":
        rows = arg.split(",")
        m = len(rows)
        K = [[int(r[j]) if j < len(r) else 0 for j in range(m)] for r in rows]
        k = 1
        while m**k < n:
            k += 1
        return diag, [[s for s in range(t) if all(K[a][b] for a, b in zip(_digits(t, m, k), _digits(s, m, k)))]
                      for t in range(n)]
    raise AssertionError(spec)


def naive_union(spec, n):
    """``A(t)``, ``B(t)`` of a union of terms ``t1+t2+...``: the union of each term's sets."""
    a_sets, b_sets = [set() for _ in range(n)], [set() for _ in range(n)]
    for term in spec.split("+"):
        ta, tb = naive_sets(term, n)
        for t in range(n):
            a_sets[t] |= set(ta[t])
            b_sets[t] |= set(tb[t])
    return [sorted(x) for x in a_sets], [sorted(x) for x in b_sets]


def sets_to_table(sets) -> np.ndarray:
    """Sorted sets -> an int32 table padded with -1 (width = the longest set)."""
    width = max((len(s) for s in sets), default=0)
    out = np.full((len(sets), width), -1, dtype=np.int32)
    for t, s in enumerate(sets):
        out[t, : len(s)] = s
    return out
