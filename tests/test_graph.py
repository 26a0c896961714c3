"""glrtheory.graph: the lag-dependency DAG, hops, depth and vertex-disjoint paths by max-flow."""
import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from glrtheory import GLRError, Pattern
from glrtheory import graph


@st.composite
def patterns(draw):
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = np.tril(rng.random((n, n)) < draw(st.floats(0.1, 0.9)))
    B = np.tril(rng.random((n, n)) < draw(st.floats(0, 0.5)), -1)
    return Pattern.from_masks(A, B), n


def brute_hops(p, n, s, t):
    """Enumerate routes u_s -> h_t0 (s in A(t0)) -> ... -> h_t along B-edges; least number of B-edges."""
    A, B = p.sets(n)
    best = None
    frontier = {t0 for t0 in range(n) if s in A[t0]}
    for k in range(n):
        if t in frontier:
            return k
        frontier = {y for y in range(n) if any(x in B[y] for x in frontier)}
        if not frontier:
            break
    return best


@settings(max_examples=30, deadline=None)
@given(patterns())
def test_graph_edges_and_hops(case):
    p, n = case
    G = graph.dependency_graph(p, n)
    A, B = p.sets(n)
    assert G.number_of_nodes() == 2 * n
    assert sorted(G.edges) == sorted([(graph.u(s), graph.h(t)) for t in range(n) for s in A[t]]
                                     + [(graph.h(s), graph.h(t)) for t in range(n) for s in B[t]])
    assert all(G.edges[e]["side"] == ("a" if e[0][0] == "u" else "b") for e in G.edges)
    H = graph.hop_matrix(G)
    for s, t in itertools.product(range(n), repeat=2):
        ref = brute_hops(p, n, s, t)
        assert graph.hops(G, s, t) == ref
        assert H[s, t] == (-1 if ref is None else ref)


@settings(max_examples=30, deadline=None)
@given(patterns())
def test_depth_is_longest_b_path(case):
    p, n = case
    _, B = p.sets(n)
    longest = [0] * n
    for t in range(n):
        longest[t] = max((longest[s] + 1 for s in B[t]), default=0)
    assert graph.depth(graph.dependency_graph(p, n)) == max(longest)


def brute_disjoint_paths(G, sources, targets):
    """Largest k such that k paths with pairwise disjoint vertex sets join sources to targets."""
    sources, targets = set(sources), set(targets)
    paths = []
    for s in sources:
        for t in targets:
            paths += [frozenset(path) for path in nx.all_simple_paths(G, s, t)] if s != t else [frozenset([s])]
    best = 0
    for k in range(1, min(len(sources), len(targets)) + 1):
        if any(all(a.isdisjoint(b) for a, b in itertools.combinations(c, 2))
               for c in itertools.combinations(paths, k)):
            best = k
        else:
            break
    return best


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_max_flow_counts_vertex_disjoint_paths(n, seed):
    rng = np.random.default_rng(seed)
    p = Pattern.from_masks(np.tril(rng.random((n, n)) < 0.4), np.tril(rng.random((n, n)) < 0.4, -1))
    G = graph.dependency_graph(p, n)
    F = graph.split_graph(G)
    for cut in range(n - 1):
        sources, targets = [graph.u(s) for s in range(cut + 1)], [graph.h(t) for t in range(cut + 1, n)]
        assert graph.max_disjoint_paths(F, sources, targets) == brute_disjoint_paths(G, sources, targets)
    assert set(F.nodes) == {(v, side) for v in G for side in ("in", "out")}  # super nodes removed again


def test_vertex_capacity_matters():
    """Two inputs feed one state that feeds two outputs: one vertex-disjoint path, though two edge-disjoint."""
    p = Pattern.from_sets([[0], [0, 1], [2], [3]], [[], [], [1], [1]])
    # u0 -> h1 -> h2 and u1 -> h1 -> h3 share the vertex h1
    G = graph.dependency_graph(p, 4)
    F = graph.split_graph(G)
    assert graph.max_disjoint_paths(F, [graph.u(0), graph.u(1)], [graph.h(2), graph.h(3)]) == 1
    q = Pattern.from_sets([[0], [0, 1], [1], [2]], [[], [], [1], [1]])
    G = graph.dependency_graph(q, 4)
    F = graph.split_graph(G)
    # u1 -> h2 directly and u0 -> h1 -> h3
    assert graph.max_disjoint_paths(F, [graph.u(0), graph.u(1)], [graph.h(2), graph.h(3)]) == 2


def test_graph_limit():
    with pytest.raises(GLRError, match=f"over the limit {graph.GRAPH_MAX_EDGES}"):
        graph.dependency_graph(Pattern.from_spec("attention"), 4096)


def test_graph_limit_is_inclusive_and_the_graph_names_its_pattern(monkeypatch):
    """A graph of exactly GRAPH_MAX_EDGES edges is built (one more is refused), and it carries its pattern's spec
    and n as graph attributes (fenwick at n = 16: the edges counted from ``p.sets``)."""
    p = Pattern.from_spec("fenwick")
    A, B = p.sets(16)
    edges = sum(len(x) for x in A) + sum(len(x) for x in B)
    monkeypatch.setattr(graph, "GRAPH_MAX_EDGES", edges)
    G = graph.dependency_graph(p, 16)
    assert G.number_of_edges() == edges and G.graph == {"spec": "fenwick", "n": 16}
    monkeypatch.setattr(graph, "GRAPH_MAX_EDGES", edges - 1)
    with pytest.raises(GLRError, match=f"has {edges} edges, over the limit {edges - 1}"):
        graph.dependency_graph(p, 16)


def test_no_sources_or_no_targets_give_no_paths():
    """With no source or no target (or neither) there is no path: 0, and the split graph is left unchanged."""
    G = graph.dependency_graph(Pattern.from_spec("attention"), 4)
    F = graph.split_graph(G)
    before = set(F.edges)
    every_u, every_h = [graph.u(s) for s in range(4)], [graph.h(t) for t in range(4)]
    assert graph.max_disjoint_paths(F, every_u, every_h) == 4
    for sources, targets in (([], every_h), (every_u, []), ([], [])):
        assert graph.max_disjoint_paths(F, sources, targets) == 0
        assert set(F.edges) == before
