"""Selective state-space models: Mamba-2 (SSD) and the Mamba-1 / S4D diagonal SSM.

Both are first-order recurrences (pattern ``ssm``) whose coefficients carry the data in A and B:

* ``mamba2``: per head, ``H_t = exp(dt_t A) H_{t-1} + dt_t B_t x_t^T`` (state N x P), ``y_t = H_t^T C_t + D x_t``:
  ``u_t = vec(B_t x_t^T)``, ``a_t = dt_t``, ``b_t = exp(dt_t A)``, readout ``C_t``;
* ``diagonal_ssm``: per channel d and state index n, ``h_t = exp(delta_t A[d,n]) h_{t-1} + delta_t B_t[n] u_t``,
  ``y_t = sum_n C_t[n] h_t + D u_t``: every (d, n) is a scalar recurrence with ``u_t = u_t[d]``,
  ``a_t = delta_t[d] B_t[n]``, ``b_t = exp(delta_t[d] A[d, n])``; the readout sums over n.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..errors import GLRError
from ._arrays import as_float64, check_shape, head_groups, like
from ._recurrent import first_order, matrix_state


def _nonpositive(x: np.ndarray, name: str) -> None:
    if (x > 0).any():
        raise GLRError(f"{name} must be <= 0 (a decay rate), got a positive entry {float(x.max())}")


def _step(dt: np.ndarray, bias, softplus: bool, name: str, size: int, axis: int) -> np.ndarray:
    """The step size ``dt + bias`` (bias ``[size]`` along ``axis``), through softplus when asked; >= 0."""
    if bias is not None:
        bias = as_float64(bias, f"{name}_bias", 1)
        check_shape(bias, f"{name}_bias", (size,), f"[{size}]")
        dt = dt + np.expand_dims(bias, tuple(range(1, -axis)))
    if softplus:
        dt = np.logaddexp(0.0, dt)
    if (dt < 0).any():
        raise GLRError(f"{name} must be >= 0 (a step size, e.g. after softplus), got {float(dt.min())}")
    return dt


def _gate(y: np.ndarray, z, labels: str) -> np.ndarray:
    """``y * silu(z)`` (the output gate of Mamba), or y when z is None."""
    if z is None:
        return y
    za = as_float64(z, "z", y.ndim)
    check_shape(za, "z", y.shape, labels)
    return y * za * expit(za)


def mamba2(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, initial_states=None,
           return_final_states=False):
    """Mamba-2 SSD (``mamba_chunk_scan_combined`` / ``ssd_minimal_discrete`` semantics).

    x ``[b, l, h, p]``, dt ``[b, l, h]`` (>= 0 after ``dt + dt_bias`` and the optional softplus), A ``[h]``
    (<= 0), B, C ``[b, l, g, n]`` (h a multiple of the g groups), D ``[h]`` or ``[h, p]``, z ``[b, l, h, p]``
    (output gate ``silu(z)``), dt_bias ``[h]``, initial_states ``[b, h, p, n]``. Returns y ``[b, l, h, p]``,
    or ``(y, final_states [b, h, p, n])`` when return_final_states.
    """
    xa, dta, Aa = as_float64(x, "x", 4), as_float64(dt, "dt", 3), as_float64(A, "A", 1)
    Ba, Ca = as_float64(B, "B", 4), as_float64(C, "C", 4)
    b, l, h, p = xa.shape
    g, n = Ba.shape[2:]
    check_shape(dta, "dt", (b, l, h), "[b, l, h]")
    check_shape(Aa, "A", (h,), "[h]")
    check_shape(Ba, "B", (b, l, g, n), "[b, l, g, n]")
    check_shape(Ca, "C", (b, l, g, n), "[b, l, g, n]")
    rep = head_groups(h, g, "B and C")
    dta = _step(dta, dt_bias, dt_softplus, "dt", h, -1)
    _nonpositive(Aa, "A")
    init = None
    if initial_states is not None:
        init = as_float64(initial_states, "initial_states", 4)
        check_shape(init, "initial_states", (b, h, p, n), "[b, h, p, n]")
        init = init.transpose(0, 1, 3, 2)                       # the framework's state is N x P
    Bh, Ch = (np.repeat(m, rep, axis=2) for m in (Ba, Ca))
    decay = np.exp(dta * Aa).transpose(0, 2, 1)
    y, final = matrix_state(Ch, Bh, xa, dta.transpose(0, 2, 1), decay, 1.0, init)
    if D is not None:
        Da = as_float64(D, "D")
        if Da.shape not in ((h,), (h, p)):
            raise GLRError(f"D must have shape [h] = ({h},) or [h, p] = ({h}, {p}), got {Da.shape}")
        y = y + xa * (Da[:, None] if Da.ndim == 1 else Da)
    y = like(_gate(y, z, "[b, l, h, p]"), x)
    return (y, like(final.transpose(0, 1, 3, 2), x)) if return_final_states else y


def _selective(M: np.ndarray, name: str, b: int, d: int, n: int, l: int) -> np.ndarray:
    """B or C as ``[b, d, n, l]``: constant ``[d, n]``, shared ``[b, n, l]`` or grouped ``[b, g, n, l]``."""
    if M.ndim == 2:
        check_shape(M, name, (d, n), "[d, n]")
        return M[None, :, :, None]
    if M.ndim == 3:
        check_shape(M, name, (b, n, l), "[b, n, l]")
        return M[:, None]
    if M.ndim == 4:
        check_shape(M, name, (b, M.shape[1], n, l), "[b, g, n, l]")
        return np.repeat(M, head_groups(d, M.shape[1], name), axis=1)
    raise GLRError(f"{name} must have shape [d, n], [b, n, l] or [b, g, n, l], got {M.shape}")


def diagonal_ssm(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                 return_last_state=False):
    """Mamba-1 / S4D diagonal SSM with mamba_ssm's ``selective_scan_ref`` signature (real A).

    u, delta ``[b, d, l]``, A ``[d, n]`` (<= 0), B and C ``[d, n]`` (time-invariant, S4D),
    ``[b, n, l]`` or ``[b, g, n, l]`` (selective), D ``[d]``, z ``[b, d, l]`` (output gate ``silu(z)``),
    delta_bias ``[d]``. Returns out ``[b, d, l]``, or ``(out, last_state [b, d, n])``.
    """
    ua, da, Aa = as_float64(u, "u", 3), as_float64(delta, "delta", 3), as_float64(A, "A", 2)
    b, d, l = ua.shape
    n = Aa.shape[1]
    check_shape(da, "delta", (b, d, l), "[b, d, l]")
    check_shape(Aa, "A", (d, n), "[d, n]")
    Bs = _selective(as_float64(B, "B"), "B", b, d, n, l)
    Cs = _selective(as_float64(C, "C"), "C", b, d, n, l)
    da = _step(da, delta_bias, delta_softplus, "delta", d, -2)
    _nonpositive(Aa, "A")
    step = da[:, :, None, :]                                     # [b, d, 1, l]
    h = first_order(step * Bs, np.exp(step * Aa[None, :, :, None]), ua[:, :, None, :, None])[..., 0]
    out = (Cs * h).sum(axis=2)                                   # h: [b, d, n, l]
    if D is not None:
        Da = as_float64(D, "D", 1)
        check_shape(Da, "D", (d,), "[d]")
        out = out + Da[:, None] * ua
    out = like(_gate(out, z, "[b, d, l]"), u)
    return (out, like(h[..., -1], u)) if return_last_state else out
