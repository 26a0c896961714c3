"""Exact counts at length n: ``nnz_a``, ``nnz_b``, the per-token decode cost and the total cost.

Every function takes a ``Pattern`` and a length n; the supports come from ``supports(p, n)``, which
validates both and keeps the last few (building one can take a second at n = 2^20).
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import GLRError, WorkLimitError
from ..patterns import Pattern
from ..patterns.support import Support, check_length

#: Largest length n the exact analysis accepts (O(n) arrays of int64; about a second per pass at 2^24).
ANALYZE_MAX_N = 2**24
#: Largest index table read by the analysis (entries n * width; int32).
TABLE_MAX_ENTRIES = 2**27


def check_pattern(p) -> Pattern:
    """``p`` itself when it is a ``Pattern``; a ``GLRError`` otherwise."""
    if not isinstance(p, Pattern):
        raise GLRError(f"expected a Pattern, got {type(p).__name__}")
    return p


@functools.lru_cache(maxsize=4)
def cached_supports(p: Pattern, n: int) -> tuple[Support, Support] | WorkLimitError:
    """The two supports, or the ``WorkLimitError`` that building them raised (kept too: a report asks for the
    supports once per quantity, and a union can build seconds of tables before its merged table is refused)."""
    try:
        return p.support_a(n), p.support_b(n)
    except WorkLimitError as exc:
        return exc


def supports(p: Pattern, n: int) -> tuple[Support, Support]:
    """The A-side and B-side supports of p at length n, validated (``1 <= n <= ANALYZE_MAX_N``) and cached."""
    n = check_length(n)
    if n > ANALYZE_MAX_N:
        raise GLRError(f"exact analysis is limited to n <= 2^24 = {ANALYZE_MAX_N}, got n={n}")
    built = cached_supports(check_pattern(p), n)
    if isinstance(built, WorkLimitError):
        raise WorkLimitError(str(built))
    return built


def nnz(p: Pattern, n: int) -> tuple[int, int]:
    """``(nnz_a, nnz_b) = (sum_t |A(t)|, sum_t |B(t)|)``."""
    sa, sb = supports(p, n)
    return int(sa.counts().sum()), int(sb.counts().sum())


def total_cost(p: Pattern, n: int) -> int:
    """``nnz_a + nnz_b``: the multiply-adds of a full forward pass (state-sized)."""
    return sum(nnz(p, n))


def decode_costs(p: Pattern, n: int) -> np.ndarray:
    """``|A(t)| + |B(t)|`` for every t: state-sized multiply-adds to produce h_t while decoding."""
    sa, sb = supports(p, n)
    return sa.counts() + sb.counts()
