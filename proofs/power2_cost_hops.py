"""Power-of-two lags (power2): Theta(n log n) total work, at most ceil(log2 n) hops, exact cache.

Pattern: A(t) = {t}, B(t) = {t - 2^j : 2^j <= t}. Let k = floor(log2(n - 1)) (the largest lag is 2^k).

Statement.
 (1) |B(t)| = floor(log2 t) + 1 for t >= 1, and nnz_b(n) = (k + 1) n - 2^(k+1) + 1; the total work
     nnz_a + nnz_b is Theta(n log n), equal to n log2 n + 1 at n = 2^m, and ~ n log2 n.
 (2) hops(s -> t) = popcount(t - s), so hop_diameter(n) = floor(log2 n) <= ceil(log2 n).
 (3) cache_peak(n) = min(2^k, n - 2^(k-1)) for n >= 2 (0 for n = 1): between n/2 and 2n/3, linear.

Derivation.
 (1) Lag 2^j is used by the n - 2^j positions t >= 2^j: nnz_b = sum_{j=0}^{k} (n - 2^j) (sympy below).
 (2) A route s -> t with diagonal A is a sum of powers of two equal to d = t - s, one per B-edge, and
     every partial sum stays inside [s, t]. The binary expansion uses popcount(d) terms; no sum of h
     powers of two has more than h one bits (adding 2^j to x changes popcount by at most +1), so
     popcount(d) is the least. max_{d <= n-1} popcount(d) = floor(log2 n) (attained at d = 2^m - 1).
 (3) The gaps 1, 1, 2, 4, ... are nondecreasing, so proofs/lag_cache_linear (c) gives
     min(l_k, n - l_k + l_{k-1}) with l_k = 2^k, l_{k-1} = 2^(k-1) (for k = 0: 1 and 0, the same value).

Check: (1) and (3) against the exact counts and caches for all n <= 4096, (2) against hops for all
d < 4096 and the hop diameter for all n <= 4096, and against a breadth-first search on the
dependency graph (glrtheory.graph) for every pair at n = 64.
"""
import numpy as np
import sympy as sp

from glrtheory import Pattern, analysis, graph
from glrtheory.symbolic.costs import N_SYM, T_SYM

from ._checks import agrees, caches, forms_and_lengths, same, values

N = 4096


def derive() -> None:
    n, j, k = N_SYM, sp.Symbol("j", integer=True, nonnegative=True), sp.Symbol("k", integer=True, positive=True)
    nnz_b = sp.simplify(sp.summation(n - 2**j, (j, 0, k)))
    print("nnz_b = sum_{j=0}^{k} (n - 2^j) =", nnz_b)
    assert sp.simplify(nnz_b - ((k + 1) * n - 2 ** (k + 1) + 1)) == 0
    m = sp.Symbol("m", integer=True, positive=True)
    total_pow = sp.simplify(n + nnz_b.subs(k, m - 1)).subs(n, 2**m)    # n = 2^m: k = m - 1
    print("at n = 2^m: nnz_a + nnz_b =", sp.factor(total_pow), "= n log2 n + 1")
    assert sp.simplify(total_pow - (2**m * m + 1)) == 0
    # general n: k = log2 n - theta with theta in (0, 1], so 2^(k+1) = 2^(1-theta) n
    theta, x = sp.symbols("theta x", positive=True)
    total = x + ((sp.log(x, 2) - theta) + 1) * x - 2 ** (1 - theta) * x + 1
    lim = sp.limit(total / (x * sp.log(x, 2)), x, sp.oo)
    print("(nnz_a + nnz_b) / (n log2 n) ->", lim)
    assert lim == 1


def main() -> None:
    print(__doc__)
    derive()
    p = Pattern.from_spec("power2")
    forms, ns = forms_and_lengths(p, N)
    n, t = N_SYM, T_SYM
    k = sp.floor(sp.log(n - 1, 2))
    agrees("(1) decode cost floor(log2 t) + 2", sp.floor(sp.log(t, 2)) + 2, forms.decode_cost, None, ns)
    agrees("(1) nnz_b = (k + 1) n - 2^(k+1) + 1", (k + 1) * n - 2 ** (k + 1) + 1, forms.nnz_b, ns[1:])
    agrees("(2) hop_diameter = floor(log2 n)", sp.floor(sp.log(n, 2)), forms.hop_diameter, ns)
    agrees("(3) cache = min(2^k, n - 2^(k-1))", sp.Min(2**k, n - 2 ** (k - 1)), forms.cache_peak, ns[1:])
    same("(1) |B(t)| + 1 = floor(log2 t) + 2", values(forms.decode_cost, None, ns - 1), analysis.decode_costs(p, N))
    same("(1) nnz_b(n) closed form, n <= 4096", values(forms.nnz_b, ns), np.cumsum(p.support_b(N).counts()))
    d = np.arange(N)
    same("(2) hops(s -> s + d) = popcount(d), d < 4096", analysis.hop_profile(p, N), np.bitwise_count(d))
    diam = values(forms.hop_diameter, ns)
    same("(2) hop_diameter(n) = floor(log2 n), n <= 4096", diam, np.maximum.accumulate(np.bitwise_count(d)))
    assert np.all(diam <= np.ceil(np.log2(ns))), "more than ceil(log2 n) hops"
    H = graph.hop_matrix(graph.dependency_graph(p, 64))
    s, t = np.nonzero(np.triu(np.ones((64, 64), dtype=bool)))
    same("(2) BFS hops on the dependency graph, all pairs s <= t at n = 64", H[s, t], np.bitwise_count(t - s))
    cache = caches(p, ns)
    same("(3) cache_peak(n) = min(2^k, n - 2^(k-1)), n <= 4096", values(forms.cache_peak, ns), cache)
    ratio = cache[1:] / ns[1:]
    print(f"  cache / n over 2 <= n <= 4096 lies in [{ratio.min():.4f}, {ratio.max():.4f}]")
    assert ratio[ns[1:] >= 8].min() >= 0.5 and ratio.max() <= 2 / 3


if __name__ == "__main__":
    main()
