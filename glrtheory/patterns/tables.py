"""Index tables: the one interface between patterns and kernels (docs/architecture.md).

For length n, ``a_idx[n, wa]`` lists ``A(t)`` and ``b_idx[n, wb]`` lists ``B(t)`` row by row: int32,
entries ``0 <= s <= t`` (``s < t`` for B) strictly increasing, padded at the end with -1.
``IndexTables`` holds both, validated once and read-only, and unpacks as the pair
``a_idx, b_idx = p.tables(n)``. Per side it also gives, computed on first use:

* ``csr(side)``:      the valid entries in row order, ``ptr[n + 1]``, ``src[nnz]`` and ``slot[nnz]`` (the
  flat position ``t * w + j`` of each entry's coefficient in ``[n, w]``);
* ``last_use(side)``: ``last[s] = max{t : s in S(t)}`` (-1 when no row reads s);
* ``lags(side)``:     the sorted lag set L when ``S(t) = {t - l : l in L, l <= t}``, else None.

``LiveSchedule`` turns ``last_use`` into the live set of decoding (docs/quantities.md): after step t
a decoder holds ``u_s`` while ``s <= t < last_A(s)`` and ``h_s`` while ``s <= t < last_B(s)``.
Every kernel validates its tables through ``IndexTables.coerce``, so all reject the same bad tables
with the same ``GLRError``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import GLRError
from .support import MAX_TABLE_ENTRIES, LagSupport, last_use_from_table

SIDES = ("a", "b")


class CSR(NamedTuple):
    """The valid entries of one table in row order: row t holds ``src[ptr[t]:ptr[t + 1]]``, whose
    coefficients sit at ``slot`` in the flattened ``[n * w]`` coefficient array."""

    ptr: np.ndarray
    src: np.ndarray
    slot: np.ndarray

    @property
    def row(self) -> np.ndarray:
        """The row of every entry (``ptr`` expanded)."""
        return np.repeat(np.arange(self.ptr.size - 1, dtype=np.int64), np.diff(self.ptr))


def check_table(idx, n: int | None, strict: bool, name: str) -> np.ndarray:
    """One index table ``[n, w]`` (n from the table when None): integers, entries -1 or
    ``0 <= s <= t`` (``s < t`` when strict), strictly increasing with the -1 padding last.
    Returns a read-only int32 copy."""
    if type(idx).__module__.startswith("torch"):
        if idx.device.type == "meta":
            raise GLRError(f"{name} is a meta tensor, which holds no values; pass the table's integers")
        idx = idx.detach().cpu().numpy()
    try:
        arr = np.asarray(idx)
    except ValueError:                          # rows of several lengths
        raise GLRError(f"{name} is ragged: every row must have one width w (pad with -1)") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer):
        raise GLRError(f"{name} must be an integer index table, got dtype {arr.dtype}")
    if arr.ndim != 2 or (n is not None and arr.shape[0] != n):
        raise GLRError(f"{name} must have shape [n={'n' if n is None else n}, w], got {arr.shape}")
    if arr.size and (arr.min() < -1 or arr.max() >= arr.shape[0]):
        _explain(arr, strict, name)
    out = np.array(arr, dtype=np.int32, order="C")
    if out.size:
        x = out.view(np.uint32)                     # padding -1 becomes the largest value
        pad = np.uint32(0xFFFFFFFF)
        if ((x[:, :-1] >= x[:, 1:]) & (x[:, 1:] != pad)).any():
            _explain(arr, strict, name)
        count = (x != pad).sum(axis=1)
        rows = np.flatnonzero(count)
        if (out[rows, count[rows] - 1] > rows - strict).any():    # the last entry of a row is its largest
            _explain(arr, strict, name)
    out.flags.writeable = False
    return out.view()           # a view of a read-only base cannot be made writable again


def _explain(arr: np.ndarray, strict: bool, name: str):
    """Raise the GLRError naming the first defect of a table that ``check_table`` found bad."""
    t = np.arange(arr.shape[0], dtype=np.int64)[:, None]
    bad = (arr < -1) | (arr > t - strict)
    if bad.any():
        r, j = (int(v) for v in np.argwhere(bad)[0])
        side = "s < t" if strict else "s <= t"
        raise GLRError(f"{name}[{r}, {j}] = {int(arr[r, j])} is out of range (needs -1 or 0 <= {side}, t = {r})")
    late = (arr[:, 1:] >= 0) & (arr[:, :-1] < 0)
    if late.any():
        r = int(np.argwhere(late)[0, 0])
        raise GLRError(f"{name} row {r} has an entry after its -1 padding; put the padding last")
    r = int(np.argwhere((arr[:, 1:] >= 0) & (arr[:, 1:] <= arr[:, :-1]))[0, 0])
    raise GLRError(f"{name} row {r} is not strictly increasing: {arr[r].tolist()}")


def check_size(support, who: str) -> None:
    """Refuse a support whose table would exceed ``MAX_TABLE_ENTRIES``, naming ``who`` needs it and no
    argument (callers such as a layer or a decode cache have no ``max_entries`` to pass)."""
    width = support.width()
    if support.n * width > MAX_TABLE_ENTRIES:
        raise GLRError(f"{who} at length {support.n} needs an index table of {support.n} x {width} = "
                       f"{support.n * width} entries, over the limit of {MAX_TABLE_ENTRIES}; use shorter "
                       f"sequences or a sparser pattern")


def lag_row(lags: np.ndarray, t: int, width: int) -> np.ndarray:
    """Row t of the table of ``S(t) = {t - l}``: ascending positions, -1 padded to ``width``."""
    used = lags[: np.searchsorted(lags, t, side="right")]
    row = np.full(width, -1, dtype=np.int32)
    row[: used.size] = t - used[::-1]
    return row


def _check_lags(table: np.ndarray, lags, name: str) -> np.ndarray:
    """``lags`` as a sorted int64 array of those below n, checked to give ``table``: row t holds ``t - l`` for every
    ``l <= t`` in ascending order, then -1 (in blocks of rows, so that the check's arrays stay small)."""
    given = np.asarray(lags)
    if given.size and not np.issubdtype(given.dtype, np.integer):
        raise GLRError(f"{name} must be integers, got dtype {given.dtype}")
    lags = np.unique(given.astype(np.int64))
    n, w = table.shape
    count = np.searchsorted(lags, np.arange(n), side="right")
    rows = max(1, 2**22 // max(w, 1))
    for start in range(0, n, rows):
        block = table[start:start + rows]
        place = count[start:start + rows, None] - 1 - np.arange(w)        # entry j is t - lags[count - 1 - j]
        t = np.arange(start, start + len(block))[:, None]
        if (count[start:start + rows] > w).any() or \
                not np.array_equal(block, np.where(place >= 0, t - (lags[np.maximum(place, 0)] if lags.size else 0),
                                                   -1)):
            raise GLRError(f"{name} {lags.tolist()} do not describe their table: row t must hold t - l for every "
                           f"lag l <= t, in ascending order")
    return lags[lags < n]                       # a lag past the table's rows is no lag of it


class IndexTables(tuple):
    """``(a_idx, b_idx)`` of one pattern at length n, validated and read-only (module docstring).

    Parameters
    ----------
    a_idx, b_idx : int arrays ``[n, wa]``, ``[n, wb]``
        Rows ``A(t)`` (``0 <= s <= t``) and ``B(t)`` (``0 <= s < t``), strictly increasing, -1 padded.
    a_lags, b_lags : int arrays, optional
        The lag sets, where the sides are translation invariant (``Pattern.tables`` passes them);
        they must describe the tables.

    Raises
    ------
    GLRError
        A table that is not integer, not ``[n, w]``, out of range, unsorted, duplicated, or padded
        before its last entry; the message names ``a_idx`` or ``b_idx`` and the first bad entry. Lags that
        do not describe their table (the Triton scan reads a side's lags in place of its table).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> tables = Pattern.from_spec("power2").tables(6)
    >>> a_idx, b_idx = tables
    >>> b_idx.tolist()
    [[-1, -1, -1], [0, -1, -1], [0, 1, -1], [1, 2, -1], [0, 2, 3], [1, 3, 4]]
    >>> tables.csr("b").ptr.tolist(), tables.last_use("b").tolist(), tables.lags("b").tolist()
    ([0, 0, 1, 3, 5, 8, 11], [4, 5, 4, 5, 5, -1], [1, 2, 4])
    >>> IndexTables([[0], [0]], [[-1], [1]])
    Traceback (most recent call last):
    ...
    glrtheory.errors.GLRError: b_idx[1, 0] = 1 is out of range (needs -1 or 0 <= s < t, t = 1)
    """

    def __new__(cls, a_idx, b_idx, a_lags=None, b_lags=None, *, _built_from_lags=False):
        a = check_table(a_idx, None, False, "a_idx")
        b = check_table(b_idx, a.shape[0], True, "b_idx")
        self = super().__new__(cls, (a, b))
        check = (lambda t, x, name: np.asarray(x, dtype=np.int64)) if _built_from_lags else _check_lags
        lags = tuple(None if x is None else check(t, x, name)        # a Support builds its table from its lags
                     for t, x, name in ((a, a_lags, "a_lags"), (b, b_lags, "b_lags")))
        object.__setattr__(self, "_lags", lags)
        object.__setattr__(self, "_memo", {})
        return self

    def __setattr__(self, name, value):
        raise AttributeError("IndexTables are read-only")

    def __reduce__(self):
        return (IndexTables, (self[0], self[1]) + self._lags)

    @classmethod
    def coerce(cls, tables, n: int | None = None) -> "IndexTables":
        """``tables`` as IndexTables: returned as they are, validated from a pair ``(a_idx, b_idx)``, or
        a pattern's ``tables(n)`` (anything with ``support_a``; n is then needed). Callers compare
        ``.n`` with their inputs themselves, to name the argument that disagrees."""
        if hasattr(tables, "support_a"):
            if n is None:
                raise GLRError(f"a Pattern needs the length n to give its tables ({tables!r})")
            return tables.tables(n)
        if isinstance(tables, IndexTables):
            return tables
        if not isinstance(tables, (tuple, list)) or len(tables) != 2:
            raise GLRError("tables must be the pair (a_idx, b_idx) of index tables that Pattern.tables(n) "
                           f"gives, got {type(tables).__name__}")
        return cls(*tables)

    @property
    def n(self) -> int:
        return self[0].shape[0]

    @property
    def a_idx(self) -> np.ndarray:
        return self[0]

    @property
    def b_idx(self) -> np.ndarray:
        return self[1]

    def table(self, side: str) -> np.ndarray:
        return self[SIDES.index(side)]

    def lags(self, side: str) -> np.ndarray | None:
        return self._lags[SIDES.index(side)]

    def _cached(self, key, build):
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def csr(self, side: str) -> CSR:
        """The valid entries of one side in row order (``CSR``)."""
        def build():
            idx = self.table(side)
            rows, cols = np.nonzero(idx >= 0)
            ptr = np.zeros(self.n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=self.n), out=ptr[1:])
            return CSR(ptr, idx[rows, cols].astype(np.int64), rows * idx.shape[1] + cols)
        return self._cached(("csr", side), build)

    def last_use(self, side: str) -> np.ndarray:
        """``last[s] = max{t : s in S(t)}``, -1 when unused (int64 ``[n]``, read-only)."""
        def build():
            lags = self.lags(side)
            if lags is not None:
                out = LagSupport(self.n, lags, strict=side == "b").last_use()
            else:
                out = last_use_from_table(self.n, self.table(side))
            out.flags.writeable = False
            return out
        return self._cached(("last", side), build)

    def memo(self, key, build):
        """A value derived from these tables, built once (e.g. a kernel's device plan)."""
        return self._cached(("memo",) + tuple(key), build)

    def __repr__(self) -> str:
        return f"IndexTables(n={self.n}, a_idx {self[0].shape}, b_idx {self[1].shape})"


class LiveSide:
    """Liveness of one side at horizon n: rows (``row(t)``, from a table or from lags), ``last`` uses,
    ``stored(t)`` (``last[t] > t``: a later row reads t) and ``leaving(t)`` (stored positions whose last
    use is t)."""

    def __init__(self, n: int, last: np.ndarray, table: np.ndarray | None = None, lags=None):
        self.n, self.last, self.table, self.lags = n, last, table, lags
        self.width = table.shape[1] if table is not None else int(lags.size)
        s = np.arange(n, dtype=np.int64)
        stored = np.flatnonzero(last > s)
        self._order = stored[np.argsort(last[stored], kind="stable")]
        self._ptr = np.searchsorted(last[self._order], np.arange(n + 1))

    def row(self, t: int) -> np.ndarray:
        return self.table[t] if self.table is not None else lag_row(self.lags, t, self.width)

    def stored(self, t: int) -> bool:
        return bool(self.last[t] > t)

    def leaving(self, t: int) -> np.ndarray:
        return self._order[self._ptr[t]: self._ptr[t + 1]]

    def live_after(self, L: int) -> np.ndarray:
        """Positions ``s < L`` still read after step ``L - 1`` (the live set after a prompt of L)."""
        return np.flatnonzero(self.last[:L] >= L)


#: Longest decode horizon (``LiveSchedule.of`` a pattern; both decode caches make one): at 2^24 a cache took 2.5-4.6
#: s and about 1.1 GB on the development machine (power2, ssm).
DECODE_MAX_N = 2**24


class LiveSchedule:
    """The decode schedule of both sides: ``a`` (inputs u_s) and ``b`` (states h_s) ``LiveSide``s.

    ``LiveSchedule.of(source, n)``: ``source`` IndexTables or a pair (n from the tables), or a pattern
    (anything with ``support_a(n)`` / ``support_b(n)``), whose translation-invariant sides give their
    rows from the lags, so attention at n = 2^20 decodes without an n x n table.
    """

    def __init__(self, n: int, a: LiveSide, b: LiveSide):
        self.n, self.a, self.b = n, a, b

    @classmethod
    def of(cls, source, n: int | None = None) -> "LiveSchedule":
        if hasattr(source, "support_a"):
            if n is None:
                raise GLRError("a decode schedule of a pattern needs the horizon n")
            if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > DECODE_MAX_N:
                raise GLRError(f"a decode horizon is limited to n <= {DECODE_MAX_N} (its schedule holds arrays of n "
                               f"entries from the start: about 1 GB at that limit), got n={n}")
            sides = []
            for sup in (source.support_a(n), source.support_b(n)):
                if sup.lags is not None:
                    sides.append(LiveSide(n, sup.last_use(), lags=sup.lags))
                else:
                    check_size(sup, f"decoding {source!r}")
                    table = check_table(sup.table(), n, sup.strict, "b_idx" if sup.strict else "a_idx")
                    sides.append(LiveSide(n, sup.last_use(), table=table))
            return cls(n, *sides)
        tables = IndexTables.coerce(source)
        if n is not None and n != tables.n:
            raise GLRError(f"the tables are for n={tables.n} positions, not the horizon n={n}")
        return cls(tables.n, *(LiveSide(tables.n, tables.last_use(s), table=tables.table(s)) for s in SIDES))
