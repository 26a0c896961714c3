"""Triton backend of the scan: ``H = (I - B)^{-1} A U`` on the GPU, differentiable (docs/architecture.md).

    h_t = sum_j a[t, j] u[a_idx[t, j]] + sum_j b[t, j] h[b_idx[t, j]]

Forward: chunks of C positions; ``T_k = (I - B_kk)^{-1}`` for all chunks at once (blocked substitution),
then one program per (batch x head, slice of d) walks the chunks in order, ``h_k = T_k (x_k + B_k,past
h_past)`` with ``x = A U``, gathering finished chunks' states through the tables (per lag where a table is
a lag table: ssm, windows, power2, quadratic, lag sets). Backward, with ``G = dL/dH``: ``Z = (I - B)^{-T} G``
(chunks in reverse with ``T_k^T``, gathering later chunks' z per lag or through the transposed B where its
rows are narrow, else each chunk pushing its z onto its B sources in earlier chunks by atomic adds),
``dL/dU = A^T Z`` (``a Z``, written by the walk, where A is diagonal),
``dL/da[t, j] = <z_t, u[a_idx[t, j]]>``,
``dL/db[t, j] = <z_t, h[b_idx[t, j]]>``.
One launch per stage, no host synchronization, float32 accumulation; inputs float32, bfloat16 or float16.

Layout ``[batch, n, heads, d]`` for u and h, ``[batch, n, heads, w]`` for a and b (fla style).
Runs on CUDA, or on CPU tensors under the Triton interpreter (``TRITON_INTERPRET=1`` set before triton
is imported), which the tests use. ``flops`` is registered for ``FlopCounterMode``:
``2 * batch * heads * d * (nnz_a + nnz_b)`` forward, twice that backward.
"""
from __future__ import annotations

import numbers
import os
from typing import NamedTuple

import torch
from torch.utils.flop_counter import register_flop_formula

from glrtheory.errors import GLRError

from . import triton_interpreter
from . import triton_kernels as K
from .eager import eager
from .triton_launch import ARG, Bound, bind
from .triton_tables import TritonTables, triton_tables

#: Floating dtypes the kernels read and write (they accumulate in float32).
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
#: Chunk lengths C the kernels take (multiples of the inverse's block BS = 16), and the default.
CHUNKS = (16, 32, 64, 128)
DEFAULT_CHUNK = 64
#: Largest element offset the kernels' int32 arithmetic allows.
MAX_ELEMENTS = 2**31 - 1
#: Most programs along a CUDA grid's second axis (the scan's and the readout's chunks, the tile product's batch x
#: heads).
MAX_GRID_Y = 65535

Tensor = torch.Tensor


#: Whether Triton interprets the kernels: ``TRITON_INTERPRET``, read once, at import (Triton itself reads it when
#: it decorates the kernels; read at every launch it took 19 lookups and 91 us per layer forward + backward under
#: cProfile on the H200's host, gpu_calls/call54).
INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _interpreting() -> bool:
    return INTERPRETING


def _precision(dtype: torch.dtype) -> str:
    """Matrix-product precision: float32 inputs keep float32 accuracy (3-pass tf32), others tf32."""
    return "tf32x3" if dtype == torch.float32 else "tf32"


def _walk_precision(dtype: torch.dtype, loads_lags: bool = False) -> str:
    """The walks' products ``T_k x``: bfloat16 factors for bfloat16 states where the setting ``walk_bf16`` says so
    (float32 accumulation; "bf16-upcast" under the interpreter), except in walks that load their lags
    (``loads_lags``: a lag table of more than ``static_lags`` lags, where they were slower: gpu_calls/call38,
    quadratic's forward + backward 19.83 ms against 16.48), else ``_precision``."""
    if dtype == torch.bfloat16 and _settings()["walk_bf16"] and not loads_lags:
        return "bf16-upcast" if _interpreting() else "bf16"
    return _precision(dtype)


#: GPU launch settings: d-slice width BD of a walking program, table columns JB and entry-list entries E
#: read per step, warps of the walking programs (measured on an H200 by ``benchmarks/gpu_tune.py``: 8 warps
#: walked 2-3x slower than 4), warps of ``coef_grad`` (8: chosen when ptxas -v, compiled unspecialized, showed
#: it spilling at 4; compiled offline specialized it does not spill at 4 either, but 8 is faster: power2's
#: ``coef_grad`` 0.461-0.462 ms at 8 against 0.490-0.491 at 4, gpu_calls/call152); the chunk inverses' products
#: (``inverse_precision`` for float32 coefficients, ``inverse_precision_16`` for bfloat16 and float16 ones: "ieee"
#: float32 on the FMA units, "tf32x3" three tf32 tensor-core passes, "tf32" one) and warps: tf32x3 at one warp,
#: the fastest float32-accurate of six (``gpu_tune.py --inverses``, gpu_calls/call20: power2 0.166 ms against 0.274
#: for ieee at 4 warps), one tf32 pass for 16-bit coefficients (call36: 0.139 ms).
#: ``lags``: read lag tables per lag (``triton_tables.lag_set``) rather than through their index tables, LB
#: lags a step; where B is read so, the walks take ``lag_BD`` and ``lag_warps`` instead of BD and warps: 32 and 8
#: with 8 lags a step, the fastest power2 forward + backward of five (gpu_calls/call26: 0.92 / 2.61 ms against
#: 0.99 / 3.90 through the index tables). ``static_lags``: the most lags a walk takes as compile-time constants
#: (one compile per lag set; 0: never), its loads then at fixed offsets (gpu_calls/call35, the forward walk
#: alone: power2 0.618 ms against 0.701 with the lags loaded, ssm 0.302 against 0.349). ``walk_bf16``: the walks'
#: ``T_k x`` in bfloat16 factors for bfloat16 states (float32 accumulation; else tf32): on since the lags are
#: compiled in (call36, forward / forward + backward: power2 0.698 / 2.213 ms against 0.817 / 2.409, ssm 0.457 /
#: 1.646 against 0.435 / 1.766; with the lags loaded, call30, power2 was not faster so).
GPU = dict(BD=16, JB=8, E=64, warps=4, grad_warps=8, inverse_precision="tf32x3", inverse_precision_16="tf32",
           inverse_warps=1, lags=True, LB=8, lag_BD=32, lag_warps=8, walk_bf16=True, static_lags=32)
#: Under the interpreter, whose cost is per operation rather than per element: wide steps.
INTERPRETER = dict(BD=64, JB=64, E=256, warps=4, grad_warps=4, inverse_precision="ieee", inverse_precision_16="ieee",
                   inverse_warps=4, lags=True, LB=64, lag_BD=64, lag_warps=4, walk_bf16=True, static_lags=32)


def _settings() -> dict:
    if _interpreting():
        triton_interpreter.apply()
        return INTERPRETER
    return GPU


def _columns(w: int, key: str = "JB") -> int:
    """Table columns (or lags, key "LB") read per step for a table of width w: the setting's JB (LB), at most
    w rounded up to a power of two, at least 2."""
    return max(2, min(_settings()[key], 1 << max(w - 1, 0).bit_length()))


def _walk(d: int, lagged: bool) -> tuple[int, int]:
    """``(BD, warps)`` of the walking programs for states of width d: the ``lag_`` settings where B is read
    per lag."""
    setting, key = _settings(), "lag_" if lagged else ""
    return max(16, min(setting[key + "BD"], 1 << (d - 1).bit_length())), setting[key + "warps"]


def _output(like: Tensor, *shape: int) -> Tensor:
    """A contiguous output buffer of like's dtype and device, shaped like it or ``shape``; NaN-filled under the
    interpreter, so unwritten elements show."""
    if shape:
        return like.new_full(shape, float("nan")) if _interpreting() else like.new_empty(shape)
    if _interpreting():
        return torch.full_like(like, float("nan"), memory_format=torch.contiguous_format)
    return torch.empty_like(like, memory_format=torch.contiguous_format)


def _arg(x: Tensor) -> Tensor:
    """x, or one element of its dtype when x is empty (a width-0 table): kernels never read it then."""
    return x if x.numel() else torch.zeros(1, dtype=x.dtype, device=x.device)


class _Coefficients(NamedTuple):
    """A table's coefficients as the kernels take them (``_by_lag``): ``c`` (``width`` columns), the lags
    (m of them) where they are read per lag (``lagged``), the columns or lags read per step, the lags as
    compile-time constants (``values``, else empty) and how many of them reach past the previous chunk (``far``:
    those of at least 2 C)."""

    c: Tensor
    width: int
    lags: Tensor
    m: int
    step: int
    lagged: bool
    values: tuple
    far: int

    @property
    def loads_lags(self) -> bool:
        """The walks read this table per lag, loading the lags (more than ``static_lags`` of them)."""
        return self.lagged and not self.values


def _by_lag(coef: Tensor, lags: Tensor, slot: Tensor, values: tuple, chunk: int) -> _Coefficients:
    """Where the kernels read a table per lag (a lag table, and the setting allows it), its coefficients by
    lag: lag i's at row t in column i, ``c[:, t, :, i] = coef[:, t, :, slot[t, i]]``
    (``triton_tables._lag_tensors``; coef itself where the slots are in place), and its lags ``values`` as
    constants where there are at most ``static_lags``; otherwise coef as it is."""
    Bt, n, H, w = coef.shape
    m = lags.numel() - 1
    if m < 0 or not _settings()["lags"]:
        return _Coefficients(_arg(coef), w, _arg(lags), 0, _columns(w), False, (), 0)
    if slot.numel():
        coef = coef.gather(-1, slot[None, :, None, :].expand(Bt, n, H, m))
    static = tuple(values) if m <= _settings()["static_lags"] else ()
    return _Coefficients(_arg(coef), coef.shape[-1], lags, m, _columns(m, "LB"), True, static,
                         sum(L >= 2 * chunk for L in values))


def table_coefficients(tab: TritonTables, side: str, coef: Tensor, chunk: int) -> _Coefficients:
    """Side "a" or "b" of the kernels' tables as the op reads it (``_by_lag``), with its coefficients ``coef``."""
    i = "ab".index(side)
    return _by_lag(coef, *tab.lags[2 * i:2 * i + 2], tab.lag_values[i], chunk)


def inverse_precision(dtype: torch.dtype) -> str:
    """The chunk inverses' products for results of ``dtype``: the setting ``inverse_precision`` for float32,
    ``inverse_precision_16`` for bfloat16 and float16 (one tf32 pass keeps float16's 11 significant bits, more than
    bfloat16's 8)."""
    return _settings()["inverse_precision" if dtype == torch.float32 else "inverse_precision_16"]


def chunk_inverse_launch(b: Tensor, b_idx: Tensor, n: int, chunk: int, shift: int = 0,
                         precision: str | None = None) -> tuple[tuple, Bound]:
    """``(shape, launch)``: the shape of ``chunk_inverses``' T and its launch for coefficients of b's shape and
    dtype, bound to all but ``launch(b, T)`` (``triton_launch.bind``; b as ``_arg`` gives it); products in
    ``precision``, by default ``inverse_precision(b.dtype)``."""
    Bt, _, H, wb = b.shape
    nc = -(-(n + shift) // chunk)
    return (Bt * H, nc, chunk, chunk), bind(K.chunk_inverse, (Bt * H, nc), ARG, _arg(b_idx), ARG, n, H, nc, wb,
                                            shift, C=chunk, BS=16, JB=_columns(wb),
                                            PREC=precision or inverse_precision(b.dtype),
                                            num_warps=_settings()["inverse_warps"])


def chunk_inverses(b: Tensor, b_idx: Tensor, n: int, chunk: int, shift: int = 0) -> Tensor:
    """``T[batch * heads, nc, C, C]`` (float32): ``T_k = (I - B_kk)^{-1}`` for every chunk k of rows
    ``[k C - shift, (k + 1) C - shift)``, ``nc = ceil((n + shift) / C)``; products in the setting's
    ``inverse_precision`` for float32 b, ``inverse_precision_16`` for bfloat16 and float16 b."""
    shape, launch = chunk_inverse_launch(b, b_idx, n, chunk, shift)
    T = torch.empty(shape, dtype=torch.float32, device=b.device)
    launch(_arg(b), T)
    return T


def _scan_function(u: Tensor, a: Tensor, b: Tensor, a_idx: Tensor, b_idx: Tensor, ext: Tensor, at_ptr: Tensor,
          at_row: Tensor, at_src: Tensor, at_col: Tensor, bt_idx: Tensor, bt_col: Tensor, a_lags: Tensor,
          a_slot: Tensor, b_lags: Tensor, b_slot: Tensor, chunk: int, a_diagonal: bool, a_values: list[int],
          b_values: list[int]) -> tuple[Tensor, Tensor]:
    """``(h, T)``: the states and the chunk inverses (kept for the backward pass)."""
    T = chunk_inverses(b, b_idx, u.shape[1], chunk)
    A, B = _by_lag(a, a_lags, a_slot, a_values, chunk), _by_lag(b, b_lags, b_slot, b_values, chunk)
    return forward_walk(u, A, B, a_idx, b_idx, ext, T, chunk), T


_scan = torch.library.custom_op("glrtheory::glr_scan_triton", _scan_function, mutates_args=())


def forward_walk(u: Tensor, A: _Coefficients, B: _Coefficients, a_idx: Tensor, b_idx: Tensor, ext: Tensor, T: Tensor,
                 chunk: int) -> Tensor:
    """The states h, walking the chunks with their inverses T (``chunk_inverses``)."""
    Bt, n, H, D = u.shape
    h = _output(u)
    BD, warps = _walk(D, B.lagged)
    K.forward_walk[(Bt * H, -(-D // BD))](u, A.c, B.c, a_idx, _arg(b_idx), ext, T, h, n, H, T.shape[1], D,
                                           A.width, B.width, A.lags, A.m, B.lags, B.m, C=chunk, BD=BD,
                                           PREC=_walk_precision(u.dtype, B.loads_lags),
                                           num_warps=warps, JA=A.step, JB=B.step,
                                           LAG_A=A.lagged, LAG_B=B.lagged, A_LAGS=A.values, B_LAGS=B.values,
                                           B_FAR=B.far)
    return h


@_scan.register_fake
def _(u, a, b, *rest):
    Bt, n, H, _ = u.shape
    chunk = rest[-4]
    return torch.empty_like(u), u.new_empty((Bt * H, -(-n // chunk), chunk, chunk), dtype=torch.float32)


def _scan_backward_function(grad: Tensor, u: Tensor, a: Tensor, b: Tensor, h: Tensor, T: Tensor, a_idx: Tensor,
                   b_idx: Tensor, ext: Tensor, at_ptr: Tensor, at_row: Tensor, at_src: Tensor, at_col: Tensor,
                   bt_idx: Tensor, bt_col: Tensor, a_lags: Tensor, a_slot: Tensor, b_lags: Tensor, b_slot: Tensor,
                   chunk: int, a_diagonal: bool, a_values: list[int],
                   b_values: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    Bt, n, H, D = u.shape
    wa, wb = a.shape[-1], b.shape[-1]
    nc = T.shape[1]
    A, B = _by_lag(a, a_lags, a_slot, a_values, chunk), _by_lag(b, b_lags, b_slot, b_values, chunk)
    (BD, warps), prec = _walk(D, B.lagged), _precision(u.dtype)
    grid, wt = (Bt * H, -(-D // BD)), bt_idx.shape[1]
    launch = dict(C=chunk, BD=BD, PREC=_walk_precision(u.dtype, B.loads_lags), num_warps=warps,
                  DU=a_diagonal)
    du = _output(u)                            # dU = a Z by the walk where A is diagonal, else A^T Z after it
    if wt or B.lagged:                         # gather through the narrow transposed table, or per lag
        z = torch.empty(u.shape, dtype=torch.float32, device=u.device)
        K.backward_pull[grid](grad, B.c, _arg(bt_idx), _arg(bt_col), T, z, n, H, nc, D, B.width, wt, B.lags, B.m,
                              a, wa, du, JB=B.step if B.lagged else _columns(wt), LAG_B=B.lagged, B_LAGS=B.values,
                              B_FAR=B.far, **launch)
    else:                                      # push through B (z accumulates from zero)
        z = torch.zeros(u.shape, dtype=torch.float32, device=u.device)
        K.backward_walk[grid](grad, _arg(b), _arg(b_idx), ext, T, z, n, H, nc, D, wb, a, wa, du, JB=_columns(wb),
                              **launch)
    if not a_diagonal:
        K.transpose_apply[(Bt * H, nc, -(-D // BD))](z, A.c, at_ptr, at_row, at_src, at_col, du, n, H, D, A.width,
                                                     A.lags, A.m, C=chunk, BD=BD, PREC=prec, E=_settings()["E"],
                                                     JA=A.step, LAG_A=A.lagged)
    da, db = _output(a), _output(b)
    for g, v, idx in ((da, u, a_idx), (db, h, b_idx)):
        if g.numel():
            K.coef_grad[(Bt * H, nc)](z, v, idx, g, n, H, D, g.shape[-1], C=chunk, BD=BD,
                                      JB=_columns(g.shape[-1]), num_warps=_settings()["grad_warps"])
    return du, da, db


_scan_backward = torch.library.custom_op("glrtheory::glr_scan_triton_backward", _scan_backward_function,
                                         mutates_args=())


@_scan_backward.register_fake
def _(grad, u, a, b, *rest):
    return torch.empty_like(u), torch.empty_like(a), torch.empty_like(b)


def _setup_context(ctx, inputs, output):
    u, a, b, *tables, chunk, a_diagonal, a_values, b_values = inputs
    h, T = output
    ctx.mark_non_differentiable(T)
    ctx.save_for_backward(u, a, b, h, T, *tables)
    ctx.constants = chunk, a_diagonal, a_values, b_values


def _backward_rule(ctx, grad, _grad_T):
    u, a, b, h, T, *tables = ctx.saved_tensors
    gu, ga, gb = scan_backward_op(grad.contiguous(), u, a, b, h, T, *tables, *ctx.constants)
    return (gu, ga, gb) + (None,) * (len(tables) + len(ctx.constants))


scan_op = eager(_scan, _scan_function, _setup_context, _backward_rule)
scan_backward_op = eager(_scan_backward, _scan_backward_function)


@register_flop_formula(torch.ops.glrtheory.glr_scan_triton, get_raw=True)
def _scan_flops(u, a, b, a_idx, b_idx, *rest, out_val=None, **kwargs) -> int:
    """``2 * batch * heads * d * (nnz_a + nnz_b)``."""
    Bt, _, H, D = u.shape
    return 2 * Bt * H * D * int((a_idx >= 0).sum() + (b_idx >= 0).sum())


@register_flop_formula(torch.ops.glrtheory.glr_scan_triton_backward, get_raw=True)
def _scan_backward_flops(grad, u, a, b, h, T, a_idx, b_idx, *rest, out_val=None, **kwargs) -> int:
    """Twice the forward: ``(I-B)^{-T}`` and ``dL/db`` over B, ``A^T`` and ``dL/da`` over A."""
    Bt, _, H, D = u.shape
    return 4 * Bt * H * D * int((a_idx >= 0).sum() + (b_idx >= 0).sum())


def _check(u, a, b, tables, chunk) -> TritonTables:
    for x, name in ((u, "u"), (a, "a"), (b, "b")):
        if not isinstance(x, torch.Tensor):
            raise GLRError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in DTYPES:
            raise GLRError(f"{name} has dtype {x.dtype}; the triton scan takes float32, bfloat16 or float16 "
                           "(float64 runs on the chunk backend)")
        if x.ndim != 4:
            raise GLRError(f"{name} must have shape [batch, n, heads, {'d' if name == 'u' else 'w'}], "
                           f"got {tuple(x.shape)}")
        if not x.is_contiguous():
            raise GLRError(f"{name} must be contiguous for the triton scan")
    if not (u.device == a.device == b.device):
        raise GLRError(f"u, a, b must be on one device, got {u.device}, {a.device}, {b.device}")
    if u.device.type not in ("cuda", "cpu") or (u.device.type == "cpu" and not _interpreting()):
        raise GLRError(f"the triton scan needs CUDA tensors (got {u.device}); "
                       "TRITON_INTERPRET=1 runs it on the CPU")
    if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk not in CHUNKS:
        raise GLRError(f"chunk must be one of {CHUNKS} for the triton scan (a C x C inverse lives in "
                       f"registers), got {chunk!r}")
    Bt, n, H, D = u.shape
    if min(Bt, n, H, D) == 0:
        raise GLRError(f"u must have non-empty shape [batch, n, heads, d], got {tuple(u.shape)}")
    if -(-n // chunk) > MAX_GRID_Y:
        wider = f"chunk=128 (n <= {MAX_GRID_Y * 128}) or " if chunk < 128 else ""
        raise GLRError(f"the triton scan launches a program a chunk along a grid axis of at most {MAX_GRID_Y}: n = {n} "
                       f"in chunks of {chunk} is {-(-n // chunk)}; take {wider}the chunk backend")
    tab = triton_tables(tables, n, chunk, u.device)
    wa, wb = tab.a_idx.shape[1], tab.b_idx.shape[1]
    for x, w, name in ((a, wa, "a"), (b, wb, "b")):
        if tuple(x.shape) != (Bt, n, H, w):
            raise GLRError(f"{name} must have shape [{Bt}, {n}, {H}, {w}] to match u and its index table, "
                           f"got {tuple(x.shape)}")
    nc = -(-n // chunk)
    widest = max(wa, wb, tab.bt_idx.shape[1])
    biggest = max(u.numel(), a.numel(), b.numel(), Bt * H * nc * chunk * chunk, n * widest)
    if biggest > MAX_ELEMENTS:
        raise GLRError(f"problem too large for the triton scan: {biggest} elements in one tensor "
                       f"(limit {MAX_ELEMENTS}, int32 offsets); split the batch or the heads")
    return tab


def glr_scan_triton(u: Tensor, a: Tensor, b: Tensor, tables, *, chunk: int | None = None) -> Tensor:
    """States ``H = (I - B)^{-1} A U`` by the Triton kernels, differentiable in u, a and b.

    Parameters
    ----------
    u : Tensor ``[batch, n, heads, d]``, float32, bfloat16 or float16, contiguous.
    a, b : Tensor ``[batch, n, heads, wa]`` and ``[batch, n, heads, wb]`` (any of those dtypes);
        coefficients in padded table slots are ignored (their gradient is 0).
    tables : ``(a_idx, b_idx) = Pattern.tables(n)``.
    chunk : C, the chunk length, one of ``CHUNKS`` (default ``DEFAULT_CHUNK``).

    Returns
    -------
    Tensor ``[batch, n, heads, d]`` in u's dtype (float32 accumulation).

    Raises
    ------
    GLRError
        Unsupported dtype, mixed devices, non-contiguous input, tables not matching the shapes, or a
        problem too large for int32 offsets.
    """
    chunk = DEFAULT_CHUNK if chunk is None else chunk
    tab = _check(u, a, b, tables, chunk)
    return scan_op(u, a, b, *tab.tensors, int(chunk), tab.a_diagonal, *map(list, tab.lag_values))[0]


__all__ = ["glr_scan_triton", "DTYPES", "DEFAULT_CHUNK"]
