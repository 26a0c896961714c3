"""The cache of a translation-invariant lag pattern; a largest lag that grows linearly forces a linear cache.

Pattern: A(t) = {t}, B(t) = {t - l : l in L, l <= t} for a fixed lag set L. At length n write
l_k = max{l in L : l <= n-1} and l_{k-1} for the lag before it (0 if none), gaps g_i = l_i - l_{i-1}, l_0 = 0.

Statement.
 (a) After step t, with r = n-1-t steps left, the live set is {h_{t-d} : 0 <= d <= t, L meets (d, d+r]};
     its size is |[0, t] intersected with the union over l in L of [l - r, l - 1]|.
 (b) max_{l in L, l <= n-1} min(l, n-l)  <=  cache_peak(n)  <=  min(l_k, n - l_k + l_{k-1}).
 (c) If the gaps are nondecreasing (g_1 <= g_2 <= ...), the upper bound is exact.
 (d) Linear cache: if the largest lag grows linearly, l_k(m) >= c m for all m >= m0 (some c > 0), then
     cache_peak(n) >= c n / 2 for n >= 2 m0; conversely cache_peak(n) <= l_k(n), so a bounded lag set
     has a bounded cache. Translation invariance is essential: Fenwick (aligned, lags up to n-1) keeps
     ceil(log2 n) states (proofs/fenwick_cache).

Derivation.
 (a) h_s (s = t - d) is used at t' = s + l for every lag l; it is live after t iff some use falls in
     (t, n-1], i.e. d < l <= d + r. That is d in [l - r, l - 1]; s >= 0 is d <= t.
 (b) Lower: a single lag l already keeps d in [max(0, 2l - n), l - 1] at t = l - 1, min(l, n - l) states.
     Upper: every counted d is < l_k (some lag exceeds it), so at most l_k. Among d >= l_{k-1} only l_k
     lies above d, which needs d >= l_k - r; so live <= l_{k-1} + (t - (l_k - r) + 1) = n - l_k + l_{k-1}.
 (c) Let V = min(l_k, n - l_k + l_{k-1}), take t = V - 1, r = n - V >= g_k. Every d in [l_{i-1}, l_i - 1]
     with d <= t has l_i - d <= g_i <= g_k <= r, so d is counted: live(t) = t + 1 = V.
 (d) For n >= 2 m0 take l = l_k(ceil(n/2)): c n / 2 <= l <= ceil(n/2) - 1 < n / 2, so by (b)
     cache >= min(l, n - l) = l >= c n / 2.

Check: (b) and (c) for every lag set L within {1..10} and every n <= 22 (1023 sets), and for random lag
sets up to 200 at n <= 400; (a) live profiles for random sets; (d) for power2, quadratic and exponent:0.5
at all n <= 4096.
"""
import itertools

import numpy as np
import sympy as sp

from glrtheory import Pattern, analysis
from glrtheory.symbolic.costs import N_SYM
from glrtheory.symbolic.family_forms import lag_cache_peak

from ._checks import caches, same


def bounds(lags, n: int) -> tuple[int, int, bool]:
    """(lower, upper, convex) of statement (b)/(c) at length n."""
    used = [l for l in sorted(lags) if l <= n - 1]
    if not used:
        return 0, 0, True
    lower = max(min(l, n - l) for l in used)
    last, prev = used[-1], (used[-2] if len(used) > 1 else 0)
    upper = min(last, n - last + prev)
    gaps = np.diff([0] + sorted(lags))
    return lower, upper, bool(np.all(np.diff(gaps) >= 0))


def live_by_intervals(lags, n: int) -> np.ndarray:
    """Statement (a): |[0, t] cap U_l [l - r, l - 1]|, r = n - 1 - t."""
    out = np.zeros(n, dtype=np.int64)
    for t in range(n):
        r = n - 1 - t
        covered = np.zeros(t + 1, dtype=bool)
        for l in lags:
            lo, hi = max(0, l - r), min(t, l - 1)
            if lo <= hi:
                covered[lo: hi + 1] = True
        out[t] = covered.sum()
    return out


def check_small_sets() -> None:
    count = exact = 0
    for size in range(1, 11):
        for L in itertools.combinations(range(1, 11), size):
            p = Pattern.from_lags((0,), L)
            for n in range(1, 23):
                c = analysis.cache_peak(p, n)
                lo, hi, convex = bounds(L, n)
                assert lo <= c <= hi, f"L={L} n={n}: {lo} <= {c} <= {hi} fails"
                if convex:
                    assert c == hi, f"L={L} n={n}: convex gaps but cache {c} != {hi}"
                    exact += 1
                count += 1
    print(f"  checked: (b) on {count} (L, n) pairs, L within {{1..10}}, n <= 22; (c) exact on {exact} convex ones")


def check_random_sets(rng) -> None:
    for _ in range(40):
        L = sorted(set(rng.integers(1, 200, size=rng.integers(1, 8)).tolist()))
        p = Pattern.from_lags((0,), L)
        for n in rng.integers(1, 400, size=10):
            c = analysis.cache_peak(p, int(n))
            lo, hi, convex = bounds(L, int(n))
            assert lo <= c <= hi and (c == hi or not convex), (L, n, lo, c, hi)
        n = int(rng.integers(1, 120))
        same(f"(a) live profile of lags {L} at n={n}", live_by_intervals(L, n), analysis.live_profile(p, n))
    print("  checked: (b), (c) on 40 random lag sets within {1..199}, 10 lengths each")


def check_linear(spec: str, c: float, N: int = 4096) -> None:
    p = Pattern.from_spec(spec)
    ns = np.arange(1, N + 1)
    cache = caches(p, ns)
    lags = p.support_b(N).lags
    largest = np.array([lags[lags <= n - 1].max(initial=0) for n in ns])
    assert np.all(cache <= largest), spec
    fails = np.flatnonzero(largest < c * ns)
    m0 = int(fails[-1]) + 2 if fails.size else 1          # largest lag >= c m for all m >= m0
    assert m0 < N // 4, f"{spec}: largest lag < {c} n up to n = {m0 - 1}"
    tail = ns >= 2 * m0
    assert np.all(cache[tail] >= c * ns[tail] / 2), spec
    print(f"  checked: {spec}: largest lag >= {c} n for n >= {m0}, and {c} n / 2 <= cache <= largest lag"
          f" for all {2 * m0} <= n <= {N}; cache(N) / N = {cache[-1] / N:.3f}")


def main() -> None:
    print(__doc__)
    l, lp = sp.symbols("l_k l_km1", positive=True)
    print("upper bound of (b), as glrtheory.symbolic.family_forms states it:", lag_cache_peak(l, lp))
    assert lag_cache_peak(l, lp).subs({l: 8, lp: 4, N_SYM: 11}) == min(8, 11 - 8 + 4)
    check_small_sets()
    check_random_sets(np.random.default_rng(0))
    check_linear("power2", 0.5)
    check_linear("quadratic", 0.4)
    check_linear("exponent:0.5", 0.4)
    fen = caches(Pattern.from_spec("fenwick"), [4096])[0]
    print(f"  contrast: fenwick (aligned, not translation invariant) keeps {fen} states at n = 4096")


if __name__ == "__main__":
    main()
