"""Log-linear attention (Guo et al. 2025; fla ``log_linear_attn``): Fenwick-tree levels of the prefix.

``o_t = scale * sum_{s <= t} exp(G_t - G_s) lambda_t^{l(t,s)} (q_t . k_s) v_s`` with ``G = cumsum(g)`` and the
level ``l(t, s) = bitlength(t XOR s)`` (0 when s = t). For l >= 1 the bucket ``{s : l(t, s) = l}`` is the
first half of the aligned block of size 2^l holding t, and it is non-empty iff bit l-1 of t is set.

The query-dependent ``lambda_t`` rules out one scalar recurrence on output states (its pure-recurrence
factor ``B = I - D M^{-1}`` is dense; see ``INEXPRESSIBLE``). The exact framework form keeps one state per
level, each a first-order recurrence (pattern ``ssm``, L = ceil(log2 T) + 1 levels, O(log T) states):

    h^l_t = a^l_t k_t v_t^T + b^l_t h^l_{t-1},   a^l_t = [bit l-1 of t is 0],   b^l_t = exp(g_t) [2^l does not divide t]

(level 0: ``h^0_t = k_t v_t^T``), which accumulates the first half of each aligned 2^l block and carries
it, decayed, through the second half. The readout is ``o_t = scale q_t^T sum_l w^l_t h^l_t`` with
``w^l_t = lambda_t^l [bit l-1 of t is 1]``. B carries the data (the gates); A holds fixed level masks.
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..recurrence import readout
from ._arrays import as_float64, check_shape, check_size, head_groups, like, scale_or_default
from ._recurrent import first_order


def levels(T: int) -> int:
    """Number of Fenwick levels at length T: ``ceil(log2 T) + 1`` (level 0 is the token itself)."""
    return (T - 1).bit_length() + 1


def level_masks(T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, carry, read)``, each ``[L, T]`` float 0/1: ``a^l_t = [bit l-1 of t is 0]``, ``carry^l_t =
    [2^l does not divide t]`` (b^l_t = exp(g_t) carry^l_t), ``read^l_t = [bit l-1 of t is 1]``; level 0 is
    ``a = read = 1``, ``carry = 0``."""
    t = np.arange(T)
    lv = np.arange(levels(T))[:, None]
    second_half = (lv > 0) & (((t >> np.maximum(lv - 1, 0)) & 1) == 1)
    carry = (lv > 0) & (t % (2 ** lv) != 0)
    return (~second_half).astype(float), carry.astype(float), ((lv == 0) | second_half).astype(float)


def log_linear_attention(q, k, v, g, level_scales, scale=None):
    """fla's ``naive_log_linear_attn``: q, k ``[B, T, G, K]``, v ``[B, T, H, V]`` (H a multiple of G),
    g ``[B, T, H]`` log-decays, level_scales ``[B, T, H, L]`` with ``L >= ceil(log2 T) + 1`` (extra levels
    are unused). Returns o ``[B, T, H, V]``."""
    qa, ka, va = as_float64(q, "q", 4), as_float64(k, "k", 4), as_float64(v, "v", 4)
    ga, la = as_float64(g, "g", 3), as_float64(level_scales, "level_scales", 4)
    B, T, G, K = qa.shape
    H, V = va.shape[2:]
    check_shape(ka, "k", qa.shape, "[B, T, G, K]")
    check_shape(va, "v", (B, T, H, V), "[B, T, H, V]")
    check_shape(ga, "g", (B, T, H), "[B, T, H]")
    L = levels(T)
    if la.shape[:3] != (B, T, H) or la.shape[3] < L:
        raise GLRError(f"level_scales must have shape [B, T, H, L] = ({B}, {T}, {H}, >= {L}) at T={T}, "
                       f"got {la.shape}")
    rep = head_groups(H, G, "v and q/k")
    qh, kh = (np.repeat(x, rep, axis=2) for x in (qa, ka))
    check_size(B * H * L * T * K * V, f"{L} level states of {B}x{H} heads at T={T}")
    a, carry, read = level_masks(T)
    u = np.einsum("bthk,bthv->bhtkv", kh, va).reshape(B, H, 1, T, K * V)
    decay = np.exp(ga).transpose(0, 2, 1)[:, :, None, :]         # [B, H, 1, T]
    h = first_order(a, decay * carry, u)                         # [B, H, L, T, K*V]
    w = la[..., :L].transpose(0, 2, 3, 1) * read                 # [B, H, L, T]
    state = np.einsum("bhlt,bhltd->bhtd", w, h)
    o = readout(state, scale_or_default(scale, K) * qh.transpose(0, 2, 1, 3))
    return like(o.transpose(0, 2, 1, 3), v)
