"""The implementations of the hop-diameter strategies (``glrtheory.analysis.hop_methods`` wraps and
documents them), their limits, and the default order ``_auto_impl``.

Every ``_impl(p, n, max_work) -> int | None`` computes ``max_{s <= t} hops(s -> t)`` (None when some pair
is unreachable) or raises ``HopMethodError`` when the structure it needs is missing or its work would
exceed ``max_work``. The two interval methods also take ``lists`` (default ``b_lists``), so that
``_auto_impl`` builds the B-lists once for both.
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import GLRError, WorkLimitError
from ..patterns import Pattern
from ..patterns.support import Support
from ._lag_sums import lag_profile
from ._reach import (b_lists, bfs_all_hops, first_input_hops, gap_at_level0, interval_levels, mirror,
                     range_min)
from .counts import TABLE_MAX_ENTRIES, nnz, supports
from .limits import largest_fitting

#: Largest amount of elementary work (DP steps, worklist steps, BFS edge visits) for hops.
HOPS_MAX_WORK = 2**31
#: Largest number of FFT sumset levels for hops of a large lag set.
HOPS_MAX_FFT_LEVELS = 64
#: Lag sets up to this size use the DP over distances; larger ones try FFT levels first ...
LAG_DP_MAX_LAGS = 32
#: ... for at most this many levels while the DP remains within HOPS_MAX_WORK.
LAG_FFT_TRY_LEVELS = 12


class HopMethodError(GLRError):
    """A hop method does not apply to a pattern (``HopLimitError``: it would exceed its work limit)."""

    over_limit = False


class HopLimitError(HopMethodError, WorkLimitError):
    """A hop method would exceed its work limit."""

    over_limit = True


def lag_hop_profile(sa: Support, sb: Support, max_work: int) -> np.ndarray:
    """``f[d]`` = hops(s -> s + d) of two lag sets (-1 if unreachable), within the limits."""
    n = sa.n
    f = lag_profile(n, sa.lags, sb.lags, max_work, LAG_DP_MAX_LAGS, LAG_FFT_TRY_LEVELS, HOPS_MAX_FFT_LEVELS)
    if f is None:
        raise HopLimitError(f"hops of a lag set of size {sb.lags.size} at n={n} need more than "
                            f"{HOPS_MAX_FFT_LEVELS} FFT levels, and the DP n*|lags| = {n * sb.lags.size} "
                            f"is over the limit {max_work}; n = {max_work // sb.lags.size} fits")
    return f


def _lags_impl(p: Pattern, n: int, max_work: int) -> int | None:
    sa, sb = supports(p, n)
    if sa.lags is None or sb.lags is None:
        raise HopMethodError(f"the 'lags' hop method needs lag sets on both sides; {p.spec!r} has none")
    f = lag_hop_profile(sa, sb, max_work)
    return None if (f < 0).any() else int(f.max())


def _intervals_impl(p: Pattern, n: int, max_work: int, lists=b_lists) -> int | None:
    sa, sb = supports(p, n)
    lo0 = sa.interval_start(TABLE_MAX_ENTRIES)
    if lo0 is None:
        raise HopMethodError(f"the 'intervals' hop method needs A(t) = {{lo(t), ..., t}}; {p.spec!r} differs")
    pptr, pred = lists(sb)[:2]
    if n + pred.size > max_work:
        raise HopLimitError(f"the interval pass of {p.spec!r} at n={n} takes n + nnz_b = {n + pred.size} steps, "
                            f"over the limit {max_work}")
    if gap_at_level0(lo0, pptr, pred):                 # the inputs reaching some h_t within one hop have a gap
        raise HopMethodError(f"the inputs reaching a state of {p.spec!r} do not form intervals")
    dist = first_input_hops(lo0, pptr, pred)           # no gap later either: the farthest input from h_t is u_0
    return None if (dist < 0).any() else int(dist.max())


def _mirrored_impl(p: Pattern, n: int, max_work: int, lists=b_lists) -> int | None:
    sa, sb = supports(p, n)
    hi0 = sa.interval_end(TABLE_MAX_ENTRIES)
    if hi0 is None:
        raise HopMethodError(f"the 'mirrored' hop method needs {{t : s in A(t)}} = {{s, ..., hi(s)}}; "
                             f"{p.spec!r} differs")
    # mirror x -> n-1-x: states reached from h_x within k B-edges are [x, phi_k(x)]; K(x) = steps to
    # reach h_{n-1}; u_s enters at h_x for x in [s, hi(s)], so its eccentricity is min K over them
    pptr, pred, sptr, succ = lists(sb)
    status, lo, level = interval_levels(np.arange(n, dtype=np.int64), *mirror(sptr, succ),
                                        *mirror(pptr, pred), max_work)
    if status == 1:
        raise HopMethodError(f"the states reached from a state of {p.spec!r} do not form intervals")
    if status == 2:
        raise HopLimitError(f"the mirrored interval propagation of {p.spec!r} at n={n} exceeded {max_work} "
                            "steps")
    K = np.where(lo == 0, level, n)[::-1]
    ecc = range_min(K, np.arange(n, dtype=np.int64), hi0)
    return int(ecc.max()) if (ecc < n).all() else None


def _bfs_work(p: Pattern, n: int) -> int:
    return n * (2 * n + sum(nnz(p, n)))


def _bfs_impl(p: Pattern, n: int, max_work: int) -> int | None:
    sa, sb = supports(p, n)
    work = _bfs_work(p, n)
    if work > max_work:
        m = largest_fitting(lambda m: _bfs_work(p, m) - max_work, n)
        raise HopLimitError(f"hops of {p.spec!r} at n={n} need a search from every input, n*(2n+nnz) = "
                            f"{work} steps, over the limit {max_work}; the largest n that fits is {m}")
    edges = []
    for sup, offset in ((sa, 0), (sb, n)):
        idx = sup.table(TABLE_MAX_ENTRIES).astype(np.int64)
        rows, slots = np.nonzero(idx >= 0)
        edges.append((idx[rows, slots] + offset, rows + n))
    src = np.concatenate([e[0] for e in edges])
    dst = np.concatenate([e[1] for e in edges])
    order = np.argsort(src, kind="stable")
    ptr = np.searchsorted(src[order], np.arange(2 * n + 1)).astype(np.int64)
    worst = bfs_all_hops(ptr, dst[order].astype(np.int64), n)
    return None if worst < 0 else int(worst)


def _auto_impl(p: Pattern, n: int, max_work: int) -> int | None:
    sa, sb = supports(p, n)
    if sa.lags is not None and sb.lags is not None:
        return _lags_impl(p, n, max_work)
    if sb.unreachable_pair(sa) is not None:
        return None
    over = False
    lists = functools.lru_cache(maxsize=1)(b_lists)         # the B-lists, built once for both interval methods
    for impl in (_intervals_impl, _mirrored_impl):
        try:
            return impl(p, n, max_work, lists)
        except HopMethodError as exc:
            over = over or exc.over_limit
    try:
        return _bfs_impl(p, n, max_work)
    except HopMethodError as exc:
        if over:
            raise HopLimitError(f"{exc}; the interval propagation also exceeded {max_work} steps") from None
        raise
