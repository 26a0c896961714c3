"""``glr_scan``: the differentiable op ``H = (I - B)^{-1} A U`` over index tables, with backends.

    h_t = sum_j a[t, j] u[a_idx[t, j]] + sum_j b[t, j] h[b_idx[t, j]]         (docs/architecture.md)

Layout ``[batch, T, heads, D]`` as in fla: ``u[B, T, H, D]``, coefficients ``a[B, T, H, wa]``,
``b[B, T, H, wb]`` aligned with the tables' slots. The op is a ``torch.library`` custom op
(``torch.ops.glrtheory.glr_scan``, backward ``glr_scan_backward``; eager calls skip the dispatcher where nothing
watches it, ``eager``) with FLOP formulas registered in
``torch.utils.flop_counter``: a state-sized multiply-add costs 2D flops, so the forward costs
``2 * B * H * D * (nnz_a + nnz_b)``, the backward twice that.

Backends. ``BACKENDS`` maps a name to a ``Backend``: the module of this package that runs it and the
device types it runs on; a new backend is one module plus one entry. The module defines ``DTYPES``
(the dtypes of u, a, b it accepts) and either

    forward(u, a, b, plan, chunk) -> h                           # [B, T, H, D], u's dtype
    backward(grad, u, a, b, h, plan, chunk) -> (grad_u, grad_a, grad_b)

run inside the custom op above, with contiguous inputs of one dtype and device (coefficients already
broadcast to ``[B, T, H, w]``) and ``plan`` the ``plan.Plan`` of device tensors; or its own
differentiable ``scan(u, a, b, tables, *, chunk)`` (named by ``Backend.scan``, e.g. the Triton op,
which registers its own FLOP formula). ``backend=None`` takes the first of ``AUTO`` that is installed
and runs the device and dtype: Triton on CUDA for float32 / bfloat16 / float16, chunk otherwise.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple

import torch
from torch.utils.flop_counter import register_flop_formula

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError
from glrtheory.patterns.tables import IndexTables

from ..second_derivative import reverse_mode_only
from .current_device import on_input_device
from .eager import eager
from .plan import Plan, scan_plan

class Backend(NamedTuple):
    """A registry entry (module docstring): module of this package, device types, own scan or None."""

    module: str
    devices: tuple
    scan: str | None = None


#: Backend name -> entry.
BACKENDS = {
    "naive": Backend("naive", ("cpu", "cuda")),
    "chunk": Backend("chunk", ("cpu", "cuda")),
    "triton": Backend("triton", ("cuda",), scan="glr_scan_triton"),
}
#: The order ``backend=None`` tries them in.
AUTO = ("triton", "chunk")
#: Default chunk length C of the chunked substitution, by device type (the CUDA value measured best of
#: 64 / 256 / 1024 on an H200 in benchmarks/results/gpu.json).
DEFAULT_CHUNK = {"cpu": 64, "cuda": 256}

Tensor = torch.Tensor


def backend_module(name: str):
    """The module of a registered backend, or None when it is not installed (e.g. no Triton)."""
    if name not in BACKENDS:
        return None
    try:
        return importlib.import_module(f"{__package__}.{BACKENDS[name].module}")
    except ImportError:
        return None


def choose_backend(backend: str | None, device: torch.device, dtype: torch.dtype) -> str:
    """The backend that runs ``dtype`` on ``device``: the one asked for (checked), or the first of AUTO."""
    names = AUTO if backend is None else (backend,)
    if backend is not None and (not isinstance(backend, str) or backend not in BACKENDS):
        raise GLRError(f"backend must be one of {sorted(BACKENDS)} or None, got {backend!r}")
    if backend is not None and device.type not in BACKENDS[backend].devices:
        raise GLRError(f"backend {backend!r} runs on {' and '.join(BACKENDS[backend].devices)} tensors, not on "
                       f"{device.type}")
    names = [n for n in names if device.type in BACKENDS[n].devices]     # before importing any module
    for name in names:
        mod = backend_module(name)
        if mod is not None and dtype in mod.DTYPES:
            return name
    runs = {n: [str(d).replace("torch.", "") for d in m.DTYPES] for n in names
            if (m := backend_module(n)) is not None}
    raise GLRError(f"no glr_scan backend runs {str(dtype).replace('torch.', '')} on {device.type} "
                   f"(backend={backend!r}; {device.type} runs {runs or 'none'})")


def _scan_function(u: Tensor, a: Tensor, b: Tensor, plan: list[Tensor], chunk: int, backend: str) -> Tensor:
    return backend_module(backend).forward(u, a, b, Plan(*plan), chunk)


_scan = torch.library.custom_op("glrtheory::glr_scan", _scan_function, mutates_args=())


@_scan.register_fake
def _(u, a, b, plan, chunk, backend):
    return torch.empty_like(u)


def _scan_backward_function(grad: Tensor, u: Tensor, a: Tensor, b: Tensor, h: Tensor, plan: list[Tensor], chunk: int,
                            backend: str) -> tuple[Tensor, Tensor, Tensor]:
    gu, ga, gb = backend_module(backend).backward(grad, u, a, b, h, Plan(*plan), chunk)
    return gu.contiguous(), ga.contiguous(), gb.contiguous()


_scan_backward = torch.library.custom_op("glrtheory::glr_scan_backward", _scan_backward_function, mutates_args=())


@_scan_backward.register_fake
def _(grad, u, a, b, h, plan, chunk, backend):
    return torch.empty_like(u), torch.empty_like(a), torch.empty_like(b)


def _setup_context(ctx, inputs, output):
    u, a, b, plan, chunk, backend = inputs
    ctx.save_for_backward(u, a, b, output, *plan)
    ctx.chunk, ctx.backend = chunk, backend


def _backward(ctx, grad):
    u, a, b, h, *plan = ctx.saved_tensors
    gu, ga, gb = scan_backward_op(grad.contiguous(), u, a, b, h, plan, ctx.chunk, ctx.backend)
    return gu, ga, gb, [None] * len(plan), None, None


scan_op = eager(_scan, _scan_function, _setup_context, _backward)
scan_backward_op = eager(_scan_backward, _scan_backward_function)


def _nnz(plan) -> int:
    return Plan(*plan).a_src.numel() + Plan(*plan).b_src.numel()


@register_flop_formula(torch.ops.glrtheory.glr_scan, get_raw=True)
def _scan_flops(u, a, b, plan, *rest, out_val=None, **kwargs) -> int:
    """``2 * B * H * D * (nnz_a + nnz_b)``."""
    B, _, H, D = u.shape
    return 2 * B * H * D * _nnz(plan)


@register_flop_formula(torch.ops.glrtheory.glr_scan_backward, get_raw=True)
def _scan_backward_flops(grad, u, a, b, h, plan, *rest, out_val=None, **kwargs) -> int:
    """``4 * B * H * D * (nnz_a + nnz_b)``: ``(I-B)^{-T}`` and ``dL/db`` over B, ``A^T`` and ``dL/da`` over A."""
    B, _, H, D = u.shape
    return 4 * B * H * D * _nnz(plan)


def flops(tables, batch: int, d: int) -> int:
    """The forward FLOP count ``2 * batch * d * (nnz_a + nnz_b)`` of ``glr_scan`` on these tables
    (``batch`` counts batch x heads)."""
    t = IndexTables.coerce(tables)
    return 2 * batch * d * (t.csr("a").src.size + t.csr("b").src.size)


def _check(x, name: str, like: Tensor | None = None) -> Tensor:
    if not isinstance(x, torch.Tensor):
        raise GLRError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if like is not None and x.dtype != like.dtype:
        raise GLRError(f"{name} has dtype {x.dtype} but u has {like.dtype}; pass one dtype for u, a and b")
    if like is not None and x.device != like.device:
        raise GLRError(f"{name} is on {x.device} but u is on {like.device}; put u, a and b on one device")
    return x


@on_input_device
def glr_scan(u: Tensor, a: Tensor, b: Tensor, tables, *, chunk: int | None = None,
             backend: str | None = None) -> Tensor:
    """States ``H = (I - B)^{-1} A U``, differentiable in u, a and b.

    Parameters
    ----------
    u : Tensor ``[B, T, H, D]``
        Inputs (values, or flattened matrix states).
    a, b : Tensor ``[B, T, H, wa]``, ``[B, T, H, wb]``
        Coefficients aligned with the tables' slots; a size-1 batch or head dimension broadcasts.
        Coefficients in padded slots are ignored.
    tables : IndexTables or (a_idx, b_idx)
        ``Pattern.tables(T)``; a plain pair is validated on every call, IndexTables once.
    chunk : int, optional
        Block length C of the chunked substitution (1: token by token; default ``DEFAULT_CHUNK``).
    backend : str, optional
        One of ``BACKENDS``; None picks the first of ``AUTO`` that runs the device and dtype.

    Returns
    -------
    Tensor ``[B, T, H, D]`` in u's dtype.

    Raises
    ------
    GLRError
        An argument of the wrong type, shape, dtype or device (named), bad tables, no backend.

    Examples
    --------
    A first-order recurrence ``h_t = u_t + 0.5 h_{t-1}`` (``ssm``: ``A(t) = {t}``, ``B(t) = {t - 1}``):

    >>> import torch
    >>> from glrtheory import Pattern
    >>> tables = Pattern.from_spec("ssm").tables(4)
    >>> u, a, b = torch.ones(1, 4, 1, 1), torch.ones(1, 4, 1, 1), torch.full((1, 4, 1, 1), 0.5)
    >>> glr_scan(u, a, b, tables).flatten().tolist()
    [1.0, 1.5, 1.75, 1.875]
    """
    reverse_mode_only("glr_scan", (u, a, b))
    u = _check(u, "u")
    a, b = _check(a, "a", u), _check(b, "b", u)
    tables = IndexTables.coerce(tables)
    T, wa, wb = tables.n, tables.a_idx.shape[1], tables.b_idx.shape[1]
    if T == 0:
        raise GLRError("the tables are for T=0; glr_scan needs T >= 1")
    if u.ndim != 4 or u.shape[1] != T or 0 in u.shape:
        raise GLRError(f"u must have shape [batch, T={T}, heads, D] (the tables are for T={T}; D, batch, "
                       f"heads >= 1), got {tuple(u.shape)}")
    B, _, H, D = u.shape
    for x, w, name in ((a, wa, "a"), (b, wb, "b")):
        fits = x.ndim == 4 and x.shape[1] == T and x.shape[3] == w
        if not fits or x.shape[0] not in (1, B) or x.shape[2] not in (1, H):
            raise GLRError(f"{name} must have shape [batch={B}, T={T}, heads={H}, {name}_idx width={w}] (batch "
                           f"and heads may be 1) to match u and its index table, got {tuple(x.shape)}")
    name = choose_backend(backend, u.device, u.dtype)
    if chunk is not None:
        chunk = check_integer(chunk, "chunk", 1)
    a, b = (x.expand(B, T, H, x.shape[3]).contiguous() for x in (a, b))
    own = BACKENDS[name].scan
    if own is not None:
        kw = {} if chunk is None else {"chunk": chunk}
        return getattr(backend_module(name), own)(u.contiguous(), a, b, tables, **kw)
    if chunk is None:
        chunk = DEFAULT_CHUNK.get(u.device.type, DEFAULT_CHUNK["cpu"])
    plan = scan_plan(tables, u.device)
    return scan_op(u.contiguous(), a, b, list(plan), chunk, name)
