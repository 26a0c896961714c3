"""The LTI layer (glrtheory.symbolic.lti*): every route checked against an independent one."""
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.signal
import sympy as sp
from hypothesis import given, settings, strategies as st

from glrtheory import GLRError, Pattern, mixing_matrix, solve
from glrtheory.symbolic.lti import Z, LTISystem
from glrtheory.symbolic import lti_poles as P
from glrtheory.symbolic import lti_realization as R
from glrtheory.symbolic import lti_stability as S

SETTINGS = settings(max_examples=12, deadline=None)


def rel(x, ref):
    return np.linalg.norm(np.asarray(x) - ref) / np.linalg.norm(ref)


def stable_coefficients(rng, lags, margin=0.9):
    """Random non-zero coefficients with sum |b_l| = margin < 1, so every pole has modulus < 1."""
    b = rng.uniform(0.2, 1.0, len(lags)) * rng.choice([-1, 1], len(lags))
    return dict(zip(lags, b * margin / np.abs(b).sum()))


def unit_impulse(n):
    x = np.zeros(n)
    x[0] = 1.0
    return x


def match(p, q):
    """Largest distance after pairing two multisets of complex numbers optimally."""
    d = np.abs(p[:, None] - q[None, :])
    i, j = scipy.optimize.linear_sum_assignment(d)
    return d[i, j].max()


lag_sets = st.sets(st.integers(1, 4), min_size=1, max_size=4).map(sorted)
many_lags = st.sets(st.integers(1, 40), min_size=1, max_size=8).map(sorted)


# -- impulse responses ----------------------------------------------------------------------------
@SETTINGS
@given(lags=lag_sets, seed=st.integers(0, 2**32 - 1), a_lags=st.sets(st.integers(0, 5), min_size=1).map(sorted))
def test_closed_form_equals_recurrence_equals_lfilter(lags, seed, a_lags):
    rng = np.random.default_rng(seed)
    a = dict(zip(a_lags, rng.uniform(0.5, 1.5, len(a_lags)) * rng.choice([-1, 1], len(a_lags))))
    s = LTISystem.from_lags(lags, a_lags, b=stable_coefficients(rng, lags), a=a)
    n = 60
    h = np.full(n, np.nan)
    h[:] = s.impulse_response(n)
    ref = scipy.signal.lfilter(*s.lfilter_coefficients(), unit_impulse(n))
    assert rel(h, ref) < 1e-10
    f = s.impulse_response_formula()
    closed = np.full(n, np.nan, dtype=complex)
    closed[:] = f.evaluate(n)
    assert np.abs(closed.imag).max() < 1e-10 * np.abs(ref).max()
    assert rel(closed.real, ref) < 1e-10


def test_closed_form_symbolic_lags_1_2():
    s = LTISystem.from_lags([1, 2])
    f = s.impulse_response_formula()
    head = s.impulse_response_symbolic(12)
    for t in range(12):
        assert sp.simplify(f(t) - head[t]) == 0
    # numbers substituted into the symbolic closed form agree with the recurrence
    vals = {sp.Symbol("b_1", real=True): sp.Rational(1, 2), sp.Symbol("b_2", real=True): sp.Rational(1, 5)}
    num = s.subs({"b_1": 0.5, "b_2": 0.2}).impulse_response(12)
    assert rel([float(sp.N(f.expr.subs(vals).subs(sp.Symbol("t", integer=True, nonnegative=True), t)))
                for t in range(12)], num) < 1e-12


def test_repeated_poles_closed_form():
    # (1 - z^-1/2)^-3: h_t = binom(t+2, 2) 2^-t
    H = 1 / (1 - sp.Rational(1, 2) / Z) ** 3
    s = LTISystem.from_transfer_function(H)
    f = s.impulse_response_formula()
    for t in range(20):
        assert sp.simplify(f(t) - sp.binomial(t + 2, 2) / 2**t) == 0
    assert sorted(s.poles()) == [sp.Rational(1, 2)] * 3


@SETTINGS
@given(lags=many_lags, seed=st.integers(0, 2**32 - 1), n=st.sampled_from([1, 2, 63, 1000]))
def test_recurrence_equals_lfilter_any_order(lags, seed, n):
    rng = np.random.default_rng(seed)
    s = LTISystem.from_lags(lags, b=stable_coefficients(rng, lags), a=float(rng.uniform(0.5, 2)))
    ref = scipy.signal.lfilter(*s.lfilter_coefficients(), unit_impulse(n))
    assert rel(s.impulse_response(n), ref) < 1e-10


def test_symbolic_head_equals_numeric_for_power2():
    rng = np.random.default_rng(1)
    s = LTISystem.from_pattern("power2", n=40)
    vals = stable_coefficients(rng, list(s.b_lags))
    head = s.impulse_response_symbolic(40)
    subs = {sp.Symbol(f"b_{l}", real=True): v for l, v in vals.items()}
    num = s.subs({f"b_{l}": v for l, v in vals.items()}).impulse_response(40)
    assert rel([float(e.subs(subs)) for e in head], num) < 1e-12


@pytest.mark.parametrize("spec,n", [("power2", 1), ("power2", 2), ("power2", 63), ("quadratic", 200),
                                    ("lags:1,3,8", 1000), ("ssm", 63)])
def test_against_solve_and_toeplitz(spec, n):
    rng = np.random.default_rng(n)
    p = Pattern.from_spec(spec)
    s = LTISystem.from_pattern(p, n=n, a=1.7)
    s = s.subs({f"b_{l}": v for l, v in stable_coefficients(rng, list(s.b_lags)).items()}) if s.b else s
    a, b = s.coefficient_tables(n)
    assert (a.shape, b.shape) == tuple(x.shape for x in p.tables(n))
    u = rng.standard_normal((n, 3))
    ref = solve(p, a, b, u)
    out = np.stack([scipy.signal.lfilter(*s.lfilter_coefficients(), u[:, k]) for k in range(3)], axis=1)
    assert rel(out, ref) < 1e-12
    assert rel(solve(p, a, b, unit_impulse(n)[:, None])[:, 0], s.impulse_response(n)) < 1e-12
    if n <= 200:
        assert rel(s.toeplitz_matrix(n), mixing_matrix(p, a, b)) < 1e-12


# -- poles, zeros, transfer function ----------------------------------------------------------------
@SETTINGS
@given(lags=many_lags, seed=st.integers(0, 2**32 - 1))
def test_poles_equal_companion_eigenvalues_and_numpy_roots(lags, seed):
    rng = np.random.default_rng(seed)
    s = LTISystem.from_lags(lags, b=stable_coefficients(rng, lags))
    with warnings.catch_warnings():
        warnings.simplefilter("error", P.IllConditionedWarning)
        poles = s.numeric_poles()
    _, den = s.numeric_coefficients()
    eig = np.linalg.eigvals(R.companion(s).toarray())
    assert poles.size == eig.size == s.order
    assert match(poles, eig) < 1e-8
    assert match(poles, np.roots(den)) < 1e-8
    assert match(poles, scipy.signal.tf2zpk(*s.lfilter_coefficients())[1]) < 1e-8


def test_exact_poles_and_zeros():
    s = LTISystem.from_lags([1, 2], a_lags=[0, 1], b={1: sp.Rational(1, 2), 2: sp.Rational(3, 16)},
                            a={0: 1, 1: sp.Rational(-1, 3)})
    # z^2 - z/2 - 3/16 = (z - 3/4)(z + 1/4)
    assert sorted(s.poles()) == [sp.Rational(-1, 4), sp.Rational(3, 4)]
    assert sorted(s.zeros()) == [0, sp.Rational(1, 3)]   # N(z) = z^2 - z/3
    sym = LTISystem.from_lags([1, 2])
    b1, b2 = sp.symbols("b_1 b_2", real=True)
    for p in sym.poles():
        assert sp.simplify(p**2 - b1 * p - b2) == 0
    rational5 = LTISystem.from_lags([1, 5], b={1: sp.Rational(1, 3), 5: sp.Rational(1, 7)})
    exact = np.array([complex(sp.N(p)) for p in rational5.poles()])
    assert match(exact, rational5.numeric_poles()) < 1e-12
    with pytest.raises(GLRError, match="limited to degree"):
        LTISystem.from_lags([1, 5]).poles()


def test_transfer_function_printing_and_parsing():
    s = LTISystem.from_pattern("power2", n=5, b={1: 0.5, 2: -0.25, 4: 0.125})
    H = s.transfer_function()
    assert sp.simplify(H - 1 / (1 - sp.Float(0.5) / Z + sp.Float(0.25) / Z**2 - sp.Float(0.125) / Z**4)) == 0
    text = s.transfer_function_string()
    assert text == "1/(1 - 0.5*z**-1 + 0.25*z**-2 - 0.125*z**-4)"
    assert sp.simplify(sp.sympify(text, locals={"z": Z}) - H) == 0
    for b, a, want in (({1: 1}, {0: 1}, "1/(1 - z**-1)"), ({1: -1.0}, {0: 1}, "1/(1 + z**-1)"),
                       ({}, {0: 1, 1: 1, 2: -1}, "1 + z**-1 - z**-2"),
                       ({2: 1}, {0: 2, 1: 1}, "(2 + z**-1)/(1 - z**-2)")):
        unit = LTISystem.from_lags(list(b), list(a), b=b, a=a)      # unit coefficients print without "1*"
        assert unit.transfer_function_string() == want
        assert sp.simplify(sp.sympify(want, locals={"z": Z}) - unit.transfer_function()) == 0
        assert "1 z" not in unit.latex() and "1.0 z" not in unit.latex()
    latex = LTISystem.from_pattern("power2", n=5)._repr_latex_()
    assert latex == "$\\displaystyle H(z) = \\frac{1}{1 - b_{1} z^{-1} - b_{2} z^{-2} - b_{4} z^{-4}}$"
    assert sp.latex(H)  # a sympy object: notebooks render it as LaTeX
    back = LTISystem.from_transfer_function(sp.sympify(text, locals={"z": Z}))
    assert all(np.array_equal(x, y) for x, y in zip(back.numeric_coefficients(), s.numeric_coefficients()))


def test_partial_fractions_reassemble():
    for s in (LTISystem.from_lags([1, 2]), LTISystem.from_lags([1, 3], b={1: sp.Rational(1, 2), 3: sp.Rational(1, 5)}),
              LTISystem.from_lags([1, 2], b={1: 0.5, 2: 0.25})):
        pf = s.partial_fractions()
        H = sp.nsimplify(s.transfer_function(), rational=True)
        assert sp.simplify(sp.together(pf - H)) == 0


# -- realizations --------------------------------------------------------------------------------
def test_companion_is_sparse_with_largest_lag_size():
    s = LTISystem.from_pattern("power2", n=2**12 + 1, b=0.01)
    A = R.companion(s)
    assert A.shape == (4096, 4096) and A.nnz == 13 + 4095
    assert np.array_equal(A[[0], :].toarray().nonzero()[1], [2**k - 1 for k in range(13)])


def test_symbolic_round_trip_and_controllability():
    for s in (LTISystem.from_lags([1, 2]), LTISystem.from_pattern("power2", n=5, a={0: sp.Symbol("g")}),
              LTISystem.from_lags([2, 3], a_lags=[0, 1])):
        for form in (R.controllable_form, R.observable_form):
            r = form(s, symbolic=True)
            back = R.from_realization(r)
            assert set(back.b) <= set(s.b) | set()
            for side in ("a", "b"):
                mine, theirs = getattr(s, side), getattr(back, side)
                for l in set(mine) | set(theirs):
                    assert sp.simplify(mine.get(l, 0) - theirs.get(l, 0)) == 0
            r2 = form(back, symbolic=True)
            assert sp.simplify(sp.Matrix(r2.A) - sp.Matrix(r.A)) == sp.zeros(*r.A.shape)
        rc = R.controllable_form(s, symbolic=True)
        assert R.is_controllable(rc) is sp.true
        assert R.is_observable(R.observable_form(s, symbolic=True)) is sp.true


def test_observability_detects_cancellation():
    b1, a1 = sp.symbols("b_1 a_1", real=True)
    s = LTISystem.from_lags([1], a_lags=[0, 1], a={0: 1})   # H = (1 + a_1 z^-1) / (1 - b_1 z^-1)
    cond = R.is_observable(R.controllable_form(s, symbolic=True))
    assert cond.subs({a1: -sp.Rational(1, 2), b1: sp.Rational(1, 2)}) is sp.false  # zero cancels the pole
    assert cond.subs({a1: sp.Rational(1, 3), b1: sp.Rational(1, 2)}) is sp.true
    num = s.subs({"a_1": -0.5, "b_1": 0.5})
    assert R.is_observable(R.controllable_form(num)) is False
    assert R.is_controllable(R.controllable_form(num)) is True


@pytest.mark.parametrize("seed", range(4))
def test_numeric_round_trip_up_to_similarity(seed):
    rng = np.random.default_rng(seed)
    lags = sorted(rng.choice(np.arange(1, 7), size=3, replace=False).tolist())
    s = LTISystem.from_lags(lags, a_lags=[0, 2], b=stable_coefficients(rng, lags), a=rng.uniform(0.5, 1, 2))
    A, B, C, D = R.controllable_form(s)
    T = rng.standard_normal((s.order, s.order)) + 3 * np.eye(s.order)
    Ti = np.linalg.inv(T)
    r1 = R.Realization(T @ A.toarray() @ Ti, T @ B, C @ Ti, D)      # an arbitrary realization of H
    back = R.from_realization(r1)                                     # -> transfer function -> system
    for l in set(s.b) | set(back.b):
        assert abs(float(s.b.get(l, 0)) - float(back.b.get(l, 0))) < 1e-9
    r2 = R.controllable_form(back.subs({}))                            # -> realization
    T2 = R.similarity(r1, r2)
    assert rel(T2 @ r1.A @ np.linalg.inv(T2), r2.A.toarray()) < 1e-8
    assert rel(T2 @ r1.B, r2.B) < 1e-8 and rel(r1.C @ np.linalg.inv(T2), r2.C) < 1e-8
    ob = R.observable_form(s)
    To = R.similarity(R.controllable_form(s), ob)
    assert rel(To @ A.toarray() @ np.linalg.inv(To), ob.A.toarray()) < 1e-9
    num, den = scipy.signal.ss2tf(r1.A, r1.B, r1.C, r1.D)
    ref_num, ref_den = s.numeric_coefficients()
    assert rel(den, ref_den) < 1e-9 and rel(num[0], ref_num) < 1e-9


# -- stability and memory --------------------------------------------------------------------------
def test_stability_triangle_matches_dense_scan():
    s = LTISystem.from_lags([1, 2])
    b1, b2 = sp.symbols("b_1 b_2", real=True)
    region = sp.lambdify((b1, b2), S.stability_region(s), "numpy")
    grid = np.linspace(-2.3, 2.3, 93)
    B1, B2 = np.meshgrid(grid, grid)
    margin = np.minimum(np.abs(np.abs(B2) - 1), np.abs(np.abs(B1) - (1 - B2)))
    checked = 0
    for x, y, m in zip(B1.ravel(), B2.ravel(), margin.ravel()):
        if m < 1e-6:
            continue
        rho = np.abs(np.roots([1, -x, -y])).max()
        assert bool(region(x, y)) == (rho < 1) == (abs(y) < 1 and abs(x) < 1 - y), (x, y)
        checked += 1
    assert checked > 8000


def test_stability_exactly_on_the_boundary():
    """A pole on the unit circle is not stable: the integrator b_1 = 1, b = {1: 1/2, 2: 1/2} (poles 1 and
    -1/2), and exact rational points on every edge of the triangle; points 1/1000 inside are stable."""
    half = sp.Rational(1, 2)
    # {1: 0.7, 2: 0.3} has the pole 1: exact rationals give k_1 = -1, float arithmetic -0.9999999999999999
    for b in ({1: 1}, {1: -1}, {1: half, 2: half}, {1: 0.7, 2: 0.3}):
        s = LTISystem.from_lags(sorted(b), b=b)
        assert S.stability_region(s) == sp.false, b
        assert not S.is_stable(s)
    s = LTISystem.from_lags([1, 2])
    b1, b2 = sorted(s.b.values(), key=str)
    region = S.stability_region(s)
    for q in (sp.Rational(k, 7) for k in range(-6, 7)):
        # edges: b2 = -1 (|b1| < 2), b1 = 1 - b2 and b1 = -(1 - b2) (b2 in (-1, 1))
        for x, y in ((2 * q, -1), (1 - q, q), (q - 1, q)):
            assert region.subs({b1: x, b2: y}) == sp.false, (x, y)
            inside = (x * sp.Rational(999, 1000), y * sp.Rational(999, 1000) if y != -1 else -sp.Rational(999, 1000))
            assert region.subs({b1: inside[0], b2: inside[1]}) == sp.true, inside


def test_schur_cohn_refuses_order_plus_symbols_over_its_limit():
    """Order + distinct symbols in B at most ``SCHUR_COHN_MAX_SIZE`` = 9: at order 2, seven symbols are computed
    (the region holds where all are 0, and not at b_1 = 2) and eight are refused, naming both counts; order 5 with
    five symbols ran past 60 s before."""
    x = sp.symbols("x0:8")
    seven = LTISystem.from_lags([1, 2], b={1: x[0] + x[1] + x[2] + x[3], 2: x[4] + x[5] + x[6]})
    region = S.stability_region(seven)
    assert region.subs(dict.fromkeys(x, 0)) == sp.true
    assert region.subs({**dict.fromkeys(x, 0), x[0]: 2}) == sp.false
    eight = LTISystem.from_lags([1, 2], b={1: x[0] + x[1] + x[2] + x[3], 2: x[4] + x[5] + x[6] + x[7]})
    with pytest.raises(GLRError, match=r"limited to order \+ symbols <= 9, got order 2 with 8 symbols"):
        S.stability_region(eight)
    five = LTISystem.from_lags([1, 2, 3, 4, 5], b={i: x[i] for i in range(1, 6)})
    with pytest.raises(GLRError, match="got order 5 with 5 symbols"):
        S.reflection_coefficients(five)


def test_schur_cohn_reads_floats_beside_symbols_as_their_decimals():
    """A float coefficient beside symbols is the decimal it prints as, as in a numeric system: ``{1: c, 2: 0.1}``
    has ``k_2 = -1/10`` and ``k_1 = -c / (1 + k_2) = -10 c / 9`` exactly, and no Float in the region (floats made
    sympy's cancel slow: order 4 with three symbols and a 0.1 took 37 s, 2 s as 1/10). The region agrees with the
    roots of ``z^3 - c z^2 - 1/4`` (numpy: largest modulus 0.848 at c = 1/2, 0.967 at 7/10, 2.06 at 2)."""
    c, d = sp.symbols("c d")
    s = LTISystem.from_lags([1, 2], b={1: c, 2: 0.1})
    assert S.reflection_coefficients(s) == [sp.Rational(-1, 10), -sp.Rational(10, 9) * c]
    region = S.stability_region(LTISystem.from_lags([1, 2, 3], b={1: c, 2: d, 3: 0.25}))
    assert not region.atoms(sp.Float) and region.subs({c: 0, d: 0}) == sp.true
    assert [region.subs({c: x, d: 0}) for x in (sp.Rational(1, 2), sp.Rational(7, 10), 2)] == [sp.true, sp.true,
                                                                                              sp.false]


@SETTINGS
@given(lags=lag_sets, seed=st.integers(0, 2**32 - 1), scale=st.floats(0.3, 3.0))
def test_schur_cohn_equals_spectral_radius(lags, seed, scale):
    rng = np.random.default_rng(seed)
    b = {l: v * scale for l, v in stable_coefficients(rng, lags, margin=1.0).items()}
    s = LTISystem.from_lags(lags, b=b)
    rho = S.spectral_radius(s)
    if abs(rho - 1) > 1e-9:
        assert bool(S.stability_region(s)) == (rho < 1) == S.is_stable(s)


EXTREME_LAGS_1_2 = [(1e308, 1e308), (1e200, 0), (1e-200, 0), (0, 1e300), (0, 1e-300), (-1e300, 1e-10),
                    (1e-200, 1e-300), (1e-150, -1e-300), (1e100, 1.0), (5e-324, 0)]


@pytest.mark.parametrize("b1, b2", EXTREME_LAGS_1_2 + [(0.5, 0.3), (1.2, -0.5), (-1.5, -0.56), (0.9, 0.05), (3.0, 2.0),
                                                       (0, -0.25), (1e-5, 1e-12)])
def test_spectral_radius_of_two_lags_is_the_closed_form(b1, b2):
    """``z^2 - b_1 z - b_2`` has the roots ``(b_1 +- sqrt(b_1^2 + 4 b_2)) / 2``: their largest modulus in
    50-digit mpmath (no exponent range) within 1e-13, with no IllConditionedWarning. Before the scaling,
    (1e308, 1e308) gave 1.49e138, (1e-200, 0) 6.7e-139 and (0, 1e-300) 0. Only the extreme ones are scaled."""
    import mpmath

    with mpmath.workdps(50):
        root = mpmath.sqrt(mpmath.mpf(b1) ** 2 + 4 * mpmath.mpf(b2))
        expected = float(max(abs((b1 + root) / 2), abs((b1 - root) / 2)))
    s = LTISystem({0: 1}, {l: v for l, v in ((1, b1), (2, b2)) if v})
    with warnings.catch_warnings():
        warnings.simplefilter("error", P.IllConditionedWarning)
        rho = S.spectral_radius(s)
    assert abs(rho - expected) <= 1e-13 * expected and (P.pole_scale(s) != 0) == ((b1, b2) in EXTREME_LAGS_1_2)


def test_memory_horizon():
    s = LTISystem.from_pattern("ssm", n=2, b=0.9)
    T = S.memory_horizon(s, eps=1e-3)
    h = s.impulse_response(200)
    assert T == int(np.argmax(np.abs(h) < 1e-3))           # first t with 0.9^t < eps
    assert S.memory_horizon(LTISystem.from_pattern("ssm", n=2, b=1.0)) is None
    s12 = LTISystem.from_pattern("lags:1,2", n=3, b={1: 0.5, 2: 0.3})
    assert S.memory_horizon(s12, 1e-6) == brute_force_horizon(s12, 1e-6)
    fir = LTISystem.from_pattern("window:4", n=10, a=0.5)
    assert fir.order == 3 and S.spectral_radius(fir) == 0 and S.memory_horizon(fir) == 4
    with pytest.raises(GLRError, match="eps"):
        S.memory_horizon(s, eps=2)


def brute_force_horizon(s, eps, length=50_000):
    """One past the last |h_t| >= eps in a long impulse response (which must end far below eps)."""
    h = s.impulse_response(length)
    assert np.abs(h[length // 2:]).max() < eps * 1e-3
    above = np.flatnonzero(np.abs(h) >= eps)
    return int(above[-1]) + 1 if above.size else 0


TRIPLE_HALF = {1: 1.5, 2: -0.75, 3: 0.125}                       # (1 - z^-1/2)^3, floats


@pytest.mark.parametrize("b,a,eps", [
    (TRIPLE_HALF, 1, 1e-3),                                      # repeated pole: h_10 = 0.064
    (TRIPLE_HALF, 1, 1e-9),
    ({1: 0.5}, {0: 1e6}, 1e-3),                                   # large gain: 1e6 * 0.5^t
    ({1: 0.5}, {0: 1e308}, 1e-3),                                 # 0.5^t underflows before h_t does
    ({1: 1.0, 2: -0.25}, {0: 1, 3: -40.0}, 1e-6),                 # double pole and a large zero term
    ({1: 1.8, 2: -0.97}, 1, 1e-3),                                # oscillating, |p| = 0.985
    ({1: 0.3, 5: -0.2, 17: 0.45}, {0: 1, 2: 3.0}, 1e-4),          # random-looking multi-lag
])
def test_memory_horizon_equals_brute_force(b, a, eps):
    s = LTISystem.from_lags(sorted(b), a_lags=sorted(a) if isinstance(a, dict) else (0,), b=b, a=a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.IllConditionedWarning)
        T = S.memory_horizon(s, eps)
    assert T == brute_force_horizon(s, eps)
    h = s.impulse_response(T + 1)
    assert abs(h[T - 1]) >= eps and abs(h[T]) < eps


@SETTINGS
@given(lags=many_lags, seed=st.integers(0, 2**32 - 1), gain=st.sampled_from([1.0, 1e-3, 1e4]))
def test_memory_horizon_random_against_brute_force(lags, seed, gain):
    rng = np.random.default_rng(seed)
    s = LTISystem.from_lags(lags, b=stable_coefficients(rng, lags), a=gain * rng.uniform(0.5, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.IllConditionedWarning)
        assert S.memory_horizon(s, 1e-4) == brute_force_horizon(s, 1e-4)


def test_memory_horizon_refuses_beyond_the_window_limit():
    with pytest.raises(GLRError, match=f"limit of {S.MEMORY_MAX_WINDOW}"):
        S.memory_horizon(LTISystem.from_lags([1], b={1: 1 - 1e-7}), 1e-3)


@pytest.mark.parametrize("b,mult", [(TRIPLE_HALF, 3), ({1: 1.0, 2: -0.25}, 2)])
def test_float_repeated_poles_merge_exactly(b, mult):
    s = LTISystem.from_lags(sorted(b), b=b)
    poles = s.poles()                                            # not mpmath NoConvergence
    assert len(poles) == mult and all(abs(p - sp.Rational(1, 2)) < 1e-28 for p in poles)
    f = s.impulse_response_formula()
    coefficients = [abs(complex(c)) for c in f.expr.atoms(sp.Number)]
    assert max(coefficients) < 1e6                              # (1 + t) 0.5^t, not cancelling giants
    assert len(f.expr.atoms(sp.Pow)) <= mult * 2
    num = s.impulse_response(60)
    assert rel(f.evaluate(60).real, num) < 1e-10


def test_float_root_failure_is_a_glr_error():
    s = LTISystem.from_lags([1, 2], b={1: 1e308, 2: -1e308})      # mpmath gives up on these roots
    with pytest.raises(GLRError, match="square-free factors .* did not converge"):
        s.poles()
    # (z - 1e100)^3: ill-conditioned even scaled (a triple pole), and mpmath gives up on it too
    triple = LTISystem.from_lags([1, 2, 3], b={1: 3e100, 2: -3e200, 3: 1e300})
    with pytest.warns(P.IllConditionedWarning, match="poles are approximate .*did not converge"):
        est = P.pole_estimate(triple)
    assert np.allclose(np.abs(est.poles), 1e100, rtol=1e-4)


def test_unrefined_ill_conditioned_poles_are_called_approximate():
    K = P.REFINE_MAX_ORDER + 2
    H = 1 / sp.expand((1 - sp.Rational(1, 2) / Z) ** K)
    s = LTISystem({0: 1}, {l: float(v) for l, v in LTISystem.from_transfer_function(H).b.items()})
    with pytest.warns(P.IllConditionedWarning, match=f"poles are approximate .*order {K} > REFINE_MAX_ORDER"):
        est = P.pole_estimate(s)
    assert est.route == "dense-companion"


#: memory horizon of 1e308 * 0.5^t at eps = 1e-3: the last t with 0.5^t >= 1e-311 is floor(311 log2 10)
HUGE_GAIN_HORIZON = math.floor(311 * math.log2(10)) + 1


@pytest.mark.parametrize("b,a,realization,horizon", [
    ({1: 1e308}, 1e308, "overflows float64", None),               # c_1 = a_1 + a_0 b_1 = 1e616; rho = 1e308
    ({1: 1e308, 2: 1e308}, 1, "ok", None),                        # finite companion, pole ~1e308: unstable
    ({1: 1e308, 2: -1e308}, 1e300, "overflows float64", None),    # c_1 = 1e608
    ({1: 0.5}, 1e308, "ok", HUGE_GAIN_HORIZON)])
def test_huge_coefficients_raise_no_numpy_warnings(b, a, realization, horizon):
    """Each case has one outcome: the controllable form is built or refused with "overflows float64",
    and the memory horizon is None (unstable) or the exact count; no numpy warning on the way."""
    s = LTISystem.from_lags(sorted(b), b=b, a=a)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", P.IllConditionedWarning)
        assert (S.spectral_radius(s) < 1) == (horizon is not None)
        R.companion(s)
        if realization == "ok":
            assert R.controllable_form(s).order == max(b)
        else:
            with pytest.raises(GLRError, match=realization):
                R.controllable_form(s)
        assert S.memory_horizon(s) == horizon


def test_ill_conditioned_companion_warns_and_refines():
    H = 1 / sp.expand((1 - sp.Rational(1, 2) / Z) ** 12)
    s = LTISystem.from_transfer_function(H)
    s = LTISystem({0: 1}, {l: float(v) for l, v in s.b.items()})
    dense = np.roots(s.numeric_coefficients()[1])
    assert np.abs(dense - 0.5).max() > 1e-3                      # the textbook route is off
    with pytest.warns(P.IllConditionedWarning, match="order 12"):
        poles = s.numeric_poles()
    assert np.abs(poles - 0.5).max() < 1e-12
    with warnings.catch_warnings():                              # power2's companion is well conditioned
        warnings.simplefilter("error", P.IllConditionedWarning)
        assert S.spectral_radius(LTISystem.from_pattern("power2", n=129, b=0.1)) < 1


# -- conversions -----------------------------------------------------------------------------------
def test_scipy_and_control_conversions(monkeypatch):
    s = LTISystem.from_pattern("lags:1,3", n=4, b={1: 0.4, 3: -0.3}, a=2)
    h = s.impulse_response(30)
    assert rel(scipy.signal.dimpulse(s.to_dlti(), n=30)[1][0][:, 0], h) < 1e-12
    control = pytest.importorskip("control")
    tf = s.to_control()
    assert tf.isdtime()
    t, y = control.impulse_response(tf, T=np.arange(30))
    assert rel(np.ravel(y), h) < 1e-12
    assert match(np.asarray(control.poles(tf)), s.numeric_poles()) < 1e-10
    import sys
    monkeypatch.setitem(sys.modules, "control", None)
    with pytest.raises(GLRError, match="python-control"):
        s.to_control()


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["fenwick", "blocks:4", "blocks", "kron:1,11", "fenwick+ssm", "power2+blocks:3"])
def test_non_lti_patterns_are_refused(spec):
    with pytest.raises(GLRError, match="not LTI"):
        LTISystem.from_pattern(spec, n=16, b=0.1)


def test_bad_coefficients():
    s = LTISystem.from_pattern("power2", n=8)
    for call in (s.impulse_response, ):
        with pytest.raises(GLRError, match="b_1, b_2, b_4 are unset"):
            call(8)
    for f in (s.numeric_poles, s.to_dlti, lambda: S.spectral_radius(s), lambda: R.controllable_form(s)):
        with pytest.raises(GLRError, match="unset"):
            f()
    for bad in (float("nan"), float("inf"), sp.oo, sp.nan, 1j, True, None, "1/0", [1]):
        with pytest.raises(GLRError):
            LTISystem.from_pattern("lags:1", n=2, b={1: bad})
    with pytest.raises(GLRError, match="B-lag 3 is not a lag"):
        LTISystem.from_pattern("power2", n=4, b={3: 0.5})
    with pytest.raises(GLRError, match="coefficients given"):
        LTISystem.from_pattern("power2", n=4, b=[0.5])
    with pytest.raises(GLRError, match="no coefficient symbol"):
        s.subs({"b_3": 1})
    with pytest.raises(GLRError, match="limited to order"):
        LTISystem.from_pattern("power2", n=9).impulse_response_formula()
    with pytest.raises(GLRError, match="response length must be >= 1"):
        LTISystem.from_lags([1], b=0.5).impulse_response(0)
    with pytest.raises(GLRError, match="frequency points must be >= 1"):
        LTISystem.from_lags([1], b=0.5).frequency_response(0)
    with pytest.raises(GLRError, match=r"frequency points 1000000000000000000000 exceeds the limit 2\^31-1"):
        LTISystem.from_lags([1], b=0.5).frequency_response(10**21)


def test_sparse_dominant_poles_match_dense(monkeypatch):
    s = LTISystem.from_lags([1, 3, 40], b={1: 0.3, 3: -0.2, 40: 0.4})
    dense = np.linalg.eigvals(R.companion(s).toarray())
    top = dense[np.argsort(-np.abs(dense))][:3]
    monkeypatch.setattr(P, "SPARSE_FROM_ORDER", 17)
    sparse = P.dominant_poles(s, k=3)                    # ARPACK on the sparse companion (K = 40 > 16)
    assert np.abs(sparse[:, None] - dense[None, :]).min(axis=1).max() < 1e-8   # true eigenvalues
    assert abs(abs(sparse[0]) - abs(top[0])) < 1e-8                             # the dominant one
    assert abs(S.spectral_radius(s) - np.abs(top[0])) < 1e-10
    with pytest.raises(GLRError, match="limited to order"):
        P.dominant_poles(LTISystem.from_pattern("power2", n=2**17 + 1, b=0.01))


@pytest.mark.parametrize("c", [1e-250, 1e-30, 0.3, 1e30, 1e250])
def test_dominant_poles_of_equal_modulus_and_extreme_scale(c):
    """``{1: c, 30: c}``: its 30 poles (z^30 = c z^29 + c) all have modulus close to ``c^(1/30)`` (for small c)
    or one pole near c (large c); the closed form: the largest root of the polynomial, by numpy in the
    scaled variable. Order 30 takes the dense route (ARPACK gave 0.19 for c = 1e-30, where the truth is 0.1)."""
    s = LTISystem.from_lags([1, 30], b={1: c, 30: c})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.IllConditionedWarning)
        top = P.dominant_poles(s, k=1)[0]
    # z = r x with r = c^(1/30) (small c) or c (large c): a polynomial in x with moderate coefficients
    r = c ** (1 / 30) if c < 1 else c
    coeffs = np.zeros(31)
    coeffs[0], coeffs[1], coeffs[30] = 1.0, -c / r, -1.0 if c < 1 else -(c ** -29.0)      # c / r^30
    truth = r * np.abs(np.roots(coeffs)).max()
    assert abs(abs(top) - truth) <= 1e-8 * truth, (abs(top), truth)


def test_float_realization_transfer_function_is_numeric_and_fast():
    """A float 6x6 realization: H(z) from scipy.signal.ss2tf equals C (zI - A)^{-1} B + D (numpy solve)
    at points off the spectrum, in well under a second (sympy's cancel took ~6 s)."""
    import time

    rng = np.random.default_rng(7)
    K = 6
    A, B, C = 0.3 * rng.standard_normal((K, K)), rng.standard_normal(K), rng.standard_normal(K)
    t0 = time.perf_counter()
    H = R.transfer_function_of(R.Realization(A, B, C, 0.7))
    assert time.perf_counter() - t0 < 1.0
    for zz in (1.5, -2.0 + 0.5j, 3j):
        want = C @ np.linalg.solve(zz * np.eye(K) - A, B) + 0.7
        assert abs(complex(H.subs(Z, zz)) - want) <= 1e-10 * abs(want)


def test_schur_cohn_limits_sparse_lags_and_no_feedback():
    """Missing lags count as b = 0; a filter without feedback is stable; the order limits are exact."""
    s = LTISystem.from_lags([2])                                   # b_1 = 0: region |b_2| < 1
    (b2,) = s.b.values()
    region = S.stability_region(s)
    assert region.subs(b2, sp.Rational(1, 2)) == sp.true and region.subs(b2, sp.Rational(-9, 10)) == sp.true
    assert region.subs(b2, 1) == sp.false
    fir = LTISystem.from_pattern("window:4", n=10, a=0.5)
    assert S.stability_region(fir) == sp.true and S.reflection_coefficients(fir) == []
    S.reflection_coefficients(LTISystem.from_lags([S.SCHUR_COHN_MAX_ORDER]))        # symbolic order 6: fine
    with pytest.raises(GLRError,
                       match=f"symbolic Schur-Cohn conditions are limited to order <= {S.SCHUR_COHN_MAX_ORDER}"):
        S.reflection_coefficients(LTISystem.from_lags([S.SCHUR_COHN_MAX_ORDER + 1]))
    top = 4 * S.SCHUR_COHN_MAX_ORDER
    assert len(S.reflection_coefficients(LTISystem.from_lags([top], b={top: 0.5}))) == top
    with pytest.raises(GLRError, match=f"exact Schur-Cohn recursion is limited to order <= {top}"):
        S.reflection_coefficients(LTISystem.from_lags([top + 1], b={top + 1: 0.5}))


def test_memory_horizon_edges():
    """|h_t| = eps exactly counts as above eps; a response below eps from the start has horizon 0;
    eps must lie in the open interval (0, 1)."""
    s = LTISystem.from_pattern("ssm", n=2, b=0.5)                  # h_t = 0.5^t: h_3 = 0.125
    assert S.memory_horizon(s, eps=0.125) == 4
    assert S.memory_horizon(LTISystem.from_pattern("window:4", n=10, a=1e-4), eps=1e-3) == 0
    for eps in (0, 1, 0.0, 1.0, float("nan"), True):
        with pytest.raises(GLRError, match="eps"):
            S.memory_horizon(s, eps=eps)
