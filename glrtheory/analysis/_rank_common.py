"""Shared pieces of the Hankel-rank strategies: the cut bounds, the tables and the refusals that name the
largest n that fits."""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from .counts import TABLE_MAX_ENTRIES, supports
from .liveness import live_profile


def cut_bounds(p: Pattern, n: int) -> np.ndarray:
    """``min(live set after t, t + 1, n - t - 1)`` for t < n - 1: an upper bound on the Hankel rank at cut t
    (the live set is a vertex cut between past inputs and future states)."""
    t = np.arange(max(n - 1, 0), dtype=np.int64)
    return np.minimum(live_profile(p, n)[: n - 1], np.minimum(t + 1, n - 1 - t))


def largest_fitting(work, n: int) -> int:
    """The largest m < n with ``work(m) <= 0`` (work returns the excess over the limit; 0 if none)."""
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            fits = work(mid) <= 0
        except GLRError:
            fits = False
        lo, hi = (mid, hi) if fits else (lo, mid - 1)
    return lo


def refuse(what: str, p: Pattern, n: int, work, amount: int, limit: int,
           fits: str = "the largest n that fits is") -> None:
    """A ``GLRError`` naming the limit and the largest m < n with ``work(m) <= 0``, introduced by ``fits``."""
    m = largest_fitting(work, n)
    fit = f"{fits} {m}" if m else "no n fits"
    raise GLRError(f"{what} of {p.spec!r} at n={n} needs {amount} steps, over the limit {limit}; {fit}")


def tables(p: Pattern, n: int):
    sa, sb = supports(p, n)
    return sa.table(TABLE_MAX_ENTRIES), sb.table(TABLE_MAX_ENTRIES)
