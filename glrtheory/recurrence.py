"""The recurrence core: float64 references for ``H = (I - B)^{-1} A U`` and the universality factorization.

Coefficients are aligned with the index tables of ``Pattern.tables(n)``: ``a[..., n, wa]`` holds
``a[t, a_idx[t, j]]`` in slot j, ``b[..., n, wb]`` likewise; padded slots (index -1) are ignored.
Inputs ``u[..., n, d]``; states ``h[..., n, d]``. Batch dimensions of a, b and u broadcast.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from .checks import check_finite
from .errors import GLRError
from .patterns import Pattern
from .patterns.families import attention, exponent

#: Largest n for dense n x n work (materialized A, B, M and their solves).
DENSE_MAX_N = 4096
#: Largest accepted round-trip error ||(I - B)^{-1} A - M|| / ||M|| of ``factor``.
FACTOR_RTOL = 1e-8


# -- validation ------------------------------------------------------------------------------------
def _as_float64(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise GLRError(f"{name} is not a rectangular numeric array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
                                   or arr.dtype == bool):
        raise GLRError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def prepare(pattern: Pattern, a, b, u, n: int | None = None):
    """Validate ``(a, b, u)`` against the pattern's tables; return float64 arrays and the tables."""
    if not isinstance(pattern, Pattern):
        raise GLRError(f"expected a Pattern, got {type(pattern).__name__}")
    u = _as_float64(u, "u")
    if u.ndim < 2:
        raise GLRError(f"u must have shape [..., n, d], got {u.shape}")
    n = u.shape[-2] if n is None else n
    a_idx, b_idx = pattern.tables(n)
    a = _as_float64(a, "a")
    b = _as_float64(b, "b")
    for arr, idx, name in ((a, a_idx, "a"), (b, b_idx, "b")):
        if arr.ndim < 2 or arr.shape[-2:] != idx.shape:
            raise GLRError(f"{name} must have shape [..., {idx.shape[0]}, {idx.shape[1]}] to match the "
                           f"index table of {pattern.spec!r} at n={n}, got {arr.shape}")
        check_finite(arr, name, np.broadcast_to(idx >= 0, arr.shape))
    if u.shape[-2] != n:
        raise GLRError(f"u has {u.shape[-2]} positions but the coefficients have n={n}")
    check_finite(u, "u")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2], u.shape[:-2])
    except ValueError:
        raise GLRError(f"batch shapes of a {a.shape[:-2]}, b {b.shape[:-2]} and u {u.shape[:-2]} "
                       "do not broadcast") from None
    return a, b, u, a_idx, b_idx


def readout(h: np.ndarray, q) -> np.ndarray:
    """``o_t = q_t^T H_t`` with the state h_t in R^d viewed as a k x (d/k) matrix (k = q's last dim)."""
    q = _as_float64(q, "readout q")
    k, d = q.shape[-1] if q.ndim else 0, h.shape[-1]
    if q.ndim < 2 or q.shape[-2] != h.shape[-2] or k == 0 or d % k:
        raise GLRError(f"readout q must have shape [..., {h.shape[-2]}, k] with k dividing d={d}, got {q.shape}")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], h.shape[:-2])
    except ValueError:
        raise GLRError(f"readout q's batch {q.shape[:-2]} does not broadcast with the states' {h.shape[:-2]}") from None
    if batch != h.shape[:-2]:
        raise GLRError(f"readout q's batch {q.shape[:-2]} would widen the states' {h.shape[:-2]} to {batch}")
    check_finite(q, "readout q")
    hm = h.reshape(h.shape[:-1] + (k, d // k))
    return np.einsum("...tk,...tkv->...tv", q, hm)


def random_coefficients(pattern: Pattern, n: int, rng: np.random.Generator, batch: tuple = (),
                        dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Random table-aligned coefficients that keep the recurrence stable for any n.

    ``a ~ U(0.5, 1.5)``; ``b[t, :] ~ U(-1, 1) / |B(t)|`` so that ``sum_s |b[t, s]| < 1`` and ``|h_t|`` stays
    bounded by ``max |A u|`` (a contraction). Padded slots hold NaN, which every consumer must ignore.
    """
    a_idx, b_idx = pattern.tables(n)
    a = rng.uniform(0.5, 1.5, batch + a_idx.shape)
    width = np.maximum((b_idx >= 0).sum(axis=1, keepdims=True), 1)
    b = rng.uniform(-1.0, 1.0, batch + b_idx.shape) / width
    a[..., a_idx < 0] = np.nan
    b[..., b_idx < 0] = np.nan
    return a.astype(dtype), b.astype(dtype)


# -- references ------------------------------------------------------------------------------------
def solve(pattern: Pattern, a, b, u, q=None, *, method: str = "sequential") -> np.ndarray:
    """States ``h = (I - B)^{-1} A u`` in float64 (and readout ``o_t = q_t^T h_t`` when q is given).

    ``method="sequential"``: token by token, ``h_t = sum_j a[t,j] u[a_idx[t,j]] + sum_j b[t,j] h[b_idx[t,j]]``.
    ``method="dense"``: materialize A and B and solve the unit lower-triangular system with scipy.
    The two agree to about 1e-12 relative.
    """
    if method not in ("sequential", "dense"):
        raise GLRError(f"method must be 'sequential' or 'dense', got {method!r}")
    a, b, u, a_idx, b_idx = prepare(pattern, a, b, u)
    h = (_solve_sequential if method == "sequential" else _solve_dense)(a, b, u, a_idx, b_idx)
    return h if q is None else readout(h, q)


def _solve_sequential(a, b, u, a_idx, b_idx) -> np.ndarray:
    n, d = u.shape[-2:]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2], u.shape[:-2])
    h = np.zeros(batch + (n, d))
    u = np.broadcast_to(u, batch + (n, d))
    a = np.where(a_idx >= 0, a, 0.0)
    b = np.where(b_idx >= 0, b, 0.0)
    for t in range(n):
        ia, ib = np.maximum(a_idx[t], 0), np.maximum(b_idx[t], 0)
        h[..., t, :] = (np.einsum("...j,...jd->...d", a[..., t, :], u[..., ia, :])
                        + np.einsum("...j,...jd->...d", b[..., t, :], h[..., ib, :]))
    return h


def dense_coefficients(a_idx, b_idx, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Scatter table-aligned coefficients into dense ``A[..., n, n]`` and strictly lower ``B[..., n, n]``."""
    n = a_idx.shape[0]
    if n > DENSE_MAX_N:
        raise GLRError(f"dense matrices are limited to n <= {DENSE_MAX_N}, got n={n}")
    out = []
    for idx, c in ((a_idx, a), (b_idx, b)):
        m = np.zeros(c.shape[:-2] + (n, n))
        rows, slots = np.nonzero(idx >= 0)
        m[..., rows, idx[rows, slots]] = c[..., rows, slots]
        out.append(m)
    return out[0], out[1]


def table_coefficients(a_idx, b_idx, A, B) -> tuple[np.ndarray, np.ndarray]:
    """Gather dense ``A``, ``B`` onto the tables (padded slots get 0); the inverse of dense_coefficients."""
    out = []
    for idx, m in ((a_idx, np.asarray(A, float)), (b_idx, np.asarray(B, float))):
        t = np.arange(idx.shape[0])[:, None]
        out.append(np.where(idx >= 0, m[..., t, np.maximum(idx, 0)], 0.0))
    return out[0], out[1]


def _solve_dense(a, b, u, a_idx, b_idx) -> np.ndarray:
    A, B = dense_coefficients(a_idx, b_idx, a, b)
    n = a_idx.shape[0]
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2], u.shape[:-2])
    A, B, u = (np.broadcast_to(x, batch + x.shape[-2:]) for x in (A, B, u))
    h = np.empty(batch + u.shape[-2:])
    eye = np.eye(n)
    for i in np.ndindex(*batch):
        h[i] = scipy.linalg.solve_triangular(eye - B[i], A[i] @ u[i], lower=True, unit_diagonal=True)
    return h


def mixing_matrix(pattern: Pattern, a, b) -> np.ndarray:
    """``M = (I - B)^{-1} A`` (dense, float64) for table-aligned coefficients ``a[..., n, wa]``, ``b``."""
    a = _as_float64(a, "a")
    if a.ndim < 2:
        raise GLRError(f"a must have shape [..., n, wa], got {a.shape}")
    n = a.shape[-2]
    return solve(pattern, a, b, np.eye(n), method="dense")


# -- universality ----------------------------------------------------------------------------------
class Factorization(NamedTuple):
    """A pattern and table-aligned coefficients with ``(I - B)^{-1} A = M``."""

    pattern: Pattern
    a: np.ndarray
    b: np.ndarray


def _check_mixing(M) -> np.ndarray:
    M = _as_float64(M, "M")
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise GLRError(f"M must be a non-empty square matrix, got shape {M.shape}")
    if M.shape[0] > DENSE_MAX_N:
        raise GLRError(f"M is limited to n <= {DENSE_MAX_N}, got n={M.shape[0]}")
    check_finite(M, "M")
    if np.triu(M, 1).any():
        raise GLRError("M must be causal (lower triangular)")
    return M


def factor(M, form: str = "recurrence") -> Factorization:
    """Write a causal mixing matrix M in the framework.

    ``form="recurrence"`` (pure recurrence): ``A = D = diag(M)``, ``B = I - D M^{-1}`` (strictly lower,
    since ``D M^{-1}`` is unit lower triangular); needs a non-zero diagonal.
    ``form="direct"`` (pure direct mixing): ``A = M``, ``B = 0`` (the attention pattern).
    """
    M = _check_mixing(M)
    n = M.shape[0]
    if form == "direct":
        p = attention()
        a_idx, b_idx = p.tables(n)
        a, b = table_coefficients(a_idx, b_idx, M, np.zeros((n, n)))
        return Factorization(p, a, b)
    if form != "recurrence":
        raise GLRError(f"form must be 'recurrence' or 'direct', got {form!r}")
    d = np.diag(M)
    if np.any(d == 0):
        raise GLRError(f"pure recurrence needs a non-zero diagonal; M[{int(np.argmin(np.abs(d)))}, same] = 0")
    with np.errstate(all="ignore"):
        B = np.eye(n) - d[:, None] * scipy.linalg.solve_triangular(M, np.eye(n), lower=True)
    p = exponent(1)  # A(t) = {t}, B(t) = {0, ..., t-1}
    a_idx, b_idx = p.tables(n)
    a, b = table_coefficients(a_idx, b_idx, np.diag(d), np.tril(B, -1))
    check_finite(b, "the recurrence coefficients B = I - D M^{-1} (M is too ill-conditioned)")
    err = np.linalg.norm(mixing_matrix(p, a, b) - M) / np.linalg.norm(M)
    if not err <= FACTOR_RTOL:
        raise GLRError(f"pure recurrence of M is not accurate in float64: round-trip relative error "
                       f"{err:.1e} > {FACTOR_RTOL:g} (M is too ill-conditioned)")
    return Factorization(p, a, b)


# -- fitting a pattern to a target -----------------------------------------------------------------
def mixing_jacobian(pattern: Pattern, a, b) -> np.ndarray:
    """Jacobian of ``(a, b) -> vec(M)``, ``M = (I - B)^{-1} A``, over the non-padded slots.

    ``dM = L (dA + dB M)`` with ``L = (I - B)^{-1}``: for a[t, s] the column is ``L[:, t] e_s^T``,
    for b[t, s] it is ``L[:, t] M[s, :]``. Columns: a's valid slots, then b's, both row-major.
    """
    a = _as_float64(a, "a")
    n = a.shape[-2]
    a_idx, b_idx = pattern.tables(n)
    A, B = dense_coefficients(a_idx, b_idx, *prepare(pattern, a, b, np.eye(n))[:2])
    L = scipy.linalg.solve_triangular(np.eye(n) - B, np.eye(n), lower=True, unit_diagonal=True)
    M = L @ A
    ta, ja = np.nonzero(a_idx >= 0)
    tb, jb = np.nonzero(b_idx >= 0)
    left = L[:, np.concatenate([ta, tb])]                                # [n, ncol]
    right = np.concatenate([np.eye(n)[a_idx[ta, ja]], M[b_idx[tb, jb]]])  # [ncol, n]
    return np.einsum("ic,cj->ijc", left, right).reshape(n * n, -1)


class Fit(NamedTuple):
    """Best approximation of a target: coefficients, ``M_hat`` and the Frobenius residual."""

    a: np.ndarray
    b: np.ndarray
    M_hat: np.ndarray
    residual: float


def best_approximation(pattern: Pattern, M, refine: bool = True) -> Fit:
    """Least-squares approximation of a causal target M by the pattern: minimize ``||M - (I-B)^{-1}A||_F``.

    Start from the equation-error solution (row t: ``min ||M[t] - sum_s b[t,s] M[s] - sum_s a[t,s] e_s||``,
    linear in the coefficients, exact when M is realizable), then refine the true output error with
    ``scipy.optimize.least_squares`` and the analytic Jacobian (``mixing_jacobian``); n <= 64 for refine.
    """
    M = _check_mixing(M)
    n = M.shape[0]
    if refine and n > 64:
        raise GLRError(f"refining a fit is limited to n <= 64, got n={n} (use refine=False)")
    a_idx, b_idx = pattern.tables(n)
    a = np.zeros(a_idx.shape)
    b = np.zeros(b_idx.shape)
    for t in range(n):
        ja, jb = np.flatnonzero(a_idx[t] >= 0), np.flatnonzero(b_idx[t] >= 0)
        basis = np.concatenate([np.eye(n)[a_idx[t, ja]], M[b_idx[t, jb]]], axis=0)  # rows: regressors
        if basis.size:
            coef = np.linalg.lstsq(basis.T, M[t], rcond=None)[0]
            a[t, ja], b[t, jb] = coef[: ja.size], coef[ja.size:]
    if refine:
        from scipy.optimize import least_squares

        va, vb = a_idx >= 0, b_idx >= 0

        def unpack(x):
            aa, bb = np.zeros(a_idx.shape), np.zeros(b_idx.shape)
            aa[va], bb[vb] = x[: va.sum()], x[va.sum():]
            return aa, bb

        res = least_squares(lambda x: (mixing_matrix(pattern, *unpack(x)) - M).ravel(),
                            np.concatenate([a[va], b[vb]]),
                            jac=lambda x: mixing_jacobian(pattern, *unpack(x)), method="lm"
                            if va.sum() + vb.sum() <= n * n else "trf")
        a, b = unpack(res.x)
    M_hat = mixing_matrix(pattern, a, b)
    return Fit(a, b, M_hat, float(np.linalg.norm(M_hat - M)))
