"""The built-in pattern families. Each docstring states the supports ``A(t)``, ``B(t)`` for 0 <= t < n."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import GLRError
from .pattern import Pattern
from .structured import BlockSupport, KronSupport, blocks_carry_table, fenwick_table
from .support import LagSupport, TableSupport, check_integer

_DIAG = (0,)


def _empty_b(n: int) -> LagSupport:
    return LagSupport(n, (), strict=True)


def _diag_a(n: int) -> LagSupport:
    return LagSupport(n, _DIAG, strict=False)


def ssm() -> Pattern:
    """First order (linear RNN / diagonal SSM): ``A(t) = {t}``, ``B(t) = {t-1}``."""
    return Pattern.from_lags((0,), (1,), spec="ssm", doc=ssm.__doc__)


def attention() -> Pattern:
    """Dense causal attention: ``A(t) = {0, ..., t}``, ``B(t) = {}``."""
    return Pattern("attention", lambda n: LagSupport(n, np.arange(n), strict=False), _empty_b,
                   doc=attention.__doc__)


def window(w: int) -> Pattern:
    """Sliding window of W inputs: ``A(t) = {max(0, t-W+1), ..., t}``, ``B(t) = {}``."""
    _positive(w, "window W")
    return Pattern(f"window:{w}", lambda n: LagSupport(n, np.arange(min(w, n)), strict=False), _empty_b,
                   doc=window.__doc__)


def lags(*ls: int) -> Pattern:
    """Explicit translation-invariant lags: ``A(t) = {t}``, ``B(t) = {t - l : l in L, l <= t}``."""
    if not ls:
        raise GLRError("lags needs at least one lag")
    return Pattern.from_lags((0,), ls, spec="lags:" + ",".join(str(l) for l in ls), doc=lags.__doc__)


def _lag_family(spec: str, lag_fn, doc: str) -> Pattern:
    """A diagonal-A pattern whose B-lags ``lag_fn(n)`` (sorted) are all lags <= n-1."""
    return Pattern(spec, _diag_a, lambda n: LagSupport(n, lag_fn(n), strict=True), doc=doc)


def power(base: int = 2) -> Pattern:
    """Power lags: ``A(t) = {t}``, ``B(t) = {t - b^k : k >= 0, b^k <= t}``; O(log_b t) per token."""
    _positive(base, "power base b", minimum=2)

    def lag_fn(n: int) -> np.ndarray:
        out, l = [], 1
        while l <= n - 1:
            out.append(l)
            l *= base
        return np.array(out, dtype=np.int64)

    spec = "power2" if base == 2 else f"power:{base}"
    return _lag_family(spec, lag_fn, power.__doc__)


def quadratic() -> Pattern:
    """Quadratic lags: ``A(t) = {t}``, ``B(t) = {t - (k^2 + 1) : k >= 0}``; O(sqrt t) per token."""

    def lag_fn(n: int) -> np.ndarray:
        k = np.arange(math.isqrt(max(n - 2, 0)) + 1, dtype=np.int64)
        out = k * k + 1
        return out[out <= n - 1]

    return _lag_family("quadratic", lag_fn, quadratic.__doc__)


def exponent_lags(alpha, n: int) -> np.ndarray:
    """The lags ``floor(k^(1/alpha))`` for k >= 1 that are <= n-1 (alpha = 0: the single lag 1), exact.

    alpha is taken as the exact fraction ``r/s`` of its shortest decimal (the number its spec shows),
    so ``floor(k^(s/r))`` is decided in integers (``floor_rational_power``). There are
    ``ceil(n^alpha) - 1``, i.e. Theta(n^alpha), such lags: consecutive values of ``k^p`` with
    ``p = 1/alpha >= 1`` differ by at least 1, so the floors are distinct.
    """
    frac = exact_fraction(alpha)
    if frac == 0:
        return np.array([1], dtype=np.int64)[: max(n - 1, 0)]
    kmax = int(math.floor(n ** float(frac))) + 2
    v, _ = floor_rational_power(np.arange(1, kmax + 1), frac.denominator, frac.numerator)
    return v[v <= n - 1].astype(np.int64)


def exponent(alpha: float) -> Pattern:
    """Any complexity: ``A(t) = {t}``, ``B(t) = {t - floor(k^(1/alpha)) : k >= 1}``.

    Per-token cost Theta(t^alpha), total cost Theta(n^(1 + alpha)), for alpha in [0, 1]
    (alpha = 0: the single lag 1; alpha = 1: every lag, a dense B). alpha means the exact fraction of
    its shortest decimal, e.g. 0.95 = 19/20, and the lags are exact integers at every n.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise GLRError(f"exponent alpha must be a finite number, got {alpha!r}")
    if not 0 <= alpha <= 1:
        raise GLRError(f"exponent alpha must lie in [0, 1], got {alpha}")
    alpha = float(alpha)
    return _lag_family("exponent:" + np.format_float_positional(alpha, trim="-"), lambda n: exponent_lags(alpha, n), exponent.__doc__)


# -- exact floor of rational powers (exponent:alpha) ------------------------------------------------

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


def fenwick() -> Pattern:
    """Aligned binary counter (log-linear attention): ``A(t) = {t}``,
    ``B(t) = {2^k floor((t-1) / 2^k) : k >= 0}`` for t >= 1, i.e. t-1 with its lowest set bits cleared
    one at a time down to 0; ``|B(t)| = popcount(t-1) + 1``, O(log n) states live."""
    return Pattern("fenwick", _diag_a, lambda n: TableSupport(n, fenwick_table(n), strict=True),
                   doc=fenwick.__doc__)


def blocks(block: int | None = None) -> Pattern:
    """Two-level blocks of size C (default ``ceil(sqrt n)``): with block start ``c(t) = C floor(t/C)``,
    ``A(t) = {c(t), ..., t}`` (dense within the block) and ``B(t) = {c(t) - 1}`` when c(t) > 0
    (the last state of the previous block carries the past). O(C) per token and cache."""
    if block is not None:
        _positive(block, "block size C")

    def size(n: int) -> int:
        return block if block is not None else max(1, math.isqrt(n - 1) + 1)

    spec = "blocks" if block is None else f"blocks:{block}"
    return Pattern(spec, lambda n: BlockSupport(n, size(n)),
                   lambda n: TableSupport(n, blocks_carry_table(n, size(n)), strict=True),
                   doc=blocks.__doc__)


def kron(base) -> Pattern:
    """Kronecker powers of a small base mask K (m x m, m >= 2, lower triangular, unit diagonal):
    ``A(t) = {t}``, ``B(t) = {s < t : K[t_j, s_j] = 1 for every base-m digit j}``.
    Example ``kron:1,11`` (K = [[1,0],[1,1]]): ``s in B(t)`` iff the bits of s are a proper subset of
    those of t; ``|B(t)| = 2^popcount(t) - 1`` and the total cost is Theta(n^log2(3))."""
    K = np.asarray(base)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 2:
        raise GLRError(f"kron base must be a square mask of size >= 2, got shape {K.shape}")
    if not np.isin(K, (0, 1)).all():
        raise GLRError("kron base must hold only 0 and 1")
    if np.triu(K, 1).any():
        raise GLRError("kron base must be lower triangular (causal)")
    if not np.all(np.diag(K) == 1):
        raise GLRError("kron base must have a unit diagonal")
    K = K.astype(bool)
    spec = "kron:" + ",".join("".join("1" if K[i, j] else "0" for j in range(i + 1)) for i in range(len(K)))
    return Pattern(spec, _diag_a, lambda n: KronSupport(n, K, strict=True), doc=kron.__doc__)


def _positive(v, what: str, minimum: int = 1) -> None:
    check_integer(v, what, minimum)
