"""hops of a translation-invariant pattern by distance: ``f[d]`` = least k with ``d = j + l_1 + ... + l_k``,
j an A-lag and l_i B-lags (-1 when there is none). A DP over d (small lag sets) or sumsets by level
with FFT convolutions (large lag sets, few levels)."""
from __future__ import annotations

import numba
import numpy as np
import scipy.fft


@numba.njit(cache=True)
def lag_hops_dp(in_a, b_lags):
    """``f[d]`` = least k with ``d = j + l_1 + ... + l_k`` (``in_a[j]``, l_i in b_lags), -1 if none."""
    n = in_a.size
    f = np.full(n, -1, dtype=np.int64)
    for d in range(n):
        if in_a[d]:
            f[d] = 0
            continue
        best = -1
        for k in range(np.searchsorted(b_lags, d, side="right") - 1, -1, -1):
            v = f[d - b_lags[k]]
            if v >= 0 and (best < 0 or v + 1 < best):
                best = v + 1
                if best == 1:
                    break
        f[d] = best
    return f


def lag_hops_fft(in_a: np.ndarray, b_lags: np.ndarray, max_levels: int) -> np.ndarray | None:
    """Same as ``lag_hops_dp``, by levels: reach_k = A-lags | (reach_{k-1} + B-lags), sumsets by FFT (the B-lags'
    transform computed once, at a length >= 2n - 1 so that no sum wraps around onto d < n).
    None when more than ``max_levels`` levels would be needed."""
    n = in_a.size
    f = np.where(in_a, 0, -1).astype(np.int64)
    size = scipy.fft.next_fast_len(2 * n - 1, real=True)
    kernel = np.zeros(n)
    kernel[b_lags] = 1.0
    kernel = scipy.fft.rfft(kernel, size)
    frontier = in_a
    for level in range(1, max_levels + 2):
        if not frontier.any() or (f >= 0).all():
            return f
        if level > max_levels:
            return None
        reached = scipy.fft.irfft(scipy.fft.rfft(frontier, size) * kernel, size)[:n] > 0.5
        frontier = reached & (f < 0)
        f[frontier] = level
    return None


def lag_profile(n: int, a_lags: np.ndarray, b_lags: np.ndarray, max_work: int, dp_max_lags: int,
                try_levels: int, max_levels: int) -> np.ndarray | None:
    """``f[d]`` for 0 <= d < n: the DP for lag sets up to ``dp_max_lags``; FFT levels for larger ones (up to
    ``try_levels``), falling back to the DP while ``n * |b_lags| <= max_work``, else up to ``max_levels``
    levels. None when both are over their limits."""
    in_a = np.zeros(n, dtype=bool)
    in_a[a_lags] = True
    b_lags = b_lags.astype(np.int64)
    dp_ok = n * max(b_lags.size, 1) <= max_work
    if b_lags.size > dp_max_lags or not dp_ok:
        f = lag_hops_fft(in_a, b_lags, try_levels if dp_ok else max_levels)
        if f is not None or not dp_ok:
            return f
    return lag_hops_dp(in_a, b_lags)
