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

Precision (``readout.aligned_dtypes`` picks it): float64 inputs compute in float64 throughout, float32
inputs in float32 (within 1e-12 and 1e-5 of the float64 reference). bfloat16 / float16 inputs, and any
non-float64 inputs under ``torch.autocast``, take the products of steps 2-4 (scores ``q . k``, weighted
values, ``L_p``, ``q^T H``) with operands in that half dtype (q, k, v come in it; M, E and the boundary
states are rounded to it; matrix products accumulate in float32 where torch does, as on CUDA), while the
solve of step 1 and the boundary recurrence run in float32 (float32 states, from ``L_p`` rounded to half)
and the output sums its parts in float32: within 1e-2 (norm-relative) of float64.

Work per head ``O(T (C + w)(d_k + d_v) + T m d_k d_v + |P| (C + w + m) d_k d_v + T C (C + w + m))``
(``readout_plan.work``); step 4 skips the chunks with fewer than j + 1 sources in slot j. Memory
``O(T (C + w + m + d_k + d_v) + |P| (C + w + d_v) d_k)`` (``readout_plan.memory``): step 4 runs one source
slot j at a time, forward and backward (``ReadStates``), so the ``T / C x m`` gathered ``d_k x d_v``
states are never kept together. Autograd runs through the torch ops and ``ReadStates``' own backward.
"""
from __future__ import annotations

import numpy as np
import torch

from ..second_derivative import no_second_derivative
from .op import glr_scan
from .readout_plan import ChunkLayout, boundary_tables

Tensor = torch.Tensor

#: Step 4 gathers the chunks that read slot j when fewer than this fraction of all chunks do; otherwise it
#: runs all of them (the others read state 0 with weight 0).
GATHER_BELOW = 0.75


def _index(layout: ChunkLayout, device) -> dict:
    """The layout's index arrays as int64 tensors on ``device`` (built once per layout and device): the
    chunk and row of each boundary position, the padded rows of their chunks' windows, the boundary
    recurrence's tables, and per source slot j ``(chunks, states)``: the chunks that read a j-th
    source (None for all chunks, ``GATHER_BELOW``) and the index in P of the state each reads."""
    def build():
        out = {name: tuple(torch.as_tensor(x, device=device) for x in pair)
               for name, pair in layout.entries().items()}
        chunk, C = layout.boundary_row // layout.chunk, layout.chunk
        out["boundary"] = tuple(torch.as_tensor(x, device=device) for x in (chunk, layout.boundary_row % C))
        out["window"] = torch.as_tensor((chunk[:, None] * C + np.arange(C + layout.span)).ravel(), device=device)
        out["tables"] = boundary_tables(layout)
        slots = []
        for j in range(layout.m):
            chunks = np.flatnonzero(layout.ext_count > j)
            gather = chunks.size < GATHER_BELOW * layout.n_chunks
            chunks = chunks if gather else np.arange(layout.n_chunks)
            slots.append((torch.as_tensor(chunks, device=device) if gather else None,
                          torch.as_tensor(layout.ext[chunks, j], device=device)))
        out["slots"] = slots
        return out

    return layout.tables.memo(("readout_aligned_index", layout.chunk, layout.offset, str(device)), build)


def _dense(coef: Tensor, pos: Tensor, slot: Tensor, shape: tuple) -> Tensor:
    """Coefficients ``coef[N, T, w']`` at flat ``slot``s scattered to flat ``pos``itions of zeros ``[N, *shape]``."""
    N = coef.shape[0]
    values = coef.reshape(N, coef.shape[1] * coef.shape[2]).index_select(1, slot)
    return coef.new_zeros(N, int(np.prod(shape))).index_copy(1, pos, values).view(N, *shape)


def boundary_states(inputs: Tensor, coef: Tensor, tables) -> Tensor:
    """``H_p = L_p + sum_j coef[p, j] H_{b_idx[p, j]}`` for ``inputs L [N, P, d_k, d_v]`` and ``coef [N, P, m]``,
    as a vector-state ``glr_scan`` (A the identity; batch N, one head) over the P positions of ``tables``;
    ``[N, P, d_k, d_v]``."""
    N, P, dk, dv = inputs.shape
    h = glr_scan(inputs.reshape(N, P, 1, dk * dv), inputs.new_ones(1, P, 1, 1), coef.unsqueeze(2), tables)
    return h.view(N, P, dk, dv)


def _pick(x: Tensor, chunks: Tensor | None) -> Tensor:
    return x if chunks is None else x.index_select(1, chunks)


def _add(out: Tensor, chunks: Tensor | None, x: Tensor) -> None:
    """``out[:, chunks] += x`` (all chunks for None), in out's dtype."""
    if chunks is None:
        out += x
    else:
        out.index_add_(1, chunks, x.to(out.dtype))


class ReadStates(torch.autograd.Function):
    """Step 4: ``o[n, c, i] = base[n, c, i] + sum_j E[n, c, i, j] q[n, c, i]^T H[n, ext[c, j]]`` over the
    slots of ``_index``, products in q's dtype, sums in E's. The backward gathers each slot's states again
    (no forward product is recomputed, nothing per slot is kept): ``dq = sum_j E_j (g H_j^T)``,
    ``dE_j = <q, g H_j^T>``, ``dH_j = (E_j q)^T g``. Differentiable once."""

    @staticmethod
    def forward(ctx, base, q, E, states, slots):
        ctx.save_for_backward(q, E, states)
        ctx.slots, ctx.base_dtype = slots, base.dtype
        low = states.to(q.dtype)
        out = base.to(E.dtype, copy=True)
        for j, (chunks, src) in enumerate(slots):
            weighted = _pick(q, chunks) * _pick(E[..., j], chunks).unsqueeze(-1).to(q.dtype)
            _add(out, chunks, torch.matmul(weighted, low.index_select(1, src)))
        return out

    @staticmethod
    @no_second_derivative("glr_readout's chunked_aligned states")
    def backward(ctx, grad):
        q, E, states = ctx.saved_tensors
        need_q, need_E, need_H = ctx.needs_input_grad[1:4]
        low, grad = states.to(q.dtype), grad.to(q.dtype).contiguous()        # once, not in every product
        dq = torch.zeros(q.shape, dtype=E.dtype, device=q.device) if need_q else None
        dE = torch.zeros_like(E) if need_E else None
        dH = torch.zeros_like(states) if need_H else None
        for j, (chunks, src) in enumerate(ctx.slots):
            qj, gj, wj = _pick(q, chunks), _pick(grad, chunks), _pick(E[..., j], chunks).unsqueeze(-1).to(q.dtype)
            if need_q or need_E:
                back = torch.matmul(gj, low.index_select(1, src).transpose(-1, -2))          # g H_j^T
                if need_q:
                    _add(dq, chunks, back * wj)
                if need_E:
                    dE[:, slice(None) if chunks is None else chunks, :, j] = (back * qj).sum(-1, dtype=E.dtype)
            if need_H:
                dH.index_add_(1, src, torch.matmul((qj * wj).transpose(-1, -2), gj).to(dH.dtype))
        base = grad.to(ctx.base_dtype) if ctx.needs_input_grad[0] else None
        return base, None if dq is None else dq.to(q.dtype), dE, dH, None


def solve_chunks(a: Tensor, b: Tensor, layout: ChunkLayout) -> Tensor:
    """Step 1, ``[M | E] = (I - B_RR)^{-1} [A_R | B_R,X]`` of every chunk: ``[N, nc, C, C + w + m]`` in a's dtype
    (one batched triangular solve; the diagonal of ``-B_RR`` is read as 1)."""
    B, T, H, _ = a.shape
    N, C, w, m, nc = B * H, layout.chunk, layout.span, layout.m, layout.n_chunks
    ix = _index(layout, a.device)
    a3, b3 = (x.permute(0, 2, 1, 3).reshape(N, T, x.shape[-1]) for x in (a, b))
    rhs = torch.cat([_dense(a3, *ix["a"], (nc, C, C + w)), _dense(b3, *ix["bx"], (nc, C, m))], -1)
    return torch.linalg.solve_triangular(-_dense(b3, *ix["bi"], (nc, C, C)), rhs, upper=False, unitriangular=True)


def chunked_aligned(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout) -> Tensor:
    """The readout by the chunk layout (module docstring), in torch ops.

    Parameters
    ----------
    q, k : Tensor ``[B, T, H, d_k]``;  v : Tensor ``[B, T, H, d_v]``
        In the product dtype (module docstring).
    a, b : Tensor ``[B, T, H, wa]``, ``[B, T, H, wb]``
        In the solve dtype (float32 or float64), expanded to q's batch and heads.
    layout : ChunkLayout
        ``readout_plan.aligned_layout(tables)``.

    Returns
    -------
    Tensor ``[B, T, H, d_v]`` in the solve dtype.
    """
    B, T, H, dk = q.shape
    N, C, s, w, m, nc = B * H, layout.chunk, layout.shift, layout.span, layout.m, layout.n_chunks
    ix = _index(layout, q.device)
    tail = nc * C - T - s

    def seqs(x, front=0):                      # [B, T, H, d] -> [N, front + T + tail, d], one contiguous copy
        zeros = [x.new_zeros(B, H, n, x.shape[-1]) for n in (front, tail)]
        return torch.cat([zeros[0], x.permute(0, 2, 1, 3), zeros[1]], 2).view(N, -1, x.shape[-1])

    qc = seqs(q, s).view(N, nc, C, dk)
    ks, vs = seqs(k, s + w), seqs(v, s + w)
    kw, vw = (x.unfold(1, C + w, C) for x in (ks, vs))                            # [N, nc, d, C + w] views
    # 1. intra-chunk solve: [M | E] = (I - B_RR)^{-1} [A_R | B_R,X]
    M, E = solve_chunks(a, b, layout).split([C + w, m], -1)
    M = M.to(q.dtype)
    # 2. intra-chunk output: o_t = sum_s M[t, s] (q_t . k_s) v_s
    o = torch.matmul(torch.matmul(qc, kw) * M, vw.transpose(-1, -2))
    if m:
        # 3. boundary states: L_p = sum_s M[p, s] k_s v_s^T, then H_p = L_p + sum_j E[p, j] H_{X_j}
        chunk, row = ix["boundary"]
        kp, vp = (x.index_select(1, ix["window"]).view(N, -1, C + w, x.shape[-1]) for x in (ks, vs))
        L = torch.matmul((kp * M[:, chunk, row].unsqueeze(-1)).transpose(-1, -2), vp)
        states = boundary_states(L.to(a.dtype), E[:, chunk, row], ix["tables"])
        # 4. state to output: o_t += sum_j E[t, j] q_t^T H_{X_j}, one slot j at a time (forward and backward)
        o = ReadStates.apply(o, qc, E, states, ix["slots"])
    return o.to(a.dtype).reshape(N, nc * C, -1)[:, s:s + T].reshape(B, H, T, -1).permute(0, 2, 1, 3)
