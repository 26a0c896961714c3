"""Where A is the diagonal and a chunk reads no row before it, a chunk's mixing weights are its inverse times a
(the readout's DIAG path).

Statement. Let a chunk layout (``readout_plan``) have reach w = 0 and ``A(t) = {t}`` for every t
(``readout_triton.diagonal``: fenwick, power2, lags on them). Then for every chunk, with ``T_k = (I - B_RR)^{-1}``,

    M = T_k A_R = T_k diag(a),    M[i, j] = T_k[i, j] a[c C - s + j],

a taken as 0 at padded rows (outside ``[0, T)``), s the layout's shift. So the forward need not form M: the kernels
read ``T_k`` and multiply column j by a as they load it, and the backward forms M as the inverses times a, indexed
by ``t_j = c C - s + j`` (``_Plan.diagonal_mix``). Where the condition fails (a window, blocks, attention: some
``A(t) != {t}`` or w > 0), ``A_R`` is no diagonal of the rows' own coefficients, and the condition says so.

Derivation. ``A_R[i, j] = a_{t_i}`` for ``j = i`` (w = 0 puts column j at row ``t_j``) and 0 elsewhere, so
``(T_k A_R)[i, j] = T_k[i, j] a_{t_j}``: sympy below for a general strictly lower ``B_RR``. Then exactly, in
rationals, on the entries every layout places (``ChunkLayout.entries``): fenwick, power2, ssm, ``fenwick+lags:5``
(where it always holds) and five patterns where it fails but at the shortest lengths, n = 1 .. 32, chunks of 4, 8
and 16, both offsets: the condition against the entries, and ``T_k diag(a)``, with T_k from the entries the layout
places and a indexed as ``diagonal_mix`` indexes it, against the chunk's block of the whole mixing matrix, solved
row by row from the tables.
"""
import random
from fractions import Fraction

import numpy as np
import sympy as sp

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import chunk_layout
from glrtheory.kernels.scan.readout_triton import diagonal

#: Patterns where the condition holds, and where it fails (reach before the chunk, or A wider than {t}).
HOLDS = ("fenwick", "power2", "ssm", "fenwick+lags:5")
FAILS = ("window:3+fenwick", "blocks:4", "attention", "quadratic", "window:2")


def derive(C=4):
    b = sp.Matrix(C, C, lambda i, j: sp.Symbol(f"b{i}{j}") if j < i else 0)
    a = sp.symbols(f"a0:{C}")
    T = (sp.eye(C) - b).inv()
    M = T * sp.diag(*a)
    assert (M - sp.Matrix(C, C, lambda i, j: T[i, j] * a[j])).applyfunc(sp.simplify) == sp.zeros(C, C)
    print(f"C={C}: (I - B_RR)^-1 diag(a) == [T[i, j] a_j] for a general strictly lower B_RR")


def inverse(blocks):
    """``(I - B)^{-1}`` of a strictly lower triangular block (lists of Fractions) by forward substitution."""
    C = len(blocks)
    T = [[Fraction(int(i == j)) for j in range(C)] for i in range(C)]
    for i in range(C):
        for j in range(i):
            T[i][j] = sum((blocks[i][r] * T[r][j] for r in range(j, i)), Fraction(0))
    return T


def chunks(layout, a, b):
    """Each chunk's ``(c, T_k, A_R)`` from the entries the layout places, in exact rationals."""
    C, w, nc = layout.chunk, layout.span, layout.n_chunks
    entries = layout.entries()
    A = np.full(nc * C * (C + w), Fraction(0), dtype=object)
    Bi = np.full(nc * C * C, Fraction(0), dtype=object)
    A[entries["a"][0]] = a.ravel()[entries["a"][1]]
    Bi[entries["bi"][0]] = b.ravel()[entries["bi"][1]]
    A, Bi = A.reshape(nc, C, C + w), Bi.reshape(nc, C, C)
    return [(c, inverse(Bi[c].tolist()), A[c]) for c in range(nc)]


def mixing(tables, a, b):
    """The whole ``M = (I - B)^{-1} A`` in rationals, row by row from the tables: ``M[t] = sum_k a[t, k] e_{A_k(t)} +
    sum_k b[t, k] M[B_k(t)]``. A chunk's own weights are its block: a path from u_s to h_t (s, t in one chunk)
    passes only states between them."""
    n = len(tables.a_idx)
    M = []
    for t in range(n):
        row = [Fraction(0)] * n
        for k, s in enumerate(tables.a_idx[t]):
            if s >= 0:
                row[s] += a[t, k]
        for k, s in enumerate(tables.b_idx[t]):
            if s >= 0:
                row = [x + b[t, k] * y for x, y in zip(row, M[s])]
        M.append(row)
    return M


def check(n_max=32):
    rng = random.Random(0)
    draw = lambda *shape: np.array([Fraction(rng.choice((-1, 1)) * rng.randint(1, 9), rng.randint(1, 9))  # noqa: E731
                                    for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    counted = {True: 0, False: 0}
    for spec in HOLDS + FAILS:
        for n in range(1, n_max + 1):
            tables = Pattern.from_spec(spec).tables(n)
            for C in (4, 8, 16):
                for offset in (0, 1):
                    layout = chunk_layout(tables, C, offset)
                    a, b = draw(*tables.a_idx.shape), draw(*tables.b_idx.shape)     # nonzero: no entry hides
                    cols = [Fraction(0)] * (layout.n_chunks * C)       # diagonal_mix's index: a[t] at t + s
                    for t in range(n):
                        cols[t + layout.shift] = a[t, 0]
                    structure, products = layout.span == 0, []
                    for c, T, A in chunks(layout, a, b):
                        own = [cols[c * C + j] for j in range(C)]
                        structure &= all(A[i][j] == (own[i] if i == j else 0) for i in range(C)
                                         for j in range(C + layout.span))
                        products.append((c, T, own))
                    holds = diagonal(layout)
                    assert holds == structure, (spec, n, C, offset)
                    assert holds or spec not in HOLDS, (spec, n, C, offset)
                    counted[holds] += 1
                    G = mixing(tables, a, b) if holds else None
                    for c, T, own in products if holds else ():
                        rows = [(i, c * C - layout.shift + i) for i in range(C)]
                        rows = [(i, t) for i, t in rows if 0 <= t < n]
                        assert all(T[i][j] * own[j] == G[t][s] for i, t in rows for j, s in rows), (spec, n, C, offset)
    print(f"checked exactly, n = 1..{n_max}, chunks of 4, 8, 16, both offsets: the condition holds exactly where "
          f"every chunk's A_R is the diagonal of its rows' a and w = 0 ({counted[True]} layouts, among them "
          f"{', '.join(HOLDS)} at every n; {counted[False]} where it fails), and there T_k diag(a), a at t + s, is "
          "the chunk's block of the whole (I - B)^-1 A")
