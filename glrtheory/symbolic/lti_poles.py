"""The poles of an LTI pattern: eigenvalues of its companion matrix (``lti_realization.companion``).

* ``pole_estimate``: all K poles by the dense companion (order <= ``DENSE_EIG_MAX_ORDER``), with first-order
  error bounds; ill-conditioned poles are recomputed in 30 digits from exact square-free factors (order <=
  ``REFINE_MAX_ORDER``) or flagged by ``IllConditionedWarning``. Extreme coefficients are scaled by a power
  of two first (``pole_scale``).
* ``dominant_poles``: the k of largest modulus: from the dense route up to its limit, beyond it from the
  sparse companion (ARPACK).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg

from ..errors import GLRError
from .lti import LTISystem, float_root_multiplicities
from .lti_realization import companion

#: Largest order for the dense eigenvalue route (all poles); beyond it only dominant poles (ARPACK).
DENSE_EIG_MAX_ORDER = 256
#: Largest order for the sparse (ARPACK) dominant-pole route, and the order from which ``dominant_poles``
#: takes it (below, the dense route: ARPACK returned 0.19 for {1: 1e-30, 30: 1e-30}, whose 30 poles all have
#: modulus 0.1, and 0.63 for lags {1, 3, 40} with b_l scaled by 1e5^l, whose dominant pole is 9.9e4).
SPARSE_EIG_MAX_ORDER = 2**16
SPARSE_FROM_ORDER = DENSE_EIG_MAX_ORDER + 1
#: Poles whose first-order error bound ``kappa * eps * ||A||_F`` exceeds this are not trusted.
POLE_ERROR_TOL = 1e-8
#: Largest order for refining untrusted poles with 30-digit polynomial roots (mpmath via sympy).
REFINE_MAX_ORDER = 64
#: The dense eigenvalue route scales the poles by a power of two (``pole_scale``) beyond 2^+-POLE_SCALE_FREE.
#: Unscaled, scipy 1.17's eig returned 1.49e138 for the 1 x 1 matrix [1e139] and 6.7e-139 for [1e-150] (its
#: LAPACK's scaling of such norms was not undone), and poles +-1e-150 (b_2 = 1e-300) came back as 0.
POLE_SCALE_FREE = 64


class IllConditionedWarning(UserWarning):
    """The companion matrix is too ill-conditioned to trust its eigenvalues in float64."""


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
    """The k poles of largest modulus, from the *sparse* companion (ARPACK, O(K) memory) from order
    ``SPARSE_FROM_ORDER`` on, else from ``pole_estimate`` (dense, balanced, error-bounded). ARPACK converges
    poorly when many poles share the dominant modulus (as for power2 with equal weights): GLRError then.
    With clustered moduli the k returned values are true poles but may skip one of nearly equal modulus
    (measured: lags {1, 3, 40}); the first is the dominant pole (tests/test_lti.py)."""
    K = system.order
    if K <= max(k + 2, SPARSE_FROM_ORDER - 1):
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
