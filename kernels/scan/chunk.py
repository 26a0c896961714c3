"""The ``chunk`` backend of ``glr_scan``: PyTorch on any device, float32 and float64.

``forward`` / ``backward`` take ``[B, T, H, D]`` tensors and the ``Plan`` (the backend contract of
``op.py``) and run on flattened ``[N = B * H, T, ...]`` sequences:

    forward:   X = A U (``apply``), then H = (I - B)^{-1} X (``substitute``)
    backward:  Z = (I - B)^{-T} G (``substitute`` over the time-reversed B^T),
               dU = A^T Z,  da[t, j] = <z_t, u[a_idx[t, j]]>,  db[t, j] = <z_t, h[b_idx[t, j]]>

A table enters as its entry list sorted by row (``plan.Entries``: ``row[e]``, ``src[e]``) with
per-entry coefficients ``c[N, nnz]``:

* ``apply``:       ``x_t = sum_{e: row_e = t} c_e v[src_e]``           (``A U``, ``A^T Z``)
* ``entry_dot``:   ``g_e = <z[row_e], v[src_e]>``                       (coefficient gradients)
* ``substitute``:  ``h = (I - B)^{-1} x`` by chunks of C positions: the unit lower-triangular intra-chunk
  blocks ``I - B_cc`` are solved densely (``torch.linalg.solve_triangular``, all chunks in one call) and
  applied with matrix products to ``x_c + B_c,past h_past``, whose past states are gathered from earlier
  chunks. Python loops over chunks only, never over tokens; ``chunk=1`` is token by token.

Row sums use ``torch.segment_reduce`` (deterministic, no atomics; ``unsafe=True`` skips its offset
checks, which would synchronize with the device: the offsets are built here from sorted rows).
"""
from __future__ import annotations

import numpy as np
import torch

#: Elements a gathered ``[N, entries, d]`` block may hold before it is split (bounds memory).
GATHER_BUDGET = 2**25


def row_pointers(row: torch.Tensor, n: int) -> torch.Tensor:
    """``ptr[t]`` = first entry of row t (``ptr[n]`` = number of entries), for entries sorted by row."""
    return torch.searchsorted(row.contiguous(), torch.arange(n + 1, device=row.device, dtype=row.dtype))


def _segment_sum(prod: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Sums of ``prod[:, offsets[i]:offsets[i+1]]`` -> ``[N, len(offsets) - 1, d]``."""
    return torch.segment_reduce(prod, "sum", offsets=offsets.expand(prod.shape[0], -1).contiguous(), axis=1,
                                unsafe=True)


def _row_blocks(ptr: np.ndarray, per_entry: int):
    """Row ranges ``[r0, r1)`` holding at most GATHER_BUDGET / per_entry entries (at least one row)."""
    n = ptr.size - 1
    cap = max(1, GATHER_BUDGET // max(per_entry, 1))
    r0 = 0
    while r0 < n:
        r1 = int(np.searchsorted(ptr, ptr[r0] + cap, side="right")) - 1
        r1 = min(n, max(r0 + 1, r1))
        yield r0, r1
        r0 = r1


def apply(c: torch.Tensor, row: torch.Tensor, src: torch.Tensor, v: torch.Tensor,
          out: torch.Tensor) -> torch.Tensor:
    """``out[:, t] = sum_{e: row_e = t} c[:, e] * v[:, src_e]``; returns out."""
    N, n, d = out.shape
    if row.numel() == 0:
        return out.zero_()
    ptr = row_pointers(row, n)
    ptr_host = ptr.cpu().numpy()
    for r0, r1 in _row_blocks(ptr_host, N * d):
        e0, e1 = int(ptr_host[r0]), int(ptr_host[r1])
        prod = c[:, e0:e1, None] * v.index_select(1, src[e0:e1])
        out[:, r0:r1] = _segment_sum(prod, ptr[r0:r1 + 1] - e0)
    return out


def entry_dot(z: torch.Tensor, row: torch.Tensor, src: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g[:, e] = <z[:, row_e], v[:, src_e]>`` -> ``[N, nnz]``."""
    N, _, d = z.shape
    m = row.numel()
    out = torch.empty((N, m), dtype=z.dtype, device=z.device)
    step = max(1, GATHER_BUDGET // (N * d))
    for e0 in range(0, m, step):
        e1 = min(m, e0 + step)
        out[:, e0:e1] = (z.index_select(1, row[e0:e1]) * v.index_select(1, src[e0:e1])).sum(-1)
    return out


def substitute(x: torch.Tensor, c: torch.Tensor, row: torch.Tensor, src: torch.Tensor, chunk: int,
               out: torch.Tensor) -> torch.Tensor:
    """Forward substitution ``out = (I - B)^{-1} x`` for the strictly lower ``B`` with entries
    ``(row, src)`` and coefficients ``c[N, nnz]``, chunk by chunk (chunk = C positions).

    With ``T_k = (I - B_kk)^{-1}`` (all chunks in one batched triangular solve) and
    ``y_k = T_k x_k`` (one batched product), chunk k is ``h_k = y_k + T_k (B_k,past h_past)``:
    a gather of earlier chunks' states, a segment sum and one small matrix product per chunk.
    """
    N, n, d = x.shape
    if row.numel() == 0:
        return out.copy_(x)
    C = max(1, min(int(chunk), n))
    nc = -(-n // C)
    t0 = (row // C) * C
    past = src < t0
    p_src, p_c = src[past], c[:, past]
    i_row, i_src, i_c = row[~past], src[~past], c[:, ~past]
    # offsets of the past entries of each row, relative to its chunk's first: [nc, N, C + 1]
    p_ptr = row_pointers(row[past], n)
    ends = torch.clamp(torch.arange(nc, device=row.device)[:, None] * C + torch.arange(C + 1, device=row.device),
                       max=n)
    offsets = (p_ptr[ends] - p_ptr[ends[:, :1]])[:, None].expand(nc, N, C + 1).contiguous()
    chunk_ptr = p_ptr[ends[:, 0]].tolist() + [int(p_ptr[n])]
    # T_k = (I - B_kk)^{-1} for every chunk at once: [N, nc, C, C]
    blocks = torch.zeros((N, nc * C * C), dtype=x.dtype, device=x.device)
    blocks[:, (i_row // C) * (C * C) + (i_row % C) * C + (i_src - (i_row // C) * C)] = -i_c
    eye = torch.eye(C, dtype=x.dtype, device=x.device).expand(N, nc, C, C)
    T = torch.linalg.solve_triangular(blocks.view(N, nc, C, C), eye, upper=False, unitriangular=True)
    y = torch.matmul(T, torch.nn.functional.pad(x, (0, 0, 0, nc * C - n)).view(N, nc, C, d))
    loop = _graphed_loop if (CUDA_GRAPHS and x.is_cuda) else _chunk_loop
    return loop(y, T, p_c, p_src, offsets, chunk_ptr, n, out)


def _chunk_loop(y, T, p_c, p_src, offsets, chunk_ptr, n, out):
    """``h_k = y_k + T_k (B_k,past h_past)`` for chunks k = 0, 1, ... in order, written into out."""
    C = T.shape[-1]
    for k in range(T.shape[1]):
        s0, s1 = k * C, min(n, k * C + C)
        r = s1 - s0
        e0, e1 = chunk_ptr[k], chunk_ptr[k + 1]
        if e1 > e0:
            prod = p_c[:, e0:e1, None] * out.index_select(1, p_src[e0:e1])
            past_sum = torch.segment_reduce(prod, "sum", offsets=offsets[k, :, :r + 1].contiguous(),
                                            axis=1, unsafe=True)
            out[:, s0:s1] = torch.baddbmm(y[:, k, :r], T[:, k, :r, :r], past_sum)
        else:
            out[:, s0:s1] = y[:, k, :r]
    return out


#: Replay the chunk loop as a CUDA graph on CUDA tensors (one capture per loop structure).
CUDA_GRAPHS = True
#: Captured loops kept (each holds static copies of its inputs).
GRAPH_CACHE_SIZE = 4
_GRAPHS: dict = {}


def _graphed_loop(y, T, p_c, p_src, offsets, chunk_ptr, n, out):
    """``_chunk_loop`` as a CUDA graph: the loop's structure (shapes, dtype, chunk entry ranges) is the
    key; its inputs are copied into the graph's static buffers before each replay, so a replay computes
    exactly what the eager loop computes, without one host round of kernel launches per chunk.
    Each kept graph holds a copy of its inputs (T is ``N * n * C`` numbers); set ``CUDA_GRAPHS = False``
    to run eagerly (e.g. when several threads use the GPU during a capture)."""
    inputs = (y, T, p_c, p_src, offsets)
    key = (tuple((x.shape, x.dtype) for x in inputs), tuple(chunk_ptr), n, out.shape, str(out.device))
    entry = _GRAPHS.get(key)
    if entry is None:
        static = [x.clone() for x in inputs]
        static_out = torch.zeros_like(out)
        side = torch.cuda.Stream(device=out.device)
        side.wait_stream(torch.cuda.current_stream(out.device))
        with torch.cuda.stream(side):                 # warm-up (library handles, workspaces) off the graph
            _chunk_loop(*static, chunk_ptr, n, static_out)
        torch.cuda.current_stream(out.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            _chunk_loop(*static, chunk_ptr, n, static_out)
        while len(_GRAPHS) >= GRAPH_CACHE_SIZE:
            _GRAPHS.pop(next(iter(_GRAPHS)))
        entry = _GRAPHS[key] = (graph, static, static_out)
    graph, static, static_out = entry
    for dst, src in zip(static, inputs):
        dst.copy_(src)
    graph.replay()
    return out.copy_(static_out)


#: The dtypes this backend runs (the registry of ``op.py`` reads them).
DTYPES = (torch.float32, torch.float64)


def _sequences(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, H, k] -> [B * H, T, k]`` (contiguous)."""
    B, T, H, k = x.shape
    return x.permute(0, 2, 1, 3).reshape(B * H, T, k)


def _heads(x: torch.Tensor, B: int, H: int) -> torch.Tensor:
    """``[B * H, T, k] -> [B, T, H, k]``."""
    return x.view(B, H, x.shape[1], x.shape[2]).permute(0, 2, 1, 3).contiguous()


def _entry_coefficients(coef: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """Per-entry coefficients ``coef[N, n, w].flat[slot]`` -> ``[N, nnz]`` (padded slots never read)."""
    return coef.reshape(coef.shape[0], -1).index_select(1, slot)


def forward(u, a, b, plan, chunk: int) -> torch.Tensor:
    """``H = (I - B)^{-1} A U`` for ``u[B, T, H, D]``, ``a[B, T, H, wa]``, ``b[B, T, H, wb]``."""
    B, _, H, _ = u.shape
    u3, a3, b3 = (_sequences(x) for x in (u, a, b))
    x = apply(_entry_coefficients(a3, plan.a_slot), plan.a_row, plan.a_src, u3, torch.empty_like(u3))
    h = substitute(x, _entry_coefficients(b3, plan.b_slot), plan.b_row, plan.b_src, chunk, torch.empty_like(u3))
    return _heads(h, B, H)


def backward(grad, u, a, b, h, plan, chunk: int):
    """``(dL/du, dL/da, dL/db)`` from ``grad = dL/dH`` (module docstring), all ``[B, T, H, .]``."""
    B, _, H, _ = u.shape
    g3, u3, a3, b3, h3 = (_sequences(x) for x in (grad, u, a, b, h))
    z = substitute(g3.flip(1), _entry_coefficients(b3, plan.bt_slot), plan.bt_row, plan.bt_src, chunk,
                   torch.empty_like(u3)).flip(1)
    grad_u = apply(_entry_coefficients(a3, plan.at_slot), plan.at_row, plan.at_src, z, torch.empty_like(u3))
    grads = []
    for coef, row, src, slot, v in ((a3, plan.a_row, plan.a_src, plan.a_slot, u3),
                                    (b3, plan.b_row, plan.b_src, plan.b_slot, h3)):
        g = torch.zeros((coef.shape[0], coef.shape[1] * coef.shape[2]), dtype=u.dtype, device=u.device)
        g[:, slot] = entry_dot(z, row, src, v)
        grads.append(_heads(g.view(coef.shape), B, H))
    return _heads(grad_u, B, H), grads[0], grads[1]
