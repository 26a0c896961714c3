"""Exact analysis of a pattern at a given length n: the quantities of DESIGN.md section 2.

Counts and the live-set profile come from ``Support.counts()`` / ``Support.last_use()`` in O(n).
``depth`` and ``hop_diameter`` use the structure of the supports:

* lag sets on both sides: hops(s -> t) depends only on d = t - s and equals the least k such that
  ``d = j + l_1 + ... + l_k`` with j an A-lag and l_i B-lags (a numba DP over d, or FFT sumsets by level
  when the lag set is large); the longest B-path is ``floor((n-1) / min lag)``;
* A(t) an interval ending at t (diagonal, window, blocks): the inputs reaching h_t within k hops form an
  interval ``[lo_k(t), t]`` as long as no gap appears (checked), so hops reduce to a worklist
  propagation of ``lo`` over the B-lists (numba); then the farthest input from h_t is u_0. Failing that,
  the same propagation on the mirrored graph (t -> n-1-t) tests whether the states reached from each h_x
  are intervals ``[x, phi_k(x)]`` (the aligned binary counter is such a pattern);
* blocks:C: hops(s -> t) = block(t) - block(s);
* Kronecker powers: every edge is digit-wise non-decreasing, so u_1 never reaches h_m (m = base size),
  and the longest B-path ending at t is the sum over digits of the longest path in the base;
* anything else: breadth-first search from every input (numba), within ``HOPS_MAX_WORK``.

The generic Hankel rank per cut is a max-flow on the dependency graph (``glrtheory.graph``); the exact
cross-check is the rank over F_p with random coefficients (``glrtheory.prime_field``).
"""
from __future__ import annotations

import functools

import numba
import numpy as np
import scipy.signal
from tqdm import tqdm

from . import graph
from .errors import GLRError
from .patterns import Pattern
from .patterns.structured import BlockSupport, KronSupport
from .patterns.support import Support, check_length
from .prime_field import mixing_matrix_mod_p, random_coefficients, rank_mod_p

#: Largest length n the exact analysis accepts (O(n) arrays of int64; about a second per pass at 2^24).
ANALYZE_MAX_N = 2**24
#: Largest index table read by the analysis (entries n * width; int32).
TABLE_MAX_ENTRIES = 2**27
#: Largest amount of elementary work (DP steps, BFS edge visits) for hops.
HOPS_MAX_WORK = 2**31
#: Largest number of FFT sumset levels for hops of a large lag set.
HOPS_MAX_FFT_LEVELS = 64
#: Lag sets up to this size use the DP over distances; larger ones try FFT levels first ...
LAG_DP_MAX_LAGS = 32
#: ... for at most this many levels while the DP remains within HOPS_MAX_WORK.
LAG_FFT_TRY_LEVELS = 12
#: Largest n for the per-cut max-flow (generic Hankel rank).
HANKEL_MAX_N = 1024
#: Largest total size of the per-cut flow problems, (n - 1) * (2n + nnz_a + nnz_b).
HANKEL_MAX_WORK = 2**22
#: Largest n for the degrees of freedom (exact rank of the Jacobian over F_p).
DOF_MAX_N = 256

KEYS = ("spec", "n", "nnz_a", "nnz_b", "decode_cost_max", "decode_cost_mean", "cache_peak", "depth",
        "hop_diameter", "full_receptive_field", "theta_total", "theta_decode", "theta_cache")


def _check_pattern(p) -> Pattern:
    if not isinstance(p, Pattern):
        raise GLRError(f"expected a Pattern, got {type(p).__name__}")
    return p


@functools.lru_cache(maxsize=4)
def _cached_supports(p: Pattern, n: int) -> tuple[Support, Support]:
    return p.support_a(n), p.support_b(n)


def _supports(p: Pattern, n: int) -> tuple[Support, Support]:
    """The supports of p at length n (the last few are kept: building one can take a second at 2^20)."""
    n = check_length(n)
    if n > ANALYZE_MAX_N:
        raise GLRError(f"exact analysis is limited to n <= 2^24 = {ANALYZE_MAX_N}, got n={n}")
    return _cached_supports(_check_pattern(p), n)


# -- counts and cache ------------------------------------------------------------------------------
def nnz(p: Pattern, n: int) -> tuple[int, int]:
    """``(nnz_a, nnz_b) = (sum_t |A(t)|, sum_t |B(t)|)``."""
    sa, sb = _supports(p, n)
    return int(sa.counts().sum()), int(sb.counts().sum())


def decode_costs(p: Pattern, n: int) -> np.ndarray:
    """``|A(t)| + |B(t)|`` for every t: state-sized multiply-adds to produce h_t while decoding."""
    sa, sb = _supports(p, n)
    return sa.counts() + sb.counts()


def live_profile(p: Pattern, n: int) -> np.ndarray:
    """Size of the live set after step t, for every t:
    ``|{u_s : s <= t < last_A(s)}| + |{h_s : s <= t < last_B(s)}|`` with ``last_X(s) = max{t' : s in X(t')}``.
    """
    supports = _supports(p, n)
    live = np.zeros(n + 1, dtype=np.int64)
    for sup in supports:
        last = sup.last_use()
        s = np.arange(n, dtype=np.int64)
        keep = last > s
        live += np.bincount(s[keep], minlength=n + 1) - np.bincount(last[keep], minlength=n + 1)
    return np.cumsum(live)[:n]


def cache_peak(p: Pattern, n: int) -> int:
    """Maximum over t of the live-set size: what decoding must keep."""
    return int(live_profile(p, n).max())


# -- depth -----------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _longest_b_paths(b_idx):
    """``d[t] = max(d[s] + 1 for s in B(t))`` (0 when B(t) is empty), in order of t."""
    n, w = b_idx.shape
    d = np.zeros(n, dtype=np.int64)
    for t in range(n):
        best = 0
        for j in range(w):
            s = b_idx[t, j]
            if s >= 0 and d[s] + 1 > best:
                best = d[s] + 1
        d[t] = best
    return d


def _kron_base_longest(K: np.ndarray) -> np.ndarray:
    """Longest path ending at each digit in the base graph (edge x -> y when K[y, x], x < y)."""
    L = np.zeros(len(K), dtype=np.int64)
    for y in range(len(K)):
        xs = [x for x in range(y) if K[y, x]]
        L[y] = max((L[x] + 1 for x in xs), default=0)
    return L


def depth(p: Pattern, n: int) -> int:
    """Number of edges of the longest path in the B-graph (steps of a level-scheduled solve)."""
    _, sb = _supports(p, n)
    if sb.lags is not None:
        return (n - 1) // int(sb.lags[0]) if sb.lags.size else 0
    if isinstance(sb, KronSupport):
        # a chain moves each digit along a path of the base graph; one digit at a time attains the sum
        L = _kron_base_longest(sb.base)
        return int(sum(L[d] for d in sb.digits(np.arange(n, dtype=np.int64))).max())
    return int(_longest_b_paths(sb.table(TABLE_MAX_ENTRIES)).max(initial=0))


# -- hops --------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _lag_hops_dp(in_a, b_lags):
    """``f[d]`` = least k with ``d = j + l_1 + ... + l_k`` (j an A-lag, l_i in b_lags), -1 if none."""
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


def _lag_hops_fft(in_a: np.ndarray, b_lags: np.ndarray, max_levels: int) -> np.ndarray | None:
    """Same as ``_lag_hops_dp``, by levels: reach_k = A-lags | (reach_{k-1} + B-lags), sumsets by FFT.
    None when more than ``max_levels`` levels would be needed."""
    n = in_a.size
    f = np.where(in_a, 0, -1).astype(np.int64)
    kernel = np.zeros(n)
    kernel[b_lags] = 1.0
    frontier = in_a
    for level in range(1, max_levels + 2):
        if not frontier.any() or (f >= 0).all():
            return f
        if level > max_levels:
            return None
        reached = scipy.signal.fftconvolve(frontier.astype(np.float64), kernel)[:n] > 0.5
        frontier = reached & (f < 0)
        f[frontier] = level
    return None


def _lag_hops(sa: Support, sb: Support) -> np.ndarray:
    """hops by distance d: the DP for small lag sets; FFT levels for large ones (few levels), falling back
    to the DP when the levels run long and the DP is within ``HOPS_MAX_WORK``."""
    n = sa.n
    in_a = np.zeros(n, dtype=bool)
    in_a[sa.lags] = True
    b_lags = sb.lags.astype(np.int64)
    dp_ok = n * max(b_lags.size, 1) <= HOPS_MAX_WORK
    if b_lags.size > LAG_DP_MAX_LAGS or not dp_ok:
        f = _lag_hops_fft(in_a, b_lags, LAG_FFT_TRY_LEVELS if dp_ok else HOPS_MAX_FFT_LEVELS)
        if f is not None:
            return f
        if not dp_ok:
            raise GLRError(f"hops of a lag set of size {b_lags.size} at n={n} need more than "
                           f"{HOPS_MAX_FFT_LEVELS} FFT levels, and the DP n*|lags| = {n * b_lags.size} is over "
                           f"the limit {HOPS_MAX_WORK}")
    return _lag_hops_dp(in_a, b_lags)


def _interval_start(sa: Support) -> np.ndarray | None:
    """``lo[t]`` with ``A(t) = {lo[t], ..., t}`` when every A(t) is such an interval, else None."""
    t = np.arange(sa.n, dtype=np.int64)
    if sa.lags is not None:
        L = sa.lags
        return np.maximum(t - L[-1], 0) if _contiguous_from_zero(L) else None
    if isinstance(sa, BlockSupport):
        return t - t % sa.block
    table, counts = _table_with_diagonal(sa)
    if table is None:
        return None
    lo = table[:, 0]
    return lo if (lo == t - counts + 1).all() else None


def _interval_end(sa: Support) -> np.ndarray | None:
    """``hi[s]`` with ``{t : s in A(t)} = {s, ..., hi[s]}`` when every such set is an interval, else None."""
    s = np.arange(sa.n, dtype=np.int64)
    if sa.lags is not None:
        L = sa.lags
        return np.minimum(s + L[-1], sa.n - 1) if _contiguous_from_zero(L) else None
    if isinstance(sa, BlockSupport):
        return sa.last_use()
    table, _ = _table_with_diagonal(sa)
    if table is None:
        return None
    hi = sa.last_use()
    column = np.bincount(table[table >= 0], minlength=sa.n)
    return hi if (column == hi - s + 1).all() else None


def _contiguous_from_zero(lags: np.ndarray) -> bool:
    return bool(lags.size and lags[0] == 0 and lags[-1] == lags.size - 1)


def _table_with_diagonal(sa: Support):
    """The A-table and its row counts when every A(t) holds t (else ``(None, None)``)."""
    table = sa.table(TABLE_MAX_ENTRIES).astype(np.int64)
    counts = (table >= 0).sum(axis=1)
    if table.shape[1] == 0 or (counts == 0).any():
        return None, None
    ok = (table[np.arange(sa.n), counts - 1] == np.arange(sa.n)).all()
    return (table, counts) if ok else (None, None)


@numba.njit(cache=True)
def _counting_order(key, n, order):
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


def _b_lists(sb: Support):
    """Predecessor lists B(t) and successor lists {t : s in B(t)} as CSR, both ascending:
    ``(pptr, pred, sptr, succ)``; the successors come from one counting sort."""
    b_idx = sb.table(TABLE_MAX_ENTRIES)
    valid = b_idx >= 0
    counts = valid.sum(axis=1)
    pred = b_idx[valid].astype(np.int64)                        # row-major: grouped by t, ascending
    pptr = np.zeros(sb.n + 1, dtype=np.int64)
    np.cumsum(counts, out=pptr[1:])
    dst = np.repeat(np.arange(sb.n, dtype=np.int64), counts)
    succ = dst[_counting_order(pred, sb.n, np.arange(pred.size, dtype=np.int64))]
    sptr = np.zeros(sb.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(pred, minlength=sb.n), out=sptr[1:])
    return pptr, pred, sptr, succ


def _mirror(ptr: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lists of x' = n-1-x holding n-1-y for y in list(x): reversing the flat array reverses both the
    order of the lists and the order within each, so they stay ascending."""
    n = ptr.size - 1
    return members.size - ptr[::-1], (n - 1 - members)[::-1]


@numba.njit(cache=True)
def _interval_levels(lo0, pptr, pred, sptr, succ, budget):
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


def _range_min(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``min(x[lo[i] : hi[i] + 1])`` for every i (sparse table, O(n log n))."""
    table = [x]
    while 2 ** len(table) <= x.size:
        prev, half = table[-1], 2 ** (len(table) - 1)
        table.append(np.minimum(prev[:-half], prev[half:]))
    length = hi - lo + 1
    j = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty_like(lo)
    for level in np.unique(j):
        i = j == level
        out[i] = np.minimum(table[level][lo[i]], table[level][hi[i] - 2**level + 1])
    return out


def _blocks_hop_diameter(sa: Support, sb: Support) -> int | None:
    """blocks:C has hops(s -> t) = block(t) - block(s): A reaches forward within a block, and each B-edge
    goes from the last state of block j to a state of block j+1. None when the pattern is not blocks."""
    from .patterns.structured import blocks_carry_table

    if isinstance(sa, BlockSupport) and np.array_equal(sb.table(TABLE_MAX_ENTRIES),
                                                       blocks_carry_table(sa.n, sa.block)):
        return (sa.n - 1) // sa.block
    return None


@numba.njit(cache=True)
def _bfs_all_hops(ptr, dst, n):
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


def _general_hop_diameter(p: Pattern, n: int) -> int | None:
    na, nb = nnz(p, n)
    work = n * (2 * n + na + nb)
    if work > HOPS_MAX_WORK:
        raise GLRError(f"hops of {p.spec!r} at n={n} need a search from every input, n*(2n+nnz) = {work} "
                       f"steps, over the limit {HOPS_MAX_WORK}")
    a_idx, b_idx = (x.astype(np.int64) for x in p.tables(n))
    edges = []
    for idx, offset in ((a_idx, 0), (b_idx, n)):
        rows, slots = np.nonzero(idx >= 0)
        edges.append((idx[rows, slots] + offset, rows + n))
    src = np.concatenate([e[0] for e in edges])
    dst = np.concatenate([e[1] for e in edges])
    order = np.argsort(src, kind="stable")
    ptr = np.searchsorted(src[order], np.arange(2 * n + 1)).astype(np.int64)
    worst = _bfs_all_hops(ptr, dst[order].astype(np.int64), n)
    return None if worst < 0 else int(worst)


def hop_profile(p: Pattern, n: int) -> np.ndarray | None:
    """For lag patterns (both sides translation invariant): ``f[d]`` = hops(s -> s + d), -1 if unreachable;
    None for other patterns."""
    sa, sb = _supports(p, n)
    if sa.lags is None or sb.lags is None:
        return None
    return _lag_hops(sa, sb)


def hop_diameter(p: Pattern, n: int) -> int | None:
    """Max over pairs s <= t of hops(s -> t) (one A-edge, then B-edges); None when some pair is unreachable."""
    sa, sb = _supports(p, n)
    if sa.lags is not None and sb.lags is not None:
        f = _lag_hops(sa, sb)
        return None if (f < 0).any() else int(f.max())
    if isinstance(sb, KronSupport) and sa.lags is not None and list(sa.lags) == [0] and n > sb.m:
        return None  # u_1 -> h_m: the last digit would have to go from 1 down to 0
    blocks = _blocks_hop_diameter(sa, sb)
    if blocks is not None:
        return blocks
    over = False
    lo0, hi0 = _interval_start(sa), _interval_end(sa)
    lists = _b_lists(sb) if lo0 is not None or hi0 is not None else None
    if lo0 is not None:
        # inputs reaching h_t within k hops: [lo_k(t), t]; the farthest input is u_0
        status, lo, level = _interval_levels(lo0, *lists, HOPS_MAX_WORK)
        if status == 0:
            return int(level.max()) if (lo == 0).all() else None
        over = status == 2
    if hi0 is not None:
        # mirror x -> n-1-x: states reached from h_x within k B-edges are [x, phi_k(x)]; K(x) = steps to
        # reach h_{n-1}; u_s enters at h_x for x in [s, hi(s)], so its eccentricity is min K over them
        pptr, pred, sptr, succ = lists
        status, lo, level = _interval_levels(np.arange(n, dtype=np.int64), *_mirror(sptr, succ),
                                             *_mirror(pptr, pred), HOPS_MAX_WORK)
        if status == 0:
            K = np.where(lo == 0, level, n)[::-1]
            ecc = _range_min(K, np.arange(n, dtype=np.int64), hi0)
            return int(ecc.max()) if (ecc < n).all() else None
        over = over or status == 2
    try:
        return _general_hop_diameter(p, n)
    except GLRError as exc:
        if over:
            raise GLRError(f"{exc}; the interval propagation also exceeded {HOPS_MAX_WORK} steps") from None
        raise


def full_receptive_field(p: Pattern, n: int) -> bool:
    """True when every input u_s reaches every state h_t, s <= t."""
    return hop_diameter(p, n) is not None


# -- Hankel rank, exact ranks and degrees of freedom --------------------------------------------
def hankel_profile(p: Pattern, n: int) -> np.ndarray:
    """Generic Hankel rank at each cut t = 0..n-2: the maximum number of vertex-disjoint paths from
    ``{u_0..u_t}`` to ``{h_{t+1}..h_{n-1}}`` (networkx max-flow with unit vertex capacities)."""
    return _hankel_profile(_check_pattern(p), check_length(n)).copy()


@functools.lru_cache(maxsize=16)
def _hankel_profile(p: Pattern, n: int) -> np.ndarray:
    if n > HANKEL_MAX_N:
        raise GLRError(f"the generic Hankel rank (one max-flow per cut) is limited to n <= {HANKEL_MAX_N}, "
                       f"got n={n}")
    na, nb = nnz(p, n)
    work = (n - 1) * (2 * n + na + nb)
    if work > HANKEL_MAX_WORK:
        raise GLRError(f"the generic Hankel rank of {p.spec!r} at n={n} needs n-1 max-flows on graphs of "
                       f"{2 * n + na + nb} vertices+edges ({work} in all), over the limit {HANKEL_MAX_WORK}")
    F = graph.split_graph(graph.dependency_graph(p, n))
    out = np.zeros(max(n - 1, 0), dtype=np.int64)
    for t in tqdm(range(n - 1), desc=f"max-flow cuts of {p.spec}", disable=None, leave=False):
        out[t] = graph.max_disjoint_paths(F, map(graph.u, range(t + 1)), map(graph.h, range(t + 1, n)))
    return out


def hankel_rank_max(p: Pattern, n: int) -> int:
    """Max over cuts of the generic Hankel rank (0 when n = 1)."""
    return int(hankel_profile(p, n).max(initial=0))


def hankel_profile_exact(p: Pattern, n: int, seed=0) -> np.ndarray:
    """Rank over F_p (p = 2^31-1) of ``M[t+1:, :t+1]`` for each cut t, with ``M = (I - B)^{-1} A`` built from
    uniformly random coefficients on the supports: the generic Hankel rank at every cut with probability >= 1 - n^3/p (Schwartz-Zippel:
    each cut's rank minor has degree <= n in the coefficients, and there are n - 1 cuts)."""
    M = mixing_matrix_mod_p(*random_coefficients(_check_pattern(p), check_length(n), seed))
    return np.array([rank_mod_p(M[t + 1:, : t + 1]) for t in range(n - 1)], dtype=np.int64)


def degrees_of_freedom(p: Pattern, n: int, seed=0) -> int:
    """Generic rank of the Jacobian of ``(a, b) -> M = (I - B)^{-1} A``, exactly over F_p.

    ``dM = L (dA + dB M)`` with L = (I - B)^{-1} invertible, and row t of ``dA + dB M`` involves only the
    coefficients of row t, so the rank is ``sum_t dim span({e_s : s in A(t)} u {M[s] : s in B(t)})``
    ``= sum_t |A(t)| + rank(M[B(t)] with the columns of A(t) removed)``.
    """
    n = check_length(n)
    _check_pattern(p)
    if n > DOF_MAX_N:
        raise GLRError(f"degrees of freedom are limited to n <= {DOF_MAX_N}, got n={n}")
    a_idx, b_idx, a, b = random_coefficients(p, n, seed)
    M = mixing_matrix_mod_p(a_idx, b_idx, a, b)
    total = 0
    for t in range(n):
        in_a = a_idx[t][a_idx[t] >= 0]
        rows = b_idx[t][b_idx[t] >= 0]
        keep = np.setdiff1d(np.arange(t), in_a)
        total += in_a.size + (rank_mod_p(M[np.ix_(rows, keep)]) if rows.size and keep.size else 0)
    return total


# -- reports ---------------------------------------------------------------------------------------
def analyze(p: Pattern, n: int, rank: bool = False) -> dict:
    """The ``glr analyze --json`` report: exact counts at length n and the asymptotic classes.

    Keys: ``KEYS`` (and ``hankel_rank_max`` when rank=True). ``theta_*`` come from
    ``glrtheory.symbolic.costs.theta``.
    """
    from .symbolic.costs import theta

    _check_pattern(p)
    na, nb = nnz(p, n)
    cost = decode_costs(p, n)
    hd = hop_diameter(p, n)
    out = {"spec": p.spec, "n": int(n), "nnz_a": na, "nnz_b": nb, "decode_cost_max": int(cost.max()),
           "decode_cost_mean": float(cost.mean()), "cache_peak": cache_peak(p, n), "depth": depth(p, n),
           "hop_diameter": hd, "full_receptive_field": hd is not None}
    th = theta(p)
    out.update({k: th[k] for k in ("theta_total", "theta_decode", "theta_cache")})
    if rank:
        out["hankel_rank_max"] = hankel_rank_max(p, n)
    return out


def compare(patterns, n: int, rank: bool = False) -> list[dict]:
    """``analyze`` for each pattern at the same n (the rows of ``glr compare``)."""
    return [analyze(p, n, rank=rank) for p in patterns]


def sweep(p: Pattern, ns, rank: bool = False) -> dict[str, list]:
    """Total cost ``nnz_a + nnz_b``, ``cache_peak`` (and ``hankel_rank_max``) at each n of ``ns``."""
    out = {"n": [int(n) for n in ns], "total_cost": [total_cost(p, n) for n in ns],
           "cache_peak": [cache_peak(p, n) for n in ns]}
    if rank:
        out["hankel_rank_max"] = [hankel_rank_max(p, n) for n in ns]
    return out


def total_cost(p: Pattern, n: int) -> int:
    """``nnz_a + nnz_b``: the multiply-adds of a full forward pass (state-sized)."""
    return sum(nnz(p, n))
