"""Long convolutions (S4 convolution mode, Hyena filters): a Toeplitz A and no recurrence.

``y_t[d] = sum_{j=0}^{min(t, L-1)} kernel[d, j] u_{t-j}[d]``: the framework's ``a[t, s] = kernel[d, t-s]``
depends on the lag only (LTI, no data dependence), on the pattern ``window:L`` when the filter is shorter
than the sequence (an FIR filter) and ``attention`` otherwise; B is empty.
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from ..recurrence import solve
from ._arrays import as_float64, check_size, like


def long_conv(u, kernel):
    """Causal per-channel convolution, fla ``LongConvolution`` layout: u ``[B, T, D]``, kernel ``[D, L]``.

    Returns y ``[B, T, D]`` (no residual, no activation: the token mixer only).
    """
    ua, ka = as_float64(u, "u", 3), as_float64(kernel, "kernel", 2)
    _, T, D = ua.shape
    if ka.shape[0] != D or ka.shape[1] < 1:
        raise GLRError(f"kernel must have shape [D, L] with D = {D} and L >= 1, got {ka.shape}")
    L = ka.shape[1]
    p = Pattern.from_spec(f"window:{L}" if L < T else "attention")
    a_idx, b_idx = p.tables(T)
    check_size(max(D, ua.shape[0] * D) * a_idx.size, f"the Toeplitz coefficients of {D} channels at T={T}")
    lag = np.arange(T)[:, None] - a_idx                          # t - s for every slot
    a = np.where(a_idx >= 0, ka[:, np.where(a_idx >= 0, lag, 0)], 0.0)   # [D, T, w]
    y = solve(p, a, np.zeros(b_idx.shape), ua.transpose(0, 2, 1)[..., None])
    return like(y[..., 0].transpose(0, 2, 1), u)
