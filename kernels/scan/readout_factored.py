"""fenwick's readout with factored coefficients ``b[t, s] = f_t h_s`` (``GLRMixer``'s source scores without a lag
bias), its forward in Triton: one combined state a chunk, walked as ssm's (``proofs/fenwick_factored_walk.py``).

``H_t = a_t k_t v_t^T + f_t sum_{s in B(t)} h_s H_s`` over fenwick's ``B(t)``, ``o_t = q_t^T H_t``. With
``P_t = sum_{s in B(t+1)} h_s H_s``: ``H_t = a_t u_t + f_t P_{t-1}``, ``P_t = h_t H_t + P_{t & (t-1)}``, two lags.
In chunks of rows ``cC + 1 .. cC + C`` (``T``: the chunk inverses of those two lags, the scan's ``chunk_inverse`` with
``shift = C - 1``, so that chunk ``c + 1`` of T holds chunk c) every row reads one outside state ``Z_c = P_{cC}``:

* ``factored_walk``: ``Z_0 = h_0 a_0 u_0``, ``Z_{c+1} = L_c + g_c Z_c + Z_{clear(c+1)}`` with
  ``L_c = sum_s T[C-1, s] h_s a_s k_s v_s^T`` and ``g_c = T[C-1] . b_ext`` (``b_ext``: the rows' reads of Z_c:
  ``h f + 1`` at row 0, 1 at rows ``2^i - 1``); the states ``Z_{c-1}``, ``Z_c`` in registers, older ones read back
  (rounded to q's dtype) where 4 divides c + 1. Each state written once, in q's dtype.
* ``factored_output``: ``o = ((Q K^T) * M) V + (f * w) * (Q Z_c)``, ``M = diag(a) + diag(f) S T diag(h a)`` and
  ``w = S T b_ext + e_0`` (S: T shifted down a row).

Precision as the aligned readout's: T in float32, products in q's dtype with float32 sums (float32 q: three tf32
passes), the walk's running state in float32. Within 1e-5 of float64 for float32 inputs and 1e-2 for bfloat16.
The kernels have no backward: where a gradient is wanted, and for other inputs (float64, float16, no CUDA and no
interpreter), the readout is ``glr_readout`` with b expanded (``expanded``).

Speed (``benchmarks/gpu_factored.py``, gpu_calls/call206, H200, B2 T16384 H16 D128 bf16): 1.308 ms against 1.070 for
``glr_readout`` of the expanded b and 0.434 for fla's ``chunk_simple_gla``; the walk took 0.570 ms where ssm's
``boundary_walk`` takes 0.277. Slower than the generic readout, so nothing calls it by default: a lead kept with its
measurements (docs/gpu_readout.md).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import triton
import triton.language as tl

from glrtheory import Pattern
from glrtheory.errors import GLRError

from .readout import glr_readout
from .readout_triton import _block
from .triton import MAX_ELEMENTS, _interpreting, _output, _settings, chunk_inverse_launch, inverse_precision
from .triton_kernels import _factor, _product

Tensor = torch.Tensor

#: Input dtypes the kernels take.
DTYPES = (torch.float32, torch.bfloat16)
#: Launch settings: the walk's d_k x d_v tile and warps, the output's d_v block and warps (``GPU`` on CUDA).
GPU = dict(walk_k=32, walk_v=64, walk_warps=4, walk_stages=2, out_v=128, out_warps=4, out_stages=2)
INTERPRETER = dict(walk_k=16, walk_v=16, walk_warps=4, walk_stages=1, out_v=16, out_warps=4, out_stages=1)


def two_lag_tables(n: int) -> np.ndarray:
    """``[n, 2]``: the sources ``t - 1`` and, where it differs (t even), the Fenwick parent ``t & (t - 1)``; -1
    where there is none."""
    t = np.arange(n, dtype=np.int64)
    return np.stack([np.where(t >= 1, t - 1, -1), np.where((t >= 2) & (t % 2 == 0), t & (t - 1), -1)],
                    axis=1).astype(np.int32)


@functools.lru_cache(maxsize=16)
def _on_device(n: int, device: str) -> Tensor:
    """``two_lag_tables(n)`` on the device, built once per length and device."""
    return torch.as_tensor(two_lag_tables(n), device=device)


def two_lag_coefficients(f: Tensor, h: Tensor) -> Tensor:
    """``[B, T, H, 2]`` float32 for ``two_lag_tables``: ``h_t f_t`` on t - 1 (plus 1 where t is odd, whose parent is
    t - 1), 1 on the parent."""
    odd = (torch.arange(f.shape[1], device=f.device) % 2 == 1).float()[None, :, None]
    hf = (h * f).float()
    return torch.stack([hf + odd, torch.ones_like(hf)], dim=-1)


def expanded(f: Tensor, h: Tensor) -> Tensor:
    """fenwick's b ``[B, T, H, width]`` of ``Pattern('fenwick').tables(T)``: ``b[t, j] = f_t h_{B(t)_j}``."""
    idx = torch.tensor(Pattern.from_spec("fenwick").tables(f.shape[1]).b_idx, device=f.device, dtype=torch.long)
    gathered = h[:, idx.clamp(min=0)].permute(0, 1, 3, 2)           # [B, T, H, width]
    return torch.where(idx[None, :, None, :] >= 0, gathered * f[..., None], torch.zeros((), dtype=f.dtype,
                                                                                         device=f.device))


def _check(q, k, v, a, f, h) -> None:
    if q.dim() != 4 or k.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise GLRError(f"q, k must be [B, T, H, d_k] and v [B, T, H, d_v] alike, got {tuple(q.shape)}, "
                       f"{tuple(k.shape)}, {tuple(v.shape)}")
    for name, x in (("a", a), ("f", f), ("h", h)):
        if tuple(x.shape) != tuple(q.shape[:3]):
            raise GLRError(f"{name} must be [B, T, H] = {tuple(q.shape[:3])}, got {tuple(x.shape)}")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise GLRError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    devices = {x.device for x in (q, k, v, a, f, h)}
    if len(devices) > 1:
        raise GLRError(f"q, k, v, a, f, h must be on one device, got {sorted(map(str, devices))}")


def fenwick_factored_readout(q: Tensor, k: Tensor, v: Tensor, a: Tensor, f: Tensor, h: Tensor, *,
                             chunk: int = 64) -> Tensor:
    """``o_t = q_t^T H_t``, ``H_t = a_t k_t v_t^T + f_t sum_{s in B(t)} h_s H_s`` over fenwick's B (the kernels
    without gradients; ``glr_readout`` of the expanded b with them).

    q, k ``[B, T, H, d_k]``, v ``[B, T, H, d_v]`` (float32 or bfloat16 for the kernels), a, f, h ``[B, T, H]``;
    chunk a power of two, at least 16. Returns ``[B, T, H, d_v]`` in q's dtype.
    """
    _check(q, k, v, a, f, h)
    if chunk < 16 or chunk & (chunk - 1):
        raise GLRError(f"chunk must be a power of two >= 16, got {chunk}")
    B, n, H, dk = q.shape
    dv = v.shape[-1]
    grads = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, a, f, h))
    kernels = q.dtype in DTYPES and (q.is_cuda or _interpreting()) and dk <= 256 and dv <= 256 and not grads
    if not kernels:
        return glr_readout(q, k, v, a[..., None], expanded(f, h), Pattern.from_spec("fenwick").tables(n))
    nz = (n - 1) // chunk + 1
    if B * H * nz * dk * dv > MAX_ELEMENTS:
        raise GLRError(f"problem too large for the factored readout: {B * H * nz * dk * dv} state elements "
                       f"(limit {MAX_ELEMENTS})")
    q, k, v = (x.contiguous() for x in (q, k, v))
    a, f, h = (x.float().contiguous() for x in (a, f, h))
    idx = _on_device(n, str(q.device))
    b2 = two_lag_coefficients(f, h)
    shape, inverse = chunk_inverse_launch(b2, idx, n, chunk, shift=chunk - 1, precision=inverse_precision(q.dtype))
    T = torch.empty(shape, dtype=torch.float32, device=q.device)
    inverse(b2, T)
    s = INTERPRETER if _interpreting() else GPU
    _settings()
    prec = ("bf16-upcast" if _interpreting() else "bf16") if q.dtype == torch.bfloat16 else "tf32x3"
    Z = _output(q, B * H, nz, dk, dv)
    BK, BV = min(s["walk_k"], _block(dk)), min(s["walk_v"], _block(dv))
    factored_walk[(B * H, triton.cdiv(dk, BK), triton.cdiv(dv, BV))](
        k, v, a, f, h, T, Z, n, H, T.shape[1], nz, dk, dv, C=chunk, BK=BK, BV=BV, PREC=prec,
        num_warps=s["walk_warps"], num_stages=s["walk_stages"])
    o = _output(v)
    OV = min(s["out_v"], _block(dv))
    factored_output[(B * H, T.shape[1], triton.cdiv(dv, OV))](
        q, k, v, a, f, h, T, Z, o, n, H, T.shape[1], nz, dk, dv, C=chunk, BK=_block(dk), BV=OV, PREC=prec,
        num_warps=s["out_warps"], num_stages=s["out_stages"])
    return o


@triton.jit
def _reads_of_z(r, hv, fv, C: tl.constexpr):
    """b_ext: the chunk rows' coefficients on Z_c (hv, fv: the rows' h and f): ``h f + 1`` at row 0 (t - 1 and its
    parent are both cC), 1 at rows ``2^i - 1`` (parent cC) below the last, whose parent is read as
    ``Z_{clear(c+1)}``."""
    power = ((r + 1) & r) == 0
    return tl.where(r == 0, hv * fv + 1.0, tl.where(power & (r + 1 < C), 1.0, 0.0))


@triton.jit
def _walk_inputs(c, k_ptr, v_ptr, a_ptr, f_ptr, h_ptr, t_ptr, z_ptr, zbase, pid, bb, hh, n, H, nk, nz, DK, DV, kk, vv,
                 tile, r, C: tl.constexpr):
    """What step c reads: the keys scaled by ``T[C-1, s] h_s a_s`` ``[C, BK]`` (float32), the values, ``g_c``, and
    ``Z_{clear(c+1)}`` where 4 divides c + 1 (else 0; it was written at step c - 3 or before)."""
    step = tl.zeros((1,), tl.int32) + c             # a tensor, so that the masks stay boolean (interpreter)
    ok = step < nz - 1                              # none where there is no step (n <= C)
    km, vm, rm = (kk < DK) & ok, (vv < DV) & ok, (r < C) & ok
    pos = (bb * n + c * C + 1 + r).to(tl.int64) * H + hh
    hv = tl.load(h_ptr + pos, mask=rm, other=0.0)
    av = tl.load(a_ptr + pos, mask=rm, other=0.0)
    fv = tl.load(f_ptr + pos, mask=rm, other=0.0)
    last = tl.load(t_ptr + ((pid * nk + c + 1).to(tl.int64) * C + C - 1) * C + r, mask=rm, other=0.0)
    g = tl.sum(last * _reads_of_z(r, hv, fv, C))
    kt = tl.load(k_ptr + pos[:, None] * DK + kk[None, :], mask=km[None, :], other=0.0).to(tl.float32)
    vt = tl.load(v_ptr + pos[:, None] * DV + vv[None, :], mask=vm[None, :], other=0.0)
    older = tl.load(zbase + ((c + 1) & c) * DK * DV + tile,
                    mask=km[:, None] & vm[None, :] & ((step + 1) % 4 == 0)[:, None], other=0.0).to(tl.float32)
    return kt * (last * hv * av)[:, None], vt, g, older


@triton.jit
def factored_walk(k_ptr, v_ptr, a_ptr, f_ptr, h_ptr, t_ptr, z_ptr, n, H, nk, nz, DK, DV, C: tl.constexpr,
                  BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr):
    """One program per (batch x head, d_k tile, d_v tile): ``Z_0``, then ``Z_{c+1}`` for c = 0 .. nz - 2. Step c
    loads step c + 1's inputs (``_walk_inputs``), so that no step waits on its own loads."""
    pid, ik, iv = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    bb, hh = pid // H, pid % H
    kk, vv = ik * BK + tl.arange(0, BK), iv * BV + tl.arange(0, BV)
    km, vm = kk < DK, vv < DV
    tile = kk[:, None] * DV + vv[None, :]
    zbase = z_ptr + pid.to(tl.int64) * nz * DK * DV
    p0 = (bb * n).to(tl.int64) * H + hh
    k0 = tl.load(k_ptr + p0 * DK + kk, mask=km, other=0.0).to(tl.float32)
    v0 = tl.load(v_ptr + p0 * DV + vv, mask=vm, other=0.0).to(tl.float32)
    Z = (tl.load(h_ptr + p0) * tl.load(a_ptr + p0)) * k0[:, None] * v0[None, :]
    prev = tl.zeros((BK, BV), tl.float32)
    tl.store(zbase + tile, Z.to(z_ptr.dtype.element_ty), mask=km[:, None] & vm[None, :])
    r = tl.arange(0, C)
    kw, vt, g, older = _walk_inputs(0, k_ptr, v_ptr, a_ptr, f_ptr, h_ptr, t_ptr, z_ptr, zbase, pid, bb, hh, n, H, nk,
                                    nz, DK, DV, kk, vv, tile, r, C)
    for c in range(nz - 1):
        ahead = tl.minimum(c + 1, nz - 2)          # the last step loads its own inputs again (not used)
        kn, vn, gn, on = _walk_inputs(ahead, k_ptr, v_ptr, a_ptr, f_ptr, h_ptr, t_ptr, z_ptr, zbase, pid, bb, hh, n,
                                      H, nk, nz, DK, DV, kk, vv, tile, r, C)
        L = _product(_factor(tl.trans(kw), PREC), vt, PREC)
        anc = tl.where((c + 1) % 2 == 1, Z, tl.where((c + 1) % 4 == 2, prev, older))
        prev = Z
        Z = L + g * Z + anc
        tl.store(zbase + (c + 1) * DK * DV + tile, Z.to(z_ptr.dtype.element_ty), mask=km[:, None] & vm[None, :])
        tl.debug_barrier()
        kw, vt, g, older = kn, vn, gn, on


@triton.jit
def factored_output(q_ptr, k_ptr, v_ptr, a_ptr, f_ptr, h_ptr, t_ptr, z_ptr, o_ptr, n, H, nk, nz, DK, DV,
                    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr):
    """One program per (batch x head, chunk kc of T, d_v block): rows ``(kc - 1) C + 1 .. kc C`` (row 0 for kc = 0)."""
    pid, kc, iv = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    bb, hh = pid // H, pid % H
    r, kk, vv = tl.arange(0, C), tl.arange(0, BK), iv * BV + tl.arange(0, BV)
    rows = (kc - 1) * C + 1 + r
    rm, km, vm = (rows >= 0) & (rows < n), kk < DK, vv < DV
    pos = (bb * n + rows).to(tl.int64) * H + hh
    qt = tl.load(q_ptr + pos[:, None] * DK + kk[None, :], mask=rm[:, None] & km[None, :], other=0.0)
    kt = tl.load(k_ptr + pos[:, None] * DK + kk[None, :], mask=rm[:, None] & km[None, :], other=0.0)
    vt = tl.load(v_ptr + pos[:, None] * DV + vv[None, :], mask=rm[:, None] & vm[None, :], other=0.0)
    av = tl.load(a_ptr + pos, mask=rm, other=0.0)
    fv = tl.load(f_ptr + pos, mask=rm, other=0.0)
    hv = tl.load(h_ptr + pos, mask=rm, other=0.0)
    shifted = tl.load(t_ptr + ((pid * nk + kc).to(tl.int64) * C + r[:, None] - 1) * C + r[None, :],
                      mask=(r[:, None] >= 1) & (r[None, :] < r[:, None]), other=0.0)
    M = tl.where(r[:, None] == r[None, :], av[:, None], 0.0) + fv[:, None] * shifted * (hv * av)[None, :]
    scores = _product(_factor(qt.to(tl.float32), PREC), tl.trans(kt), PREC) * M
    out = _product(_factor(scores, PREC), vt, PREC)
    w = tl.sum(shifted * _reads_of_z(r, hv, fv, C)[None, :], axis=1) + tl.where(r == 0, 1.0, 0.0)
    zc = tl.load(z_ptr + ((pid * nz + kc - 1).to(tl.int64) * DK + kk[:, None]) * DV + vv[None, :],
                 mask=km[:, None] & vm[None, :] & (tl.zeros((1, 1), tl.int32) + kc >= 1), other=0.0)
    out += (fv * w)[:, None] * _product(_factor(qt.to(tl.float32), PREC), zc, PREC)
    tl.store(o_ptr + pos[:, None] * DV + vv[None, :], out.to(o_ptr.dtype.element_ty), mask=rm[:, None] & vm[None, :])
