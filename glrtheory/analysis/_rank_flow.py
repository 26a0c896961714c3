"""The generic Hankel rank at every cut by one incremental max-flow (Numba), for ``method="flow"``.

Every vertex v of the dependency DAG (u_s = s, h_t = n + t) is split into ``in(v) -> out(v)`` of capacity 1
and every edge x -> y becomes ``out(x) -> in(y)``; all capacities are 1 (a vertex passes at most one unit).
Going from cut t-1 to cut t adds the source arc ``S -> in(u_t)`` and removes the sink arc ``out(h_t) -> T``
(cancelling the unit path that used it). The flow stays valid, its value moves by at most 2, so a few
augmenting paths (BFS in the residual graph) restore the maximum; the last, failing search is skipped
when the value already equals the bound ``min(live set, t + 1, n - t - 1)`` (Menger: the live set is a
vertex cut). Time O(n (n + nnz)) in the worst case.
"""
from __future__ import annotations

import numba
import numpy as np

from ..patterns import Pattern
from ._rank_common import cut_bounds, tables
from .counts import supports
from .limits import WorkBudget, cached_within_budget, refuse

#: Largest work of the incremental max-flow (cuts x residual graph size, n * (4n + 2 nnz)).
FLOW_RANK_MAX_WORK = 2**34


def flow_network(n: int, a_idx: np.ndarray, b_idx: np.ndarray):
    """The forward arcs of the split network: ``(tail, head, cap, ptr, adj, src_arc, snk_arc, to_sink)``.

    Nodes: ``in(v) = 2v``, ``out(v) = 2v + 1`` for v < 2n, source ``4n``, sink ``4n + 1``. ``adj`` lists the
    arcs leaving each node (CSR ``ptr``). ``src_arc[s]`` is ``S -> in(u_s)`` (capacity 0 until activated),
    ``snk_arc[x]`` is ``out(h_x) -> T`` (capacity 1 until removed), ``to_sink[node]`` the sink arc of a node
    (-1 if none). Reverse residual arcs are not stored: in a unit network every node but S and T carries
    at most one unit, so its only residual reverse arc is the one that brings its unit (``inflow``).
    """
    ta, sa = np.nonzero(a_idx >= 0)
    tb, sb = np.nonzero(b_idx >= 0)
    v = np.arange(2 * n, dtype=np.int64)
    x = np.arange(n, dtype=np.int64)
    tail = np.concatenate([2 * v, 2 * a_idx[ta, sa].astype(np.int64) + 1, 2 * (n + b_idx[tb, sb].astype(np.int64)) + 1,
                           np.full(n, 4 * n, dtype=np.int64), 2 * (n + x) + 1])
    head = np.concatenate([2 * v + 1, 2 * (n + ta.astype(np.int64)), 2 * (n + tb.astype(np.int64)), 2 * x,
                           np.full(n, 4 * n + 1, dtype=np.int64)])
    m = tail.size
    cap = np.ones(m, dtype=np.int64)
    src_arc = np.arange(m - 2 * n, m - n, dtype=np.int64)
    snk_arc = np.arange(m - n, m, dtype=np.int64)
    cap[src_arc] = 0
    adj = np.argsort(tail, kind="stable").astype(np.int64)
    ptr = np.searchsorted(tail[adj], np.arange(4 * n + 3)).astype(np.int64)
    to_sink = np.full(4 * n + 2, -1, dtype=np.int64)
    to_sink[tail[snk_arc]] = snk_arc
    return tail, head, cap, ptr, adj, src_arc, snk_arc, to_sink


@numba.njit(cache=True)
def _augment(tail, head, cap, flow, inflow, ptr, adj, to_sink, source, sink, parent, queue):
    """One BFS augmenting path from ``source`` to ``sink`` in the residual graph; push one unit. True if found.

    ``parent[y]`` is ``e`` (forward arc into y) or ``~e`` (y reached backwards along e = inflow[x]); a node
    with a free sink arc ends the search as soon as it is discovered."""
    parent[:] = -(2**62)
    parent[source] = -(2**61)
    queue[0] = source
    qh, qt = 0, 1
    end = -1
    while qh < qt and end < 0:
        x = queue[qh]
        qh += 1
        for k in range(ptr[x], ptr[x + 1] + 1):
            if k < ptr[x + 1]:
                e = adj[k]
                if flow[e] >= cap[e]:
                    continue
                y, mark = head[e], e
            else:
                e = inflow[x]
                if e < 0:
                    continue
                y, mark = tail[e], ~e
            if parent[y] != -(2**62):
                continue
            parent[y] = mark
            f = to_sink[y]
            if f >= 0 and flow[f] < cap[f]:
                parent[sink] = f
                end = y
                break
            queue[qt] = y
            qt += 1
    if end < 0:
        return False
    y = sink
    while y != source:
        mark = parent[y]
        if mark >= 0:                       # forward arc tail -> y
            flow[mark] += 1
            inflow[y] = mark
            y = tail[mark]
        else:                               # y left its unit backwards: cancel the arc that brought it
            e = ~mark
            flow[e] -= 1
            if inflow[head[e]] == e:
                inflow[head[e]] = -1
            y = head[e]
    return True


@numba.njit(cache=True)
def max_flow_profile(n, tail, head, cap, ptr, adj, src_arc, snk_arc, to_sink, bound):
    """``out[t]`` = max number of vertex-disjoint paths from {u_0..u_t} to {h_{t+1}..h_{n-1}}, t < n - 1."""
    flow = np.zeros(head.size, dtype=np.int64)
    inflow = np.full(4 * n + 2, -1, dtype=np.int64)
    parent = np.empty(4 * n + 2, dtype=np.int64)
    queue = np.empty(4 * n + 2, dtype=np.int64)
    source, sink = 4 * n, 4 * n + 1
    value = 0
    out = np.zeros(max(n - 1, 0), dtype=np.int64)
    for t in range(n - 1):
        cap[src_arc[t]] = 1
        e = snk_arc[t]
        cap[e] = 0
        if flow[e] > 0:                     # the unit ending at h_t goes back to the source
            flow[e] = 0
            node = tail[e]
            while node != source:
                f = inflow[node]
                flow[f] = 0
                inflow[node] = -1
                node = tail[f]
            value -= 1
        while value < bound[t] and _augment(tail, head, cap, flow, inflow, ptr, adj, to_sink, source, sink,
                                            parent, queue):
            value += 1
        out[t] = value
    return out


def _flow_work(p: Pattern, n: int) -> int:
    sa, sb = supports(p, n)
    return n * (4 * n + 2 * int(sa.counts().sum() + sb.counts().sum()))


@cached_within_budget(maxsize=16)
def flow_profile(p: Pattern, n: int, budget: WorkBudget | None = None) -> np.ndarray:
    """The max-flow rank at every cut, its work ``_flow_work`` checked before it runs against
    ``FLOW_RANK_MAX_WORK`` (a refusal names the largest n that fits) and paid from ``budget`` when given."""
    work = _flow_work(p, n)
    if work > FLOW_RANK_MAX_WORK:
        refuse("the max-flow Hankel rank", p, n, lambda m: _flow_work(p, m) - FLOW_RANK_MAX_WORK, work,
                FLOW_RANK_MAX_WORK)
    if budget is not None:
        budget.pay("the max-flow Hankel rank", p, n, 0, work)
    a_idx, b_idx = tables(p, n)
    return max_flow_profile(n, *flow_network(n, a_idx, b_idx), cut_bounds(p, n))
