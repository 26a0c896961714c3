"""The mixing matrix of an LTI pattern is the lower-triangular Toeplitz matrix of its impulse response.

Statement. Let ``A(t) = {t - j : j in J}``, ``B(t) = {t - l : l in L}`` with constant coefficients a_j,
b_l (docs/mathematics.md). Then ``M = (I - B)^{-1} A`` satisfies ``M[t, s] = h_{t-s}`` (0 for s > t), where
``h_0, h_1, ...`` are the coefficients of the power series of ``H(z) = a(z) / (1 - b(z))`` in z^-1,
i.e. the impulse response of ``h_t = a_t + sum_l b_l h_{t-l}``.

Derivation. n x n lower-triangular Toeplitz matrices T(f) (first column f_0..f_{n-1}) form a commutative
algebra isomorphic to polynomials mod x^n, ``T(f) T(g) = T(f g mod x^n)``, with x the down-shift.
``A = T(a)``, ``B = T(b)``; ``1 - b(x)`` has constant term 1, so it is a unit and
``M = T((1 - b)^{-1} a mod x^n) = T(h)``.
"""
import itertools
import random

import sympy as sp

from glrtheory import Pattern
from glrtheory.symbolic.lti import LTISystem


def derive(n=6):
    b1, b2, a0, a1, x = sp.symbols("b_1 b_2 a_0 a_1 x")
    T = lambda f: sp.Matrix(n, n, lambda i, j: sp.Poly(f, x).coeff_monomial(x ** (i - j)) if i >= j else 0)
    A, B = T(a0 + a1 * x), T(b1 * x + b2 * x**2)
    M = ((sp.eye(n) - B).inv() * A).applyfunc(sp.expand)
    series = sp.series((a0 + a1 * x) / (1 - b1 * x - b2 * x**2), x, 0, n).removeO()
    assert M == T(sp.expand(series)).applyfunc(sp.expand)
    print(f"n={n}, J={{0,1}}, L={{1,2}}: (I - B)^-1 A == T(series of (a_0 + a_1 x)/(1 - b_1 x - b_2 x^2)) "
          "symbolically")
    print(f"first column: {list(M[:, 0])[:4]} ...")
    f, g = sp.symbols("f0:4"), sp.symbols("g0:4")
    Tf, Tg = T(sum(c * x**i for i, c in enumerate(f))), T(sum(c * x**i for i, c in enumerate(g)))
    prod = sp.expand(sum(c * x**i for i, c in enumerate(f)) * sum(c * x**i for i, c in enumerate(g)))
    prod = sum(sp.Poly(prod, x).coeff_monomial(x**k) * x**k for k in range(n))
    assert (Tf * Tg).applyfunc(sp.expand) == T(prod).applyfunc(sp.expand) == (Tg * Tf).applyfunc(sp.expand)
    print("T(f) T(g) = T(g) T(f) = T(f g mod x^n) for generic f, g of degree 3")


def exact_mixing(A, B):
    """``(I - B)^{-1} A`` in exact integers by forward substitution (I - B is unit lower triangular)."""
    n = len(A)
    M = [[0] * n for _ in range(n)]
    for t in range(n):
        for s in range(n):
            M[t][s] = A[t][s] + sum(B[t][r] * M[r][s] for r in range(t))
    return M


def check(nmax=7):
    rng = random.Random(0)
    cases = 0
    for L in itertools.chain.from_iterable(itertools.combinations(range(1, 5), k) for k in range(5)):
        for J in itertools.chain.from_iterable(itertools.combinations(range(3), k) for k in range(1, 4)):
            a = {j: rng.choice([-3, -2, -1, 1, 2, 3]) for j in J}
            b = {l: rng.choice([-2, -1, 1, 2]) for l in L}
            system = LTISystem.from_lags(L, J, b=b, a=a)
            h = system.impulse_response_symbolic(nmax)
            p = Pattern.from_lags(J, L)
            for n in range(1, nmax + 1):
                Am, Bm = p.masks(n)
                A = [[a.get(t - s, 0) if Am[t, s] else 0 for s in range(n)] for t in range(n)]
                B = [[b.get(t - s, 0) if Bm[t, s] else 0 for s in range(n)] for t in range(n)]
                M = exact_mixing(A, B)
                assert all(M[t][s] == (h[t - s] if s <= t else 0) for t in range(n) for s in range(n)), (L, J, n)
                cases += 1
    print(f"checked {cases} cases exactly: every B-lag set within {{1..4}}, A-lag set within {{0,1,2}}, "
          f"n = 1..{nmax}, random integer coefficients")

