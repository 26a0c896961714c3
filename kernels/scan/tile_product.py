"""One tile's product of tiled mixing, ``P = ((Q K^T) * M) V``, without the ``[rows, C]`` scores in memory.

A tile (``readout_blocks.TILED``) holds M's columns ``c0:c0+C`` over the rows ``c0:`` (M is lower triangular):
``m [B, R, H, C]`` with ``R = T - c0``, row r and column j standing for ``t = c0 + r`` and ``s = c0 + j``, so that
``m[r, j] = 0`` where ``j > r``. With ``q [B, R, H, d_k]`` (rows ``c0:``), ``k [B, C, H, d_k]``, ``v [B, C, H, d_v]``
(rows ``c0:c0+C``):

    part[r] = sum_{j <= r} (q_r . k_j) m[r, j] v_j                           part [B, R, H, d_v]

and with ``g = d part``, ``S = Q K^T``, ``dP = g V^T``:

    dm = dP * S,    dq = (dP * m) K,    dk = (dP * m)^T Q,    dv = (S * m)^T g.

``tile_product`` runs this by Triton kernels on CUDA for float32 / bfloat16 / float16 (flash-attention style: one
program per (row block, batch x head) for part, dq and dm, one per (column block, batch x head) for dk and dv, each
skipping the blocks above the diagonal and forming S and dP block by block in registers; launched directly after
their first launch, ``triton_launch``), else by torch einsums
(``readout_blocks.tile_einsum``, the reference). Blocks above the diagonal get ``dm = 0``; within the diagonal
blocks dm holds ``dP * S`` above the diagonal too, as the einsums' does: M is zero there whatever a and b are, so
the scan's backward multiplies those entries by zeros.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources

from glrtheory.errors import GLRError

from ..second_derivative import no_second_derivative
from .readout_blocks import tile_einsum
from .readout_triton import _autograd
from .readout_triton_kernels import _dot
from .triton import MAX_GRID_Y, _interpreting, _output, _precision, _settings
from .triton_launch import launcher

Tensor = torch.Tensor

#: dtypes the kernels take (q, k, v and m in one of them).
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
#: Rows and columns of a block: GPU, and the interpreter's (smaller, for the CPU's tests).
BLOCK, INTERPRETER_BLOCK = 64, 16
#: Widest head (d_k, d_v) the kernels take, whole in one block: 128 ran on an H200 (gpu_calls/call164, call165);
#: wider heads were not tried there (registers and shared memory grow with the head), so they take the einsums.
MAX_HEAD = 128
#: Warps of the forward's and of the backward's programs (the backward holds two [block, d] accumulators).
WARPS, BACKWARD_WARPS = 4, 8
#: Signatures ``(dtype, d_k, d_v)`` whose launches the device refused (``tile_product``); their tiles take einsums.
REFUSED: set = set()


@triton.jit
def _block(ptr, rows, n_rows, cols, n_cols, sb, st, sh, b, h):
    """``x[b, rows, h, cols]`` of a ``[B, rows, H, cols]`` tensor with strides (sb, st, sh, 1); zeros outside."""
    offs = b.to(tl.int64) * sb + h.to(tl.int64) * sh + rows[:, None].to(tl.int64) * st + cols[None, :]
    return tl.load(ptr + offs, mask=(rows < n_rows)[:, None] & (cols < n_cols)[None, :], other=0.0)


@launcher
@triton.jit
def _forward(q, k, v, m, out, R, C, H, dk, dv, qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2, ms0, ms1, ms2,
             BM: tl.constexpr, BN: tl.constexpr, DK: tl.constexpr, DV: tl.constexpr, PREC: tl.constexpr,
             UPCAST: tl.constexpr):
    """part for rows ``pid(0) BM + [0, BM)`` of batch x head ``pid(1)`` (``out [B, R, H, d_v]`` contiguous)."""
    r0, n = tl.program_id(0) * BM, tl.program_id(1)
    b, h = n // H, n % H
    rows, kc, vc = r0 + tl.arange(0, BM), tl.arange(0, DK), tl.arange(0, DV)
    qb = _block(q, rows, R, kc, dk, qs0, qs1, qs2, b, h)
    acc = tl.zeros((BM, DV), tl.float32)
    for j0 in range(0, C, BN):
        if j0 < r0 + BM:                                          # columns j <= r only
            cols = j0 + tl.arange(0, BN)
            s = _dot(qb, tl.trans(_block(k, cols, C, kc, dk, ks0, ks1, ks2, b, h)), PREC, UPCAST)
            mb = _block(m, rows, R, cols, C, ms0, ms1, ms2, b, h).to(tl.float32)
            vb = _block(v, cols, C, vc, dv, vs0, vs1, vs2, b, h)
            acc += _dot((s * mb).to(vb.dtype), vb, PREC, UPCAST)
    offs = (b.to(tl.int64) * R * H + rows[:, None].to(tl.int64) * H + h) * dv + vc[None, :]
    tl.store(out + offs, acc.to(out.dtype.element_ty), mask=(rows < R)[:, None] & (vc < dv)[None, :])


@launcher
@triton.jit
def _backward_rows(q, k, v, m, g, dq, dm, R, C, H, dk, dv, qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2,
                   ms0, ms1, ms2, gs0, gs1, gs2, BM: tl.constexpr, BN: tl.constexpr, DK: tl.constexpr,
                   DV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """dq and dm for rows ``pid(0) BM + [0, BM)`` of batch x head ``pid(1)`` (dq ``[B, R, H, d_k]`` and dm
    ``[B, R, H, C]`` contiguous); dm is 0 in the blocks above the diagonal."""
    r0, n = tl.program_id(0) * BM, tl.program_id(1)
    b, h = n // H, n % H
    rows, kc, vc = r0 + tl.arange(0, BM), tl.arange(0, DK), tl.arange(0, DV)
    qb = _block(q, rows, R, kc, dk, qs0, qs1, qs2, b, h)
    gb = _block(g, rows, R, vc, dv, gs0, gs1, gs2, b, h)
    acc = tl.zeros((BM, DK), tl.float32)
    row_ok = (rows < R)[:, None]
    dm_rows = dm + (b.to(tl.int64) * R * H + rows[:, None].to(tl.int64) * H + h) * C
    for j0 in range(0, C, BN):
        cols = j0 + tl.arange(0, BN)
        if j0 < r0 + BM:
            kb = _block(k, cols, C, kc, dk, ks0, ks1, ks2, b, h)
            s = _dot(qb, tl.trans(kb), PREC, UPCAST)
            dp = _dot(gb, tl.trans(_block(v, cols, C, vc, dv, vs0, vs1, vs2, b, h)), PREC, UPCAST)
            mb = _block(m, rows, R, cols, C, ms0, ms1, ms2, b, h).to(tl.float32)
            tl.store(dm_rows + cols[None, :], (dp * s).to(dm.dtype.element_ty), mask=row_ok & (cols < C)[None, :])
            acc += _dot((dp * mb).to(kb.dtype), kb, PREC, UPCAST)
        else:
            tl.store(dm_rows + cols[None, :], tl.zeros((BM, BN), dm.dtype.element_ty),
                     mask=row_ok & (cols < C)[None, :])
    offs = (b.to(tl.int64) * R * H + rows[:, None].to(tl.int64) * H + h) * dk + kc[None, :]
    tl.store(dq + offs, acc.to(dq.dtype.element_ty), mask=row_ok & (kc < dk)[None, :])


@launcher
@triton.jit
def _backward_columns(q, k, v, m, g, dk_ptr, dv_ptr, R, C, H, dk, dv, qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1,
                      vs2, ms0, ms1, ms2, gs0, gs1, gs2, BM: tl.constexpr, BN: tl.constexpr, DK: tl.constexpr,
                      DV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """dk and dv for columns ``pid(0) BN + [0, BN)`` of batch x head ``pid(1)`` (``[B, C, H, d]`` contiguous)."""
    j0, n = tl.program_id(0) * BN, tl.program_id(1)
    b, h = n // H, n % H
    cols, kc, vc = j0 + tl.arange(0, BN), tl.arange(0, DK), tl.arange(0, DV)
    kb = _block(k, cols, C, kc, dk, ks0, ks1, ks2, b, h)
    vb = _block(v, cols, C, vc, dv, vs0, vs1, vs2, b, h)
    dk_acc, dv_acc = tl.zeros((BN, DK), tl.float32), tl.zeros((BN, DV), tl.float32)
    for r0 in range((j0 // BM) * BM, R, BM):                      # rows r >= j only
        rows = r0 + tl.arange(0, BM)
        qb = _block(q, rows, R, kc, dk, qs0, qs1, qs2, b, h)
        gb = _block(g, rows, R, vc, dv, gs0, gs1, gs2, b, h)
        mt = tl.trans(_block(m, rows, R, cols, C, ms0, ms1, ms2, b, h).to(tl.float32))       # [BN, BM]
        st = _dot(kb, tl.trans(qb), PREC, UPCAST)                  # S^T
        dpt = _dot(vb, tl.trans(gb), PREC, UPCAST)                 # dP^T
        dk_acc += _dot((dpt * mt).to(qb.dtype), qb, PREC, UPCAST)
        dv_acc += _dot((st * mt).to(gb.dtype), gb, PREC, UPCAST)
    col_ok = (cols < C)[:, None]
    base = (b.to(tl.int64) * C * H + cols[:, None].to(tl.int64) * H + h)
    tl.store(dk_ptr + base * dk + kc[None, :], dk_acc.to(dk_ptr.dtype.element_ty), mask=col_ok & (kc < dk)[None, :])
    tl.store(dv_ptr + base * dv + vc[None, :], dv_acc.to(dv_ptr.dtype.element_ty), mask=col_ok & (vc < dv)[None, :])


def _shape(x: Tensor) -> tuple:
    """x's strides (batch, row, head): the kernels need the last dimension contiguous."""
    return x.stride(0), x.stride(1), x.stride(2)


def _launch(q: Tensor, k: Tensor, v: Tensor, m: Tensor) -> dict:
    """The kernels' shared arguments and settings."""
    B, R, H, dk = q.shape
    C, dv = k.shape[1], v.shape[-1]
    _settings()                                         # under the interpreter: its patches (triton_interpreter)
    block = INTERPRETER_BLOCK if _interpreting() else BLOCK
    consts = dict(BM=block, BN=block, DK=max(16, triton.next_power_of_2(dk)), DV=max(16, triton.next_power_of_2(dv)),
                  PREC=_precision(q.dtype), UPCAST=_interpreting(), num_warps=WARPS)
    return dict(sizes=(B, R, H, C, dk, dv), strides=(*_shape(q), *_shape(k), *_shape(v), *_shape(m)), consts=consts)


class _TileProduct(torch.autograd.Function):
    """``part = ((Q K^T) * M) V`` and its gradients by the kernels (module docstring)."""

    @staticmethod
    def forward(ctx, q, k, v, m, forced):
        ctx.forced = forced
        q, k, v, m = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v, m))
        run = _launch(q, k, v, m)
        B, R, H, C, dk, dv = run["sizes"]
        out = _output(v, B, R, H, dv)
        _forward[(triton.cdiv(R, run["consts"]["BM"]), B * H)](
            q, k, v, m, out, R, C, H, dk, dv, *run["strides"], **run["consts"])
        ctx.save_for_backward(q, k, v, m)
        ctx.run = run
        return out

    @staticmethod
    @no_second_derivative("tile_product's kernels")
    def backward(ctx, g):
        q, k, v, m = ctx.saved_tensors
        g = g if g.stride(-1) == 1 else g.contiguous()
        run = ctx.run
        B, R, H, C, dk, dv = run["sizes"]
        consts = dict(run["consts"], num_warps=BACKWARD_WARPS)
        args = (R, C, H, dk, dv, *run["strides"], *_shape(g))
        dq, dm = _output(q, B, R, H, dk), _output(m, B, R, H, C)
        dk_, dv_ = _output(k, B, C, H, dk), _output(v, B, C, H, dv)
        try:
            _backward_rows[(triton.cdiv(R, consts["BM"]), B * H)](q, k, v, m, g, dq, dm, *args, **consts)
            _backward_columns[(triton.cdiv(C, consts["BN"]), B * H)](q, k, v, m, g, dk_, dv_, *args, **consts)
        except OutOfResources:                  # refused before it ran: the einsums' gradients, from now on too
            if ctx.forced:
                raise
            REFUSED.add(_signature(q, v))
            return (*_autograd(tile_einsum, g, (q, k, v, m), (True,) * 4), None)
        return dq, dk_, dv_, dm, None


def kernels_take(q: Tensor, k: Tensor, v: Tensor, m: Tensor) -> bool:
    """Whether the kernels take these inputs: one dtype of ``DTYPES``, heads of at most ``MAX_HEAD`` and at most
    ``MAX_GRID_Y`` batch x heads (the grids' second axis)."""
    same = len({x.dtype for x in (q, k, v, m)}) == 1 and q.dtype in DTYPES
    return same and max(q.shape[-1], v.shape[-1]) <= MAX_HEAD and q.shape[0] * q.shape[2] <= MAX_GRID_Y


def _signature(q: Tensor, v: Tensor) -> tuple:
    """What decides the kernels' resources: the dtype and the head widths."""
    return q.dtype, q.shape[-1], v.shape[-1]


def _on_device(q: Tensor) -> bool:
    """Whether q lies where the kernels run by default (CUDA)."""
    return q.is_cuda


def tile_product(q: Tensor, k: Tensor, v: Tensor, m: Tensor, kernels: bool | None = None) -> Tensor:
    """``((Q K^T) * M) V`` of one tile (module docstring): by the kernels (``kernels=True``; None: on CUDA where they
    take the inputs, ``kernels_take``, and the device has not refused them), else by einsums. A launch the device
    refuses (``OutOfResources``: more registers or shared memory than it has) raises where the kernels were asked
    for; by default the tile takes the einsums, and so do later tiles of that dtype and head (``REFUSED``)."""
    if kernels is None:
        chosen = _on_device(q) and kernels_take(q, k, v, m) and _signature(q, v) not in REFUSED
        if not chosen:
            return tile_einsum(q, k, v, m)
        try:
            return _TileProduct.apply(q, k, v, m, False)
        except OutOfResources:
            REFUSED.add(_signature(q, v))
            return tile_einsum(q, k, v, m)
    if kernels and not kernels_take(q, k, v, m):
        raise GLRError(f"tile_product's kernels take one dtype of {[str(d) for d in DTYPES]}, heads of at most "
                       f"{MAX_HEAD} and at most {MAX_GRID_Y} batch x heads, got q, k, v, m in "
                       f"{[str(x.dtype) for x in (q, k, v, m)]}, d_k = {q.shape[-1]}, d_v = {v.shape[-1]}, "
                       f"{q.shape[0] * q.shape[2]} batch x heads")
    return _TileProduct.apply(q, k, v, m, True) if kernels else tile_einsum(q, k, v, m)
