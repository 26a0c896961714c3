"""Closed-form costs of the built-in pattern families (docs/quantities.md), as sympy expressions.

For a pattern P, ``cost_forms(P)`` gives, in the length ``n`` (per-token ones in the position ``t``):

* ``nnz_a(n)``, ``nnz_b(n)`` -- ``sum_t |A(t)|``, ``sum_t |B(t)|``;
* ``decode_cost(t)`` -- ``|A(t)| + |B(t)|``;
* ``cache_peak(n)`` -- the largest live set; ``hop_diameter(n)`` -- ``oo`` where some pair is unreachable;
* the asymptotic classes ``theta_total`` (of ``nnz_a + nnz_b``), ``theta_decode`` (of ``max_t`` decode
  cost) and ``theta_cache``, with their leading constants ``lim f(n) / theta(n)``.

Each form is an exact sympy expression, or ``Bounds(lower, upper)`` where no exact closed form is known
(then both bounds hold for every n and share the leading term). A leading constant is a number, or
``Bounds(liminf, limsup)`` where the ratio oscillates (e.g. the cache of ``power2`` lies between n/2 and
2n/3), or None where it is not known. Unions ``P + Q`` get bounds (``|X u Y|`` lies between
``max(|X|, |Y|)`` and ``|X| + |Y|``) and the larger class. User patterns (masks, sets) get None.

Every formula is derived in ``proofs/`` and checked against the exact counts for all n <= 4096 in
``tests/test_symbolic_costs.py``. ``evaluate`` turns a form into numbers (numpy, vectorized).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import numpy as np
import sympy as sp

from ..errors import GLRError
from ..patterns.rational_power import floor_rational_power
from ..patterns.registry import FAMILIES

N_SYM = sp.Symbol("n", integer=True, positive=True)
T_SYM = sp.Symbol("t", integer=True, nonnegative=True)
n, t = N_SYM, T_SYM


class popcount(sp.Function):
    """Number of one bits of a non-negative integer (binary digit sum)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Integer and x >= 0:
            return sp.Integer(bin(int(x)).count("1"))


class Bounds(NamedTuple):
    """``lower <= f <= upper`` for every admissible argument (a form with no known exact closed form)."""

    lower: sp.Expr
    upper: sp.Expr


@dataclasses.dataclass(frozen=True)
class CostForms:
    """Closed forms of one pattern (see the module docstring); forms are exact or ``Bounds``."""

    spec: str
    nnz_a: object
    nnz_b: object
    decode_cost: object
    cache_peak: object
    hop_diameter: object
    theta_total: sp.Expr | None
    theta_decode: sp.Expr | None
    theta_cache: sp.Expr | None
    const_total: object = None
    const_decode: object = None
    const_cache: object = None

    @property
    def total(self):
        """``nnz_a + nnz_b`` (exact when both are)."""
        return _add(self.nnz_a, self.nnz_b)

    def is_exact(self, name: str) -> bool:
        return not isinstance(getattr(self, name), Bounds)

    def _repr_latex_(self) -> str:
        """The forms as a LaTeX array (notebooks)."""
        def tex(f):
            return (rf"{sp.latex(f.lower)} \le \cdot \le {sp.latex(f.upper)}" if isinstance(f, Bounds)
                    else sp.latex(f))
        rows = [rf"\text{{{name.replace('_', ' ')}}} & {tex(getattr(self, name))}"
                for name in ("nnz_a", "nnz_b", "decode_cost", "cache_peak", "hop_diameter")]
        rows += [rf"\Theta\text{{ {w}}} & {sp.latex(getattr(self, 'theta_' + w))}" for w in ("total", "decode", "cache")
                 if getattr(self, "theta_" + w) is not None]
        return r"$\begin{array}{ll}" + r" \\ ".join(rows) + r"\end{array}$"

    def __str__(self) -> str:
        rows = [f"closed forms of {self.spec} (n = length, t = position)"]
        for name in ("nnz_a", "nnz_b", "decode_cost", "cache_peak", "hop_diameter"):
            f = getattr(self, name)
            text = f"{f.lower}  <=  .  <=  {f.upper}" if isinstance(f, Bounds) else str(f)
            rows.append(f"  {name:13s} {text}")
        for what in ("total", "decode", "cache"):
            th, c = getattr(self, f"theta_{what}"), getattr(self, f"const_{what}")
            c = f"[{c.lower}, {c.upper}]" if isinstance(c, Bounds) else c
            rows.append(f"  theta_{what:7s} {th}   (leading constant {c})")
        return "\n".join(rows)


# -- numeric evaluation ---------------------------------------------------------------------------

_GUARD = 1e-12  # relative float guard for floor/ceil of exact integers (such as log(8)/log(2))


def _np_floor(x):
    x = np.asarray(x, dtype=np.float64)
    return np.floor(x + _GUARD * np.maximum(1.0, np.abs(x)))


def _np_ceil(x):
    x = np.asarray(x, dtype=np.float64)
    return np.ceil(x - _GUARD * np.maximum(1.0, np.abs(x)))


def _np_floor_pow(x, num, den):
    return floor_rational_power(x, int(num), int(den))[0]


def _np_ceil_pow(x, num, den):
    low, is_int = floor_rational_power(x, int(num), int(den))
    return low + ~is_int


def _np_popcount(x):
    x = np.asarray(np.rint(x), dtype=np.int64)
    return np.bitwise_count(np.maximum(x, 0)).astype(np.float64)


_FLOOR_POW, _CEIL_POW = sp.Function("floor_pow"), sp.Function("ceil_pow")
_MODULES = [{"floor": _np_floor, "ceiling": _np_ceil, "popcount": _np_popcount,
             "floor_pow": _np_floor_pow, "ceil_pow": _np_ceil_pow}, "numpy"]


def _is_root_power(e) -> bool:
    """floor/ceiling of ``x^(num/den)`` with a non-integer rational exponent."""
    return (isinstance(e, (sp.floor, sp.ceiling)) and e.args[0].is_Pow and e.args[0].exp.is_Rational
            and not e.args[0].exp.is_Integer)


def _exact_root_power(e):
    base, q = e.args[0].base, e.args[0].exp
    return (_FLOOR_POW if isinstance(e, sp.floor) else _CEIL_POW)(base, q.p, q.q)


def evaluate(form, n_values=None, t_values=None):
    """A form at many arguments -> float64 array (``Bounds`` -> a pair of arrays), vectorized.

    ``floor(x^(p/q))`` and ``ceiling(x^(p/q))`` of integers x are exact (``floor_rational_power``:
    float64 for the bulk, integer or high-precision arithmetic near integers). Other floor/ceil carry
    a relative guard of 1e-12 so that exact integers computed in floating point (such as
    ``log(8)/log(2)``) round correctly.
    """
    if isinstance(form, Bounds):
        return Bounds(evaluate(form.lower, n_values, t_values), evaluate(form.upper, n_values, t_values))
    expr = sp.sympify(form).replace(_is_root_power, _exact_root_power)
    expr = expr.replace(sp.floor, sp.Function("floor")).replace(sp.ceiling, sp.Function("ceiling"))
    f = sp.lambdify((N_SYM, T_SYM), expr, modules=_MODULES)
    nv = np.zeros(1) if n_values is None else np.asarray(n_values, dtype=np.float64)
    tv = np.zeros(1) if t_values is None else np.asarray(t_values, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = f(nv, tv)
    shape = np.broadcast_shapes(nv.shape, tv.shape)
    return np.broadcast_to(np.asarray(out, dtype=np.float64), shape).copy()


# -- helpers --------------------------------------------------------------------------------------

def _lo(f):
    return f.lower if isinstance(f, Bounds) else f


def _hi(f):
    return f.upper if isinstance(f, Bounds) else f


def _add(f, g):
    if isinstance(f, Bounds) or isinstance(g, Bounds):
        return Bounds(_lo(f) + _lo(g), _hi(f) + _hi(g))
    return f + g


def _bigger(f, g):
    """The larger of two asymptotic classes (sympy expressions in n); None if either is unknown."""
    if f is None or g is None:
        return None
    r = sp.limit(f / g, n, sp.oo) if g != 0 else sp.oo
    return f if r == sp.oo or r.is_positive else g


def _union_const(cf, cg, f, g, h):
    """Leading constant of a union whose class is h: the dominant term's, or between max and sum."""
    sides = [c for c, cls in ((cf, f), (cg, g)) if cls is not None and h is not None
             and sp.limit(cls / h, n, sp.oo) != 0]
    if any(c is None for c in sides) or not sides:
        return None
    if len(sides) == 1:
        return sides[0]
    lo = sp.Max(*[_lo(c) for c in sides])
    return Bounds(lo, sp.Add(*[_hi(c) for c in sides]))


def _union(f: CostForms, g: CostForms) -> CostForms:
    """``|X u Y|`` lies between ``max(|X|, |Y|)`` and ``|X| + |Y|``; live sets unite; hops only drop."""
    def both(a, b):
        return Bounds(sp.Max(_lo(a), _lo(b)), _hi(a) + _hi(b))

    classes = {w: _bigger(getattr(f, f"theta_{w}"), getattr(g, f"theta_{w}")) for w in ("total", "decode", "cache")}
    consts = {w: _union_const(getattr(f, f"const_{w}"), getattr(g, f"const_{w}"), getattr(f, f"theta_{w}"),
                              getattr(g, f"theta_{w}"), classes[w]) for w in ("total", "decode", "cache")}
    return CostForms(f"{f.spec}+{g.spec}", both(f.nnz_a, g.nnz_a), both(f.nnz_b, g.nnz_b),
                     both(f.decode_cost, g.decode_cost), both(f.cache_peak, g.cache_peak),
                     Bounds(sp.Integer(0), sp.Min(_hi(f.hop_diameter), _hi(g.hop_diameter))),
                     classes["total"], classes["decode"], classes["cache"],
                     consts["total"], consts["decode"], consts["cache"])


def _term_forms(term) -> CostForms | None:
    """The closed forms of one family term (None when its family has none), labelled with its spec."""
    family = FAMILIES.get(term.family)
    forms = None if family is None else family.closed_forms(*term.params)
    return None if forms is None else dataclasses.replace(forms, spec=term.spec)


def forms_unavailable(p) -> str | None:
    """Why ``cost_forms(p)`` is None (a user pattern, or a family without closed forms); None if it is not."""
    if not p.terms:
        return f"{p.spec!r} is a user pattern (no family terms): no closed forms"
    for term in p.terms:
        family = FAMILIES.get(term.family)
        if family is None or family.forms is None:
            return f"family {term.family!r} has no closed forms"
    return None


def cost_forms(p) -> CostForms | None:
    """Closed forms of a pattern built from families (a union of family terms), read from its terms;
    None for a user pattern or a family without closed forms (``forms_unavailable`` says which)."""
    if forms_unavailable(p) is not None:
        return None
    forms = [_term_forms(term) for term in p.terms]
    out = forms[0]
    for f in forms[1:]:
        out = _union(out, f)
    return out


def theta(p) -> dict:
    """``{"theta_total", "theta_decode", "theta_cache"}`` as sympy strings, None where unknown: the classes
    of ``cost_forms(p)``, folded from the terms' classes with ``_bigger`` as ``_union`` folds them, without
    the union's bounds (sympy's ``Max`` of many terms took seconds a term)."""
    keys = ("theta_total", "theta_decode", "theta_cache")
    if forms_unavailable(p) is not None:
        return dict.fromkeys(keys)
    forms = [_term_forms(term) for term in p.terms]
    classes = {k: functools.reduce(_bigger, [getattr(f, k) for f in forms]) for k in keys}
    return {k: None if c is None else str(c) for k, c in classes.items()}


def total_cost_bound(p) -> sp.Expr:
    """``nnz_a + nnz_b`` as a sympy expression in n: exact where known, else the upper bound
    (``glrtheory.analysis.total_cost`` is the exact integer at one n)."""
    f = cost_forms(p)
    if f is None:
        raise GLRError(f"no closed form: {forms_unavailable(p)}")
    return _hi(f.total)
