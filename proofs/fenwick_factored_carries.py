"""With GLRMixer's source scores, fenwick's carries have rank 1: a chunk output can read one combined state.

Statement. ``fenwick_carry_rank`` shows that for generic coefficients chunk c's carries ``E_c = T_c B_{R,X}`` have
full column rank |X(c)|, so a chunk output of the kernels' form multiplies Q by |X(c)| states. ``GLRMixer``'s
coefficients are not generic: with source scores and no lag bias, ``b[t, j] = g_t softmax_j(c_{s_j})`` over row t's
sources ``s_j``, that is

    b[t, j] = f_t h_{s_j},   f_t = g_t / sum_j exp(c_{s_j}),   h_s = exp(c_s).

In fenwick's aligned layout every row of chunk c that reads a state of X(c) reads all of them (the rows' reads of
X(c) are all or none), so ``B_{R,X} = (f_R * m_c) h_X^T`` with m_c the rows that read X(c), and

    E_c = e_c h_X^T,   e_c = T_c (f_R * m_c):   rank E_c <= 1,

whatever ``T_c = (I - B_RR)^{-1}``. The chunk's boundary term is then ``e_c[t] q_t^T S_c`` with one combined state
``S_c = sum_j h_{X_j} H_{X_j}``: one product of Q with a state a chunk, as ssm's, in place of |X(c)|. At the
benchmark's shape (T = 16384, chunks of 64) that is 256 products in place of 1,280 per head: the chunk output's
state products fall from 85.9 to 17.2 GFLOP (B2 H16 D128) of its 103.1, and E's 19 MB shrink to e's 2 MB. A lag
bias (a learned score per bucket of t - s) breaks the factoring: its carries' ranks rise above 1, up to |X(c)|.

A lead for the forward, not built (docs/gpu_readout.md): the op would take b as its factors (f, h), the solve's
product would form S = (G U^T) L in place of H = U^T L (the backward still needs H), and the chunk output would read
S_c. Its bytes stay about the same (961 MB, each state read once either way), so the gain is in its products and in
E: an estimate, not measured, of about 0.85-0.9 ms for fenwick's forward against 1.054 today, still above the 0.645 ms
that 1.5x fla's ``chunk_simple_gla`` allows. It holds only for source scores without a lag bias, and the benchmark's
random coefficients would have to be drawn factored.

Derivation. Symbolic f_t and h_s on the chunk of fenwick at n = 20, chunks of 4, with the most boundary states:
sympy gives ``E_c = e_c h_X^T`` with ``e_c = T_c (f * m)`` and rank 1. Check, exhaustively: every layout of fenwick
for n = 1 .. 2^8 + 1 and chunks of 4, 8 and 16: the rows' reads of X(c) are all or none, and E_c (the chunk's rows
run mod p = 2^31 - 1 with factored random coefficients, the states of X(c) set to unit vectors) has rank 1 mod p
wherever some row reads X(c); with a random factor per lag bucket on top (a lag bias), some chunk's rank exceeds 1.
Then a float64 ``GLRMixer('fenwick')`` with random weights: the carries its own coefficients give have numerical
rank 1 in every chunk of a layout at n = 200, and ranks above 1 once a lag bias is set.
"""
import numpy as np
import sympy as sp
import torch

from glrtheory import Pattern
from glrtheory.kernels.layers import GLRMixer
from glrtheory.kernels.scan.readout_plan import aligned_layout
from glrtheory.prime_field import PRIME, rank_mod_p

from .fenwick_carry_rank import carries_mod_p, chunk_rows, sources


def reads_all_or_none(layout, c: int) -> np.ndarray:
    """m_c: which rows of chunk c read X(c); asserts that each reads all of X(c) or none of it."""
    X, b = set(sources(layout, c)), layout.tables.b_idx
    read = [X & {int(s) for s in b[t] if s >= 0} for t in chunk_rows(layout, c)]
    assert all(r in (set(), X) for r in read), (layout.tables.n, layout.chunk, c)
    return np.array([bool(r) for r in read])


def derive():
    layout = aligned_layout(Pattern.from_spec("fenwick").tables(20), 4)
    c = max(range(layout.n_chunks), key=lambda c: layout.ext_count[c])
    rows, X = list(chunk_rows(layout, c)), sources(layout, c)
    b = layout.tables.b_idx
    f = {t: sp.Symbol(f"f_{t}", positive=True) for t in rows}
    h = {int(s): sp.Symbol(f"h_{s}", positive=True) for t in rows for s in b[t] if s >= 0}
    coef = lambda t, s: f[t] * h[s] if s in b[t] else 0        # noqa: E731
    inside = sp.Matrix(len(rows), len(rows), lambda i, k: coef(rows[i], rows[k]))
    reads = sp.Matrix(len(rows), len(X), lambda i, j: coef(rows[i], X[j]))
    T = (sp.eye(len(rows)) - inside).inv()
    m = reads_all_or_none(layout, c)
    e = T * sp.Matrix([f[t] * int(mi) for t, mi in zip(rows, m)])
    assert sp.simplify(T * reads - e * sp.Matrix([[h[s] for s in X]])) == sp.zeros(len(rows), len(X))
    assert (T * reads).rank(simplify=True) == 1 < len(X)
    print(f"n = 20, C = 4, chunk {c}: X(c) = {X}, rows {rows}; with b[t, s] = f_t h_s, E_c = e_c h_X^T with "
          f"e_c = T_c (f * m) = {[sp.factor(x) for x in e]}: rank 1 (generic coefficients: {len(X)})")


def _random_coef(rng, n: int, buckets: bool):
    """Factored coefficients ``f_t h_s`` mod p, times a factor per lag bucket ``floor(log2(t - s))`` if buckets."""
    f, h, w = (rng.integers(1, PRIME, n + 1) for _ in range(3))
    if buckets:
        return lambda t, s: int(f[t]) * int(h[s]) % PRIME * int(w[(t - s).bit_length()]) % PRIME
    return lambda t, s: int(f[t]) * int(h[s]) % PRIME


def _mixer_ranks(lag_bias: bool) -> list[tuple[int, int]]:
    """(|X(c)|, numerical rank of E_c) over the chunks of fenwick's layout at n = 200 (chunks of 16), E_c from the
    coefficients of a float64 GLRMixer with random weights (and a random lag bias where asked)."""
    torch.manual_seed(0)
    n = 200
    mixer = GLRMixer("fenwick", 8, 1, dtype=torch.float64, lag_bias=lag_bias)
    if lag_bias:
        with torch.no_grad():
            for p in mixer.lag_bias:
                p.normal_()
    with torch.no_grad():
        _, _, bc, _ = mixer.coefficients(torch.randn(1, n, 8, dtype=torch.float64))
    tables = Pattern.from_spec("fenwick").tables(n)
    layout = aligned_layout(tables, 16)
    slot = {(t, int(s)): j for t in range(n) for j, s in enumerate(tables.b_idx[t]) if s >= 0}
    out = []
    for c in range(layout.n_chunks):
        X, rows = sources(layout, c), list(chunk_rows(layout, c))
        if not X:
            continue
        h = {s: np.eye(len(X))[j] for j, s in enumerate(X)}
        for t in rows:
            h[t] = sum((float(bc[0, t, 0, slot[t, int(s)]]) * h[int(s)] for s in tables.b_idx[t] if s >= 0),
                       np.zeros(len(X)))
        sv = np.linalg.svd(np.array([h[t] for t in rows]), compute_uv=False)
        out.append((len(X), int((sv > 1e-12 * sv[0]).sum())))
    return out


def check(n_max=2**8 + 1, chunks=(4, 8, 16)):
    rng = np.random.default_rng(0)
    layouts = chunks_read = 0
    bias_rank = 1
    for n in range(1, n_max + 1):
        tables = Pattern.from_spec("fenwick").tables(n)
        for C in (C for C in chunks if C <= n):
            layout = aligned_layout(tables, C)
            factored, biased = _random_coef(rng, n, False), _random_coef(rng, n, True)
            for c in range(layout.n_chunks):
                if not layout.ext_count[c]:
                    continue
                m = reads_all_or_none(layout, c)
                assert rank_mod_p(carries_mod_p(layout, c, factored)) == int(m.any()), (n, C, c)
                chunks_read += int(m.any())
                bias_rank = max(bias_rank, rank_mod_p(carries_mod_p(layout, c, biased)))
            layouts += 1
    assert layouts > 700 and chunks_read > 5000 and bias_rank > 1
    print(f"checked {layouts} layouts (n = 1..{n_max}, chunks {chunks}): each row reads all of X(c) or none, and "
          f"the factored carries have rank 1 in all {chunks_read} chunks read from; with a factor per lag bucket "
          f"the rank reaches {bias_rank}")
    plain, biased = _mixer_ranks(False), _mixer_ranks(True)
    assert all(r == 1 for _, r in plain) and any(r > 1 for _, r in biased)
    assert all(1 <= r <= x for x, r in biased)
    print(f"GLRMixer('fenwick'), float64, n = 200, chunks of 16: numerical rank 1 in all {len(plain)} chunks read "
          f"from; with a random lag bias, (|X(c)|, rank) = {biased}")
    layout = aligned_layout(Pattern.from_spec("fenwick").tables(16384), 64)
    reads, read_from = int(layout.ext_count.sum()), int((layout.ext_count > 0).sum())
    gflop = lambda k: 2 * 2 * 16 * k * 64 * 128 * 128 / 1e9          # noqa: E731   B2 H16, C d_k d_v each
    assert (reads, read_from) == (1280, 256)
    print(f"benchmark shape (T = 16384, chunks of 64): {read_from} state products a head in place of {reads}, "
          f"{gflop(read_from):.1f} GFLOP in place of {gflop(reads):.1f} at B2 H16 D128")
