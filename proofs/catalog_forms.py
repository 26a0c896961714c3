"""The framework forms used by glrtheory.catalog where they are not a textbook recurrence.

1. CHACAL. For causal A (lower triangular) with d_t = 1 - gamma A[t,t] != 0,
       (1 - gamma) A (I - gamma A)^{-1} = (I - B')^{-1} A',
       A' = (1 - gamma) D^{-1} A,   B' = gamma D^{-1} (A - diag A)   (strictly lower),   D = diag(d).
   Derivation: I - gamma A = D - gamma (A - diag A) = D (I - B'), so (I - gamma A)^{-1} = (I - B')^{-1} D^{-1};
   A commutes with (I - gamma A)^{-1} (a power series in A), hence the left side is
   (1 - gamma)(I - gamma A)^{-1} A = (I - B')^{-1} (1 - gamma) D^{-1} A.

2. Log-linear levels. With level(t, s) = bitlength(t XOR s) (0 iff s = t), fla's level masks
   (t mod 2^l >= 2^(l-1) and t - t mod 2^(l-1) - 2^(l-1) <= s < t - t mod 2^(l-1)) select exactly
   level(t, s) = l, and the first-order recurrence h^l_t = a^l_t u_t + b^l_t h^l_{t-1} with
   a^l_t = [bit l-1 of t is 0], b^l_t = [2^l does not divide t] (level 0: a = 1, b = 0), read with weight
   [bit l-1 of t is 1], has mixing matrix [level(t, s) = l]: it sums the first half of the aligned 2^l
   block of t and carries it through the second half. Decays exp(g) multiply along the single path, so
   they contribute exactly exp(G_t - G_s).

3. Log-linear attention is not one scalar recurrence on output states over fenwick: with A diagonal the
   factorization is unique (A = diag M, B = I - D M^{-1}), and for query-dependent level scales B has
   entries outside the fenwick support (exact rational arithmetic).
"""
import numpy as np
import sympy as sp

from glrtheory import Pattern, mixing_matrix
from glrtheory.catalog.log_linear import level_masks


def chacal_symbolic(n: int) -> None:
    g = sp.Symbol("gamma")
    A = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a{i}{j}") if j <= i else 0)
    D = sp.diag(*[1 - g * A[i, i] for i in range(n)])
    Ap = (1 - g) * D.inv() * A
    Bp = g * D.inv() * (A - sp.diag(*[A[i, i] for i in range(n)]))
    assert all(Bp[i, j] == 0 for i in range(n) for j in range(i, n)), "B' is not strictly lower"
    lhs = (1 - g) * A * (sp.eye(n) - g * A).inv()
    rhs = (sp.eye(n) - Bp).inv() * Ap
    assert sp.simplify(lhs - rhs) == sp.zeros(n, n)
    print(f"chacal n={n}: (1-gamma) A (I-gamma A)^-1 - (I-B')^-1 A' simplifies to 0 (symbolic A, gamma)")


def level(t: int, s: int) -> int:
    return (t ^ s).bit_length()


def fla_level_mask(l: int, n: int) -> np.ndarray:
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if l == 0:
        return i == j
    half = 1 << (l - 1)
    return (i % (1 << l) >= half) & (j + half >= i - i % half) & (j < i - i % half)


def level_recurrence(l: int, n: int) -> np.ndarray:
    """Readout-weighted mixing matrix of level l's recurrence, from the catalog's masks and the framework."""
    a, carry, read = level_masks(n)
    p = Pattern.from_spec("ssm")
    wb = p.tables(n)[1].shape[1]
    return read[l][:, None] * mixing_matrix(p, a[l][:, None], carry[l][:, None][:, :wb])


def levels_exhaustive(nmax: int) -> None:
    for n in range(1, nmax + 1):
        L = (n - 1).bit_length() + 1
        lv = np.array([[level(t, s) if s <= t else -1 for s in range(n)] for t in range(n)])
        for l in range(L):
            assert np.array_equal(fla_level_mask(l, n), lv == l), (n, l)
            assert np.array_equal(level_recurrence(l, n), (lv == l).astype(float)), (n, l)
        assert (lv[np.tril_indices(n)] < L).all()
    print(f"log-linear levels: fla masks == [level(t,s) = l] == level recurrences, every n <= {nmax}")


def decay_symbolic(n: int) -> None:
    g = sp.symbols(f"g0:{n}")
    a, carry, read = (m.astype(int) for m in level_masks(n))
    for l in range(a.shape[0]):
        h = []                                           # h[t] = row t of the mixing matrix (coefficients of u_s)
        for t in range(n):
            h.append(a[l, t] * sp.eye(n)[t, :] + (carry[l, t] * sp.exp(g[t]) * h[t - 1] if t else sp.zeros(1, n)))
        for t in range(n):
            for s in range(n):
                want = sp.exp(sum(g[s + 1:t + 1])) if s <= t and level(t, s) == l else 0
                assert sp.simplify(read[l, t] * h[t][s] - want) == 0, (l, t, s)
    print(f"log-linear decays: level recurrences give exp(G_t - G_s) on their level, n = {n} (symbolic g)")


def fenwick_not_enough(n: int = 8) -> None:
    rng = np.random.default_rng(1)
    lam = [[sp.Rational(int(x), 7) for x in row] for row in rng.integers(1, 14, (n, (n - 1).bit_length() + 1))]
    M = sp.Matrix([[lam[t][level(t, s)] if s <= t else 0 for s in range(n)] for t in range(n)])
    B = sp.eye(n) - sp.diag(*[M[i, i] for i in range(n)]) * M.inv()
    _, fb = Pattern.from_spec("fenwick").masks(n)
    outside = [(t, s) for t in range(n) for s in range(t) if B[t, s] != 0 and not fb[t, s]]
    assert outside, "expected B entries outside the fenwick support"
    print(f"log-linear, n={n}, rational level scales: {len(outside)} entries of B = I - D M^-1 lie outside "
          f"fenwick's B(t), e.g. (t, s) = {outside[0]}: B[t,s] = {B[outside[0]]}")


def main() -> None:
    print(__doc__)
    for n in (2, 3):
        chacal_symbolic(n)
    levels_exhaustive(64)
    decay_symbolic(6)
    fenwick_not_enough()


if __name__ == "__main__":
    main()
