"""Patterns: family definitions, table invariants, structured counts, spec parsing and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glrtheory import GLRError, Pattern
from glrtheory.patterns.support import last_use_from_table
from helpers import BUILTIN_SPECS, lengths, specs


# -- definition-level references, written from the docstrings, independent of the library ----------
def _lag_sets(lag_list, n):
    return [], [sorted(t - l for l in lag_list if 1 <= l <= t) for t in range(n)]


def _digits(x, m, k):
    return [(x // m**j) % m for j in range(k)]


def naive_sets(spec: str, n: int):
    """A(t), B(t) straight from each family's definition (one term only)."""
    name, _, arg = spec.partition(":")
    diag = [[t] for t in range(n)]
    if name == "ssm":
        return diag, [[t - 1] if t else [] for t in range(n)]
    if name == "attention":
        return [list(range(t + 1)) for t in range(n)], [[] for _ in range(n)]
    if name == "window":
        w = int(arg)
        return [list(range(max(0, t - w + 1), t + 1)) for t in range(n)], [[] for _ in range(n)]
    if name == "lags":
        return diag, _lag_sets([int(x) for x in arg.split(",")], n)[1]
    if name in ("power", "power2"):
        base = int(arg) if arg else 2
        return diag, _lag_sets([base**k for k in range(40) if base**k < 2 * n + 2], n)[1]
    if name == "quadratic":
        return diag, _lag_sets([k * k + 1 for k in range(n + 1)], n)[1]
    if name == "exponent":
        alpha = float(arg)
        if alpha == 0:
            lag_list = [1]
        else:
            lag_list = [math.floor(k ** (1 / alpha) * (1 + 1e-12)) for k in range(1, n + 2)
                        if k ** (1 / alpha) < 2 * n + 2]
        return diag, _lag_sets(lag_list, n)[1]
    if name == "fenwick":
        return diag, [sorted({((t - 1) >> k) << k for k in range(40)}) if t else [] for t in range(n)]
    if name == "blocks":
        c = int(arg) if arg else math.ceil(math.sqrt(n))
        return ([list(range(c * (t // c), t + 1)) for t in range(n)],
                [[c * (t // c) - 1] if t >= c else [] for t in range(n)])
    if name == "kron":
        rows = arg.split(",")
        m = len(rows)
        K = [[int(r[j]) if j < len(r) else 0 for j in range(m)] for r in rows]
        k = 1
        while m**k < n:
            k += 1
        return diag, [[s for s in range(t) if all(K[a][b] for a, b in zip(_digits(t, m, k), _digits(s, m, k)))]
                      for t in range(n)]
    raise AssertionError(spec)


def naive_union(spec, n):
    a_sets, b_sets = [set() for _ in range(n)], [set() for _ in range(n)]
    for term in spec.split("+"):
        ta, tb = naive_sets(term, n)
        for t in range(n):
            a_sets[t] |= set(ta[t])
            b_sets[t] |= set(tb[t])
    return [sorted(x) for x in a_sets], [sorted(x) for x in b_sets]


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
@pytest.mark.parametrize("spec", BUILTIN_SPECS)
@pytest.mark.parametrize("n", [1, 2, 63, 200])
def test_family_matches_definition(spec, n):
    p = Pattern.from_spec(spec)
    a_idx, b_idx = p.tables(n)
    check_table(a_idx, n, strict=False)
    check_table(b_idx, n, strict=True)
    assert p.sets(n) == tuple(naive_union(spec, n))


@settings(max_examples=40)
@given(spec=specs, n=lengths)
def test_random_patterns_tables_and_structure(spec, n):
    p = Pattern.from_spec(spec)
    for support in (p.support_a(n), p.support_b(n)):
        table = support.table()
        check_table(table, n, support.strict)
        assert np.array_equal(support.counts(), (table >= 0).sum(axis=1))
        assert np.array_equal(support.last_use(), last_use_from_table(n, table))
    assert p.sets(n) == tuple(naive_union(p.spec, n))


@pytest.mark.parametrize("spec", ["attention", "window:4096", "blocks:1024", "kron:1,11", "quadratic"])
def test_structured_counts_at_large_n_without_tables(spec):
    """Counts and last uses at n = 2^20 come from the structure, where the tables would not fit."""
    n = 2**20
    p = Pattern.from_spec(spec)
    for support in (p.support_a(n), p.support_b(n)):
        c, lu = support.counts(), support.last_use()
        assert c.shape == lu.shape == (n,)
        assert np.all(c <= np.arange(n) + 1) and np.all((lu == -1) | (lu >= np.arange(n)))
    if spec == "kron:1,11":
        popcount = np.array([bin(t).count("1") for t in range(n)])
        assert np.array_equal(p.support_b(n).counts(), 2**popcount - 1)


def test_power2_table_at_two_to_the_twenty():
    n = 2**20
    a_idx, b_idx = Pattern.from_spec("power2").tables(n)
    check_table(b_idx, n, strict=True)
    assert b_idx.shape == (n, 20) and a_idx.shape == (n, 1)
    t = n - 1
    assert set(b_idx[t]) == {t - 2**k for k in range(20)}


@pytest.mark.parametrize("alpha", [0.1, 0.25, 1 / 3, 0.5, 0.77, 1.0])
def test_exponent_lag_count_is_theta_t_alpha(alpha):
    """Exactly ceil((t+1)^alpha) - 1 lags are <= t, hence Theta(t^alpha) per token."""
    n = 5000
    counts = Pattern.from_spec(f"exponent:{alpha}").support_b(n).counts()
    t = np.arange(n)
    expected = np.ceil((t + 1) ** alpha * (1 - 1e-12)) - 1
    assert np.array_equal(counts, expected.astype(np.int64))


def test_spec_round_trip_and_aliases():
    for spec in BUILTIN_SPECS:
        p = Pattern.from_spec(spec)
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


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("lags:0", "must be >= 1"), ("lags:-2", "must be >= 1"), ("lags:1.5", "must be an integer"),
    ("lags:", "needs arguments"), ("lags:1,,2", "must be an integer"), ("nosuch", "unknown pattern family"),
    ("window:0", "must be >= 1"), ("power:1", "must be >= 2"), ("exponent:1.5", r"\[0, 1\]"),
    ("exponent:-0.1", r"\[0, 1\]"), ("exponent:nan", "finite"), ("exponent:x", "must be a number"),
    ("ssm:3", "takes no arguments"), ("power2+", "empty term"), ("", "empty term"),
    ("kron:1", "size >= 2"), ("kron:1,10", "unit diagonal"), ("kron:1,1", "2 digits"), ("kron:1,12", "0/1"),
    ("blocks:0", "must be >= 1"), ("+".join(["ssm"] * 40), "over the limit 32"), ("lags:99999999999999", "limit"), ("window:2.0", "must be an integer"),
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
    with pytest.raises(GLRError, match="sequences of sequences"):
        Pattern.from_sets([[0], None], [[], []])
