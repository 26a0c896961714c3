"""Unit checks of the LTI layer against hand-derived values (mutation run 16, docs/mutation.md).

References: the recurrence run in exact Fractions, closed forms worked out by hand, and whole error messages.
"""
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse.linalg
import sympy as sp

from glrtheory import GLRError
from glrtheory.symbolic import lti as L
from glrtheory.symbolic import lti_poles as P
from glrtheory.symbolic import lti_realization as R
from glrtheory.symbolic import lti_scan as S
from glrtheory.symbolic.lti import Z, LTISystem

T = sp.Symbol("t", integer=True, nonnegative=True)
HALF = sp.Rational(1, 2)


def recurrence(a, b, n):
    """h_0..h_{n-1} of h_t = a_t + sum_l b_l h_{t-l}, in exact Fractions (floats taken at their binary value)."""
    h = []
    for t in range(n):
        v = Fraction(a.get(t, 0))
        for lag, c in b.items():
            if lag <= t:
                v += Fraction(c) * h[t - lag]
        h.append(v)
    return h


def frac(x):
    """A sympy number as a Fraction (exact for rationals)."""
    x = sp.nsimplify(x) if isinstance(x, sp.Float) else sp.Rational(x)
    return Fraction(int(x.p), int(x.q))


# -- the closed-form impulse response ----------------------------------------------------------------
def test_formula_with_a_head_before_the_geometric_part():
    """a = 1 + z^-3, b_1 = 1/2: h = 1, 1/2, 1/4, then 9 * 2^-t from t = 3 (J + 1 - L = 3)."""
    s = LTISystem.from_lags([1], a_lags=[0, 3], b={1: HALF}, a={0: 1, 3: 1})
    f = s.impulse_response_formula()
    assert f.valid_from == 3 and f.head == [1, HALF, sp.Rational(1, 4)]
    assert sp.simplify(f.expr - 9 * HALF**T) == 0
    want = recurrence({0: 1, 3: 1}, {1: Fraction(1, 2)}, 9)
    assert [frac(f(t)) for t in range(9)] == want
    assert np.array_equal(f.evaluate(9), np.array([complex(x) for x in want]))


def test_formula_valid_from_zero_and_the_order_check_uses_the_b_lags():
    """Without a head valid_from is 0; an A-lag above CLOSED_FORM_MAX_ORDER is fine, a B-lag above it is not."""
    f = LTISystem.from_lags([1], b={1: HALF}).impulse_response_formula()
    assert f.valid_from == 0 and f.head == [] and sp.simplify(f.expr - HALF**T) == 0
    s = LTISystem.from_lags([1], a_lags=[0, 6], b={1: HALF}, a={0: 1, 6: 1})     # order 6, B-order 1
    f = s.impulse_response_formula()
    assert f.valid_from == 6
    assert [frac(f(t)) for t in range(12)] == recurrence({0: 1, 6: 1}, {1: Fraction(1, 2)}, 12)
    four = LTISystem.from_lags([4], b={4: sp.Rational(1, 16)}).impulse_response_formula()   # order 4: fine
    assert [frac(four(t)) for t in range(12)] == recurrence({0: 1}, {4: Fraction(1, 16)}, 12)
    with pytest.raises(GLRError, match=r"^the impulse response in closed form is limited to order <= 4, got order 5;"
                                       r" use the numeric routes$"):
        LTISystem.from_lags([5], b={5: HALF}).impulse_response_formula()


def test_a_symbolic_cubic_closed_form_comes_back_unsimplified_and_right():
    """Lags 1, 2, 3 with symbols (Cardano radicals, 5119 operations) hung in sp.simplify; the fitted form now comes
    back as it is, and with b = 1/2, 1/5, 1/7 put in it evaluates to the recurrence's values."""
    f = LTISystem.from_lags([1, 2, 3]).impulse_response_formula()
    assert sp.count_ops(f.expr) > L.SIMPLIFY_MAX_OPS and f.valid_from == 0
    b = {1: Fraction(1, 2), 2: Fraction(1, 5), 3: Fraction(1, 7)}
    expr = f.expr.subs({sp.Symbol(f"b_{lag}", real=True): sp.Rational(v.numerator, v.denominator)
                        for lag, v in b.items()})
    got = L.ImpulseFormula(expr, 0, []).evaluate(12)
    assert np.allclose(got, [float(x) for x in recurrence({0: 1}, b, 12)], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("limit, simplified", [(1356, True), (1355, False)])
def test_the_simplify_limit_is_inclusive(monkeypatch, limit, simplified):
    """Lags 2, 4 with symbols fit to 1356 operations and simplify to 136: simplified at a limit of 1356, not at
    1355."""
    monkeypatch.setattr(L, "SIMPLIFY_MAX_OPS", limit)
    f = LTISystem.from_lags([2, 4]).impulse_response_formula()
    assert sp.count_ops(f.expr) == (136 if simplified else 1356)


@pytest.mark.parametrize("b", [{1: HALF, 2: 0}, {1: HALF, 3: 0}, {1: HALF, 4: 0}, {2: sp.Rational(1, 4), 3: 0}])
def test_formula_with_poles_at_zero(b):
    """Zero coefficients at the largest lags put poles at 0 (a factor z^m0): the response is still exact."""
    s = LTISystem.from_lags(sorted(b), b=b)
    f = s.impulse_response_formula()
    want = recurrence({0: 1}, {k: frac(v) for k, v in b.items()}, 14)
    assert f.valid_from == 0
    assert [frac(sp.nsimplify(f(t))) for t in range(14)] == want


def test_float_formula_with_a_pole_at_zero():
    """Float coefficients list the pole 0 first among the reals: it must be split off, not fitted (h_t = 2^-t)."""
    f = LTISystem.from_lags([1, 2], b={1: 0.5, 2: 0.0}).impulse_response_formula()
    assert np.array_equal(f.evaluate(12), 0.5 ** np.arange(12))


def test_formula_of_a_filter_without_poles():
    """b = 0 everywhere: H = a(z), the formula is 0 from one past the largest A-lag, the head the A-taps."""
    s = LTISystem({0: 1, 2: 3}, {})
    f = s.impulse_response_formula()
    assert f.expr == 0 and f.expr.is_Integer and f.valid_from == 3 and f.head == [1, 0, 3]
    assert [f(t) for t in range(6)] == [1, 0, 3, 0, 0, 0]
    six = LTISystem({0: 1, 6: 1}, {}).impulse_response_formula()      # order 6, but no B-lag: no order limit
    assert (six.expr, six.valid_from, six.head) == (0, 7, [1, 0, 0, 0, 0, 0, 1])
    g = LTISystem({0: 2}, {1: 0}).impulse_response_formula()
    assert (g.expr, g.valid_from, g.head) == (0, 1, [2])


def test_formula_evaluation_needs_numbers_and_30_digits():
    with pytest.raises(GLRError, match=r"^evaluating the formula needs numbers for b_1, b_2$"):
        LTISystem.from_lags([1, 2]).impulse_response_formula().evaluate(3)
    # two poles 2^-20 apart: coefficients ~2^20 cancel, so float64 evaluation would lose ~6 digits
    p, q = 0.5, 0.5 + 2.0**-20
    s = LTISystem.from_lags([1, 2], b={1: p + q, 2: -p * q})
    h = s.impulse_response_formula().evaluate(40)
    want = recurrence({0: 1}, {1: p + q, 2: -p * q}, 40)
    assert np.abs(h.imag).max() < 1e-25
    assert max(abs(x - float(w)) / abs(float(w)) for x, w in zip(h.real, want)) < 1e-14


def test_float_formula_failure_names_the_impulse_response():
    s = LTISystem.from_lags([1, 2], b={1: 1e308, 2: -1e308})
    with pytest.raises(GLRError, match=r"^the impulse response: 30-digit roots of the square-free factors of the "
                                       r"degree-2 polynomial did not converge"):
        s.impulse_response_formula()


# -- construction, printing, polynomials -------------------------------------------------------------------
def test_from_transfer_function_of_constants_filters_without_feedback_and_scaled_denominators():
    """A constant is a0 alone; a polynomial in z^-1 has no B-lags; the denominator is made monic in z^-1."""
    for H, a in ((3, {0: 3}), (0, {0: 0}), (sp.Symbol("g") / 2, {0: sp.Symbol("g") / 2})):
        s = LTISystem.from_transfer_function(H)
        assert (s.a, s.b, s.spec, s.n) == (a, {}, "transfer-function", None)
    fir = LTISystem.from_transfer_function(1 + 2 / Z - 3 / Z**2)
    assert (fir.a, fir.b) == ({0: 1, 1: 2, 2: -3}, {})
    s = LTISystem.from_transfer_function(4 / (2 - 1 / Z + 3 / Z**2))       # = 2 / (1 - z^-1/2 + 3/2 z^-2)
    assert (s.a, s.b) == ({0: 2}, {1: HALF, 2: -sp.Rational(3, 2)})
    assert repr(s) == "LTISystem('transfer-function': H(z) = 2/(1 - 1/2*z**-1 + 3/2*z**-2))"
    w = sp.Symbol("w")
    assert LTISystem.from_transfer_function(1 / (1 - HALF / w), z=w).b == {1: HALF}


def test_from_transfer_function_refusals_in_full():
    with pytest.raises(GLRError, match=r"^H is not a rational function of z: sin\(z\)$"):
        LTISystem.from_transfer_function(sp.sin(Z))
    with pytest.raises(GLRError, match=r"^H is not causal \(its denominator in z\^-1 has no constant term\): z$"):
        LTISystem.from_transfer_function(Z)


def test_subs_by_name_or_symbol_keeps_spec_and_length():
    s = LTISystem.from_pattern("lags:1,3", n=5)
    b1 = sp.Symbol("b_1", real=True)
    t = s.subs({b1: HALF, "b_3": 0.25})
    assert (t.b, t.spec, t.n) == ({1: HALF, 3: sp.Float(0.25)}, "lags:1,3", 5)
    assert t.pattern().spec == "lags:1,3" and LTISystem.from_pattern("power2", n=5).pattern().spec == "power2"
    with pytest.raises(GLRError, match=r"^coefficient b_1 is not finite: nan$"):
        s.subs({"b_1": float("nan")})
    with pytest.raises(GLRError, match=r"^coefficient b_1 is not finite: nan$"):
        s.subs({b1: float("nan")})
    with pytest.raises(GLRError, match=r"^no coefficient symbol named 'b_2'; free symbols: \['b_1', 'b_3'\]$"):
        s.subs({"b_2": 1})


def test_lag_count_limit_and_the_length_of_from_lags():
    """MAX_LAGS = 4096 lags per side accepted, 4097 refused; from_lags takes n = largest lag + 1 (1 for none)."""
    assert LTISystem.from_lags(range(1, 4097), b=0.0).order == 4096
    with pytest.raises(GLRError, match=r"^4097 b-lags exceed the limit of 4096 lags per side$"):
        LTISystem.from_lags(range(1, 4098), b=0.0)
    assert LTISystem.from_lags([1, 3], a_lags=[0, 2]).n == 4 and LTISystem.from_lags([], a_lags=[0]).n == 1
    with pytest.raises(GLRError, match=r"^pattern 'custom-lags\(a=\[\], b=\[\]\)' has no A-lag at n=1: H = 0$"):
        LTISystem.from_lags([], a_lags=())


G = sp.Symbol("g")


@pytest.mark.parametrize("value, message", [
    (True, "coefficient b_1 must be a number or a sympy expression, got True"),
    (None, "coefficient b_1 must be a number or a sympy expression, got None"),
    (float("nan"), "coefficient b_1 is not finite: nan"),
    (np.float64("inf"), "coefficient b_1 is not finite: np.float64(inf)"),
    ("1+", "coefficient b_1 is not a number or expression: '1+'"), ("1/0", "coefficient b_1 is not finite: zoo"),
    (sp.oo, "coefficient b_1 is not finite: oo"),
    ([1], "coefficient b_1 must be a real number or a sympy expression, got [1]"),
    (1j, "coefficient b_1 must be a real number or a sympy expression, got 1j"),
    ("sqrt(-1)", "coefficient b_1 must be real, got I"), ("z**2 + 1", "coefficient b_1 must not depend on z"),
    (G * sp.oo, "coefficient b_1 is not finite: oo*g"), (G - sp.oo, "coefficient b_1 is not finite: g - oo"),
    (G + sp.zoo, "coefficient b_1 is not finite: g + zoo")])
def test_bad_coefficients_in_full(value, message):
    with pytest.raises(GLRError) as info:
        LTISystem.from_pattern("lags:1", n=2, b={1: value})
    assert str(info.value) == message


def test_coefficients_by_mapping_sequence_or_one_value_and_construction_refusals():
    """Integers stay exact, floats become Floats; messages name the lag, or all lags, and the structure's rules."""
    s = LTISystem.from_lags([1, 2], b={1: 2, 2: np.int64(3)}, a=np.float64(0.5))
    assert s.b == {1: 2, 2: 3} and all(isinstance(v, sp.Integer) for v in s.b.values()) and isinstance(s.a[0], sp.Float)
    cases = [(lambda: LTISystem.from_pattern("lags:1", n=2, b=[float("nan")]), "coefficient b_1 is not finite: nan"),
             (lambda: LTISystem.from_pattern("lags:1", n=2, b=float("nan")),
              "coefficient b (all lags) is not finite: nan"),
             (lambda: LTISystem.from_pattern(3, n=2), "expected a Pattern or a spec string, got int"),
             (lambda: LTISystem.from_pattern("fenwick", n=16), "pattern 'fenwick' is not LTI: its B-support at n=16 is "
                                                                "not a translation-invariant lag set"),
             (lambda: LTISystem.from_pattern("blocks:4", n=16), "pattern 'blocks:4' is not LTI: its A-support at n=16 "
                                                                 "is not a translation-invariant lag set"),
             (lambda: LTISystem({0: float("nan")}, {}), "coefficient a_0 is not finite: nan"),
             (lambda: LTISystem({0: 1}, {2: None}), "coefficient b_2 must be a number or a sympy expression, got None"),
             (lambda: LTISystem({0: 1}, {0: 1}), "A-lags must be >= 0 and B-lags >= 1"),
             (lambda: LTISystem({-1: 1}, {}), "A-lags must be >= 0 and B-lags >= 1"),
             (lambda: LTISystem({}, {1: 1}), "an LTI system needs at least one A-lag (otherwise H = 0)"),
             (lambda: LTISystem.from_pattern("lags:1", n=2, b=[0.5, 0.5]), "2 b-coefficients given for 1 b-lags [1]")]
    for call, message in cases:
        with pytest.raises(GLRError) as info:
            call()
        assert str(info.value) == message


def test_unknown_lags_are_named_with_the_pattern_s_lags():
    with pytest.raises(GLRError, match=r"^B-lag 3 is not a lag of the pattern \(B-lags: 1, 2\)$"):
        LTISystem.from_pattern("lags:1,2", n=3, b={3: 0.5})
    with pytest.raises(GLRError, match=r"^B-lag 1 is not a lag of the pattern \(B-lags: none\)$"):
        LTISystem.from_pattern("window:3", n=4, b={1: 0.5})


def test_numeric_coefficients_refusals_in_full():
    """Unset symbols listed in lag order (b_2 before b_10), with the hint; a coefficient beyond float64 refused."""
    with pytest.raises(GLRError, match=r"^numeric coefficients needs numbers, but coefficient symbols b_2, b_10 are "
                                       r"unset \(give them values, e.g. with \.subs\)$"):
        LTISystem.from_lags([2, 10]).numeric_coefficients()
    for a, b in (({0: 1}, {1: sp.Integer(10) ** 400}), ({0: sp.Integer(10) ** 400}, {1: HALF})):
        with pytest.raises(GLRError, match=r"^coefficients overflow float64$"):
            LTISystem(a, b).numeric_coefficients()


def test_latex_and_repr():
    g = sp.Symbol("g")
    assert LTISystem({0: 1}, {1: g + 1}).latex() == "H(z) = \\frac{1}{1 - \\left(g + 1\\right) z^{-1}}"
    assert LTISystem({0: 1, 1: 0.5}, {}).latex() == "H(z) = 1 + 0.5 z^{-1}"
    assert LTISystem({0: 1}, {1: 0.1}).latex() == "H(z) = \\frac{1}{1 - 0.1 z^{-1}}"
    assert repr(LTISystem.from_pattern("lags:1", n=2, b=0.5)) == "LTISystem('lags:1', n=2: H(z) = 1/(1 - 0.5*z**-1))"
    assert repr(LTISystem({0: 1}, {})) == "LTISystem('custom': H(z) = 1)"


def test_zero_polynomial_is_a_polynomial_in_z_only():
    s = LTISystem.from_lags([1, 2], a_lags=[0, 1], a=None)
    a0, a1 = sp.symbols("a_0 a_1", real=True)
    zp = s.zero_polynomial()
    assert zp.gens == (Z,) and zp.all_coeffs() == [a0, a1, 0]
    w = sp.Symbol("w")
    assert s.zero_polynomial(w).gens == (w,) and s.characteristic_polynomial(w).gens == (w,)


def test_exact_poles_and_zeros_at_the_degree_limits():
    """Degree 1 and a symbolic degree 4 are solved; degree 5 needs rational coefficients (CRootOf, with the
    multiplicities of repeated roots); the refusals name poles or zeros."""
    assert LTISystem.from_lags([1], b={1: sp.Rational(1, 3)}).poles() == [sp.Rational(1, 3)]
    assert LTISystem({0: 1, 1: -sp.Rational(1, 3)}, {1: HALF}).zeros() == [sp.Rational(1, 3)]
    b4 = sp.Symbol("b_4", real=True)
    four = LTISystem.from_lags([4]).poles()                         # z^4 = b_4
    assert len(four) == 4 and all(sp.simplify(p**4 - b4) == 0 for p in four)
    quintic = sp.Poly(Z**5 - Z - 1).all_roots()                     # not solvable by radicals
    assert LTISystem.from_lags([4, 5], b={4: 1, 5: 1}).poles() == quintic
    squared = LTISystem.from_lags([4, 5, 8, 9, 10], b={4: 2, 5: 2, 8: -1, 9: -2, 10: -1}).poles()   # (z^5-z-1)^2
    assert squared == [r for r in quintic for _ in range(2)]
    with pytest.raises(GLRError, match=r"^exact poles are limited to degree <= 4 unless the coefficients are "
                                       r"rational, got degree 5; use the numeric route$"):
        LTISystem.from_lags([5]).poles()
    with pytest.raises(GLRError, match=r"^exact zeros are limited to degree <= 4 unless"):
        LTISystem.from_lags([5], a_lags=[0, 1], a=None).zeros()
    with pytest.raises(GLRError, match=r"^the poles: 30-digit roots of the square-free factors of the degree-2 "):
        LTISystem.from_lags([1, 2], b={1: 1e308, 2: -1e308}).poles()


def test_float_poles_are_30_digit_with_reals_first():
    """Float coefficients: poles to 30 digits, real ones first, a pole at 0 as Float 0 and the pole 1 as 1."""
    golden = LTISystem.from_lags([1, 2], b={1: 1.0, 2: 1.0}).poles()          # z^2 = z + 1
    phi = (1 + sp.sqrt(5)) / 2
    assert abs(golden[0] - (1 - phi)) < 1e-28 and abs(golden[1] - phi) < 1e-28
    assert [float(p) for p in LTISystem.from_lags([1], b={1: 1.0}).poles()] == [1.0]
    zero = LTISystem.from_lags([1, 2], b={1: 0.5, 2: 0.0}).poles()
    assert [float(p) for p in zero] == [0.0, 0.5] and all(isinstance(p, sp.Float) for p in zero)
    cubic = LTISystem.from_lags([1, 3], b={1: 1.0, 3: 0.5}).poles()             # one real, two complex
    assert cubic[0].is_real and not cubic[1].is_real and not cubic[2].is_real
    assert all(abs(sp.N(p**3 - p**2 - HALF, 40)) < 1e-27 for p in cubic)


def test_float_poles_are_those_of_the_exact_binary_values():
    """0.2 and 0.01 are not exact in binary: z^2 - fl(0.2) z + fl(0.01) has two distinct roots (sum fl(0.2), product
    fl(0.01) exactly), where the float coefficients' own square-free split takes it for (z - 0.1)^2."""
    p, q = LTISystem.from_lags([1, 2], b={1: 0.2, 2: -0.01}).poles()
    assert abs(p - q) > 1e-12
    assert abs(sp.N(p + q - sp.Rational(0.2), 40)) < 1e-28 and abs(sp.N(p * q - sp.Rational(0.01), 40)) < 1e-28


def test_poles_and_formula_of_floats_mixed_with_symbols():
    """b_1 = 0.5, b_2 = g: the exact route (roots of z^2 - z/2 - g), not the float route (a sympy DomainError)."""
    g = sp.Symbol("g")
    s = LTISystem.from_lags([1, 2], b={1: 0.5, 2: g})
    poles = s.poles()
    assert len(poles) == 2 and all(sp.simplify(p**2 - HALF * p - g) == 0 for p in poles)
    f = s.impulse_response_formula()
    head = s.impulse_response_symbolic(6)
    assert all(sp.simplify(f(t) - head[t]) == 0 for t in range(6))
    assert abs(complex(f.expr.subs({g: 0.25, T: 5})) - float(recurrence({0: 1}, {1: 0.5, 2: 0.25}, 6)[5])) < 1e-14


def test_numeric_zeros():
    for a, want in (({0: 1, 1: -0.5}, [0.5]), ({1: 1, 2: -0.5}, [0.5]), ({0: 1, 2: -0.25}, [-0.5, 0.5])):
        z = LTISystem(a, {1: 0.25}).numeric_zeros()
        assert z.dtype == np.complex128 and np.allclose(np.sort(z.real), want, rtol=0, atol=1e-15)
    none = LTISystem({0: 0}, {1: 0.5}).numeric_zeros()
    assert none.shape == (0,) and none.dtype == np.complex128


def test_partial_fractions_split_over_irrational_poles_of_exact_rationals():
    """z^2 - z - 1 does not factor over Q: full=True splits it; a float 0.7071... stays a rational (not sqrt 2/2), its
    exact binary value (nsimplify took 15 digits: 176776695296637/250000000000000, 4e-16 away)."""
    pf = LTISystem.from_lags([1, 2], b={1: 1, 2: 1}).partial_fractions()
    assert sp.simplify(pf - Z**2 / (Z**2 - Z - 1)) == 0
    assert all(sp.degree(sp.denom(term), Z) <= 1 for term in sp.Add.make_args(pf))
    pf = LTISystem.from_lags([1], b={1: 0.7071067811865476}).partial_fractions()
    (pole,) = sp.roots(sp.denom(sp.together(pf)), Z)
    assert pole == sp.Rational(0.7071067811865476) == sp.Rational(6369051672525773, 2**53)
    assert sp.simplify(pf - (1 + pole / (Z - pole))) == 0
    const = LTISystem({0: 0.7071067811865476}, {}).partial_fractions()        # no z: still a rational, not sqrt(2)/2
    assert const == sp.Rational(6369051672525773, 2**53)
    LTISystem.from_lags([4], b={4: HALF}).partial_fractions()
    with pytest.raises(GLRError, match=r"^partial fractions in closed form is limited to order <= 4, got order 5; "):
        LTISystem.from_lags([5], b={5: HALF}).partial_fractions()


def test_symbolic_response_term_limit():
    """length x max(B-lags, 1) <= 10^5 terms: the limit itself is accepted."""
    assert len(LTISystem({0: 1}, {}).impulse_response_symbolic(10**5)) == 10**5
    assert LTISystem.from_lags([1, 2], b=HALF).impulse_response_symbolic(30)[-1] == frac_to_sp(
        recurrence({0: 1}, {1: Fraction(1, 2), 2: Fraction(1, 2)}, 30)[-1])
    with pytest.raises(GLRError, match=r"^symbolic impulse responses are limited to 10\^5 terms, got length 100001$"):
        LTISystem({0: 1}, {}).impulse_response_symbolic(10**5 + 1)
    with pytest.raises(GLRError, match=r"got length 50001$"):
        LTISystem.from_lags([1, 2], b=HALF).impulse_response_symbolic(50001)


def frac_to_sp(x):
    return sp.Rational(x.numerator, x.denominator)


# -- numeric routes: frequency response, Toeplitz matrix, tables, conversions ---------------------------------
def test_frequency_response_by_hand_and_its_work_limit(monkeypatch):
    """H(e^{iw}) = (1 + e^{-iw}/2) / (1 - e^{-iw}/4 - e^{-2iw}/8) at w = pi k / 512 (the default 512 points)."""
    s = LTISystem({0: 1, 1: 0.5}, {1: 0.25, 2: 0.125})
    w, H = s.frequency_response()
    assert w.shape == (512,) and w[1] == np.pi / 512
    e = np.exp(-1j * w)
    assert np.abs(H - (1 + e / 2) / (1 - e / 4 - e * e / 8)).max() < 1e-15
    monkeypatch.setattr(L, "MAX_RESPONSE_WORK", 20)                 # 2 A-lags and 3 denominator taps per point
    assert s.frequency_response(4)[1].shape == (4,)
    with pytest.raises(GLRError, match=r"^frequency response at 5 points over 5 lags exceeds the limit of 20 terms$"):
        s.frequency_response(5)


def test_frequency_response_of_huge_coefficients():
    """a_0 = b_1 = b_2 = 1e308: H = 1 / (1e-308 - e^{-iw} - e^{-2iw}), closed forms at w = 0, pi/4, pi/2, 3 pi/4;
    the sums of unscaled coefficients overflowed (|H| 0 and a pole on the circle were reported)."""
    s = LTISystem({0: 1e308}, {1: 1e308, 2: 1e308})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, H = s.frequency_response(4)
    q = np.sqrt(2)
    want = [-0.5, -(q - 1) / 2 - 0.5j, 0.5 - 0.5j, (q + 1) / 2 + 0.5j]   # -1 / (e^{-iw} + e^{-2iw}) by hand
    assert np.abs(H - want).max() < 1e-15
    with warnings.catch_warnings():                                     # |H(1)| = 2e308 overflows: inf, silently
        warnings.simplefilter("error")
        _, H = LTISystem({0: 1e308}, {1: 0.5}).frequency_response(2)
    assert H[0] == np.inf and abs(H[1] - 1e308 / (1 + 0.5j)) < 1e293
    with warnings.catch_warnings():                                     # a pole on the circle: inf, no division by 0
        warnings.simplefilter("error")
        _, H = LTISystem({0: 1}, {1: 1.0}).frequency_response(2)
    assert H[0] == np.inf and abs(H[1] - (0.5 - 0.5j)) < 1e-15        # 1 / (1 - e^{-i pi / 2}) = 1 / (1 + i)


def test_toeplitz_matrix_limit(monkeypatch):
    import glrtheory.recurrence

    monkeypatch.setattr(glrtheory.recurrence, "DENSE_MAX_N", 5)
    s = LTISystem.from_lags([1], b={1: 0.5})
    M = s.toeplitz_matrix(5)
    assert np.array_equal(M, [[0.5 ** (i - j) if i >= j else 0 for j in range(5)] for i in range(5)])
    with pytest.raises(GLRError, match=r"^dense mixing matrices are limited to n <= 5, got n=6$"):
        s.toeplitz_matrix(6)


def test_coefficient_tables_by_hand():
    """a_0 = 1.5, a_2 = 3 (the largest lag is the order), b_1 = 0.5: slot values, 0 in the padding."""
    s = LTISystem({0: 1.5, 2: 3.0}, {1: 0.5})
    a_idx, b_idx = s.pattern().tables(4)
    assert a_idx.tolist() == [[0, -1], [1, -1], [0, 2], [1, 3]] and b_idx.tolist() == [[-1], [0], [1], [2]]
    a, b = s.coefficient_tables(4)
    assert a.tolist() == [[1.5, 0], [1.5, 0], [3, 1.5], [3, 1.5]] and b.tolist() == [[0], [0.5], [0.5], [0.5]]


def test_conversions_to_scipy_and_control(monkeypatch):
    import sys

    d = LTISystem({0: 1}, {1: 0.5}).to_dlti()
    assert d.dt == 1 and d.dt is not True
    monkeypatch.setitem(sys.modules, "control", None)
    with pytest.raises(GLRError, match=r"^to_control needs python-control: pip install control$"):
        LTISystem({0: 1}, {1: 0.5}).to_control()


# -- realizations ---------------------------------------------------------------------------------------------
def test_symbolic_realization_without_a_0_and_of_order_0_and_1():
    s = LTISystem.from_lags([1], a_lags=[1], b={1: HALF}, a={1: 1})          # H = z^-1 / (1 - z^-1/2)
    r = R.controllable_form(s, symbolic=True)
    assert (r.A, r.B, r.C, r.D) == (sp.Matrix([[HALF]]), sp.Matrix([[1]]), sp.Matrix([[1]]), 0)
    assert sp.simplify(R.transfer_function_of(r) - 1 / (Z - HALF)) == 0
    g = sp.Symbol("g")
    r0 = R.controllable_form(LTISystem({0: g}, {}), symbolic=True)
    assert (r0.A.shape, r0.B.shape, r0.C.shape, r0.D) == ((0, 0), (0, 1), (1, 0), g)
    assert R.is_controllable(r0) is sp.true and R.is_observable(r0) is sp.true and R.transfer_function_of(r0) == g
    a0, a1, b1 = sp.symbols("a0 a1 b1")
    one = R.controllable_form(LTISystem({0: a0, 1: a1}, {1: b1}), symbolic=True)
    assert sp.simplify(R.transfer_function_of(one) - (a0 + a1 / Z) / (1 - b1 / Z)) == 0


def test_numeric_realization_of_order_0():
    """H = 2: empty state; the Krylov matrices are 0 x 0, full rank; H comes back as the float 2."""
    r = R.controllable_form(LTISystem({0: 2.0}, {}))
    assert (r.A.shape, r.B.shape, r.C.shape, r.D) == ((0, 0), (0, 1), (1, 0), 2.0)
    assert R.controllability_matrix(r).shape == (0, 0) and R.observability_matrix(r).shape == (0, 0)
    assert R.is_controllable(r) is True and R.is_observable(r) is True
    H = R.transfer_function_of(r)
    assert H == sp.Float(2.0) and isinstance(H, sp.Float)


def test_numeric_forms_by_hand():
    """b = (0.5, 0.25), a = (2, 1): c_j = a_j + a_0 b_j = (2, 0.5); Krylov matrices written out."""
    s = LTISystem({0: 2.0, 1: 1.0}, {1: 0.5, 2: 0.25})
    c = R.controllable_form(s)
    assert c.A.toarray().tolist() == [[0.5, 0.25], [1, 0]] and c.B.tolist() == [[1], [0]]
    assert c.C.tolist() == [[2, 0.5]] and c.D == 2.0
    assert R.controllability_matrix(c).tolist() == [[1, 0.5], [0, 1]]
    assert R.observability_matrix(c).tolist() == [[2, 0.5], [1.5, 0.5]]        # C, C A
    o = R.observable_form(s)
    assert o.A.toarray().tolist() == [[0.5, 1], [0.25, 0]] and o.B.tolist() == [[2], [0.5]]
    assert o.C.tolist() == [[1, 0]] and o.D == 2.0
    with pytest.raises(GLRError, match=r"^the realization's output row c_j = a_j \+ a_0 b_j overflows float64$"):
        R.controllable_form(LTISystem({0: 1e308}, {1: 1e308}))


def test_realization_order_limits():
    R.companion(LTISystem.from_lags([12]), symbolic=True)
    with pytest.raises(GLRError, match=r"^symbolic realizations are limited to order <= 12, got 13$"):
        R.companion(LTISystem.from_lags([13]), symbolic=True)
    assert R.controllability_matrix(R.controllable_form(LTISystem.from_lags([64], b={64: 0.5}))).shape == (64, 64)
    with pytest.raises(GLRError, match=r"^numeric controllability/observability is limited to order <= 64 \(Krylov "
                                       r"matrices lose rank in float64\), got 65$"):
        R.controllability_matrix(R.controllable_form(LTISystem.from_lags([65], b={65: 0.5})))


def test_from_realization_in_another_variable_and_similarity_refusals():
    w = sp.Symbol("w")
    s = LTISystem({0: 1, 1: HALF}, {1: sp.Rational(1, 3)})
    back = R.from_realization(R.controllable_form(s, symbolic=True), z=w)
    assert (back.a, back.b) == (s.a, s.b)
    one, two = R.controllable_form(LTISystem.from_lags([1], b=0.5)), R.controllable_form(s.subs({}))
    with pytest.raises(GLRError, match=r"^realizations of different orders 1 and 2 are not similar$"):
        R.similarity(one, R.controllable_form(LTISystem.from_lags([2], b=0.5)))
    assert two.order == 1
    cancel = R.controllable_form(LTISystem({0: 1, 1: -0.5}, {1: 0.5}))          # c_1 = 0: unobservable
    with pytest.raises(GLRError, match=r"^the observability matrix is singular: no unique similarity \(.+\)$"):
        R.similarity(one, cancel)


# -- numeric impulse response: work limit, huge values --------------------------------------------------------
def test_impulse_response_work_limit(monkeypatch):
    """length x (number of B-lags, at least 1) // (smallest B-lag) <= MAX_RESPONSE_WORK (10 here)."""
    monkeypatch.setattr(L, "MAX_RESPONSE_WORK", 10)
    fir, two, one_two = LTISystem({0: 1}, {}), LTISystem({0: 1}, {2: 0.5}), LTISystem({0: 1}, {1: 0.5, 2: 0.25})
    assert fir.impulse_response(10).tolist() == [1] + [0] * 9
    assert two.impulse_response(21).tolist() == [0.5 ** (t // 2) if t % 2 == 0 else 0 for t in range(21)]
    assert one_two.impulse_response(5).tolist() == [float(x) for x in recurrence({0: 1}, {1: 0.5, 2: 0.25}, 5)]
    for s, n, lags in ((fir, 11, 0), (two, 22, 1), (one_two, 6, 2)):
        with pytest.raises(GLRError, match=rf"^impulse response of length {n} with {lags} lags exceeds the limit of "
                                           r"10 multiply-adds$"):
            s.impulse_response(n)


def test_impulse_response_of_huge_coefficients_gives_no_numpy_warning():
    s = LTISystem({0: 1}, {1: 1e308, 2: -1e308})          # h_2 overflows, h_3 = inf - inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = s.impulse_response(5)
    assert h[:2].tolist() == [1, 1e308] and h[2] == np.inf and np.isnan(h[3])


def test_transfer_function_string_parenthesizes_sums_and_skips_zero_terms():
    g = sp.Symbol("g")
    assert LTISystem({0: 1}, {1: g + 1}).transfer_function_string() == "1/(1 - (g + 1)*z**-1)"
    assert LTISystem({0: 1, 1: 0, 2: -2}, {1: 0, 2: 0.5}).transfer_function_string() == "(1 - 2*z**-2)/(1 - 0.5*z**-2)"
    assert LTISystem({0: 0}, {1: -1}).transfer_function_string() == "0/(1 + z**-1)"
    assert LTISystem({0: -1, 1: 2}, {}).transfer_function_string() == "-1 + 2*z**-1"


# -- poles: scaling and the dominant ones ------------------------------------------------------------------------
@pytest.mark.parametrize("b, e", [({}, 0), ({1: 0.0}, 0), ({1: 2.0**-64}, 0), ({1: 0.75 * 2.0**-64}, -65),
                                  ({1: 2.0**64}, 0), ({1: 2.0**64.5}, 64), ({1: 1024.0}, 0), ({2: 2.0**-100}, 0),
                                  ({2: 2.0**-128}, 0), ({2: 2.0**-130}, -65), ({2: 2.0**100}, 50)])
def test_pole_scale_at_its_edges(b, e):
    """e = floor(max log2|b_l| / l); 0 while e and the largest companion entry (the b_l, and the subdiagonal's 1
    from order 2) lie within 2^+-64, both ends included."""
    assert P.pole_scale(LTISystem({0: 1}, b)) == e


def test_pole_estimate_is_cached_per_coefficients():
    """A second call returns the same estimate; coefficients changed in place are not served from the cache."""
    s = LTISystem({0: 1}, {1: 0.5})
    first = P.pole_estimate(s)
    assert P.pole_estimate(s) is first and first.poles.tolist() == [0.5] and first.route == "dense-companion"
    s.b[1] = sp.Float(0.25)
    assert P.pole_estimate(s).poles.tolist() == [0.25]


def test_pole_estimates_by_hand(monkeypatch):
    """Order 0: nothing. Zero B-taps at the largest lags are exact poles at 0 (bound 0). A 1 x 1 companion has
    kappa = 1: bound eps, scaled back with the pole for b_1 = 2^70 (eps 2^70 = 2^18). The dense route's limit."""
    eps = np.finfo(float).eps
    none = P.pole_estimate(LTISystem({0: 2}, {}))
    assert (none.poles.shape, none.poles.dtype, none.error_bound.shape) == ((0,), np.complex128, (0,))
    assert none.route == "none"
    fir = P.pole_estimate(LTISystem({0: 1, 2: 1}, {}))
    assert fir.poles.tolist() == [0, 0] and fir.error_bound.tolist() == [0, 0] and fir.route == "none"
    padded = P.pole_estimate(LTISystem({0: 1}, {1: 0.5, 3: 0.0}))
    assert padded.poles.tolist() == [0.5, 0, 0] and padded.error_bound.tolist() == [eps, 0, 0]
    assert padded.poles.dtype == np.complex128 and padded.route == "dense-companion"
    # z^2 - z/2 - 1/2: x = (p, 1), y = (1, b_2 / p) for p = 1, -1/2: kappa = sqrt(2.5) / 1.5, ||C||_F = sqrt(1.5)
    two = P.pole_estimate(LTISystem({0: 1}, {1: 0.5, 2: 0.5}))
    assert np.allclose(two.error_bound, eps * np.sqrt(3.75) / 1.5, rtol=1e-12, atol=0)
    big = P.pole_estimate(LTISystem({0: 1}, {1: 2.0**70}))
    assert big.poles.tolist() == [2.0**70] and big.error_bound.tolist() == [2.0**18]
    monkeypatch.setattr(P, "DENSE_EIG_MAX_ORDER", 8)
    assert P.pole_estimate(LTISystem.from_lags([8], b={8: 0.5})).poles.shape == (8,)
    with pytest.raises(GLRError, match=r"^all poles are limited to order <= 8, got 9; use dominant_poles \(sparse "
                                       r"eigenvalues\)$"):
        P.pole_estimate(LTISystem.from_lags([9], b={9: 0.5}))


def test_ill_conditioned_poles_are_refined_with_a_warning(monkeypatch):
    """(1 - z^-1/2)^12 in floats: the whole warning, the route and the NaN bounds of the refinement."""
    b = LTISystem.from_transfer_function(1 / sp.expand((1 - HALF / Z) ** 12)).b
    s = LTISystem({0: 1}, {lag: float(v) for lag, v in b.items()})
    with pytest.warns(P.IllConditionedWarning) as record:
        est = P.pole_estimate(s)
    (w,) = record
    assert not w.filename.endswith("lti_poles.py")                  # attributed to a caller (stacklevel)
    assert re.fullmatch(r"companion matrix of order 12 is ill-conditioned: float64 pole error bound \d\.\de\+\d\d "
                        r"> 1e-08; poles recomputed in 30 digits from the exact square-free factors", str(w.message))
    assert est.route == "square-free-30-digit" and est.error_bound.shape == (12,) and np.isnan(est.error_bound).all()
    assert np.abs(est.poles - 0.5).max() < 1e-25 and est.poles.dtype == np.complex128
    monkeypatch.setattr(P, "REFINE_MAX_ORDER", 12)                   # order 12 <= 12: still refined
    with pytest.warns(P.IllConditionedWarning, match="poles recomputed in 30 digits"):
        assert P.pole_estimate(LTISystem({0: 1}, dict(s.b))).route == "square-free-30-digit"
    monkeypatch.setattr(P, "REFINE_MAX_ORDER", 11)
    with pytest.warns(P.IllConditionedWarning, match=r"the poles are approximate \(dense companion eigenvalues; not "
                                                     r"refined: order 12 > REFINE_MAX_ORDER = 11\); impulse responses "
                                                     r"come from the recurrence$") as record:
        assert P.pole_estimate(LTISystem({0: 1}, dict(s.b))).route == "dense-companion"
    assert not record[0].filename.endswith("lti_poles.py")
    triple = LTISystem.from_lags([1, 2, 3], b={1: 3e100, 2: -3e200, 3: 1e300})        # mpmath gives up on it
    with pytest.warns(P.IllConditionedWarning, match=r"not refined: the poles: 30-digit roots of the square-free "
                                                     r"factors of the degree-3 polynomial did not converge"):
        P.pole_estimate(triple)


class Spy:
    """Records the calls of a function it wraps."""

    def __init__(self, f):
        self.f, self.calls = f, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.f(*args, **kwargs)


def some_system(K, seed=0):
    rng = np.random.default_rng(seed)
    return LTISystem({0: 1}, {l: float(v) for l, v in enumerate(rng.uniform(-0.3, 0.3, K) / K ** 0.5, 1)})


def test_dominant_poles_route_boundaries(monkeypatch):
    """Dense up to max(k + 2, SPARSE_FROM_ORDER - 1), ARPACK beyond: the route and the poles at each side."""
    dense, sparse = Spy(P.companion_poles), Spy(scipy.sparse.linalg.eigs)
    monkeypatch.setattr(P, "companion_poles", dense)
    monkeypatch.setattr(scipy.sparse.linalg, "eigs", sparse)
    monkeypatch.setattr(P, "SPARSE_FROM_ORDER", 5)
    for K, k, route in ((8, 6, "dense"), (9, 6, "sparse"), (4, 1, "dense"), (5, 1, "sparse")):
        n_dense, n_sparse = len(dense.calls), len(sparse.calls)
        s = some_system(K)
        w = P.dominant_poles(s, k=k)
        assert (len(dense.calls) - n_dense, len(sparse.calls) - n_sparse) == ((1, 0) if route == "dense" else (0, 1))
        truth = np.linalg.eigvals(R.companion(s).toarray())
        truth = truth[np.argsort(-np.abs(truth))][:min(k, K - 2) if route == "sparse" else k]
        assert w.shape == truth.shape and np.allclose(np.abs(w), np.abs(truth), rtol=1e-8, atol=0)
    assert P.dominant_poles(some_system(10)).shape == (6,)                      # k = 6 by default (sparse: 6 of 8)
    monkeypatch.setattr(P, "SPARSE_FROM_ORDER", 300)
    assert P.dominant_poles(some_system(10)).shape == (6,)                      # dense


def test_dominant_poles_limits_sorting_and_arpack_failure(monkeypatch):
    """The sparse route's order limit (both sides), its output sorted by modulus, its failure in full."""
    monkeypatch.setattr(P, "SPARSE_FROM_ORDER", 5)
    monkeypatch.setattr(P, "SPARSE_EIG_MAX_ORDER", 30)
    monkeypatch.setattr(scipy.sparse.linalg, "eigs", lambda A, k, **kwargs: np.array([0.5, -2.0, 1j, 0.25])[:k])
    assert P.dominant_poles(some_system(30), k=4).tolist() == [-2.0, 1j, 0.5, 0.25]
    with pytest.raises(GLRError, match=r"^dominant poles are limited to order <= 30, got 31$"):
        P.dominant_poles(some_system(31), k=2)

    def fail(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(scipy.sparse.linalg, "eigs", fail)
    with pytest.raises(GLRError, match=r"^sparse eigenvalues \(ARPACK\) of the order-9 companion did not converge; "
                                       r"poles of this order are not available \(dense route: order <= 256\)$"):
        P.dominant_poles(some_system(9), k=2)


# -- the stable range scan ------------------------------------------------------------------------------------
C = sp.Symbol("c", real=True)


def test_scan_refines_both_edges_of_a_stable_interval():
    """b_3 = c is stable iff |c| < 1. Its roots at angles +-2 pi / 3 fall between the 256 points, so the values above
    ~0.967 are unresolved there: the upper edge is refined from its left, the lower from its right, and c = -1 (a
    root on a point of the circle) up to MAX_POINTS = 2^22. A stretch unresolved throughout is not reported."""
    cubic = LTISystem.from_lags([3], b={3: C})
    r = S.stable_range(cubic, lo=-1.2, hi=0.999, step=0.001)
    assert r.intervals == [[-0.999, 0.999]] and (r.points, r.finest) == (256, 2**22)
    assert S.stable_range(cubic, lo=-0.999, hi=0.999, step=0.001).intervals == [[-0.999, 0.999]]
    assert S.stable_range(cubic, lo=0.99, hi=0.999, step=0.001).intervals == []


def test_scan_defaults_points_and_work_limit(monkeypatch):
    r = S.stable_range(LTISystem.from_lags([1], b={1: C}))
    assert (r.symbol, r.lo, r.hi, r.step, r.points) == ("c", -2.0, 2.0, 0.001, 256)
    assert r.intervals == [[-0.999, 0.999]]
    for lag, points in ((31, 256), (32, 512)):                                # M = 8 (K + 1) rounded up, >= 256
        assert S.stable_range(LTISystem.from_lags([lag], b={lag: C}), lo=0, hi=0.5, step=0.25).points == points
    monkeypatch.setattr(S, "SCAN_MAX_WORK", 256 * 1000)
    assert len(S.stable_range(LTISystem.from_lags([1], b={1: C}), lo=0, hi=999, step=1).intervals) == 1
    for hi, shown in ((1000, "1001"), (1233, "1234"), (1e9 - 1, "1e\\+09")):
        with pytest.raises(GLRError, match=rf"^the scan of {shown} values at 256 circle points \(order 1\) exceeds the "
                                           r"limit SCAN_MAX_WORK = 256000; use a larger step or a smaller range$"):
            S.stable_range(LTISystem.from_lags([1], b={1: C}), lo=0, hi=hi, step=1)


def test_scan_symbol_choice_and_refusals():
    d = sp.Symbol("d", real=True)
    s = LTISystem.from_lags([1, 2], b={1: 0.5, 2: C})               # stable iff -1 < c < 1/2
    assert S.stable_range(s, symbol="c", lo=-2, hi=2, step=0.25).intervals == [[-0.75, 0.25]]
    assert S.stable_range(s, symbol=C, lo=-2, hi=2, step=0.25).intervals == [[-0.75, 0.25]]
    cases = [
        (LTISystem.from_lags([1], b={1: 0.5}), {}, r"^the scan varies one symbol; the B-coefficients hold 0: none$"),
        (LTISystem.from_lags([1, 2]), {}, r"^the scan varies one symbol; the B-coefficients hold 2: b_1, b_2$"),
        (s, {"symbol": "d"}, r"^d is not a symbol of the B-coefficients$"),
        (LTISystem.from_lags([1, 2], b={1: d, 2: C}), {"symbol": "c"},
         r"^b_1 = d holds symbols other than c: the scan varies one symbol$"),
        (LTISystem.from_lags([1], b={1: C**2}), {}, r"^b_1 = c\*\*2 is not affine in c; the scan needs b_l ="),
        (LTISystem.from_lags([1], b={1: sp.sin(C)}), {}, r"^b_1 = sin\(c\) is not affine in c; "),
        (LTISystem.from_lags([1], b={1: 1 / C}), {}, r"^b_1 = 1/c is not affine in c; "),
        (LTISystem.from_lags([1], b={1: sp.Float("1e-400") * C}), {},
         r"^c does not enter the B-coefficients: stability does not depend on it$")]
    for system, kwargs, message in cases:
        with pytest.raises(GLRError, match=message):
            S.stable_range(system, **kwargs)


def test_scan_with_two_stable_intervals():
    """b = beta + c gamma on lags 1..3 with two stable stretches: each matches numpy's roots away from the edges."""
    beta, gamma = (-1.47, -1.22, -1.05), (0.96, 0.33, 0.28)
    s = LTISystem.from_lags([1, 2, 3], b={l: be + ga * C for l, be, ga in zip((1, 2, 3), beta, gamma)})
    r = S.stable_range(s, lo=-3, hi=3, step=0.01)
    assert len(r.intervals) == 2
    grid = np.round(-3 + 0.01 * np.arange(601), 12)
    for g in grid:
        rho = np.abs(np.roots([1] + [-(be + ga * g) for be, ga in zip(beta, gamma)])).max()
        inside = any(a <= g <= b for a, b in r.intervals)
        assert abs(rho - 1) < 0.02 or inside == (rho < 1), (g, rho)


def test_describe():
    r = S.StableRange("c", [[-0.5, -0.25], [0.25, 1 / 3]], -1.0, 1.0, 0.25, 256, 1024)
    assert r.describe() == ("c in [-0.5, -0.25], [0.25, 0.333333] (scan of [-1, 1] with step 0.25, 256 to 1024 points "
                            "on the unit circle)")
    assert S.StableRange("b", [], -2.0, 2.0, 0.001, 256, 256).describe() == (
        "b in no value (scan of [-2, 2] with step 0.001, 256 to 256 points on the unit circle)")
