"""The live set while decoding, and its peak (the cache a decoder must keep)."""
from __future__ import annotations

import numpy as np

from ..patterns import Pattern
from .counts import supports


def live_sides(p: Pattern, n: int) -> np.ndarray:
    """``[2, n]``: the live inputs ``|{u_s : s <= t < last_A(s)}|`` (row 0) and live states
    ``|{h_s : s <= t < last_B(s)}|`` (row 1) after step t, for every t, with ``last_X(s) = max{t' : s in X(t')}``."""
    live = np.zeros((2, n + 1), dtype=np.int64)
    s = np.arange(n, dtype=np.int64)
    for side, sup in zip(live, supports(p, n)):
        last = sup.last_use()
        keep = last > s
        side += np.bincount(s[keep], minlength=n + 1) - np.bincount(last[keep], minlength=n + 1)
    return np.cumsum(live, axis=1)[:, :n]


def live_profile(p: Pattern, n: int) -> np.ndarray:
    """Size of the live set after step t, for every t: live inputs plus live states (``live_sides``)."""
    return live_sides(p, n).sum(axis=0)


def cache_peak(p: Pattern, n: int) -> int:
    """Maximum over t of the live-set size: what decoding must keep."""
    return int(live_profile(p, n).max())
