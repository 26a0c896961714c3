"""fenwick's carries have full rank: a chunk output of the kernels' form reads no fewer boundary states than it does.

Statement. In the aligned chunk layout (``readout_plan.aligned_layout``, chunks of C rows R), chunk c's rows read
the boundary states ``X(c)`` outside the chunk. Solving the chunk's own recurrence, ``H_R = T_c (A_R U_R +
B_{R,X} H_X)`` with ``T_c = (I - B_RR)^{-1}``, so its output ``o_t = q_t^T H_t`` has the boundary term ``q_t^T sum_j
E_c[t, j] H_{X_j}`` with the carries ``E_c = T_c B_{R,X}`` (``[C, |X(c)|]``). For generic coefficients

    rank E_c = nu(c),   the size of a largest matching between R and X(c) in "row t reads state X_j directly",

and for fenwick ``nu(c) = |X(c)| = popcount(c - 1) + 1`` in every chunk of more than |X(c)| rows: E_c has full
column rank. Consequence: a chunk output that forms the boundary term as ``sum_{r < k} f_r[t] q_t^T G_r``, with states
``G_r = sum_j g_rj H_{X_j}`` and per-row weights f_r (the kernels' form: one product of Q with each state, each
row scaled), has ``E_c = F G^T`` for all H, so ``k >= rank E_c = |X(c)|``: it multiplies Q by at least |X(c)|
states, ``C d_k d_v`` multiply-adds each, as the kernels do (``fenwick_readout_work``: ``R(k) C d_k d_v`` over
the chunks, 3.0x ssm's chunk output at the benchmark's shape). Combining the states first (G with fewer rows than
X) cannot serve every row: this is why fenwick's readout forward, at 2.47x fla's ``chunk_simple_gla``, did not
reach the issue's 1.5x (``docs/gpu_readout.md``). A bound within that form, not over every algorithm.

Derivation. ``T_c`` is unit lower triangular, so ``rank E_c = rank B_{R,X}``. The entries of B_{R,X} are distinct
coefficients ``b[t, slot]``, independent indeterminates, so its generic rank is the largest number of them in
distinct rows and columns (a nonzero term of a minor is a matching; distinct matchings give distinct monomials,
so no cancellation): derived in sympy on a small chunk, where the symbolic E_c has the matching's rank. The bound
``k >= rank E_c`` is ``rank(F G^T) <= k``. Check, exhaustively: every layout of fenwick for n = 1 .. 2^8 + 1 and
chunks of 4, 8 and 16; per chunk, nu(c) by networkx's bipartite matching, and E_c computed independently of the
kernels (the chunk's rows run naively mod p = 2^31 - 1 with random coefficients, zero inputs and the states of
X(c) set to unit vectors; a read outside the chunk and X(c) fails the check) has rank nu(c) mod p, nu(c) =
|X(c)| wherever the chunk has more than |X(c)| rows.
"""
import networkx as nx
import numpy as np
import sympy as sp

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import aligned_layout
from glrtheory.prime_field import PRIME, rank_mod_p


def chunk_rows(layout, c: int) -> range:
    """The rows of chunk c (the first chunk may be short)."""
    first = c * layout.chunk - layout.shift
    return range(max(first, 0), min(first + layout.chunk, layout.tables.n))


def sources(layout, c: int) -> list[int]:
    """The positions of the boundary states X(c) that chunk c reads."""
    return [int(layout.boundary[j]) for j in layout.ext[c, :layout.ext_count[c]]]


def matching(layout, c: int) -> int:
    """nu(c): a largest matching between chunk c's rows and the states of X(c) they read directly."""
    rows, X = chunk_rows(layout, c), set(sources(layout, c))
    b = layout.tables.b_idx
    graph = nx.Graph((("row", t), ("state", int(s))) for t in rows for s in b[t] if s >= 0 and s in X)
    top = [v for v in graph if v[0] == "row"]
    return len(nx.bipartite.maximum_matching(graph, top_nodes=top)) // 2 if top else 0


def carries_mod_p(layout, c: int, coef) -> np.ndarray:
    """E_c mod p: chunk c's rows run as ``h_t = sum_j b[t, j] h[b_idx[t, j]]`` with zero inputs, ``b[t, j] =
    coef(t, b_idx[t, j])`` (an integer mod p) and the states of X(c) the unit vectors; asserts that no row reads a
    state outside the chunk and X(c)."""
    X = sources(layout, c)
    h = {s: np.eye(len(X), dtype=np.int64)[j] for j, s in enumerate(X)}
    rows = chunk_rows(layout, c)
    for t in rows:
        row = np.zeros(len(X), dtype=np.int64)
        for s in layout.tables.b_idx[t]:
            if s < 0:
                continue
            assert s in h, (layout.tables.n, layout.chunk, c, t, int(s))      # aligned: chunk or X(c) only
            row = (row + coef(t, int(s)) * h[s]) % PRIME
        h[t] = row
    return np.array([h[t] for t in rows], dtype=np.int64).reshape(len(rows), len(X))


def derive():
    layout = aligned_layout(Pattern.from_spec("fenwick").tables(20), 4)
    c = max(range(layout.n_chunks), key=lambda c: layout.ext_count[c])
    rows, X = list(chunk_rows(layout, c)), sources(layout, c)
    b = layout.tables.b_idx
    coef = {(t, int(s)): sp.Symbol(f"b_{t}_{s}") for t in rows for s in b[t] if s >= 0}
    inside = sp.Matrix(len(rows), len(rows), lambda i, k: coef.get((rows[i], rows[k]), 0))
    reads = sp.Matrix(len(rows), len(X), lambda i, j: coef.get((rows[i], X[j]), 0))
    carries = (sp.eye(len(rows)) - inside).inv() * reads
    assert (sp.eye(len(rows)) - inside).det() == 1                      # unit lower triangular
    rank = carries.rank(simplify=True)
    assert rank == reads.rank() == matching(layout, c) == len(X) == bin(c - 1).count("1") + 1
    print(f"n = 20, C = 4, chunk {c}: X(c) = {X}; E_c = (I - B_RR)^(-1) B_RX symbolically has rank {rank} = |X(c)| "
          f"= popcount({c - 1}) + 1 = the largest matching")
    k = sp.Symbol("k", integer=True, positive=True)
    print(f"E_c = F G^T with G of {k} rows: rank E_c <= {k}, so {k} >= |X(c)| state products a chunk")


def check(n_max=2**8 + 1, chunks=(4, 8, 16)):
    rng = np.random.default_rng(0)
    tables = {n: Pattern.from_spec("fenwick").tables(n) for n in range(1, n_max + 1)}
    layouts = full = 0
    for n, C in ((n, C) for n in tables for C in chunks if C <= n):
        layout = aligned_layout(tables[n], C)
        assert layout is not None and layout.chunk == C, (n, C)
        for c in range(layout.n_chunks):
            size = int(layout.ext_count[c])
            if not size:
                continue
            nu = matching(layout, c)
            generic = lambda t, s: int(rng.integers(1, PRIME))      # noqa: E731   a fresh coefficient a read
            assert rank_mod_p(carries_mod_p(layout, c, generic)) == nu, (n, C, c)
            if len(chunk_rows(layout, c)) > size:
                assert nu == size, (n, C, c, nu, size)
                full += 1
        layouts += 1
    assert layouts > 700 and full > 5000
    print(f"checked {layouts} layouts (n = 1..{n_max}, chunks {chunks}): every chunk's carries have the largest "
          f"matching's rank mod p, and full column rank |X(c)| in all {full} chunks of more than |X(c)| rows")
