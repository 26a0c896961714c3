"""Hankel rank <= min vertex cut <= live set (cache), cut by cut (docs/mathematics.md).

Statement. Let M = (I - B)^{-1} A for coefficients on the supports of a pattern, and fix a cut t. Then

    rank M[t+1:, :t+1]  <=  kappa(t)  <=  |live set after step t|,

where kappa(t) is the minimum number of vertices meeting every route from {u_0..u_t} to {h_{t+1}..h_{n-1}}
in the dependency DAG, which by Menger's theorem equals the maximum number of vertex-disjoint such
routes. For independent random coefficients the first inequality is an equality (generic Hankel rank).
Taking the max over t: hankel_rank_max <= max_t kappa(t) <= cache_peak.
"""
from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from glrtheory import Pattern
from glrtheory import analysis as an
from glrtheory.prime_field import mixing_matrix_mod_p, rank_mod_p

DERIVATION = """
1. Routes. B is strictly lower triangular, so (I - B)^{-1} = sum_k B^k (finite) and
     M[t', s] = sum over routes u_s -> h_x0 -> h_x1 -> ... -> h_t' of a[x0, s] b[x1, x0] ... ,
   one A-edge and then B-edges: the weighted path matrix of the dependency DAG.
2. Factoring through a cut. Let C be a set of vertices meeting every route from S = {u_s : s <= t} to
   T = {h_t' : t' > t}. Split each such route at its FIRST vertex c in C: weight = w(prefix to c) *
   w(suffix from c); prefixes avoid C before c. Hence M[T, S] = P Q with Q[c, s] = sum of prefix weights
   (|C| x |S|) and P[t', c] = sum of suffix weights (|T| x |C|), so rank M[T, S] <= |C|. Minimizing over C
   gives rank <= kappa(t) = max number of vertex-disjoint routes (Menger), which networkx computes as a
   max-flow on the node-split graph.
3. Generic equality (Lindstrom-Gessel-Viennot). For |S'| = |T'| = k, det M[T', S'] is a signed sum over
   families of k vertex-disjoint routes S' -> T' of the products of their edge weights. Distinct
   vertex-disjoint families use distinct edge sets, hence distinct monomials in the independent edge
   weights: no cancellation, and det != 0 as a polynomial iff such a family exists. So the generic rank is
   kappa(t); random coefficients over F_p realize it with probability >= 1 - n^2/p (Schwartz-Zippel).
4. The live set is a cut. A route from u_s (s <= t) to h_t' (t' > t) has a first edge that jumps over t:
   either u_s -> h_y with s in A(y), y > t (then u_s is live after t), or h_x -> h_y with x <= t < y and
   x in B(y) (then h_x is live after t). That vertex lies on the route, so the live set meets every route
   and kappa(t) <= |live set after t| <= cache_peak.
"""


def _per_cut(p: Pattern, n: int, seed: int = 0):
    """(flow, exact generic rank over F_p, rank with all coefficients 1, live size) for each cut."""
    flow = an.hankel_profile(p, n)
    exact = an.hankel_profile_exact(p, n, seed=seed)
    a_idx, b_idx = p.tables(n)
    ones = mixing_matrix_mod_p(a_idx, b_idx, (a_idx >= 0).astype(np.int64), (b_idx >= 0).astype(np.int64))
    special = np.array([rank_mod_p(ones[t + 1:, : t + 1]) for t in range(n - 1)], dtype=np.int64)
    return flow, exact, special, an.live_profile(p, n)[: n - 1]


def _check(p: Pattern, n: int, seed: int = 0) -> None:
    flow, exact, special, live = _per_cut(p, n, seed)
    assert (flow == exact).all(), (p.spec, n, flow, exact)
    assert (special <= flow).all() and (flow <= live).all(), (p.spec, n, special, flow, live)


def symbolic_example() -> None:
    """A symbolic instance: fenwick at n = 6, coefficients as symbols; rank over Q(a, b) per cut."""
    n = 6
    p = Pattern.from_spec("fenwick")
    a_idx, b_idx = p.tables(n)
    A = sp.zeros(n, n)
    B = sp.zeros(n, n)
    for t in range(n):
        for s in a_idx[t][a_idx[t] >= 0]:
            A[t, s] = sp.Symbol(f"a_{t}_{s}")
        for s in b_idx[t][b_idx[t] >= 0]:
            B[t, s] = sp.Symbol(f"b_{t}_{s}")
    M = (sp.eye(n) - B).inv() * A
    flow = an.hankel_profile(p, n)
    live = an.live_profile(p, n)
    print(f"  symbolic check, fenwick n={n}: M[4, 1] = {sp.factor(M[4, 1])}")
    for t in range(n - 1):
        r = M[t + 1:, : t + 1].rank(simplify=True)
        print(f"    cut {t}: rank over Q(a,b) = {r}, max-flow = {flow[t]}, live = {live[t]}")
        assert r == flow[t] <= live[t]


def exhaustive() -> int:
    """Every pattern with n <= 3, and every B with diagonal A for n = 4, 5."""
    count = 0
    for n in (1, 2, 3):
        lower = [(t, s) for t in range(n) for s in range(t + 1)]
        strict = [(t, s) for t, s in lower if s < t]
        for am in itertools.product((0, 1), repeat=len(lower)):
            for bm in itertools.product((0, 1), repeat=len(strict)):
                A = np.zeros((n, n), dtype=bool)
                Bm = np.zeros((n, n), dtype=bool)
                for (t, s), v in zip(lower, am):
                    A[t, s] = v
                for (t, s), v in zip(strict, bm):
                    Bm[t, s] = v
                _check(Pattern.from_masks(A, Bm), n, seed=count)
                count += 1
    for n in (4, 5):
        strict = [(t, s) for t in range(n) for s in range(t)]
        for bm in itertools.product((0, 1), repeat=len(strict)):
            Bm = np.zeros((n, n), dtype=bool)
            for (t, s), v in zip(strict, bm):
                Bm[t, s] = v
            _check(Pattern.from_masks(np.eye(n, dtype=bool), Bm), n, seed=count)
            count += 1
    return count


TIGHTNESS_N = 64


def tightness_table() -> None:
    """Where each inequality is tight or strict, with max over cuts (n = 64)."""
    n = TIGHTNESS_N
    print(f"\n  n = {n}; 'ones' = every coefficient 1 (a specific, non-generic choice), max over cuts:")
    print(f"  {'pattern':<14}{'rank(ones)':>11}{'generic':>9}{'max cut':>9}{'cache':>7}")
    rows = {}
    for spec in ("ssm", "power2", "quadratic", "fenwick", "blocks"):
        flow, exact, special, live = _per_cut(Pattern.from_spec(spec), n)
        assert (flow == exact).all() and (special <= flow).all() and (flow <= live).all()
        rows[spec] = (int(special.max()), int(exact.max()), int(flow.max()), int(live.max()),
                      an.cache_peak(Pattern.from_spec(spec), n))
        print(f"  {spec:<14}{rows[spec][0]:>11}{rows[spec][1]:>9}{rows[spec][2]:>9}{rows[spec][4]:>7}")
    # tight: first order and power lags keep exactly what they can express
    assert rows["ssm"][1:3] == (1, 1) and rows["ssm"][4] == 1
    assert rows["power2"][1] == rows["power2"][4] == n // 2
    # strict second inequality: quadratic lags reach the n/2 bound of a square block but keep more
    assert rows["quadratic"][2] == n // 2 < rows["quadratic"][4]
    # strict first inequality (specific coefficients) and strict second: fenwick and blocks
    assert rows["fenwick"][0] < rows["fenwick"][2] < rows["fenwick"][4]
    assert rows["blocks"][0] < rows["blocks"][2] < rows["blocks"][4]
    q = Pattern.from_spec("quadratic")
    t = int(np.argmax(an.live_profile(q, n)))
    print(f"  quadratic at its busiest cut t={t}: live set {an.live_profile(q, n)[t]}, "
          f"max-flow {an.hankel_profile(q, n)[t]} (<= min(t+1, n-1-t) = {min(t + 1, n - 1 - t)})")


def main() -> None:
    print(__doc__)
    print("Derivation:", DERIVATION)
    symbolic_example()
    count = exhaustive()
    print(f"\n  exhaustive: {count} patterns (all with n <= 3; diagonal A and every B for n = 4, 5): at every cut "
          "rank(ones) <= max-flow == rank over F_p with random coefficients <= live set")
    tightness_table()


if __name__ == "__main__":
    main()
