"""fenwick's chunk output reads ``1 + log2|P| / 2`` boundary states a chunk on average, against ssm's one.

Statement. In fenwick's aligned chunk layout (``readout_plan.aligned_layout``, chunks of C = 2^j rows) chunk 0
reads no boundary state and chunk ``c >= 1`` reads the boundary states ``X(c) = {c - 1, (c - 1) with its lowest set
bit cleared, ..., 0}``, the Fenwick chain of ``c - 1``: ``|X(c)| = popcount(c - 1) + 1``. Over the chunks
``c = 1 .. |P|`` with ``|P| = 2^k`` boundary states that is

    R(k) = sum_{x < 2^k} (popcount(x) + 1) = 2^k (1 + k / 2)

reads, ``1 + k / 2`` a chunk on average over chunks 1 .. |P|, where ssm (first order) reads one, ``c - 1``. The
chunk output (``readout_triton_kernels.chunk_output``) does ``C^2 (d_k + d_v)`` multiply-adds a chunk for ``((Q K^T) *
M) V`` and ``C d_k d_v`` for each state it reads, so its multiply-adds are

    W = nc C^2 (d_k + d_v) + R C d_k d_v,

and fenwick's over ssm's, at nc = |P| + 1 chunks, is ``(nc C (d_k + d_v) + R d_k d_v) / (nc C (d_k + d_v) + |P| d_k
d_v)``: 3.0 at the benchmark's shape (T = 16384, C = 64, |P| = 256, d = 128), 3.5 at T = 65536. These are the
kernels' products, not a bound on every algorithm: they say why fenwick's chunk output takes more time than ssm's.

Derivation. Each of the k bits of ``x < 2^k`` is set in half of them, so ``sum popcount(x) = k 2^(k-1)``: below the
recurrence ``S(k + 1) = 2 S(k) + 2^k`` (the top bit clear, then set) solved by sympy's ``rsolve``. Then an exhaustive
check: the chains from bit operations against the sources each chunk of the layout lists (``ext``, built from
fenwick's index tables), and ssm's ``c - 1`` against its layout's, at every length up to 2^10 + 1 and chunks of 4, 8,
16 and 64, and ``R(k)`` against the layouts' own counts up to |P| = 2^12.
"""
import numpy as np
import sympy as sp

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import aligned_layout


def chain(x: int) -> set[int]:
    """``{x, x with its lowest set bit cleared, ..., 0}``."""
    out = {x}
    while x:
        x &= x - 1
        out.add(x)
    return out


def reads(layout) -> list[set[int]]:
    """Each chunk's boundary states as the layout lists them (indices in P)."""
    return [set(int(s) for s in layout.ext[c, :layout.ext_count[c]]) for c in range(layout.n_chunks)]


def reads_formula(k):
    """``R(k) = 2^k (1 + k / 2)``."""
    return 2**k * (1 + sp.Rational(1, 2) * k)


def work(n_chunks, reads_total, C, dk, dv):
    """The chunk output's multiply-adds: ``nc C^2 (d_k + d_v) + R C d_k d_v``."""
    return n_chunks * C**2 * (dk + dv) + reads_total * C * dk * dv


def derive():
    k = sp.Symbol("k", integer=True, nonnegative=True)
    S = sp.Function("S")
    popcounts = sp.rsolve(S(k + 1) - 2 * S(k) - 2**k, S(k), {S(0): 0})
    assert sp.simplify(popcounts - k * 2**(k - 1)) == 0
    total = sp.simplify(popcounts + 2**k)
    assert sp.simplify(total - reads_formula(k)) == 0
    print(f"sum_(x < 2^k) popcount(x) = {popcounts}; R(k) = {sp.factor(total)}")
    C, d, P = 64, 128, 256
    kk = int(np.log2(P))
    ratio = sp.Rational(work(P + 1, reads_formula(kk), C, d, d), work(P + 1, P, C, d, d))
    assert ratio == sp.Rational(257 + 1280, 257 + 256) and abs(float(ratio) - 3.0) < 0.01     # C^2 2d = C d^2 here
    big = sp.Rational(work(1025, reads_formula(10), C, d, d), work(1025, 1024, C, d, d))
    assert big == sp.Rational(1025 + 6144, 1025 + 1024) and abs(float(big) - 3.5) < 0.01
    print(f"the chunk output's multiply-adds, fenwick over ssm: {float(ratio):.3f} at T = 16384 (C = {C}, |P| = {P}, "
          f"d = {d}), {float(big):.3f} at T = 65536")


def check(n_max=2**10 + 1, chunks=(4, 8, 16, 64)):
    tables = {n: Pattern.from_spec("fenwick").tables(n) for n in range(1, n_max + 1)}
    layouts = 0
    first_order = {n: Pattern.from_spec("ssm").tables(n) for n in tables}
    for n, C in ((n, C) for n in tables for C in chunks if C <= n):
        layout = aligned_layout(tables[n], C)
        assert layout is not None and layout.chunk == C, (n, C)
        listed = reads(layout)
        assert listed[0] == set(), (n, C)
        assert all(listed[c] == chain(c - 1) for c in range(1, layout.n_chunks)), (n, C)
        ssm = reads(aligned_layout(first_order[n], C))
        assert ssm[0] == set() and all(ssm[c] == {c - 1} for c in range(1, len(ssm))), (n, C)
        layouts += 1
    assert layouts > 3000
    print(f"checked {layouts} layouts (n = 1..{n_max}, chunks {chunks}): chunk c >= 1 reads the Fenwick chain of c - 1 "
          "(ssm's: c - 1 alone)")
    for k in range(13):
        layout = aligned_layout(Pattern.from_spec("fenwick").tables(2**k * 16 + 1), 16)
        assert layout.n_boundary == 2**k, (k, layout.n_boundary)
        assert int(layout.ext_count.sum()) == reads_formula(k), k
    print("checked R(k) = 2^k (1 + k / 2) against the layouts' counts for |P| = 2^k, k = 0..12")
