"""The ``chunked_aligned`` readout: ``o_t = q_t^T H_t``, ``H = (I - B)^{-1} A U``, ``u_s = k_s v_s^T``, with
d_k x d_v states only at the boundary positions P of a chunk layout (``readout_plan``).

For a chunk with rows R (C of them, first row r0), ``H_R = A_R U + B_RR H_R + B_R,X H_X`` with X the
chunk's external sources (all before r0), so with the local solves

    [M | E] = (I - B_RR)^{-1} [A_R,cols | B_R,X]      cols = [r0 - w, r0 + C); M [C, C + w], E [C, m]

every row is ``H_t = sum_s M[t, s] k_s v_s^T + sum_j E[t, j] H_{X_j}``. The boundary states obey the same
relation among themselves (X of p's chunk is in P and precedes p), a vector-state ``glr_scan`` over |P|
positions. In four numbered steps, over all chunks at once (as mamba's ``ssd_minimal``):

1. intra-chunk solve: ``[M | E]`` by one batched unit-lower-triangular solve;
2. intra-chunk output: ``o_t = sum_s M[t, s] (q_t . k_s) v_s``;
3. boundary states: ``L_p = sum_s M[p, s] k_s v_s^T``, then ``H_p = L_p + sum_j E[p, j] H_{X_j}``;
4. state to output: ``o_t += sum_j E[t, j] q_t^T H_{X_j}``.

Work per head ``O(T (C + w)(d_k + d_v) + T m d_k d_v + |P| (C + w + m) d_k d_v + T C (C + w + m))``
(``readout_plan.work``); memory ``O(T (C + w + m + d_k + d_v) + |P| (C + w + d_v) d_k)``
(``readout_plan.memory``): step 4 runs one source slot j at a time and recomputes its gathered states in
the backward (``torch.utils.checkpoint``), so the ``T / C x m`` gathered ``d_k x d_v`` states are never kept
together. Autograd runs through the torch ops.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from .op import glr_scan
from .readout_plan import ChunkLayout, boundary_tables

Tensor = torch.Tensor


def _index(layout: ChunkLayout, device) -> dict:
    """The layout's index arrays as int64 tensors on ``device`` (built once per layout and device), and
    the boundary recurrence's tables."""
    def build():
        out = {name: tuple(torch.as_tensor(x, device=device) for x in pair)
               for name, pair in layout.entries().items()}
        out["ext"] = torch.as_tensor(np.ascontiguousarray(layout.ext.T), device=device)   # [m, nc]
        out["boundary_row"] = torch.as_tensor(layout.boundary_row, device=device)
        out["tables"] = boundary_tables(layout)
        return out

    return layout.tables.memo(("readout_aligned_index", layout.chunk, layout.offset, str(device)), build)


def _dense(coef: Tensor, pos: Tensor, slot: Tensor, shape: tuple) -> Tensor:
    """Coefficients ``coef[N, T, w']`` at flat ``slot``s scattered to flat ``pos``itions of zeros ``[N, *shape]``."""
    N = coef.shape[0]
    values = coef.reshape(N, coef.shape[1] * coef.shape[2]).index_select(1, slot)
    return coef.new_zeros(N, int(np.prod(shape))).index_copy(1, pos, values).view(N, *shape)


def boundary_states(inputs: Tensor, coef: Tensor, tables) -> Tensor:
    """``H_p = L_p + sum_j coef[p, j] H_{b_idx[p, j]}`` for ``inputs L [N, P, d_k, d_v]`` and ``coef [N, P, m]``,
    as a vector-state ``glr_scan`` (A the identity) over the P positions of ``tables``; ``[N, P, d_k, d_v]``."""
    N, P, dk, dv = inputs.shape
    u = inputs.reshape(N, P, dk * dv).transpose(0, 1).unsqueeze(0)                # [1, P, N, d_k d_v]
    ones = inputs.new_ones(1, P, 1, 1)
    h = glr_scan(u, ones, coef.transpose(0, 1).unsqueeze(0), tables)
    return h.squeeze(0).transpose(0, 1).reshape(N, P, dk, dv)


def _read_slot(q: Tensor, weight: Tensor, states: Tensor, index: Tensor) -> Tensor:
    """``o[n, c, i] = weight[n, c, i] q[n, c, i]^T states[n, index[c]]``."""
    return torch.matmul(q * weight.unsqueeze(-1), states.index_select(1, index))


def chunked_aligned(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout) -> Tensor:
    """The readout by the chunk layout (module docstring), in the inputs' dtype.

    Parameters
    ----------
    q, k : Tensor ``[B, T, H, d_k]``;  v : Tensor ``[B, T, H, d_v]``
    a, b : Tensor ``[B, T, H, wa]``, ``[B, T, H, wb]`` (expanded to q's batch and heads)
    layout : ChunkLayout
        ``readout_plan.aligned_layout(tables)``.

    Returns
    -------
    Tensor ``[B, T, H, d_v]``.
    """
    B, T, H, dk = q.shape
    dv = v.shape[-1]
    N, C, s, w, m, nc = B * H, layout.chunk, layout.shift, layout.span, layout.m, layout.n_chunks
    ix = _index(layout, q.device)
    tail = nc * C - T - s

    def seqs(x, front=0):                                  # [B, T, H, d] -> [N, front + T + tail, d]
        x = x.permute(0, 2, 1, 3).reshape(N, T, x.shape[-1])
        return torch.nn.functional.pad(x, (0, 0, front, tail)) if front or tail else x

    a3, b3 = (x.permute(0, 2, 1, 3).reshape(N, T, x.shape[-1]) for x in (a, b))
    qc = seqs(q, s).view(N, nc, C, dk)
    kw, vw = (seqs(x, s + w).unfold(1, C + w, C) for x in (k, v))                  # [N, nc, d, C + w]
    # 1. intra-chunk solve: [M | E] = (I - B_RR)^{-1} [A_R | B_R,X]  (the diagonal of -B_RR is read as 1)
    rhs = torch.cat([_dense(a3, *ix["a"], (nc, C, C + w)), _dense(b3, *ix["bx"], (nc, C, m))], -1)
    ME = torch.linalg.solve_triangular(-_dense(b3, *ix["bi"], (nc, C, C)), rhs, upper=False, unitriangular=True)
    M, E = ME[..., :C + w], ME[..., C + w:]
    # 2. intra-chunk output: o_t = sum_s M[t, s] (q_t . k_s) v_s
    o = torch.einsum("ncis,ncvs->nciv", torch.einsum("ncid,ncds->ncis", qc, kw) * M, vw)
    if m:
        # 3. boundary states: L_p = sum_s M[p, s] k_s v_s^T, then H_p = L_p + sum_j E[p, j] H_{X_j}
        rows = ix["boundary_row"]
        chunk = rows // C
        Mp = M.reshape(N, nc * C, C + w).index_select(1, rows)
        L = torch.matmul(kw.index_select(1, chunk) * Mp.unsqueeze(2), vw.index_select(1, chunk).transpose(-1, -2))
        states = boundary_states(L, E.reshape(N, nc * C, m).index_select(1, rows), ix["tables"])
        # 4. state to output: o_t += sum_j E[t, j] q_t^T H_{X_j}, one slot j at a time (recomputed backward)
        keep = torch.is_grad_enabled() and any(x.requires_grad for x in (qc, E, states))
        for j in range(m):
            args = (qc, E[..., j], states, ix["ext"][j])
            o = o + (checkpoint(_read_slot, *args, use_reentrant=False) if keep else _read_slot(*args))
    return o.reshape(N, nc * C, dv)[:, s:s + T].reshape(B, H, T, dv).permute(0, 2, 1, 3)
