"""Index tables as the Triton kernels read them, built once per table object, length, chunk and device.

* ``a_idx[n, wa]``, ``b_idx[n, wb]``: the padded tables (int32, -1 padding), validated.
* ``bt_idx[n, wt]``, ``bt_col[n, wt]``: B^T restricted to the *future* of each chunk, padded: row s lists the
  readers ``(t, j)`` with ``b_idx[t, j] = s`` and t in a later chunk (``t >= C (s // C + 1)``), -1 padded
  (entries inside a chunk go through ``T_k^T``); width 0 when some row has over ``PULL_WIDTH`` readers (a hub
  such as fenwick's h_0): the backward then pushes through B instead.
* ``A^T`` as rows ``s`` listing the ``(t, j)`` with ``a_idx[t, j] = s`` (for ``dU = A^T Z``).
* ``ext[k]``: the widest prefix of chunk k's B rows before the chunk (``b_idx[t, j] < C k``; rows ascend, so
  those entries come first), the columns the forward walk gathers from and the backward walk pushes to.
* Lag tables (``lag_set``): where row t lists ``t - L_i`` for every lag ``L_i <= t`` of a fixed set
  ``L_0 > L_1 > ...`` (ssm, windows, power2, quadratic, lag sets), the lags and ``slot``: the coefficient of
  lag i at row t sits in column ``i - skip[t]``, ``skip[t] = |{i : L_i > t}|``. The kernels then read whole
  rows of states per lag (no index loads, no sums across threads); other tables give empty tensors.

``A^T`` is an entry list sorted by row with row pointers (``ptr[n + 1]``, ``row``, ``src = t``,
``col = j``), not a padded table: a hub read by every t (``h_0`` in ``fenwick``) would widen it to n.
Each list ends with one unused entry, so no kernel argument is empty.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from glrtheory.errors import GLRError
from glrtheory.patterns.support import LagSupport, rank_in_runs
from glrtheory.patterns.tables import IndexTables

from .plan import entries, transpose


class TritonTables(NamedTuple):
    """Device int32 tensors (the slots int64): ``a_idx, b_idx, ext``, ``A^T`` (4), ``bt_idx, bt_col``, then the
    lags and slots of A and B (``a_lags, a_slot, b_lags, b_slot``, ``_lag_tensors``; ``lags`` is empty where the
    table is not read per lag); ``lag_values``: A's and B's lags as Python ints (descending; empty where not read per
    lag), for kernels that take them as constants; ``a_diagonal``: A is the identity table (``a_idx[t] = [t]``)."""

    a_idx: torch.Tensor
    b_idx: torch.Tensor
    ext: torch.Tensor
    at: tuple
    bt_idx: torch.Tensor
    bt_col: torch.Tensor
    lags: tuple
    lag_values: tuple
    a_diagonal: bool

    @property
    def tensors(self) -> tuple:
        """The thirteen tensors in the order the op takes them."""
        return (self.a_idx, self.b_idx, self.ext) + self.at + (self.bt_idx, self.bt_col) + self.lags


def _csr(row: np.ndarray, src: np.ndarray, slot: np.ndarray, width: int, n: int, device) -> tuple:
    ptr = np.searchsorted(row, np.arange(n + 1))
    cols = slot % max(width, 1)
    return tuple(torch.as_tensor(np.append(x, 0).astype(np.int32) if i else x.astype(np.int32), device=device)
                 for i, x in enumerate((ptr, row, src, cols)))


def _padded(idx: np.ndarray, device) -> torch.Tensor:
    return torch.tensor(np.asarray(idx), dtype=torch.int32, device=device)          # a copy: tables are read-only


#: The widest B^T row (readers in later chunks) the backward gathers through; wider tables push instead. On
#: an H200 (benchmarks/results/gpu_calls/call3 and call5) gathering beat pushing for ssm (1 reader: 0.56 vs
#: 0.82 ms a walk at B2 T16384 H16 D128) and lost for power2 (14 readers, two blocks of 8: 1.80 vs 1.72 ms).
PULL_WIDTH = 8


def future_readers(tables: IndexTables, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bt_idx, bt_col)`` int32 ``[n, wt]`` (module docstring); ``[n, 0]`` when wt would exceed ``PULL_WIDTH``."""
    n, wb = tables.n, tables.b_idx.shape[1]
    bt = transpose(entries(tables, "b"), n)
    future = bt.src >= (bt.row // chunk + 1) * chunk
    row, t, slot = bt.row[future], bt.src[future], bt.slot[future]
    count = np.bincount(row, minlength=n)
    width = int(count.max(initial=0))
    idx = np.full((n, width if width <= PULL_WIDTH else 0), -1, dtype=np.int32)
    col = np.zeros_like(idx)
    if idx.shape[1]:
        rank = rank_in_runs(count)                                      # rows are sorted: rank within the row
        idx[row, rank], col[row, rank] = t, slot % max(wb, 1)
    return idx, col


def external_columns(b_idx: np.ndarray, chunk: int) -> np.ndarray:
    """``ext[k] = max_{t in chunk k} |{j : 0 <= b_idx[t, j] < C k}|`` (int32, one per chunk)."""
    n = b_idx.shape[0]
    first = np.arange(n) // chunk * chunk
    count = ((b_idx >= 0) & (b_idx < first[:, None])).sum(1)
    return np.maximum.reduceat(count, np.arange(0, n, chunk)).astype(np.int32)


def lag_set(idx: np.ndarray) -> np.ndarray | None:
    """The lags ``L_0 > L_1 > ...`` (int64) when ``idx`` is the table of the lag support they make
    (``LagSupport``: row t lists ``t - L_i`` for the lags ``L_i <= t``, in ascending order of source, then -1
    padding); None for any other table."""
    n, w = idx.shape
    lags = np.unique((np.arange(n)[:, None] - idx)[idx >= 0])
    if lags.size > w:
        return None
    expected = np.full((n, w), -1, dtype=np.int64)
    expected[:, :lags.size] = LagSupport(n, lags, strict=False).table()
    return lags[::-1] if np.array_equal(expected, idx) else None


def skipped(lags: np.ndarray, n: int) -> np.ndarray:
    """``skip[t] = |{i : lags[i] > t}|`` for the lags (int32): those that ``LagSupport.counts`` leaves out."""
    return (lags.size - LagSupport(n, lags, strict=False).counts()).astype(np.int32)


#: The most entries ``n x m`` of a lag table read per lag (its slot table is int64); wider lag tables (attention's
#: A: m = n) are read through their index tables.
MAX_LAG_ENTRIES = 2**25


def _lag_tensors(tables: IndexTables, side: str, device) -> tuple:
    """``(lags, slot, values)``: for a lag table (the lags the tables were built from, or else those ``lag_set``
    finds) of at most ``MAX_LAG_ENTRIES`` entries, its lags on ``device`` (descending, int32, one more entry,
    never read), the column of lag i at row t, ``slot[t, i] = max(i - skip[t], 0)`` (int64 ``[n, m]``;
    empty where the column already is i at every row the lag reaches), and the lags as a tuple of ints; for any
    other table two empty tensors and ``()``."""
    idx = np.asarray(tables.table(side))
    known = tables.lags(side)
    if known is not None:
        lags = np.sort(known)[::-1]
    else:                          # a table over the limit is not searched (only padding could bring m x n under)
        lags = lag_set(idx) if idx.size <= MAX_LAG_ENTRIES else None
    empty = torch.zeros(0, dtype=torch.int32, device=device)
    if lags is None or lags.size * len(idx) > MAX_LAG_ENTRIES:
        return empty, empty.long(), ()
    skip = skipped(lags, len(idx))
    slot = np.maximum(np.arange(lags.size)[None, :] - skip[:, None], 0)
    reached = np.arange(len(idx))[:, None] >= lags[None, :]
    in_place = np.array_equal(slot[reached], np.broadcast_to(np.arange(lags.size), slot.shape)[reached])
    return (torch.as_tensor(np.append(lags, 0).astype(np.int32), device=device),
            empty.long() if in_place else torch.as_tensor(slot, device=device), tuple(int(L) for L in lags))


def triton_tables(tables, n: int, chunk: int, device: torch.device) -> TritonTables:
    """Validate ``tables`` (``IndexTables`` or the pair ``(a_idx, b_idx)``) for length n and build the
    kernels' tables, once per IndexTables object, chunk and device."""
    tables = IndexTables.coerce(tables)
    if tables.n != n:
        raise GLRError(f"u must have shape [batch, n={tables.n}, heads, d] to match the tables, got n={n}")

    def build() -> TritonTables:
        a_idx, b_idx = tables
        a_lags, b_lags = _lag_tensors(tables, "a", device), _lag_tensors(tables, "b", device)
        return TritonTables(_padded(a_idx, device), _padded(b_idx, device),
                            torch.as_tensor(external_columns(np.asarray(b_idx), chunk), device=device),
                            _csr(*transpose(entries(tables, "a"), n), a_idx.shape[1], n, device),
                            *(torch.as_tensor(x, device=device) for x in future_readers(tables, chunk)),
                            a_lags[:2] + b_lags[:2], (a_lags[2], b_lags[2]),
                            a_idx.shape[1] == 1 and bool((np.asarray(a_idx)[:, 0] == np.arange(n)).all()))

    return tables.memo(("triton", chunk, str(device)), build)
