"""Multi-lag linear attention: the translation-invariant multi-lag patterns with data-dependent coefficients.

    S_t = beta_t k_t v_t^T + sum_{j : l_j <= t} exp(g_t[j]) S_{t - l_j},     o_t = scale q_t^T S_t

for the lag set ``l_0 < l_1 < ...`` of a translation-invariant pattern with ``A(t) = {t}``: ``power2``
(lags 2^k, O(log t) per token), ``quadratic`` (k^2 + 1, O(sqrt t)), ``power:b``, ``exponent:alpha``,
``lags:...``. ``u_t = vec(k_t v_t^T)``; a carries beta, b carries the per-lag gates (data in A and B).
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from ..recurrence import readout, solve
from ._arrays import as_float64, check_shape, check_size, like, qkv, scale_or_default


def lag_set(lags, T: int) -> np.ndarray:
    """The B-lags of a translation-invariant diagonal-A pattern that are <= T-1 (sorted)."""
    p = lags if isinstance(lags, Pattern) else Pattern.from_spec(lags)
    sa, sb = p.support_a(T), p.support_b(T)
    if sa.lags is None or sa.lags.tolist() != [0] or sb.lags is None:
        raise GLRError(f"multi_lag needs a translation-invariant pattern with A(t) = {{t}}, got {p.spec!r}")
    return sb.lags


def multi_lag(q, k, v, g, lags="power2", beta=None, scale=None):
    """Multi-lag gated linear attention. q, k ``[B, T, H, K]``, v ``[B, T, H, V]``, g ``[B, T, H, L]``:
    log-gate of lag ``l_j`` in slot j (L >= the number of lags <= T-1 of the pattern; extra slots unused),
    beta ``[B, T, H]`` input gate (default 1), lags a spec or Pattern. Returns o ``[B, T, H, V]``."""
    qa, ka, va = qkv(q, k, v)
    B, T, H, K = qa.shape
    V = va.shape[3]
    ls = lag_set(lags, T)
    p = lags if isinstance(lags, Pattern) else Pattern.from_spec(lags)
    ga = as_float64(g, "g", 4)
    if ga.shape[:3] != (B, T, H) or ga.shape[3] < ls.size:
        raise GLRError(f"g must have shape [B, T, H, L] = ({B}, {T}, {H}, >= {ls.size}) for the lags "
                       f"{ls.tolist()} of {p.spec!r} at T={T}, got {ga.shape}")
    ba = np.ones((B, T, H)) if beta is None else as_float64(beta, "beta", 3)
    check_shape(ba, "beta", (B, T, H), "[B, T, H]")
    a_idx, b_idx = p.tables(T)
    check_size(B * H * T * max(K * V, b_idx.shape[1]), f"multi-lag states and gates of {B}x{H} heads at T={T}")
    slot = np.searchsorted(ls, np.arange(T)[:, None] - b_idx)     # lag index of every B-slot
    slot = np.where(b_idx >= 0, slot, 0)
    b = np.exp(np.take_along_axis(ga.transpose(0, 2, 1, 3), np.broadcast_to(slot, (B, H) + slot.shape), -1))
    u = np.einsum("bthk,bthv->bhtkv", ka, va).reshape(B, H, T, K * V)
    h = solve(p, ba.transpose(0, 2, 1)[..., None], b, u)
    o = readout(h, scale_or_default(scale, K) * qa.transpose(0, 2, 1, 3))
    return like(o.transpose(0, 2, 1, 3), q)
