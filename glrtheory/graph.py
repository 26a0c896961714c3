"""The lag-dependency DAG of a pattern (docs/quantities.md), as a networkx graph.

Vertices are the inputs ``("u", s)`` and the states ``("h", t)``, 0 <= s, t < n. Edges:
``("u", s) -> ("h", t)`` for s in A(t) (attribute ``side="a"``) and ``("h", s) -> ("h", t)`` for s in B(t)
(``side="b"``). A route from an input to a state is therefore one A-edge followed by B-edges, and

* ``hops(G, s, t)`` = least number of B-edges on such a route (None if there is none);
* ``depth(G)`` = number of edges of the longest path among the states (the B-graph);
* ``max_disjoint_paths(F, sources, targets)`` = maximum number of vertex-disjoint paths, computed as a
  max-flow on the node-split graph ``F = split_graph(G)`` (every vertex has capacity 1; Menger's theorem
  makes it also the size of a minimum vertex cut).

These are plain definition-level algorithms for moderate n; ``glrtheory.analysis`` has the fast paths.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
from networkx.algorithms.flow import shortest_augmenting_path

from .errors import GLRError
from .patterns import Pattern

#: Largest dependency graph built (edges = nnz_a + nnz_b).
GRAPH_MAX_EDGES = 2**21


def u(s: int) -> tuple[str, int]:
    """The vertex of input u_s."""
    return ("u", int(s))


def h(t: int) -> tuple[str, int]:
    """The vertex of state h_t."""
    return ("h", int(t))


def dependency_graph(pattern: Pattern, n: int) -> nx.DiGraph:
    """The lag-dependency DAG at length n (vertices u_s, h_t; A-edges u_s -> h_t, B-edges h_s -> h_t)."""
    counts = [pattern.support_a(n).counts().sum(), pattern.support_b(n).counts().sum()]
    if sum(counts) > GRAPH_MAX_EDGES:
        raise GLRError(f"the dependency graph of {pattern.spec!r} at n={n} has {int(sum(counts))} edges, "
                       f"over the limit {GRAPH_MAX_EDGES}")
    G = nx.DiGraph(spec=pattern.spec, n=n)
    G.add_nodes_from(u(s) for s in range(n))
    G.add_nodes_from(h(t) for t in range(n))
    for side, idx in zip("ab", pattern.tables(n)):
        rows, slots = np.nonzero(idx >= 0)
        src = u if side == "a" else h
        G.add_edges_from(((src(s), h(t)) for t, s in zip(rows, idx[rows, slots])), side=side)
    return G


def hops(G: nx.DiGraph, s: int, t: int) -> int | None:
    """hops(s -> t): least number of B-edges on a route u_s -> h_t (one A-edge, then B-edges), or None."""
    try:
        return nx.shortest_path_length(G, u(s), h(t)) - 1
    except nx.NetworkXNoPath:
        return None


def hop_matrix(G: nx.DiGraph) -> np.ndarray:
    """``H[s, t]`` = hops(s -> t) for every pair (-1 where u_s does not reach h_t), by BFS from each u_s."""
    n = G.graph["n"]
    out = np.full((n, n), -1, dtype=np.int64)
    for s in range(n):
        for v, d in nx.single_source_shortest_path_length(G, u(s)).items():
            if v[0] == "h":
                out[s, v[1]] = d - 1
    return out


def states_graph(G: nx.DiGraph) -> nx.DiGraph:
    """The B-graph: the states h_t and the B-edges between them."""
    return G.subgraph(v for v in G if v[0] == "h")


def depth(G: nx.DiGraph) -> int:
    """Number of edges of the longest path in the B-graph."""
    return nx.dag_longest_path_length(states_graph(G))


def split_graph(G: nx.DiGraph) -> nx.DiGraph:
    """Node splitting: v becomes ``(v, "in") -> (v, "out")`` with capacity 1; edges keep infinite capacity."""
    F = nx.DiGraph()
    F.add_edges_from((((v, "in"), (v, "out")) for v in G), capacity=1)
    F.add_edges_from(((x, "out"), (y, "in")) for x, y in G.edges)
    return F


def max_disjoint_paths(F: nx.DiGraph, sources, targets) -> int:
    """Maximum number of vertex-disjoint paths from ``sources`` to ``targets`` in G, with ``F = split_graph(G)``.

    A super source feeds every ``(s, "in")`` and every ``(t, "out")`` drains into a super sink; unit
    vertex capacities make the max-flow value the number of vertex-disjoint paths (Menger).
    """
    src, snk = ("source",), ("sink",)
    F.add_edges_from((src, (v, "in")) for v in sources)
    F.add_edges_from(((v, "out"), snk) for v in targets)
    try:
        if not F.has_node(src) or not F.has_node(snk):
            return 0
        return int(nx.maximum_flow_value(F, src, snk, flow_func=shortest_augmenting_path))
    finally:
        F.remove_nodes_from([src, snk])
