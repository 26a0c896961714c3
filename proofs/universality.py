"""Universality: every causal linear mixer M with a non-zero diagonal is both pure direct mixing
(A = M, B = 0) and pure recurrence (A = D = diag(M), B = I - D M^{-1}).

Derivation. M is lower triangular with diagonal D, invertible since D has no zero. M^{-1} is lower
triangular with diagonal D^{-1}, so D M^{-1} is unit lower triangular and B = I - D M^{-1} is strictly
lower triangular (a valid B). Then I - B = D M^{-1} and (I - B)^{-1} A = M D^{-1} D = M.
"""
import itertools
from fractions import Fraction

import numpy as np
import sympy as sp

from glrtheory import factor, mixing_matrix


def symbolic(n: int) -> None:
    m = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"m{i}{j}") if j <= i else 0)
    D = sp.diag(*[m[i, i] for i in range(n)])
    B = sp.simplify(sp.eye(n) - D * m.inv())
    print(f"n={n}: B = I - D M^-1 =")
    sp.pprint(B)
    assert all(sp.simplify(B[i, j]) == 0 for i in range(n) for j in range(i, n)), "B not strictly lower"
    assert sp.simplify((sp.eye(n) - B).inv() * D - m) == sp.zeros(n, n)
    print(f"n={n}: (I - B)^-1 D - M simplifies to 0")


def exact_lower_solve(M, rhs):
    """Forward substitution in exact rationals: X with M X = rhs (M lower triangular)."""
    n = len(M)
    X = [[Fraction(0)] * n for _ in range(n)]
    for j in range(n):
        for i in range(n):
            X[i][j] = (rhs[i][j] - sum(M[i][k] * X[k][j] for k in range(i))) / M[i][i]
    return X


def _dense(table, coef, n):
    """Table-aligned coefficients -> the dense n x n matrix they stand for."""
    out = np.zeros((n, n))
    t, j = np.nonzero(table >= 0)
    out[t, table[t, j]] = coef[t, j]
    return out


def check_factor(M, B) -> None:
    """glrtheory.factor on M gives both factorizations: direct A = M, B = 0 exactly, and recurrence
    A = diag(M), B = the exact I - D M^{-1} to float64 rounding."""
    n = len(M)
    Mf = np.array([[float(x) for x in row] for row in M])
    direct = factor(Mf, "direct")
    a_idx, b_idx = direct.pattern.tables(n)
    assert np.array_equal(_dense(a_idx, direct.a, n), Mf) and not _dense(b_idx, direct.b, n).any()
    rec = factor(Mf, "recurrence")
    a_idx, b_idx = rec.pattern.tables(n)
    assert np.array_equal(_dense(a_idx, rec.a, n), np.diag(np.diag(Mf)))
    Bf = np.array([[float(x) for x in row] for row in B])
    assert np.abs(_dense(b_idx, rec.b, n) - Bf).max() <= 1e-12 * max(1.0, np.abs(Bf).max())


def exhaustive(n: int, values=(-1, 0, 1, 2), diagonal=(-1, 1, 2)) -> int:
    """Every lower-triangular integer M with the given entries: exact check of both factorizations, and
    glrtheory.factor against them (every M for n <= 2, every 8th at n = 3)."""
    below = [(i, j) for i in range(n) for j in range(i)]
    count = 0
    for diag in itertools.product(diagonal, repeat=n):
        for off in itertools.product(values, repeat=len(below)):
            M = [[Fraction(0)] * n for _ in range(n)]
            for i, d in enumerate(diag):
                M[i][i] = Fraction(d)
            for (i, j), v in zip(below, off):
                M[i][j] = Fraction(v)
            I = [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]
            Minv = exact_lower_solve(M, I)
            B = [[I[i][j] - M[i][i] * Minv[i][j] for j in range(n)] for i in range(n)]
            assert all(B[i][j] == 0 for i in range(n) for j in range(i, n))
            # (I - B) H = D  =>  H = M
            H = exact_lower_solve([[I[i][j] - B[i][j] for j in range(n)] for i in range(n)],
                                  [[M[i][i] * I[i][j] for j in range(n)] for i in range(n)])
            assert H == M
            if n < 3 or count % 8 == 0:    # glrtheory.factor: every M up to n = 2, every 8th at n = 3
                check_factor(M, B)
            count += 1
    return count


def main() -> None:
    print(__doc__)
    for n in (2, 3):
        symbolic(n)
    for n in (1, 2, 3):
        print(f"exhaustive n={n}: {exhaustive(n)} integer matrices, both factorizations exact, glrtheory.factor agrees")
    rng = np.random.default_rng(0)
    for n in (1, 2, 63, 200):
        M = np.tril(rng.standard_normal((n, n))) / np.sqrt(n) + np.diag(rng.uniform(1, 2, n))
        err = max(np.abs(mixing_matrix(*factor(M, form)) - M).max() for form in ("recurrence", "direct"))
        print(f"float64 round trip through glrtheory.factor, n={n}: max error {err:.1e}")
        assert err < 1e-10


if __name__ == "__main__":
    main()
