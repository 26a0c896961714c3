"""Linear attention and its gated descendants (fla's ``linear_attn``, ``retention``, ``simple_gla``, ``gla``).

All keep a matrix state per head, ``S_t = decay_t * S_{t-1} + k_t v_t^T`` (K x V), and read out
``o_t = scale * q_t^T S_t``. In the framework (pattern ``ssm``): ``u_t = vec(k_t v_t^T)``, ``a_t = 1``,
``b_t = decay_t`` and the readout q. Where the decay lives:

* ``linear_attention``: ``b_t = 1`` (no data in A or B: the data enter through u and q only);
* ``retention``: ``b_t = gamma_h``, fixed per head (LTI);
* ``simple_gla``: ``b_t = exp(g_t)``, one data-dependent gate per head and step (data in B);
* ``gla``: ``S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T`` with one gate per key dimension: row i of the
  state is its own first-order recurrence ``h^i_t = k_t[i] v_t + exp(g_t[i]) h^i_{t-1}`` (data in A and
  B), and the readout ``o_t = scale * sum_i q_t[i] h^i_t`` views the K rows as the K x V state.

Every function returns ``(o, final_state)`` like fla, final_state ``[B, H, K, V]`` or None.
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..recurrence import readout
from ._arrays import as_float64, check_shape, like, qkv, scale_or_default
from ._recurrent import first_order, matrix_state


def _initial(initial_state, qa, va):
    if initial_state is None:
        return None
    s = as_float64(initial_state, "initial_state", 4)
    B, _, H, K = qa.shape
    check_shape(s, "initial_state", (B, H, K, va.shape[3]), "[B, H, K, V]")
    return s


def _result(o, final, q, output_final_state: bool):
    return like(o, q), (like(final, q) if output_final_state else None)


def _scalar_decay(q, k, v, decay, scale, initial_state, output_final_state):
    """Shared path: decay ``[B, H, T]`` (or broadcastable), a = 1."""
    qa, ka, va = qkv(q, k, v)
    B, T, H, K = qa.shape
    decay = np.broadcast_to(decay, (B, H, T))
    o, final = matrix_state(qa, ka, va, np.ones((B, H, T)), decay, scale_or_default(scale, K),
                            _initial(initial_state, qa, va))
    return _result(o, final, q, output_final_state)


def linear_attention(q, k, v, scale=None, initial_state=None, output_final_state=False):
    """Unnormalized causal linear attention: ``S_t = S_{t-1} + k_t v_t^T``, ``o_t = scale q_t^T S_t``.

    q, k ``[B, T, H, K]``, v ``[B, T, H, V]``, initial_state ``[B, H, K, V]`` (fla ``chunk_linear_attn``).
    """
    return _scalar_decay(q, k, v, 1.0, scale, initial_state, output_final_state)


def retnet_gammas(heads: int) -> np.ndarray:
    """fla's ``chunk_retention`` decays ``gamma_h = 1 - 2^(-5 - h)``, h = 0..H-1."""
    return 1 - 2.0 ** (-5.0 - np.arange(heads))


def retention(q, k, v, gamma=None, scale=None, initial_state=None, output_final_state=False):
    """RetNet retention: ``S_t = gamma_h S_{t-1} + k_t v_t^T``, ``o_t = scale q_t^T S_t``.

    gamma: a number or one per head ``[H]``, each in (0, 1]; None gives fla's ``retnet_gammas(H)``.
    """
    H = as_float64(q, "q", 4).shape[2]
    g = retnet_gammas(H) if gamma is None else as_float64(gamma, "gamma")
    if g.ndim > 1 or (g.ndim == 1 and g.shape != (H,)):
        raise GLRError(f"gamma must be a number or one per head [H] = ({H},), got shape {g.shape}")
    if np.any((g <= 0) | (g > 1)):
        raise GLRError(f"gamma must lie in (0, 1], got {np.atleast_1d(g).tolist()}")
    return _scalar_decay(q, k, v, np.broadcast_to(g, (H,))[:, None], scale, initial_state,
                         output_final_state)


def simple_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False):
    """Scalar-gated linear attention (fla ``chunk_simple_gla``; the SSD / Mamba-2 family in attention form).

    ``S_t = exp(g_t) S_{t-1} + k_t v_t^T`` with g ``[B, T, H]`` the log-decay per head and step.
    """
    qa = as_float64(q, "q", 4)
    ga = as_float64(g, "g", 3)
    check_shape(ga, "g", qa.shape[:3], "[B, T, H]")
    return _scalar_decay(q, k, v, np.exp(ga).transpose(0, 2, 1), scale, initial_state, output_final_state)


def gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False):
    """Gated linear attention with per-key gates (fla ``chunk_gla`` / ``naive_recurrent_gla``).

    ``S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T``, ``o_t = scale q_t^T S_t``; g ``[B, T, H, K]``.
    """
    qa, ka, va = qkv(q, k, v)
    ga = as_float64(g, "g", 4)
    check_shape(ga, "g", qa.shape, "[B, T, H, K]")
    B, T, H, K = qa.shape
    V = va.shape[3]
    s0 = _initial(initial_state, qa, va)
    # batch [B, H, K]: row i of the state, u = v_t, a_t = k_t[i], b_t = exp(g_t[i])
    h = first_order(ka.transpose(0, 2, 3, 1), np.exp(ga).transpose(0, 2, 3, 1),
                    va.transpose(0, 2, 1, 3)[:, :, None], s0)
    state = h.transpose(0, 1, 3, 2, 4).reshape(B, H, T, K * V)        # h_t as the K x V matrix
    o = readout(state, scale_or_default(scale, K) * qa.transpose(0, 2, 1, 3))
    return _result(o.transpose(0, 2, 1, 3), h[:, :, :, -1], q, output_final_state)
