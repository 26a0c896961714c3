"""Any complexity: exponent:alpha has Theta(n^(1 + alpha)) total work for every alpha in [0, 1].

Pattern: A(t) = {t}, B(t) = {t - floor(k^p) : k >= 1}, p = 1/alpha (alpha = 0: the single lag 1).

Statement. For alpha in (0, 1]:
 (1) the lags floor(k^p) are distinct, and |B(t)| = ceil((t + 1)^alpha) - 1, so the per-token cost
     |A(t)| + |B(t)| = ceil((t + 1)^alpha) is Theta(t^alpha);
 (2) n^(1+alpha) / (1+alpha) - n  <=  nnz_b(n)  <  ((n+1)^(1+alpha) - 1) / (1+alpha), hence
     n^(1+alpha) / (1+alpha)  <=  nnz_a + nnz_b  <  ((n+1)^(1+alpha) - 1) / (1+alpha) + n, and
     (nnz_a + nnz_b) / n^(1+alpha) -> 1/(1+alpha): Theta(n^(1+alpha)).
 For alpha = 0, nnz_a + nnz_b = 2n - 1 = Theta(n^(1+0)).
 The second-order term is O(n) against n^(1+alpha), so the ratio converges like n^(-alpha): slowly for
 small alpha (the checks at n = 2^20 below show it).

Derivation.
 (1) p >= 1, so (k+1)^p - k^p >= 1 and the floors are distinct. floor(k^p) <= t iff k^p < t + 1 iff
     k < (t+1)^alpha, i.e. k = 1 .. ceil((t+1)^alpha) - 1.
 (2) nnz_b(n) = sum_{m=1}^{n} (ceil(m^alpha) - 1), and x - 1 <= ceil(x) - 1 < x. For the increasing
     f(x) = x^alpha, int_{m-1}^{m} f <= f(m) <= int_{m}^{m+1} f, so
     int_0^n f <= sum_{m=1}^{n} m^alpha <= int_1^{n+1} f (sympy below, symbolic in alpha).
 The same sandwich shows that ANY translation-invariant lag set with c1 t^alpha <= |B(t)| <= c2 t^alpha
 costs Theta(n^(1+alpha)) (docs/mathematics.md, "any desired complexity").

Check: for alpha on the grid 0, 0.05, ..., 1 and 0.37, 0.333333, 0.714286: (1) for every t < 4096, (2) for every
n <= 4096 and at n = 2^20, against the exact counts.
"""
import numpy as np
import sympy as sp

from glrtheory import analysis
from glrtheory.patterns.families import exponent
from glrtheory.patterns.rational_power import exact_fraction
from glrtheory.symbolic.costs import N_SYM, T_SYM, Bounds, evaluate

from ._checks import agrees, forms_and_lengths, same, values

N = 4096
BIG = 2**20


def derive():
    a = sp.Symbol("alpha", positive=True)
    x, n = sp.Symbol("x", positive=True), N_SYM
    lower = sp.integrate(x**a, (x, 0, n))
    upper = sp.simplify(sp.integrate(x**a, (x, 1, n + 1)))
    print("int_0^n x^alpha dx =", lower, ";  int_1^(n+1) x^alpha dx =", upper)
    lo_lim = sp.limit(lower / n ** (1 + a), n, sp.oo)
    hi_lim = sp.limit((upper + n) / n ** (1 + a), n, sp.oo)
    print("both bounds of (nnz_a + nnz_b) / n^(1+alpha) tend to", lo_lim, "and", hi_lim)
    assert sp.simplify(lo_lim - 1 / (1 + a)) == 0 and sp.simplify(hi_lim - 1 / (1 + a)) == 0
    return a


def check(alpha: float) -> None:
    p = exponent(alpha)
    forms, ns = forms_and_lengths(p, N)
    decode = analysis.decode_costs(p, N)
    same(f"alpha={alpha:.4g}: (1) per-token cost formula, t < {N}", values(forms.decode_cost, None, ns - 1), decode)
    total = ns + np.cumsum(p.support_b(N).counts())
    big_total = sum(analysis.nnz(p, BIG))
    if alpha == 0:
        assert np.array_equal(total, 2 * ns - 1) and big_total == 2 * BIG - 1
        print(f"  checked: alpha=0: nnz_a + nnz_b = 2n - 1 for n <= {N} and at 2^20")
        return
    a, n, t = sp.Rational(exact_fraction(p.terms[0].params[0])), N_SYM, T_SYM
    agrees(f"alpha={alpha:.4g}: (1) per-token cost ceil((t + 1)^alpha)", sp.ceiling((t + 1) ** a),
           forms.decode_cost, None, ns - 1)
    if alpha < 1:   # alpha = 1: the exact n + n (n - 1) / 2
        agrees(f"alpha={alpha:.4g}: (2) total between n^(1+alpha)/(1+alpha) and ((n+1)^(1+alpha) - 1)/(1+alpha) + n",
               Bounds(n ** (1 + a) / (1 + a), ((n + 1) ** (1 + a) - 1) / (1 + a) + n), forms.total, ns)
    lags = p.support_b(N).lags
    assert np.unique(lags).size == lags.size
    at = np.append(ns, BIG)
    lo, hi = evaluate(forms.total, at) if isinstance(forms.total, Bounds) else [evaluate(forms.total, at)] * 2
    exact = np.append(total, big_total).astype(np.float64)
    assert np.all(lo <= exact) and np.all(exact <= hi), f"alpha={alpha}: bounds (2) fail"
    ratio = big_total / BIG ** (1 + alpha)
    small = total[1023] / 1024 ** (1 + alpha)
    assert abs(ratio * (1 + alpha) - 1) < abs(small * (1 + alpha) - 1), f"alpha={alpha}: no convergence"
    print(f"  checked: alpha={alpha:.4g}: (2) bounds for every n <= {N} and at 2^20; at 2^20 total / n^(1+alpha)"
          f" = {ratio:.4f}, limit 1/(1+alpha) = {1 / (1 + alpha):.4f}, bounds [{lo[-1] / BIG ** (1 + alpha):.4f},"
          f" {hi[-1] / BIG ** (1 + alpha):.4f}] (at 2^10: {small:.4f})")


def main() -> None:
    print(__doc__)
    derive()
    grid = [round(a, 2) for a in np.linspace(0, 1, 21)] + [0.37, 0.333333, 0.714286]
    for alpha in grid:   # alpha > 0 also asserts that the ratio is closer to 1/(1+alpha) at 2^20 than at 2^10
        check(alpha)


if __name__ == "__main__":
    main()
