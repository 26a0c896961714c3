"""LTI patterns as filters: transfer function, poles and zeros, impulse responses (docs/mathematics.md).

When the coefficients of a pattern depend only on the lag, ``a[t, t-j] = a_j`` and ``b[t, t-l] = b_l``,
the recurrence ``h_t = sum_j a_j u_{t-j} + sum_l b_l h_{t-l}`` is a linear time-invariant filter with

    H(z) = a(z) / (1 - sum_l b_l z^-l),     a(z) = sum_j a_j z^-j,

and its mixing matrix ``M = (I - B)^{-1} A`` is the lower-triangular Toeplitz matrix of the impulse
response, ``M[t, s] = h_{t-s}`` (``proofs/lti_toeplitz.py``).

**The finite lag set.** A lag family such as ``power2`` has lags that grow with the length n (all
``2^k <= n-1``), so the LTI layer is always taken *at a sequence length n*: the A- and B-lags are the
pattern's lags at length n (every lag <= n-1). The resulting filter reproduces the pattern exactly on
sequences of length n; its poles, stability and memory describe that truncated lag set run forever.

Coefficients are sympy expressions: numbers or symbols. A lag without a given value gets the real symbol
``b_l`` (``a_j`` on the A-side); numeric routes (numeric poles, responses, scipy/control conversion) then
raise ``GLRError`` naming the unset symbols; substitute them with ``LTISystem.subs``.

Realizations live in ``lti_realization``, poles in ``lti_poles``, stability and memory in ``lti_stability``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import sympy as sp

from ..checks import check_integer
from ..errors import GLRError
from ..patterns import Pattern

#: The transform variable z (H is a rational function of z^-1).
Z = sp.Symbol("z")
#: Time index of closed-form impulse responses.
T = sp.Symbol("t", integer=True, nonnegative=True)
#: Most lags on one side that a system may hold (sympy expressions grow with every term).
MAX_LAGS = 4096
#: Largest order (degree of the characteristic polynomial) for exact poles and closed-form responses.
CLOSED_FORM_MAX_ORDER = 4
#: Largest exact closed-form impulse response (sympy operations) that is simplified; larger ones, as the Cardano and
#: Ferrari radicals of cubic and quartic poles give them, come back as fitted: ``sp.simplify`` took 40 s on lags 1, 3
#: with b = 1/2, 1/3 (1797 operations) and did not finish in minutes on lags 1, 2, 3 with symbols (5119).
SIMPLIFY_MAX_OPS = 1500
#: Largest number of response values times lags computed by the recurrence in one call.
MAX_RESPONSE_WORK = 10**8


def _symbol(prefix: str, lag: int) -> sp.Symbol:
    return sp.Symbol(f"{prefix}_{lag}", real=True)


def _value(v, what: str) -> sp.Expr:
    """One coefficient as a sympy expression; numbers must be finite and real."""
    if isinstance(v, bool) or v is None:
        raise GLRError(f"coefficient {what} must be a number or a sympy expression, got {v!r}")
    if isinstance(v, sp.Basic):
        expr = v
    elif isinstance(v, numbers.Real):
        if not math.isfinite(float(v)):
            raise GLRError(f"coefficient {what} is not finite: {v!r}")
        expr = sp.Integer(int(v)) if isinstance(v, numbers.Integral) else sp.Float(float(v))
    elif isinstance(v, str):
        try:
            expr = sp.sympify(v, locals={"z": Z})
        except (sp.SympifyError, SyntaxError, TypeError) as exc:
            raise GLRError(f"coefficient {what} is not a number or expression: {v!r}") from exc
    else:
        raise GLRError(f"coefficient {what} must be a real number or a sympy expression, got {v!r}")
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan) or (expr.is_number and not expr.is_finite):
        raise GLRError(f"coefficient {what} is not finite: {expr}")
    if expr.is_number and expr.is_real is False:
        raise GLRError(f"coefficient {what} must be real, got {expr}")
    if Z in expr.free_symbols:
        raise GLRError(f"coefficient {what} must not depend on z")
    return expr


def _coefficients(values, lags, prefix: str) -> dict[int, sp.Expr]:
    """``{lag: expr}`` for every lag. values: None (symbols), one value for all, a mapping, a sequence."""
    lags = [int(l) for l in lags]
    if len(lags) > MAX_LAGS:
        raise GLRError(f"{len(lags)} {prefix}-lags exceed the limit of {MAX_LAGS} lags per side")
    if values is None:
        return {l: _symbol(prefix, l) for l in lags}
    if isinstance(values, Mapping):
        unknown = sorted(set(map(int, values)) - set(lags))
        if unknown:
            side = prefix.upper()
            raise GLRError(f"{side}-lag {unknown[0]} is not a lag of the pattern "
                           f"({side}-lags: {', '.join(map(str, lags)) or 'none'})")
        given = {int(k): _value(v, f"{prefix}_{int(k)}") for k, v in values.items()}
        return {l: given.get(l, _symbol(prefix, l)) for l in lags}
    if isinstance(values, (list, tuple, np.ndarray)):
        if len(values) != len(lags):
            raise GLRError(f"{len(values)} {prefix}-coefficients given for {len(lags)} {prefix}-lags {lags}")
        return {l: _value(v, f"{prefix}_{l}") for l, v in zip(lags, values)}
    v = _value(values, f"{prefix} (all lags)")
    return {l: v for l in lags}


class ImpulseFormula(NamedTuple):
    """Closed-form impulse response: ``h_t = expr(t)`` for ``t >= valid_from``, ``head`` before."""

    expr: sp.Expr
    valid_from: int
    head: list

    def __call__(self, t: int):
        return self.head[t] if t < self.valid_from else self.expr.subs(T, t)

    def evaluate(self, length: int, digits: int = 30) -> np.ndarray:
        """``h_0 .. h_{length-1}`` as complex128, the formula evaluated in ``digits``-digit mpmath."""
        import mpmath

        free = sorted(s.name for s in self.expr.free_symbols - {T})
        if free:
            raise GLRError(f"evaluating the formula needs numbers for {', '.join(free)}")
        f = sp.lambdify(T, self.expr, "mpmath")
        with mpmath.workdps(digits):
            return np.array([complex(sp.N(self.head[t])) if t < self.valid_from else complex(f(t))
                             for t in range(_length(length))])


class LTISystem:
    """The LTI filter ``h_t = sum_j a_j u_{t-j} + sum_l b_l h_{t-l}`` with ``H(z) = a(z) / (1 - b(z))``.

    ``a``, ``b``: ``{lag: sympy expression}`` (A-lags >= 0, B-lags >= 1). Build one with
    ``LTISystem.from_pattern(p, n=..., b=..., a=...)``, ``from_lags`` or ``from_transfer_function``.
    """

    def __init__(self, a: Mapping[int, sp.Expr], b: Mapping[int, sp.Expr], spec: str = "custom",
                 n: int | None = None):
        if any(l < 0 for l in a) or any(l < 1 for l in b):
            raise GLRError("A-lags must be >= 0 and B-lags >= 1")
        if not a:
            raise GLRError("an LTI system needs at least one A-lag (otherwise H = 0)")
        self.a = {int(l): _value(a[l], f"a_{l}") for l in sorted(a)}
        self.b = {int(l): _value(b[l], f"b_{l}") for l in sorted(b)}
        self.spec = spec
        self.n = n

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_pattern(cls, pattern: Pattern | str, n: int, b=None, a=1) -> "LTISystem":
        """The filter of an LTI pattern at sequence length n (its lags <= n-1).

        ``b`` / ``a``: None (a real symbol ``b_l`` / ``a_j`` per lag), one value for every lag, a mapping
        ``{lag: value}`` (missing lags become symbols) or a sequence aligned with the sorted lags.
        Values are numbers or sympy expressions. Raises GLRError unless both supports are lag sets.
        """
        p = Pattern.from_spec(pattern) if isinstance(pattern, str) else pattern
        if not isinstance(p, Pattern):
            raise GLRError(f"expected a Pattern or a spec string, got {type(pattern).__name__}")
        sa, sb = p.support_a(n), p.support_b(n)
        for side, s in (("A", sa), ("B", sb)):
            if s.lags is None:
                raise GLRError(f"pattern {p.spec!r} is not LTI: its {side}-support at n={n} is not a "
                               "translation-invariant lag set")
        if not sa.lags.size:
            raise GLRError(f"pattern {p.spec!r} has no A-lag at n={n}: H = 0")
        return cls(_coefficients(a, sa.lags, "a"), _coefficients(b, sb.lags, "b"), spec=p.spec, n=int(n))

    @classmethod
    def from_lags(cls, b_lags, a_lags=(0,), b=None, a=1) -> "LTISystem":
        """The filter with explicit lag sets (coefficients as in ``from_pattern``)."""
        p = Pattern.from_lags(a_lags, b_lags)
        lags = [int(x) for x in a_lags] + [int(x) for x in b_lags]
        return cls.from_pattern(p, n=max(lags, default=0) + 1, b=b, a=a)

    @classmethod
    def from_transfer_function(cls, H, z: sp.Symbol = Z) -> "LTISystem":
        """Read ``a_j``, ``b_l`` off a rational function of z (normalized so that b(z) has constant 1)."""
        H = sp.sympify(H)
        q = sp.Dummy("q")
        num, den = sp.fraction(sp.cancel(sp.together(H.subs(z, 1 / q))))
        if not den.has(q) and not num.has(q) and not H.has(z):
            num, den = H, sp.Integer(1)
        try:
            pn, pd = sp.Poly(num, q), sp.Poly(den, q)
        except sp.PolynomialError as exc:
            raise GLRError(f"H is not a rational function of z: {H}") from exc
        d0 = pd.coeff_monomial(1)
        if d0.is_zero:
            raise GLRError(f"H is not causal (its denominator in z^-1 has no constant term): {H}")
        a = {int(m[0]): sp.simplify(c / d0) for m, c in zip(pn.monoms(), pn.coeffs())}
        b = {int(m[0]): sp.simplify(-c / d0) for m, c in zip(pd.monoms(), pd.coeffs()) if m[0] > 0}
        return cls(a or {0: sp.Integer(0)}, b, spec="transfer-function")

    def subs(self, values: Mapping) -> "LTISystem":
        """A copy with symbols replaced: keys are sympy symbols or their names (``"b_1"``)."""
        named = {s.name: s for s in self.free_symbols}
        rep = {}
        for k, v in values.items():
            sym = named.get(k) if isinstance(k, str) else k
            if sym is None:
                raise GLRError(f"no coefficient symbol named {k!r}; free symbols: {sorted(named)}")
            rep[sym] = _value(v, str(k))
        return LTISystem({l: e.subs(rep) for l, e in self.a.items()}, {l: e.subs(rep) for l, e in self.b.items()},
                         spec=self.spec, n=self.n)

    # -- structure -------------------------------------------------------------------------------
    @property
    def a_lags(self) -> tuple[int, ...]:
        return tuple(self.a)

    @property
    def b_lags(self) -> tuple[int, ...]:
        return tuple(self.b)

    @property
    def order(self) -> int:
        """State dimension K = max(largest B-lag, largest A-lag): the size of the companion matrix."""
        return max(max(self.b, default=0), max(self.a, default=0))

    @property
    def free_symbols(self) -> set[sp.Symbol]:
        return self.b_symbols.union(*(e.free_symbols for e in self.a.values()))

    @property
    def b_symbols(self) -> set[sp.Symbol]:
        """The symbols of the B-coefficients (those the stability region and the scan are in)."""
        return set().union(*(e.free_symbols for e in self.b.values()))

    @property
    def is_numeric(self) -> bool:
        return not self.free_symbols

    def pattern(self) -> Pattern:
        """The lag pattern ``A(t) = {t - j}``, ``B(t) = {t - l}`` of this filter."""
        return Pattern.from_lags(self.a_lags, self.b_lags, spec=self.spec)

    def numeric_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense float64 ``a[0..K]`` and ``[1, -b_1, ..., -b_K]``: numerator and denominator in z^-1."""
        self._require_numeric("numeric coefficients")
        K = self.order
        num, den = np.zeros(K + 1), np.zeros(K + 1)
        den[0] = 1.0
        for l, e in self.a.items():
            num[l] = float(e)
        for l, e in self.b.items():
            den[l] = -float(e)
        if not (np.isfinite(num).all() and np.isfinite(den).all()):
            raise GLRError("coefficients overflow float64")
        return num, den

    def _require_numeric(self, what: str) -> None:
        free = sorted((s.name for s in self.free_symbols), key=lambda x: (len(x), x))
        if free:
            raise GLRError(f"{what} needs numbers, but coefficient symbols {', '.join(free)} are unset "
                           "(give them values, e.g. with .subs)")

    # -- transfer function -----------------------------------------------------------------------
    def numerator(self, z: sp.Symbol = Z) -> sp.Expr:
        """``a(z) = sum_j a_j z^-j``."""
        return sp.Add(*[c * z**-l for l, c in self.a.items()])

    def denominator(self, z: sp.Symbol = Z) -> sp.Expr:
        """``1 - sum_l b_l z^-l``."""
        return 1 - sp.Add(*[c * z**-l for l, c in self.b.items()])

    def transfer_function(self, z: sp.Symbol = Z) -> sp.Expr:
        """``H(z) = a(z) / (1 - sum_l b_l z^-l)``, a sympy rational function in z^-1."""
        return self.numerator(z) / self.denominator(z)

    def transfer_function_string(self) -> str:
        """H(z) as a sympy-parsable string with terms in lag order, e.g. ``1/(1 - 0.5*z**-1)``."""
        def term(c, l):
            s = sp.sstr(c, full_prec=False)
            s = s if isinstance(c, (sp.Symbol, sp.Number)) else f"({s})"
            return s if l == 0 else (f"z**-{l}" if _is_one(c) else f"{s}*z**-{l}")
        num = _poly(self.a.items(), None, term)
        if not self.b:
            return num
        den = _poly([(l, -c) for l, c in self.b.items()], "1", term)
        return f"({num})/({den})" if len(self.a) > 1 else f"{num}/({den})"

    def latex(self) -> str:
        """``H(z) = \\frac{...}{...}`` with the terms in lag order (powers of z^{-1})."""
        def term(c, l):
            s = sp.latex(c, full_prec=False)
            s = f"\\left({s}\\right)" if isinstance(c, sp.Add) else s
            return s if l == 0 else (f"z^{{-{l}}}" if _is_one(c) else f"{s} z^{{-{l}}}")
        num = _poly(self.a.items(), None, term)
        den = _poly([(l, -c) for l, c in self.b.items()], "1", term)
        return f"H(z) = \\frac{{{num}}}{{{den}}}" if self.b else f"H(z) = {num}"

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        return (f"LTISystem({self.spec!r}{'' if self.n is None else f', n={self.n}'}: "
                f"H(z) = {self.transfer_function_string()})")

    # -- polynomials, poles and zeros --------------------------------------------------------------
    def characteristic_polynomial(self, z: sp.Symbol = Z) -> sp.Poly:
        """``z^K - sum_l b_l z^{K-l}`` (K = ``order``): its roots are the poles, the companion's eigenvalues."""
        K = self.order
        return sp.Poly(z**K - sp.Add(*[c * z**(K - l) for l, c in self.b.items()]), z)

    def zero_polynomial(self, z: sp.Symbol = Z) -> sp.Poly:
        """``sum_j a_j z^{K-j}``: H = zero_polynomial / characteristic_polynomial (no cancellation)."""
        K = self.order
        return sp.Poly(sp.Add(*[c * z**(K - l) for l, c in self.a.items()]), z)

    def poles(self) -> list[sp.Expr]:
        """The K poles, with multiplicity, exact: radicals where sympy finds them, ``CRootOf`` for
        rational coefficients; GLRError for symbolic coefficients beyond what sympy solves."""
        return _exact_roots(self.characteristic_polynomial(), "poles")

    def zeros(self) -> list[sp.Expr]:
        """The finite zeros (roots of ``zero_polynomial``), with multiplicity, exact as in ``poles``."""
        return _exact_roots(self.zero_polynomial(), "zeros")

    def numeric_poles(self) -> np.ndarray:
        """The K poles as complex128: eigenvalues of the companion (``lti_poles.companion_poles``,
        which warns when the companion is too ill-conditioned to trust)."""
        from .lti_poles import companion_poles

        return companion_poles(self)

    def numeric_zeros(self) -> np.ndarray:
        """The finite zeros as complex128 (numpy roots of the numerator polynomial)."""
        num, _ = self.numeric_coefficients()
        nz = np.flatnonzero(num)
        if not nz.size:
            return np.zeros(0, dtype=complex)
        return np.roots(num[nz[0]:]).astype(complex)

    def partial_fractions(self, z: sp.Symbol = Z) -> sp.Expr:
        """H(z) split into partial fractions over its poles (sympy ``apart(..., full=True)``); float coefficients
        are taken at their exact binary value, as the pole routes take them."""
        self._check_closed_form_order("partial fractions")
        H = sp.together(self.transfer_function(z))
        if self.is_numeric:
            H = _exact(H)
        return sp.apart(H, z, full=True).doit()

    def _all(self) -> list[sp.Expr]:
        return list(self.a.values()) + list(self.b.values())

    def _check_closed_form_order(self, what: str, order: int | None = None) -> None:
        order = self.order if order is None else order
        if order > CLOSED_FORM_MAX_ORDER:
            raise GLRError(f"{what} in closed form is limited to order <= {CLOSED_FORM_MAX_ORDER}, got "
                           f"order {order}; use the numeric routes")

    # -- impulse response --------------------------------------------------------------------------
    def impulse_response(self, length: int) -> np.ndarray:
        """``h_0 .. h_{length-1}`` in float64 from the sparse recurrence itself,
        ``h_t = a_t + sum_l b_l h_{t-l}``, vectorized over blocks of the smallest B-lag (any order)."""
        length = _length(length)
        num, _ = self.numeric_coefficients()
        lags = np.array(self.b_lags, dtype=np.int64)
        vals = np.array([float(self.b[l]) for l in self.b_lags])
        if length * max(lags.size, 1) // (int(lags[0]) if lags.size else 1) > MAX_RESPONSE_WORK:
            raise GLRError(f"impulse response of length {length} with {lags.size} lags exceeds the limit of "
                           f"{MAX_RESPONSE_WORK} multiply-adds")
        h = np.zeros(length)
        m = min(length, num.size)
        h[:m] = num[:m]
        if not lags.size:
            return h
        step = int(lags[0])
        with np.errstate(over="ignore", invalid="ignore"):
            for t0 in range(step, length, step):
                t1 = min(t0 + step, length)
                for l, c in zip(lags, vals):
                    if l > t1 - 1:
                        break
                    s = max(t0 - l, 0)
                    h[s + l:t1] += c * h[s:t1 - l]
        return h

    def impulse_response_symbolic(self, length: int) -> list[sp.Expr]:
        """``h_0 .. h_{length-1}`` as sympy expressions (the recurrence, exact; expanded)."""
        length = _length(length)
        if length * max(len(self.b), 1) > 10**5:
            raise GLRError(f"symbolic impulse responses are limited to 10^5 terms, got length {length}")
        h = []
        for t in range(length):
            v = self.a.get(t, sp.Integer(0)) + sp.Add(*[c * h[t - l] for l, c in self.b.items() if l <= t])
            h.append(sp.expand(v))
        return h

    def impulse_response_formula(self) -> ImpulseFormula:
        """Closed form ``h_t = sum_i sum_{k < m_i} c_ik t^k p_i^t`` over the non-zero poles ``p_i``
        (multiplicity ``m_i``), for ``t >= valid_from = max(0, J + 1 - L')`` (J: largest A-lag, L': the
        order without poles at 0), fitted to the first L' values of the recurrence -- what ``rsolve``
        does. Largest B-lag <= 4; float coefficients are solved in 30-digit precision, with the poles
        and multiplicities of ``float_root_multiplicities`` (exact square-free factors); exact forms are simplified
        up to ``SIMPLIFY_MAX_OPS`` operations."""
        self._check_closed_form_order("the impulse response", max(self.b, default=0))
        P = self.characteristic_polynomial()
        m0 = 0
        while m0 < P.degree() and P.coeff_monomial(Z**m0).is_zero:
            m0 += 1
        L = P.degree() - m0
        J = max(self.a)
        start = max(0, J + 1 - L)
        head = self.impulse_response_symbolic(start + L)
        if L == 0:
            return ImpulseFormula(sp.Integer(0), start, head)
        Q = sp.Poly(P.all_coeffs()[:P.degree() + 1 - m0], Z)
        floats = _floats_only(self._all())
        roots = (float_root_multiplicities(Q, "impulse response") if floats
                 else _root_multiplicities(Q, "impulse response"))
        basis = [(p, k) for p, m in roots.items() for k in range(m)]
        V = sp.Matrix(L, L, lambda i, j: (start + i) ** basis[j][1] * basis[j][0] ** (start + i))
        rhs = sp.Matrix(head[start:start + L])
        if floats:
            V, rhs = V.evalf(30), rhs.evalf(30)
        try:
            c = V.LUsolve(rhs)
        except (ValueError, ZeroDivisionError, sp.matrices.exceptions.NonInvertibleMatrixError) as exc:
            raise GLRError(f"could not fit the closed-form impulse response: {exc}") from None
        expr = sp.Add(*[ci * T**k * p**T for ci, (p, k) in zip(c, basis)])
        small = not floats and sp.count_ops(expr) <= SIMPLIFY_MAX_OPS
        return ImpulseFormula(sp.simplify(expr) if small else expr, start, head[:start])

    def frequency_response(self, points: int = 512, whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(omega, H)``: ``H(e^{i omega}) = sum_j a_j e^{-i omega j} / (1 - sum_l b_l e^{-i omega l})`` at
        ``omega = pi k / points`` (``2 pi k / points`` when ``whole``), k = 0..points-1, as scipy's
        ``freqz``. Magnitude ``abs(H)``, phase ``angle(H)``; evaluated over the lags (O(points * lags)).
        H is ``inf`` where a pole lies on the unit circle."""
        points = check_integer(points, "frequency points", 1)
        num, den = self.numeric_coefficients()
        a_lags, b_lags = np.flatnonzero(num), np.flatnonzero(den)
        if points * (a_lags.size + b_lags.size) > MAX_RESPONSE_WORK:
            raise GLRError(f"frequency response at {points} points over {a_lags.size + b_lags.size} lags exceeds "
                           f"the limit of {MAX_RESPONSE_WORK} terms")
        omega = (2 if whole else 1) * np.pi * np.arange(points) / points
        # both sides scaled by a power of two (exact) so that the sums of huge coefficients do not overflow; the
        # sums are then finite and the divisor is never 0, so only H itself can overflow (to inf)
        ea, eb = (int(np.frexp(np.abs(x).max())[1]) for x in (num, den))
        with np.errstate(over="ignore"):
            top = np.exp(-1j * np.outer(omega, a_lags)) @ np.ldexp(num[a_lags], -ea)
            bottom = np.exp(-1j * np.outer(omega, b_lags)) @ np.ldexp(den[b_lags], -eb)
            ratio = top / np.where(bottom == 0, 1, bottom)
            H = np.where(bottom == 0, np.inf, np.ldexp(ratio.real, ea - eb) + 1j * np.ldexp(ratio.imag, ea - eb))
        return omega, H

    def toeplitz_matrix(self, n: int) -> np.ndarray:
        """``M[t, s] = h_{t-s}``: the Toeplitz mixing matrix of the filter at length n (float64)."""
        from ..recurrence import DENSE_MAX_N
        import scipy.linalg

        if _length(n) > DENSE_MAX_N:
            raise GLRError(f"dense mixing matrices are limited to n <= {DENSE_MAX_N}, got n={n}")
        return scipy.linalg.toeplitz(self.impulse_response(n), np.zeros(n))

    def coefficient_tables(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Constant-coefficient arrays ``a[n, wa]``, ``b[n, wb]`` aligned with ``self.pattern().tables(n)``
        (slot value = coefficient of the lag ``t - idx``), for ``glrtheory.solve``."""
        num, den = self.numeric_coefficients()
        a_idx, b_idx = self.pattern().tables(n)
        t = np.arange(n)[:, None]
        a = np.where(a_idx >= 0, num[np.clip(t - a_idx, 0, num.size - 1)], 0.0)
        b = np.where(b_idx >= 0, -den[np.clip(t - b_idx, 0, den.size - 1)], 0.0)
        return a, b

    # -- conversions -------------------------------------------------------------------------------
    def to_dlti(self):
        """``scipy.signal.dlti`` with numerator and denominator in descending powers of z (dt = 1)."""
        import scipy.signal

        num, den = self.numeric_coefficients()
        return scipy.signal.dlti(num, den, dt=1)

    def to_control(self):
        """``control.TransferFunction`` (discrete, dt = True); needs python-control."""
        try:
            import control
        except ImportError:
            raise GLRError("to_control needs python-control: pip install control") from None
        num, den = self.numeric_coefficients()
        return control.TransferFunction(num, den, True)

    def lfilter_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """``(b, a)`` for ``scipy.signal.lfilter`` (its b is our numerator, its a our denominator)."""
        return self.numeric_coefficients()


def _is_one(c) -> bool:
    """Whether the coefficient c is the number 1 (``Float(1.0) == 1`` is False in sympy)."""
    return c.is_Number and float(c) == 1.0


def _poly(terms, lead, term) -> str:
    """``lead + sum_l c_l z^-l`` as text, with ``term(c, l)`` formatting one term and signs pulled out
    (terms with a zero coefficient are left out)."""
    out = lead or ""
    for l, c in terms:
        if c.is_zero:
            continue
        neg = c.could_extract_minus_sign()
        body = term(-c if neg else c, l)
        out = (f"{out} - {body}" if out else f"-{body}") if neg else (f"{out} + {body}" if out else body)
    return out or "0"


def _length(length) -> int:
    return check_integer(length, "response length", 1)


def _root_multiplicities(P: sp.Poly, what: str) -> dict:
    """Exact roots ``{root: multiplicity}``: radicals (sympy.roots), else CRootOf for rational coefficients."""
    if P.degree() <= 0:
        return {}
    r = sp.roots(P)
    if sum(r.values()) == P.degree():
        return r
    if all(c.is_rational for c in P.all_coeffs()):
        out = {}
        for x in P.all_roots():
            out[x] = out.get(x, 0) + 1
        return out
    raise GLRError(f"sympy finds no closed form for the {what} of this degree-{P.degree()} polynomial "
                   "with symbolic coefficients; substitute numbers")


def _exact_roots(P: sp.Poly, what: str) -> list[sp.Expr]:
    if P.degree() > CLOSED_FORM_MAX_ORDER and not all(c.is_rational for c in P.all_coeffs()):
        raise GLRError(f"exact {what} are limited to degree <= {CLOSED_FORM_MAX_ORDER} unless the "
                       f"coefficients are rational, got degree {P.degree()}; use the numeric route")
    if _floats_only(P.all_coeffs()):
        roots = float_root_multiplicities(P, what)
        return [sp.Float(0) if x == 0 else x for x, m in roots.items() for _ in range(m)]
    return [x for x, m in _root_multiplicities(P, what).items() for _ in range(m)]


def _floats_only(coefficients) -> bool:
    """Numbers with a Float among them (the float route); Floats mixed with symbols take the exact route."""
    return any(c.has(sp.Float) for c in coefficients) and all(c.is_number for c in coefficients)


def _exact(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every Float replaced by the exact rational of its binary value (``sp.Rational(Float)``)."""
    return expr.xreplace({f: sp.Rational(f) for f in expr.atoms(sp.Float)})


def _rationalized(P: sp.Poly) -> sp.Poly:
    """P with every Float replaced by the exact rational of its binary value (``_exact``)."""
    return sp.Poly(_exact(P.as_expr()), *P.gens)


def float_root_multiplicities(P: sp.Poly, what: str, digits: int = 30) -> dict:
    """``{root: multiplicity}`` of a polynomial with float coefficients, the roots to ``digits`` digits:
    the coefficients are rationalized exactly, split by square-free factorization (``sqf_list``: a
    factor of multiplicity m has simple roots), and each factor's roots are found by mpmath. Repeated
    roots are therefore merged exactly, not by a distance test. GLRError when that fails."""
    from mpmath.libmp import NoConvergence

    if P.degree() <= 0:
        return {}
    out = {}
    try:
        for f, m in _rationalized(P).sqf_list()[1]:
            for x in f.nroots(n=digits, maxsteps=500):
                out[x] = out.get(x, 0) + m
    except (NoConvergence, sp.PolynomialError) as exc:
        raise GLRError(f"the {what}: {digits}-digit roots of the square-free factors of the degree-"
                       f"{P.degree()} polynomial did not converge ({exc})") from None
    return dict(sorted(out.items(), key=lambda xm: (not xm[0].is_real, *xm[0].as_real_imag())))  # reals first
