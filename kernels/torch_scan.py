"""``glr_scan``: the differentiable op ``H = (I - B)^{-1} A U`` over index tables (CPU and CUDA).

    h_t = sum_j a[t, j] u[a_idx[t, j]] + sum_j b[t, j] h[b_idx[t, j]]         (DESIGN.md sections 1, 3)

Forward: ``X = A U`` by gathers, then the chunked forward substitution of ``torch_algorithms``.
Backward (a custom op of its own): with ``G = dL/dH``,

    Z = (I - B)^{-T} G            backward substitution over the transposed B (run forward in reversed time)
    dL/dU = A^T Z,   dL/da[t, j] = <z_t, u[a_idx[t, j]]>,   dL/db[t, j] = <z_t, h[b_idx[t, j]]>

Both are ``torch.library`` custom ops (``torch.ops.glrtheory.glr_scan`` and ``glr_scan_backward``) with
FLOP formulas registered in ``torch.utils.flop_counter``, so ``FlopCounterMode`` counts them: a state-sized
multiply-add costs 2d flops, so the forward costs ``2 * batch * d * (nnz_a + nnz_b)`` (DESIGN.md
section 2), read off the tables; where ``glrtheory.symbolic.costs.total_cost(p)`` is exact it equals that
form at n (tested); the backward costs twice the forward.
"""
from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import register_flop_formula

from glrtheory.errors import GLRError

from .torch_algorithms import apply, entry_dot, substitute
from .torch_plan import scan_plan

#: Default chunk length C of the chunked substitution, by device type (the CUDA value measured best of
#: 64 / 256 / 1024 on an H200 in benchmarks/results/gpu.json).
DEFAULT_CHUNK = {"cpu": 64, "cuda": 256}
#: Floating dtypes the op computes in.
DTYPES = (torch.float32, torch.float64)

Tensor = torch.Tensor


def _entry_coefficients(coef: Tensor, slot: Tensor) -> Tensor:
    """Per-entry coefficients ``coef.flat[slot]`` -> ``[N, nnz]`` (padded slots are never read)."""
    return coef.reshape(coef.shape[0], -1).index_select(1, slot)


@torch.library.custom_op("glrtheory::glr_scan", mutates_args=())
def _scan(u: Tensor, a: Tensor, b: Tensor, a_row: Tensor, a_src: Tensor, a_slot: Tensor, b_row: Tensor,
          b_src: Tensor, b_slot: Tensor, at_row: Tensor, at_src: Tensor, at_slot: Tensor, bt_row: Tensor,
          bt_src: Tensor, bt_slot: Tensor, chunk: int) -> Tensor:
    x = apply(_entry_coefficients(a, a_slot), a_row, a_src, u, torch.empty_like(u))
    return substitute(x, _entry_coefficients(b, b_slot), b_row, b_src, chunk, torch.empty_like(u))


@_scan.register_fake
def _(u, a, b, *tables_and_chunk):
    return torch.empty_like(u)


@torch.library.custom_op("glrtheory::glr_scan_backward", mutates_args=())
def _scan_backward(grad: Tensor, u: Tensor, a: Tensor, b: Tensor, h: Tensor, a_row: Tensor, a_src: Tensor,
                   a_slot: Tensor, b_row: Tensor, b_src: Tensor, b_slot: Tensor, at_row: Tensor,
                   at_src: Tensor, at_slot: Tensor, bt_row: Tensor, bt_src: Tensor, bt_slot: Tensor,
                   chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    # Z = (I - B)^{-T} G: forward substitution over the time-reversed B^T
    z = substitute(grad.flip(1), _entry_coefficients(b, bt_slot), bt_row, bt_src, chunk,
                   torch.empty_like(u)).flip(1)
    grad_u = apply(_entry_coefficients(a, at_slot), at_row, at_src, z, torch.empty_like(u))
    grads = []
    for coef, row, src, slot, v in ((a, a_row, a_src, a_slot, u), (b, b_row, b_src, b_slot, h)):
        g = torch.zeros((coef.shape[0], coef.shape[1] * coef.shape[2]), dtype=u.dtype, device=u.device)
        g[:, slot] = entry_dot(z, row, src, v)
        grads.append(g.view(coef.shape))
    return grad_u, grads[0], grads[1]


@_scan_backward.register_fake
def _(grad, u, a, b, *rest):
    return torch.empty_like(u), torch.empty_like(a), torch.empty_like(b)


def _setup_context(ctx, inputs, output):
    u, a, b, *tables, chunk = inputs
    ctx.save_for_backward(u, a, b, output, *tables)
    ctx.chunk = chunk


def _backward(ctx, grad):
    u, a, b, h, *tables = ctx.saved_tensors
    gu, ga, gb = torch.ops.glrtheory.glr_scan_backward(grad.contiguous(), u, a, b, h, *tables, ctx.chunk)
    return (gu, ga, gb) + (None,) * 13


_scan.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.glrtheory.glr_scan, get_raw=True)
def _scan_flops(u, a, b, a_row, a_src, a_slot, b_row, *rest, out_val=None, **kwargs) -> int:
    """``2 * batch * d * (nnz_a + nnz_b)``."""
    N, _, d = u.shape
    return 2 * N * d * (a_row.numel() + b_row.numel())


@register_flop_formula(torch.ops.glrtheory.glr_scan_backward, get_raw=True)
def _scan_backward_flops(grad, u, a, b, h, a_row, a_src, a_slot, b_row, *rest, out_val=None, **kwargs) -> int:
    """``4 * batch * d * (nnz_a + nnz_b)``: ``(I-B)^{-T}`` and ``dL/db`` over B, ``A^T`` and ``dL/da`` over A."""
    N, _, d = u.shape
    return 4 * N * d * (a_row.numel() + b_row.numel())


def flops(tables, batch: int, d: int) -> int:
    """The forward FLOP count ``2 * batch * d * (nnz_a + nnz_b)`` of ``glr_scan`` on these tables."""
    return 2 * batch * d * sum(int((torch.as_tensor(t) >= 0).sum()) for t in tables)


def _check_tensor(x, name: str) -> Tensor:
    if not isinstance(x, torch.Tensor):
        raise GLRError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in DTYPES:
        raise GLRError(f"{name} has dtype {x.dtype}; glr_scan computes in float32 or float64")
    return x


def glr_scan(u: Tensor, a: Tensor, b: Tensor, tables, *, chunk: int | None = None) -> Tensor:
    """States ``H = (I - B)^{-1} A U``, differentiable in u, a and b.

    ``u[..., n, d]``, ``a[..., n, wa]``, ``b[..., n, wb]`` (one dtype, float32 or float64, one device;
    batch dims broadcast), ``tables = (a_idx, b_idx) = Pattern.tables(n)``; coefficients in padded slots
    are ignored. ``chunk`` is the block length C of the chunked substitution (1: token by token;
    default ``DEFAULT_CHUNK`` by device type).
    Transposed tables for the backward pass are built once per table object and device.
    """
    u, a, b = (_check_tensor(x, name) for x, name in ((u, "u"), (a, "a"), (b, "b")))
    if not (u.dtype == a.dtype == b.dtype):
        raise GLRError(f"u, a, b must share one dtype, got {u.dtype}, {a.dtype}, {b.dtype}")
    if not (u.device == a.device == b.device):
        raise GLRError(f"u, a, b must be on one device, got {u.device}, {a.device}, {b.device}")
    if chunk is None:
        chunk = DEFAULT_CHUNK.get(u.device.type, DEFAULT_CHUNK["cpu"])
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise GLRError(f"chunk must be a positive integer, got {chunk!r}")
    if u.ndim < 2 or u.shape[-1] == 0 or u.shape[-2] == 0:
        raise GLRError(f"u must have shape [..., n, d] with n, d >= 1, got {tuple(u.shape)}")
    n, d = u.shape[-2:]
    plan = scan_plan(tables, n, u.device)
    for coef, shape, name in ((a, plan.a_shape, "a"), (b, plan.b_shape, "b")):
        if coef.ndim < 2 or tuple(coef.shape[-2:]) != shape:
            raise GLRError(f"{name} must have shape [..., {shape[0]}, {shape[1]}] to match its "
                           f"index table, got {tuple(coef.shape)}")
    try:
        batch = torch.broadcast_shapes(u.shape[:-2], a.shape[:-2], b.shape[:-2])
    except RuntimeError:
        raise GLRError(f"batch shapes of u {tuple(u.shape[:-2])}, a {tuple(a.shape[:-2])} and "
                       f"b {tuple(b.shape[:-2])} do not broadcast") from None
    if 0 in batch:
        raise GLRError(f"empty batch {tuple(batch)}")

    size = math.prod(batch)

    def flat(x: Tensor) -> Tensor:
        return x.expand(batch + x.shape[-2:]).reshape((size,) + x.shape[-2:]).contiguous()

    h = torch.ops.glrtheory.glr_scan(flat(u), flat(a), flat(b), *plan.tensors, chunk)
    return h.view(batch + (n, d))
