"""The live set while decoding, and its peak (the cache a decoder must keep)."""
from __future__ import annotations

import numpy as np

from ..patterns import Pattern
from .counts import supports


def live_profile(p: Pattern, n: int) -> np.ndarray:
    """Size of the live set after step t, for every t:
    ``|{u_s : s <= t < last_A(s)}| + |{h_s : s <= t < last_B(s)}|`` with ``last_X(s) = max{t' : s in X(t')}``.
    """
    sides = supports(p, n)
    live = np.zeros(n + 1, dtype=np.int64)
    for sup in sides:
        last = sup.last_use()
        s = np.arange(n, dtype=np.int64)
        keep = last > s
        live += np.bincount(s[keep], minlength=n + 1) - np.bincount(last[keep], minlength=n + 1)
    return np.cumsum(live)[:n]


def cache_peak(p: Pattern, n: int) -> int:
    """Maximum over t of the live-set size: what decoding must keep."""
    return int(live_profile(p, n).max())
