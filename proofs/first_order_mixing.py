"""Inside a chunk, a first-order pattern's mixing weights are products of its b's (the readout's DECAY path).

Statement. Let ``A(t) = {t}`` and ``B(t) = {t - 1}`` or empty (``ssm``, and ssm with gaps), with coefficients
a_t and b_t (b_t = 0 where B(t) is empty). For a chunk of rows ``r0 .. r0 + C - 1`` and the state ``h_{r0-1}``
before it, ``h_{r0+i} = sum_{j <= i} M[i, j] u_{r0+j} + E[i] h_{r0-1}`` with

    M[i, j] = a_j prod_{j < r <= i} b_r,        E[i] = prod_{r <= i} b_r,

that is ``(I - B_RR)^{-1} = L``, ``L[i, j] = prod_{j < r <= i} b_r`` (the chunk's step 1,
``readout_aligned``). The kernels form the product as ``(-1)^{n_i - n_j} 2^{S_i - S_j}`` when no b in ``(j, i]``
is zero, and 0 otherwise, from ``S_i = sum_{r <= i} log2 |b_r|`` (zero b adding 0) and one packed count
``c_i = n_i + 256 z_i`` (n: negative b's, z: zero b's up to i): a zero lies in ``(j, i]`` iff
``c_i - c_j >= 256``, and ``c_i - c_j`` has the parity of the negatives there, because the chunk has at most
C <= 128 rows (the Triton readout refuses C x window blocks over 2^14 entries), so ``n_i - n_j < 256``.

Derivation. ``I - B_RR`` is unit lower bidiagonal with subdiagonal ``-b_r``; forward substitution of
``L = I + B_RR L`` gives ``L[i, j] = b_i L[i - 1, j]`` for i > j and ``L[j, j] = 1``, so the product. The
recurrence ``h_i = a_i u_i + b_i h_{i-1}`` unrolled from ``h_{-1}`` gives M and E the same way (sympy below).
For the factorization: ``|prod b_r| = 2^{sum log2 |b_r|}`` and the sign is ``(-1)`` to the number of negative
factors; ``c_i - c_j = (n_i - n_j) + 256 (z_i - z_j)`` with ``0 <= n_i - n_j <= C < 256``.

Backward (``readout_triton_backward.decay_grads``). For ``l = <dM, M> + <dE, E>`` (b_0 the coefficient of the state
before the chunk, so that it enters E alone),

    dl/da_i = sum_r L[r, i] dM[r, i],
    dl/db_i = (L^T dM)[i] . M[i - 1] + (L^T dE)[i] E[i - 1]  (i >= 1),    dl/db_0 = (L^T dE)[0],

the general step 1 backward ``dR = L^T [dM | dE]``, ``dB_RR = dR [M | E]^T`` at ``B_RR[i, i - 1] = b_i`` and at
``B_X[0] = b_0``, with L, M and E in the kernels' packed form: no inverse and no division by b, so zeros need no
special case. Derived in sympy for chunks of up to 4 rows (dM over all C x C entries: its upper triangle drops out)
and checked exactly with L, M[i - 1] and E[i - 1] formed as the kernels form them.
"""
import itertools
import math
from fractions import Fraction

import sympy as sp

from glrtheory.kernels.scan.readout_triton import MAX_SCORES

#: The largest chunk the Triton readout takes: its C x (C + w) score blocks hold at most ``MAX_SCORES`` entries.
MAX_CHUNK = math.isqrt(MAX_SCORES)
#: The weight of a zero in the packed count: ``readout_triton_kernels.decay_sums`` writes it as the literal 256, and
#: the functions below transcribe the kernels' packed form (the kernels themselves are checked against float64 by
#: ``tests/test_readout_triton.py``).
ZERO = 256


def derive(n=6):
    b = sp.symbols(f"b0:{n}")
    a = sp.symbols(f"a0:{n}")
    B = sp.Matrix(n, n, lambda i, j: b[i] if i == j + 1 else 0)
    L = (sp.eye(n) - B).inv()
    product = sp.Matrix(n, n, lambda i, j: sp.prod(b[j + 1:i + 1]) if j <= i else 0)
    assert (L - product).applyfunc(sp.expand) == sp.zeros(n, n)
    print(f"n={n}: (I - B_RR)^-1 == [prod_(j<r<=i) b_r] symbolically")
    u, h_before = sp.symbols(f"u0:{n}"), sp.Symbol("h_before")
    h, prev = [], h_before
    for i in range(n):
        prev = a[i] * u[i] + b[i] * prev
        h.append(sp.expand(prev))
    for i in range(n):
        want = sum(a[j] * product[i, j] * u[j] for j in range(i + 1)) + sp.prod(b[:i + 1]) * h_before
        assert sp.expand(h[i] - want) == 0, i
    print(f"h_i = a_i u_i + b_i h_(i-1) unrolled: h_i = sum_j a_j L[i, j] u_j + (prod_(r<=i) b_r) h_before, i < {n}")
    derive_gradients()


def gradient_formula(L, a, dM, dE):
    """``(da, db)`` of ``<dM, M> + <dE, E>`` as ``decay_grads`` forms them from ``L[i][j] = prod_{j < r <= i} b_r``
    (and ``L[i][-1] = E[i]``, the product up to i): column sums of ``L * dM``; ``(L^T dM)[i] . M[i - 1] +
    (L^T dE)[i] E[i - 1]``, and ``(L^T dE)[0]`` on the first row."""
    C = len(a)
    rm = [[sum(L[r][i] * dM[r][c] for r in range(C)) for c in range(C)] for i in range(C)]
    re = [sum(L[r][i] * dE[r] for r in range(C)) for i in range(C)]
    da = [sum(L[r][i] * dM[r][i] for r in range(C)) for i in range(C)]
    db = [re[0]] + [sum(rm[i][c] * a[c] * L[i - 1][c] for c in range(i)) + re[i] * L[i - 1][-1] for i in range(1, C)]
    return da, db


def symbolic_gradients(n):
    """``(a, b, dM, dE, grads)``: the exact gradients of ``<dM, M> + <dE, E>`` in a and b of an n-row chunk."""
    a, b = sp.symbols(f"a0:{n}"), sp.symbols(f"b0:{n}")
    dM = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"dm{i}_{j}"))
    dE = sp.symbols(f"de0:{n}")
    M = sp.Matrix(n, n, lambda i, j: a[j] * sp.prod(b[j + 1:i + 1]) if j <= i else 0)
    loss = sum(dM[i, j] * M[i, j] for i in range(n) for j in range(n)) + sum(dE[i] * sp.prod(b[:i + 1])
                                                                                  for i in range(n))
    return a, b, dM, dE, ([sp.diff(loss, x) for x in a], [sp.diff(loss, x) for x in b])


def derive_gradients(n=4):
    a, b, dM, dE, (da, db) = symbolic_gradients(n)
    L = [[sp.prod(b[j + 1:i + 1]) if j <= i else 0 for j in range(n)] + [sp.prod(b[:i + 1])] for i in range(n)]
    want_a, want_b = gradient_formula(L, a, dM.tolist(), dE)
    assert all(sp.expand(x - y) == 0 for x, y in zip(da + db, want_a + want_b))
    print(f"n={n}: dl/da and dl/db of <dM, M> + <dE, E> equal decay_grads' L^T dM, L^T dE forms symbolically")


def check_gradients(cmax=3):
    values = [Fraction(v) for v in (-2, -1, Fraction(-1, 2), 0, Fraction(1, 2), 1, 2)]
    cases = 0
    for C in range(1, cmax + 1):
        a_s, b_s, dM_s, dE_s, (da_s, db_s) = symbolic_gradients(C)
        a = [Fraction(3 + i, 2 + i) for i in range(C)]
        dM = [[Fraction((i + 2 * j) % 5 - 2, 1 + j) for j in range(C)] for i in range(C)]
        dE = [Fraction(i % 3 - 1, 3) for i in range(C)]
        fixed = {**dict(zip(a_s + dE_s, map(sp.Rational, a + dE))),
                 **{dM_s[i, j]: sp.Rational(dM[i][j]) for i in range(C) for j in range(C)}}
        da_f, db_f = [[x.subs(fixed) for x in xs] for xs in (da_s, db_s)]
        for bs in itertools.product(values, repeat=C):
            point = dict(zip(b_s, map(sp.Rational, bs)))
            L = [[kernel_weight(bs, i, j) if j <= i else 0 for j in range(C)] + [kernel_weight(bs, i, -1)]
                 for i in range(C)]                                     # the kernels' mask: j <= i
            got_a, got_b = gradient_formula(L, a, dM, dE)
            assert [sp.Rational(x) for x in got_a + got_b] == [x.subs(point) for x in da_f + db_f], bs
            cases += 1
    print(f"checked {cases} chunks exactly: every b in {{0, +-1/2, +-1, +-2}}^C, C = 1..{cmax}: decay_grads' da and "
          "db, from the kernels' packed L, equal the exact gradients")


def packed(bs, upto):
    """``(S, c)`` at row ``upto``: the exact sum of log2 |b_r| over nonzero b_r (b_r a power of two) and the
    packed count of negative and zero b_r, r <= upto."""
    S = sum((abs(x).numerator.bit_length() - abs(x).denominator.bit_length()) for x in bs[:upto + 1] if x != 0)
    c = sum(1 for x in bs[:upto + 1] if x < 0) + ZERO * sum(1 for x in bs[:upto + 1] if x == 0)
    return S, c


def kernel_weight(bs, i, j):
    """``prod_{j < r <= i} b_r`` as the kernels form it from ``packed`` (j = -1: E, the state before the chunk)."""
    S_i, c_i = packed(bs, i)
    S_j, c_j = packed(bs, j) if j >= 0 else (0, 0)
    between = c_i - c_j
    if between >= ZERO:
        return Fraction(0)
    return (-1) ** (between % 2) * Fraction(2) ** (S_i - S_j)


def exact_inverse(bs):
    """``(I - B_RR)^{-1}`` by forward substitution in exact rationals."""
    C = len(bs)
    L = [[Fraction(int(i == j)) for j in range(C)] for i in range(C)]
    for i in range(1, C):
        for j in range(i):
            L[i][j] = bs[i] * L[i - 1][j]
    return L


def check(cmax=4):
    values = [Fraction(v) for v in (-2, -1, Fraction(-1, 2), 0, Fraction(1, 2), 1, 2)]
    cases = 0
    for C in range(1, cmax + 1):
        for bs in itertools.product(values, repeat=C):
            L = exact_inverse(list(bs))
            for i in range(C):
                for j in range(i + 1):
                    assert L[i][j] == kernel_weight(bs, i, j), (bs, i, j)
                E = Fraction(1)
                for x in bs[:i + 1]:
                    E *= x
                assert E == kernel_weight(bs, i, -1), (bs, i)
            cases += 1
    print(f"checked {cases} chunks exactly: every b in {{0, +-1/2, +-1, +-2}}^C, C = 1..{cmax}: the kernels' "
          "sign, zero and 2^(S_i - S_j) give (I - B_RR)^-1 and E")
    most = MAX_CHUNK
    assert most * most <= MAX_SCORES < (most + 1) ** 2 and most < ZERO
    worst = [Fraction(-1)] * most                       # every b negative: the most negatives a chunk can hold
    assert packed(worst, most - 1)[1] == most < ZERO
    assert kernel_weight(worst, most - 1, -1) == 1 and kernel_weight(worst[:-1] + [Fraction(0)], most - 1, -1) == 0
    print(f"a chunk of C = {most} (the largest the kernels take) counts at most {most} negatives < {ZERO}: "
          "the packed count never carries into the zeros")
    check_gradients()
