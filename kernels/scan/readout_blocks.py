"""The two blockwise algorithms of ``glr_readout`` (see ``readout``), ``o = ((Q K^T) * M) V`` a block at a time:

* ``DIRECT``: rows ``r0:r1`` when B is empty (``M = A``), A's rows scattered into a dense block;
* ``TILED``: the columns ``c0:c1`` of M from ``glr_scan`` on unit vectors, over the rows ``c0:`` only, combined with
  Q, K and V by ``tile_combine`` (``tile_product``'s Triton kernels on CUDA, else ``tile_einsum``);
* ``Blockwise``: the autograd function that sums the blocks and recomputes each one in the backward, so
  no ``T x T`` matrix is ever kept; each block gets only the rows it reads (``Block.reads``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch

from glrtheory.patterns.tables import IndexTables

from ..second_derivative import no_second_derivative
from .op import glr_scan

Tensor = torch.Tensor

#: Index-table elements that one tables object keeps for its blocks (``_kept``): the tiles' suffix tables hold about
#: ``T^2 w / (2 C)``, 3.4 x 10^7 for power2 at T = 16384 with tiles of 64, so past this budget a call builds its
#: blocks' tables anew.
KEPT_ELEMENTS = 2**22


def _kept(tables: IndexTables, key: tuple, elements: int, build):
    """``build()``, kept with the tables under key while the elements kept so stay within ``KEPT_ELEMENTS`` (no copy
    from the host per call where they fit: such a copy waits on the device, and a CUDA graph capture refuses it)."""
    budget = tables.memo(("readout_blocks_budget",), lambda: [KEPT_ELEMENTS])
    kept = tables.memo(("readout_blocks",), dict)
    if key not in kept:
        if elements > budget[0]:
            return build()
        budget[0] -= elements
        kept[key] = build()
    return kept[key]


def _lowest_source(tables: IndexTables, r0: int, r1: int) -> int:
    """The lowest row that A's entries in rows ``r0:r1`` read (r0 where they read none), kept with the tables."""
    def find():
        idx = tables.a_idx[r0:r1]
        return int(idx[idx >= 0].min(initial=r0))
    return tables.memo(("readout_blocks_lowest", r0, r1), find)


def _block_entries(tables: IndexTables, r0: int, r1: int, device) -> tuple:
    """``(lo, rows, slots, cols)``: A's entries in rows ``r0:r1`` (row and slot within the block, column from the
    lowest source lo), on the device (``_kept``)."""
    def build():
        idx = tables.a_idx[r0:r1]
        rows, slots = np.nonzero(idx >= 0)
        lo = _lowest_source(tables, r0, r1)
        return (lo, *(torch.as_tensor(x, dtype=torch.long, device=device)
                      for x in (rows, slots, idx[rows, slots] - lo)))
    return _kept(tables, ("direct_block", r0, r1, str(device)), (r1 - r0) * tables.a_idx.shape[1], build)


def _direct_reads(tables: IndexTables, r0: int, r1: int) -> tuple:
    """The rows of q, k, v, a, b that direct block ``r0:r1`` reads: its own rows, and ``lo:r1`` of k and v (lo: the
    lowest source of its A rows, found on the host)."""
    lo = _lowest_source(tables, r0, r1)
    return (r0, r1), (lo, r1), (lo, r1), (r0, r1), (r0, r1)


def _direct(q, k, v, a, b, tables, r0: int, r1: int) -> Tensor:
    """Rows ``r0:r1`` of ``((Q K^T) * A) V`` (B empty, so M = A) from the rows ``_direct_reads`` gives, with A's rows
    scattered into a dense ``[r1 - r0, r1 - lo]`` block over the sources ``lo:r1`` they read."""
    lo, rows, slots, cols = _block_entries(tables, r0, r1, q.device)
    B, _, H, _ = q.shape
    block = q.new_zeros((B, H, r1 - r0, r1 - lo))
    block[..., rows, cols] = a.permute(0, 2, 1, 3)[..., rows, slots]
    s = torch.einsum("bihd,bjhd->bhij", q, k)
    return torch.einsum("bhij,bjhv->bihv", s * block, v)


def _suffix(tables: IndexTables, c0: int):
    """The tables of rows ``c0:`` with sources shifted by ``-c0`` and the entries before c0 dropped (they
    read zero states and inputs when the input starts at c0), and per side the original slot ``j[t, j']``
    each new slot reads (``[T - c0, w']``; 0 in padding)."""
    out, slots = [], []
    for idx in (tables.a_idx, tables.b_idx):
        rows = idx[c0:]
        drop, keep = ((rows >= 0) & (rows < c0)).sum(1), (rows >= c0).sum(1)
        j = np.arange(int(keep.max(initial=0)))[None, :] + drop[:, None]
        valid = j < (drop + keep)[:, None]
        src = np.take_along_axis(rows, np.where(valid, j, 0), 1) if rows.shape[1] else j
        out.append(np.where(valid, src - c0, -1).astype(np.int32))
        slots.append(np.where(valid, j, 0))
    return IndexTables(*out), slots


def _tile_tables(tables: IndexTables, c0: int, device) -> tuple:
    """``_suffix(tables, c0)`` with its slot tables on the device (``_kept``: then the same suffix tables each call,
    so that ``glr_scan`` keeps its plan for them too)."""
    def build():
        sub, slots = _suffix(tables, c0)
        return sub, [torch.as_tensor(j, device=device) for j in slots]
    width = tables.a_idx.shape[1] + tables.b_idx.shape[1]
    return _kept(tables, ("tile", c0, str(device)), (tables.n - c0) * width, build)


def _tile_reads(tables: IndexTables, c0: int, c1: int) -> tuple:
    """The rows of q, k, v, a, b that tile ``c0:c1`` reads: ``c0:`` of q, a, b and ``c0:c1`` of k and v."""
    return (c0, tables.n), (c0, c1), (c0, c1), (c0, tables.n), (c0, tables.n)


def _tile(q, k, v, a, b, tables, c0: int, c1: int) -> Tensor:
    """Rows ``c0:`` of ``((Q K^T) * M[:, c0:c1]) V[c0:c1]`` from the rows ``_tile_reads`` gives, with
    ``M[c0:, c0:c1] = glr_scan(E)`` over the rows c0: only (M is lower triangular) for the unit vectors
    ``E[t, j] = [t = j]``."""
    B, R, H, _ = q.shape
    sub, (ja, jb) = _tile_tables(tables, c0, q.device)
    coef = [torch.gather(x, 3, j[None, :, None].expand(B, -1, H, -1)) for x, j in ((a, ja), (b, jb))]
    e = torch.eye(R, c1 - c0, dtype=q.dtype, device=q.device)
    m = glr_scan(e[None, :, None].expand(B, R, H, c1 - c0), *coef, sub)        # [B, T - c0, H, C]
    return tile_combine(q, k, v, m)


class Block(NamedTuple):
    """A blockwise algorithm: ``reads(tables, c0, c1)``, the rows ``(start, stop)`` of q, k, v, a, b that
    block ``c0:c1`` reads, and ``run(q, k, v, a, b, tables, c0, c1)``, its part of the output (rows from q's start)
    from those rows alone."""
    reads: Callable
    run: Callable


#: ``direct``: row blocks; ``tiled_mixing``: column tiles.
DIRECT, TILED = Block(_direct_reads, _direct), Block(_tile_reads, _tile)


def tile_einsum(q: Tensor, k: Tensor, v: Tensor, m: Tensor) -> Tensor:
    """One tile's ``((Q K^T) * M) V`` by einsums: ``q [B, R, H, d_k]`` (rows ``c0:``), ``k [B, C, H, d_k]``,
    ``v [B, C, H, d_v]`` (rows ``c0:c0+C``), ``m [B, R, H, C]``."""
    s = torch.einsum("bthd,bjhd->bthj", q, k)
    return torch.einsum("bthj,bjhv->bthv", s * m, v)


def tile_combine(q: Tensor, k: Tensor, v: Tensor, m: Tensor) -> Tensor:
    """``tile_einsum``'s product by ``tile_product``'s Triton kernels on CUDA where triton is installed, else by
    ``tile_einsum``."""
    if q.is_cuda:
        try:
            from .tile_product import tile_product
        except ImportError:             # triton is optional (the gpu extra)
            return tile_einsum(q, k, v, m)
        return tile_product(q, k, v, m)
    return tile_einsum(q, k, v, m)


class Blockwise(torch.autograd.Function):
    """``o = sum over blocks [c0, c0 + C)`` of ``block.run`` on the rows ``block.reads`` gives, each part added at
    q's rows; the backward recomputes each block from those rows (nothing T x T is kept) and adds its gradients into
    the same rows (no full-size gradient a block)."""

    @staticmethod
    def forward(ctx, block, q, k, v, a, b, tables, C):
        ctx.save_for_backward(q, k, v, a, b)
        ctx.block, ctx.tables, ctx.C = block, tables, C
        T = q.shape[1]
        o = q.new_zeros(q.shape[:3] + v.shape[3:])
        for c0 in range(0, T, C):
            spans = block.reads(tables, c0, min(T, c0 + C))
            part = block.run(*(x[:, s0:s1] for x, (s0, s1) in zip((q, k, v, a, b), spans)), tables, c0,
                             min(T, c0 + C))
            o[:, spans[0][0]:spans[0][0] + part.shape[1]] += part
        return o

    @staticmethod
    @no_second_derivative("glr_readout's blockwise path")
    def backward(ctx, grad):
        inputs = ctx.saved_tensors
        T = inputs[0].shape[1]
        needed = [i for i in range(5) if ctx.needs_input_grad[i + 1]]
        grads = [torch.zeros_like(x) if i in needed else None for i, x in enumerate(inputs)]
        for c0 in range(0, T, ctx.C):
            spans = ctx.block.reads(ctx.tables, c0, min(T, c0 + ctx.C))
            with torch.enable_grad():
                leaves = [x[:, s0:s1].detach().requires_grad_(i in needed)
                          for i, (x, (s0, s1)) in enumerate(zip(inputs, spans))]
                o = ctx.block.run(*leaves, ctx.tables, c0, min(T, c0 + ctx.C))
                r0 = spans[0][0]
                part = torch.autograd.grad(o, [leaves[i] for i in needed], grad[:, r0:r0 + o.shape[1]],
                                           allow_unused=True)
            for i, g in zip(needed, part):
                if g is not None:
                    grads[i][:, spans[i][0]:spans[i][1]] += g
        return (None, *grads, None, None)
