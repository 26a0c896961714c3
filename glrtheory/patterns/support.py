"""One side of a pattern at a fixed length n: the sets S(t), 0 <= t < n.

A ``Support`` answers, without looping over t in Python: ``counts()`` (``|S(t)|``), ``last_use()``
(``max{t : s in S(t)}``, -1 if unused), ``table()`` (int32 ``[n, w]``, sorted rows, -1 padding), ``lags``
(the lag set when ``S(t) = {t - l : l in lags}``, else None), and the structure questions of the analysis:
``interval_start()`` / ``interval_end()`` (``S(t) = {lo[t]..t}`` / ``{t : s in S(t)} = {s..hi[s]}``, else
None), ``longest_paths()`` (B-side: edges of the longest path ending at each t) and ``unreachable_pair(a)``
(a pair s <= t that no route u_s -> h_t joins, when the structure shows one). The generic answers read the
table; lag sets, blocks and Kronecker powers answer from their structure in O(n), so that n = 2^20 never
needs an n x n object.
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import GLRError, WorkLimitError

#: Largest index table built by default (entries, n * width): 2^29 int32 entries = 2 GiB.
MAX_TABLE_ENTRIES = 2**29
#: Positions are stored as int32 in the tables.
MAX_LENGTH = 2**31 - 1
#: Table entries handled at a time by the passes over a whole table (``union``'s merge, ``last_use``), which
#: bounds their int64 buffers.
TABLE_CHUNK_ENTRIES = 2**22


def check_length(n) -> int:
    """Validate a sequence length n (1 <= n <= 2^31 - 1) and return it as int."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise GLRError(f"length n must be an integer, got {n!r}")
    if n <= 0:
        raise GLRError(f"length n must be positive, got n={n}")
    if n > MAX_LENGTH:
        raise GLRError(f"length n={n} exceeds the limit 2^31-1 of int32 index tables")
    return int(n)


def check_table_size(n: int, width: int, max_entries: int | None, what: str) -> None:
    limit = MAX_TABLE_ENTRIES if max_entries is None else max_entries
    if n * width > limit:
        # the hint names the argument only where the caller left it at its default (Pattern.tables)
        hint = " (Pattern.tables(n, max_entries=...) raises it)" if max_entries is None else ""
        raise WorkLimitError(f"index table of {what} at n={n} would hold {n}x{width}={n * width} entries, over the "
                             f"limit {limit}; at this width n <= {limit // width} fits{hint}")


def sorted_distinct(x) -> np.ndarray:
    """The distinct values of an integer array, flattened, in increasing order (``np.unique(x)``, a new
    array), by a sort and a neighbour compare: numpy 2.4's hashing ``np.unique`` takes ~1 s on 2^20
    distinct integers. The stable sort (timsort) is linear on sorted input and fast on sorted runs."""
    x = np.sort(np.asarray(x).ravel(), kind="stable")
    keep = np.ones(x.size, dtype=bool)
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


def rank_in_runs(count) -> np.ndarray:
    """For items sorted into consecutive runs of ``count[g]`` items each, every item's rank in its run
    (``0 .. count[g] - 1``, run after run), linear in the items."""
    count = np.asarray(count, dtype=np.int64)
    return np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)


def rows_to_table(cand: np.ndarray) -> np.ndarray:
    """Candidates ``[n, w]`` (-1 = none, duplicates allowed) -> sorted, unique, -1-padded int32 rows."""
    n = cand.shape[0]
    if cand.size == 0:
        return np.full((n, 0), -1, dtype=np.int32)
    big = np.iinfo(np.int64).max
    x = np.where(cand < 0, big, cand.astype(np.int64, copy=False))
    x.sort(axis=1)
    dup = np.zeros_like(x, dtype=bool)
    dup[:, 1:] = x[:, 1:] == x[:, :-1]
    if dup.any():
        x[dup] = big
        x.sort(axis=1)
    width = int((x != big).sum(axis=1).max(initial=0))
    x = x[:, :width]
    x[x == big] = -1
    return x.astype(np.int32)


def row_blocks(rows: int, width: int) -> range:
    """The first rows of blocks of a table ``width`` wide holding at most ``TABLE_CHUNK_ENTRIES`` entries each (at
    least one row), over its first ``rows`` rows; ``.step`` is the block's height."""
    return range(0, rows, max(1, TABLE_CHUNK_ENTRIES // max(width, 1)))


def last_use_from_table(n: int, table: np.ndarray) -> np.ndarray:
    """``last[s] = max{t : s in row t}`` (-1 if s appears in no row): ``np.maximum.at`` over blocks of
    ``TABLE_CHUNK_ENTRIES`` entries."""
    last = np.full(n, -1, dtype=np.int64)
    blocks = row_blocks(n if table.size else 0, table.shape[1])
    for lo in blocks:
        block = table[lo:lo + blocks.step]
        ok = block >= 0
        t = np.broadcast_to(np.arange(lo, lo + block.shape[0], dtype=np.int64)[:, None], block.shape)
        np.maximum.at(last, block[ok], t[ok])
    return last


class Support:
    """Abstract support ``S(t)`` for ``0 <= t < n``.

    ``strict`` marks a B-side support (``s < t``); otherwise ``s <= t`` (A-side).
    ``lags`` is the sorted lag array when ``S(t) = {t - l : l in lags, l <= t}``, else None.
    """

    lags: np.ndarray | None = None

    def __init__(self, n: int, strict: bool):
        self.n = n
        self.strict = strict

    def counts(self) -> np.ndarray:
        return (self.table() >= 0).sum(axis=1).astype(np.int64)

    def last_use(self) -> np.ndarray:
        return last_use_from_table(self.n, self.table())

    def table(self, max_entries: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def width(self) -> int:
        """The widest row ``max_t |S(t)|``: the width of the table."""
        return int(self.counts().max(initial=0))

    def is_empty(self) -> bool:
        return not self.counts().any()

    def is_dense(self) -> bool:
        """True when S(t) holds every allowed position (all s <= t, or all s < t when strict)."""
        full = np.arange(self.n, dtype=np.int64) + (0 if self.strict else 1)
        return bool(np.array_equal(self.counts(), full))

    # -- structure questions (generic answers from the table; subclasses answer from structure) --------
    def interval_start(self, max_entries: int | None = None) -> np.ndarray | None:
        """``lo[t]`` with ``S(t) = {lo[t], ..., t}`` when every S(t) is such an interval, else None."""
        table, counts = self._table_with_diagonal(max_entries)
        if table is None:
            return None
        lo = table[:, 0]
        return lo if (lo == np.arange(self.n) - counts + 1).all() else None

    def interval_end(self, max_entries: int | None = None) -> np.ndarray | None:
        """``hi[s]`` with ``{t : s in S(t)} = {s, ..., hi[s]}`` when every such set is an interval, else None."""
        table, _ = self._table_with_diagonal(max_entries)
        if table is None:
            return None
        hi = self.last_use()
        column = np.bincount(table[table >= 0], minlength=self.n)
        return hi if (column == hi - np.arange(self.n) + 1).all() else None

    def _table_with_diagonal(self, max_entries):
        """The table (int64) and its row counts when every S(t) holds t, else ``(None, None)``."""
        table = self.table(max_entries).astype(np.int64)
        counts = (table >= 0).sum(axis=1)
        if table.shape[1] == 0 or (counts == 0).any():
            return None, None
        ok = (table[np.arange(self.n), counts - 1] == np.arange(self.n)).all()
        return (table, counts) if ok else (None, None)

    def longest_paths(self, max_entries: int | None = None) -> np.ndarray:
        """``d[t] = max(d[s] + 1 for s in S(t))`` (0 when S(t) is empty) for a B-side (strict) support: the
        number of edges of the longest path ending at h_t. A lag set: every edge spans at least the smallest
        lag l_0, and steps of l_0 attain it, so ``d[t] = floor(t / l_0)``. Otherwise one pass over the
        table (Numba)."""
        if not self.strict:
            raise GLRError("longest paths are defined for a B-side (strict) support")
        if self.lags is not None:
            t = np.arange(self.n, dtype=np.int64)
            return t // int(self.lags[0]) if self.lags.size else np.zeros(self.n, dtype=np.int64)
        return _longest_paths_kernel()(self.table(max_entries))

    def unreachable_pair(self, a: "Support") -> tuple[int, int] | None:
        """A pair ``(s, t)``, s <= t, such that no route u_s -> h_t exists with one edge of the A-side
        support ``a`` and then edges of this B-side support, when the structure shows one; None otherwise
        (the generic answer: the structure shows nothing)."""
        return None


class LagSupport(Support):
    """Translation-invariant support ``S(t) = {t - l : l in L, 0 <= t - l}`` for a sorted lag set L."""

    def __init__(self, n: int, lags, strict: bool):
        super().__init__(n, strict)
        lags = sorted_distinct(np.asarray(lags, dtype=np.int64))
        self.lags = lags[lags <= n - 1]

    def counts(self) -> np.ndarray:
        return np.searchsorted(self.lags, np.arange(self.n), side="right").astype(np.int64)

    def last_use(self) -> np.ndarray:
        s = np.arange(self.n, dtype=np.int64)
        if not self.lags.size:
            return np.full(self.n, -1, dtype=np.int64)
        k = np.searchsorted(self.lags, self.n - 1 - s, side="right") - 1
        return np.where(k >= 0, s + self.lags[np.maximum(k, 0)], -1)

    def table(self, max_entries: int | None = None) -> np.ndarray:
        """Row t: ``t - lags[c - 1], ..., t - lags[0]`` for the ``c = |{l <= t}|`` lags that fit, then -1; built
        in blocks of ``TABLE_CHUNK_ENTRIES`` entries (the rows t < the largest lag gather their entries)."""
        n, w = self.n, self.lags.size
        check_table_size(n, w, max_entries, f"lags of size {w}")
        lags = self.lags.astype(np.int32)
        s = np.arange(n, dtype=np.int32)[:, None] - lags[::-1][None, :]      # ascending rows, all lags fit
        head = int(lags[-1]) if w else 0                   # the rows t < the largest lag (lags[-1] <= n - 1)
        blocks = row_blocks(head, w)
        for lo in blocks:
            t = np.arange(lo, min(lo + blocks.step, head), dtype=np.int32)
            k = np.searchsorted(lags, t, side="right")[:, None] - 1 - np.arange(w)[None, :]   # lag index
            s[t] = np.where(k >= 0, t[:, None] - lags[np.maximum(k, 0)], -1)
        return s

    def is_dense(self) -> bool:
        first = 1 if self.strict else 0
        return self.lags.size == self.n - first and (self.n - first == 0 or self.lags[0] == first)

    def _contiguous_from_zero(self) -> bool:
        return bool(self.lags.size and self.lags[0] == 0 and self.lags[-1] == self.lags.size - 1)

    def interval_start(self, max_entries: int | None = None) -> np.ndarray | None:
        """Lags ``{0, ..., W-1}``: ``lo[t] = max(t - W + 1, 0)``."""
        t = np.arange(self.n, dtype=np.int64)
        return np.maximum(t - self.lags[-1], 0) if self._contiguous_from_zero() else None

    def interval_end(self, max_entries: int | None = None) -> np.ndarray | None:
        """Lags ``{0, ..., W-1}``: ``hi[s] = min(s + W - 1, n - 1)``."""
        s = np.arange(self.n, dtype=np.int64)
        return np.minimum(s + self.lags[-1], self.n - 1) if self._contiguous_from_zero() else None


class TableSupport(Support):
    """A support given by its index table (sorted rows, -1 padding)."""

    def __init__(self, n: int, table: np.ndarray, strict: bool):
        super().__init__(n, strict)
        self._table = table

    def table(self, max_entries: int | None = None) -> np.ndarray:
        check_table_size(self.n, self._table.shape[1], max_entries, "an explicit support")
        return self._table

    def counts(self) -> np.ndarray:
        return (self._table >= 0).sum(axis=1).astype(np.int64)

    def last_use(self) -> np.ndarray:
        return last_use_from_table(self.n, self._table)


def union(*parts: Support, max_entries: int | None = None) -> Support:
    """``S(t) = X(t) | Y(t) | ...``: the lag sets merge into one lag set; a dense side absorbs the rest and an
    empty one drops out; the tables left merge in one pass, ``TABLE_CHUNK_ENTRIES`` candidates at a time,
    refused (``WorkLimitError``) before the merged table is allocated when it is over ``max_entries``."""
    if not parts:
        raise GLRError("a union needs at least one support")
    n, strict = parts[0].n, parts[0].strict
    if any(p.n != n or p.strict != strict for p in parts):
        raise GLRError("cannot unite supports of different lengths or sides")
    lagged = [p for p in parts if p.lags is not None]
    rest = [p for p in parts if p.lags is None]
    if len(lagged) > 1:
        lagged = [LagSupport(n, np.concatenate([p.lags for p in lagged]), strict)]
    rest = lagged + rest
    dense = next((p for p in rest if p.is_dense()), None)
    if dense is not None:
        return dense
    rest = [p for p in rest if not p.is_empty()] or rest[:1]
    if len(rest) == 1:
        return rest[0]
    tables = [p.table(max_entries) for p in rest]
    blocks = row_blocks(n, sum(table.shape[1] for table in tables))
    chunks = [rows_to_table(np.concatenate([table[lo:lo + blocks.step] for table in tables], axis=1))
              for lo in blocks]
    width = max(chunk.shape[1] for chunk in chunks)
    check_table_size(n, width, max_entries, f"a union of {len(tables)} tables")
    merged = np.full((n, width), -1, dtype=np.int32)
    for lo, chunk in zip(blocks, chunks):
        merged[lo:lo + chunk.shape[0], :chunk.shape[1]] = chunk
    return TableSupport(n, merged, strict)


def _longest_paths_loop(table):
    n, w = table.shape
    d = np.zeros(n, dtype=np.int64)
    for t in range(n):
        best = 0
        for j in range(w):
            s = table[t, j]
            if s >= 0 and d[s] + 1 > best:
                best = d[s] + 1
        d[t] = best
    return d


@functools.cache
def _longest_paths_kernel():
    """``_longest_paths_loop`` compiled by Numba on first use (importing patterns does not load Numba)."""
    import numba

    return numba.njit(cache=True)(_longest_paths_loop)
