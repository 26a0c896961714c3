"""Closed-form costs of the built-in pattern families (DESIGN.md section 2), as sympy expressions.

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
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import sympy as sp

from ..errors import GLRError
from ..patterns.families import floor_rational_power

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


def _ilog(x, base):
    """``floor(log_base x)`` for x >= 1."""
    return sp.floor(sp.log(x) / sp.log(base))


def _at_least(k: int, expr, below=0):
    """``expr`` for n >= k, ``below`` for smaller n."""
    return sp.Piecewise((below, N_SYM < k), (expr, True))


def _ones_from(k: int, var=T_SYM):
    """Indicator ``[var >= k]`` for integer var."""
    return sp.Piecewise((0, var < k), (1, True))


LOG2 = sp.log(2)


# -- families -------------------------------------------------------------------------------------

def _ssm() -> CostForms:
    return CostForms("ssm", n, n - 1, 1 + _ones_from(1), sp.Min(1, n - 1), n - 1,
                     n, sp.Integer(1), sp.Integer(1), 2, 2, 1)


def _attention() -> CostForms:
    return CostForms("attention", n * (n + 1) / 2, sp.Integer(0), t + 1, n - 1, sp.Integer(0),
                     n**2, n, n, sp.Rational(1, 2), 1, 1)


def _window(w: int) -> CostForms:
    m = sp.Min(n, w)
    cache_class = sp.Integer(1) if w > 1 else sp.Integer(0)
    return CostForms(f"window:{w}", m * (m + 1) / 2 + (n - m) * w, sp.Integer(0), sp.Min(t + 1, w),
                     sp.Min(n, w) - 1, sp.Piecewise((0, n <= w), (sp.oo, True)),
                     n, sp.Integer(1), cache_class, w, w, w - 1 if w > 1 else None)


def _largest_lag(lags: list[int], var):
    """``max{l in lags : l <= var}`` (0 when none) and the lag before it, as Piecewise in var."""
    pieces_last, pieces_prev = [], []
    for i, l in enumerate(lags):
        nxt = lags[i + 1] if i + 1 < len(lags) else None
        cond = var < nxt if nxt is not None else sp.true
        pieces_last.append((l, cond))
        pieces_prev.append((lags[i - 1] if i else 0, cond))
    first = (var < lags[0])
    return (sp.Piecewise((0, first), *pieces_last), sp.Piecewise((0, first), *pieces_prev))


def lag_cache_peak(last, prev):
    """Cache of a diagonal-A lag pattern with nondecreasing gaps (proofs/lag_cache_linear):
    ``min(l_k, n - l_k + l_{k-1})`` with l_k the largest lag <= n-1 and l_{k-1} the one before (0)."""
    return sp.Max(0, sp.Min(last, n - last + prev))


def _lags(lags: list[int], spec: str) -> CostForms:
    lags = sorted(set(lags))
    nnz_b = sp.Add(*[sp.Max(0, n - l) for l in lags])
    decode = 1 + sp.Add(*[_ones_from(l) for l in lags])
    last, prev = _largest_lag(lags, n - 1)
    gaps = np.diff([0] + lags)
    if np.all(np.diff(gaps) >= 0):
        cache = lag_cache_peak(last, prev)
    else:
        cache = Bounds(sp.Max(0, *[sp.Min(l, n - l) for l in lags]), lag_cache_peak(last, prev))
    lmax = lags[-1]
    if lags == [1]:
        hops = n - 1
    elif lags[0] == 1:   # greedy: floor(d / lmax) hops of lmax, the rest with lag 1
        hops = Bounds(sp.ceiling((n - 1) / sp.Integer(lmax)), sp.floor((n - 1) / sp.Integer(lmax)) + lmax - 1)
    else:                # d = 1 is unreachable
        hops = _at_least(2, sp.oo)
    k = len(lags)
    return CostForms(spec, n, nnz_b, decode, cache, hops, n, sp.Integer(1), sp.Integer(1), 1 + k, 1 + k, lmax)


def _power(b: int) -> CostForms:
    k = _ilog(n - 1, b)                               # largest lag b^k <= n-1
    nnz_b = (k + 1) * n - (b ** (k + 1) - 1) / sp.Integer(b - 1)
    decode = sp.Piecewise((1, t < 1), (_ilog(t, b) + 2, True))
    cache = sp.Min(b**k, n - b**k + sp.Integer(b) ** (k - 1))
    if b == 2:
        hops = _ilog(n, 2)                            # max popcount of d <= n-1
    else:                                             # max base-b digit sum of d <= n-1
        top = sp.floor((n - 1) / sp.Integer(b) ** k)  # leading digit of n-1
        hops = Bounds(top - 1 + (b - 1) * k, top + (b - 1) * k)
        hops = Bounds(_at_least(2, hops.lower), _at_least(2, hops.upper))
    spec = "power2" if b == 2 else f"power:{b}"
    return CostForms(spec, n, _at_least(2, nnz_b), decode, _at_least(2, cache), hops,
                     n * sp.log(n), sp.log(n), n, 1 / sp.log(b), 1 / sp.log(b),
                     Bounds(sp.Rational(1, b), sp.Rational(b, 2 * b - 1)))


def _quadratic() -> CostForms:
    k = sp.floor(sp.sqrt(n - 2))                      # largest lag k^2 + 1 <= n-1
    nnz_b = (k + 1) * (n - 1) - k * (k + 1) * (2 * k + 1) / 6
    decode = sp.Piecewise((1, t < 1), (sp.floor(sp.sqrt(t - 1)) + 2, True))
    cache = sp.Min(k**2 + 1, n - 2 * k + 1)
    hops = sp.Piecewise((0, n < 2), (1, n < 4), (2, n < 9), (3, n < 59), (4, True))
    return CostForms("quadratic", n, _at_least(2, nnz_b), decode, _at_least(2, cache), hops,
                     n ** sp.Rational(3, 2), sp.sqrt(n), n, sp.Rational(2, 3), 1, 1)


def _exponent(alpha: sp.Rational, spec: str) -> CostForms:
    if alpha == 0:
        return dataclasses.replace(_ssm(), spec=spec)
    if alpha == 1:
        return CostForms(spec, n, n * (n - 1) / 2, t + 1, n - 1, sp.Min(1, n - 1),
                         n**2, n, n, sp.Rational(1, 2), 1, 1)
    p = 1 / alpha
    decode = sp.ceiling((t + 1) ** alpha)             # 1 + #{k >= 1 : floor(k^p) <= t}
    # nnz_b = sum_{m=1}^{n} (ceil(m^alpha) - 1) and int_0^n x^a <= sum_{m<=n} m^a <= int_1^{n+1} x^a
    nnz_b = Bounds(n ** (1 + alpha) / (1 + alpha) - n, ((n + 1) ** (1 + alpha) - 1) / (1 + alpha))
    k = sp.ceiling(n**alpha) - 1                      # lags floor(j^p) <= n-1 for j = 1..k
    last, prev = sp.floor(k**p), sp.floor((k - 1) ** p)
    upper = lag_cache_peak(last, prev)
    cache = Bounds(_at_least(2, upper - 1), _at_least(2, upper))
    if alpha == sp.Rational(1, 2):                   # sums of squares: Lagrange / Legendre
        hops = sp.Piecewise((n - 1, n < 4), (3, n < 8), (4, True))
    else:   # lag 1 is always there. The true diameter stays bounded (a Waring problem for floor(k^p),
        # e.g. 12 for alpha = 0.3 up to n = 130) but has no known closed form: these bounds are loose.
        hops = Bounds(sp.Min(1, n - 1), n - 1)
    return CostForms(spec, n, nnz_b, decode, cache, hops, n ** (1 + alpha), n**alpha, n,
                     1 / (1 + alpha), 1, 1)


def _fenwick() -> CostForms:
    m = n - 1
    kk = _ilog(m, 2)
    # nnz_b = m + S(m), S(m) = sum_{x<m} popcount(x): McIlroy's upper bound (m/2) log2 m, and the
    # per-bit lower bound sum_{j<=K} (m/2 - 2^(j-1)), K = floor(log2 m) (proofs/fenwick_cache).
    lower = m + (kk + 1) * m / 2 - 2**kk + sp.Rational(1, 2)
    upper = m + m * sp.log(m) / (2 * LOG2)
    nnz_b = Bounds(_at_least(2, lower), _at_least(2, upper))
    decode = sp.Piecewise((1, t < 1), (popcount(t - 1) + 2, True))
    cache = sp.ceiling(sp.log(n) / LOG2)
    hops = sp.Piecewise((n - 1, n < 3), (sp.ceiling(sp.log(n - 1) / LOG2), True))
    return CostForms("fenwick", n, nnz_b, decode, cache, hops, n * sp.log(n), sp.log(n), sp.log(n),
                     1 / (2 * LOG2), 1 / LOG2, 1 / LOG2)


def _blocks(c: int | None) -> CostForms:
    C = sp.ceiling(sp.sqrt(n)) if c is None else sp.Integer(c)
    q, r = sp.floor(n / C), n - C * sp.floor(n / C)
    nnz_a = q * C * (C + 1) / 2 + r * (r + 1) / 2
    nnz_b = sp.Max(0, n - C)
    decode = t - C * sp.floor(t / C) + 1 + sp.Min(1, sp.floor(t / C))
    cache = sp.Max(0, sp.Min(C - 1, n - 1), sp.Min(C, n - C))
    hops = sp.floor((n - 1) / C)
    if c is None:
        return CostForms("blocks", nnz_a, nnz_b, decode, cache, hops, n ** sp.Rational(3, 2), sp.sqrt(n),
                         sp.sqrt(n), sp.Rational(1, 2), 1, 1)
    return CostForms(f"blocks:{c}", nnz_a, nnz_b, decode, cache, hops, n, sp.Integer(1),
                     sp.Integer(1), sp.Rational(c + 3, 2), c + 1, c)


def _kron(K: np.ndarray, spec: str) -> CostForms:
    m = K.shape[0]
    rows = K.sum(axis=1)
    S, rmax = int(K.sum()), int(rows.max())
    lo_k, hi_k = _ilog(n, m), sp.ceiling(sp.log(n) / sp.log(m))
    # total(n) = sum_{t<n} prod_j rowsum(t_j) is nondecreasing and equals S^k at n = m^k
    nnz_b = Bounds(S**lo_k - n, S**hi_k - n)
    decode = Bounds(sp.Integer(1), sp.Integer(rmax) ** sp.ceiling(sp.log(t + 1) / sp.log(m)))
    # two positions whose digits are not ordered digit-wise never reach (K is lower triangular):
    # s = 1, t = m is such a pair; below n = m + 1, hops are the distances in the digit graph of K
    dist = _digit_distances(K)
    pieces = [(0, n < 2)] + [(_finite(dist[: j + 1, : j + 1].max()), n < j + 2) for j in range(1, m)]
    hops = sp.Piecewise(*pieces, (sp.oo, True))
    below = [i for i in range(1, m) if K[i, 0]]
    if below:   # all s < m^j stay live until s + i m^j (i = first row with K[i, 0] = 1)
        i = below[0]
        cache = Bounds(_at_least(i + 1, sp.Integer(m) ** _ilog(n / sp.Integer(i + 1), m)), n - 1)
        theta_cache, const_cache = n, Bounds(sp.Rational(1, m * (i + 1)), 1)
    else:
        cache = Bounds(sp.Integer(0), sp.Max(0, n - 1))
        theta_cache, const_cache = None, None
    if S == m:  # identity: B is empty
        return CostForms(spec, n, sp.Integer(0), sp.Integer(1), sp.Integer(0), sp.Piecewise((0, n < 2), (sp.oo, True)),
                         n, sp.Integer(1), sp.Integer(0), 1, 1, None)
    gamma = sp.log(S) / sp.log(m)
    theta_decode = n ** (sp.log(rmax) / sp.log(m))
    return CostForms(spec, n, nnz_b, decode, cache, hops, n**gamma, theta_decode, theta_cache,
                     Bounds(sp.Rational(1, S), S), Bounds(sp.Rational(1, rmax), rmax), const_cache)


def _finite(x):
    return sp.oo if np.isinf(x) else int(x)


def _digit_distances(K: np.ndarray) -> np.ndarray:
    """Least B-hops between single digits x <= y of a Kronecker base (inf if unreachable)."""
    m = K.shape[0]
    d = np.where(K.astype(bool), 1.0, np.inf).T      # d[x, y]: edge x -> y when K[y, x]
    np.fill_diagonal(d, 0.0)
    for k in range(m):                                 # Floyd-Warshall on m <= 16 digits
        d = np.minimum(d, d[:, [k]] + d[[k], :])
    return np.triu(d)


# -- dispatch -------------------------------------------------------------------------------------

def _term_forms(term: str) -> CostForms:
    name, _, args = term.partition(":")
    if name == "ssm":
        return _ssm()
    if name == "attention":
        return _attention()
    if name == "window":
        return _window(int(args))
    if name == "lags":
        return _lags([int(x) for x in args.split(",")], term)
    if name == "power2":
        return _power(2)
    if name == "power":
        return _power(int(args))
    if name == "quadratic":
        return _quadratic()
    if name == "exponent":
        return _exponent(sp.Rational(Fraction(args)), term)
    if name == "fenwick":
        return _fenwick()
    if name == "blocks":
        return _blocks(int(args) if args else None)
    if name == "kron":
        rows = args.split(",")
        K = np.array([[int(r[j]) if j < len(r) else 0 for j in range(len(rows))] for r in rows])
        return _kron(K, term)
    raise GLRError(f"no closed forms for family {name!r}")


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


def _is_builtin(p) -> bool:
    """True when p is exactly the pattern its spec names (user patterns are not)."""
    from ..patterns import Pattern

    if p.max_length is not None:
        return False
    try:
        q = Pattern.from_spec(p.spec)
    except GLRError:
        return False
    k = 48
    return all(np.array_equal(x, y) for x, y in zip(p.masks(k), q.masks(k)))


def cost_forms(p) -> CostForms | None:
    """Closed forms of a built-in pattern or a union of them; None for a user pattern."""
    if not _is_builtin(p):
        return None
    forms = [_term_forms(term.strip().lower()) for term in p.spec.split("+")]
    out = forms[0]
    for f in forms[1:]:
        out = _union(out, f)
    return out


def theta(p) -> dict:
    """``{"theta_total", "theta_decode", "theta_cache"}`` as sympy strings, None where unknown."""
    f = cost_forms(p)
    keys = ("theta_total", "theta_decode", "theta_cache")
    if f is None:
        return dict.fromkeys(keys)
    return {k: None if getattr(f, k) is None else str(getattr(f, k)) for k in keys}


def total_cost(p) -> sp.Expr:
    """``nnz_a + nnz_b`` in n: exact where known, else the upper bound."""
    f = cost_forms(p)
    if f is None:
        raise GLRError(f"no closed form for the user pattern {p.spec!r}")
    return _hi(f.total)
