"""The readout's boundary states solve one unit lower triangular system, forward and backward (its
``solve_boundaries``).

Statement. In an aligned chunk layout (``readout_plan``) each boundary state reads boundary states strictly before
it: ``H_p = L_p + sum_j E[p, j] H_{X_j(p)}`` with ``X_j(p) < p``, where ``L_p`` is its own window's part. Let
``E_PP[p, X_j(p)] = E[p, j]`` (|P| x |P|). Then

    H = (I - E_PP)^{-1} L,                                      (the forward's walk)
    Z = (I - E_PP)^{-T} G,                                      (the backward's reverse walk)

where ``Z_p = G_p + sum_{(p', j): X_j(p') = p} E[p', j] Z_{p'}`` is the total gradient of a loss in ``H_p`` and G its
direct part. ``I - E_PP`` is unit lower triangular, so both exist for any coefficients.

Support. For generic E, ``(I - E_PP)^{-1}[p, q]`` (q < p) is nonzero exactly where boundary q reaches boundary p
through the sources (the transitive closure of ``q -> p`` for ``q = X_j(p)``): the entry is the sum over those paths
of the products of their coefficients. fenwick's boundary states each read their predecessor, so its inverse is
dense below the diagonal: the solve's product ``H = (I - E_PP)^{-1} L`` cannot gather a few ``L`` windows a row.

Derivation. Stacking the walk's equations gives ``(I - E_PP) H = L``; ``E_PP`` is strictly lower triangular
because every source is an earlier boundary state. For the backward, ``l = <G, H> = <G, (I - E_PP)^{-1} L>`` so
``dl/dL = (I - E_PP)^{-T} G``, and ``dl/dH_p`` (each H_p also feeds the later states that read it) satisfies
``(I - E_PP)^T Z = G``: row p of it is the reverse walk's step. Below with sympy on fenwick's sources (|P| = 8), then
exactly, in rationals, on the sources of every aligned layout of fenwick, power2 and blocks:5 at n = 1 .. 48 (chunks of
4, 8 and 16).
"""
import itertools
import random
from fractions import Fraction

import networkx as nx
import numpy as np
import sympy as sp
from sympy import QQ
from sympy.polys.matrices import DomainMatrix

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import aligned_layout, boundary_tables


def sources(spec: str, n: int, chunk: int) -> np.ndarray | None:
    """Each boundary state's sources as indices of boundary states (-1 padded), or None where the pattern has no
    aligned layout at this chunk."""
    layout = aligned_layout(Pattern.from_spec(spec).tables(n), chunk)
    return None if layout is None or layout.m == 0 else boundary_tables(layout).b_idx


def walk(src, coef, local):
    """The forward walk: ``H_p = L_p + sum_j E[p, j] H_{X_j(p)}`` in order of p."""
    states = []
    for p, row in enumerate(src):
        states.append(local[p] + sum(coef[p][j] * states[s] for j, s in enumerate(row) if s >= 0))
    return states


def reverse_walk(src, coef, direct):
    """The backward walk: ``Z_p = G_p + (what later states pushed into p)``, p from last to first, each step pushing
    ``E[p, j] Z_p`` into its sources."""
    z = list(direct)
    for p in reversed(range(len(src))):
        for j, s in enumerate(src[p]):
            if s >= 0:
                z[s] = z[s] + coef[p][j] * z[p]
    return z


def system(src, coef, zero, one) -> list[list]:
    """``I - E_PP`` as rows (entries in coef's type)."""
    P = len(src)
    matrix = [[one if q == p else zero for q in range(P)] for p in range(P)]
    for p in range(P):
        for j, s in enumerate(src[p]):
            if s >= 0:
                assert s < p, (p, s)                    # strictly earlier: unit lower triangular
                matrix[p][s] -= coef[p][j]
    return matrix


def reached(src) -> set[tuple[int, int]]:
    """The pairs ``(p, q)``, q < p, where boundary q reaches boundary p through the sources (networkx's closure)."""
    graph = nx.DiGraph((int(s), p) for p, row in enumerate(src) for s in row if s >= 0)
    return {(p, q) for q, p in nx.transitive_closure_dag(graph).edges}


def derive(P=8):
    src = sources("fenwick", 16 * P + 1, 16)
    assert src is not None and len(src) >= P
    src = src[:P]
    coef = [[sp.Symbol(f"e{p}_{j}") for j in range(src.shape[1])] for p in range(P)]
    local, direct = sp.symbols(f"L0:{P}"), sp.symbols(f"G0:{P}")
    inverse = sp.Matrix(system(src, coef, sp.Integer(0), sp.Integer(1))).inv()
    for got, want in zip(walk(src, coef, local), inverse * sp.Matrix(local)):
        assert sp.expand(got - want) == 0
    for got, want in zip(reverse_walk(src, coef, direct), inverse.T * sp.Matrix(direct)):
        assert sp.expand(got - want) == 0
    print(f"fenwick's first {P} boundary states ({int((src >= 0).sum())} sources, symbolic E): walk = (I - E_PP)^-1 L "
          "and reverse walk = (I - E_PP)^-T G")
    tree = np.array([[-1, -1], [0, -1], [0, -1], [1, -1], [1, -1], [2, -1], [2, -1], [3, 5]])  # a sparse closure
    for spec, src in (("fenwick", sources("fenwick", 16 * P + 1, 16)[:P]), ("a binary tree with a join", tree)):
        coef = [[sp.Symbol(f"e{p}_{j}") for j in range(src.shape[1])] for p in range(P)]
        inverse = sp.Matrix(system(src, coef, sp.Integer(0), sp.Integer(1))).inv()
        support = {(p, q) for p in range(P) for q in range(p) if sp.expand(inverse[p, q]) != 0}
        assert support == reached(src), spec
        print(f"{spec}: the symbolic inverse's {len(support)} nonzero entries below the diagonal (of "
              f"{P * (P - 1) // 2}) are the pairs the sources connect")
    assert len(reached(tree)) < P * (P - 1) // 2


def exact_solve(matrix, rhs) -> list[Fraction]:
    """``matrix^{-1} rhs`` in exact rationals by sympy's LU solve over QQ (no triangularity assumed)."""
    def field(rows):
        return [[QQ(x.numerator, x.denominator) for x in row] for row in rows]
    a = DomainMatrix(field(matrix), (len(matrix), len(matrix)), QQ)
    x = a.lu_solve(DomainMatrix(field([[y] for y in rhs]), (len(rhs), 1), QQ)).to_Matrix()
    return [Fraction(int(v.p), int(v.q)) for v in x]


def check(n_max=48, chunks=(4, 8, 16), seed=0):
    rng = random.Random(seed)
    layouts = 0
    for spec, n, chunk in itertools.product(("fenwick", "power2", "blocks:5"), range(1, n_max + 1), chunks):
        src = sources(spec, n, chunk)
        if src is None:
            continue
        P = len(src)
        coef = [[Fraction(rng.randint(-3, 3), rng.randint(1, 4)) for _ in range(src.shape[1])] for _ in range(P)]
        local = [Fraction(rng.randint(-9, 9), rng.randint(1, 9)) for _ in range(P)]
        matrix = system(src, coef, Fraction(0), Fraction(1))
        assert exact_solve(matrix, local) == walk(src, coef, local), (spec, n, chunk)
        transposed = [list(column) for column in zip(*matrix)]
        assert exact_solve(transposed, local) == reverse_walk(src, coef, local), (spec, n, chunk)
        if spec == "fenwick":                           # each reads its predecessor: a dense lower triangle
            assert all(p - 1 in src[p] for p in range(1, P)), (n, chunk)
            assert reached(src) == {(p, q) for p in range(P) for q in range(p)}, (n, chunk)
        layouts += 1
    assert layouts > 100
    print(f"checked {layouts} aligned layouts exactly (fenwick, power2, blocks:5; n = 1..{n_max}; chunks {chunks}; "
          "random rational E, L, G): every source is an earlier boundary state, the solve equals the walk and its "
          "transpose the reverse walk; fenwick's boundary states each read their predecessor, so each reaches every "
          "earlier one")

