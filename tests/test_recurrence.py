"""Recurrence core: the two float64 references, readout, universality and fitting."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glrtheory import GLRError, Pattern, best_approximation, factor, mixing_matrix, solve
from glrtheory.recurrence import (dense_coefficients, mixing_jacobian, random_coefficients,
                                  table_coefficients)
from helpers import BUILTIN_SPECS, rel_err, specs
from naive_patterns import naive_union


def naive_solve(spec, a, b, u):
    """Token by token in plain Python loops (one batch element), with the sets A(t), B(t) taken from
    each family's definition (tests/naive_patterns.py), not from the library. Table rows are sorted,
    so slot j of row t holds the j-th smallest element of the set."""
    n = u.shape[0]
    a_sets, b_sets = naive_union(spec, n)
    h = np.full_like(u, np.nan)
    for t in range(n):
        acc = np.zeros(u.shape[1])
        for j, s in enumerate(a_sets[t]):
            acc += a[t, j] * u[s]
        for j, s in enumerate(b_sets[t]):
            acc += b[t, j] * h[s]
        h[t] = acc
    return h


@pytest.mark.parametrize("spec", BUILTIN_SPECS)
@pytest.mark.parametrize("n", [1, 2, 63, 1000])
def test_references_agree(spec, n, rng):
    p = Pattern.from_spec(spec)
    batch = (2,) if n == 1000 else (2, 3)
    a, b = random_coefficients(p, n, rng, batch)
    u = rng.standard_normal(batch + (n, 3))
    h_seq = solve(p, a, b, u)
    assert np.isfinite(h_seq).all()
    if n <= 63:
        assert rel_err(h_seq[0, 0], naive_solve(spec, a[0, 0], b[0, 0], u[0, 0])) <= 1e-12
    h_dense = solve(p, a, b, u, method="dense")
    assert rel_err(h_seq, h_dense) <= 1e-12


@settings(max_examples=20)
@given(spec=specs, n=st.sampled_from([1, 2, 63]) | st.integers(1, 120), seed=st.integers(0, 2**32 - 1))
def test_references_agree_on_random_patterns(spec, n, seed):
    rng = np.random.default_rng(seed)
    p = Pattern.from_spec(spec)
    a, b = random_coefficients(p, n, rng)
    u = rng.standard_normal((n, 2))
    ref = naive_solve(spec, a, b, u)
    assert rel_err(solve(p, a, b, u), ref) <= 1e-12
    assert rel_err(solve(p, a, b, u, method="dense"), ref) <= 1e-12


def test_batch_broadcasting_and_padded_slots_ignored(rng):
    p = Pattern.from_spec("power2")
    n = 40
    a, b = random_coefficients(p, n, rng, (4,))   # padded slots hold NaN
    u = rng.standard_normal((n, 5))                # shared across the batch
    h = solve(p, a, b, u)
    assert h.shape == (4, n, 5) and np.isfinite(h).all()
    for i in range(4):
        assert rel_err(h[i], naive_solve("power2", a[i], b[i], u)) <= 1e-12


def test_readout_is_q_transpose_state(rng):
    p = Pattern.from_spec("fenwick")
    n, k, v = 30, 3, 4
    a, b = random_coefficients(p, n, rng)
    u = rng.standard_normal((n, k * v))
    q = rng.standard_normal((n, k))
    o = solve(p, a, b, u, q)
    h = solve(p, a, b, u).reshape(n, k, v)
    assert o.shape == (n, v)
    assert rel_err(o, np.stack([q[t] @ h[t] for t in range(n)])) <= 1e-12
    with pytest.raises(GLRError, match="readout"):
        solve(p, a, b, u, rng.standard_normal((n, 5)))


def test_mixing_matrix_is_the_impulse_response(rng):
    p = Pattern.from_spec("quadratic+window:2")
    n = 50
    a, b = random_coefficients(p, n, rng)
    A, B = dense_coefficients(*p.tables(n), np.nan_to_num(a), np.nan_to_num(b))
    M = mixing_matrix(p, a, b)
    assert rel_err(M, np.linalg.solve(np.eye(n) - B, A)) <= 1e-12
    a2, b2 = table_coefficients(*p.tables(n), A, B)
    assert rel_err(a2, np.nan_to_num(a)) == 0 and rel_err(b2, np.nan_to_num(b)) == 0


# -- universality ---------------------------------------------------------------------------------------
@settings(max_examples=30)
@given(n=st.sampled_from([1, 2, 63]) | st.integers(1, 80), seed=st.integers(0, 2**32 - 1))
def test_factor_round_trip(n, seed):
    rng = np.random.default_rng(seed)
    M = np.tril(rng.standard_normal((n, n)) / np.sqrt(n))
    M[np.diag_indices(n)] = rng.choice([-1, 1], n) * rng.uniform(0.5, 2, n)
    for form in ("recurrence", "direct"):
        f = factor(M, form)
        assert rel_err(mixing_matrix(f.pattern, f.a, f.b), M) <= 1e-10
    f = factor(M)
    A, B = dense_coefficients(*f.pattern.tables(n), f.a, f.b)
    assert np.array_equal(A, np.diag(np.diag(M)))      # A = D = diag(M)
    assert not np.triu(B).any()                        # B strictly lower triangular


def test_factor_bad_input():
    with pytest.raises(GLRError, match="non-zero diagonal"):
        factor(np.array([[1.0, 0], [2, 0]]))
    with pytest.raises(GLRError, match="causal"):
        factor(np.ones((3, 3)))
    with pytest.raises(GLRError, match="square"):
        factor(np.ones((2, 3)))
    with pytest.raises(GLRError, match="non-finite"):
        factor(np.array([[1.0, 0], [np.nan, 1]]))
    with pytest.raises(GLRError, match="form"):
        factor(np.eye(2), "other")


# -- fitting --------------------------------------------------------------------------------------------
def test_jacobian_matches_finite_differences(rng):
    p = Pattern.from_spec("lags:1,2+window:2")
    n = 9
    a, b = (np.nan_to_num(x) for x in random_coefficients(p, n, rng))
    J = mixing_jacobian(p, a, b)
    va, vb = p.tables(n)[0] >= 0, p.tables(n)[1] >= 0
    x0 = np.concatenate([a[va], b[vb]])
    eps = 1e-6
    for c in rng.choice(x0.size, 8, replace=False):
        xp, xm = x0.copy(), x0.copy()
        xp[c] += eps
        xm[c] -= eps
        cols = []
        for x in (xp, xm):
            aa, bb = np.zeros_like(a), np.zeros_like(b)
            aa[va], bb[vb] = x[: va.sum()], x[va.sum():]
            cols.append(mixing_matrix(p, aa, bb).ravel())
        assert rel_err(J[:, c], (cols[0] - cols[1]) / (2 * eps)) <= 1e-6


def test_best_approximation(rng):
    p = Pattern.from_spec("power2")
    n = 16
    a, b = random_coefficients(p, n, rng)
    exact = best_approximation(p, mixing_matrix(p, a, b))
    assert exact.residual <= 1e-10                     # realizable targets are recovered
    target = np.tril(rng.standard_normal((n, n))) + 2 * np.eye(n)
    rough = best_approximation(p, target, refine=False)
    fine = best_approximation(p, target)
    assert fine.residual <= rough.residual + 1e-12
    assert abs(fine.residual - np.linalg.norm(fine.M_hat - target)) <= 1e-9
    richer = best_approximation(Pattern.from_spec("exponent:1"), target)
    assert richer.residual <= 1e-8                     # a dense B realizes every causal M


# -- bad input ------------------------------------------------------------------------------------------
def test_solve_bad_input(rng):
    p = Pattern.from_spec("power2")
    n = 10
    a, b = random_coefficients(p, n, rng)
    u = rng.standard_normal((n, 2))
    with pytest.raises(GLRError, match=r"b must have shape \[\.\.\., 10, 4\]"):
        solve(p, a, b[:, :2], u)
    bad = b.copy()
    bad[5, 0] = np.inf
    with pytest.raises(GLRError, match="b holds a non-finite value"):
        solve(p, a, bad, u)
    with pytest.raises(GLRError, match="u holds a non-finite"):
        solve(p, a, b, np.where(np.arange(n)[:, None] == 3, np.nan, u))
    with pytest.raises(GLRError, match="real numeric"):
        solve(p, a.astype(complex), b, u)
    with pytest.raises(GLRError, match="do not broadcast"):
        solve(p, np.stack([a] * 3), np.stack([b] * 2), u)
    with pytest.raises(GLRError, match="method"):
        solve(p, a, b, u, method="fast")
    with pytest.raises(GLRError, match="expected a Pattern"):
        solve("power2", a, b, u)
    with pytest.raises(GLRError, match=r"u must have shape"):
        solve(p, a, b, np.ones(n))


def test_factor_refuses_inaccurate_results(rng):
    with pytest.raises(GLRError, match="non-finite"):
        factor(np.array([[1e-300, 0.0], [1.0, 1e-300]]))
    M = np.tril(rng.standard_normal((60, 60))) + 1e-3 * np.eye(60)
    with pytest.raises(GLRError, match="round-trip relative error"):
        factor(M)


def test_ragged_input_is_a_clear_error():
    p = Pattern.from_spec("ssm")
    with pytest.raises(GLRError, match="u is not a rectangular numeric array"):
        solve(p, np.ones((2, 1)), np.ones((2, 1)), [[1.0], [2.0, 3.0]])
    with pytest.raises(GLRError, match="refining a fit is limited to n <= 64"):
        best_approximation(p, np.eye(65))


def test_readout_refuses_q_with_another_number_of_positions(rng):
    """q needs one row per position: a single row must not broadcast over every t (einsum would)."""
    p = Pattern.from_spec("fenwick")
    n, k = 6, 3
    a, b = random_coefficients(p, n, rng)
    u = rng.standard_normal((n, 2 * k))
    for rows in (1, n - 1, n + 1):
        with pytest.raises(GLRError, match=r"readout q must have shape \[\.\.\., 6, k\]"):
            solve(p, a, b, u, rng.standard_normal((rows, k)))


@pytest.mark.parametrize("spec", ["power2", "attention", "window:3+fenwick"])
def test_random_coefficients_contract(spec, rng):
    """Padded slots hold NaN (a consumer that reads one fails loudly), valid a lie in [0.5, 1.5), and every
    row has sum_s |b[t, s]| < 1 (a contraction), for patterns with wide B rows (attention: t - 1 slots)."""
    p = Pattern.from_spec(spec)
    n = 40
    a, b = random_coefficients(p, n, rng, (3,))
    a_idx, b_idx = p.tables(n)
    assert (a_idx < 0).any() or (b_idx < 0).any()
    assert np.isnan(a[:, a_idx < 0]).all() and np.isnan(b[:, b_idx < 0]).all()
    valid_a = a[:, a_idx >= 0]
    assert ((valid_a >= 0.5) & (valid_a < 1.5)).all() and np.isfinite(b[:, b_idx >= 0]).all()
    assert (np.abs(np.where(b_idx >= 0, b, 0.0)).sum(axis=-1) < 1).all()


def test_refining_a_fit_is_allowed_at_n_64(rng):
    """The refine limit is n <= 64 inclusive (65 is refused in test_ragged_input_is_a_clear_error)."""
    p = Pattern.from_spec("ssm")
    a, b = random_coefficients(p, 64, rng)
    assert best_approximation(p, mixing_matrix(p, a, b)).residual <= 1e-10


def test_non_finite_coefficient_in_a_slot_reading_position_0_is_refused(rng):
    """ssm: a[0, 0] reads u_0 and b[1, 0] reads h_0 (index 0, not padding): inf there is refused."""
    p = Pattern.from_spec("ssm")
    n = 4
    a, b = random_coefficients(p, n, rng)
    assert p.tables(n)[0][0, 0] == 0 and p.tables(n)[1][1, 0] == 0
    u = rng.standard_normal((n, 2))
    bad_a, bad_b = a.copy(), b.copy()
    bad_a[0, 0], bad_b[1, 0] = np.inf, np.nan
    with pytest.raises(GLRError, match="a holds a non-finite value"):
        solve(p, bad_a, b, u)
    with pytest.raises(GLRError, match="b holds a non-finite value"):
        solve(p, a, bad_b, u)


def test_factor_tolerance_is_applied_exactly(monkeypatch):
    """The round-trip error equal to FACTOR_RTOL is accepted; FACTOR_RTOL below it is refused."""
    import glrtheory.recurrence as rec

    rng = np.random.default_rng(0)
    n = 30
    M = np.tril(rng.standard_normal((n, n))) + 3 * np.eye(n)
    f = factor(M)
    err = np.linalg.norm(mixing_matrix(f.pattern, f.a, f.b) - M) / np.linalg.norm(M)
    assert 0 < err <= rec.FACTOR_RTOL
    monkeypatch.setattr(rec, "FACTOR_RTOL", err)
    factor(M)
    monkeypatch.setattr(rec, "FACTOR_RTOL", err / 2)
    with pytest.raises(GLRError, match="round-trip relative error"):
        factor(M)
