"""``Pattern``: the supports ``A(t)`` (inputs) and ``B(t)`` (past states) of a recurrence.

    h_t = sum_{s in A(t)} a[t, s] u_s + sum_{s in B(t)} b[t, s] h_s,   A(t) within {0..t}, B(t) within {0..t-1}.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import GLRError
from .support import (LagSupport, Support, TableSupport, check_integer, check_length, rows_to_table,
                      union)

SupportFactory = Callable[[int], Support]


class Pattern:
    """A causal pattern: for every length n, an A-side and a B-side ``Support``.

    Build one with ``Pattern.from_spec("power2")``, a family constructor from
    ``glrtheory.patterns.families``, ``Pattern.from_lags``, ``Pattern.from_masks`` or
    ``Pattern.from_sets``; unite patterns with ``p + q`` (``A = A_p | A_q``, ``B = B_p | B_q``).
    """

    def __init__(self, spec: str, a: SupportFactory, b: SupportFactory, max_length: int | None = None,
                 doc: str = ""):
        self.spec = spec
        self._a = a
        self._b = b
        self.max_length = max_length
        self.doc = doc

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

    def tables(self, n: int, max_entries: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Index tables ``a_idx[n, wa]``, ``b_idx[n, wb]``: int32, rows sorted ascending, padded with -1."""
        return self.support_a(n).table(max_entries), self.support_b(n).table(max_entries)

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
        from .spec import parse

        return parse(spec)

    @staticmethod
    def from_lags(a_lags: Sequence[int] = (0,), b_lags: Sequence[int] = (), spec: str | None = None,
                  doc: str = "") -> "Pattern":
        """Translation-invariant pattern ``A(t) = {t - j : j in a_lags}``, ``B(t) = {t - l : l in b_lags}``."""
        a_arr = _lag_array(a_lags, minimum=0, what="A-lag")
        b_arr = _lag_array(b_lags, minimum=1, what="B-lag")
        if spec is None:
            if list(a_arr) == [0] and b_arr.size:
                spec = "lags:" + ",".join(map(str, b_arr))
            elif not b_arr.size and np.array_equal(a_arr, np.arange(a_arr.size)):
                spec = f"window:{a_arr.size}"
            else:
                spec = f"custom-lags(a={a_arr.tolist()}, b={b_arr.tolist()})"
        return Pattern(spec, lambda n: LagSupport(n, a_arr, strict=False),
                       lambda n: LagSupport(n, b_arr, strict=True), doc=doc)

    @staticmethod
    def from_masks(a_mask, b_mask, spec: str = "custom") -> "Pattern":
        """A user pattern from boolean ``N x N`` masks; defined for every n <= N (leading blocks)."""
        a_mask = _check_mask(a_mask, "A")
        b_mask = _check_mask(b_mask, "B")
        if a_mask.shape != b_mask.shape:
            raise GLRError(f"A and B masks differ in shape: {a_mask.shape} vs {b_mask.shape}")
        nmax = a_mask.shape[0]
        if np.triu(a_mask, 1).any():
            t, s = np.argwhere(np.triu(a_mask, 1))[0]
            raise GLRError(f"A is not causal: A({t}) contains s={s} > t")
        if np.triu(b_mask, 0).any():
            t, s = np.argwhere(np.triu(b_mask, 0))[0]
            raise GLRError(f"B is not strictly causal: B({t}) contains s={s} >= t")
        ta = _mask_table(a_mask)
        tb = _mask_table(b_mask)

        def side(table, strict):
            return lambda n: TableSupport(n, rows_to_table(table[:n].astype(np.int64)), strict)

        return Pattern(spec, side(ta, False), side(tb, True), max_length=nmax)

    @staticmethod
    def from_sets(a_sets: Sequence[Sequence[int]], b_sets: Sequence[Sequence[int]],
                  spec: str = "custom") -> "Pattern":
        """A user pattern from explicit sets ``A(t)``, ``B(t)`` for ``0 <= t < N``."""
        try:
            a_sets, b_sets = [list(r) for r in a_sets], [list(r) for r in b_sets]
        except TypeError:
            raise GLRError("A and B must be sequences of sequences of positions") from None
        if len(a_sets) != len(b_sets):
            raise GLRError(f"A and B give different lengths: {len(a_sets)} vs {len(b_sets)}")
        n = check_length(len(a_sets))
        masks = np.zeros((2, n, n), dtype=bool)
        for side, sets in enumerate((a_sets, b_sets)):
            name = "AB"[side]
            for t, row in enumerate(sets):
                for s in row:
                    if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                        raise GLRError(f"{name}({t}) holds a non-integer position {s!r}")
                    if s < 0:
                        raise GLRError(f"{name}({t}) holds a negative position {s}")
                    limit = t if side else t + 1
                    if s >= limit:
                        rel = ">=" if side else ">"
                        raise GLRError(f"{name}({t}) contains s={s} {rel} t: the support is not causal")
                    masks[side, t, s] = True
        return Pattern.from_masks(masks[0], masks[1], spec=spec)

    def __add__(self, other: "Pattern") -> "Pattern":
        if not isinstance(other, Pattern):
            return NotImplemented
        limits = [m for m in (self.max_length, other.max_length) if m is not None]
        return Pattern(
            f"{self.spec}+{other.spec}",
            lambda n: union(self._a(n), other._a(n)),
            lambda n: union(self._b(n), other._b(n)),
            max_length=min(limits) if limits else None,
            doc=f"union of {self.spec} and {other.spec}",
        )

    def __repr__(self) -> str:
        return f"Pattern({self.spec!r})"


def _lag_array(lags, minimum: int, what: str) -> np.ndarray:
    return np.unique(np.array([check_integer(v, what, minimum) for v in lags], dtype=np.int64))


def _check_mask(mask, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise GLRError(f"{name} mask must be a non-empty square matrix, got shape {m.shape}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise GLRError(f"{name} mask must hold booleans or 0/1")
        m = m.astype(bool)
    return m


def _mask_table(mask: np.ndarray) -> np.ndarray:
    idx = np.where(mask, np.arange(mask.shape[0])[None, :], -1)
    return rows_to_table(idx)
