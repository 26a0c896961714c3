"""fenwick's chunk walk splits at a power of two m: the chunks after state m read the earlier ones only through H_m.

Statement. Take fenwick's chunk layout (``readout_plan.aligned_layout``), its boundary states 0 .. P-1, and the walk of
``proofs/fenwick_level_slots.py`` (the Triton ``chunk_walk``): chunk c's output from its own rows and its sources
``ext[c]``, then its boundary state. Let m = 2^k with 0 < m < P, and c_m the chunk that holds state m.

1. Every source of every chunk after c_m is state 0, state m, or a state after m.
2. So the chunks after c_m can be walked without the chunks before: start with H_0 (chunk 0 alone makes it: it has
   no sources) and with H_m unknown, taken as 0; carry with each state p a scalar g_p (``g_0 = 0``, ``g_m = 1``,
   ``g_p = sum_j E[r, j] g_{X_j}`` at p's row r) and with each row t of a chunk the scalar
   ``w_t = sum_j E[t, j] g_{X_j}``. Then the true states and outputs are

       H_p = H_p' + g_p H_m,        o_t = o_t' + w_t q_t^T H_m,

   where H', o' are the walk's with H_m = 0.
3. Hence the chunks before and after c_m walk at the same time (two programs where the walk took one, each about
   half as long for m = 2^(bit_length(P - 1) - 1)), and a fix-up adds ``w_t q_t^T H_m`` (one more state product a
   chunk after c_m) and ``g_p H_m`` to each state after m. ``chunk_walk`` does this with ``walk_chunk_split`` (a
   setting, off; ``readout_plan.walk_split`` picks m), as its 256 steps a program are latency-bound on the GPU;
   timed there, the split walk was no faster (gpu_calls/call180: its 256 programs ran in two waves).

Derivation. Claim 1: chunk c reads the Fenwick chain of c - 1 (``proofs/fenwick_readout_work.py``); for a state x > m
the chain clears x's set bits from the lowest up, so it stays above m until it reaches the value with only x's bits
above k, which is m when x < 2m and a multiple of 2m above m otherwise; then 0. It is checked here on every layout up
to n = 1025 (chunks of 4, 8 and 16) and every such m. Claim 2: the walk is linear in its states, and the chunks after
c_m read nothing else from before (claim 1), so each state and output after c_m is the value the walk gives with
H_m = 0 plus a linear function of H_m; as every coefficient E[t, j] is a scalar, that function is a scalar times H_m,
and the scalars obey the walk's own recurrence on g. Below, sympy walks a scalar layout (d_k = d_v = 1) with H_m a
symbol and finds every state and output affine in it with the g and w of the scalar recurrence; then the split walk
is checked in float64 against the direct readout.
"""
import numpy as np
import sympy as sp

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import aligned_layout
from glrtheory.recurrence import random_coefficients
from proofs.fenwick_level_slots import direct_readout, layouts, level, sources, walk


def holders(layout) -> dict[int, int]:
    """Each boundary state's chunk."""
    return {p: int(t + layout.shift) // layout.chunk for p, t in enumerate(layout.boundary)}


def splits(layout) -> list[int]:
    """The powers of two m with 0 < m < P."""
    return [1 << k for k in range(max(layout.n_boundary - 1, 0).bit_length())]      # 2^k <= P - 1


def split_walk(layout, a, b, q, k, v, m: int, h_m=None):
    """Claim 2: the chunks after c_m walked apart, H_0 from chunk 0 alone and H_m given as ``h_m`` (zero if None);
    returns (o' over their rows, their states H', g, w)."""
    c_m, first = holders(layout)[m], {}
    walk(layout, a, b, q, k, v, [0], {}, np.zeros((q.shape[0], v.shape[1]), dtype=v.dtype), first)
    start = {level(0): (0, first[0], 0 * first[0][0, 0]), level(m): (m, 0 * first[0] if h_m is None else h_m, 1)}
    o, states, g, w = np.zeros((q.shape[0], v.shape[1]), dtype=v.dtype), {}, {}, {}
    walk(layout, a, b, q, k, v, range(c_m + 1, layout.n_chunks), start, o, states, g, w)
    return o, states, g, w


def split_readout(layout, a, b, q, k, v, m: int) -> np.ndarray:
    """Claims 2 and 3: the chunks up to c_m walked, the chunks after walked apart with H_m = 0, then the fix-up;
    the fixed states are checked against the plain walk's. Returns o."""
    c_m, n = holders(layout)[m], q.shape[0]
    o, states = np.full((n, v.shape[1]), np.nan), {}
    walk(layout, a, b, q, k, v, range(c_m + 1), {}, o, states)           # the first part
    after, apart, g, w = split_walk(layout, a, b, q, k, v, m)
    for t, slope in w.items():
        o[t] = after[t] + slope * (q[t] @ states[m])                    # the fix-up of the outputs
    plain = {}
    walk(layout, a, b, q, k, v, range(layout.n_chunks), {}, np.zeros_like(o), plain)
    for p, H in apart.items():                                          # and of the states
        assert np.allclose(H + g[p] * states[m], plain[p], rtol=1e-12, atol=1e-12), (m, p)
    return o


def derive():
    """Claim 2 in sympy: a scalar layout walked after c_m with H_m a symbol; each state and output is affine in it,
    its slope the recurrence's g and w (times q_t)."""
    fenwick = Pattern.from_spec("fenwick")
    rng = np.random.default_rng(7)
    n, C = 40, 4
    layout = aligned_layout(fenwick.tables(n), C)
    exact = np.vectorize(lambda x: sp.Rational(0 if np.isnan(x) else round(float(x) * 64), 64), otypes=[object])
    a, b = (exact(x[0]) for x in random_coefficients(fenwick, n, rng, (1,), np.float64))
    q, k, v = (exact(rng.integers(-3, 4, (n, 1))) for _ in range(3))
    h = sp.Symbol("H_m")
    plain = {}
    walk(layout, a, b, q, k, v, range(layout.n_chunks), {}, np.zeros((n, 1), dtype=object), plain)
    for m in splits(layout):
        o, states, g, w = split_walk(layout, a, b, q, k, v, m, np.array([[h]], dtype=object))
        for p, H in states.items():
            expr = sp.expand(H[0, 0])
            assert sp.diff(expr, h, 2) == 0 and sp.diff(expr, h) == g[p], (m, p)
            assert sp.expand(expr.subs(h, plain[m][0, 0])) == plain[p][0, 0], (m, p)
        for t, slope in w.items():
            assert sp.expand(sp.diff(sp.expand(o[t, 0]), h) - slope * q[t, 0]) == 0, (m, t)
    print(f"sympy, fenwick at n = {n} in chunks of {C} (d_k = d_v = 1, exact rationals), every split m in "
          f"{splits(layout)}: each state and output after c_m is affine in H_m, its slopes g_p and w_t q_t, and with "
          "the true H_m each state is the plain walk's")


def check(n_max=1025, chunks=(4, 8, 16), seed=0):
    fenwick = Pattern.from_spec("fenwick")
    count = 0
    for n, C, layout in layouts(n_max, chunks):
        at = holders(layout)
        for m in splits(layout):
            for c in range(at[m] + 1, layout.n_chunks):
                assert all(p in (0, m) or p > m for p in sources(layout, c)), (n, C, m, c)
            count += 1
    assert count > 10000
    print(f"claim 1 on {count} (layout, m) pairs (n = 1..{n_max}, chunks {chunks}): every source after c_m is 0, m "
          "or later than m")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n in (17, 63, 130, 200):
        tables = fenwick.tables(n)
        for C in (4, 8, 16):
            layout = aligned_layout(tables, C)
            a, b = (x[0].astype(np.float64) for x in random_coefficients(fenwick, n, rng, (1,), np.float64))
            q, k, v = (rng.standard_normal((n, d)) for d in (3, 3, 2))
            want = direct_readout(fenwick, a, b, q, k, v)
            for m in splits(layout):
                got = split_readout(layout, a, b, q, k, v, m)
                err = float(np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want))))
                assert err < 1e-12, (n, C, m, err)
                worst = max(worst, err)
    print(f"claims 2 and 3 in float64 against the direct readout at n = 17 .. 200, chunks of 4, 8 and 16, every "
          f"split m: largest relative error {worst:.1e} (the fixed states equal the plain walk's)")
