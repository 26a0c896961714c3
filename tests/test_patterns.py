"""Patterns: family definitions, table invariants, structured counts, spec parsing and bad input."""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from glrtheory import GLRError, Pattern
from glrtheory.analysis import analyze
from glrtheory.patterns import support as support_module
from glrtheory.patterns.support import last_use_from_table, rank_in_runs, sorted_distinct
from helpers import BUILTIN_SPECS, lengths, specs
from naive_patterns import exact_root_floors, naive_union, sets_to_table


def check_table(table: np.ndarray, n: int, strict: bool) -> None:
    """int32, one row per t, rows strictly increasing, causal, -1 padding only at the end."""
    assert table.dtype == np.int32 and table.ndim == 2 and table.shape[0] == n
    valid = table >= 0
    assert np.all(table[~valid] == -1)
    assert np.all(valid[:, :-1] | ~valid[:, 1:]), "padding must come after the entries"
    both = valid[:, 1:] & valid[:, :-1]
    assert np.all(np.diff(table, axis=1)[both] > 0), "rows must be sorted and unique"
    t = np.arange(n)[:, None]
    assert np.all((table < t + (0 if strict else 1))[valid]), "support not causal"
    if table.shape[1]:
        assert valid[:, -1].any() or n == 0, "no all-padding column at the end"


# -- families ----------------------------------------------------------------------------------------
FAMILY_N = 300


@pytest.mark.parametrize("spec", BUILTIN_SPECS)
def test_family_matches_definition_for_every_n(spec):
    """tables(n) equal the naive definition for every n <= 300; prefix-stable families also satisfy
    ``tables(n) == tables(300)[:n]`` (trimmed to the width of the first n rows)."""
    p = Pattern.from_spec(spec)
    stable = "blocks" not in spec.split("+")      # bare blocks: block size ceil(sqrt n) depends on n
    if stable:
        ref = [sets_to_table(x) for x in naive_union(spec, FAMILY_N)]
        full = p.tables(FAMILY_N)
    for n in range(1, FAMILY_N + 1):
        tables = p.tables(n)
        want = ([sets_to_table(x) for x in naive_union(spec, n)] if not stable
                else [_prefix(r, n) for r in ref])
        for side, (got, w) in enumerate(zip(tables, want)):
            check_table(got, n, strict=bool(side))
            assert np.array_equal(got, w), f"{spec} n={n} side {'AB'[side]}"
            if stable:
                assert np.array_equal(got, _prefix(full[side], n)), f"{spec}: tables({n}) != tables(N)[:n]"


def _prefix(table, n):
    """The first n rows, trimmed to the longest of them."""
    rows = table[:n]
    width = int((rows >= 0).sum(axis=1).max()) if rows.size else 0
    return rows[:, :width]


@settings(max_examples=40)
@given(spec=specs, n=lengths)
@example(spec="exponent:0.001", n=1)        # the reference once overflowed float64 on 2^1000 (CI, hypothesis)
def test_random_patterns_tables_and_structure(spec, n):
    p = Pattern.from_spec(spec)
    for support in (p.support_a(n), p.support_b(n)):
        table = support.table()
        check_table(table, n, support.strict)
        assert np.array_equal(support.counts(), (table >= 0).sum(axis=1))
        assert np.array_equal(support.last_use(), last_use_from_table(n, table))
    assert p.sets(n) == tuple(naive_union(p.spec, n))


def _isqrt(x: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(x)) of int64 x >= 0 (float estimate, corrected in integers)."""
    r = np.floor(np.sqrt(x.astype(np.float64))).astype(np.int64)
    r -= r * r > x
    r += (r + 1) * (r + 1) <= x
    return r


def _large_n_closed_forms(spec: str, n: int):
    """(counts, last_use) of the A and B sides at length n, written from the definitions."""
    t = np.arange(n, dtype=np.int64)
    none = (np.zeros(n, np.int64), np.full(n, -1, np.int64))
    if spec == "attention":                   # A(t) = {0..t}: s is used last at t = n-1
        return (t + 1, np.full(n, n - 1)), none
    if spec.startswith("window:"):            # A(t) = {t-W+1..t}: s is used last at s + W - 1
        w = int(spec[7:])
        return (np.minimum(t + 1, w), np.minimum(t + w - 1, n - 1)), none
    if spec.startswith("blocks:"):            # A(t) = {c(t)..t}; B(t) = {c(t) - 1}, c(t) = C floor(t/C)
        c = int(spec[7:])
        a = (t - c * (t // c) + 1, np.minimum(c * (t // c) + c - 1, n - 1))
        carrier = ((t + 1) % c == 0) & (t + 1 < n)
        b = ((t >= c).astype(np.int64), np.where(carrier, np.minimum(t + c, n - 1), -1))
        return a, b
    if spec == "quadratic":                   # B(t) = {t - k^2 - 1}: 1 + isqrt(t - 1) lags for t >= 1
        count = np.where(t >= 1, _isqrt(np.maximum(t - 1, 0)) + 1, 0)
        room = n - 1 - t                      # s is used last at s + the largest lag <= n-1-s
        k = _isqrt(np.maximum(room - 1, 0))
        return (np.ones(n, np.int64), t), (count, np.where(room >= 1, t + k * k + 1, -1))
    raise AssertionError(spec)


@pytest.mark.parametrize("spec", ["attention", "window:4096", "blocks:1024", "kron:1,11", "quadratic"])
def test_structured_counts_at_large_n_without_tables(spec):
    """Counts and last uses at n = 2^20 come from the structure, where the tables would not fit; they
    equal the closed forms of each definition."""
    n = 2**20
    p = Pattern.from_spec(spec)
    if spec == "kron:1,11":                   # s in B(t) iff bits(s) is a proper subset of bits(t)
        popcount = np.bitwise_count(np.arange(n))
        assert np.array_equal(p.support_b(n).counts(), 2**popcount.astype(np.int64) - 1)
        lu = p.support_b(n).last_use()        # s is used last by t = s with every free bit set below n
        assert lu[0] == n - 1 and lu[n - 1] == -1 and lu[n // 2 - 1] == n - 1
        return
    for side, support, (counts, last) in zip("AB", (p.support_a(n), p.support_b(n)),
                                             _large_n_closed_forms(spec, n)):
        assert np.array_equal(support.counts(), counts), f"{spec} {side} counts"
        assert np.array_equal(support.last_use(), last), f"{spec} {side} last use"



def test_kron_table_is_refused_by_its_widest_row_not_a_padded_bound():
    """kron:1,11,111 at n = 10: rows 0..9 in three base-3 digits, row t holding the prod of (t_j + 1) entries less
    itself (t = 8 = 022: 9 - 1), so its B table is 10 x 8. It fits 80 entries exactly, not 79, where the bound
    3^3 = 27 a row refused it at 270."""
    p = Pattern.from_spec("kron:1,11,111")
    rows = [[s for s in range(t) if all(int(ds) <= int(dt) for ds, dt in zip(np.base_repr(s, 3).zfill(3),
                                                                            np.base_repr(t, 3).zfill(3)))]
            for t in range(10)]
    b_idx = p.tables(10, max_entries=80)[1]
    assert b_idx.shape == (10, 8) and [list(r[r >= 0]) for r in b_idx] == rows
    with pytest.raises(GLRError, match=r"10x8=80 entries, over the limit 79; at this width n <= 9 fits"):
        p.tables(10, max_entries=79)

def test_power2_table_at_two_to_the_twenty():
    n = 2**20
    a_idx, b_idx = Pattern.from_spec("power2").tables(n)
    check_table(b_idx, n, strict=True)
    assert b_idx.shape == (n, 20) and a_idx.shape == (n, 1)
    t = n - 1
    assert set(b_idx[t]) == {t - 2**k for k in range(20)}


ALPHAS = ["0.1", "0.25", "0.3333333333333333", "0.37", "0.5", "0.714286", "0.77", "0.8", "0.9", "0.95",
          "0.99", "0.999", "1"]


def _cache_upper(lags, ns):
    """``min(l_k, n - l_k + l_{k-1})`` from a sorted lag array (l_k the largest lag <= n-1, l_0 = 0)."""
    padded = np.concatenate([[0], lags])
    k = np.searchsorted(lags, ns - 1, side="right")
    last, prev = padded[k], padded[np.maximum(k - 1, 0)]
    return np.maximum(0, np.minimum(last, ns - last + prev))


def _check_exponent(alpha: str, n: int, lags: np.ndarray, ts, ns) -> None:
    """Family lags, symbolic decode cost at ts and cache bound at ns against the reference ``lags``."""
    from glrtheory.patterns.families import exponent_lags
    from glrtheory.symbolic.costs import cost_forms, evaluate

    got = exponent_lags(float(alpha), n)
    assert got.size == lags.size and np.array_equal(got, lags), (
        f"exponent:{alpha} n={n}: first difference at k={np.flatnonzero(got[:lags.size] != lags[:got.size])[:3] + 1}")
    f = cost_forms(Pattern.from_spec(f"exponent:{alpha}"))
    want = 1 + np.searchsorted(lags, ts, side="right")           # |A(t)| + |B(t)| = 1 + #{lags <= t}
    assert np.array_equal(evaluate(f.decode_cost, None, ts), want), f"exponent:{alpha} decode"
    upper = f.cache_peak.upper if alpha not in ("0", "1") else f.cache_peak
    assert np.array_equal(evaluate(upper, ns), _cache_upper(lags, ns)), f"exponent:{alpha} cache bound"


@pytest.mark.parametrize("alpha", ALPHAS)
def test_exponent_is_exact_for_every_n_up_to_5000(alpha):
    """``floor(k^(1/alpha))`` against mpmath at 50 digits (integer tie test) for every lag <= 4999;
    the decode cost ``1 + #{lags <= t}`` for every t < 5000 and the cache bound for every n <= 5000."""
    n = 5000
    ref = exact_root_floors(alpha, int(n ** float(alpha)) + 3)
    lags = ref[ref <= n - 1].astype(np.int64)
    assert lags.size == math.ceil(n ** float(alpha)) - 1 or alpha == "1"
    _check_exponent(alpha, n, lags, np.arange(n), np.arange(1, n + 1))
    counts = Pattern.from_spec(f"exponent:{alpha}").support_b(n).counts()
    assert np.array_equal(counts, np.searchsorted(lags, np.arange(n), side="right"))


@pytest.mark.parametrize("alpha, n", [("0.95", 2**20)] + [(a, 2**24) for a in
                                      ("0.714286", "0.77", "0.8", "0.9", "0.99", "0.999")])
def test_exponent_is_exact_at_large_n(alpha, n):
    """Where float rounding broke the definition (e.g. ``floor(306505^(20/19)) = 595932``, not 595933):
    every lag at n = 2^20 / 2^24, the decode cost at every lag and the position before it, and the
    cache bound at n and at the lag boundaries."""
    ref = exact_root_floors(alpha, int(n ** float(alpha)) + 3)
    lags = ref[ref <= n - 1].astype(np.int64)
    if alpha == "0.95":
        assert lags[306504] == 595932
    rng = np.random.default_rng(0)
    picks = np.unique(np.concatenate([rng.choice(lags, 20_000), lags[-2_000:]]))
    ts = np.concatenate([picks - 1, picks, [n - 1]])
    ns = np.concatenate([picks, picks + 1, [n]])
    _check_exponent(alpha, n, lags, ts, ns)


def test_spec_round_trip_and_aliases():
    for spec in BUILTIN_SPECS:
        p = Pattern.from_spec(spec)
        assert p.spec == spec and p.doc, spec           # canonical specs print as given, with a docstring
        q = Pattern.from_spec(p.spec)
        assert all(np.array_equal(x, y) for x, y in zip(p.tables(50), q.tables(50)))
    assert Pattern.from_spec("power:2").spec == "power2"
    assert Pattern.from_spec(" Power2 + ssm ").spec == "power2+ssm"


def test_union_operator_and_user_patterns():
    p = Pattern.from_spec("ssm") + Pattern.from_spec("lags:4")
    assert p.sets(6)[1][5] == [1, 4]
    q = Pattern.from_sets([[0], [0, 1], [2]], [[], [0], [0, 1]])
    assert q.sets(3) == ([[0], [0, 1], [2]], [[], [0], [0, 1]])
    with pytest.raises(GLRError, match="defined only up to n=3"):
        q.tables(4)
    A, B = Pattern.from_spec("fenwick").masks(20)
    r = Pattern.from_masks(A, B)
    assert r.sets(20) == Pattern.from_spec("fenwick").sets(20)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_sorted_distinct_equals_unique(dtype):
    """Against np.unique and a Python set: empty, one value, all equal, repeats at both ends, negatives,
    values spread wide (few repeats) and in a small range (many repeats), unsorted and sorted."""
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    cases = [np.array([], dtype=dtype), np.array([5], dtype=dtype), np.full(9, -3, dtype=dtype),
             np.array([2, 2, 0, 1, 1, 7, 7], dtype=dtype), np.array([info.min, info.max, info.min, 0], dtype=dtype)]
    for size in (2, 3, 63, 1000):
        cases.append(rng.integers(-4, 4, size).astype(dtype))
        cases.append(rng.integers(info.min, info.max, size, dtype=dtype, endpoint=True))
    cases.append(rng.integers(-50, 50, (7, 9)).astype(dtype))
    cases += [np.sort(c) for c in cases[5:13]] + [np.arange(-3, 60, dtype=dtype)]
    for x in cases:
        got = sorted_distinct(x)
        assert got.dtype == dtype and got.ndim == 1 and not np.shares_memory(got, x)
        assert np.array_equal(got, np.unique(x))
        assert got.tolist() == sorted(set(x.ravel().tolist()))


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("lags:0", "must be >= 1"), ("lags:-2", "must be >= 1"), ("lags:1.5", "must be an integer"),
    ("lags:", "needs arguments"), ("lags:1,,2", "must be an integer"), ("nosuch", "unknown pattern family"),
    ("window:0", "window W must be >= 1"), ("power:1", "power base b must be >= 2"),
    ("exponent:1.5", r"exponent alpha must lie in \[0, 1\]"),
    ("exponent:-0.1", r"\[0, 1\]"), ("exponent:nan", "must be a finite number, got 'nan'"),
    ("exponent:x", "must be a finite number"), ("exponent:1e999", "must be a finite number"),
    ("exponent:0_5", "must be a finite number"), ("window:1_0", "must be an integer, got '1_0'"),
    ("window:\u0663", "must be an integer"), ("lags:1,\uff12", "must be an integer"),
    ("ssm:3", "takes no arguments"), ("power2+", "empty term"), ("", "empty term"),
    ("kron:1", "size >= 2"), ("kron:1,10", "unit diagonal"), ("kron:1,1", "2 digits"), ("kron:1,12", "0/1"),
    ("blocks:0", "must be >= 1"), ("+".join(["ssm"] * 40), "over the limit 32"), ("lags:99999999999999", "limit"),
    ("window:2.0", "must be an integer"),
])
def test_bad_specs_raise_clear_errors(spec, message):
    with pytest.raises(GLRError, match=message):
        Pattern.from_spec(spec)


@settings(max_examples=150)
@given(st.text(alphabet=st.sampled_from("abcdefghiklmnopqrstuwxyz0123456789:,.+-e "), max_size=30)
       | st.text(max_size=20))
def test_fuzzed_specs_give_a_pattern_or_a_clear_error(spec):
    try:
        p = Pattern.from_spec(spec)
        p.tables(64)
    except GLRError as exc:
        assert str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("n", [0, -3, 2.5, "8", True, 2**31])
def test_bad_lengths(n):
    with pytest.raises(GLRError, match="length n"):
        Pattern.from_spec("ssm").tables(n)


def test_non_causal_user_patterns_are_refused():
    with pytest.raises(GLRError, match="not causal"):
        Pattern.from_sets([[0], [2]], [[], []])
    with pytest.raises(GLRError, match="not causal"):
        Pattern.from_sets([[0], [1]], [[], [1]])
    with pytest.raises(GLRError, match="not strictly causal"):
        Pattern.from_masks(np.eye(3, dtype=bool), np.eye(3, dtype=bool))
    with pytest.raises(GLRError, match="non-integer"):
        Pattern.from_sets([[0.5]], [[]])
    with pytest.raises(GLRError, match="B-lag must be >= 1"):
        Pattern.from_lags((0,), (0,))


def test_table_size_limit_is_stated():
    with pytest.raises(GLRError, match="over the limit"):
        Pattern.from_spec("attention").tables(2**20)
    a_idx, _ = Pattern.from_spec("attention").tables(100, max_entries=10**6)
    assert a_idx.shape == (100, 100)


@given(alpha=st.floats(0, 1))
def test_exponent_spec_round_trips_exactly(alpha):
    from glrtheory.patterns import exponent

    p = exponent(alpha)
    assert Pattern.from_spec(p.spec).spec == p.spec
    assert np.array_equal(Pattern.from_spec(p.spec).tables(300)[1], p.tables(300)[1])


def test_user_pattern_specs_and_bad_containers():
    assert Pattern.from_lags((0,), ()).spec == "window:1"
    assert Pattern.from_lags((0, 1, 2), ()).spec == "window:3"
    assert Pattern.from_lags((0,), (2, 5)).spec == "lags:2,5"
    assert Pattern.from_lags((0, 2), (3,)).spec.startswith("custom-lags")
    # a lag pattern that is a family is that family, closed forms included; one that is not has no family term
    for made, spec in ((Pattern.from_lags((0,), (5, 2)), "lags:2,5"), (Pattern.from_lags(range(3)), "window:3")):
        family = Pattern.from_spec(spec)
        assert made.terms == family.terms and [t.family for t in made.terms] == [spec.split(":")[0]]
        assert analyze(made, 1024)["theta_basis"].startswith("closed form")
    assert Pattern.from_lags((0, 2), (3,)).terms == ()
    with pytest.raises(GLRError, match="sequences of sequences"):
        Pattern.from_sets([[0], None], [[], []])


# -- the family registry -------------------------------------------------------------------------------
def test_a_new_family_is_one_record():
    """Registering one record makes a family parse, unite, list and report (no closed forms: None, with
    the reason), and its terms carry the arguments."""
    from glrtheory.patterns import FAMILIES, Family, lags, register
    from glrtheory.patterns.spec import integer, needed
    from glrtheory.symbolic.costs import cost_forms, forms_unavailable, theta

    register(Family("every", ":k", "B-lag k only", lambda args: (integer(needed("every", ":k", args), "k"),),
                    lambda k: Pattern.from_lags((0,), (k,), spec=f"every:{k}")))
    try:
        p = Pattern.from_spec("every:3+ssm")
        assert p.spec == "every:3+ssm" and [t.family for t in p.terms] == ["every", "ssm"]
        assert p.terms[0].params == (3,)
        assert p.sets(6)[1][5] == [2, 4]
        assert cost_forms(p) is None and theta(p) == dict.fromkeys(("theta_total", "theta_decode", "theta_cache"))
        assert forms_unavailable(p) == "family 'every' has no closed forms"
        with pytest.raises(GLRError, match="needs arguments"):
            Pattern.from_spec("every")
        with pytest.raises(GLRError, match="already registered"):
            register(FAMILIES["every"])
        # a record whose constructor is an existing family inherits that family's closed forms
        register(Family("lag7", "", "B-lag 7", lambda args: (), lambda: lags(7)))
        assert theta(Pattern.from_spec("lag7")) == theta(Pattern.from_spec("lags:7"))
    finally:
        FAMILIES.pop("every", None)
        FAMILIES.pop("lag7", None)


def test_patterns_carry_their_terms():
    p = Pattern.from_spec("window:3+power2+kron:1,11")
    assert [(t.family, t.params, t.spec) for t in p.terms] == [
        ("window", (3,), "window:3"), ("power", (2,), "power2"),
        ("kron", (((True, False), (True, True)),), "kron:1,11")]
    user = Pattern.from_lags((0,), (1, 2), spec="power2")       # borrows a name, is no family term
    assert user.terms == () and (user + p).terms == ()


def test_patterns_modules_import_no_cycle():
    """The module-level imports inside glrtheory/patterns form no cycle (pattern -> registry -> ... ok)."""
    import ast
    import pathlib

    import glrtheory.patterns as pkg

    root = pathlib.Path(pkg.__file__).parent
    graph = {}
    for f in root.glob("*.py"):
        deps = set()
        for node in ast.parse(f.read_text()).body:     # module level only
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[f.stem] = deps & {g.stem for g in root.glob("*.py")}
    state = {}

    def visit(m, path):
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        if state.get(m) is None:
            state[m] = "open"
            for d in graph[m]:
                visit(d, path + [m])
            state[m] = "done"

    for m in graph:
        visit(m, [])


def test_readme_new_family_example_runs():
    """The README's "A new family" snippet registers a family that parses and carries its terms."""
    import pathlib
    import re

    from glrtheory.patterns import FAMILIES

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### A new family"):]
    code = re.search(r"```python\n(.*?)\n```", section, flags=re.S).group(1)
    scope = {}
    try:
        exec(compile(code, "README new family", "exec"), scope)
        assert [t.family for t in scope["p"].terms] == ["every", "fenwick"]
    finally:
        FAMILIES.pop("every", None)


@pytest.mark.parametrize("alpha, want", [(2.2250738585e-313, [1]), (5e-324, [1]), (1e-300, [1]),
                                         (1.0, list(range(1, 300)))])
def test_exponent_extreme_alphas(alpha, want):
    """Tiny alpha: 1/alpha overflows float64, only k = 1 gives a lag (floor(1^p) = 1); alpha = 1: every lag."""
    from glrtheory.patterns.families import exponent_lags

    assert exponent_lags(alpha, 300).tolist() == want


def test_rank_in_runs_counts_within_each_run():
    """Against a Python loop over runs, with empty runs at the ends and in between."""
    for count in ([], [0], [3], [0, 2, 0, 0, 1, 4, 0], [1] * 5, [7, 0]):
        ref = [r for c in count for r in range(c)]
        assert rank_in_runs(count).tolist() == ref, count


def test_union_is_defined_only_where_both_patterns_are():
    """A union of user patterns of N = 5 and N = 3 positions has max_length 3 and refuses n = 4."""
    q5 = Pattern.from_sets([[t] for t in range(5)], [[t - 1] if t else [] for t in range(5)])
    q3 = Pattern.from_sets([[0], [0, 1], [2]], [[], [], [0]])
    for u in (q5 + q3, q3 + q5):
        assert u.max_length == 3
        assert u.sets(3) == ([[0], [0, 1], [2]], [[], [0], [0, 1]])
        with pytest.raises(GLRError, match="defined only up to n=3"):
            u.tables(4)


def test_index_tables_csr_lists_every_entry_with_its_coefficient_slot():
    """csr(side): the valid entries in row order, ptr per row, and slot = t * w + j, the flat position of
    entry (t, j) in the [n, w] coefficient array; against a loop over the table."""
    from glrtheory.patterns.tables import IndexTables

    for tables in (Pattern.from_spec("power2").tables(9), Pattern.from_spec("window:3+fenwick").tables(12),
                   IndexTables([[0, -1], [0, 1], [2, -1]], [[-1, -1], [0, -1], [0, 1]])):
        for side in ("a", "b"):
            idx = tables.table(side)
            n, w = idx.shape
            entries = [(t, int(idx[t, j]), t * w + j) for t in range(n) for j in range(w) if idx[t, j] >= 0]
            csr = tables.csr(side)
            assert csr.row.tolist() == [e[0] for e in entries]
            assert csr.src.tolist() == [e[1] for e in entries]
            assert csr.slot.tolist() == [e[2] for e in entries]
            assert csr.ptr.tolist() == [sum(1 for e in entries if e[0] < t) for t in range(n + 1)]


# -- index tables, lags and the decode schedule (mutation run 7) ------------------------------------------
def _naive_last(sets, n):
    """``max{t : s in S(t)}`` (-1 when no row reads s) from explicit sets."""
    return [max((t for t in range(n) if s in sets[t]), default=-1) for s in range(n)]


@pytest.mark.parametrize("a, b, message", [
    (np.array([[0.0], [1.0]]), [[-1], [0]], r"a_idx must be an integer index table, got dtype float64"),
    (np.array([[0], [1]], dtype=object), [[-1], [0]], r"a_idx must be an integer index table, got dtype object"),
    ([0, 1], [[-1], [0]], r"a_idx must have shape \[n=n, w\], got \(2,\)"),
    ([[0], [1], [2]], [[-1], [0]], r"b_idx must have shape \[n=3, w\], got \(2, 1\)"),
    ([[0], [-2]], [[-1], [0]], r"a_idx\[1, 0\] = -2 is out of range \(needs -1 or 0 <= s <= t, t = 1\)"),
    (np.array([[0], [2**32]]), [[-1], [0]], r"a_idx\[1, 0\] = 4294967296 is out of range"),
    ([[0], [1], [3]], [[-1], [0], [1]], r"a_idx\[2, 0\] = 3 is out of range \(needs -1 or 0 <= s <= t, t = 2\)"),
    ([[0, -1], [0, 2], [2, -1]], [[-1], [0], [1]], r"a_idx\[1, 1\] = 2 is out of range .* t = 1\)"),
    ([[0, -1], [0, 5], [3, -1]], [[-1], [0], [1]], r"a_idx\[1, 1\] = 5 is out of range"),
    ([[0], [1], [2]], [[-1], [1], [1]], r"b_idx\[1, 0\] = 1 is out of range \(needs -1 or 0 <= s < t, t = 1\)"),
    ([[0], [1], [2]], [[-1], [0], [2]], r"b_idx\[2, 0\] = 2 is out of range \(needs -1 or 0 <= s < t, t = 2\)"),
    ([[0, -1], [-1, 1], [1, 2]], [[-1], [0], [1]], r"a_idx row 1 has an entry after its -1 padding; put the padding"),
    ([[0, -1], [-1, 0], [1, 2]], [[-1], [0], [1]], r"a_idx row 1 has an entry after its -1 padding; put the padding"),
    ([[0, -1], [1, 0], [1, 2]], [[-1], [0], [1]], r"a_idx row 1 is not strictly increasing: \[1, 0\]"),
    ([[0, -1], [1, 1], [1, 2]], [[-1], [0], [1]], r"a_idx row 1 is not strictly increasing: \[1, 1\]"),
    ([[0, -1], [0, 1], [2, 1]], [[-1], [0], [1]], r"a_idx row 2 is not strictly increasing: \[2, 1\]"),
    ([[0, -1, -1], [0, 1, -1], [0, -1, 2]], [[-1], [0], [1]], r"a_idx row 2 has an entry after its -1 padding"),
    ([[0, -1, -1], [0, 1, -1], [0, 2, 1]], [[-1], [0], [1]], r"a_idx row 2 is not strictly increasing: \[0, 2, 1\]"),
    ([[0], [1], [2]], [[-1, -1], [0, -1], [1, 1]], r"b_idx row 2 is not strictly increasing: \[1, 1\]"),
])
def test_index_tables_refuse_each_defect_naming_the_first(a, b, message):
    """Every defect ``check_table`` knows, worked by hand: dtype, shape (n from a_idx), an entry < -1, one past
    int32 (2^32 would wrap to 0), one > t below n (found by the last-entry check, not the range check), the
    first bad entry in row order, B's strict s < t, padding before an entry, unsorted and duplicated rows."""
    from glrtheory.patterns.tables import IndexTables

    with pytest.raises(GLRError, match=message):
        IndexTables(a, b)


def test_index_tables_are_read_only_int32_c_order_copies():
    """Valid tables of any integer dtype and memory order come back as int32, C-ordered, equal, read-only
    copies that cannot be made writable; a width-0 side is accepted; torch tensors are read as numpy."""
    from glrtheory.patterns.tables import IndexTables

    a = np.asfortranarray(np.array([[0, -1], [0, 1], [1, 2]], dtype=np.int64))
    b = np.array([[-1, -1], [0, -1], [0, 1]], dtype=np.int16)
    t = IndexTables(a, b)
    for got, want in zip(t, (a, b)):
        assert got.dtype == np.int32 and got.flags.c_contiguous and np.array_equal(got, want)
        assert not np.shares_memory(got, want) and not got.flags.writeable
        with pytest.raises(ValueError):
            got.flags.writeable = True
    assert IndexTables([[0], [1]], np.zeros((2, 0), int)).b_idx.shape == (2, 0)
    torch = pytest.importorskip("torch")
    u = IndexTables(torch.tensor(a), torch.tensor(b.astype(np.int64)))
    assert all(np.array_equal(x, y) for x, y in zip(u, t))


def test_index_tables_lags_must_give_their_tables():
    """Lags are checked against the table, kept sorted and distinct below n (power2's 16 at n = 9 is dropped);
    a lag set giving more entries than the table's width is refused even where the kept columns agree (b holds
    t - 2 only, lags {1, 2}); a 2100 x 2048 table is checked in two blocks of rows, the lags differing from the
    table's only at t = 2049, in the second block."""
    from glrtheory.patterns.tables import IndexTables

    p = Pattern.from_spec("power2").tables(9)
    t = IndexTables(p.a_idx, p.b_idx, [0], [8, 16, 1, 4, 2, 2])
    assert t.lags("a").tolist() == [0] and t.lags("b").tolist() == [1, 2, 4, 8]
    assert IndexTables(p.a_idx, p.b_idx).lags("b") is None
    with pytest.raises(GLRError, match=r"b_lags \[1, 2, 4\] do not describe their table: row t must hold t - l"):
        IndexTables(p.a_idx, p.b_idx, [0], [1, 2, 4])
    with pytest.raises(GLRError, match=r"a_lags \[0, 1\] do not describe their table"):
        IndexTables(p.a_idx, p.b_idx, [0, 1], None)
    with pytest.raises(GLRError, match=r"b_lags must be integers, got dtype float64"):      # 1.5 was read as 1
        IndexTables(p.a_idx, p.b_idx, [0], [1.5, 2, 4, 8])
    with pytest.raises(GLRError, match=r"a_lags \[\] do not describe their table"):   # an IndexError before
        IndexTables(p.a_idx, p.b_idx, [], None)
    assert IndexTables(np.zeros((3, 0), int), p.b_idx[:3, :1], [], None).lags("a").tolist() == []
    p8 = Pattern.from_spec("power2").tables(8)
    assert IndexTables(p8.a_idx, p8.b_idx, [0], [1, 2, 4, 8]).lags("b").tolist() == [1, 2, 4]
    with pytest.raises(GLRError, match=r"a_lags \[1\] do not describe"):       # row 0 alone differs
        IndexTables([[0], [0], [1], [2]], [[-1], [0], [1], [2]], [1], None)
    two_back = [[-1], [-1], [0], [1], [2]]
    assert IndexTables([[t] for t in range(5)], two_back, None, [2]).lags("b").tolist() == [2]
    with pytest.raises(GLRError, match=r"b_lags \[1, 2\] do not describe"):
        IndexTables([[t] for t in range(5)], [[-1], [0], [0], [1], [2]], None, [1, 2])
    lags = list(range(2047)) + [2050]
    big = Pattern.from_lags(lags, ()).tables(2100)
    assert big.a_idx.shape == (2100, 2048)
    assert IndexTables(big.a_idx, big.b_idx, lags, None).lags("a").tolist() == lags
    with pytest.raises(GLRError, match="a_lags .* do not describe their table"):
        IndexTables(big.a_idx, big.b_idx, lags[:-1] + [2049], None)


def test_index_tables_last_use_pickle_repr_memo_and_coerce():
    """``last_use`` from the lags (Pattern.tables passes them) and from the table alone both equal the naive
    ``max{t : s in S(t)}``, read-only; pickling keeps tables and lags; the repr; no attribute can be set;
    ``memo`` builds once per key, apart from the tables' own caches; ``coerce`` of a pattern, tables, a pair
    and bad containers."""
    import pickle

    from glrtheory.patterns.tables import IndexTables

    n = 13
    for spec in ("power2", "window:3+fenwick", "kron:1,11", "blocks:3", "lags:2,5"):
        tables = Pattern.from_spec(spec).tables(n)
        plain = IndexTables(tables.a_idx, tables.b_idx)
        for side, sets in zip("ab", naive_union(spec, n)):
            want = _naive_last(sets, n)
            for t in (tables, plain):
                last = t.last_use(side)
                assert last.tolist() == want and not last.flags.writeable, (spec, side)
        back = pickle.loads(pickle.dumps(tables))
        assert type(back) is IndexTables and all(np.array_equal(x, y) for x, y in zip(back, tables))
        for side in "ab":
            lags = tables.lags(side)
            assert (back.lags(side) is None) if lags is None else back.lags(side).tolist() == lags.tolist()
    tables = Pattern.from_spec("power2").tables(9)
    assert repr(tables) == "IndexTables(n=9, a_idx (9, 1), b_idx (9, 4))"
    with pytest.raises(AttributeError, match="read-only"):
        tables.extra = 1
    calls = []
    first = tables.memo(("plan", 1), lambda: calls.append(1) or object())
    assert tables.memo(("plan", 1), lambda: calls.append(1) or object()) is first and calls == [1]
    assert tables.memo(("plan", 2), lambda: "other") == "other"
    tail = IndexTables([[0], [1], [2]], [[-1], [0], [-1]]).csr("b")       # the last row is empty
    assert tail.ptr.tolist() == [0, 0, 1, 1] and tail.src.tolist() == [0] and tail.slot.tolist() == [1]
    csr = tables.csr("a")
    assert tables.memo(("csr", "a"), lambda: "mine") == "mine" and tables.csr("a") is csr
    p = Pattern.from_spec("ssm")
    with pytest.raises(GLRError, match=r"a Pattern needs the length n to give its tables \(Pattern\('ssm'\)\)"):
        IndexTables.coerce(p)
    got = IndexTables.coerce(p, 5)
    assert type(got) is IndexTables and got.n == 5 and got.b_idx.tolist() == [[-1], [0], [1], [2], [3]]
    assert IndexTables.coerce(got) is got and IndexTables.coerce(got, 7) is got
    pair = IndexTables.coerce([got.a_idx.tolist(), got.b_idx.tolist()])
    assert type(pair) is IndexTables and all(np.array_equal(x, y) for x, y in zip(pair, got))
    for bad, name in (((got.a_idx, got.b_idx, None), "tuple"), ({"a": got.a_idx}, "dict"), (got.a_idx, "ndarray")):
        with pytest.raises(GLRError, match=rf"^tables must be the pair \(a_idx, b_idx\) of index tables that "
                                           rf"Pattern.tables\(n\) gives, got {name}$"):
            IndexTables.coerce(bad)


@pytest.mark.parametrize("spec", ["power2", "window:3+fenwick", "blocks:3", "kron:1,11", "lags:2,5"])
def test_live_schedule_against_the_naive_sets(spec):
    """``LiveSchedule.of`` a pattern (lag sides from their lags, the others from a table) and of its tables:
    per side the rows, the width (the widest set), the last uses, ``stored(t)`` (a later row reads t),
    ``leaving(t)`` (the stored positions read last at t, ascending) and ``live_after(L)`` (s < L read at some
    t >= L), all from the naive sets."""
    from glrtheory.patterns.tables import LiveSchedule

    n = 13
    p = Pattern.from_spec(spec)
    for source in (p, p.tables(n), tuple(p.tables(n))):
        sched = LiveSchedule.of(source, n)
        assert sched.n == n
        for side, sets in zip((sched.a, sched.b), naive_union(spec, n)):
            last = _naive_last(sets, n)
            assert side.last.tolist() == last and side.width == max(len(x) for x in sets)
            for t in range(n):
                row = side.row(t)
                assert row.size == side.width and row[row >= 0].tolist() == sets[t] and (row[len(sets[t]):] == -1).all()
                assert side.stored(t) == any(t in sets[u] for u in range(t + 1, n))
                assert side.leaving(t).tolist() == [s for s in range(t) if last[s] == t]
            for L in range(1, n + 1):
                assert side.live_after(L).tolist() == [s for s in range(L) if last[s] >= L]


def test_live_schedule_limits_and_errors(monkeypatch):
    """A pattern needs the horizon; the horizon limit ``DECODE_MAX_N`` is inclusive (lowered to 8 here); tables of
    another length are named; a table side is refused over ``MAX_TABLE_ENTRIES`` (fenwick's B at n = 8 is 8 x 3:
    24 entries fit a limit of 24, not 23), with the pattern and the sizes in the message."""
    import glrtheory.patterns.tables as tables_module
    from glrtheory.patterns.tables import LiveSchedule

    p = Pattern.from_spec("fenwick")
    with pytest.raises(GLRError, match="^a decode schedule of a pattern needs the horizon n$"):
        LiveSchedule.of(p)
    with pytest.raises(GLRError, match=r"the tables are for n=5 positions, not the horizon n=6"):
        LiveSchedule.of(p.tables(5), 6)
    assert LiveSchedule.of(p.tables(5)).n == 5
    monkeypatch.setattr(tables_module, "DECODE_MAX_N", 8)
    assert LiveSchedule.of(p, 8).n == 8
    with pytest.raises(GLRError, match=r"a decode horizon is limited to n <= 8 .* got n=9"):
        LiveSchedule.of(p, 9)
    with pytest.raises(GLRError, match=r"limited to n <= 8"):
        LiveSchedule.of(p, np.int64(9))
    monkeypatch.setattr(tables_module, "DECODE_MAX_N", 2**24)
    monkeypatch.setattr(tables_module, "MAX_TABLE_ENTRIES", 24)
    assert LiveSchedule.of(p, 8).b.width == 3
    monkeypatch.setattr(tables_module, "MAX_TABLE_ENTRIES", 23)
    with pytest.raises(GLRError, match=r"decoding Pattern\('fenwick'\) at length 8 needs an index table of 8 x 3 = "
                                       r"24 entries, over the limit of 23; use shorter"):
        LiveSchedule.of(p, 8)


# -- supports: structure answers against brute force over the sets (mutation run 7) -----------------------
def _brute_structure(sets, n, strict):
    """From explicit sets S(t): counts, last uses, dense, the interval starts ``lo[t]`` (every S(t) = {lo..t},
    else None), the interval ends ``hi[s]`` (every {t : s in S(t)} = {s..hi}, else None) and, for a B side,
    the longest path lengths ``d[t] = max(d[s] + 1 for s in S(t))``."""
    counts = [len(x) for x in sets]
    dense = all(x == list(range(t + (0 if strict else 1))) for t, x in enumerate(sets))
    lo = [x[0] for x in sets] if all(x and x == list(range(x[0], t + 1)) for t, x in enumerate(sets)) else None
    columns = [[t for t in range(n) if s in sets[t]] for s in range(n)]
    hi = [c[-1] for c in columns] if all(c and c == list(range(s, c[-1] + 1)) for s, c in enumerate(columns)) \
        else None
    d = []
    for t in range(n if strict else 0):
        d.append(max((d[s] + 1 for s in sets[t]), default=0))
    return counts, _naive_last(sets, n), dense, lo, hi, d


def _user(a_sets, b_sets):
    return Pattern.from_sets(a_sets, b_sets), (a_sets, b_sets)


_INTERVALS = [[0], [0, 1], [1, 2], [1, 2, 3], [4], [4, 5]]     # lo = 0 0 1 1 4 4, hi = 1 3 3 3 5 5
_ENDS_ONLY = [[0], [0, 1], [0, 2], [3], [3, 4], [5]]          # row 2 is no interval; every column is one
_NEITHER = [[0], [0, 1], [1, 2], [0, 3], [4], [5]]            # row 3 and column 0 are no intervals
_NO_DIAGONAL = [[0], [0], [1, 2], [3], [4], [5]]               # row 1 lacks t = 1
_B_USER = [[], [0], [0], [1, 2], [], [0, 2, 4]]


@pytest.mark.parametrize("case", ["window:4", "window:20", "attention", "ssm", "lags:1,2", "lags:2,3", "blocks:3",
                                  "fenwick", "kron:1,11", "kron:1,11,101", "power2", "lags-a:0,2", "lags-a:1",
                                  "lags-b:1..5", "intervals", "ends-only", "neither", "no-diagonal",
                                  "user+ssm", "user+window:2"])
def test_support_structure_answers_match_brute_force(case):
    """Every support class (lags, blocks, Kronecker, explicit tables, sparse user sets, unions merged into a
    table) at n = 1..6 and 9: counts, width, emptiness, last uses, ``is_dense``, ``interval_start``,
    ``interval_end`` and ``longest_paths`` equal brute force over the sets; a support without one of the
    structures answers None. The user sets are worked cases: intervals (lo 0 0 1 1 4 4, hi 1 3 3 3 5 5), ends
    only, neither, a row without its diagonal."""
    user_sets = {"intervals": _INTERVALS, "ends-only": _ENDS_ONLY, "neither": _NEITHER, "no-diagonal": _NO_DIAGONAL}
    lengths = [1, 2, 3, 4, 5, 6, 9]
    if case.startswith("lags-a:"):
        p = Pattern.from_lags([int(x) for x in case[7:].split(",")], ())
    elif case == "lags-b:1..5":
        p = Pattern.from_lags((0,), range(1, 6))
    elif case in user_sets:
        p, lengths = Pattern.from_sets(user_sets[case], _B_USER), [1, 2, 3, 4, 5, 6]
    elif case.startswith("user+"):
        p, lengths = Pattern.from_sets(_INTERVALS, _B_USER) + Pattern.from_spec(case[5:]), [1, 2, 3, 4, 5, 6]
    else:
        p = Pattern.from_spec(case)
    for n in lengths:
        a_sets, b_sets = (tuple(sorted(x) for x in side) for side in _sets_of(case, p, n))
        for support, sets in ((p.support_a(n), a_sets), (p.support_b(n), b_sets)):
            counts, last, dense, lo, hi, d = _brute_structure(list(sets), n, support.strict)
            where = f"{case} n={n} {'B' if support.strict else 'A'}"
            assert support.counts().tolist() == counts and support.width() == max(counts), where
            assert support.is_empty() == (max(counts) == 0), where
            assert support.last_use().tolist() == last and support.is_dense() == dense, where
            got_lo, got_hi = support.interval_start(), support.interval_end()
            assert (got_lo is None) == (lo is None) and (lo is None or got_lo.tolist() == lo), where
            assert (got_hi is None) == (hi is None) and (hi is None or got_hi.tolist() == hi), where
            if support.strict:
                paths = support.longest_paths()
                assert paths.dtype == np.int64 and paths.tolist() == d, where
            else:
                with pytest.raises(GLRError, match=r"longest paths are defined for a B-side \(strict\) support"):
                    support.longest_paths()


def _sets_of(case, p, n):
    """The naive sets of a test case: the definitions for specs, explicit unions for the user cases."""
    user = {"intervals": _INTERVALS, "ends-only": _ENDS_ONLY, "neither": _NEITHER, "no-diagonal": _NO_DIAGONAL}
    if case in user:
        return [sorted(x) for x in user[case][:n]], [sorted(x) for x in _B_USER[:n]]
    if case.startswith("lags-a:"):
        lags = [int(x) for x in case[7:].split(",")]
        return [sorted(t - l for l in lags if l <= t) for t in range(n)], [[] for _ in range(n)]
    if case == "lags-b:1..5":
        return [[t] for t in range(n)], [sorted(t - l for l in range(1, 6) if l <= t) for t in range(n)]
    if case.startswith("user+"):
        a, b = naive_union(case[5:], n)
        return ([sorted(set(x) | set(y)) for x, y in zip(_INTERVALS, a)],
                [sorted(set(x) | set(y)) for x, y in zip(_B_USER, b)])
    return naive_union(case, n)


def test_union_of_supports():
    """``union``: supports of other lengths or sides are refused; lag sets merge into lags; a dense side is
    returned itself (a dense B of lags 1..63 united with fenwick's table keeps its lags), as is the other side
    of an empty one; tables merge row by row and respect ``max_entries``."""
    from glrtheory.errors import WorkLimitError
    from glrtheory.patterns.support import LagSupport, TableSupport, union

    with pytest.raises(GLRError, match="cannot unite supports of different lengths or sides"):
        union(LagSupport(4, [1], True), LagSupport(5, [1], True))
    with pytest.raises(GLRError, match="cannot unite supports of different lengths or sides"):
        union(LagSupport(4, [0], False), LagSupport(4, [1], True))
    merged = union(LagSupport(9, [1, 4], True), LagSupport(9, [2, 4, 20], True))
    assert merged.lags.tolist() == [1, 2, 4]
    fen = Pattern.from_spec("fenwick").support_b(20)
    dense = LagSupport(20, range(1, 64), True)
    assert union(dense, fen) is dense and union(fen, dense) is dense
    assert (Pattern.from_lags((0,), range(1, 64)) + Pattern.from_spec("fenwick")).support_b(20).lags.tolist() == \
        list(range(1, 20))
    empty = TableSupport(20, np.full((20, 0), -1, np.int32), True)
    assert union(fen, empty) is fen and union(empty, fen) is fen
    user = Pattern.from_sets(_INTERVALS, _B_USER).support_b(6)
    both = union(user, Pattern.from_spec("fenwick").support_b(6))
    want = [sorted(set(x) | set(y)) for x, y in zip(_B_USER, naive_union("fenwick", 6)[1])]
    assert isinstance(both, TableSupport) and [list(r[r >= 0]) for r in both.table()] == want
    carry = Pattern.from_spec("blocks:2").support_b(6)                 # a 6 x 1 table; user's is 6 x 3
    for x, y in ((user, carry), (carry, user)):
        with pytest.raises(WorkLimitError, match="over the limit 10"):
            union(x, y, max_entries=10)
    for question in ("interval_start", "interval_end"):                # the structure questions read the table
        with pytest.raises(WorkLimitError, match="over the limit 17"):
            getattr(Pattern.from_sets(_INTERVALS, _B_USER).support_a(6), question)(max_entries=17)
    with pytest.raises(WorkLimitError, match="over the limit 17"):
        user.longest_paths(max_entries=17)


def test_table_size_limits_name_the_support_and_the_argument():
    """``check_table_size``: the message names the kind of support and the entries; the hint to raise
    ``max_entries`` appears only where it was left at its default; ``n * w`` equal to the limit fits. The length
    limit 2^31 - 1 is inclusive."""
    from glrtheory.errors import WorkLimitError
    from glrtheory.patterns.support import MAX_LENGTH, check_length

    assert check_length(MAX_LENGTH) == MAX_LENGTH and check_length(np.int64(7)) == 7
    cases = [(Pattern.from_spec("power2").support_b(9), "lags of size 4", 36),
             (Pattern.from_spec("blocks:4").support_a(9), "blocks of size 4", 36),
             (Pattern.from_spec("kron:1,11").support_b(9), "a Kronecker power", 63),     # t = 7 = 0111: 7 entries
             (Pattern.from_sets(_INTERVALS, _B_USER).support_b(6), "a sparse user support", 18),
             ((Pattern.from_sets(_INTERVALS, _B_USER) + Pattern.from_spec("fenwick")).support_b(6),
              "an explicit support", 18),
             (Pattern.from_spec("fenwick").support_b(9), "an explicit support", 36)]
    for support, what, entries in cases:
        assert support.table(max_entries=entries).shape[0] == support.n
        with pytest.raises(WorkLimitError, match=rf"index table of {what} at n={support.n} .*={entries} entries, "
                                                 rf"over the limit {entries - 1}; at this width n <= \d+ fits$"):
            support.table(max_entries=entries - 1)
    with pytest.raises(WorkLimitError, match=r"index table of lags of size 2 at n=300000000 would hold "
                                             r"300000000x2=600000000 entries, over the limit 536870912; at this "
                                             r"width n <= 268435456 fits \(Pattern.tables\(n, max_entries=...\) "
                                             r"raises it\)$"):
        Pattern.from_spec("lags:1,2").support_b(300_000_000).table()


def test_rows_to_table_and_last_use_from_table_against_sets(monkeypatch):
    """``rows_to_table``: candidates with -1 and duplicates become sorted distinct int32 rows as wide as the
    largest set (width 0 with no candidate, or no column); ``last_use_from_table`` equals the naive last use."""
    from glrtheory.patterns.support import rows_to_table

    cases = [[[3, -1, 1, 3], [-1, -1, -1, -1], [0, 0, 0, 2]], [[0]], [[-1], [-1]], [[5, 5]], np.zeros((3, 0), int)]
    for cand in cases:
        cand = np.asarray(cand, dtype=np.int64)
        sets = [sorted({int(v) for v in row if v >= 0}) for row in cand]
        got = rows_to_table(cand)
        assert got.dtype == np.int32 and got.shape == (cand.shape[0], max((len(s) for s in sets), default=0))
        assert got.tolist() == sets_to_table(sets).tolist()
    rng = np.random.default_rng(3)
    for chunk in (1, 5, 2**22):                # blocks of entries: every row alone, a few rows, all rows
        monkeypatch.setattr(support_module, "TABLE_CHUNK_ENTRIES", chunk)
        for n in (1, 2, 7, 30):
            sets = [sorted(rng.choice(t + 1, rng.integers(0, t + 2), replace=False).tolist()) for t in range(n)]
            last = last_use_from_table(n, sets_to_table(sets))
            assert last.dtype == np.int64 and last.tolist() == _naive_last(sets, n), (chunk, n)


@pytest.mark.parametrize("chunk", [1, 13, 2**22])
def test_a_union_of_many_parts_is_one_merge_equal_to_the_union_of_sets(monkeypatch, chunk):
    """``p + q + r + ...`` keeps its parts flat and merges their supports at n once (``union(*parts)``), in
    blocks of ``TABLE_CHUNK_ENTRIES`` candidates (1: a row at a time; 13: blocks that end inside the table);
    each side equals the naive union of the terms' sets at n in {1, 2, 63, 200}, and its lag sets stay a lag
    set when every part is one."""
    from glrtheory.errors import WorkLimitError
    from glrtheory.patterns.support import LagSupport, TableSupport, union

    monkeypatch.setattr(support_module, "TABLE_CHUNK_ENTRIES", chunk)
    spec = "fenwick+power:3+blocks:5+window:2+kron:1,11+lags:7"
    p = Pattern.from_spec("fenwick") + Pattern.from_spec("power:3")
    p = p + (Pattern.from_spec("blocks:5") + Pattern.from_spec("window:2")) + Pattern.from_spec("kron:1,11")
    p = p + Pattern.from_spec("lags:7")
    assert [q.spec for q in p.parts] == spec.split("+") and p.spec == spec
    for n in (1, 2, 63, 200):
        want = naive_union(spec, n)
        for side, sets in zip((p.support_a(n), p.support_b(n)), want):
            assert side.table().tolist() == sets_to_table(sets).tolist(), n
    lagged = Pattern.from_spec("power:3") + Pattern.from_spec("lags:2,9") + Pattern.from_spec("window:2")
    last_row = naive_union("power:3+lags:2,9+window:2", 63)[1][62]          # row 62 holds every lag <= 62
    assert lagged.support_b(63).lags.tolist() == sorted(62 - s for s in last_row)
    x = TableSupport(4, np.array([[-1, -1], [0, -1], [0, 1], [0, 1]], np.int32), True)
    y = TableSupport(4, np.array([[-1, -1], [-1, -1], [-1, -1], [1, 2]], np.int32), True)
    with pytest.raises(WorkLimitError, match=r"index table of a union of 2 tables at n=4 would hold 4x3=12 "
                                             r"entries, over the limit 11;"):
        union(x, y, max_entries=11)              # each table fits (4 x 2 = 8), the merged one does not
    assert union(x, y, max_entries=12).table().tolist() == [[-1] * 3, [0, -1, -1], [0, 1, -1], [0, 1, 2]]
    with pytest.raises(GLRError, match="a union needs at least one support"):
        union()
    with pytest.raises(GLRError, match="cannot unite supports of different lengths or sides"):
        union(LagSupport(4, [1], True), LagSupport(4, [2], True), LagSupport(5, [1], True))


def _kron_sets(rows, n, strict):
    """S(t) of the Kronecker power of the base given by its rows, digit by digit, in plain Python."""
    m = len(rows)
    k = 1
    while m**k < n:
        k += 1

    def digits(x):
        return [(x // m**j) % m for j in range(k)]
    return [[s for s in range(t + 1) if (s < t or not strict) and
             all(j <= len(rows[a]) - 1 and rows[a][j] == "1" for a, j in zip(digits(t), digits(s)))]
            for t in range(n)]


@pytest.mark.parametrize("base", ["1,11", "1,01", "1,11,101", "1,11,111", "1,01,001", "1,11,011,1111"])
def test_kron_structure_against_its_digits_for_every_n(base):
    """Kronecker supports at every n <= 70 (several digits, n at and next to powers of m): tables, counts, last
    uses of both sides, B's longest paths and the unreachable pair (u_1 never reaches h_m when A(t) = {t}: checked
    by a search over the sets) against the digit definition."""
    from glrtheory.patterns.structured import KronSupport

    rows = base.split(",")
    m = len(rows)
    K = np.array([[int(r[j]) if j < len(r) else 0 for j in range(m)] for r in rows], dtype=bool)
    diag = Pattern.from_spec("ssm").support_a
    for n in range(1, 71):
        for strict in (False, True):
            sets = _kron_sets(rows, n, strict)
            sup = KronSupport(n, K, strict)
            counts, last, _, _, _, d = _brute_structure(sets, n, strict)
            assert [list(r[r >= 0]) for r in sup.table()] == sets, (base, n, strict)
            assert sup.counts().tolist() == counts and sup.last_use().tolist() == last, (base, n, strict)
            if strict:
                assert sup.longest_paths().tolist() == d, (base, n)
                pair = sup.unreachable_pair(diag(n))
                if n > m:
                    reached, todo = {1}, [1]           # states reached from u_1 through A(t) = {t}, then B edges
                    while todo:
                        s = todo.pop()
                        for t in range(s + 1, n):
                            if s in sets[t] and t not in reached:
                                reached.add(t)
                                todo.append(t)
                    assert pair == (1, m) and m not in reached, (base, n)
                else:
                    assert pair is None, (base, n)
                assert sup.unreachable_pair(Pattern.from_spec("window:2").support_a(n)) is None


def test_spec_limits_are_inclusive():
    """``split_terms``: a spec of exactly 10000 characters and a union of exactly 32 terms parse, one more is refused;
    a non-string is named by its type; ``integer`` reads at most 12 digits (12 reach the constructor's range
    check, 13 are refused by the reader); a kron base has at most 16 rows."""
    assert Pattern.from_spec(" " * 9997 + "ssm").spec == "ssm"
    with pytest.raises(GLRError, match="^pattern spec is longer than 10000 characters$"):
        Pattern.from_spec(" " * 9998 + "ssm")
    assert Pattern.from_spec("+".join(["ssm"] * 32)).sets(3) == ([[0], [1], [2]], [[], [0], [1]])
    with pytest.raises(GLRError, match="^pattern spec unites 33 terms, over the limit 32$"):
        Pattern.from_spec("+".join(["ssm"] * 33))
    with pytest.raises(GLRError, match="^a pattern spec must be a string, got int$"):
        Pattern.from_spec(5)
    with pytest.raises(GLRError, match="^B-lag 999999999999 exceeds the limit 2"):
        Pattern.from_spec("lags:999999999999")
    with pytest.raises(GLRError, match="^lag 9999999999999 exceeds the limit 2"):
        Pattern.from_spec("lags:9999999999999")
    rows = ["1" * (i + 1) for i in range(17)]
    assert Pattern.from_spec("kron:" + ",".join(rows[:16])).sets(3)[1] == [[], [0], [0, 1]]
    with pytest.raises(GLRError, match="^kron base is limited to 16 rows, got 17$"):
        Pattern.from_spec("kron:" + ",".join(rows))
