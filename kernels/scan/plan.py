"""What every torch backend of ``glr_scan`` gets about the pattern: the ``Plan`` of device tensors.

The forward substitution ``(I - B) H = A U`` walks the tables ``a_idx``, ``b_idx`` (docs/architecture.md).
Its gradient walks the *transposed* pattern: ``grad_U = A^T Z`` with ``Z = (I - B)^{-T} G``, a backward
substitution. Reversing time (``s -> n-1-s``) turns ``B^T`` into a strictly lower pattern again, so the
same forward-substitution code runs it.

A plan holds the padded tables and, for A, B, A^T and the time-reversed B^T, the valid entries sorted by
row (compressed sparse rows): ``ptr[t]`` (first entry of row t), ``row[e]``, ``src[e]`` (the position
read) and ``slot[e] = t * w + j`` (where the coefficient lives in the flattened ``[n * w]`` row of
coefficients). Padded tables would not do for the transposed side: a hub position read by every t
(``h_0`` in ``fenwick``) would widen every row to n. A plan is built once per ``IndexTables`` and device.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from glrtheory.patterns.tables import IndexTables


class Entries(NamedTuple):
    """The valid entries of a table sorted by (row, src): ``row[e]``, ``src[e]``, ``slot[e]`` (numpy)."""

    row: np.ndarray
    src: np.ndarray
    slot: np.ndarray


def entries(tables: IndexTables, side: str) -> Entries:
    """One side's entries in row order (from ``IndexTables.csr``)."""
    csr = tables.csr(side)
    return Entries(csr.row, csr.src, csr.slot)


def transpose(e: Entries, n: int, reverse: bool = False) -> Entries:
    """The transposed table: row s lists the t with ``s in S(t)``, keeping each coefficient's slot.
    ``reverse=True`` also reverses time (row ``n-1-s`` lists ``n-1-t``), so a strictly lower B^T stays
    strictly lower. Rows come out sorted by (row, src) like ``entries``."""
    row, src = (n - 1 - e.src, n - 1 - e.row) if reverse else (e.src, e.row)
    order = np.lexsort((src, row))
    return Entries(row[order], src[order], e.slot[order])


class Plan(NamedTuple):
    """Device tensors: padded tables ``a_idx``, ``b_idx`` (int32 ``[n, w]``), and per table A, B, A^T,
    reversed B^T (prefixes ``a_``, ``b_``, ``at_``, ``bt_``) the int64 CSR ``ptr[n + 1]``, ``row``, ``src``,
    ``slot`` (module docstring)."""

    a_idx: torch.Tensor
    b_idx: torch.Tensor
    a_ptr: torch.Tensor
    a_row: torch.Tensor
    a_src: torch.Tensor
    a_slot: torch.Tensor
    b_ptr: torch.Tensor
    b_row: torch.Tensor
    b_src: torch.Tensor
    b_slot: torch.Tensor
    at_ptr: torch.Tensor
    at_row: torch.Tensor
    at_src: torch.Tensor
    at_slot: torch.Tensor
    bt_ptr: torch.Tensor
    bt_row: torch.Tensor
    bt_src: torch.Tensor
    bt_slot: torch.Tensor

    @property
    def n(self) -> int:
        return self.a_idx.shape[0]


def _pointers(row: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(row, np.arange(n + 1)).astype(np.int64)


def scan_plan(tables: IndexTables, device) -> Plan:
    """The plan of ``tables`` on ``device``, built once per tables object and device."""
    device = torch.device(device)

    def build() -> Plan:
        n = tables.n
        a, b = entries(tables, "a"), entries(tables, "b")
        parts = []
        for e in (a, b, transpose(a, n), transpose(b, n, reverse=True)):
            parts += [_pointers(e.row, n), e.row, e.src, e.slot]
        tensors = [torch.tensor(np.asarray(x), device=device) for x in (*tables, *parts)]
        return Plan(*tensors)

    return tables.memo(("torch_plan", str(device)), build)
