"""The torch building blocks of ``glr_scan`` on flattened tensors ``[N, n, ...]`` (any device).

* ``gather_apply``:  ``x_t = sum_j c[t, j] v[idx[t, j]]``            (``A U``, ``A^T Z``)
* ``gather_dot``:    ``g[t, j] = <z_t, v[idx[t, j]]>``                 (coefficient gradients)
* ``substitute``:    ``h = (I - B)^{-1} x`` by chunks of C positions: per chunk, a dense solve of the
  unit lower-triangular intra-chunk block ``I - B_cc`` (``torch.linalg.solve_triangular``) of the
  right-hand side ``x_c + B_c,past h_past``, whose past states are gathered from earlier chunks.
  Python loops over chunks only, never over tokens; ``chunk=1`` is the token-by-token substitution.
* ``scan_dense``:    the float64-capable dense reference ``(I - B)^{-1} A U`` (small n), differentiable.

Tables are int64 ``[n, w]`` (rows sorted, -1 padded); coefficients in padded slots are ignored.
"""
from __future__ import annotations

import torch

#: Elements a gathered ``[N, rows, w, d]`` block may hold before the rows are split (bounds memory).
GATHER_BUDGET = 2**25


def _row_blocks(n: int, per_row: int):
    step = max(1, GATHER_BUDGET // max(per_row, 1))
    for r0 in range(0, n, step):
        yield r0, min(n, r0 + step)


def masked(coef: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Coefficients with padded slots set to 0 (NaN or garbage there must not leak)."""
    return torch.where(idx >= 0, coef, torch.zeros((), dtype=coef.dtype, device=coef.device))


def gather_apply(coef: torch.Tensor, idx: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[:, t] = sum_j coef[:, t, j] * v[:, idx[t, j]]`` with coef already masked; returns out."""
    N, n, w = coef.shape
    d = v.shape[-1]
    if w == 0:
        return out.zero_()
    safe = idx.clamp(min=0)
    for r0, r1 in _row_blocks(n, N * w * d):
        g = v[:, safe[r0:r1].reshape(-1)].view(N, r1 - r0, w, d)
        out[:, r0:r1] = torch.matmul(coef[:, r0:r1].unsqueeze(-2), g).squeeze(-2)
    return out


def gather_dot(z: torch.Tensor, idx: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g[:, t, j] = <z[:, t], v[:, idx[t, j]]>`` for valid slots, 0 in padded slots."""
    N, n, d = z.shape
    w = idx.shape[1]
    out = torch.zeros((N, n, w), dtype=z.dtype, device=z.device)
    if w == 0:
        return out
    safe = idx.clamp(min=0)
    for r0, r1 in _row_blocks(n, N * w * d):
        g = v[:, safe[r0:r1].reshape(-1)].view(N, r1 - r0, w, d)
        out[:, r0:r1] = torch.matmul(g, z[:, r0:r1].unsqueeze(-1)).squeeze(-1)
    return masked(out, idx)


def substitute(x: torch.Tensor, coef: torch.Tensor, idx: torch.Tensor, chunk: int,
               out: torch.Tensor) -> torch.Tensor:
    """Forward substitution ``out = (I - B)^{-1} x`` for strictly lower ``B`` given by ``idx`` and masked
    ``coef`` (``[N, n, wb]``), chunk by chunk. Rows of idx are sorted, so in the rows of a chunk starting
    at t0 the past entries (``idx < t0``) come first: a chunk gathers only its widest past prefix."""
    N, n, d = x.shape
    w = idx.shape[1]
    if w == 0:
        return out.copy_(x)
    C = max(1, min(int(chunk), n))
    nc = -(-n // C)
    t = torch.arange(n, device=idx.device)
    t0 = (t // C) * C
    valid = idx >= 0
    past = valid & (idx < t0[:, None])
    intra = valid & ~past
    # per chunk (one host sync): how many leading slots reach into the past, whether the block is non-zero
    pad = nc * C - n
    width = torch.nn.functional.pad(past.sum(1), (0, pad)).view(nc, C).amax(1)
    has_intra = torch.nn.functional.pad(intra.sum(1), (0, pad)).view(nc, C).amax(1) > 0
    width, has_intra = width.tolist(), has_intra.tolist()
    # the dense intra-chunk blocks -B_cc of every chunk at once: [N, nc, C, C]
    rows, slots = intra.nonzero(as_tuple=True)
    flat = (rows // C) * (C * C) + (rows % C) * C + (idx[rows, slots] - t0[rows])
    blocks = torch.zeros((N, nc * C * C), dtype=x.dtype, device=x.device)
    blocks[:, flat] = -coef[:, rows, slots]
    blocks = blocks.view(N, nc, C, C)
    past_idx = torch.where(past, idx, 0)            # other slots read h_0 (written) with coefficient 0
    past_coef = torch.where(past, coef, torch.zeros((), dtype=coef.dtype, device=coef.device))
    for c in range(nc):
        s0, s1 = c * C, min(n, c * C + C)
        r, k = s1 - s0, width[c]
        rhs = x[:, s0:s1]
        if k:
            g = out[:, past_idx[s0:s1, :k].reshape(-1)].view(N, r, k, d)
            rhs = rhs + torch.matmul(past_coef[:, s0:s1, :k].unsqueeze(-2), g).squeeze(-2)
        if has_intra[c]:
            out[:, s0:s1] = torch.linalg.solve_triangular(blocks[:, c, :r, :r], rhs, upper=False,
                                                          unitriangular=True)
        else:
            out[:, s0:s1] = rhs
    return out


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
