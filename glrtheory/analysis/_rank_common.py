"""Shared pieces of the Hankel-rank strategies: the cut bounds and the tables."""
from __future__ import annotations

import numpy as np

from ..patterns import Pattern
from .counts import TABLE_MAX_ENTRIES, supports
from .liveness import live_profile


def cut_bounds(p: Pattern, n: int) -> np.ndarray:
    """``min(live set after t, t + 1, n - t - 1)`` for t < n - 1: an upper bound on the Hankel rank at cut t
    (the live set is a vertex cut between past inputs and future states)."""
    t = np.arange(max(n - 1, 0), dtype=np.int64)
    return np.minimum(live_profile(p, n)[: n - 1], np.minimum(t + 1, n - 1 - t))


def tables(p: Pattern, n: int):
    sa, sb = supports(p, n)
    return sa.table(TABLE_MAX_ENTRIES), sb.table(TABLE_MAX_ENTRIES)
