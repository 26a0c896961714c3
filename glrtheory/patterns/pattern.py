"""``Pattern``: the supports ``A(t)`` (inputs) and ``B(t)`` (past states) of a recurrence.

    h_t = sum_{s in A(t)} a[t, s] u_s + sum_{s in B(t)} b[t, s] h_s,   A(t) within {0..t}, B(t) within {0..t-1}.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import GLRError
from .rules import (DENSE_MASK_MAX_ENTRIES, RULE_MAX_ENTRIES, RULE_MAX_SECONDS, RuleSide, SparseSupport,
                    to_csr)
from ..checks import check_integer
from .support import LagSupport, Support, check_length, sorted_distinct, union
from .tables import IndexTables

SupportFactory = Callable[[int], Support]


class Pattern:
    """A causal pattern: for every length n, an A-side and a B-side ``Support``.

    Build one with ``Pattern.from_spec("power2")``, a family constructor from
    ``glrtheory.patterns.families``, ``Pattern.from_lags``, ``Pattern.from_rule`` (any n),
    ``Pattern.from_masks`` or ``Pattern.from_sets``; unite patterns with ``p + q`` (``A = A_p | A_q``,
    ``B = B_p | B_q``).
    """

    #: The family terms this pattern unites (``families.Term``: name, arguments, spec); empty for user
    #: patterns. Closed forms read them (``glrtheory.symbolic.costs``).
    terms: tuple = ()
    #: spec string -> Pattern; set by ``glrtheory.patterns.registry`` (which imports this module)
    spec_parser: Callable[[str], "Pattern"] | None = None

    def __init__(self, spec: str, a: SupportFactory, b: SupportFactory, max_length: int | None = None,
                 doc: str = ""):
        self.spec = spec
        self._a = a
        self._b = b
        self.max_length = max_length
        self.doc = doc
        self._parts: tuple[Pattern, ...] = ()

    @property
    def parts(self) -> tuple["Pattern", ...]:
        """The patterns a union ``p + q + ...`` is made of, in order (its supports at n are one merge of theirs, not
        one merge per ``+``); ``(self,)`` for a pattern that is not a union."""
        return self._parts or (self,)

    # -- supports and tables -------------------------------------------------------------------
    def _n(self, n) -> int:
        n = check_length(n)
        if self.max_length is not None and n > self.max_length:
            raise GLRError(f"pattern {self.spec!r} is defined only up to n={self.max_length}, got n={n}")
        return n

    def support_a(self, n: int) -> Support:
        """The A-side support at length n (direct influence, ``s <= t``)."""
        return self._a(self._n(n))

    def support_b(self, n: int) -> Support:
        """The B-side support at length n (recurrent propagation, ``s < t``)."""
        return self._b(self._n(n))

    def tables(self, n: int, max_entries: int | None = None) -> IndexTables:
        """Index tables ``a_idx[n, wa]``, ``b_idx[n, wb]``: int32, rows sorted ascending, padded with -1,
        validated and read-only (``IndexTables``, which unpacks as the pair ``a_idx, b_idx``).
        ``max_entries`` raises the limit ``MAX_TABLE_ENTRIES`` on ``n * w`` per table."""
        a, b = self.support_a(n), self.support_b(n)
        return IndexTables(a.table(max_entries), b.table(max_entries), a.lags, b.lags, _built_from_lags=True)

    def masks(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense boolean supports ``A[t, s]``, ``B[t, s]`` (n x n; for small n)."""
        if check_length(n) > 8192:
            raise GLRError(f"dense masks are limited to n <= 8192, got n={n}")
        out = []
        for idx in self.tables(n):
            m = np.zeros((n, n), dtype=bool)
            rows, cols = np.nonzero(idx >= 0)
            m[rows, idx[rows, cols]] = True
            out.append(m)
        return out[0], out[1]

    def sets(self, n: int) -> tuple[list[list[int]], list[list[int]]]:
        """``A(t)`` and ``B(t)`` as sorted Python lists, for ``0 <= t < n``."""
        return tuple([[int(s) for s in row if s >= 0] for row in idx] for idx in self.tables(n))

    # -- construction --------------------------------------------------------------------------
    @staticmethod
    def from_spec(spec: str) -> "Pattern":
        """Parse a spec string such as ``"power2"``, ``"lags:1,3,8"`` or ``"window:64+fenwick"``."""
        return Pattern.spec_parser(spec)

    @staticmethod
    def from_lags(a_lags: Sequence[int] = (0,), b_lags: Sequence[int] = (), spec: str | None = None,
                  doc: str = "") -> "Pattern":
        """Translation-invariant pattern ``A(t) = {t - j : j in a_lags}``, ``B(t) = {t - l : l in b_lags}``.
        Without a ``spec``, the family's pattern where it is one (``lags:L`` for ``A(t) = {t}``, ``window:W`` for
        ``a_lags = 0 .. W-1`` and no B), closed forms included."""
        a_arr = _lag_array(a_lags, minimum=0, what="A-lag")
        b_arr = _lag_array(b_lags, minimum=1, what="B-lag")
        if spec is None:
            from . import families                  # families builds on this module
            window = a_arr.size and not b_arr.size and np.array_equal(a_arr, np.arange(a_arr.size))
            family = (families.lags(*b_arr.tolist()) if list(a_arr) == [0] and b_arr.size else
                      families.window(a_arr.size) if window else None)
            if family is not None:
                family.doc = doc or family.doc
                return family
            spec = f"custom-lags(a={a_arr.tolist()}, b={b_arr.tolist()})"
        return Pattern(spec, lambda n: LagSupport(n, a_arr, strict=False),
                       lambda n: LagSupport(n, b_arr, strict=True), doc=doc)

    @staticmethod
    def from_rule(a_rule=None, b_rule=None, *, kind: str = "sources", spec: str | None = None,
                  doc: str = "", max_seconds: float = RULE_MAX_SECONDS,
                  max_entries: int = RULE_MAX_ENTRIES) -> "Pattern":
        """A pattern from vectorized rules ``t -> S(t)``, evaluated lazily at any n.

        Parameters
        ----------
        a_rule, b_rule : callable or None
            ``rule(t)`` receives int64 positions ``t [m]`` and returns their sets as a 2-D integer array
            ``[m, w]``, a pair ``(values, keep)`` (values broadcast against the boolean mask ``keep``),
            or a list of m 1-D arrays. None gives ``A(t) = {t}`` / ``B(t) = {}``.
        kind : {"sources", "lags"}
            The rules return positions s, or lags l with ``s = t - l``.
        spec : str, optional
            The label in reports (default ``rule(<a name>, <b name>)``).
        max_seconds, max_entries : limits of one evaluation (time, and entries of one side).

        Raises
        ------
        GLRError
            A source outside ``0..t`` (A) or ``0..t-1`` (B), a malformed result, an exception in the rule,
            or a rule over a limit; the rule is first evaluated at ``n = 16`` to fail early.

        Notes
        -----
        Memory O(n + nnz) (compressed rows): the supports at n are the first n rows, so the rule is
        evaluated once per position and reused at every smaller n.
        """
        def make(rule, strict):
            name = getattr(rule, "__name__", type(rule).__name__)
            return RuleSide(rule, strict, kind, name, max_seconds, max_entries), name

        a, a_name = (_diag_a, "diagonal") if a_rule is None else make(a_rule, False)
        b, b_name = (_empty_b, "none") if b_rule is None else make(b_rule, True)
        p = Pattern(spec or f"rule({a_name}, {b_name})", a, b, doc=doc)
        p.tables(16)
        return p

    @staticmethod
    def from_masks(a_mask, b_mask, spec: str = "custom") -> "Pattern":
        """A user pattern from boolean ``N x N`` masks (numpy, dense up to ``N = 8192``, or scipy.sparse);
        defined for every n <= N (leading blocks)."""
        entries = []
        for mask, name in ((a_mask, "A"), (b_mask, "B")):
            entries.append(_mask_entries(mask, name, DENSE_MASK_MAX_ENTRIES))
        (na, ra, ca), (nb, rb, cb) = entries
        if na != nb:
            raise GLRError(f"A and B masks differ in shape: {(na, na)} vs {(nb, nb)}")
        return _sparse_pattern(spec, to_csr(ra, ca, na, False, "mask"), to_csr(rb, cb, nb, True, "mask"), na)

    @staticmethod
    def from_sets(a_sets: Sequence[Sequence[int]], b_sets: Sequence[Sequence[int]],
                  spec: str = "custom") -> "Pattern":
        """A user pattern from explicit sets ``A(t)``, ``B(t)`` for ``0 <= t < N`` (stored sparse)."""
        try:
            a_sets, b_sets = [list(r) for r in a_sets], [list(r) for r in b_sets]
        except TypeError:
            raise GLRError("A and B must be sequences of sequences of positions") from None
        if len(a_sets) != len(b_sets):
            raise GLRError(f"A and B give different lengths: {len(a_sets)} vs {len(b_sets)}")
        n = check_length(len(a_sets))
        csr = []
        for strict, sets in ((False, a_sets), (True, b_sets)):
            flat = [s for row in sets for s in row]
            for s in flat:
                if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                    t = next(t for t, row in enumerate(sets) if any(x is s for x in row))
                    raise GLRError(f"{'AB'[strict]}({t}) holds a non-integer position {s!r}")
            rows = np.repeat(np.arange(n), [len(r) for r in sets])
            try:
                cols = np.array(flat, dtype=np.int64)
            except OverflowError:
                raise GLRError(f"{'AB'[strict]} holds a position beyond int64") from None
            csr.append(to_csr(rows, cols, n, strict, "sets"))
        return _sparse_pattern(spec, csr[0], csr[1], n)

    def __add__(self, other: "Pattern") -> "Pattern":
        if not isinstance(other, Pattern):
            return NotImplemented
        parts = self.parts + other.parts
        limits = [m for m in (self.max_length, other.max_length) if m is not None]
        united = Pattern(
            f"{self.spec}+{other.spec}",
            lambda n: union(*(part._a(n) for part in parts)),
            lambda n: union(*(part._b(n) for part in parts)),
            max_length=min(limits) if limits else None,
            doc=f"union of {self.spec} and {other.spec}",
        )
        united._parts = parts
        if self.terms and other.terms:      # a union with a user pattern has no family terms
            united.terms = self.terms + other.terms
        return united

    def __repr__(self) -> str:
        return f"Pattern({self.spec!r})"


def _lag_array(lags, minimum: int, what: str) -> np.ndarray:
    if isinstance(lags, (str, bytes)) or not isinstance(lags, Iterable):
        raise GLRError(f"{what}s must be a sequence of integers, got {lags!r}")
    return sorted_distinct(np.array([check_integer(v, what, minimum) for v in lags], dtype=np.int64))


def _diag_a(n: int) -> Support:
    return LagSupport(n, (0,), strict=False)


def _empty_b(n: int) -> Support:
    return LagSupport(n, (), strict=True)


def _mask_entries(mask, name: str, dense_limit: int) -> tuple[int, np.ndarray, np.ndarray]:
    """``(N, rows, cols)`` of the true entries of a square 0/1 mask (numpy or scipy.sparse)."""
    import scipy.sparse

    sparse = scipy.sparse.issparse(mask)
    shape = mask.shape if sparse else np.shape(mask)
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
        raise GLRError(f"{name} mask must be a non-empty square matrix, got shape {tuple(shape)}")
    if sparse:
        coo = scipy.sparse.coo_matrix(mask)
        values, rows, cols = coo.data, coo.row, coo.col
    else:
        if shape[0] * shape[1] > dense_limit:
            raise GLRError(f"a dense {name} mask of {shape[0]}x{shape[1]} is over the limit "
                           f"{dense_limit} entries (N <= {math.isqrt(dense_limit)}); pass a scipy.sparse "
                           f"matrix, sets, or a rule (Pattern.from_rule)")
        values = np.asarray(mask)
        rows, cols = np.nonzero(values)
        values = values[rows, cols]
    if values.dtype != bool and not np.isin(values, (0, 1)).all():
        raise GLRError(f"{name} mask must hold booleans or 0/1")
    keep = values.astype(bool)
    return shape[0], rows[keep], cols[keep]


def _sparse_pattern(spec: str, a_csr, b_csr, nmax: int) -> "Pattern":
    """A pattern of two compressed-row sides defined for n <= nmax."""
    def side(csr, strict):
        return lambda n: SparseSupport(n, csr[0], csr[1], strict)

    return Pattern(spec, side(a_csr, False), side(b_csr, True), max_length=nmax)
