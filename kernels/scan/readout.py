"""The matrix-state readout ``o_t = q_t^T H_t`` with ``u_s = k_s v_s^T``, without per-token d_k x d_v states.

With ``M = (I - B)^{-1} A`` the scalar mixing matrix of a (batch, head), ``H_t = sum_s M[t, s] k_s v_s^T``,
so the readout is attention weighted by M (causal: M is lower triangular):

    o = ((Q K^T) * M) V                                   q, k [T, d_k], v [T, d_v], M [T, T]

``glr_readout`` chooses one of three algorithms from the index tables (``readout_algorithm``):

* ``"chunked_first_order"`` for the first-order pattern (``ssm``: ``A(t) = {t}``, ``B(t) = {t - 1}``):
  chunked linear attention with decays (as fla's ``chunk_simple_gla``, mamba's SSD), in four numbered
  steps. Work ``O(T C (d_k + d_v) + T d_k d_v)``: class ``n``. Memory: ``C x C`` blocks per chunk and one
  ``d_k x d_v`` state per chunk (``T / C`` of them), i.e. ``O(T (C + d_k d_v / C))`` per head.
* ``"direct"`` when B is empty (``attention``, ``window:W``): ``M = A``, so row blocks of C positions
  take A's rows scattered into a dense ``C x (span + C)`` block (``span``: the widest row, ``t - min A(t)``)
  beside ``Q K^T`` of the same block, flash-attention style. Work ``O(T (span + C) (d_k + d_v))``: class
  ``n w`` with w the span (``n`` for a window, ``n^2`` for attention). Memory one block.
* ``"tiled_mixing"`` for every other pattern: M's column blocks ``M[c0:, c0:c0+C] = (I - B)^{-1} A E``
  (``E`` the unit vectors of the tile; rows before c0 are zero) come from the vector-state scan
  ``glr_scan`` over the rows c0: and are combined tile by tile. Work ``O(T^2 (d_k + d_v + |A| + |B|))`` with ``|A|, |B|`` the mean row sizes: class ``n^2``.
  Memory ``O(T (d_k + d_v))`` per head plus one tile ``T x C``; the backward (here and in ``direct``)
  recomputes each block instead of keeping them, so training memory stays the same.

Layout ``[batch, T, heads, dim]``: ``q, k [B, T, H, d_k]``, ``v [B, T, H, d_v]``, ``a [B, T, H, wa]``,
``b [B, T, H, wb]`` (aligned with the tables' slots, as in ``glr_scan``); ``o [B, T, H, d_v]``.
The reference is the materializing path: ``u = k v^T`` flattened through ``glr_scan``, then ``q^T H``.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError
from glrtheory.patterns.tables import IndexTables

from .op import glr_scan
from .readout_blocks import Blockwise, direct_block, tile

Tensor = torch.Tensor

#: Algorithm name -> cost class of its work in T (as ``glrtheory.symbolic`` names classes).
ALGORITHMS = {"chunked_first_order": "n", "direct": "n w", "tiled_mixing": "n^2"}
#: Default chunk (first order, direct) length C.
DEFAULT_CHUNK = 64
#: Elements ``B * H * T * C`` of one tile of M by default (tiled mixing): each tile runs ``glr_scan``
#: once (plus its backward), so wider tiles mean fewer scans; C is a multiple of DEFAULT_CHUNK.
TILE_ELEMENTS = 2**21


def _is_first_order(tables: IndexTables) -> bool:
    """``A(t) = {t}`` and ``B(t) = {t - 1}`` (empty at t = 0), read from the tables themselves."""
    a, b = tables.a_idx, tables.b_idx
    t = np.arange(tables.n)
    if a.shape[1] != 1 or b.shape[1] > 1 or not (a[:, 0] == t).all():
        return False
    return b.shape[1] == 0 and tables.n == 1 or b.shape[1] == 1 and (b[:, 0] == t - 1).all()


def readout_algorithm(source, n: int | None = None) -> tuple[str, str]:
    """The algorithm ``glr_readout`` runs for these tables, and its cost class in T.

    Parameters
    ----------
    source : IndexTables, (a_idx, b_idx) or Pattern
        The index tables, or a pattern (then its tables at length n).
    n : int, optional
        The length, for a Pattern (default 256).

    Returns
    -------
    (name, cost_class) : ``("chunked_first_order", "n")``, ``("direct", "n w")`` (B empty; w the widest
        span of an A row) or ``("tiled_mixing", "n^2")``.
    """
    if hasattr(source, "support_a"):
        source = source.tables(256 if n is None else n)
    tables = IndexTables.coerce(source)
    if tables.memo("readout_first_order", lambda: _is_first_order(tables)):
        name = "chunked_first_order"
    else:
        name = "tiled_mixing" if (tables.b_idx >= 0).any() else "direct"
    return name, ALGORITHMS[name]


def naive_readout(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, tables) -> Tensor:
    """The materializing reference: ``H = glr_scan(k v^T)`` (``[B, T, H, d_k * d_v]``), ``o_t = q_t^T H_t``."""
    u = (k.unsqueeze(-1) * v.unsqueeze(-2)).flatten(-2)
    h = glr_scan(u, a, b, tables).unflatten(-1, (k.shape[-1], v.shape[-1]))
    return torch.matmul(q.unsqueeze(-2), h).squeeze(-2)


# -- first order: chunked linear attention with decays -------------------------------------------------
def _chunked_first_order(q, k, v, a, b, C: int) -> Tensor:
    """``h_t = a_t k_t v_t^T + b_t h_{t-1}``, ``o_t = q_t^T h_t``, by chunks of C positions.

    Per chunk, position 0 stands for the state entering it and 1..C for its tokens; the decays are
    ``L[i, j] = prod_{j < r <= i} b_r`` (``i >= j``; a cumulative product, no division, any sign)."""
    B, T, H, dk = q.shape
    nc = -(-T // C)
    pad = nc * C - T

    def chunks(x):                                          # [B, T, H, d] -> [B, H, nc, C, d]
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
        return x.view(B, nc, C, H, -1).permute(0, 3, 1, 2, 4)

    qc, kc, vc, ac = chunks(q), chunks(k), chunks(v), chunks(a)[..., 0]
    bc = chunks(b.index_fill(1, torch.tensor([0], device=b.device), 0))[..., 0]   # b_0 reads nothing
    beta = torch.nn.functional.pad(bc, (1, 0))                                     # [B, H, nc, C + 1]
    later = torch.ones(C + 1, C + 1, dtype=torch.bool, device=q.device).tril(-1)    # [r, j]: r > j
    L = torch.where(later, beta.unsqueeze(-1), 1.0).cumprod(-2).tril()            # [.., i, j]
    w = L[..., 1:, 1:] * ac.unsqueeze(-2)                                          # L[i, j] a_j
    # 1. intra-chunk output: o_i = sum_{j <= i} L[i, j] a_j (q_i . k_j) v_j
    o = torch.einsum("bhcij,bhcjv->bhciv", torch.einsum("bhcid,bhcjd->bhcij", qc, kc) * w, vc)
    # 2. chunk states: the state each chunk alone leaves at its end, sum_j L[C, j] a_j k_j v_j^T
    local = torch.einsum("bhcj,bhcjd,bhcjv->bhcdv", w[..., -1, :], kc, vc)
    # 3. inter-chunk recurrence: S_c = L_c[C, 0] S_{c-1} + local_c, itself a first-order glr_scan
    S = _chunk_recurrence(local, L[..., -1, 0])
    # 4. state to output: o_i += L[i, 0] q_i^T S_{c-1}
    o = o + torch.einsum("bhcid,bhcdv,bhci->bhciv", qc, S, L[..., 1:, 0])
    return o.permute(0, 2, 3, 1, 4).reshape(B, nc * C, H, -1)[:, :T]


def _chunk_recurrence(local: Tensor, decay: Tensor) -> Tensor:
    """States entering each chunk, ``S_{c-1}`` (zero for c = 0), from ``S_c = decay_c S_{c-1} + local_c``."""
    B, H, nc, dk, dv = local.shape
    tables = _first_order_tables(nc)
    u = local.permute(0, 2, 1, 3, 4).reshape(B, nc, H, dk * dv)
    ones = torch.ones((B, nc, H, 1), dtype=local.dtype, device=local.device)
    S = glr_scan(u, ones, decay.transpose(1, 2).unsqueeze(-1), tables)
    S = torch.nn.functional.pad(S, (0, 0, 0, 0, 1, 0))[:, :nc]                         # shift: S_{c-1}
    return S.view(B, nc, H, dk, dv).transpose(1, 2)


@functools.lru_cache(maxsize=64)
def _first_order_tables(n: int) -> IndexTables:
    idx = np.arange(n, dtype=np.int32)
    return IndexTables(idx[:, None], (idx - 1)[:, None])


def glr_readout(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, tables, *,
                chunk: int | None = None) -> Tensor:
    """Readout ``o_t = q_t^T H_t`` of the matrix states ``H = (I - B)^{-1} A U``, ``u_s = k_s v_s^T``,
    without materializing them (module docstring); differentiable in q, k, v, a and b.

    Parameters
    ----------
    q, k : Tensor ``[B, T, H, d_k]``
    v : Tensor ``[B, T, H, d_v]``
    a, b : Tensor ``[B, T, H, wa]``, ``[B, T, H, wb]``
        Coefficients aligned with the tables' slots (padded slots ignored); batch and heads may be 1.
    tables : IndexTables or (a_idx, b_idx)
        ``Pattern.tables(T)``.
    chunk : int, optional
        Chunk / tile length C (default ``DEFAULT_CHUNK``; for tiled mixing the multiple of it that
        keeps a tile ``B * H * T * C`` within ``TILE_ELEMENTS``).

    Returns
    -------
    Tensor ``[B, T, H, d_v]`` in q's dtype.

    Raises
    ------
    GLRError
        Shapes, dtypes or devices that disagree (named), bad tables, a bad chunk.

    Notes
    -----
    ``readout_algorithm(tables)`` says which algorithm runs: ``O(T)`` work for the first-order pattern,
    ``O(T w)`` when B is empty (w: A's widest row span), ``O(T^2)`` otherwise; memory ``O(T (d_k + d_v))``
    per head plus one block of at most ``T x C`` (``d_k x d_v`` per chunk for the first order).
    """
    tables = IndexTables.coerce(tables)
    T = tables.n
    for x, name in ((q, "q"), (k, "k"), (v, "v"), (a, "a"), (b, "b")):
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise GLRError(f"{name} must be a 4-d tensor [batch, T, heads, dim], got "
                           f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if x.dtype != q.dtype or x.device != q.device:
            raise GLRError(f"{name} is {x.dtype} on {x.device} but q is {q.dtype} on {q.device}; pass one "
                           f"dtype and device")
    B, _, H, dk = q.shape
    if q.shape[1] != T or k.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise GLRError(f"q, k, v must be [batch, T={T}, heads, d] with the tables' T and equal batch, T, heads "
                       f"(q, k also equal d_k), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    C = min(DEFAULT_CHUNK if chunk is None else check_integer(chunk, "chunk", 1), T)
    algorithm = readout_algorithm(tables)[0]
    if chunk is None and algorithm == "tiled_mixing":
        C = min(T, max(1, TILE_ELEMENTS // (B * H * T * DEFAULT_CHUNK)) * DEFAULT_CHUNK)
    for x, w, name in ((a, tables.a_idx.shape[1], "a"), (b, tables.b_idx.shape[1], "b")):
        if x.shape[1] != T or x.shape[3] != w or x.shape[0] not in (1, B) or x.shape[2] not in (1, H):
            raise GLRError(f"{name} must have shape [batch={B}, T={T}, heads={H}, {name}_idx width={w}] (batch "
                           f"and heads may be 1), got {tuple(x.shape)}")
    a, b = (x.expand(B, T, H, x.shape[3]) for x in (a, b))
    if algorithm == "chunked_first_order":
        if b.shape[3] == 0:                                       # T = 1: B is empty
            b = a.new_zeros(B, T, H, 1)
        return _chunked_first_order(q, k, v, a, b, C)
    block = direct_block if algorithm == "direct" else tile
    return Blockwise.apply(block, q, k, v, a.contiguous(), b.contiguous(), tables, C)
