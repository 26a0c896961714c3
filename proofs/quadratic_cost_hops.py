"""Quadratic lags k^2 + 1: Theta(n^1.5) total work, at most 4 hops between any two positions, exact cache.

Pattern: A(t) = {t}, B(t) = {t - (k^2 + 1) : k >= 0}. Let K = floor(sqrt(n - 2)) (largest lag K^2 + 1).

Statement.
 (1) |B(t)| = floor(sqrt(t - 1)) + 1 for t >= 1; nnz_b(n) = (K + 1)(n - 1) - K(K + 1)(2K + 1)/6, and
     (nnz_a + nnz_b) / n^(3/2) -> 2/3: Theta(n^1.5).
 (2) hops(s -> t) <= 4 for every pair. Exactly: with d = t - s >= 1, hops = the least h in {1, 2, 3}
     such that d - h >= 0 is a sum of h squares (0 allowed), else 4. So 4 hops are needed exactly when
     d - 1 is not a square, d - 2 not a sum of two squares and d - 3 has the form 4^a (8b + 7);
     the first such d is 58, hence hop_diameter(n) = 0, 1, 2, 3, 4 for n = 1, 2..3, 4..8, 9..58, >= 59.
     The claim "at most 4 hops" is true and tight; about 11% of distances below 2*10^5 need all 4.
 (3) cache_peak(n) = min(K^2 + 1, n - 2K + 1) for n >= 2: n - O(sqrt n), linear.

Derivation.
 (1) Lag k^2 + 1 is used by the n - 1 - k^2 positions t >= k^2 + 1; sum over k = 0..K (sympy below).
 (2) A route of h B-edges covers d = sum_{i<=h} (k_i^2 + 1), i.e. d - h = sum of h squares. Lagrange's
     four-square theorem writes every d - 4 >= 0 so, so h = 4 always works for d >= 4; d = 1, 2, 3 take
     1, 1, 2 hops. One square: d - 1 = k^2; two squares: Fermat (checked here by enumeration); three:
     Legendre's theorem (checked here against enumeration).
 (3) The gaps 1, 1, 3, 5, 7, ... are nondecreasing: proofs/lag_cache_linear (c) with l_k = K^2 + 1 and
     l_{k-1} = (K - 1)^2 + 1 gives min(K^2 + 1, n - 2K + 1).

Check: (1), (3) for all n <= 4096 against the exact counts and caches; (2) the characterization against
the exact hop counts (glrtheory.analysis, a DP over d) for every d < 200000, Legendre's criterion
against enumeration of sums of three squares, and BFS on the dependency graph for all pairs at n = 80.
"""
import math

import numpy as np
import sympy as sp

from glrtheory import Pattern, analysis, graph
from glrtheory.symbolic.costs import N_SYM, T_SYM

from ._checks import agrees, caches, forms_and_lengths, same, values

N = 4096
D = 200_000


def derive() -> None:
    n, k, K = N_SYM, sp.Symbol("k", integer=True, nonnegative=True), sp.Symbol("K", integer=True, positive=True)
    nnz_b = sp.factor(sp.summation(n - 1 - k**2, (k, 0, K)))
    print("nnz_b = sum_{k=0}^{K} (n - 1 - k^2) =", nnz_b)
    assert sp.simplify(nnz_b - ((K + 1) * (n - 1) - K * (K + 1) * (2 * K + 1) / 6)) == 0
    x, theta = sp.symbols("x theta", positive=True)   # K = sqrt(n) - theta, 0 < theta < 2 for n >= 2
    lim = sp.limit((x + nnz_b.subs({K: sp.sqrt(x) - theta, n: x})) / x ** sp.Rational(3, 2), x, sp.oo)
    print("(nnz_a + nnz_b) / n^(3/2) ->", lim)
    assert lim == sp.Rational(2, 3)


def sums_of_squares(limit: int) -> list[np.ndarray]:
    """is_sum[h][m]: m < limit is a sum of h squares (0 allowed), h = 1, 2, 3, by enumeration."""
    sq = np.arange(math.isqrt(limit - 1) + 1) ** 2
    one = np.zeros(limit, dtype=bool)
    one[sq] = True
    out = [None, one]
    for _ in range(2):
        prev, nxt = out[-1], np.zeros(limit, dtype=bool)
        base = np.flatnonzero(prev)
        for s in sq:
            v = base + s
            nxt[v[v < limit]] = True
        out.append(nxt)
    return out


def legendre_three_squares(m: np.ndarray) -> np.ndarray:
    """m >= 0 is a sum of three squares iff it is not 4^a (8b + 7)."""
    m = m.copy()
    while True:
        four = (m > 0) & (m % 4 == 0)
        if not four.any():
            break
        m[four] //= 4
    return m % 8 != 7


def predicted_hops(d: np.ndarray, is_sum) -> np.ndarray:
    out = np.full(d.size, 4)
    for h in (3, 2, 1):
        ok = (d - h >= 0) & is_sum[h][np.maximum(d - h, 0)]
        out[ok] = h
    out[d == 0] = 0
    return out


def main() -> None:
    print(__doc__)
    derive()
    p = Pattern.from_spec("quadratic")
    forms, ns = forms_and_lengths(p, N)
    n, t, K = N_SYM, T_SYM, sp.floor(sp.sqrt(N_SYM - 2))
    agrees("(1) decode cost floor(sqrt(t - 1)) + 2", sp.floor(sp.sqrt(t - 1)) + 2, forms.decode_cost, None, ns)
    agrees("(1) nnz_b = (K + 1)(n - 1) - K(K + 1)(2K + 1)/6", (K + 1) * (n - 1) - K * (K + 1) * (2 * K + 1) / 6,
           forms.nnz_b, ns[1:])
    agrees("(3) cache = min(K^2 + 1, n - 2K + 1)", sp.Min(K**2 + 1, n - 2 * K + 1), forms.cache_peak, ns[1:])
    same("(1) |A(t)| + |B(t)| = floor(sqrt(t - 1)) + 2", values(forms.decode_cost, None, ns - 1),
         analysis.decode_costs(p, N))
    same("(1) nnz_b(n) closed form, n <= 4096", values(forms.nnz_b, ns), np.cumsum(p.support_b(N).counts()))
    is_sum = sums_of_squares(D)
    same("Legendre's three-square criterion vs enumeration, m < 200000",
         legendre_three_squares(np.arange(D)), is_sum[3])
    d = np.arange(D)
    exact = analysis.hop_profile(p, D)
    same("(2) hops(s -> s + d) = least h with d - h a sum of h squares, d < 200000", predicted_hops(d, is_sum), exact)
    assert exact.max() == 4 and int(np.flatnonzero(exact == 4)[0]) == 58
    print(f"  max hops = {exact.max()}; first d needing 4: 58; share of d < {D} needing 4: {np.mean(exact == 4):.3f}")
    same("(2) hop_diameter(n) piecewise 0,1,2,3,4, n <= 200000", values(forms.hop_diameter, d + 1),
         np.maximum.accumulate(exact))
    H = graph.hop_matrix(graph.dependency_graph(p, 80))
    s, t = np.nonzero(np.triu(np.ones((80, 80), dtype=bool)))
    same("(2) BFS hops on the dependency graph, all pairs s <= t at n = 80", H[s, t], exact[t - s])
    same("(3) cache_peak(n) = min(K^2 + 1, n - 2K + 1), n <= 4096", values(forms.cache_peak, ns), caches(p, ns))


if __name__ == "__main__":
    main()
