"""Index tables for the torch op: validation, entry lists, transposed tables (cached per table object).

The forward substitution ``(I - B) H = A U`` walks the tables ``a_idx``, ``b_idx`` (DESIGN.md section 3).
Its gradient walks the *transposed* pattern: ``grad_U = A^T Z`` with ``Z = (I - B)^{-T} G``, a backward
substitution. Reversing time (``s -> n-1-s``) turns ``B^T`` into a strictly lower pattern again, so the
same forward-substitution code runs it.

The op consumes each table as its list of valid entries sorted by row (compressed sparse rows without
padding): ``row[e]``, ``src[e]`` (the position read) and ``slot[e] = row * w + j`` (where the coefficient
lives in the flattened ``[n * w]`` coefficient array). Padded -1 tables would not do for the transposed
side: a hub position read by every t (``h_0`` in ``fenwick``) would widen every row to n.
"""
from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import torch

from glrtheory.errors import GLRError


class Entries(NamedTuple):
    """The valid entries of a table, sorted by (row, src): ``row[e]``, ``src[e]``, ``slot[e]``."""

    row: np.ndarray
    src: np.ndarray
    slot: np.ndarray


def entries(idx: np.ndarray) -> Entries:
    """Entries of a sorted, -1 padded table ``idx[n, w]`` in row-major order (so sorted by row, src)."""
    rows, slots = np.nonzero(idx >= 0)
    return Entries(rows, idx[rows, slots].astype(np.int64), rows * idx.shape[1] + slots)


def transpose(e: Entries, n: int, reverse: bool = False) -> Entries:
    """The transposed table: row s lists the t with ``s in S(t)``, keeping each coefficient's slot.
    ``reverse=True`` also reverses time (row ``n-1-s`` lists ``n-1-t``), so a strictly lower B^T stays
    strictly lower. Rows come out sorted by (row, src) like ``entries``."""
    row, src = (n - 1 - e.src, n - 1 - e.row) if reverse else (e.src, e.row)
    order = np.lexsort((src, row))
    return Entries(row[order], src[order], e.slot[order])


def check_table(idx, n: int, strict: bool, name: str) -> np.ndarray:
    """Validate one index table: int ``[n, w]``, entries in ``[0, t]`` (``[0, t)`` when strict) or -1,
    strictly increasing valid entries first, padding last. Returns it as int64 numpy."""
    if isinstance(idx, torch.Tensor):
        idx = idx.detach().cpu().numpy()
    arr = np.asarray(idx)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer):
        raise GLRError(f"{name} must be an integer index table, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != n:
        raise GLRError(f"{name} must have shape [n={n}, w], got {arr.shape}")
    arr = arr.astype(np.int64)
    t = np.arange(n)[:, None]
    valid = arr >= 0
    limit = t - 1 if strict else t
    bad = (arr < -1) | (valid & (arr > limit))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        side = "s < t" if strict else "s <= t"
        raise GLRError(f"{name}[{r}, {c}] = {arr[r, c]} is out of range (needs -1 or 0 <= {side} at t={r})")
    if arr.shape[1] > 1:
        nxt_valid = valid[:, 1:]
        if (nxt_valid & ~valid[:, :-1]).any() or (nxt_valid & (arr[:, 1:] <= arr[:, :-1])).any():
            raise GLRError(f"{name} rows must be strictly increasing with -1 padding at the end")
    return arr


class ScanPlan(NamedTuple):
    """What ``glr_scan`` needs about the pattern at length n, as device tensors: the entries of A, B,
    A^T and the time-reversed B^T (three tensors each, ``row, src, slot``), and the table shapes."""

    tensors: tuple
    a_shape: tuple
    b_shape: tuple


_PLANS: dict = {}


def _forget(key) -> None:
    _PLANS.pop(key, None)


def scan_plan(tables, n: int, device: torch.device) -> ScanPlan:
    """Validate ``tables = (a_idx, b_idx)`` for length n and build the plan; cached per table object
    (and device), so the transposed tables are built once per table. Tables must not be mutated."""
    if not isinstance(tables, (tuple, list)) or len(tables) != 2:
        raise GLRError("tables must be the pair (a_idx, b_idx) from Pattern.tables(n)")
    key = (id(tables[0]), id(tables[1]), n, str(device))
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    a_idx = check_table(tables[0], n, strict=False, name="a_idx")
    b_idx = check_table(tables[1], n, strict=True, name="b_idx")
    a, b = entries(a_idx), entries(b_idx)
    parts = (a, b, transpose(a, n), transpose(b, n, reverse=True))
    plan = ScanPlan(tuple(torch.as_tensor(x, device=device) for e in parts for x in e),
                    a_idx.shape, b_idx.shape)
    try:
        for obj in tables:
            weakref.finalize(obj, _forget, key)
    except TypeError:       # an object without weak references: do not cache (its id could be reused)
        return plan
    _PLANS[key] = plan
    return plan
