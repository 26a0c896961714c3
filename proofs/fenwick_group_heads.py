"""fenwick's boundary states split into groups that solve alone, joined through a few heads (a lead for the readout).

Statement. Number fenwick's boundary states 0 .. P-1 (``readout_plan``'s layout; state p reads the states X(p)) and
group them G at a time, G a power of two: group g holds the states ``G (g - 1) + 1 .. G g`` (state 0 alone in group
0); call the states ``G g`` (the last of each group) heads. Then

1. every source of a state outside its own group is a head, and every state of group g reads the same such heads,
   all of them directly: ``X_g``, the heads among the sources of the group's first state;
2. so ``H_p = l_p + sum_{q in X_g} F[p, q] H_q`` for p in group g, with the group's own solve
   ``l_g = (I - E_gg)^{-1} L_g`` and ``F = (I - E_gg)^{-1} E_g,X_g`` (groups independent of each other), and the
   heads solve among themselves: ``H_head(g) = l_head(g) + sum_{q in X_g} F[head(g), q] H_q``;
3. a chunk reads its boundary state's sources (``boundary_tables``), so its term ``sum_j E[i, j] H_{X_j}`` is
   ``sum_{s in the group} E[i, s] l_s + sum_{q in X_g} (E[i, q] + sum_s E[i, s] F[s, q]) H_q``: as many state reads,
   of l and of heads only.

So the states other than the heads need never be formed. Today ``boundary_local`` writes L, the product reads it
and writes H, and the chunk output reads H: 4 P states through HBM. With groups, the groups' solves write l, the
heads' pass reads the heads' l and writes their H, and the chunk output reads l and heads: ``2 P + 2 P / G``, so
``2 P (1 - 1 / G)`` states fewer (the product's two). At the benchmark's shape (P = 256, d 128, bf16, B H = 32) that
is 503 MB at G = 16, of the 2464 MB that ``benchmarks/readout_bytes.py`` counts for today's launches; E's new
columns (``E + E F``, about 19 MB each way) and the small inverses are not counted. Not built: each group's solve
would hold G state tiles on chip (``docs/gpu_readout.md``).

Derivation. State p = G (g - 1) + r (1 <= r <= G) reads the roundings of p - 1 = G (g - 1) + (r - 1). Clearing the
set bits of r - 1 one at a time gives states ``G (g - 1) + r'`` with r' >= 1, all in the group; then comes the head
``G (g - 1)`` and its own roundings, multiples of G: the same heads for every r, each read directly. Below in sympy
for P = 8, G = 4, then exactly, in rationals, on every fenwick layout up to n = 128.
"""
import itertools
import random
from fractions import Fraction

import sympy as sp

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import aligned_layout, boundary_tables
from proofs.boundary_solve import sources, walk


def group(p: int, G: int) -> int:
    """State p's group: ``ceil(p / G)`` (state 0 alone in group 0)."""
    return -(-p // G)


def group_heads(src, G: int) -> dict[int, set[int]]:
    """``{g: X_g}``, the heads each group reads, after checking claim 1 on the sources."""
    heads = {}
    for p, row in enumerate(src):
        outside = {int(s) for s in row if s >= 0 and group(s, G) != group(p, G)}
        assert all(s % G == 0 for s in outside), (p, outside)
        assert heads.setdefault(group(p, G), outside) == outside, (p, outside)
    return heads


def solve_in_groups(src, coef, local, G: int, zero):
    """Claims 2 and 3: ``(l, F)`` by each group's own walk (sources outside the group set to zero, or to a unit
    for F's columns), then the heads' states from the heads' recurrence alone; and every state, rebuilt as
    ``l_p + sum_q F[p, q] H_q`` from those heads."""
    heads = group_heads(src, G)
    P = len(src)
    own, F = {}, {}
    for g, X in heads.items():
        members = [p for p in range(P) if group(p, G) == g]

        def walk_group(base, outside):      # the group's walk, its sources outside the group given by ``outside``
            states = {}
            for p in members:
                states[p] = base[p] + sum(coef[p][j] * (states[s] if group(s, G) == g else outside[s])
                                          for j, s in enumerate(src[p]) if s >= 0)
            return states

        zeros = dict.fromkeys(X, zero)
        own.update(walk_group(local, zeros))
        for q in X:                          # F[:, q]: the group's answer to a unit head q, no local part
            column = walk_group([zero] * P, {**zeros, q: zero + 1})
            for p in members:
                F[p, q] = column[p]
    head_states = {}
    for h in sorted(p for p in range(P) if p % G == 0):          # the heads in order: each reads earlier heads
        head_states[h] = own[h] + sum(F[h, q] * head_states[q] for q in heads[group(h, G)])
    states = [own[p] + sum(F[p, q] * head_states[q] for q in heads[group(p, G)]) for p in range(P)]
    return own, F, heads, states


def derive(P=8, G=4):
    src = sources("fenwick", 16 * P + 1, 16)[:P]
    coef = [[sp.Symbol(f"e{p}_{j}") for j in range(src.shape[1])] for p in range(P)]
    local = list(sp.symbols(f"L0:{P}"))
    _, _, heads, states = solve_in_groups(src, coef, local, G, sp.Integer(0))
    for p, (got, want) in enumerate(zip(states, walk(src, coef, local))):
        assert sp.expand(got - want) == 0, p
    print(f"fenwick's first {P} boundary states in groups of {G} (heads read: {dict(sorted(heads.items()))}), symbolic "
          "E and L: each group's own solve, then the heads' recurrence, rebuild every state of the walk")


def check_groups(rng, layout, src, G: int) -> int:
    """Claims 2 and 3 on one layout (its boundary states' sources ``src``) in groups of G, with random rational E and
    L: the groups' solves and the heads' recurrence give the walk's states, and every chunk's term (the last chunk,
    after the last state, reads as state P would) from l and heads equals the one from H. Returns the state reads."""
    P, reads, where = len(src), 0, (layout.tables.n, layout.chunk, G)
    coef = [[Fraction(rng.randint(-3, 3), rng.randint(1, 4)) for _ in range(src.shape[1])] for _ in range(P)]
    local = [Fraction(rng.randint(-9, 9), rng.randint(1, 9)) for _ in range(P)]
    own, F, heads, states = solve_in_groups(src, coef, local, G, Fraction(0))
    H = walk(src, coef, local)
    assert states == H, where
    for c in range(layout.n_chunks):     # claim 3: each chunk with its own coefficients e
        row = [int(s) for s in layout.ext[c][:layout.ext_count[c]]]
        assert c >= P or sorted(row) == sorted(int(s) for s in src[c] if s >= 0), (where, c)
        g = group(c, G)
        X = {s for s in row if group(s, G) != g}
        assert all(s % G == 0 for s in X) and X == heads.get(g, X), (where, c)
        e = [Fraction(rng.randint(-5, 5), rng.randint(1, 5)) for _ in row]
        inside = [(j, s) for j, s in enumerate(row) if s not in X]
        weight = {q: sum((e[j] for j, s in enumerate(row) if s == q), Fraction(0))
                  + sum(e[j] * F[s, q] for j, s in inside) for q in X}
        term = sum(e[j] * own[s] for j, s in inside) + sum(weight[q] * H[q] for q in X)
        assert term == sum(e[j] * H[s] for j, s in enumerate(row)), (where, c)
        reads += len(row)
    return reads


def check(n_max=128, chunks=(4, 8, 16), groups=(2, 4, 8, 16), seed=0):
    rng = random.Random(seed)
    cases = reads = 0
    for n, chunk in itertools.product(range(1, n_max + 1), chunks):
        layout = aligned_layout(Pattern.from_spec("fenwick").tables(n), chunk)    # as ``sources`` builds it
        if layout is None or layout.m == 0:
            continue
        src = boundary_tables(layout).b_idx
        P = len(src)
        for G in (G for G in groups if G < P):
            cases, reads = cases + 1, reads + check_groups(rng, layout, src, G)
    assert cases > 500
    assert group_heads(sources("fenwick", 16384, 64), 16)       # claim 1 at the benchmark's 256 states a head
    print(f"checked {cases} fenwick layouts exactly (n = 1..{n_max}, chunks {chunks}, groups {groups}; random "
          f"rational E and L): sources outside a group are heads, the same for the whole group; the groups' own "
          f"solves and the heads' recurrence give the walk's states; every chunk's term (the last chunk's too) from l "
          f"and heads, {reads} state reads, as many as from H; claim 1 also at n = 16384, chunks of 64, G = 16")


def bytes_saved(P=256, d=128, heads=32, G=16, element=2) -> float:
    """MB fewer through HBM: ``2 P (1 - 1 / G)`` states of ``d x d`` elements, for each of ``heads`` (B H)."""
    return 2 * P * (1 - 1 / G) * d * d * element * heads / 1e6


def main():
    print(__doc__)
    derive()
    check()
    saved = bytes_saved()
    assert round(saved) == 503
    print(f"at B2 T16384 H16 D128 bf16 (P = 256 boundary states a head), groups of 16: {saved:.0f} MB fewer")


if __name__ == "__main__":
    main()
