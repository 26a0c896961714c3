"""Index tables for the torch op: validation, transposed tables, device copies (cached per table object).

The forward substitution ``(I - B) H = A U`` walks the tables ``a_idx``, ``b_idx`` (DESIGN.md section 3).
Its gradient walks the *transposed* pattern: ``grad_U = A^T Z`` with ``Z = (I - B)^{-T} G``, a backward
substitution. Reversing time (``s -> n-1-s``) turns ``B^T`` into a strictly lower pattern again, so the
same forward-substitution code runs it. A transposed table row lists, for a source s, the targets t with
``s in S(t)``; a slot table lists where each coefficient lives in the flattened ``[n * w]`` original.
"""
from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import torch

from glrtheory.errors import GLRError


class TransposedTable(NamedTuple):
    """``idx[s, k]``: the k-th target t with s in S(t) (-1 padded); ``slot[s, k] = t * w + j``."""

    idx: np.ndarray
    slot: np.ndarray


class ScanPlan(NamedTuple):
    """Device tensors for ``glr_scan``: the tables, ``A^T`` and the time-reversed ``B^T``."""

    a_idx: torch.Tensor
    b_idx: torch.Tensor
    at_idx: torch.Tensor
    at_slot: torch.Tensor
    bt_idx: torch.Tensor
    bt_slot: torch.Tensor


def transpose_table(idx: np.ndarray, reverse: bool = False) -> TransposedTable:
    """Transpose an index table (vectorized). ``reverse=True`` also reverses time: row ``n-1-s`` lists
    ``n-1-t`` ascending, so the transposed strictly-lower B becomes strictly lower again."""
    n, w = idx.shape
    rows, slots = np.nonzero(idx >= 0)
    src = idx[rows, slots].astype(np.int64)
    order = np.lexsort((-rows if reverse else rows, src))      # by source, then target (desc if reversed)
    rows, slots, src = rows[order], slots[order], src[order]
    counts = np.bincount(src, minlength=n)
    width = int(counts.max(initial=0))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(src.size) - start[src]
    out_idx = np.full((n, width), -1, dtype=np.int64)
    out_slot = np.full((n, width), -1, dtype=np.int64)
    row = n - 1 - src if reverse else src
    out_idx[row, k] = n - 1 - rows if reverse else rows
    out_slot[row, k] = rows * w + slots
    return TransposedTable(out_idx, out_slot)


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


_PLANS: dict = {}


def _forget(key) -> None:
    _PLANS.pop(key, None)


def scan_plan(tables, n: int, device: torch.device) -> ScanPlan:
    """Validate ``tables = (a_idx, b_idx)`` for length n and build the plan; cached per table object
    (and device), so the transposed tables are built once per table."""
    if not isinstance(tables, (tuple, list)) or len(tables) != 2:
        raise GLRError("tables must be the pair (a_idx, b_idx) from Pattern.tables(n)")
    key = (id(tables[0]), id(tables[1]), n, str(device))
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    a_idx = check_table(tables[0], n, strict=False, name="a_idx")
    b_idx = check_table(tables[1], n, strict=True, name="b_idx")
    at = transpose_table(a_idx)
    bt = transpose_table(b_idx, reverse=True)
    plan = ScanPlan(*(torch.as_tensor(x, device=device)
                      for x in (a_idx, b_idx, at.idx, at.slot, bt.idx, bt.slot)))
    try:
        for obj in tables:
            weakref.finalize(obj, _forget, key)
    except TypeError:       # an object without weak references: do not cache (its id could be reused)
        return plan
    _PLANS[key] = plan
    return plan
