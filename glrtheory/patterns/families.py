"""The built-in pattern families. Each docstring states the supports ``A(t)``, ``B(t)`` for 0 <= t < n.

Every constructor returns a ``Pattern`` that carries its ``Term`` (family name, constructor arguments,
spec), so closed forms and reports read the parameters and never re-parse strings.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..checks import check_integer, check_real
from ..errors import GLRError
from .pattern import Pattern
from .rational_power import exact_fraction, floor_rational_power
from .structured import BlockSupport, KronSupport, blocks_carry_table, fenwick_table
from .support import LagSupport, TableSupport

_DIAG = (0,)


class Term(NamedTuple):
    """One family term of a pattern: the registry name, the constructor arguments and the spec."""

    family: str
    params: tuple
    spec: str


def with_term(p: Pattern, family: str, *params) -> Pattern:
    """p, marked as the family term ``family(*params)``."""
    p.terms = (Term(family, params, p.spec),)
    return p


def _empty_b(n: int) -> LagSupport:
    return LagSupport(n, (), strict=True)


def _diag_a(n: int) -> LagSupport:
    return LagSupport(n, _DIAG, strict=False)


def ssm() -> Pattern:
    """First order (linear RNN / diagonal SSM): ``A(t) = {t}``, ``B(t) = {t-1}``."""
    return with_term(Pattern.from_lags((0,), (1,), spec="ssm", doc=ssm.__doc__), "ssm")


def attention() -> Pattern:
    """Dense causal attention: ``A(t) = {0, ..., t}``, ``B(t) = {}``."""
    return with_term(Pattern("attention", lambda n: LagSupport(n, np.arange(n), strict=False), _empty_b,
                             doc=attention.__doc__), "attention")


def window(w: int) -> Pattern:
    """Sliding window of W inputs: ``A(t) = {max(0, t-W+1), ..., t}``, ``B(t) = {}``."""
    check_integer(w, "window W", 1)
    return with_term(Pattern(f"window:{w}", lambda n: LagSupport(n, np.arange(min(w, n)), strict=False),
                             _empty_b, doc=window.__doc__), "window", w)


def lags(*ls: int) -> Pattern:
    """Explicit translation-invariant lags: ``A(t) = {t}``, ``B(t) = {t - l : l in L, l <= t}``."""
    if not ls:
        raise GLRError("lags needs at least one lag")
    p = Pattern.from_lags((0,), ls, spec="lags:" + ",".join(str(l) for l in ls), doc=lags.__doc__)
    return with_term(p, "lags", *ls)


def _lag_family(spec: str, lag_fn, doc: str) -> Pattern:
    """A diagonal-A pattern whose B-lags ``lag_fn(n)`` (sorted) are all lags <= n-1."""
    return Pattern(spec, _diag_a, lambda n: LagSupport(n, lag_fn(n), strict=True), doc=doc)


def power(base: int = 2) -> Pattern:
    """Power lags: ``A(t) = {t}``, ``B(t) = {t - b^k : k >= 0, b^k <= t}``; O(log_b t) per token."""
    check_integer(base, "power base b", 2)

    def lag_fn(n: int) -> np.ndarray:
        out, l = [], 1
        while l <= n - 1:
            out.append(l)
            l *= base
        return np.array(out, dtype=np.int64)

    spec = "power2" if base == 2 else f"power:{base}"
    return with_term(_lag_family(spec, lag_fn, power.__doc__), "power", base)


def quadratic() -> Pattern:
    """Quadratic lags: ``A(t) = {t}``, ``B(t) = {t - (k^2 + 1) : k >= 0}``; O(sqrt t) per token."""

    def lag_fn(n: int) -> np.ndarray:
        k = np.arange(math.isqrt(max(n - 2, 0)) + 1, dtype=np.int64)
        out = k * k + 1
        return out[out <= n - 1]

    return with_term(_lag_family("quadratic", lag_fn, quadratic.__doc__), "quadratic")


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
    alpha = check_real(alpha, "exponent alpha", 0, 1)
    p = _lag_family("exponent:" + np.format_float_positional(alpha, trim="-"), lambda n: exponent_lags(alpha, n),
                    exponent.__doc__)
    return with_term(p, "exponent", alpha)


def fenwick() -> Pattern:
    """Aligned binary counter (log-linear attention): ``A(t) = {t}``,
    ``B(t) = {2^k floor((t-1) / 2^k) : k >= 0}`` for t >= 1, i.e. t-1 with its lowest set bits cleared
    one at a time down to 0; ``|B(t)| = popcount(t-1) + 1``, O(log n) states live."""
    return with_term(Pattern("fenwick", _diag_a, lambda n: TableSupport(n, fenwick_table(n), strict=True),
                             doc=fenwick.__doc__), "fenwick")


def blocks(block: int | None = None) -> Pattern:
    """Two-level blocks of size C (default ``ceil(sqrt n)``): with block start ``c(t) = C floor(t/C)``,
    ``A(t) = {c(t), ..., t}`` (dense within the block) and ``B(t) = {c(t) - 1}`` when c(t) > 0
    (the last state of the previous block carries the past). O(C) per token and cache."""
    if block is not None:
        check_integer(block, "block size C", 1)

    def size(n: int) -> int:
        return block if block is not None else max(1, math.isqrt(n - 1) + 1)

    spec = "blocks" if block is None else f"blocks:{block}"
    p = Pattern(spec, lambda n: BlockSupport(n, size(n)),
                lambda n: TableSupport(n, blocks_carry_table(n, size(n)), strict=True), doc=blocks.__doc__)
    return with_term(p, "blocks", block)


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
    p = Pattern(spec, _diag_a, lambda n: KronSupport(n, K, strict=True), doc=kron.__doc__)
    return with_term(p, "kron", tuple(tuple(bool(x) for x in row) for row in K))
