"""Stability and memory of an LTI pattern.

* Numeric: the filter is (BIBO) stable iff its spectral radius ``rho = max |pole| < 1``.
* Symbolic: the Schur-Cohn (Jury) test. Write the denominator as ``1 + sum_m alpha_m z^-m``
  (``alpha_m = -b_m``); the step-down recursion ``k_m = alpha_m^(m)``,
  ``alpha_i^(m-1) = (alpha_i^(m) - k_m alpha_{m-i}^(m)) / (1 - k_m^2)`` gives reflection coefficients
  ``k_K .. k_1``, and all poles lie in the open unit disk iff ``|k_m| < 1`` for every m. For lags {1, 2}:
  ``k_2 = -b_2``, ``k_1 = -b_1 / (1 - b_2)``: the stability triangle ``|b_2| < 1``, ``|b_1| < 1 - b_2``
  (``proofs/lti_stability_triangle.py``).
* Memory horizon: the impulse response of a stable filter decays like ``rho^t``; the horizon is the
  number of steps until ``rho^t < eps``, ``ceil(log eps / log rho)``.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..errors import GLRError
from .lti import LTISystem
from .lti_realization import DENSE_EIG_MAX_ORDER, dominant_poles, pole_estimate

#: Largest order for symbolic Schur-Cohn conditions (the rational functions grow fast with the order).
SCHUR_COHN_MAX_ORDER = 6


def spectral_radius(system: LTISystem) -> float:
    """``max |pole|`` (0 for a filter without poles): dense companion up to DENSE_EIG_MAX_ORDER, else the
    dominant eigenvalue of the sparse companion."""
    if system.order == 0 or all(v.is_zero for v in system.b.values()) and system.is_numeric:
        return 0.0
    if system.order > DENSE_EIG_MAX_ORDER:
        return float(np.abs(dominant_poles(system, k=1)).max())
    return float(np.abs(pole_estimate(system).poles).max())


def is_stable(system: LTISystem) -> bool:
    """Numeric stability: ``spectral_radius < 1``."""
    return spectral_radius(system) < 1


def reflection_coefficients(system: LTISystem) -> list[sp.Expr]:
    """Schur-Cohn step-down reflection coefficients ``[k_K, ..., k_1]`` (sympy, cancelled).

    Stops early (the last entry has ``|k| = 1``) when a step would divide by ``1 - k^2 = 0``."""
    K = max(system.b, default=0)
    if K > SCHUR_COHN_MAX_ORDER and not system.is_numeric:
        raise GLRError(f"symbolic Schur-Cohn conditions are limited to order <= {SCHUR_COHN_MAX_ORDER}, "
                       f"got {K}; substitute numbers")
    if K > 4 * SCHUR_COHN_MAX_ORDER:
        raise GLRError(f"exact Schur-Cohn recursion is limited to order <= {4 * SCHUR_COHN_MAX_ORDER}, "
                       f"got {K}; use spectral_radius")
    alpha = [sp.Integer(1)] + [sp.nsimplify(-system.b.get(m, 0), rational=True) if system.is_numeric
                               else -system.b.get(m, sp.Integer(0)) for m in range(1, K + 1)]
    out = []
    for m in range(K, 0, -1):
        k = alpha[m]
        out.append(k)
        d = sp.cancel(1 - k**2)
        if d.is_zero:
            break
        alpha = [sp.Integer(1)] + [sp.cancel((alpha[i] - k * alpha[m - i]) / d) for i in range(1, m)]
    return out


def stability_conditions(system: LTISystem) -> list[sp.Basic]:
    """``[|k_K| < 1, ..., |k_1| < 1]``: sympy relations in the coefficients (True/False for numbers)."""
    return [sp.Abs(k) < 1 for k in reflection_coefficients(system)]


def stability_region(system: LTISystem) -> sp.Basic:
    """The conjunction of ``stability_conditions``: all poles in the open unit disk."""
    return sp.And(*stability_conditions(system))


def memory_horizon(system: LTISystem, eps: float = 1e-3) -> int | None:
    """Steps until the impulse response decays below eps, from the dominant pole:
    ``ceil(log eps / log rho)``; for ``rho = 0`` (no feedback) the length of the finite response;
    None (infinite) when the filter is not stable."""
    if not (isinstance(eps, (int, float)) and 0 < eps < 1):
        raise GLRError(f"eps must lie in (0, 1), got {eps!r}")
    rho = spectral_radius(system)
    if rho == 0:
        num, _ = system.numeric_coefficients()
        nz = np.flatnonzero(np.abs(num) >= eps)
        return int(nz[-1]) + 1 if nz.size else 0
    if rho >= 1:
        return None
    return max(1, math.ceil(math.log(eps) / math.log(rho)))
