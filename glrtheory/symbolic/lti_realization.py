"""State-space realizations of an LTI pattern: ``x_{t+1} = A x_t + B u_t``, ``h_t = C x_t + D u_t``.

With ``K = order``, ``c_j = a_j + a_0 b_j`` (``H = D + C (zI - A)^{-1} B`` with ``D = a_0``):

* controllable canonical (companion) form: ``A`` has first row ``[b_1 .. b_K]`` and ones on the
  subdiagonal, ``B = e_1``, ``C = [c_1 .. c_K]``. ``A`` holds ``|B-lags| + K - 1`` non-zeros, so it is
  stored sparse (scipy.sparse) for multi-lag patterns: power2 at n = 2^20 has K = 2^19 but 20 taps;
* observable canonical form: the transpose, ``(A^T, C^T, B^T, D)``.

The characteristic polynomial of the companion is ``z^K - sum_l b_l z^{K-l}``, so its eigenvalues are
the poles of H. The controllable form is always controllable; it is observable iff ``a(z)`` and
``1 - b(z)`` share no root (no pole-zero cancellation).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.signal
import scipy.sparse
import sympy as sp

from ..errors import GLRError
from .lti import Z, LTISystem, float_root_multiplicities

#: Largest order for the dense eigenvalue route (all poles); beyond it only dominant poles (ARPACK).
DENSE_EIG_MAX_ORDER = 256
#: Largest order for the sparse (ARPACK) dominant-pole route.
SPARSE_EIG_MAX_ORDER = 2**16
#: Poles whose first-order error bound ``kappa * eps * ||A||_F`` exceeds this are not trusted.
POLE_ERROR_TOL = 1e-8
#: Largest order for refining untrusted poles with 30-digit polynomial roots (mpmath via sympy).
REFINE_MAX_ORDER = 64
#: Largest order for symbolic realization matrices and controllability/observability tests.
SYMBOLIC_MAX_ORDER = 12
#: Largest order for numeric controllability/observability (dense Krylov matrices).
NUMERIC_KRYLOV_MAX_ORDER = 64
#: The dense eigenvalue route scales the poles by a power of two (``pole_scale``) beyond 2^+-POLE_SCALE_FREE.
#: Unscaled, scipy 1.17's eig returned 1.49e138 for the 1 x 1 matrix [1e139] and 6.7e-139 for [1e-150] (its
#: LAPACK's scaling of such norms was not undone), and poles +-1e-150 (b_2 = 1e-300) came back as 0.
POLE_SCALE_FREE = 64


class IllConditionedWarning(UserWarning):
    """The companion matrix is too ill-conditioned to trust its eigenvalues in float64."""


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
    vals = np.concatenate([np.ldexp(-den[lags], -lags * scale), np.ones(K - 1)])
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
        return sp.Matrix.hstack(*cols) if cols else sp.zeros(0, 0)
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


# -- poles from the companion ----------------------------------------------------------------------
class PoleEstimate(NamedTuple):
    """Poles and their first-order error bounds ``kappa_i * eps * ||A||_F`` (eigenvalue condition; A the
    companion scaled by ``pole_scale``, the bound scaled back with the poles)."""

    poles: np.ndarray
    error_bound: np.ndarray
    route: str


def pole_estimate(system: LTISystem) -> PoleEstimate:
    """All K poles: exact zeros for the factor z^(K - L') of the characteristic polynomial, the rest
    from the dense companion of order L' (balanced eig, with left/right eigenvectors for the condition
    numbers ``kappa_i = ||y_i|| ||x_i|| / |y_i^H x_i|``). When the bound exceeds ``POLE_ERROR_TOL``, warn
    ``IllConditionedWarning`` and, for order <= REFINE_MAX_ORDER, recompute the poles by the better-conditioned
    route ``float_root_multiplicities`` (exact square-free factors of the rationalized coefficients, then
    30-digit roots of each). Beyond that order, or when that route fails, the warning says the returned
    dense-companion poles are approximate."""
    key = (tuple(system.a.items()), tuple(system.b.items()))
    cached = getattr(system, "_pole_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    est = _pole_estimate(system)
    system._pole_cache = (key, est)
    return est


def _pole_estimate(system: LTISystem) -> PoleEstimate:
    K = system.order
    if K == 0:
        return PoleEstimate(np.zeros(0, dtype=complex), np.zeros(0), "none")
    if K > DENSE_EIG_MAX_ORDER:
        raise GLRError(f"all poles are limited to order <= {DENSE_EIG_MAX_ORDER}, got {K}; "
                       "use dominant_poles (sparse eigenvalues)")
    # poles at exactly 0: z^(K - L') divides the characteristic polynomial (L' = largest B-lag with b != 0)
    _, den = system.numeric_coefficients()
    live = np.flatnonzero(den[1:]) + 1
    if live.size < 1 or live[-1] < K:
        reduced = LTISystem({0: 1}, {int(l): system.b[int(l)] for l in live})
        est = pole_estimate(reduced)
        pad = K - reduced.order
        return PoleEstimate(np.concatenate([est.poles, np.zeros(pad, dtype=complex)]),
                            np.concatenate([est.error_bound, np.zeros(pad)]), est.route)
    e = pole_scale(system)
    C = companion(system, scale=e).toarray()
    w, vl, vr = scipy.linalg.eig(C, left=True, right=True)
    with np.errstate(divide="ignore"):
        kappa = (np.linalg.norm(vl, axis=0) * np.linalg.norm(vr, axis=0)
                 / np.abs(np.einsum("ij,ij->j", vl.conj(), vr)))
    with np.errstate(over="ignore"):                                   # an infinite bound is untrusted
        bound = kappa * np.finfo(float).eps * max(scipy.linalg.norm(C), 1.0)
    worst = float(np.max(bound))
    if not worst <= POLE_ERROR_TOL:
        problem = (f"companion matrix of order {K} is ill-conditioned: float64 pole error bound {worst:.1e} > "
                   f"{POLE_ERROR_TOL:g}; ")
        if K > REFINE_MAX_ORDER:
            why = f"order {K} > REFINE_MAX_ORDER = {REFINE_MAX_ORDER}"
        else:
            try:
                roots = float_root_multiplicities(system.characteristic_polynomial(), "poles")
            except GLRError as exc:
                why = str(exc)
            else:
                warnings.warn(problem + "poles recomputed in 30 digits from the exact square-free factors",
                              IllConditionedWarning, stacklevel=3)
                return PoleEstimate(np.array([complex(x) for x, m in roots.items() for _ in range(m)]),
                                    np.full(K, np.nan), "square-free-30-digit")
        warnings.warn(problem + f"the poles are approximate (dense companion eigenvalues; not refined: {why}); "
                      "impulse responses come from the recurrence", IllConditionedWarning, stacklevel=3)
    return PoleEstimate(w.astype(complex) * 2.0**e, bound * 2.0**e, "dense-companion")


def pole_scale(system: LTISystem) -> int:
    """The exponent e of the power of two that the dense eigenvalue route divides the poles by:
    ``floor(max_l log2 |b_l| / l)``, so that the scaled first row ``b_l 2^(-l e)`` is below 2^l and the
    largest pole near 1 (its modulus is at most ``2 max_l |b_l|^(1/l)``, Fujiwara's bound); 0 (ordinary
    filters are untouched) while that e and log2 of the largest companion entry are within
    ``+-POLE_SCALE_FREE``."""
    _, den = system.numeric_coefficients()
    lags = np.flatnonzero(den[1:]) + 1
    if lags.size == 0:
        return 0
    size = np.abs(den[lags])
    e = int(np.floor(np.max(np.log2(size) / lags)))
    largest = max(size.max(), 1.0 if system.order > 1 else 0.0)         # the subdiagonal holds ones
    free = 2.0**-POLE_SCALE_FREE <= largest <= 2.0**POLE_SCALE_FREE and abs(e) <= POLE_SCALE_FREE
    return 0 if free else e


def companion_poles(system: LTISystem) -> np.ndarray:
    """The K poles (complex128) from ``pole_estimate``."""
    return pole_estimate(system).poles


def dominant_poles(system: LTISystem, k: int = 6) -> np.ndarray:
    """The k poles of largest modulus, from the *sparse* companion (ARPACK, O(K) memory): the route for
    orders beyond the dense limit. Falls back to the dense route when K is small. ARPACK converges
    poorly when many poles share the dominant modulus (as for power2 with equal weights): GLRError then.
    With clustered moduli the k returned values are true poles but may skip one of nearly equal modulus
    (measured: lags {1, 3, 40}); the first is the dominant pole (tests/test_lti.py)."""
    K = system.order
    if K <= max(k + 2, 16):
        w = companion_poles(system)
        return w[np.argsort(-np.abs(w))][:k]
    if K > SPARSE_EIG_MAX_ORDER:
        raise GLRError(f"dominant poles are limited to order <= {SPARSE_EIG_MAX_ORDER}, got {K}")
    import scipy.sparse.linalg

    A = companion(system)
    try:
        w = scipy.sparse.linalg.eigs(A, k=min(k, K - 2), which="LM", return_eigenvectors=False,
                                     maxiter=1000, tol=1e-10,
                                     v0=np.ones(K))
    except scipy.sparse.linalg.ArpackNoConvergence as exc:
        raise GLRError(f"sparse eigenvalues (ARPACK) of the order-{K} companion did not converge; poles of "
                       f"this order are not available (dense route: order <= {DENSE_EIG_MAX_ORDER})") from exc
    return w[np.argsort(-np.abs(w))]
