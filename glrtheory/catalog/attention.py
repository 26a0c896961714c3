"""Softmax attention, full causal and sliding window: pure direct mixing (``B = 0``).

``o_t = sum_{s in A(t)} softmax_s(scale q_t . k_s) v_s`` with ``A(t) = {0..t}`` (pattern ``attention``)
or ``A(t) = {t-W+1..t}`` (pattern ``window:W``, fla's ``window_size``): the data dependence sits in A.
State per head: the value ``h_t = o_t`` in R^V; decoding keeps every key/value in A's reach.
"""
from __future__ import annotations

import numpy as np

from ..checks import check_integer
from ..patterns import Pattern
from ..recurrence import solve
from ._arrays import as_float64, check_shape, check_size, head_groups, like, scale_or_default

def softmax_attention(q, k, v, scale=None):
    """Causal softmax attention (fla ``naive_parallel_attn`` / ``parallel_attn`` layout).

    q ``[B, T, HQ, K]``, k ``[B, T, H, K]``, v ``[B, T, H, V]`` (HQ a multiple of H: grouped queries),
    scale defaults to ``1/sqrt(K)``. Returns o ``[B, T, HQ, V]``. Pattern ``attention``.
    """
    return _attend(q, k, v, "attention", scale)


def sliding_window_attention(q, k, v, window, scale=None):
    """Causal softmax attention over the last ``window`` keys ``[t-window+1, t]`` (fla's ``window_size``).

    Same layout as ``softmax_attention``. Pattern ``window:W``.
    """
    return _attend(q, k, v, f"window:{check_integer(window, 'window', 1)}", scale)


def _attend(q, k, v, spec: str, scale):
    qa, ka, va = as_float64(q, "q", 4), as_float64(k, "k", 4), as_float64(v, "v", 4)
    B, T, HQ, K = qa.shape
    H = ka.shape[2]
    check_shape(ka, "k", (B, T, H, K), "[B, T, H, K]")
    check_shape(va, "v", (B, T, H, va.shape[3]), "[B, T, H, V]")
    groups = head_groups(HQ, H, "q and k")
    scale = scale_or_default(scale, K)
    p = Pattern.from_spec(spec)
    a_idx, b_idx = p.tables(T)
    check_size(B * HQ * a_idx.size * K, "attention over B*HQ*T*|A(t)|*K")
    qh = qa.transpose(0, 2, 1, 3)
    kh, vh = (np.repeat(x, groups, axis=2).transpose(0, 2, 1, 3) for x in (ka, va))
    valid = a_idx >= 0
    logits = scale * np.einsum("bhtk,bhtjk->bhtj", qh, kh[:, :, np.maximum(a_idx, 0)])
    logits = np.where(valid, logits, -np.inf)
    a = np.exp(logits - logits.max(axis=-1, keepdims=True))
    a /= a.sum(axis=-1, keepdims=True)
    h = solve(p, a, np.zeros(b_idx.shape), vh)
    return like(h.transpose(0, 2, 1, 3), q)
