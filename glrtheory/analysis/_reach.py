"""Reachability kernels for hops over the B-lists (CSR, Numba).

* ``b_lists``: predecessor and successor lists of the B-graph;
* ``first_input_hops`` and ``gap_at_level0``: when A(t) = [lo(t), t] and the level-0 union of
  ``[lo(t), t]`` with ``[lo(s), s]`` over s in B(t) has no gap, every reach set stays an interval (left ends
  only move down while the right ends stay), so hops(s -> t) <= hops(0 -> t), one DP in order of t;
* ``interval_levels``: the propagation by worklist, level by level, stopping at the first gap, for the
  mirrored graph (``mirror``: the states reached *from* each h_x), where a gap may appear at any level;
* ``bfs_all_hops``: breadth-first search from every input.
"""
from __future__ import annotations

import numba
import numpy as np

from ..patterns.support import Support, sorted_distinct
from .counts import TABLE_MAX_ENTRIES


@numba.njit(cache=True)
def counting_order(key, n, order):
    """Stable counting sort of ``order`` by ``key[order]`` (keys in [0, n))."""
    count = np.zeros(n + 1, dtype=np.int64)
    for e in order:
        count[key[e] + 1] += 1
    for v in range(n):
        count[v + 1] += count[v]
    out = np.empty_like(order)
    for e in order:
        out[count[key[e]]] = e
        count[key[e]] += 1
    return out


def b_lists(sb: Support):
    """Predecessor lists B(t) and successor lists {t : s in B(t)} as CSR, both ascending:
    ``(pptr, pred, sptr, succ)``; the successors come from one counting sort."""
    b_idx = sb.table(TABLE_MAX_ENTRIES)
    valid = b_idx >= 0
    counts = valid.sum(axis=1)
    pred = b_idx[valid].astype(np.int64)                        # row-major: grouped by t, ascending
    pptr = np.zeros(sb.n + 1, dtype=np.int64)
    np.cumsum(counts, out=pptr[1:])
    dst = np.repeat(np.arange(sb.n, dtype=np.int64), counts)
    succ = dst[counting_order(pred, sb.n, np.arange(pred.size, dtype=np.int64))]
    sptr = np.zeros(sb.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(pred, minlength=sb.n), out=sptr[1:])
    return pptr, pred, sptr, succ


def mirror(ptr: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lists of x' = n-1-x holding n-1-y for y in list(x): reversing the flat array reverses both the
    order of the lists and the order within each, so they stay ascending."""
    n = ptr.size - 1
    return members.size - ptr[::-1], (n - 1 - members)[::-1]


@numba.njit(cache=True)
def interval_levels(lo0, pptr, pred, sptr, succ, budget):
    """Levels ``lo_k(t) = min(lo_{k-1}(t), lo_{k-1}(s) for s in pred(t))`` from ``lo_0``, by worklist.

    Valid while every reach set is an interval ``[lo_k(t), t]``: the union of ``[lo(s), s]`` over the
    predecessors (scanned in descending order) and ``[lo(t), t]`` must have no gap. Returns
    ``(status, lo, level)`` with status 0 (done), 1 (a gap: not intervals) or 2 (over ``budget`` steps);
    ``level[t]`` is the k at which lo(t) last decreased.
    """
    n = lo0.size
    lo = lo0.copy()
    level = np.zeros(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    changed = np.arange(n)
    nchanged = n
    cand = np.empty(n, dtype=np.int64)
    new = np.empty(n, dtype=np.int64)
    work = 0
    k = 0
    while nchanged > 0:
        k += 1
        ncand = 0
        for i in range(nchanged):
            x = changed[i]
            work += sptr[x + 1] - sptr[x] + 1
            for e in range(sptr[x], sptr[x + 1]):
                y = succ[e]
                if mark[y] != k:
                    mark[y] = k
                    cand[ncand] = y
                    ncand += 1
        for i in range(ncand):
            t = cand[i]
            c = lo[t]
            for e in range(pptr[t + 1] - 1, pptr[t] - 1, -1):
                if c == 0:   # [0, t] is covered: no gap possible, no further decrease
                    break
                work += 1
                s = pred[e]
                if s + 1 < c:
                    return 1, lo, level
                if lo[s] < c:
                    c = lo[s]
            new[i] = c
        if work > budget:
            return 2, lo, level
        nchanged = 0
        for i in range(ncand):
            t = cand[i]
            if new[i] < lo[t]:
                lo[t] = new[i]
                level[t] = k
                changed[nchanged] = t
                nchanged += 1
    return 0, lo, level


def range_min(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``min(x[lo[i] : hi[i] + 1])`` for every i (sparse table, O(n log n))."""
    table = [x]
    while 2 ** len(table) <= x.size:
        prev, half = table[-1], 2 ** (len(table) - 1)
        table.append(np.minimum(prev[:-half], prev[half:]))
    length = hi - lo + 1
    j = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty_like(lo)
    for level in sorted_distinct(j):
        i = j == level
        out[i] = np.minimum(table[level][lo[i]], table[level][hi[i] - 2**level + 1])
    return out


@numba.njit(cache=True)
def gap_at_level0(lo, pptr, pred):
    """True when for some t the union of ``[lo[t], t]`` and ``[lo[s], s]`` over s in B(t) has a gap."""
    for t in range(lo.size):
        c = lo[t]
        for e in range(pptr[t + 1] - 1, pptr[t] - 1, -1):
            if c == 0:
                break
            s = pred[e]
            if s + 1 < c:
                return True
            if lo[s] < c:
                c = lo[s]
    return False


@numba.njit(cache=True)
def first_input_hops(lo, pptr, pred):
    """hops(0 -> t) for every t when ``A(t) = [lo[t], t]``: 0 when lo[t] = 0, else 1 + min over s in B(t)
    (-1 when u_0 does not reach h_t)."""
    n = lo.size
    dist = np.full(n, -1, dtype=np.int64)
    for t in range(n):
        if lo[t] == 0:
            dist[t] = 0
            continue
        for e in range(pptr[t], pptr[t + 1]):
            d = dist[pred[e]]
            if d >= 0 and (dist[t] < 0 or d + 1 < dist[t]):
                dist[t] = d + 1
    return dist


@numba.njit(cache=True)
def bfs_all_hops(ptr, dst, n):
    """Max over pairs s <= t of the BFS distance u_s -> h_t minus one (vertices: u_s = s, h_t = n + t);
    -1 when some pair is unreachable."""
    dist = np.full(2 * n, -1, dtype=np.int64)
    queue = np.empty(2 * n, dtype=np.int64)
    worst = 0
    for s in range(n):
        dist[:] = -1
        dist[s] = 0
        queue[0] = s
        head, tail = 0, 1
        while head < tail:
            x = queue[head]
            head += 1
            for e in range(ptr[x], ptr[x + 1]):
                y = dst[e]
                if dist[y] < 0:
                    dist[y] = dist[x] + 1
                    queue[tail] = y
                    tail += 1
        for t in range(s, n):
            if dist[n + t] < 0:
                return -1
            if dist[n + t] - 1 > worst:
                worst = dist[n + t] - 1
    return worst
