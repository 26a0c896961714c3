"""The first-order recurrence shared by the linear-attention and SSM entries, through ``glrtheory.solve``.

Pattern ``ssm``: ``A(t) = {t}``, ``B(t) = {t-1}``, so ``h_t = a_t u_t + b_t h_{t-1}`` (docs/mathematics.md).
An initial state ``h_{-1}`` enters as one extra input position in front (``a = 1``, no past), so the
framework computes it too; its state is dropped from the result.
"""
from __future__ import annotations

import numpy as np

from ..patterns import Pattern
from ..recurrence import readout, solve
from ._arrays import check_size

SSM = "ssm"


def first_order(a: np.ndarray, b: np.ndarray, u: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """States ``h_t = a_t u_t + b_t h_{t-1}`` (``h_{-1} = initial`` or 0): a, b ``[..., T]``, u ``[..., T, d]``."""
    batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1], u.shape[:-2])
    check_size(int(np.prod(batch)) * u.shape[-2] * u.shape[-1], f"states of shape {batch + u.shape[-2:]}")
    if initial is not None:
        d = u.shape[-1]
        batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1], u.shape[:-2], initial.shape[:-1])
        u = np.concatenate([np.broadcast_to(initial[..., None, :], batch + (1, d)),
                            np.broadcast_to(u, batch + u.shape[-2:])], axis=-2)
        a = np.concatenate([np.ones(batch + (1,)), np.broadcast_to(a, batch + a.shape[-1:])], axis=-1)
        b = np.concatenate([np.zeros(batch + (1,)), np.broadcast_to(b, batch + b.shape[-1:])], axis=-1)
    # the ssm tables: a_idx[t] = [t], b_idx[t] = [t-1] (padded at t = 0; no B-slot at all when n = 1)
    p = Pattern.from_spec(SSM)
    wb = p.tables(u.shape[-2])[1].shape[1]
    h = solve(p, a[..., None], b[..., None][..., :wb], u)
    return h if initial is None else h[..., 1:, :]


def matrix_state(q, k, v, a, b, scale: float, initial_state=None):
    """Decayed outer-product state ``S_t = b_t S_{t-1} + a_t k_t v_t^T`` read out as ``o_t = scale q_t^T S_t``.

    q, k ``[B, T, H, K]``, v ``[B, T, H, V]``, a, b ``[B, H, T]``, initial_state ``[B, H, K, V]``.
    The framework's input is ``u_t = vec(k_t v_t^T)`` (K x V, row-major); the readout views h_t as K x V.
    Returns ``o [B, T, H, V]`` and the final state ``[B, H, K, V]``.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    check_size(B * H * T * K * V, f"the K x V states of {B}x{H} heads over T={T}")
    u = np.einsum("bthk,bthv->bhtkv", k, v).reshape(B, H, T, K * V)
    init = None if initial_state is None else initial_state.reshape(B, H, K * V)
    h = first_order(a, b, u, init)
    o = readout(h, scale * q.transpose(0, 2, 1, 3))
    return o.transpose(0, 2, 1, 3), h[:, :, -1].reshape(B, H, K, V)
