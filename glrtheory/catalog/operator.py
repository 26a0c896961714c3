"""Operator-valued coefficients: B-coefficients that are K x K matrices acting on the key dimension of a
K x V state, which is what the delta rule needs (the scalar framework is the case ``B[t,s] = b[t,s] I``):

    H_t = sum_{s in A(t)} a[t, s] U_s + sum_{s in B(t)} Bop[t, s] H_s,     H_s, U_s in R^{K x V}.

``solve_operator`` is its float64 token-by-token reference on any pattern (tables as in ``glrtheory.solve``).
DeltaNet: pattern ``ssm``, ``U_t = k_t v_t^T``, ``a_t = beta_t``, ``Bop_t = I - beta_t k_t k_t^T``;
Gated DeltaNet multiplies ``Bop_t`` by ``exp(g_t)``. Both A and B carry the data.
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from ..recurrence import readout, prepare
from ._arrays import as_float64, check_finite, check_shape, check_size, like, qkv, scale_or_default


def solve_operator(pattern: Pattern, a, b_op, u) -> np.ndarray:
    """States ``H = (I - Bop)^{-1} A U`` with scalar ``a[..., n, wa]``, operator ``b_op[..., n, wb, K, K]``
    and ``u[..., n, K, V]``, token by token in float64; padded slots (index -1) are ignored."""
    u = as_float64(u, "u")
    b_op = as_float64(b_op, "b_op", finite=False)
    if u.ndim < 3:
        raise GLRError(f"u must have shape [..., n, K, V], got {u.shape}")
    n, K, V = u.shape[-3:]
    a, _, _, a_idx, b_idx = prepare(pattern, a, np.zeros(pattern.tables(n)[1].shape),
                                    u.reshape(u.shape[:-2] + (K * V,)))
    if b_op.ndim < 4 or b_op.shape[-4:] != b_idx.shape + (K, K):
        raise GLRError(f"b_op must have shape [..., {n}, {b_idx.shape[1]}, {K}, {K}] to match the index table of "
                       f"{pattern.spec!r} and the state, got {b_op.shape}")
    check_finite(b_op, "b_op", np.broadcast_to((b_idx >= 0)[:, :, None, None], b_op.shape))
    batch = np.broadcast_shapes(a.shape[:-2], b_op.shape[:-4], u.shape[:-3])
    check_size(int(np.prod(batch)) * n * max(K * V, b_idx.shape[1] * K * K), "operator-valued states")
    u = np.broadcast_to(u, batch + (n, K, V))
    a = np.where(a_idx >= 0, a, 0.0)
    b_op = np.where((b_idx >= 0)[:, :, None, None], b_op, 0.0)
    h = np.zeros(batch + (n, K, V))
    for t in range(n):
        ia, ib = np.maximum(a_idx[t], 0), np.maximum(b_idx[t], 0)
        h[..., t, :, :] = (np.einsum("...j,...jkv->...kv", a[..., t, :], u[..., ia, :, :])
                           + np.einsum("...jkl,...jlv->...kv", b_op[..., t, :, :, :], h[..., ib, :, :]))
    return h


def _delta(q, k, v, beta, gate, scale, initial_state, output_final_state):
    qa, ka, va = qkv(q, k, v)
    B, T, H, K = qa.shape
    V = va.shape[3]
    check_size(B * H * T * K * max(K, V), f"delta-rule operators of {B}x{H} heads at T={T}")
    ba = as_float64(beta, "beta", 3)
    check_shape(ba, "beta", (B, T, H), "[B, T, H]")
    kh, bh = ka.transpose(0, 2, 1, 3), ba.transpose(0, 2, 1)                    # [B, H, T, K], [B, H, T]
    u = np.einsum("bhtk,bhtv->bhtkv", kh, va.transpose(0, 2, 1, 3))
    b_op = gate[..., None, None] * (np.eye(K) - bh[..., None, None] * kh[..., :, None] * kh[..., None, :])
    a = bh
    if initial_state is not None:                                             # h_{-1} as a leading input
        s0 = as_float64(initial_state, "initial_state", 4)
        check_shape(s0, "initial_state", (B, H, K, V), "[B, H, K, V]")
        u = np.concatenate([s0[:, :, None], u], axis=2)
        a = np.concatenate([np.ones((B, H, 1)), a], axis=2)
        b_op = np.concatenate([np.zeros((B, H, 1, K, K)), b_op], axis=2)
    p = Pattern.from_spec("ssm")
    wb = p.tables(u.shape[2])[1].shape[1]
    h = solve_operator(p, a[..., None], b_op[:, :, :, None][:, :, :, :wb], u)
    h = h[:, :, -T:]
    o = readout(h.reshape(B, H, T, K * V), scale_or_default(scale, K) * qa.transpose(0, 2, 1, 3))
    return like(o.transpose(0, 2, 1, 3), q), (like(h[:, :, -1], q) if output_final_state else None)


def delta_net(q, k, v, beta, scale=None, initial_state=None, output_final_state=False):
    """DeltaNet (fla ``chunk_delta_rule`` / ``delta_rule_recurrence``, keys used as given):
    ``S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``, ``o_t = scale q_t^T S_t``.
    q, k ``[B, T, H, K]``, v ``[B, T, H, V]``, beta ``[B, T, H]``. Returns ``(o, final_state)``."""
    no_gate = np.ones(as_float64(beta, "beta", 3).shape).transpose(0, 2, 1)
    return _delta(q, k, v, beta, no_gate, scale, initial_state, output_final_state)


def gated_delta_net(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """Gated DeltaNet (fla ``chunk_gated_delta_rule``): ``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1}
    + beta_t k_t v_t^T``; g ``[B, T, H]`` log-decays. Returns ``(o, final_state)``."""
    ga = as_float64(g, "g", 3)
    check_shape(ga, "g", as_float64(beta, "beta", 3).shape, "[B, T, H]")
    return _delta(q, k, v, beta, np.exp(ga).transpose(0, 2, 1), scale, initial_state, output_final_state)
