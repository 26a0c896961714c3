"""glrtheory.analysis against definition-level references built from ``p.sets(n)`` (docs/quantities.md)."""
import io
import re

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from hypothesis import given, settings, strategies as st

from glrtheory import GLRError, Pattern
from glrtheory import analysis as an
from glrtheory import graph
from glrtheory.analysis import _hop_impls, _rank_exact
from glrtheory.prime_field import mixing_matrix_mod_p, random_coefficients_mod_p, rank_mod_p
from glrtheory.recurrence import mixing_jacobian

FAMILIES = ["ssm", "attention", "window:5", "lags:1,3,8", "power2", "power:3", "quadratic", "exponent:0.5",
            "exponent:0.8", "exponent:1", "exponent:0", "fenwick", "blocks", "blocks:7", "kron:1,11",
            "kron:1,11,101", "window:4+fenwick", "ssm+fenwick", "blocks:5+lags:3", "window:3+kron:1,11"]


# -- definition-level references -------------------------------------------------------------------
def ref_counts(p, n):
    A, B = p.sets(n)
    return np.array([len(a) for a in A]), np.array([len(b) for b in B])


def ref_live_sides(p, n):
    """Rows |{u_s : s <= t, s in A(t') for some t' > t}| and |{h_s : s <= t, s in B(t') for some t' > t}|."""
    out = []
    for X in p.sets(n):
        later = [set().union(*X[t + 1:]) if t + 1 < n else set() for t in range(n)]
        out.append([sum(1 for s in range(t + 1) if s in later[t]) for t in range(n)])
    return np.array(out).reshape(2, n)


def ref_live(p, n):
    return ref_live_sides(p, n).sum(axis=0)


def ref_depth(p, n):
    _, B = p.sets(n)
    d = [0] * n
    for t in range(n):
        d[t] = max((d[s] + 1 for s in B[t]), default=0)
    return max(d)


def ref_hops(p, n):
    """hops[s, t] by breadth-first search on the 2n-vertex graph (u_s = s, h_t = n + t); -1 unreachable."""
    A, B = p.sets(n)
    rows, cols = [], []
    for t in range(n):
        rows += list(A[t]) + [n + s for s in B[t]]
        cols += [n + t] * (len(A[t]) + len(B[t]))
    g = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * n, 2 * n))
    d = scipy.sparse.csgraph.shortest_path(g, unweighted=True, indices=np.arange(n))[:, n:]
    return np.where(np.isfinite(d), d - 1, -1).astype(np.int64)


def ref_diameter(p, n):
    H = ref_hops(p, n)
    pairs = H[np.triu_indices(n)]
    return None if (pairs < 0).any() else int(pairs.max())


def check_against_reference(p, n):
    ca, cb = ref_counts(p, n)
    assert an.nnz(p, n) == (ca.sum(), cb.sum())
    np.testing.assert_array_equal(an.decode_costs(p, n), ca + cb)
    sides = ref_live_sides(p, n)
    np.testing.assert_array_equal(an.live_sides(p, n), sides)
    live = sides.sum(axis=0)
    np.testing.assert_array_equal(an.live_profile(p, n), live)
    assert an.cache_peak(p, n) == live.max()
    assert an.depth(p, n) == ref_depth(p, n)
    diameter = ref_diameter(p, n)
    assert an.hop_diameter(p, n) == diameter
    assert an.full_receptive_field(p, n) == (diameter is not None)


# -- random patterns ---------------------------------------------------------------------------------
@st.composite
def set_patterns(draw, max_n=40):
    n = draw(st.integers(1, max_n))
    dens_a, dens_b = draw(st.floats(0, 1)), draw(st.floats(0, 0.6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    A = np.tril(rng.random((n, n)) < dens_a)
    if draw(st.booleans()):
        A |= np.eye(n, dtype=bool)  # most mixers see their own input
    B = np.tril(rng.random((n, n)) < dens_b, -1)
    return Pattern.from_masks(A, B), n


@st.composite
def lag_patterns(draw):
    n = draw(st.sampled_from([1, 2, 63, 1000]))
    a = draw(st.sets(st.integers(0, 70), min_size=1, max_size=4))
    b = draw(st.sets(st.integers(1, 300), max_size=6))
    return Pattern.from_lags(sorted(a), sorted(b)), n


@settings(max_examples=40, deadline=None)
@given(set_patterns())
def test_user_patterns_match_definitions(case):
    check_against_reference(*case)


@settings(max_examples=25, deadline=None)
@given(lag_patterns())
def test_lag_patterns_match_definitions(case):
    p, n = case
    check_against_reference(p, n) if n < 1000 else _check_large(p, n)


def _check_large(p, n):
    """At n = 1000 only the cheap references (counts via sets, hops via scipy BFS, depth DP)."""
    ca, cb = ref_counts(p, n)
    assert an.nnz(p, n) == (ca.sum(), cb.sum())
    assert an.depth(p, n) == ref_depth(p, n)
    assert an.hop_diameter(p, n) == ref_diameter(p, n)


@pytest.mark.parametrize("spec", FAMILIES)
@pytest.mark.parametrize("n", [1, 2, 3, 17, 63])
def test_families_match_definitions(spec, n):
    check_against_reference(Pattern.from_spec(spec), n)


@pytest.mark.parametrize("spec", ["fenwick", "blocks", "power2", "quadratic", "kron:1,11", "window:9+fenwick",
                                  "exponent:0.7"])
def test_families_at_1000(spec):
    p = Pattern.from_spec(spec)
    _check_large(p, 1000)
    np.testing.assert_array_equal(an.live_profile(p, 1000)[::97], ref_live(p, 1000)[::97])


def test_union_with_user_pattern():
    q = Pattern.from_sets([[0], [0, 1], [2], [1, 3], [4]], [[], [0], [0], [2], [3]])
    check_against_reference(q + Pattern.from_spec("ssm"), 5)


def test_fast_paths_are_taken_at_large_n(monkeypatch):
    """The structured paths never reach the all-sources search (which would refuse at this n)."""
    def refuse(p, n, max_work):
        raise AssertionError("general search used")

    monkeypatch.setattr(_hop_impls, "_bfs_impl", refuse)
    n = 2**14
    assert an.hop_diameter(Pattern.from_spec("fenwick"), n) == 14
    assert an.hop_diameter(Pattern.from_spec("blocks:100"), n) == (n - 1) // 100
    assert an.hop_diameter(Pattern.from_spec("ssm"), n) == n - 1
    assert an.hop_diameter(Pattern.from_spec("quadratic"), n) == 4
    assert an.hop_diameter(Pattern.from_spec("kron:1,11"), n) is None
    assert an.hop_diameter(Pattern.from_spec("window:16+fenwick"), n) is not None


# -- Hankel rank -------------------------------------------------------------------------------------
@settings(max_examples=12, deadline=None)
@given(set_patterns(max_n=24))
def test_max_flow_equals_exact_rank_over_field(case):
    """Both strategies against the dense reference (rank of M[t+1:, :t+1] over F_p, M by substitution)."""
    p, n = case
    ref = an.hankel_profile_exact(p, n, seed=1)
    np.testing.assert_array_equal(an.hankel_profile(p, n, method="flow"), ref)
    np.testing.assert_array_equal(an.hankel_profile(p, n, method="exact", seed=2), ref)
    assert an.exact_rank_max(p, n, seed=3)[0] == ref.max(initial=0)
    live = an.live_profile(p, n)[:-1]
    assert (ref <= live).all() and (ref <= an.cut_bounds(p, n)).all()  # the live set is a vertex cut


@pytest.mark.parametrize("spec", ["quadratic", "blocks", "lags:2,3"])
def test_max_flow_equals_exact_rank_n128(spec):
    p = Pattern.from_spec(spec)
    ref = an.hankel_profile_exact(p, 128, seed=7)
    np.testing.assert_array_equal(an.hankel_profile(p, 128), ref)
    np.testing.assert_array_equal(an.hankel_profile(p, 128, method="exact"), ref)


@pytest.mark.parametrize("seed", [0])
def test_max_flow_equals_exact_rank_random_n128(seed):
    n = 128
    rng = np.random.default_rng(seed)
    A = np.eye(n, dtype=bool) | np.tril(rng.random((n, n)) < 1.5 / n)
    B = np.tril(rng.random((n, n)) < 3.0 / n, -1)
    p = Pattern.from_masks(A, B)
    ref = an.hankel_profile_exact(p, n, seed=seed)
    np.testing.assert_array_equal(an.hankel_profile(p, n), ref)
    np.testing.assert_array_equal(an.hankel_profile(p, n, method="exact", seed=seed + 1), ref)


@pytest.mark.parametrize("spec, n", [("power2", 1024), ("fenwick", 2048), ("blocks", 2048), ("window:64", 2048),
                                     ("ssm+fenwick", 600), ("window:3+kron:1,11", 300), ("exponent:0.25", 300)])
def test_flow_and_exact_agree_at_large_n(spec, n):
    """The exact rank over F_p (default of --rank) and its check, the max-flow, at lengths the dense
    reference cannot reach."""
    p = Pattern.from_spec(spec)
    rank, error = an.exact_rank_max(p, n)
    assert rank == an.hankel_rank_max(p, n, method="flow")
    assert 0 <= error < 1e-2
    assert error == 0 or rank < an.cut_bounds(p, n).max()       # certain when it reaches the cut bound


def test_rank_refusals_name_the_largest_n_that_fits(monkeypatch):
    import re

    from glrtheory.analysis import _rank_exact, _rank_flow

    p = Pattern.from_spec("power2")
    for module, name, method in [(_rank_flow, "FLOW_RANK_MAX_WORK", "flow"),
                                 (_rank_exact, "EXACT_RANK_MAX_WORK", "exact")]:
        monkeypatch.setattr(module, name, 200_000)
        an.clear_caches()
        with pytest.raises(GLRError, match="over the limit 200000") as info:
            an.hankel_profile(p, 300, method=method)
        m = int(re.search(r"fits is (\d+)", str(info.value)).group(1))
        assert 1 < m < 300
        an.hankel_profile(p, m, method=method)                    # fits
        with pytest.raises(GLRError, match="over the limit"):
            an.hankel_profile(p, m + 1, method=method)            # does not
    an.clear_caches()
    with pytest.raises(GLRError, match="unknown rank method 'svd'"):
        an.hankel_profile(p, 8, method="svd")


def test_design_illustration_n128():
    """docs/quantities.md: first order rank 1 cache 1; lags 2^k rank 64 cache 64.

    The aligned binary counter gives rank 6 (not 5) with the foundation's fenwick, which puts h_0 in every
    B(t) (k up to ceil(log2 n)); the variant with k <= log2(n) - 1 gives rank 5, cache 7.
    """
    n = 128
    for spec, rank, cache in [("ssm", 1, 1), ("power2", 64, 64), ("fenwick", 6, 7)]:
        p = Pattern.from_spec(spec)
        assert an.hankel_rank_max(p, n) == rank
        assert an.hankel_profile_exact(p, n).max() == rank
        assert an.exact_rank_max(p, n)[0] == rank
        assert an.cache_peak(p, n) == cache
    variant = Pattern.from_sets([[t] for t in range(n)],
                                [sorted({((t - 1) >> k) << k for k in range(7)}) if t else [] for t in range(n)])
    assert an.hankel_rank_max(variant, n) == 5
    assert an.cache_peak(variant, n) == 7


def test_numba_elimination_matches_numpy_reference():
    from glrtheory.prime_field import PRIME, rank_mod_p_inplace

    rng = np.random.default_rng(0)
    for _ in range(30):
        r, c, k = rng.integers(1, 14, 3)
        for prime in (7, PRIME):
            x = (rng.integers(0, prime, (r, k)).astype(object) @ rng.integers(0, prime, (k, c)).astype(object))
            x = (x % prime).astype(np.int64)
            assert rank_mod_p_inplace(x.copy(), prime) == rank_mod_p(x, prime)
        assert rank_mod_p_inplace(x + PRIME * rng.integers(0, 3, x.shape), PRIME) == rank_mod_p(x)  # unreduced


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(0, 12), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_rank_of_low_rank_changes_from_one_factorization(K, r0, m, seed):
    """rank(S + U V^T) from the factors T S = E (bordered matrix, Schur complement) against elimination."""
    from glrtheory.analysis._rank_anchor import anchored_rank, rref_with_transform
    from glrtheory.prime_field import PRIME

    rng = np.random.default_rng(seed)
    r0 = min(r0, K)
    S = rng.integers(0, PRIME, (K, r0)).astype(object) @ rng.integers(0, PRIME, (r0, K)).astype(object) % PRIME
    S = S.astype(np.int64)
    S[:, : rng.integers(0, K + 1)] = 0                                        # some empty columns
    U, V = rng.integers(0, PRIME, (K, m)), rng.integers(0, PRIME, (K, m))
    if seed % 3 == 0:
        h = min(m // 2, K)
        U[:, :h] = S[:, :h]                                                   # changes inside the column space
    E, T, pivots, r = rref_with_transform(S)
    assert r == rank_mod_p(S)
    np.testing.assert_array_equal(T.astype(object) @ S.astype(object) % PRIME, E)
    full = (S.astype(object) + U.astype(object) @ V.T.astype(object)) % PRIME
    assert anchored_rank(E, T, pivots, r, U, V) == rank_mod_p(full.astype(np.int64))


def test_rank_of_a_matrix_over_field():
    assert rank_mod_p([[1, 2], [2, 4]]) == 1
    assert rank_mod_p([[1, 2], [2, 4]], prime=3) == 1
    assert rank_mod_p([[1, 1], [1, 2]], prime=2) == 2
    assert rank_mod_p(np.zeros((3, 0))) == 0
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 5, size=(7, 5)) @ rng.integers(-5, 5, size=(5, 9))  # rank <= 5 over Q
    assert rank_mod_p(x) == np.linalg.matrix_rank(x)


@pytest.mark.parametrize("prime", [101, 2**31 - 1])
def test_mixing_matrix_mod_p_matches_exact_integers(prime):
    p = Pattern.from_spec("window:3+fenwick")
    n = 20
    a_idx, b_idx, a, b = random_coefficients_mod_p(p, n, seed=3, prime=prime)
    M = np.zeros((n, n), dtype=object)  # exact integers: M[t] = A[t] + sum_s b[t, s] M[s]
    for t in range(n):
        for j, s in enumerate(a_idx[t]):
            if s >= 0:
                M[t, s] += int(a[t, j])
        for j, s in enumerate(b_idx[t]):
            if s >= 0:
                M[t] = M[t] + int(b[t, j]) * M[s]
    np.testing.assert_array_equal(mixing_matrix_mod_p(a_idx, b_idx, a, b, prime=prime), (M % prime).astype(np.int64))


# -- degrees of freedom -------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(set_patterns(max_n=10), st.integers(0, 1000))
def test_degrees_of_freedom_match_float_jacobian(case, seed):
    p, n = case
    a_idx, b_idx = p.tables(n)
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.0, a_idx.shape) * rng.choice([-1, 1], a_idx.shape)
    b = rng.uniform(0.2, 0.6, b_idx.shape) * rng.choice([-1, 1], b_idx.shape)
    J = mixing_jacobian(p, a, b)
    float_rank = np.linalg.matrix_rank(J) if J.size else 0
    assert an.degrees_of_freedom(p, n, seed=seed) == float_rank


@pytest.mark.parametrize("spec", ["power2", "fenwick", "window:4+ssm", "kron:1,11"])
def test_degrees_of_freedom_match_float_jacobian_n32(spec):
    p = Pattern.from_spec(spec)
    n = 32
    a_idx, b_idx = p.tables(n)
    rng = np.random.default_rng(5)
    a = rng.uniform(0.5, 1.0, a_idx.shape) * rng.choice([-1, 1], a_idx.shape)
    width = np.maximum(1, (b_idx >= 0).sum(axis=1, keepdims=True))
    b = rng.uniform(0.1, 0.5, b_idx.shape) * rng.choice([-1, 1], b_idx.shape) / np.sqrt(width)
    assert an.degrees_of_freedom(p, n) == np.linalg.matrix_rank(mixing_jacobian(p, a, b))


def test_degrees_of_freedom_examples():
    n = 16
    assert an.degrees_of_freedom(Pattern.from_spec("attention"), n) == n * (n + 1) // 2
    assert an.degrees_of_freedom(Pattern.from_spec("exponent:1"), n) == n * (n + 1) // 2  # universal
    assert an.degrees_of_freedom(Pattern.from_spec("ssm"), n) == 2 * n - 1
    # window:4 + first order: 3 of the parameters are redundant (rows 1..3: b[t, t-1] h_{t-1} is in A's span)
    assert (an.degrees_of_freedom(Pattern.from_spec("window:4+ssm"), n)
            == sum(an.nnz(Pattern.from_spec("window:4+ssm"), n)) - 3)
    with pytest.raises(GLRError, match="limited to n <= 256"):
        an.degrees_of_freedom(Pattern.from_spec("ssm"), 257)


# -- analyze and limits ---------------------------------------------------------------------------------
def test_analyze_keys_and_values():
    p = Pattern.from_spec("power2")
    r = an.analyze(p, 64)
    assert tuple(r) == an.KEYS
    assert r["nnz_b"] == sum(min(7, int(np.log2(t)) + 1) if t else 0 for t in range(64))
    assert (r["cache_peak"], r["hop_diameter"], r["depth"], r["full_receptive_field"]) == (32, 6, 63, True)
    assert r["theta_total"] == "n*log(n)"
    r = an.analyze(p, 64, rank=True)
    assert tuple(r) == an.KEYS + an.RANK_KEYS and r["hankel_rank_max"] == 32
    assert (r["hankel_rank_method"], r["hankel_rank_error_bound"]) == ("exact", 0.0)
    r = an.analyze(Pattern.from_spec("fenwick"), 64, rank=True, rank_method="flow")
    assert (r["hankel_rank_max"], r["hankel_rank_method"], r["hankel_rank_error_bound"]) == (5, "flow", 0.0)
    r = an.analyze(Pattern.from_spec("fenwick"), 64, rank=True)
    assert r["hankel_rank_max"] == 5 and 0 < r["hankel_rank_error_bound"] < 1e-5
    assert an.analyze(Pattern.from_spec("window:4"), 10)["hop_diameter"] is None
    assert an.analyze(Pattern.from_spec("ssm"), 1, rank=True)["hankel_rank_max"] == 0


def test_limits():
    p = Pattern.from_spec("ssm")
    with pytest.raises(GLRError, match="over the limit .* the largest n that fits is"):
        an.hankel_profile(Pattern.from_spec("attention"), 4000)
    with pytest.raises(GLRError, match="limited to n <= 512"):
        an.hankel_profile_exact(p, 513)
    with pytest.raises(GLRError, match="expected a Pattern"):
        an.nnz("ssm", 4)
    with pytest.raises(GLRError, match="positive"):
        an.cache_peak(p, 0)



@pytest.mark.parametrize("entries, padded", [(10**6, 2000), (700, 10**6)])
def test_the_readout_refusal_names_the_largest_n_whose_tables_build(monkeypatch, entries, padded):
    """The readout choice needs the index tables: its refusal, over the entries (nnz) limit or over the tables'
    padded size, names the largest n at which the tables build and the choice is made (kron's rows vary in width,
    so the two limits bind at different n; the nnz limit alone once named an n whose tables were refused)."""
    from glrtheory.analysis import report
    from glrtheory.patterns import support
    monkeypatch.setattr(report, "READOUT_MAX_ENTRIES", entries)
    monkeypatch.setattr(report, "MAX_TABLE_ENTRIES", padded)
    monkeypatch.setattr(support, "MAX_TABLE_ENTRIES", padded)
    p = Pattern.from_spec("kron:1,11,111")
    refused = an.analyze(p, 400)["skipped"]["readout"]
    m = int(re.search(r"the largest n that fits is (\d+)", refused).group(1))
    assert "algorithm" in an.analyze(p, m)["readout"]
    assert "over the limit" in an.analyze(p, m + 1)["skipped"]["readout"]

def test_hops_refuse_over_the_work_limit(monkeypatch):
    rng = np.random.default_rng(0)
    q = Pattern.from_masks(np.tril(rng.random((60, 60)) < 0.3), np.tril(rng.random((60, 60)) < 0.3, -1))
    with pytest.raises(GLRError, match="over the limit 1000; the largest n that fits is 13"):
        an.hop_diameter(q, 60, max_work=1000)
    assert an.hop_diameter(q, 13, method="bfs", max_work=1000) == ref_diameter(q, 13)    # it does fit
    with pytest.raises(GLRError, match="the largest n that fits is 13"):
        an.hop_diameter(q, 14, method="bfs", max_work=1000)
    monkeypatch.setattr(_hop_impls, "HOPS_MAX_WORK", 1000)      # the default limit
    with pytest.raises(an.HopMethodError, match="over the limit 1000"):
        an.hop_diameter(q, 60)
    monkeypatch.setattr(_hop_impls, "HOPS_MAX_FFT_LEVELS", 2)
    with pytest.raises(GLRError, match="more than 2 FFT levels"):
        an.hop_diameter(Pattern.from_spec("lags:5,7"), 200, max_work=10)


def test_depth_of_a_user_lag_set_reads_no_table(monkeypatch):
    """A rule whose B side is a lag set gets the lag answer floor(t / l_0) for depth, never its table."""
    def lags(t):
        row = np.array([3, 5, 11])
        return row, row[None, :] <= t[:, None]

    q = Pattern.from_rule(None, lags, kind="lags", spec="lags by rule")
    expected = {n: ref_depth(q, n) for n in (1, 2, 63, 200)}
    monkeypatch.setattr(type(q.support_b(8)), "table", lambda *a, **k: pytest.fail("read the table"))
    assert {n: an.depth(q, n) for n in expected} == expected == {1: 0, 2: 0, 63: 20, 200: 66}


def test_analyze_skips_what_is_over_a_limit(monkeypatch):
    """Hops and rank over their limits: None with the reason under ``skipped``; every other key equals the
    report within the limits (the full receptive field then comes from its own O(n + nnz) pass)."""
    rng = np.random.default_rng(2)
    n = 60
    for chain, full in ((0.9, False), (1.0, True)):        # B(t) holds t - 1 with probability `chain`
        B = np.tril(rng.random((n, n)) < 0.2, -1) | np.eye(n, k=-1, dtype=bool) * (rng.random((n, 1)) < chain)
        q = Pattern.from_masks(np.tril(rng.random((n, n)) < 0.1) | np.eye(n, dtype=bool), B)
        an.clear_caches()
        within = an.analyze(q, n, rank=True)
        assert "skipped" not in within and within["full_receptive_field"] is full
        assert within["hop_diameter"] == ref_diameter(q, n)
        with monkeypatch.context() as m:
            m.setattr(_hop_impls, "HOPS_MAX_WORK", 1000)
            m.setattr(_rank_exact, "EXACT_RANK_MAX_WORK", 100)
            an.clear_caches()
            over = an.analyze(q, n, rank=True)
        skipped = over.pop("skipped")
        assert list(skipped) == ["hop_diameter", "hankel_rank_max"]
        assert "over the limit 1000" in skipped["hop_diameter"] and "over the limit 100;" in skipped["hankel_rank_max"]
        assert over == {**within, "hop_diameter": None, "hankel_rank_max": None, "hankel_rank_error_bound": None}
    with pytest.raises(GLRError, match="unknown rank method"):                  # bad input is not skipped
        an.analyze(q, n, rank=True, rank_method="svd")


def test_a_refused_support_is_built_once_per_report():
    """Every quantity of a report reads the supports; when building them is refused (a union's merged table
    over its limit), the refusal is kept like the supports, so the report pays for the build once, and each
    count key is skipped with that reason. Other errors are not kept."""
    from glrtheory.errors import WorkLimitError
    from glrtheory.patterns import LagSupport

    builds = []

    def refused(n):
        builds.append(n)
        raise WorkLimitError(f"merged table at n={n} is over the limit 7")

    q = Pattern("refused union", lambda n: LagSupport(n, [0], strict=False), refused)
    an.clear_caches()
    report = an.analyze(q, 64)
    assert builds == [64]
    assert all(report[k] is None and report["skipped"][k] == "merged table at n=64 is over the limit 7"
               for k in ("nnz_a", "nnz_b", "decode_cost_max", "cache_peak", "depth", "hop_diameter"))
    with pytest.raises(WorkLimitError, match="over the limit 7"):
        an.cache_peak(q, 64)
    assert builds == [64]

    def broken(n):
        builds.append(n)
        raise GLRError("not a limit")

    q = Pattern("broken", lambda n: LagSupport(n, [0], strict=False), broken)
    for _ in range(2):
        with pytest.raises(GLRError, match="not a limit"):
            an.cache_peak(q, 64)
    assert builds == [64, 64, 64]


def test_fft_levels_match_dp():
    for spec, n in [("quadratic", 500), ("lags:3,5", 150), ("exponent:0.6", 500), ("window:3+lags:4,9", 300),
                    ("window:2", 50)]:
        p = Pattern.from_spec(spec)
        dp = an.hop_diameter(p, n)
        assert an.hop_diameter(p, n, max_work=10) == dp == ref_diameter(p, n)


def test_sweep_and_compare():
    ps = [Pattern.from_spec("ssm"), Pattern.from_spec("fenwick")]
    rows = an.compare(ps, 32)
    assert [r["spec"] for r in rows] == ["ssm", "fenwick"]
    data = an.sweep(ps[1], [8, 16], rank=True)
    assert data["total_cost"] == [an.total_cost(ps[1], 8), an.total_cost(ps[1], 16)]
    assert data["hankel_rank_max"] == [an.hankel_rank_max(ps[1], 8), an.hankel_rank_max(ps[1], 16)]


@settings(max_examples=15, deadline=None)
@given(lag_patterns())
def test_hop_profile_of_lag_patterns(case):
    p, n = case
    n = min(n, 63)
    H = ref_hops(p, n)
    f = an.hop_profile(p, n)
    for s in range(n):
        np.testing.assert_array_equal(H[s, s:], f[: n - s])
    assert an.hop_profile(Pattern.from_spec("fenwick"), 8) is None


def test_exact_analysis_states_its_length_limit():
    from glrtheory.analysis import ANALYZE_MAX_N

    with pytest.raises(GLRError, match=r"limited to n <= 2\^24"):
        an.analyze(Pattern.from_spec("lags:1,2"), ANALYZE_MAX_N + 1)


# -- hop strategies, each against breadth-first search on the networkx graph ------------------------------
def networkx_diameter(p, n):
    """max over s <= t of hops(s -> t) from ``graph.hop_matrix`` (networkx BFS); None if a pair is unreachable."""
    H = graph.hop_matrix(graph.dependency_graph(p, n))
    pairs = H[np.triu_indices(n)]
    return None if (pairs < 0).any() else int(pairs.max())


METHOD_CASES = {  # patterns where each strategy applies (and reach sets are intervals for the propagations)
    "lags": ["ssm", "power2", "quadratic", "window:5", "lags:2,3", "exponent:0.5", "window:3+lags:4,9"],
    "intervals": ["ssm", "blocks", "blocks:7", "blocks:3", "blocks:5+lags:3", "window:3", "attention"],
    "mirrored": ["fenwick", "ssm", "blocks:3", "window:2+fenwick", "window:4+fenwick", "ssm+fenwick"],
    "bfs": FAMILIES,
}


@pytest.mark.parametrize("method", sorted(METHOD_CASES))
@pytest.mark.parametrize("n", [1, 2, 63])
def test_each_hop_method_matches_networkx_bfs(method, n):
    for spec in METHOD_CASES[method]:
        p = Pattern.from_spec(spec)
        want = networkx_diameter(p, n)
        assert an.hop_diameter(p, n, method=method) == want, spec
        assert an.HOP_METHODS[method](p, n) == want, spec


@settings(max_examples=25, deadline=None)
@given(set_patterns(max_n=30))
def test_hop_methods_agree_or_refuse_on_random_patterns(case):
    """Every strategy either refuses (HopMethodError) or gives the networkx BFS answer."""
    p, n = case
    assert_every_strategy_gives(p, n, networkx_diameter(p, n))


def assert_every_strategy_gives(p, n, want, *context):
    """Every hop strategy gives ``want`` or refuses (HopMethodError); ``bfs`` never refuses."""
    for method in an.HOP_METHODS:
        try:
            got = an.hop_diameter(p, n, method=method)
        except an.HopMethodError:
            assert method != "bfs"
            continue
        assert got == want, (method, *context)


def test_hop_method_bad_input():
    p = Pattern.from_spec("fenwick")
    with pytest.raises(an.HopMethodError, match="needs lag sets"):
        an.hop_diameter(p, 8, method="lags")
    with pytest.raises(an.HopMethodError, match="do not form intervals"):
        an.interval_propagation(p, 64)
    with pytest.raises(GLRError, match="unknown hop method 'dfs'"):
        an.hop_diameter(p, 8, method="dfs")
    with pytest.raises(GLRError, match="max_work must be >= 1"):
        an.hop_diameter(p, 8, method="bfs", max_work=0)
    assert an.hop_diameter(p, 64, method=lambda q, n, max_work=None: 99) == 99   # any callable


def test_support_structure_answers_match_the_generic_ones():
    """The structured overrides (lags, blocks, Kronecker) agree with the table-based defaults of Support."""
    from glrtheory.patterns.support import Support, TableSupport

    for spec in ["window:5", "blocks:7", "blocks", "power2", "kron:1,11,101", "ssm", "quadratic"]:
        p = Pattern.from_spec(spec)
        for sup in (p.support_a(200), p.support_b(200)):
            generic = TableSupport(sup.n, sup.table(), sup.strict)
            for question in ("interval_start", "interval_end") + (("longest_paths",) if sup.strict else ()):
                got, want = getattr(sup, question)(), getattr(Support, question)(generic)
                assert (got is None and want is None) or np.array_equal(got, want), (spec, question)
    sa, sb = (Pattern.from_spec("kron:1,11").support_a(9), Pattern.from_spec("kron:1,11").support_b(9))
    s, t = sb.unreachable_pair(sa)
    assert s <= t and graph.hops(graph.dependency_graph(Pattern.from_spec("kron:1,11"), 9), s, t) is None


def test_package_shape():
    """One concept per module: no isinstance dispatch on support classes, only ``report`` reads symbolic,
    no module over about 250 lines."""
    import pathlib
    import re

    root = pathlib.Path(an.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"isinstance\([^)]*Support", text), path.name
        assert ("symbolic" in re.sub(r'""".*?"""', "", text, flags=re.S)) == (path.name == "report.py"), path.name
        assert len(text.splitlines()) <= 260, path.name


# -- asymptotic classes: fitted where no closed form exists; fixed lag lists ------------------------------
@pytest.mark.parametrize("spec", ["ssm", "power2", "quadratic", "exponent:0.25", "fenwick", "blocks", "attention"])
def test_fitted_classes_recover_the_proved_ones(spec):
    """The fit, run on a built-in family, finds the classes that symbolic.costs proves."""
    from glrtheory.analysis.fit import fit_classes
    from glrtheory.symbolic.costs import theta

    p = Pattern.from_spec(spec)
    fit, proved = fit_classes(p, 64), theta(p)
    assert fit["range"] == [128, 65536] and fit["points"] == 10
    assert {q: fit[q]["class"] for q in ("total", "decode", "cache")} == \
        {q: proved["theta_" + q] for q in ("total", "decode", "cache")}


def test_fit_class_on_known_sequences():
    from glrtheory.analysis.fit import fit_class

    m = np.array([2.0**k for k in range(6, 17)])
    assert fit_class(m, 3 * m**1.5)["class"] == "n**(3/2)" and fit_class(m, 3 * m**1.5)["residual"] == 0
    assert fit_class(m, m * np.log(m) + 7)["class"] == "n*log(n)"
    assert fit_class(m, np.log(m) ** 2)["class"] == "log(n)**2"
    assert fit_class(m, np.full(m.size, 5))["class"] == "1"
    assert fit_class(m, m ** 0.8)["class"] == "n**(4/5)" and abs(fit_class(m, m ** 0.8)["slope"] - 0.8) < 1e-6
    assert fit_class(m, np.zeros(m.size))["class"] == "0"
    with pytest.raises(GLRError, match="positive counts"):
        fit_class(m, np.arange(m.size))


def test_rule_pattern_gets_fitted_classes():
    def pow2(t):
        lags = 2 ** np.arange(31)[None, :]
        return lags + 0 * t[:, None], lags <= t[:, None]

    r = an.analyze(Pattern.from_rule(None, pow2, kind="lags"), 1024)
    assert (r["theta_total"], r["theta_decode"], r["theta_cache"]) == ("n*log(n)", "log(n)", "n")
    assert r["theta_basis"] == "fitted" and r["theta_fit"]["range"] == [128, 65536]
    assert r["theta_fit"]["total"]["residual"] < 0.05 and r["theta_family"] is None
    tiny = an.analyze(Pattern.from_sets([[0], [1]], [[], [0]]), 2)
    assert tiny["theta_basis"] == "none" and "defined only up to n=2" in tiny["theta_fit"]["reason"]


def test_fixed_lag_list_says_so_and_names_its_family():
    r = an.analyze(Pattern.from_spec("lags:" + ",".join(str(2**k) for k in range(16))), 65536)
    assert (r["theta_cache"], r["cache_peak"]) == ("1", 32768)              # constant for a fixed list ...
    assert r["theta_basis"] == "closed form, for fixed lags"
    family = r["theta_family"]                                                # ... power2's class in n
    assert (family["spec"], family["same_lags_for_n"], family["theta_cache"]) == ("power2", [32769, 65536], "n")
    q = an.analyze(Pattern.from_spec("lags:" + ",".join(str(k * k + 1) for k in range(12))), 4096)
    assert q["theta_family"]["spec"] == "quadratic" and q["theta_family"]["theta_total"] == "n**(3/2)"
    assert q["theta_family"]["same_lags_for_n"] == [123, 145]                 # next lag 12^2 + 1
    ssm = an.analyze(Pattern.from_spec("ssm"), 64)
    assert ssm["theta_basis"] == "closed form, for fixed lags" and ssm["theta_family"] is None
    power2 = an.analyze(Pattern.from_spec("power2"), 64)
    assert power2["theta_basis"] == "closed form" and power2["theta_family"] is None
    for spec in ("power:1000", "exponent:0.1"):     # the lag 1 alone up to n = 1000 / 1024, then more: not fixed
        r = an.analyze(Pattern.from_spec(spec), 100)
        assert r["theta_basis"] == "closed form" and r["theta_family"] is None, spec
    assert an.analyze(Pattern.from_spec("exponent:0"), 64)["theta_basis"] == "closed form, for fixed lags"
    # exponent:alpha is floor(k^(1/alpha)): k^2 gives 1, 4, 9, 16 for 17 <= n <= 25, k^4 1, 16, 81 for 82 <= n <= 256
    for lags, n, family, span in (("1,4,9,16", 20, "exponent:0.5", [17, 25]), ("1,16,81", 100, "exponent:0.25",
                                                                                [82, 256])):
        r = an.analyze(Pattern.from_spec("lags:" + lags), n)["theta_family"]
        assert (r["spec"], r["same_lags_for_n"]) == (family, span)


# -- search ------------------------------------------------------------------------------------------
def test_search_keeps_exactly_the_patterns_within_bounds():
    """Filtering and ranking against the analyze() reports of every candidate."""
    from glrtheory.analysis.search import search

    def within(r, max_decode=np.inf, max_cache=np.inf, max_hops=None, min_rank=0):
        hops_ok = max_hops is None or (r["hop_diameter"] is not None and r["hop_diameter"] <= max_hops)
        return (r["decode_cost_max"] <= max_decode and r["cache_peak"] <= max_cache and hops_ok
                and r["hankel_rank_max"] >= min_rank)

    n = 512
    specs = ["ssm", "power2", "fenwick", "blocks", "window:8", "attention", "quadratic", "blocks:64+ssm"]
    reports = {s: an.analyze(Pattern.from_spec(s), n, rank=True, rank_method="flow") for s in specs}
    for bounds in [dict(max_cache=40), dict(max_hops=12), dict(max_decode=12, min_rank=5),
                   dict(min_rank=30, max_cache=100), dict()]:
        out = search([Pattern.from_spec(s) for s in specs], n, rank_method="flow", **bounds)
        got = [r["spec"] for r in out["matches"]]
        assert sorted(got) == sorted(s for s, r in reports.items() if within(r, **bounds)), bounds
        costs = [reports[s]["nnz_a"] + reports[s]["nnz_b"] for s in got]
        assert costs == sorted(costs)
        assert len(out["matches"]) + len(out["rejected"]) == len(specs) and not out["skipped"]
    rejected = {r["spec"]: r for r in search([Pattern.from_spec("ssm")], n, min_rank=2)["rejected"]}
    assert rejected["ssm"]["failed"] == "min_rank" and "hankel_rank_max" not in rejected["ssm"]  # cache 1 < 2


def test_search_lists_what_it_cannot_evaluate_and_checks_bounds():
    from glrtheory.analysis.search import family_grid, search

    small = Pattern.from_sets([[0], [1], [2]], [[], [0], [1]])
    out = search([small, Pattern.from_spec("ssm")], 64, max_cache=4)
    assert out["skipped"] == [{"spec": "custom", "reason": "pattern 'custom' is defined only up to n=3, got n=64"}]
    assert [r["spec"] for r in out["matches"]] == ["ssm"]
    with pytest.raises(GLRError, match="max_cache must be a non-negative integer"):
        search([small], 3, max_cache=-1)
    assert family_grid("window", 100) == [f"window:{2**k}" for k in range(7)]
    assert family_grid("exponent", 8)[:3] == ["exponent:0", "exponent:0.05", "exponent:0.1"]
    assert family_grid("blocks", 8, [3, 5]) == ["blocks:3", "blocks:5"]
    with pytest.raises(GLRError, match="no parametric search for family 'fenwick'"):
        family_grid("fenwick", 8)


def _rank_work(spec: str, n: int, method: str) -> int:
    """The work one rank pays alone, from a fresh cache (a kept rank costs nothing)."""
    from glrtheory.analysis.hankel import rank_and_error_bound
    from glrtheory.analysis.limits import WorkBudget

    an.clear_caches()
    budget = WorkBudget(2**62, "unlimited")
    rank_and_error_bound(Pattern.from_spec(spec), n, method, budget=budget)
    return budget.spent


@pytest.mark.parametrize("method", ["exact", "flow"])
def test_search_ranks_share_a_budget_to_the_step(monkeypatch, method):
    """RANKS_MAX_WORK is a search's ranks' total, to the step: a budget of exactly power2's, quadratic's and ssm's
    work runs them, and skips attention between them with a reason naming the limit and what was left; one step
    less skips ssm too. The rows that ran equal those of a search within the default budget; kept ranks cost none."""
    from glrtheory.analysis import hankel, search as search_module

    n, specs = 64, ["power2", "quadratic", "attention", "ssm"]
    patterns = [Pattern.from_spec(s) for s in specs]
    work = {s: _rank_work(s, n, method) for s in specs}
    assert work["attention"] > work["ssm"] > 0
    an.clear_caches()
    free = search_module.search(patterns, n, min_rank=1, rank_method=method)
    assert not free["skipped"] and free["rank_work"]["spent"] == sum(work.values())
    fits = work["power2"] + work["quadratic"] + work["ssm"]
    for limit, ran in [(fits, ["ssm", "power2", "quadratic"]), (fits - 1, ["power2", "quadratic"])]:
        monkeypatch.setitem(hankel.RANKS_MAX_WORK, method, limit)
        an.clear_caches()
        out = search_module.search(patterns, n, min_rank=1, rank_method=method)
        assert out["matches"] == [r for r in free["matches"] if r["spec"] in ran]
        assert [r["spec"] for r in out["skipped"]] == ["attention", "ssm"][:len(specs) - len(ran)]
        left = limit - work["power2"] - work["quadratic"]
        assert out["skipped"][0]["reason"] == (
            f"the {'exact' if method == 'exact' else 'max-flow'} Hankel rank of 'attention' at n={n} needs more than "
            f"the {left} steps left of the search's rank work limit RANKS_MAX_WORK[{method!r}] = {limit}; "
            f"rank it alone (glr analyze --rank --rank-method {method}) or search fewer candidates")
        spent = work["power2"] + work["quadratic"] + (work["ssm"] if "ssm" in ran else 0)
        assert out["rank_work"] == {"method": method, "spent": spent, "limit": limit}
    monkeypatch.setitem(hankel.RANKS_MAX_WORK, method, 0)       # every rank kept: nothing to pay
    again = search_module.search(patterns[:2], n, min_rank=1, rank_method=method)     # the same Pattern objects
    assert again["matches"] == [r for r in free["matches"] if r["spec"] in ("power2", "quadratic")]
    assert again["rank_work"]["spent"] == 0 and not again["skipped"]
    an.clear_caches()


@pytest.mark.parametrize("method", ["exact", "flow"])
def test_compare_ranks_share_a_budget_to_the_step(monkeypatch, method):
    """A compare's ranks share RANKS_MAX_WORK too: with exactly power2's and ssm's work, attention between them is
    skipped with a reason naming the limit and what was left, and ssm after it still ranks; one step less skips
    ssm too. Every other key of the rows equals that of a compare within the default budget; a budget given is the
    one paid (a fresh one each call otherwise); without rank=True nothing is paid."""
    from glrtheory.analysis import hankel

    n, specs = 64, ["power2", "attention", "ssm"]
    patterns = [Pattern.from_spec(s) for s in specs]
    work = {s: _rank_work(s, n, method) for s in specs}
    an.clear_caches()
    free = an.compare(patterns, n, rank=True, rank_method=method)
    assert not any("skipped" in r for r in free) and all(r["hankel_rank_max"] > 0 for r in free)
    fits = work["power2"] + work["ssm"]
    for limit, ranked in [(fits, ["power2", "ssm"]), (fits - 1, ["power2"])]:
        monkeypatch.setitem(hankel.RANKS_MAX_WORK, method, limit)
        an.clear_caches()
        rows = an.compare(patterns, n, rank=True, rank_method=method)
        left = limit - work["power2"]
        assert rows[1]["skipped"] == {"hankel_rank_max": (
            f"the {'exact' if method == 'exact' else 'max-flow'} Hankel rank of 'attention' at n={n} needs more than "
            f"the {left} steps left of the compare's rank work limit RANKS_MAX_WORK[{method!r}] = {limit}; "
            f"rank it alone (glr analyze --rank --rank-method {method}) or compare fewer patterns")}
        for row, want in zip(rows, free):
            skipped = row.pop("skipped", {})
            if row["spec"] in ranked:
                assert row == want and not skipped
            else:
                assert list(skipped) == ["hankel_rank_max"]
                assert row["hankel_rank_max"] is None and row["hankel_rank_error_bound"] is None
                assert {k: v for k, v in row.items() if k not in an.RANK_KEYS} == {
                    k: v for k, v in want.items() if k not in an.RANK_KEYS}
    an.clear_caches()
    budget = an.compare_rank_budget(method)
    an.compare(patterns[:1], n, rank=True, rank_method=method, rank_budget=budget)
    assert budget.spent == work["power2"] and budget.total == fits - 1
    an.compare(patterns, n, rank_method=method, rank_budget=budget)
    assert budget.spent == work["power2"]
    an.clear_caches()


def test_a_rank_refused_by_its_budget_pays_the_work_it_did():
    """fenwick's exact rank at n = 64 visits several cuts: one step less than its work refuses it after paying
    for the cuts it ranked (never past the total, so refused ranks cannot add up past it), and keeps nothing."""
    from glrtheory.analysis.limits import WorkBudget

    p, full = Pattern.from_spec("fenwick"), _rank_work("fenwick", 64, "exact")
    want = an.exact_rank_max(p, 64)
    budget = WorkBudget(full - 1, "a test budget")
    an.clear_caches()
    with pytest.raises(GLRError, match=f"needs more than the {full - 1} steps left of a test budget$"):
        an.exact_rank_max(p, 64, budget=budget)
    assert 0 < budget.spent <= full - 1
    budget = WorkBudget(full, "a test budget")
    assert an.exact_rank_max(p, 64, budget=budget) == want and budget.spent == full
    an.clear_caches()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal, progress, bar", [(True, True, True), (False, True, False), (True, False, False)])
def test_search_and_compare_draw_a_bar_on_a_terminal_only_when_asked(monkeypatch, terminal, progress, bar):
    from glrtheory.analysis.search import search

    patterns = [Pattern.from_spec(s) for s in ("ssm", "power2")]
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    out = search(patterns, 64, max_cache=4, progress=progress)
    assert [r["spec"] for r in out["matches"]] == ["ssm"]
    assert ("candidates:   0%|          | 0/2" in err.getvalue()) == bar
    assert [r["cache_peak"] for r in an.compare(patterns, 64, progress=progress)] == [1, 32]
    assert ("patterns:   0%|          | 0/2" in err.getvalue()) == bar


def test_custom_fixed_lags_are_fitted_and_say_so():
    r = an.analyze(Pattern.from_lags((0, 1), (3, 9, 27, 81)), 512)        # no closed form: a custom lag list
    assert r["theta_basis"] == "fitted, for fixed lags"
    assert (r["theta_total"], r["theta_decode"], r["theta_cache"]) == ("n", "1", "1")
    assert r["theta_family"] is None                                      # A is not {t}: no family to name


def test_fit_on_a_short_range_uses_enough_lengths():
    """A first-order pattern given as sets at n = 64 has 4 fit lengths (8..64); a fit over only the top
    two of them let n^(3/4) log n beat n (two points fit any slope-matching class)."""
    from glrtheory.analysis.fit import fit_classes

    p = Pattern.from_sets([[t] for t in range(64)], [[t - 1] if t else [] for t in range(64)])
    fit = fit_classes(p, 64)
    assert fit["points"] == 4 and fit["total"]["class"] == "n"


@pytest.mark.parametrize("a_lags", [(0, 2), (0, 1, 3), (1, 2), (0, 1, 2)])
def test_lag_interval_answers_match_the_generic_ones_for_gapped_a_lags(a_lags):
    """A lag set with a gap ({0, 2}, {0, 1, 3}) or without 0 is no interval: the lag overrides must agree
    with the table-based answers, and the interval strategies refuse or give the BFS answer."""
    from glrtheory.patterns.support import Support, TableSupport

    n = 20
    p = Pattern.from_lags(a_lags, (1, 4))
    sa = p.support_a(n)
    generic = TableSupport(n, sa.table(), sa.strict)
    for question in ("interval_start", "interval_end"):
        got, want = getattr(sa, question)(), getattr(Support, question)(generic)
        assert (got is None and want is None) or np.array_equal(got, want), question
    H = graph.hop_matrix(graph.dependency_graph(p, n))[np.triu_indices(n)]
    want = None if (H < 0).any() else int(H.max())
    for method in ("intervals", "mirrored"):
        try:
            assert an.hop_diameter(p, n, method=method) == want, method
        except an.HopMethodError:
            pass


def test_rank_near_an_anchor_is_the_rank_at_that_cut():
    """``_Sketch.rank_near`` (the sketch moved from an anchor cut by low-rank updates) gives the generic
    rank at every cut on both sides of the anchor, including one step away."""
    from glrtheory.analysis._rank_exact import _Sketch

    for spec, n, anchor in [("power2", 96, 40), ("quadratic", 96, 50), ("window:9+fenwick", 96, 30)]:
        p = Pattern.from_spec(spec)
        want = an.hankel_profile(p, n, method="flow")
        sketch = _Sketch(p, n, seed=0)
        sketch.rank(anchor)
        sketch.anchor()
        got = [sketch.rank_near(t) for t in range(anchor - 6, anchor + 7)]
        assert got == want[anchor - 6: anchor + 7].tolist(), spec


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 9])
def test_cut_bounds_are_the_live_set_and_the_block_shape(n):
    """cut_bounds(t) = min(|L(t)|, t + 1, n - 1 - t): the block M[t+1:, :t+1] is (n-1-t) x (t+1).
    Attention reaches it at every cut, so its exact rank is certain (error bound 0)."""
    p = Pattern.from_spec("attention")
    live = an.live_profile(p, n)
    want = [min(int(live[t]), t + 1, n - 1 - t) for t in range(n - 1)]
    assert an.cut_bounds(p, n).tolist() == want
    assert an.hankel_profile(p, n).tolist() == want
    assert an.exact_rank_max(p, n) == (n // 2, 0.0)


def test_exact_analysis_accepts_exactly_its_length_limit():
    """n = ANALYZE_MAX_N itself is accepted (a lag set needs no table), n + 1 is refused."""
    from glrtheory.analysis import ANALYZE_MAX_N

    p = Pattern.from_spec("ssm")
    assert an.nnz(p, ANALYZE_MAX_N) == (ANALYZE_MAX_N, ANALYZE_MAX_N - 1)
    with pytest.raises(GLRError, match=r"limited to n <= 2\^24"):
        an.nnz(p, ANALYZE_MAX_N + 1)
    an.clear_caches()


def test_the_sketch_arrays_refusal_names_the_largest_n_whose_arrays_fit(monkeypatch):
    """The exact rank's max refused for its sketch arrays (n x K entries, K the largest cut bound: n / 2 for attention,
    so 2 n^2 / 4 <= limit) names the largest n whose arrays fit, and that n runs: the hint once came from the whole
    profile's work, smaller (1209 where 4096 ran)."""
    monkeypatch.setattr(_rank_exact, "EXACT_RANK_MAX_ENTRIES", 800)     # n * (n // 2) <= 800: n = 40
    p = Pattern.from_spec("attention")
    assert _rank_exact.exact_max(p, 40, 0)[0] == 20
    sweep, step, per_cut, _ = _rank_exact._exact_costs(p, 40)          # the whole profile at 40 over the work limit
    monkeypatch.setattr(_rank_exact, "EXACT_RANK_MAX_WORK", sweep + step * 40 + int(per_cut.sum()) - 1)
    with pytest.raises(GLRError, match="needs 820 entries, over the limit 800; the largest n whose sketch arrays fit "
                                       "is 40$"):
        _rank_exact.exact_max(p, 41, 0)


def test_the_error_bound_is_a_probability():
    """The union bound over many visited cuts can exceed 1 (blocks:16 at n = 65536 summed to 1.9998); reported capped
    at 1, as an upper bound on a probability."""
    rank, bound = _rank_exact.exact_max(Pattern.from_spec("blocks:16"), 65536, 0)
    assert rank == 8 and bound == 1.0
    rank, bound = _rank_exact.exact_max(Pattern.from_spec("blocks:16"), 4096, 0)
    assert rank == 8 and 0 < bound < 1


def test_a_fit_held_to_at_least_linear():
    """Over a short range ``m^(4/5) (log m)^2`` passes for a power near 1; the readout's fit, which reads every
    position, is held to exponents >= 1 (``window:64+fenwick`` was reported ``n**(4/5)*log(n)**2``)."""
    from fractions import Fraction

    from glrtheory.analysis.fit import fit_class
    ms = [256 * 2**k for k in range(5)]
    ys = [m ** 0.8 * np.log(m) ** 2 for m in ms]
    assert fit_class(ms, ys)["class"] == "n**(4/5)*log(n)**2"
    assert fit_class(ms, ys, least=Fraction(1))["class"] == "n"                   # 4/5 and 1/5 left out
    assert fit_class(ms, [m**1.2 for m in ms], least=Fraction(1))["class"] == "n**(6/5)"   # above: as before
    assert an.analyze(Pattern.from_spec("window:64+fenwick"), 4096)["readout"]["theta"] == "n"


# -- small patterns exhaustively, against breadth-first search over the explicit sets ---------------------------
def sets_hops(A, B, n):
    """``H[s][t]`` = hops(s -> t) (None if unreachable) by breadth-first search over the sets themselves: level 0 is
    {t : s in A(t)}, level k + 1 the states not yet seen with a B-predecessor in level k."""
    H = [[None] * n for _ in range(n)]
    for s in range(n):
        level, seen, k = {t for t in range(n) if s in A[t]}, set(), 0
        while level:
            for t in level:
                H[s][t] = k
            seen |= level
            level = {t for t in range(n) if t not in seen and any(x in level for x in B[t])}
            k += 1
    return H


def sets_full_field(A, B, n):
    """Every R(t) = A(t) | union of R(s) over s in B(t) is all of {0..t} (the definition, in order of t)."""
    R = []
    for t in range(n):
        R.append(set(A[t]).union(*(R[s] for s in B[t])))
    return all(R[t] == set(range(t + 1)) for t in range(n))


def check_hops_exactly(p, n):
    """The diameter (auto and every strategy that does not refuse), the full receptive field, the lag profile and
    the total cost against the set references."""
    A, B = p.sets(n)
    assert an.total_cost(p, n) == sum(len(x) for x in A) + sum(len(x) for x in B)
    H = sets_hops(A, B, n)
    pairs = [H[s][t] for s in range(n) for t in range(s, n)]
    want = None if None in pairs else max(pairs)
    assert an.full_receptive_field(p, n) == sets_full_field(A, B, n) == (want is not None), (A, B)
    assert an.hop_diameter(p, n) == want, (A, B)
    assert_every_strategy_gives(p, n, want, A, B)
    f = an.hop_profile(p, n)
    if f is not None:                       # lag patterns: hops(s -> s + d) does not depend on s
        assert f.tolist() == [-1 if H[0][d] is None else H[0][d] for d in range(n)], (A, B)


def test_every_pattern_up_to_n_3_matches_the_sets():
    """Every pattern of length 1, 2 and 3 (every A mask with its diagonal or not, every B mask: 1 + 8 + 512):
    hop diameter by each strategy, full receptive field, total cost, against BFS over the sets. Pins the boundary
    terms of ``full_receptive_field``: an A(t) holding max B(t) but missing one later input, an interval A(t)
    starting one past max B(t) + 1, and a B lag set with an A table whose rows t below the smallest lag (B(t)
    empty, max B(t) = -1) must hold all of 0..t."""
    for n in (1, 2, 3):
        a_cells = [(t, s) for t in range(n) for s in range(t + 1)]
        b_cells = [(t, s) for t in range(n) for s in range(t)]
        for a_bits in range(2 ** len(a_cells)):
            for b_bits in range(2 ** len(b_cells)):
                A, B = np.zeros((n, n), bool), np.zeros((n, n), bool)
                for i, cell in enumerate(a_cells):
                    A[cell] = a_bits >> i & 1
                for i, cell in enumerate(b_cells):
                    B[cell] = b_bits >> i & 1
                check_hops_exactly(Pattern.from_masks(A, B), n)


def test_small_lag_patterns_match_the_sets():
    """Every A lag set in {0..3} with every B lag set in {1..4} at n = 1, 3, 8: the lag DP, the profile, and
    ``full_receptive_field`` with lag sets on both sides (lags ({1}, {1}) at n = 1 leave h_0 without input)."""
    lag_sets = [[j for j in range(5) if bits >> j & 1] for bits in range(32)]
    for a in [s for s in lag_sets if s and max(s) <= 3]:
        for b in [s for s in lag_sets if 0 not in s]:
            for n in (1, 3, 8):
                check_hops_exactly(Pattern.from_lags(a, b), n)


def test_random_small_patterns_match_the_sets():
    """Random patterns at n = 4..9 of three shapes: A(t) intervals {lo(t)..t} with random B (the interval
    strategies and the interval terms), any A and B, and any A with a B lag set (``full_receptive_field``'s lag
    branch for B with a table for A)."""
    rng = np.random.default_rng(6)
    for i in range(600):
        n = int(rng.integers(4, 10))
        B = np.tril(rng.random((n, n)) < rng.uniform(0.1, 0.7), -1)
        if i % 3 == 0:
            lo = [int(rng.integers(0, t + 1)) for t in range(n)]
            A = np.array([[lo[t] <= s <= t for s in range(n)] for t in range(n)])
            p = Pattern.from_masks(A, B)
        elif i % 3 == 1:
            p = Pattern.from_masks(np.tril(rng.random((n, n)) < rng.uniform(0.2, 1)), B)
        else:                               # rules are first evaluated at n = 16: A drawn at 16, read up to n
            A = np.tril(rng.random((16, 16)) < rng.uniform(0.3, 1))
            lags = np.array(sorted({int(x) for x in rng.integers(1, n + 1, size=2)}))

            def a_rule(t, A=A):                         # lags t - s of the sources s in row t of A
                return [x - np.flatnonzero(A[x]) for x in t]

            def b_rule(t, lags=lags):
                return lags, lags[None, :] <= t[:, None]

            p = Pattern.from_rule(a_rule, b_rule, kind="lags", spec=f"rule {i}")
            assert an.supports(p, n)[1].lags is not None
        check_hops_exactly(p, n)


def test_work_limits_are_inclusive_and_counted_as_documented():
    """``breadth_first`` runs at exactly n (2n + nnz) = max_work and refuses one less, naming the largest m with
    m (2m + nnz(m)) within the limit (counted from the sets); its refusal adds "the interval propagation also
    exceeded" only when one did. ``mirrored`` on ssm at n = 3 takes 12 worklist steps, worked by hand: level 1
    scans the 3 successor lists (2 + 2 + 1) and reads 2 predecessors, level 2 scans 2 lists (2 + 1) and reads 1,
    level 3 scans 1 (1); 12 runs, 11 is refused with HopLimitError, never an answer."""
    def work(p, m):
        A, B = p.sets(m)
        return m * (2 * m + sum(len(x) for x in A) + sum(len(x) for x in B))

    q = Pattern.from_sets([[0], [0, 1], [0, 2], [1, 3]], [[], [0], [1], [2]])  # no interval method applies
    w = work(q, 4)
    assert w == 4 * (8 + 7 + 3)
    assert an.hop_diameter(q, 4, method="bfs", max_work=w) == an.hop_diameter(q, 4, max_work=w) == 1  # u_0 -> h_3
    for method in ("bfs", None):
        with pytest.raises(an.HopMethodError, match=f"n\\*\\(2n\\+nnz\\) = {w} steps, over the limit {w - 1}; "
                                                   "the largest n that fits is 3$"):
            an.hop_diameter(q, 4, method=method, max_work=w - 1)
    assert work(q, 3) <= w - 1
    f = Pattern.from_spec("fenwick")
    fits = max(m for m in range(1, 64) if work(f, m) <= 500)
    with pytest.raises(an.HopMethodError, match=f"over the limit 500; the largest n that fits is {fits}; the "
                                               "interval propagation also exceeded 500 steps$"):
        an.hop_diameter(f, 64, max_work=500)
    ssm = Pattern.from_spec("ssm")
    assert an.hop_diameter(ssm, 3, method="mirrored", max_work=12) == 2
    with pytest.raises(_hop_impls.HopLimitError, match="^the mirrored interval propagation of 'ssm' at n=3 exceeded "
                                                      "11 steps$"):
        an.hop_diameter(ssm, 3, method="mirrored", max_work=11)
    nnz_b = sum(len(x) for x in f.sets(64)[1])
    with pytest.raises(_hop_impls.HopLimitError, match="mirrored interval propagation of 'fenwick' at n=64"):
        an.hop_diameter(f, 64, method="mirrored", max_work=64 + nnz_b - 1)   # level 1 alone scans every list


def test_the_interval_pass_counts_n_plus_nnz_b_and_refuses_a_gap_at_once():
    """``intervals`` is one pass over the B-lists: n + nnz_b steps (blocks:8 at n = 64, nnz_b counted from the
    sets), run at exactly that, refused one below; a pattern whose
    inputs within one hop of some state leave a gap (A(t) = {t}, B(3) = {1}: h_3 reads u_1 and u_3, not u_2) is
    refused as not intervals, whatever the work allowed."""
    p = Pattern.from_spec("blocks:8")
    steps = 64 + sum(len(x) for x in p.sets(64)[1])
    assert an.hop_diameter(p, 64, method="intervals", max_work=steps) == 7
    with pytest.raises(_hop_impls.HopLimitError, match=f"n \\+ nnz_b = {steps} steps, over the limit {steps - 1}$"):
        an.hop_diameter(p, 64, method="intervals", max_work=steps - 1)
    gap = Pattern.from_sets([[0], [1], [2], [3]], [[], [0], [1], [1]])
    with pytest.raises(an.HopMethodError, match="the inputs reaching a state of 'custom' do not form intervals"):
        an.hop_diameter(gap, 4, method="intervals")


def test_every_table_read_is_within_the_table_limit(monkeypatch):
    """Every index table the hop analysis reads is read under ``TABLE_MAX_ENTRIES`` (its memory guard), so a table
    over the limit is refused (WorkLimitError naming the limit) by each reader: the B table (``b_lists`` of the
    interval methods, ``full_receptive_field``), the A table (the interval tests of both methods and of
    ``full_receptive_field``, the BFS)."""
    from glrtheory.analysis import _reach, hops
    from glrtheory.errors import WorkLimitError

    for module in (_hop_impls, _reach, hops):
        monkeypatch.setattr(module, "TABLE_MAX_ENTRIES", 50)
    n = 12
    diagonal, dense = np.eye(n, dtype=bool), np.tril(np.ones((n, n), dtype=bool))
    chain = np.eye(n, k=-1, dtype=bool)
    diagonal[3, 2] = chain[3, 0] = True                                # neither side a lag set; A(3) = {2, 3}
    dense[5, 0] = False
    wide_b = Pattern.from_masks(diagonal, np.tril(dense, -1))          # A 12 x 2, B 12 x 11 entries
    wide_a = Pattern.from_masks(dense, chain)                          # A 12 x 12, B 12 x 2
    assert all(sup.lags is None for p in (wide_b, wide_a) for sup in an.supports(p, n))
    for p, width in ((wide_b, 11), (wide_a, 12)):
        calls = [lambda: an.full_receptive_field(p, n)] + [
            lambda m=m: an.hop_diameter(p, n, method=m) for m in ("intervals", "mirrored", "bfs")]
        for call in calls:
            with pytest.raises(WorkLimitError, match=f"would hold {n}x{width}={n * width} entries, over the limit 50"):
                call()


def test_refusals_name_the_problem():
    """The messages of bad input and of each strategy's refusal, in full."""
    p = Pattern.from_spec("fenwick")
    with pytest.raises(GLRError, match="^unknown hop method 'dfs'; choose one of lags, intervals, mirrored, bfs$"):
        an.hop_diameter(p, 8, method="dfs")
    with pytest.raises(GLRError, match="^a hop method must be a name or a callable, got int$"):
        an.hop_diameter(p, 8, method=3)
    with pytest.raises(GLRError, match="^expected a Pattern, got str$"):
        an.hop_diameter("fenwick", 8)
    gapped = Pattern.from_sets([[0], [0], [2]], [[], [], [0]])           # A(1) = {0} and u_1 used by no state
    with pytest.raises(an.HopMethodError, match=re.escape("the 'intervals' hop method needs A(t) = {lo(t), ..., t}; "
                                                          "'custom' differs")):
        an.hop_diameter(gapped, 3, method="intervals")
    with pytest.raises(an.HopMethodError, match=re.escape("the 'mirrored' hop method needs {t : s in A(t)} = "
                                                          "{s, ..., hi(s)}; 'custom' differs")):
        an.hop_diameter(gapped, 3, method="mirrored")
    skip = Pattern.from_sets([[0], [1], [2]], [[], [], [0]])              # h_0 -> h_2 skips h_1
    with pytest.raises(an.HopMethodError, match="^the states reached from a state of 'custom' do not form intervals$"):
        an.hop_diameter(skip, 3, method="mirrored")


def test_the_fft_refusal_names_the_dp_work_and_the_n_that_fits(monkeypatch):
    """Over both lag limits: the DP's n |L| = 200 * 2 and the largest n with n |L| <= max_work, 21 // 2 = 10; the
    same refusal by the auto choice, by name and from ``lag_distances`` itself (each passes max_work on)."""
    monkeypatch.setattr(_hop_impls, "HOPS_MAX_FFT_LEVELS", 2)
    p = Pattern.from_spec("lags:5,7")
    for call in (lambda: an.hop_diameter(p, 200, max_work=21), lambda: an.hop_diameter(p, 200, "lags", 21),
                 lambda: an.lag_distances(p, 200, max_work=21)):
        with pytest.raises(_hop_impls.HopLimitError, match=r"^hops of a lag set of size 2 at n=200 need more than 2 "
                                                           r"FFT levels, and the DP n\*\|lags\| = 400 is over the "
                                                           r"limit 21; n = 10 fits$"):
            call()


def test_every_strategy_validates_max_work():
    """Each strategy, by name or called directly, refuses max_work = 0 and a float, and answers at max_work = 1000
    (fenwick at n = 8: 3 hops, where the lag and interval strategies refuse its structure)."""
    p, q = Pattern.from_spec("fenwick"), Pattern.from_spec("ssm")
    for name, fn in an.HOP_METHODS.items():
        for bad in (0, 1.5):
            with pytest.raises(GLRError, match="max_work"):
                an.hop_diameter(p, 8, method=name, max_work=bad)
            with pytest.raises(GLRError, match="max_work"):
                fn(q, 8, max_work=bad)
        assert fn(q, 8, max_work=1000) == 7
    want = ref_diameter(p, 8)
    assert an.breadth_first(p, 8, max_work=1000) == an.mirrored_propagation(p, 8, max_work=1000) == want == 3


def test_strategy_docstrings_hold_their_shared_sections():
    """Each strategy's docstring: its summary, then Parameters, Returns, Raises (from ``_CONTRACTS``), then its own
    Notes and Examples, each section once, in that order, indented by four spaces."""
    for name, fn in an.HOP_METHODS.items():
        doc = fn.__doc__
        heads = [doc.index(f"\n\n    {h}\n    {'-' * len(h)}\n") for h in
                 ("Parameters", "Returns", "Raises", "Notes", "Examples")]
        assert heads == sorted(heads) and doc.count("----------\n") == 1, name
        assert "\n\n" not in doc[:heads[0]] and doc[:heads[0]].strip().endswith("."), name
    assert an.HOP_METHODS == {"lags": an.lag_distances, "intervals": an.interval_propagation,
                              "mirrored": an.mirrored_propagation, "bfs": an.breadth_first}
    assert ("    p : Pattern\n        Any pattern.\n    n : int\n        Sequence length.\n"
            "    max_work : int, optional\n        Largest ``n * (2n + nnz_a + nnz_b)`` (default ``HOPS_MAX_WORK``).\n"
            in an.breadth_first.__doc__)
    assert "    HopMethodError\n        When the work would exceed ``max_work``.\n" in an.breadth_first.__doc__
    assert ("    HopMethodError\n        When a side is not a lag set, or the work would exceed ``max_work``.\n"
            in an.lag_distances.__doc__)
