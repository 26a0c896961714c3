"""Fenwick (aligned binary counter, log-linear attention): cache_peak(n) = ceil(log2 n), i.e. O(log n).

Pattern: A(t) = {t}, B(t) = {2^j floor((t-1)/2^j) : j >= 0} for t >= 1: the "prefixes" of t-1, obtained by
clearing its lowest set bits one at a time down to 0. x is a prefix of y iff x <= y < x + 2^tz(x)
(tz = trailing zeros, tz(0) = infinity).

Statement.
 (1) After step t <= n-2 the live set is exactly {h_x : x a prefix of t}: popcount(t) + 1 states (none
     after step n-1). Hence cache_peak(n) = max_{t <= n-2} popcount(t) + 1 = floor(log2(n-1)) + 1
     = ceil(log2 n) for n >= 2 (0 for n = 1).
 (2) decode cost popcount(t-1) + 2 (t >= 1); nnz_b(n) = m + S(m), m = n-1, S(m) = sum_{x<m} popcount(x),
     with  (K+1) m/2 - 2^K + 1/2 <= S(m) <= (m/2) log2 m  (K = floor(log2 m)): Theta(n log n) total.
 (3) hops(s -> t), s < t: 1 if s is a prefix of t-1; else 2 + z, where j is the highest bit set in t-1
     and clear in s, and z counts the zero bits of s strictly between tz(s) and j. Hence
     hop_diameter(n) = ceil(log2(n-1)) for n >= 3 (1 for n = 2), attained by s = 1, t = 2^j + 1.

Derivation.
 (1) h_s is used at t' iff s is a prefix of t'-1, iff t'-1 in [s, s + 2^tz(s) - 1]. It is live after t
     iff s <= t and some t' in (t, n-1] uses it: [s, s + 2^tz(s) - 1] meets [t, n-2], i.e. t <= n-2 and
     t < s + 2^tz(s): s is a prefix of t. A number t has popcount(t) + 1 prefixes (0 included), and
     max_{t <= M} popcount(t) = floor(log2(M+1)).
 (2) Lower: x < m has bit j set for q 2^j + max(0, r - 2^j) values (m = q 2^(j+1) + r), at least
     m/2 - 2^(j-1); sum j = 0..K. Upper (McIlroy 1974): f(x) = (x/2) log2 x has f(2x) = 2 f(x) + x and
     S(2m) = 2 S(m) + m, S(2m+1) = S(m) + S(m+1) + m; by induction from S(1) = f(1) = 0 it suffices that
     f(m) + f(m+1) - 2 f(m + 1/2) <= 1/4 max f'' = 1/(8 m ln 2) <= 1/2 (sympy below).
 (3) From x one hop reaches y iff y-1 has x as a prefix. If s is not a prefix of t-1, the smallest
     prefix of t-1 that is >= s is P = (t-1 above bit j) + 2^j; a route must pass it, and each further
     step back to s clears one zero bit of s between tz(s) and j (then P - 1 ends in ones). So z <= j-1,
     hops <= j + 1 <= bit_length(n-2) = ceil(log2(n-1)); s = 1, t - 1 = 2^j gives z = j - 1.

Check: (1) the live profile at n = 4096 and cache_peak for all n <= 4096; (2) the per-token cost for
t < 4096 and both bounds of nnz_b for all n <= 4096 and at 2^20; (3) the hop formula against BFS on the
dependency graph (glrtheory.graph) for all pairs at n = 128, and the diameter for all n <= 300.
"""
import numpy as np
import sympy as sp

from glrtheory import Pattern, analysis, graph
from glrtheory.symbolic.costs import N_SYM, T_SYM, Bounds, evaluate, popcount

from ._checks import agrees, caches, forms_and_lengths, same, values

N = 4096


def derive() -> None:
    x, m = sp.symbols("x m", positive=True)
    f = x / 2 * sp.log(x, 2)
    assert sp.simplify(f.subs(x, 2 * x) - 2 * f - x) == 0
    f2 = sp.simplify(sp.diff(f, x, 2))
    print("f(x) = (x/2) log2 x:  f(2x) = 2 f(x) + x,  f''(x) =", f2)
    assert sp.simplify(f2 - 1 / (2 * x * sp.log(2))) == 0
    second = f.subs(x, m) + f.subs(x, m + 1) - 2 * f.subs(x, m + sp.Rational(1, 2))
    worst = max(float(second.subs(m, k)) for k in range(1, 200))
    print(f"f(m) + f(m+1) - 2 f(m+1/2) <= {worst:.4f} <= 1/2 for m = 1..199 (and <= 1/(8 m ln 2) beyond)")
    assert worst <= 0.5


def prefixes(y: int) -> set[int]:
    out, k = {y}, 0
    while y >> k:
        out.add((y >> k) << k)
        k += 1
    return out | {0}


def hops_formula(s: int, t: int) -> int:
    if s == t:
        return 0
    x = t - 1
    if s in prefixes(x):
        return 1
    j = ((x & ~s) & ((1 << x.bit_length()) - 1)).bit_length() - 1     # highest bit set in x, clear in s
    tz = (s & -s).bit_length() - 1
    z = sum(1 for b in range(tz + 1, j) if not (s >> b) & 1)
    return 2 + z


def main() -> None:
    print(__doc__)
    derive()
    p = Pattern.from_spec("fenwick")
    forms, ns = forms_and_lengths(p, N)
    t = np.arange(N)
    want = np.where(t <= N - 2, np.bitwise_count(t) + 1, 0)
    same("(1) live set after t = popcount(t) + 1 at n = 4096", analysis.live_profile(p, N), want)
    for tt in (0, 5, 12, 1000):
        live = {s for s in range(tt + 1) if p.support_b(N).last_use()[s] > tt}
        assert live == prefixes(tt), (tt, live)
    print("  checked: (1) the live states are the prefixes of t (t = 0, 5, 12, 1000)")
    n, tt, m = N_SYM, T_SYM, N_SYM - 1
    K = sp.floor(sp.log(m, 2))
    agrees("(1) cache = ceil(log2 n)", sp.ceiling(sp.log(n, 2)), forms.cache_peak, ns)
    agrees("(2) decode cost popcount(t - 1) + 2", popcount(tt - 1) + 2, forms.decode_cost, None, ns)
    agrees("(2) nnz_b = m + S(m) within its two bounds", Bounds(m + (K + 1) * m / 2 - 2**K + sp.Rational(1, 2),
           m + m * sp.log(m, 2) / 2), forms.nnz_b, ns[1:])
    agrees("(3) hop_diameter = ceil(log2(n - 1))", sp.ceiling(sp.log(n - 1, 2)), forms.hop_diameter, ns[2:])
    cache = caches(p, ns)
    same("(1) cache_peak(n) = ceil(log2 n), n <= 4096", values(forms.cache_peak, ns), cache)
    same("(2) per-token cost popcount(t-1) + 2", values(forms.decode_cost, None, t), analysis.decode_costs(p, N))
    assert isinstance(forms.nnz_b, Bounds)
    at = np.append(ns, 2**20)
    exact = np.append(np.cumsum(p.support_b(N).counts()), analysis.nnz(p, 2**20)[1])
    lo, hi = evaluate(forms.nnz_b, at)
    assert np.all(lo <= exact + 1e-9) and np.all(exact <= hi + 1e-6), "(2) bounds fail"
    tight = (at >= 2) & (((at - 1) & (at - 2)) == 0)        # m = n - 1 a power of two
    assert np.allclose(hi[tight], exact[tight], rtol=1e-12), "(2) upper bound not attained at m = 2^K"
    print(f"  checked: (2) both bounds of nnz_b for all n <= {N} and at 2^20; the upper one is exact at n = 2^K + 1;"
          f" at 2^20 upper/lower = {hi[-1] / lo[-1]:.4f}")
    n = 128
    H = graph.hop_matrix(graph.dependency_graph(p, n))
    pairs = [(s, tt) for tt in range(n) for s in range(tt + 1)]
    same(f"(3) hop formula vs BFS on the dependency graph, all pairs at n = {n}",
         [hops_formula(s, tt) for s, tt in pairs], [H[s, tt] for s, tt in pairs])
    ms = np.arange(1, 301)
    same("(3) hop_diameter(n) = ceil(log2(n-1)), n <= 300", values(forms.hop_diameter, ms),
         [analysis.hop_diameter(p, int(k)) for k in ms])


if __name__ == "__main__":
    main()
