"""User supports without an n x n object: sparse rows (CSR) from sets, masks, or a rule evaluated lazily.

A side ``S(t)``, ``0 <= t < n``, is stored row-compressed: ``indices[indptr[t]:indptr[t+1]]`` is the
sorted set S(t). Memory is O(n + nnz); the leading rows are the support at any smaller n.

A *rule* is a vectorized function of t. It receives the positions ``t`` (int64 ``[m]``) and returns, for
each of them, its sources ``s`` (or lags ``l``, ``s = t - l``, with ``kind="lags"``) in one of three forms:

* a 2-D integer array ``[m, w]`` (or 1-D ``[m]``, one entry per t): every entry is a member;
* a tuple ``(values, keep)``: a maximum width plus a boolean mask ``keep [m, w]``; ``values`` broadcasts
  against ``keep`` (e.g. one lag row ``[w]`` for every t) and only kept entries are members;
* a list of m 1-D integer arrays (ragged rows).

Duplicates merge. A source outside ``0..t`` (A) or ``0..t-1`` (B) is a ``GLRError``, never dropped.
The rule runs in chunks of t; its total time and entries are bounded (``RULE_MAX_SECONDS``,
``RULE_MAX_ENTRIES``) and a rule over a bound is refused with the bound in the message.
"""
from __future__ import annotations

import functools
import time

import numpy as np

from ..errors import GLRError
from .support import Support, check_table_size, check_length

#: Largest number of entries (nnz) of one side of a sparse support: int32 indices, 1 GiB.
RULE_MAX_ENTRIES = 2**28
#: Longest time a rule may take to evaluate at one n (seconds; checked between chunks).
RULE_MAX_SECONDS = 60.0
#: Largest dense mask ``N x N`` accepted by ``Pattern.from_masks`` (N <= 8192; pass a scipy.sparse
#: matrix for a larger N).
DENSE_MASK_MAX_ENTRIES = 2**26
#: Entries a rule is asked for per call (the chunk of t shrinks when the rows are wide).
_CHUNK_ENTRIES = 2**22
#: Positions in the first chunk of an evaluation (each next chunk doubles).
_FIRST_CHUNK = 256


class SparseSupport(Support):
    """A support stored as compressed rows: ``S(t) = indices[indptr[t]:indptr[t + 1]]`` (sorted, unique)."""

    def __init__(self, n: int, indptr: np.ndarray, indices: np.ndarray, strict: bool):
        super().__init__(n, strict)
        self.indptr = indptr[: n + 1]
        self.indices = indices[: int(self.indptr[-1])]

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr).astype(np.int64)

    @functools.cached_property
    def lags(self) -> np.ndarray | None:
        """The lag set L when ``S(t) = {t - l : l in L, l <= t}`` for every t (read off the last row and
        checked on every entry), else None: translation-invariant user supports take the lag routes."""
        L = np.sort(self.n - 1 - self.indices[int(self.indptr[-2]):].astype(np.int64))
        if not np.array_equal(self.counts(), np.searchsorted(L, np.arange(self.n), side="right")):
            return None
        lag = self._rows() - self.indices
        pos = np.minimum(np.searchsorted(L, lag), max(L.size - 1, 0))
        return L if L.size == 0 or np.array_equal(L[pos], lag) else None

    def _rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.n, dtype=np.int64), self.counts())

    def last_use(self) -> np.ndarray:
        last = np.full(self.n, -1, dtype=np.int64)
        np.maximum.at(last, self.indices.astype(np.int64), self._rows())
        return last

    def table(self, max_entries: int | None = None) -> np.ndarray:
        counts = self.counts()
        width = int(counts.max(initial=0))
        check_table_size(self.n, width, max_entries, "a sparse user support")
        out = np.full((self.n, width), -1, dtype=np.int32)
        col = np.arange(self.indices.size) - np.repeat(self.indptr[:-1], counts)
        out[self._rows(), col] = self.indices
        return out


def to_csr(rows, cols, n: int, strict: bool, where: str, first: int = 0):
    """Entries ``(t, s)``, ``first <= t < n`` -> ``(indptr, indices)`` of rows first..n-1 (sorted, unique),
    after checking causality (``0 <= s <= t``, or ``s < t`` when strict)."""
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    side = "B" if strict else "A"
    bad = (cols < 0) | (cols > rows - strict)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        t, s = int(rows[i]), int(cols[i])
        if s < 0:
            raise GLRError(f"{where}: {side}({t}) holds a negative position {s}: out of range")
        rel = ">=" if strict else ">"
        extra = " (B is not strictly causal)" if strict else ""
        raise GLRError(f"{where}: {side}({t}) contains s={s} {rel} t: the support is not causal{extra}")
    if cols.size > RULE_MAX_ENTRIES:
        raise GLRError(f"{where}: {side} has {cols.size} entries, over the limit RULE_MAX_ENTRIES = "
                       f"{RULE_MAX_ENTRIES}")
    key = np.sort((rows << 31) | cols)             # rows and cols < 2^31: one int64 key per entry
    keep = np.ones(key.size, dtype=bool)
    keep[1:] = key[1:] != key[:-1]
    key = key[keep]
    rows, cols = key >> 31, key & (2**31 - 1)
    indptr = np.zeros(n - first + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows - first, minlength=n - first), out=indptr[1:])
    return indptr, cols.astype(np.int32)


def _integers(values, where: str) -> np.ndarray:
    """An integer array from a rule's values (integral floats allowed; bools, NaN and fractions not)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise GLRError(f"{where}: the rule returned a ragged or non-numeric array; return a list of "
                       f"1-D arrays for ragged rows") from None
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise GLRError(f"{where}: the rule returned non-integer positions")
        return arr.astype(np.int64)
    raise GLRError(f"{where}: the rule must return integer positions, got dtype {arr.dtype}")


def _rule_entries(out, t: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One rule output for the positions t -> flat ``(row positions, values)``."""
    m = t.size
    if isinstance(out, list):
        if len(out) != m:
            raise GLRError(f"{where}: the rule returned {len(out)} rows for {m} positions")
        parts = [_integers(r, where).ravel() for r in out]
        sizes = np.array([p.size for p in parts], dtype=np.int64)
        vals = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return np.repeat(t, sizes), vals
    if isinstance(out, tuple):
        if len(out) != 2:
            raise GLRError(f"{where}: a tuple from a rule must be (values, keep), got {len(out)} items")
        keep = np.asarray(out[1])
        if keep.dtype != bool:
            raise GLRError(f"{where}: the mask of a (values, keep) pair must be boolean, got {keep.dtype}")
        vals = _integers(out[0], where)
    else:
        vals = _integers(out, where)
        keep = np.ones(vals.shape, dtype=bool)
    if keep.ndim == 1:
        keep = keep[:, None] if keep.shape[0] == m else keep[None, :]
    if vals.ndim == 1 and vals.shape[0] == m and keep.shape[0] == m and keep.shape[1] == 1:
        vals = vals[:, None]
    try:
        vals, keep = np.broadcast_arrays(vals, keep)
    except ValueError:
        raise GLRError(f"{where}: values {vals.shape} and mask {keep.shape} do not broadcast") from None
    if vals.ndim != 2 or vals.shape[0] != m:
        raise GLRError(f"{where}: the rule returned shape {vals.shape} for {m} positions; expected [{m}, w]")
    rows = np.broadcast_to(t[:, None], vals.shape)
    return rows[keep], vals[keep]


class RuleSide:
    """One side of a rule pattern, evaluated lazily and kept for the largest n asked so far.

    ``rule(t)`` gives S(t) (``kind="sources"``) or the lags ``t - S(t)`` (``kind="lags"``).
    """

    def __init__(self, rule, strict: bool, kind: str, name: str, max_seconds: float, max_entries: int):
        if not callable(rule):
            raise GLRError(f"a rule must be a callable of t, got {type(rule).__name__}")
        if kind not in ("sources", "lags"):
            raise GLRError(f"rule kind must be 'sources' or 'lags', got {kind!r}")
        self.rule, self.strict, self.kind, self.name = rule, strict, kind, name
        self.max_seconds, self.max_entries = max_seconds, max_entries
        self.indptr = np.zeros(1, dtype=np.int64)
        self.indices = np.zeros(0, dtype=np.int32)

    def __call__(self, n: int) -> SparseSupport:
        n = check_length(n)
        if n + 1 > self.indptr.size:
            self._extend(n)
        return SparseSupport(n, self.indptr, self.indices, self.strict)

    def _extend(self, n: int) -> None:
        """Evaluate the rule on t = (rows held) .. n-1, chunk by chunk, and append the rows."""
        where = f"rule {self.name} for {'B' if self.strict else 'A'}"
        start = begin = self.indptr.size - 1
        indptrs, indices, width, clock = [self.indptr], [self.indices], 1, time.perf_counter()
        rows_next = _FIRST_CHUNK
        while begin < n:
            stop = min(n, begin + max(1, min(rows_next, _CHUNK_ENTRIES // width)))
            rows_next *= 2                         # chunks grow, so that a slow rule is seen early
            t = np.arange(begin, stop, dtype=np.int64)
            try:
                out = self.rule(t)
            except GLRError:
                raise
            except Exception as exc:  # the user's code: report it as one line
                raise GLRError(f"{where} failed at t in [{begin}, {stop}): {type(exc).__name__}: {exc}") from None
            rows, vals = _rule_entries(out, t, where)
            ptr, idx = to_csr(rows, rows - vals if self.kind == "lags" else vals, stop, self.strict, where,
                              first=begin)
            indptrs.append(ptr[1:] + indptrs[-1][-1])
            indices.append(idx)
            if indptrs[-1][-1] > self.max_entries:
                raise GLRError(f"{where} gives {indptrs[-1][-1]} entries by t={stop - 1} (n={n}), over the "
                               f"limit RULE_MAX_ENTRIES = {self.max_entries}")
            width = max(1, -(-idx.size // t.size))
            elapsed = time.perf_counter() - clock
            projected = elapsed * (n - start) / (stop - start)
            if stop < n and (elapsed > self.max_seconds
                             or (projected > self.max_seconds and elapsed > 0.05 * self.max_seconds)):
                raise GLRError(f"{where} is too slow: {stop - start} positions took {elapsed:.3g} s, about "
                               f"{projected:.3g} s for n={n}, over the limit RULE_MAX_SECONDS = "
                               f"{self.max_seconds:g} s (vectorize the rule over t)")
            begin = stop
        self.indptr = np.concatenate(indptrs)
        self.indices = np.concatenate(indices)
