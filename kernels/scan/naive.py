"""The whole scan on one screen: the oracle every backend of ``glr_scan`` is tested against.

    h_t = sum_j a[t, j] u[a_idx[t, j]]  +  sum_j b[t, j] h[b_idx[t, j]]      (slots with index -1 skipped)

i.e. ``H = (I - B)^{-1} A U`` by forward substitution, one position at a time, in float64, with plain
autograd for the gradients. Same arguments as ``glr_scan``: ``u[B, T, H, D]``, ``a[B, T, H, wa]``,
``b[B, T, H, wb]``, ``tables = (a_idx, b_idx)``; returns ``h[B, T, H, D]`` in u's dtype.
Cost: ``O(T)`` Python steps, each ``2 B H D (|A(t)| + |B(t)|)`` flops; for tests only.
``scan_dense`` is the dense form ``(I - B)^{-1} A U`` on ``[N, n, d]`` sequences (small n).
"""
from __future__ import annotations

import torch

from glrtheory.patterns.tables import IndexTables

DTYPES = (torch.float32, torch.float64)


def naive_glr_scan(u: torch.Tensor, a: torch.Tensor, b: torch.Tensor, tables) -> torch.Tensor:
    """``H = (I - B)^{-1} A U`` token by token in float64 (module docstring)."""
    u64, a64, b64 = (x.double() for x in (u, a, b))
    a_idx, b_idx = (idx.tolist() for idx in IndexTables.coerce(tables))   # rows: valid entries first
    h = []
    for t in range(u.shape[1]):
        sa = [s for s in a_idx[t] if s >= 0]
        sb = [s for s in b_idx[t] if s >= 0]
        h_t = torch.einsum("bhj,bjhd->bhd", a64[:, t, :, :len(sa)], u64[:, sa])           # (A U)_t
        if sb:
            past = torch.stack([h[s] for s in sb], 1)                                        # [B, j, H, D]
            h_t = h_t + torch.einsum("bhj,bjhd->bhd", b64[:, t, :, :len(sb)], past)        # + (B H)_t
        h.append(h_t)
    return torch.stack(h, 1).to(u.dtype)


def scan_dense(u: torch.Tensor, a: torch.Tensor, b: torch.Tensor, a_idx: torch.Tensor,
               b_idx: torch.Tensor) -> torch.Tensor:
    """Dense reference: scatter ``A``, ``B`` to ``[N, n, n]`` and solve ``(I - B) H = A U``; differentiable
    by plain autograd (the oracle for the custom backward)."""
    N, n, _ = u.shape
    mats = []
    for coef, idx in ((a, a_idx), (b, b_idx)):
        rows, slots = (idx >= 0).nonzero(as_tuple=True)
        m = torch.zeros((N, n * n), dtype=u.dtype, device=u.device)
        m = m.index_put((torch.arange(N, device=u.device)[:, None], (rows * n + idx[rows, slots])[None]),
                        coef[:, rows, slots])
        mats.append(m.view(N, n, n))
    A, B = mats
    eye = torch.eye(n, dtype=u.dtype, device=u.device)
    return torch.linalg.solve_triangular(eye - B, A @ u, upper=False, unitriangular=True)


# -- the backend contract of op.py ----------------------------------------------------------------------
def forward(u, a, b, plan, chunk: int) -> torch.Tensor:
    return naive_glr_scan(u, a, b, (plan.a_idx, plan.b_idx))


def backward(grad, u, a, b, h, plan, chunk: int):
    """The transposed substitution, row by row in float64 (autograd cannot run inside a custom op):
    ``z = (I - B)^{-T} g`` backwards in time, ``du = A^T z``, ``da[t, j] = <z_t, u[a_idx[t, j]]>``,
    ``db[t, j] = <z_t, h[b_idx[t, j]]>``."""
    z, u64, a64, b64, h64 = (x.double() for x in (grad.clone(), u, a, b, h))
    a_idx, b_idx = (idx.tolist() for idx in IndexTables.coerce((plan.a_idx, plan.b_idx)))
    du, da, db = torch.zeros_like(u64), torch.zeros_like(a64), torch.zeros_like(b64)
    for t in reversed(range(u.shape[1])):
        sa = [s for s in a_idx[t] if s >= 0]
        sb = [s for s in b_idx[t] if s >= 0]
        z_t = z[:, t]                                                       # final: no later row adds to it
        z[:, sb] += b64[:, t, :, :len(sb), None].transpose(1, 2) * z_t[:, None]
        du[:, sa] += a64[:, t, :, :len(sa), None].transpose(1, 2) * z_t[:, None]
        da[:, t, :, :len(sa)] = torch.einsum("bhd,bjhd->bhj", z_t, u64[:, sa])
        db[:, t, :, :len(sb)] = torch.einsum("bhd,bjhd->bhj", z_t, h64[:, sb])
    return du.to(u.dtype), da.to(a.dtype), db.to(b.dtype)
