"""State-space realizations of an LTI pattern: ``x_{t+1} = A x_t + B u_t``, ``h_t = C x_t + D u_t``.

With ``K = order``, ``c_j = a_j + a_0 b_j`` (``H = D + C (zI - A)^{-1} B`` with ``D = a_0``):

* controllable canonical (companion) form: ``A`` has first row ``[b_1 .. b_K]`` and ones on the
  subdiagonal, ``B = e_1``, ``C = [c_1 .. c_K]``. ``A`` holds ``|B-lags| + K - 1`` non-zeros, so it is
  stored sparse (scipy.sparse) for multi-lag patterns: power2 at n = 2^20 has K = 2^19 but 20 taps;
* observable canonical form: the transpose, ``(A^T, C^T, B^T, D)``.

The characteristic polynomial of the companion is ``z^K - sum_l b_l z^{K-l}``, so its eigenvalues are
the poles of H (``lti_poles``). The controllable form is always controllable; it is observable iff ``a(z)`` and
``1 - b(z)`` share no root (no pole-zero cancellation).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.signal
import scipy.sparse
import sympy as sp

from ..errors import GLRError
from .lti import Z, LTISystem

#: Largest order for symbolic realization matrices and controllability/observability tests.
SYMBOLIC_MAX_ORDER = 12
#: Largest order for numeric controllability/observability (dense Krylov matrices).
NUMERIC_KRYLOV_MAX_ORDER = 64


class Realization(NamedTuple):
    """``(A, B, C, D)``: sympy matrices, or (scipy.sparse CSR ``A``, float64 ``B``, ``C``, float ``D``)."""

    A: object
    B: object
    C: object
    D: object

    @property
    def order(self) -> int:
        return self.A.shape[0]


def _taps(system: LTISystem):
    """``b_1..b_K``, ``c_1..c_K`` and ``D`` as sympy expressions (zero where no lag)."""
    K = system.order
    a0 = system.a.get(0, sp.Integer(0))
    b = [system.b.get(l, sp.Integer(0)) for l in range(1, K + 1)]
    c = [sp.expand(system.a.get(l, sp.Integer(0)) + a0 * b[l - 1]) for l in range(1, K + 1)]
    return b, c, a0


def companion(system: LTISystem, symbolic: bool = False, scale: int = 0):
    """The K x K companion matrix (first row ``b_1..b_K``, subdiagonal ones): scipy.sparse CSR float64,
    or a sympy ``ImmutableSparseMatrix`` when ``symbolic`` (order <= SYMBOLIC_MAX_ORDER). With ``scale``
    e (numeric only) the first row is ``b_l 2^(-l e)``: the companion of the poles divided by 2^e."""
    K = system.order
    if symbolic:
        _check_symbolic_order(K)
        b, _, _ = _taps(system)
        entries = {(0, l - 1): v for l, v in enumerate(b, 1) if not v.is_zero}
        entries.update({(i, i - 1): 1 for i in range(1, K)})
        return sp.ImmutableSparseMatrix(K, K, entries)
    _, den = system.numeric_coefficients()
    lags = np.array([l for l in system.b_lags if den[l] != 0], dtype=np.int64)
    rows = np.concatenate([np.zeros(lags.size, dtype=np.int64), np.arange(1, K)])
    cols = np.concatenate([lags - 1, np.arange(K - 1)])
    vals = np.concatenate([np.ldexp(-den[lags], -lags * scale), np.ones(max(K - 1, 0))])    # K = 0: no state
    return scipy.sparse.csr_array((vals, (rows, cols)), shape=(K, K))


def controllable_form(system: LTISystem, symbolic: bool = False) -> Realization:
    """Controllable canonical realization ``(A, e_1, C, a_0)`` of H (module docstring)."""
    K = system.order
    A = companion(system, symbolic)
    if symbolic:
        _, c, a0 = _taps(system)
        B = sp.ImmutableMatrix(K, 1, [1] + [0] * (K - 1)) if K else sp.ImmutableMatrix(0, 1, [])
        return Realization(A, B, sp.ImmutableMatrix(1, K, c), a0)
    num, den = system.numeric_coefficients()
    B = np.zeros((K, 1))
    if K:
        B[0, 0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        C = (num[1:] - num[0] * den[1:])[None, :]
    if not np.isfinite(C).all():
        raise GLRError("the realization's output row c_j = a_j + a_0 b_j overflows float64")
    return Realization(A, B, C, float(num[0]))


def observable_form(system: LTISystem, symbolic: bool = False) -> Realization:
    """Observable canonical realization ``(A^T, C^T, B^T, D)`` of the controllable form."""
    A, B, C, D = controllable_form(system, symbolic)
    if symbolic:
        return Realization(A.T, C.T, B.T, D)
    return Realization(A.T.tocsr(), C.T.copy(), B.T.copy(), D)


def _check_symbolic_order(K: int) -> None:
    if K > SYMBOLIC_MAX_ORDER:
        raise GLRError(f"symbolic realizations are limited to order <= {SYMBOLIC_MAX_ORDER}, got {K}")


def _dense(M):
    return M.toarray() if scipy.sparse.issparse(M) else np.asarray(M, dtype=float)


def _is_symbolic(r: Realization) -> bool:
    return isinstance(r.A, sp.MatrixBase)


def controllability_matrix(r: Realization):
    """``[B, AB, ..., A^{K-1} B]`` (sympy or dense float64)."""
    return _krylov(r.A, r.B)


def observability_matrix(r: Realization):
    """``[C; CA; ...; C A^{K-1}]`` (sympy or dense float64)."""
    return _krylov(r.A.T, r.C.T).T


def _krylov(A, v):
    K = A.shape[0]
    if isinstance(A, sp.MatrixBase):
        _check_symbolic_order(K)
        cols = [sp.Matrix(v)]
        for _ in range(K - 1):
            cols.append((A * cols[-1]).applyfunc(sp.expand))
        return sp.Matrix.hstack(*cols) if K else sp.zeros(0, 0)
    if K > NUMERIC_KRYLOV_MAX_ORDER:
        raise GLRError(f"numeric controllability/observability is limited to order <= "
                       f"{NUMERIC_KRYLOV_MAX_ORDER} (Krylov matrices lose rank in float64), got {K}")
    A = _dense(A)
    cols = [np.asarray(v, dtype=float).reshape(K)]
    for _ in range(K - 1):
        cols.append(A @ cols[-1])
    return np.stack(cols, axis=1) if K else np.zeros((0, 0))


def is_controllable(r: Realization):
    """True/False for numbers (rank of the controllability matrix); for symbols the sympy condition
    ``det != 0`` (factored)."""
    return _full_rank(controllability_matrix(r))


def is_observable(r: Realization):
    """As ``is_controllable`` for the observability matrix."""
    return _full_rank(observability_matrix(r))


def _full_rank(M):
    if isinstance(M, sp.MatrixBase):
        if M.shape[0] == 0:
            return sp.true
        return sp.Ne(sp.factor(M.det(method="berkowitz")), 0)
    if M.shape[0] == 0:
        return True
    return bool(np.linalg.matrix_rank(M) == M.shape[0])


def transfer_function_of(r: Realization, z: sp.Symbol = Z) -> sp.Expr:
    """``H(z) = C (zI - A)^{-1} B + D`` as a sympy rational function of z (order <= 12).

    Symbolic realizations: exact and cancelled. Float realizations: the coefficients of
    ``det(zI - A)`` and ``C adj(zI - A) B + D det(zI - A)`` from ``scipy.signal.ss2tf`` (no cancellation)."""
    K = r.order
    _check_symbolic_order(K)
    if not _is_symbolic(r):
        if K == 0:
            return sp.Float(float(r.D))
        num, den = scipy.signal.ss2tf(_dense(r.A), np.reshape(_dense(r.B), (K, 1)),
                                      np.reshape(_dense(r.C), (1, K)), float(r.D))
        powers = [z ** (K - i) for i in range(K + 1)]
        return (sp.Add(*[sp.Float(c) * w for c, w in zip(num[0], powers)])
                / sp.Add(*[sp.Float(c) * w for c, w in zip(den, powers)]))
    A, B, C = (sp.Matrix(x) for x in (r.A, r.B, r.C))
    D = sp.sympify(r.D)
    if K == 0:
        return D
    zI_A = z * sp.eye(K) - A
    return sp.cancel((C * zI_A.adjugate() * B)[0, 0] / zI_A.det(method="berkowitz") + D)


def from_realization(r: Realization, z: sp.Symbol = Z) -> LTISystem:
    """The LTI system of a realization: ``LTISystem.from_transfer_function(transfer_function_of(r))``."""
    return LTISystem.from_transfer_function(transfer_function_of(r, z), z)


def similarity(r1: Realization, r2: Realization) -> np.ndarray:
    """``T`` with ``A2 = T A1 T^-1``, ``B2 = T B1``, ``C2 = C1 T^-1`` for two observable numeric
    realizations of the same H: ``T = O2^{-1} O1`` (observability matrices); GLRError if singular."""
    O1, O2 = observability_matrix(r1), observability_matrix(r2)
    if O1.shape != O2.shape:
        raise GLRError(f"realizations of different orders {r1.order} and {r2.order} are not similar")
    try:
        return scipy.linalg.solve(O2, O1)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning) as exc:
        raise GLRError(f"the observability matrix is singular: no unique similarity ({exc})") from None
