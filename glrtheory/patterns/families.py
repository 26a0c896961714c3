"""The built-in pattern families. Each docstring states the supports ``A(t)``, ``B(t)`` for 0 <= t < n."""
from __future__ import annotations

import math

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


def exponent_lags(alpha: float, n: int) -> np.ndarray:
    """The lags ``floor(k^(1/alpha))`` for k >= 1 that are <= n-1 (alpha = 0: the single lag 1).

    There are ``ceil((t+1)^alpha) - 1``, i.e. Theta(t^alpha), such lags <= t: consecutive values of
    ``k^p`` with ``p = 1/alpha >= 1`` differ by at least 1, so the floors are distinct.
    """
    if alpha == 0:
        return np.array([1], dtype=np.int64)[: max(n - 1, 0)]
    p = 1.0 / alpha
    kmax = int(math.floor(n ** alpha)) + 2
    with np.errstate(over="ignore"):
        v = np.arange(1, kmax + 1, dtype=np.float64) ** p
    v = np.floor(v * (1 + 1e-12))          # guard k^p landing just below an integer
    return np.unique(v[v <= n - 1].astype(np.int64))


def exponent(alpha: float) -> Pattern:
    """Any complexity: ``A(t) = {t}``, ``B(t) = {t - floor(k^(1/alpha)) : k >= 1}``.

    Per-token cost Theta(t^alpha), total cost Theta(n^(1 + alpha)), for alpha in [0, 1]
    (alpha = 0: the single lag 1; alpha = 1: every lag, a dense B).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise GLRError(f"exponent alpha must be a finite number, got {alpha!r}")
    if not 0 <= alpha <= 1:
        raise GLRError(f"exponent alpha must lie in [0, 1], got {alpha}")
    alpha = float(alpha)
    return _lag_family("exponent:" + np.format_float_positional(alpha, trim="-"), lambda n: exponent_lags(alpha, n), exponent.__doc__)


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
