"""Patterns: family definitions, table invariants, structured counts, spec parsing and bad input."""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from glrtheory import GLRError, Pattern
from glrtheory.analysis import analyze
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
    ("exponent:-0.1", r"\[0, 1\]"), ("exponent:nan", "finite"), ("exponent:x", "must be a number"),
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
