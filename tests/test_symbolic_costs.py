"""Closed forms of glrtheory.symbolic.costs against the exact quantities of glrtheory.analysis.

Every form of every family is checked for ALL n <= 4096 (unions of families: n <= 1024 for the cache and
hops, whose union forms are plain bounds) (exact forms: equality; Bounds: lower <= exact <= upper), and
the asymptotic class with its leading constant at n = 2^20.
"""
import math

import numpy as np
import pytest
import scipy.sparse as sps
from hypothesis import given, settings
from scipy.sparse.csgraph import shortest_path

from glrtheory import GLRError, Pattern, analysis
from glrtheory.symbolic import costs
from glrtheory.symbolic.costs import Bounds, cost_forms, evaluate, theta, total_cost_bound
from helpers import specs

N = 4096
NS = np.arange(1, N + 1)
SPECS = ["ssm", "attention", "window:1", "window:5", "lags:1,3,7", "lags:2,9,10", "lags:1,4,5,30",
         "power2", "power:3", "power:5", "quadratic", "exponent:0", "exponent:0.37", "exponent:0.5",
         "exponent:0.8", "exponent:1", "fenwick", "blocks", "blocks:1", "blocks:6", "kron:1,11",
         "kron:1,11,101", "kron:1,01", "window:3+power2", "fenwick+lags:5", "blocks:4+quadratic"]
#: patterns whose S(t), t < n, does not depend on n (every built-in one but bare `blocks`, whose
#: block size is ceil(sqrt n)); their per-length quantities follow from one length-N computation.
PREFIX_STABLE = [s for s in SPECS if s != "blocks"]


def _limit(spec):
    """Largest n checked: N for every family; 1024 for unions (their forms are plain bounds)."""
    return 1024 if "+" in spec else N


def _exact_nnz(p, spec):
    if spec in PREFIX_STABLE:
        out = [np.cumsum(p.support_a(N).counts()), np.cumsum(p.support_b(N).counts())]
        for n in (1, 2, 63, 1000, N):   # the prefix argument, spot-checked against analysis.nnz
            assert analysis.nnz(p, n) == (out[0][n - 1], out[1][n - 1])
        return out
    return [np.array(v) for v in zip(*(analysis.nnz(p, n) for n in NS))]


def _hop_diameters_bfs(p, big=N, chunk=512):
    """D(n) for all n <= big of a prefix-stable pattern, by BFS (scipy) over routes u_s -> h_t:
    D(n) = max_{t < n} max_{s <= t} hops(s, t), since routes only move forward in time."""
    a_idx, b_idx = p.tables(big)
    rows = []
    for idx, off in ((a_idx, 0), (b_idx, big)):
        t, j = np.nonzero(idx >= 0)
        rows.append((idx[t, j] + off, t + big))
    src = np.concatenate([r[0] for r in rows])
    dst = np.concatenate([r[1] for r in rows])
    g = sps.csr_matrix((np.ones(src.size), (src, dst)), shape=(2 * big, 2 * big))
    worst = np.full(big, -1.0)
    for lo in range(0, big, chunk):
        s = np.arange(lo, min(lo + chunk, big))
        d = shortest_path(g, unweighted=True, indices=s)[:, big:] - 1
        d[s[:, None] > np.arange(big)[None, :]] = -1          # only pairs s <= t
        worst = np.maximum(worst, d.max(axis=0))
    return np.maximum.accumulate(worst)


def _exact_hops(p, spec):
    if analysis.hop_profile(p, N) is not None:        # lag patterns: hops(s -> t) = f[t - s]
        f = analysis.hop_profile(p, N).astype(np.float64)
        f[f < 0] = np.inf
        return np.maximum.accumulate(f)
    if spec.startswith("kron") or spec == "blocks":
        return np.array([np.inf if (v := analysis.hop_diameter(p, n)) is None else v for n in NS], float)
    # unions with a table side: BFS up to n = 1024 (their hop forms are plain bounds)
    return _hop_diameters_bfs(p, _limit(spec))


def _check(form, exact, what):
    """Exact forms must equal, Bounds must enclose, the exact values (inf where unreachable)."""
    if isinstance(form, Bounds):
        lo, hi = form
        bad = np.flatnonzero(~((lo <= exact + 1e-9) & (exact <= hi + 1e-9 * np.maximum(1, np.abs(hi)))))
        assert bad.size == 0, (f"{what}: bounds fail at index {bad[:5]}: {lo[bad[:5]]} <= {exact[bad[:5]]} "
                               f"<= {hi[bad[:5]]}")
    else:
        with np.errstate(invalid="ignore"):   # inf == inf; finite values to float rounding
            close = (form == exact) | (np.abs(form - exact) <= 1e-9 * np.maximum(1, np.abs(exact)))
        bad = np.flatnonzero(~close)
        assert bad.size == 0, f"{what}: form {form[bad[:5]]} != exact {exact[bad[:5]]} at index {bad[:5]}"


@pytest.mark.parametrize("spec", SPECS)
def test_forms_match_exact_counts_for_all_n(spec):
    p = Pattern.from_spec(spec)
    f = cost_forms(p)
    assert f is not None and f.spec == p.spec
    nnz_a, nnz_b = _exact_nnz(p, spec)
    _check(evaluate(f.nnz_a, NS), nnz_a, f"{spec} nnz_a")
    _check(evaluate(f.nnz_b, NS), nnz_b, f"{spec} nnz_b")
    if spec in PREFIX_STABLE:
        _check(evaluate(f.decode_cost, None, NS - 1), analysis.decode_costs(p, N), f"{spec} decode")
    else:   # bare blocks: the per-token cost depends on n through C = ceil(sqrt n)
        nn = np.repeat(NS, NS)
        tt = np.arange(nn.size) - np.repeat(np.cumsum(NS) - NS, NS)
        exact = np.concatenate([analysis.decode_costs(p, n) for n in NS])
        _check(evaluate(f.decode_cost, nn, tt), exact, f"{spec} decode")
    ns = NS[: _limit(spec)]
    cache = np.array([analysis.cache_peak(p, n) for n in ns])
    _check(evaluate(f.cache_peak, ns), cache, f"{spec} cache_peak")
    hops = _exact_hops(p, spec)
    _check(evaluate(f.hop_diameter, NS[: hops.size]), hops, f"{spec} hop_diameter")


def test_exact_forms_where_the_issue_asks():
    for spec in ["ssm", "attention", "window:5", "lags:1,3,7", "power2", "power:3", "quadratic",
                 "blocks", "blocks:6", "exponent:0", "exponent:1"]:
        f = cost_forms(Pattern.from_spec(spec))
        assert f.is_exact("nnz_b") and f.is_exact("decode_cost"), spec
    assert cost_forms(Pattern.from_spec("fenwick")).is_exact("decode_cost")
    for spec in ["power2", "quadratic", "fenwick", "blocks", "blocks:6", "attention"]:
        f = cost_forms(Pattern.from_spec(spec))
        assert f.is_exact("cache_peak") and f.is_exact("hop_diameter"), spec
    assert cost_forms(Pattern.from_spec("exponent:0.37")).is_exact("decode_cost")


@pytest.mark.parametrize("spec", ["exponent:0.37", "exponent:0.8", "fenwick", "lags:2,9,10"])
def test_bounds_are_tight(spec):
    """Bounds share the leading term: upper / lower -> 1. At n = 2^20 the gap is below 2% (below
    5 / log2 n for fenwick, whose lower bound is off by O(n) against (n/2) log2 n), and it shrinks
    from n = 2^12 to 2^20."""
    f = cost_forms(Pattern.from_spec(spec))
    for name in ("nnz_b", "cache_peak"):
        form = getattr(f, name)
        if isinstance(form, Bounds):
            lo, hi = evaluate(form, [2.0**12, 2.0**20])
            gap = hi / lo - 1
            assert gap[1] < (5 / 20 if spec == "fenwick" else 0.02) and gap[1] <= gap[0], (spec, name, gap)


def _const_ok(ratio, const, tol):
    if isinstance(const, Bounds):
        lo, hi = (float(c) for c in const)
        return lo * (1 - tol) <= ratio <= hi * (1 + tol)
    return abs(ratio / float(const) - 1) <= tol


@pytest.mark.parametrize("spec", SPECS)
def test_asymptotics_at_2_20(spec):
    """exact(n) / theta(n) at n = 2^20 lies within a stated tolerance of the leading constant: the
    relative second-order term is O(1 / log n) for classes with a log (tolerance 8 / log2 n = 0.4, and
    the error must be smaller than at n = 2^12) and at most O(n^-0.2) otherwise (tolerance 0.02).
    Unions mixing tables and large lag sets are checked at 2^16 with tolerance 0.05 (their index table
    at 2^20 is over the table limit; blocks:4 adds 3.5 n to (2/3) n^1.5, 2% at 2^16)."""
    p = Pattern.from_spec(spec)
    f = cost_forms(p)
    big = 2**16 if spec == "blocks:4+quadratic" else 2**20
    errors = {}
    for n in (2**12, big):
        nnz_a, nnz_b = analysis.nnz(p, n)
        exact = {"total": nnz_a + nnz_b, "decode": int(analysis.decode_costs(p, n).max()),
                 "cache": analysis.cache_peak(p, n)}
        for what, value in exact.items():
            th, const = getattr(f, f"theta_{what}"), getattr(f, f"const_{what}")
            if th is None or const is None:
                continue
            if th == 0:
                assert value == 0, (spec, what)
                continue
            with_log = th.has(costs.sp.log) and not th.is_Pow
            tol = 8 / math.log2(n) if with_log else (0.05 if big < 2**20 else 0.02)
            ratio = value / float(evaluate(th, [n])[0])
            if n == big:
                assert _const_ok(ratio, const, tol), (spec, what, n, ratio, const, tol)
            if not isinstance(const, Bounds):
                errors.setdefault(what, []).append(abs(ratio / float(const) - 1))
    for what, (e_small, e_big) in errors.items():
        assert e_big < e_small or e_big < 1e-3, (spec, what, e_small, e_big)


def test_theta_strings():
    want = {"power2": ("n*log(n)", "log(n)", "n"), "quadratic": ("n**(3/2)", "sqrt(n)", "n"),
            "attention": ("n**2", "n", "n"), "exponent:0.37": ("n**(137/100)", "n**(37/100)", "n"),
            "fenwick": ("n*log(n)", "log(n)", "log(n)"), "blocks": ("n**(3/2)", "sqrt(n)", "sqrt(n)"),
            "ssm": ("n", "1", "1"), "window:8": ("n", "1", "1"), "kron:1,11": ("n**(log(3)/log(2))", "n", "n"),
            # unions: the larger class of each quantity
            "window:3+power2": ("n*log(n)", "log(n)", "n"), "fenwick+attention": ("n**2", "n", "n"),
            "blocks+fenwick": ("n**(3/2)", "sqrt(n)", "sqrt(n)")}
    for spec, (tot, dec, cache) in want.items():
        assert theta(Pattern.from_spec(spec)) == {"theta_total": tot, "theta_decode": dec,
                                                  "theta_cache": cache}, spec


@pytest.mark.parametrize("spec", ["window:3+power2+fenwick", "kron:1,01,011+ssm+blocks", "ssm+lags:2+quadratic",
                                  "attention+fenwick+ssm", "blocks+exponent:0.5+power:3+window:1"])
def test_theta_of_a_union_is_the_class_of_its_closed_forms(spec):
    """``theta`` folds the terms' classes without building the union's bounds; it names the classes that
    ``cost_forms`` of the whole union holds (None where one term's class is unknown)."""
    f = cost_forms(Pattern.from_spec(spec))
    keys = ("theta_total", "theta_decode", "theta_cache")
    assert theta(Pattern.from_spec(spec)) == {k: None if getattr(f, k) is None else str(getattr(f, k)) for k in keys}


def test_union_leading_constant():
    f = cost_forms(Pattern.from_spec("window:3+power2"))
    assert f.const_total == 1 / costs.sp.log(2)          # power2 dominates
    assert (f.const_decode == 1 / costs.sp.log(2)
            and f.const_cache == Bounds(costs.sp.Rational(1, 2), costs.sp.Rational(2, 3)))
    assert theta(Pattern.from_spec("kron:1,01,011"))["theta_cache"] is None   # no class known: None, not "None"
    assert theta(Pattern.from_spec("kron:1,01,011+ssm"))["theta_cache"] is None  # unknown in a union stays unknown
    for spec in ("ssm+window:1", "window:1+ssm"):                                # the class 1 beats the class 0
        assert theta(Pattern.from_spec(spec))["theta_cache"] == "1", spec
    # |X u Y| >= max(|X|, |Y|); hops of a union <= the smaller of the two upper bounds
    u = cost_forms(Pattern.from_spec("attention+ssm"))
    assert evaluate(u.nnz_a.lower, [10])[0] == 55 and evaluate(u.nnz_b.lower, [10])[0] == 9
    h = cost_forms(Pattern.from_spec("power2+ssm")).hop_diameter
    assert evaluate(h.upper, [1024])[0] == 10
    g = cost_forms(Pattern.from_spec("ssm+lags:2"))
    assert g.const_total == Bounds(2, 4)                   # same class: between max and sum


def test_user_patterns_have_no_closed_form():
    user = Pattern.from_masks(np.eye(4, dtype=bool), np.tri(4, k=-1, dtype=bool))
    assert cost_forms(user) is None
    assert theta(user) == {"theta_total": None, "theta_decode": None, "theta_cache": None}
    with pytest.raises(GLRError, match="user pattern"):
        total_cost_bound(user)
    # a user pattern that borrows a built-in name is not mistaken for it
    fake = Pattern.from_lags((0,), (1, 2), spec="power2")
    assert cost_forms(fake) is None


def test_total_cost_bound():
    assert costs.sp.simplify(total_cost_bound(Pattern.from_spec("attention")) - costs.n * (costs.n + 1) / 2) == 0
    tc = total_cost_bound(Pattern.from_spec("power2"))
    assert evaluate(tc, [1024])[0] == sum(analysis.nnz(Pattern.from_spec("power2"), 1024))
    # exponent:0.37: n inputs + the integral bound sum_{m<=n} m^a <= ((n+1)^(1+a) - 1) / (1+a)
    a = costs.sp.Rational(37, 100)
    typed = costs.n + ((costs.n + 1) ** (1 + a) - 1) / (1 + a)
    assert costs.sp.simplify(total_cost_bound(Pattern.from_spec("exponent:0.37")) - typed) == 0


@settings(max_examples=15, deadline=None)
@given(specs)
def test_random_unions_bounds_hold(spec):
    """Random unions of built-in terms: every form (exact or bounds) holds at all n <= 150."""
    p = Pattern.from_spec(spec)
    f = cost_forms(p)
    assert f is not None
    ns = np.arange(1, 151)
    exact = np.array([[*analysis.nnz(p, n), analysis.cache_peak(p, n),
                       np.inf if (h := analysis.hop_diameter(p, n)) is None else h] for n in ns], float)
    for j, name in enumerate(("nnz_a", "nnz_b", "cache_peak", "hop_diameter")):
        _check(evaluate(getattr(f, name), ns), exact[:, j], f"{spec} {name}")
    _check(evaluate(f.decode_cost, 150, np.arange(150)), analysis.decode_costs(p, 150), f"{spec} decode")


def test_popcount_and_evaluate():
    assert costs.popcount(costs.sp.Integer(11)) == 3
    assert list(evaluate(costs.popcount(costs.t), None, [0, 1, 7, 8, 1023])) == [0, 1, 3, 1, 10]
    lo, hi = evaluate(Bounds(costs.n, 2 * costs.n), [3])
    assert lo[0] == 3 and hi[0] == 6
    # exact integers computed in floating point round correctly: floor(log2(2^k)) = k
    ks = np.arange(0, 30)
    assert np.array_equal(evaluate(costs.sp.floor(costs.sp.log(costs.n) / costs.sp.log(2)), 2.0**ks), ks)


def test_str_lists_every_form():
    text = str(cost_forms(Pattern.from_spec("quadratic")))
    for word in ("nnz_a", "nnz_b", "decode_cost", "cache_peak", "hop_diameter", "theta_total", "n**(3/2)", "2/3"):
        assert word in text
    assert "<=" in str(cost_forms(Pattern.from_spec("fenwick")))     # bounds print as lower <= . <= upper
    latex = cost_forms(Pattern.from_spec("power2"))._repr_latex_()
    assert latex.startswith("$\\begin{array}") and "\\log" in latex


# -- leading constants: second-order terms removed, and both ends of Bounds reached ---------------
@pytest.mark.parametrize("spec, what, second", [
    ("fenwick", "total", lambda n: 2 / math.log(n)),     # total = 2n + (n/2) log2 n + O(log n)
    ("fenwick", "decode", lambda n: 1 / math.log(n)),    # max decode = log2(n) + 1 at n = 2^k
    ("fenwick", "cache", lambda n: 0.0),                 # cache = log2 n at n = 2^k
    ("power2", "total", lambda n: 0.0),                  # total = n log2 n + 1 at n = 2^k
    ("power2", "decode", lambda n: 1 / math.log(n)),     # max decode = log2(n) + 1 at n = 2^k
])
def test_leading_constant_with_second_order_term(spec, what, second):
    """``exact / theta - second-order term`` equals the leading constant to 1e-4 at n = 2^20."""
    p, n = Pattern.from_spec(spec), 2**20
    f = cost_forms(p)
    exact = {"total": sum(analysis.nnz(p, n)), "decode": int(analysis.decode_costs(p, n).max()),
             "cache": analysis.cache_peak(p, n)}[what]
    ratio = exact / float(evaluate(getattr(f, f"theta_{what}"), [n])[0]) - second(n)
    assert abs(ratio - float(getattr(f, f"const_{what}"))) < 1e-4, (spec, what, ratio)


@pytest.mark.parametrize("b", [2, 3])
def test_power_cache_bounds_are_reached(b):
    """cache / n of power:b oscillates between its Bounds ends, and reaches each along a subsequence:
    1/b at n = b^k + 1 and b/(2b-1) at n = (2b-1) b^(k-1); the distance shrinks like 1/n."""
    p = Pattern.from_spec("power2" if b == 2 else f"power:{b}")
    lo, hi = (float(c) for c in cost_forms(p).const_cache)
    for k in range(4, 13 if b == 2 else 9):
        n_lo, n_hi = b**k + 1, (2 * b - 1) * b ** (k - 1)
        assert abs(analysis.cache_peak(p, n_lo) / n_lo - lo) <= 1 / n_lo, (b, k)
        assert abs(analysis.cache_peak(p, n_hi) / n_hi - hi) <= 1 / n_hi, (b, k)
