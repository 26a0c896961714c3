"""CHACAL: the resolvent of a causal attention matrix, ``Y = (1 - gamma) A (I - gamma A)^{-1} V``.

With ``A`` causal and row-stochastic, ``A`` and ``(I - gamma A)^{-1}`` commute, so
``(I - gamma A) Y = (1 - gamma) A V``; dividing row t by ``d_t = 1 - gamma A[t, t]`` (> 0 for gamma < 1)
gives the framework's form ``Y = A' V + B' Y`` with

    A'[t, s] = (1 - gamma) A[t, s] / d_t   (s <= t),     B'[t, s] = gamma A[t, s] / d_t   (s < t),

on the pattern ``attention+exponent:1`` (dense A, dense strictly lower B): both carry the data.

At gamma = 1 the resolvent is the limit gamma -> 1, which exists row by row: where ``A[t, t] < 1``,
``A'[t] = 0`` and ``B'[t, s] = A[t, s] / (1 - A[t, t])``; where ``A[t, t] = 1`` (row 0 always) the row of
A is ``e_t`` and ``(1 - gamma) / (1 - gamma) = 1`` gives ``Y_t = V_t``: ``A'[t, t] = 1``, ``B'[t] = 0``.
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from ..recurrence import solve, table_coefficients
from ._arrays import as_float64, check_shape, check_size, like

SPEC = "attention+exponent:1"
#: Tolerance on the row sums of ``attn`` (row-stochastic check).
ROW_SUM_TOL = 1e-4


def chacal(attn, v, gamma):
    """``Y = (1 - gamma) A (I - gamma A)^{-1} V`` for causal row-stochastic attention ``A``.

    attn ``[B, H, T, T]`` (rows t, columns s; zero above the diagonal, rows summing to 1, e.g. causal
    softmax attention probabilities), v ``[B, T, H, V]``,
    gamma in (0, 1]: a float or one per head ``[H]`` (gamma = 1 is the limit gamma -> 1).
    Returns Y ``[B, T, H, V]``.
    """
    A = as_float64(attn, "attn", 4)
    va = as_float64(v, "v", 4)
    B, H, T, T2 = A.shape
    if T != T2:
        raise GLRError(f"attn must have shape [B, H, T, T], got {A.shape}")
    check_shape(va, "v", (B, T, H, va.shape[3]), "[B, T, H, V]")
    g = as_float64(gamma, "gamma")
    if g.ndim > 1 or (g.ndim == 1 and g.shape != (H,)):
        raise GLRError(f"gamma must be a number or one per head [H] = ({H},), got shape {g.shape}")
    if np.any((g <= 0) | (g > 1)):
        raise GLRError(f"gamma must lie in (0, 1], got {g.tolist()}")
    if np.triu(A, 1).any():
        raise GLRError("attn must be causal: entries above the diagonal must be 0")
    if (A < 0).any():
        raise GLRError("attn must be non-negative (row-stochastic)")
    worst = float(np.abs(A.sum(axis=-1) - 1).max())
    if worst > ROW_SUM_TOL:
        raise GLRError(f"attn rows must sum to 1 (row-stochastic); worst deviation {worst:.3g}")
    check_size(3 * B * H * T * T, f"the dense A and B of {B}x{H} heads at T={T}")
    g = np.broadcast_to(g, (H,))[None, :, None, None]
    d = 1 - g * np.diagonal(A, axis1=-2, axis2=-1)[..., :, None]
    absorbing = d == 0                      # gamma = 1 and A[t, t] = 1: the limit is Y_t = V_t
    d = np.where(absorbing, 1.0, d)
    direct = np.where(absorbing & (np.eye(T) == 1), 1.0, (1 - g) * A / d)
    p = Pattern.from_spec(SPEC)
    a, b = table_coefficients(*p.tables(T), direct, np.tril(g * A / d, -1))
    y = solve(p, a, b, va.transpose(0, 2, 1, 3))
    return like(y.transpose(0, 2, 1, 3), v)
