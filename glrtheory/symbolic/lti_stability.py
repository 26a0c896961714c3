"""Stability and memory of an LTI pattern.

* Numeric: the filter is (BIBO) stable iff its spectral radius ``rho = max |pole| < 1``.
* Symbolic: the Schur-Cohn (Jury) test. Write the denominator as ``1 + sum_m alpha_m z^-m``
  (``alpha_m = -b_m``); the step-down recursion ``k_m = alpha_m^(m)``,
  ``alpha_i^(m-1) = (alpha_i^(m) - k_m alpha_{m-i}^(m)) / (1 - k_m^2)`` gives reflection coefficients
  ``k_K .. k_1``, and all poles lie in the open unit disk iff ``|k_m| < 1`` for every m. For lags {1, 2}:
  ``k_2 = -b_2``, ``k_1 = -b_1 / (1 - b_2)``: the stability triangle ``|b_2| < 1``, ``|b_1| < 1 - b_2``
  (``proofs/lti_stability_triangle.py``).
* Memory horizon: the smallest T with ``|h_t| < eps`` for all ``t >= T``, from the impulse response
  itself; the dominant poles (``|h_t| <= C t^(m-1) rho^t``) only size the window and bound the tail.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..checks import check_real
from ..errors import GLRError
from .lti import LTISystem
from .lti_poles import DENSE_EIG_MAX_ORDER, dominant_poles, pole_estimate

#: Largest order for symbolic Schur-Cohn conditions (the rational functions grow fast with the order).
SCHUR_COHN_MAX_ORDER = 6
#: Largest order + number of symbols for them: order 4 with 4 symbols took 2 s, 5 with 4 9 s, 6 with 3 10 s, where 5
#: with 5 and 6 with 4 ran past 60 s (``glr lti``, the other coefficients 0.1, 2-core machine).
SCHUR_COHN_MAX_SIZE = 9
#: Longest impulse response computed for the memory horizon.
MEMORY_MAX_WINDOW = 2**22
#: Poles with ``|p| >= rho (1 - DOMINANT_CLUSTER_RTOL)`` count towards the dominant multiplicity m.
DOMINANT_CLUSTER_RTOL = 1e-6


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

    Stops early (the last entry has ``|k| = 1``) when a step would divide by ``1 - k^2 = 0``. Float coefficients are
    read as the decimals they print as (``nsimplify``: 0.7 is 7/10), so ``{1: 0.7, 2: 0.3}`` has its pole on the unit
    circle, as typed; their exact binary values (the pole routes') would put it 4e-17 inside. Beside symbols too
    (``0.1 b_1`` is ``b_1 / 10``): exact arithmetic keeps ``cancel`` fast (order 4, three symbols and a 0.1: 37 s with
    the float, 2 s as 1/10)."""
    K = max(system.b, default=0)
    if K > SCHUR_COHN_MAX_ORDER and not system.is_numeric:
        raise GLRError(f"symbolic Schur-Cohn conditions are limited to order <= {SCHUR_COHN_MAX_ORDER}, "
                       f"got {K}; substitute numbers")
    symbols = len(system.b_symbols)
    if symbols and K + symbols > SCHUR_COHN_MAX_SIZE:
        raise GLRError(f"symbolic Schur-Cohn conditions are limited to order + symbols <= {SCHUR_COHN_MAX_SIZE}, "
                       f"got order {K} with {symbols} symbols; substitute numbers for some, or share one symbol")
    if K > 4 * SCHUR_COHN_MAX_ORDER:
        raise GLRError(f"exact Schur-Cohn recursion is limited to order <= {4 * SCHUR_COHN_MAX_ORDER}, "
                       f"got {K}; use spectral_radius")
    alpha = [sp.Integer(1)] + [sp.nsimplify(-system.b.get(m, 0), rational=True) for m in range(1, K + 1)]
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
    """The number of steps until the impulse response decays below eps: the smallest T with
    ``|h_t| < eps`` for all ``t >= T``, read off the numeric impulse response (the sparse recurrence).

    None (infinite) when the filter is not stable; for ``rho = 0`` (no feedback) the response is finite
    and read off exactly. Otherwise ``|h_t| <= C t^(m-1) rho^t`` (rho: spectral radius, m: the number of
    poles of modulus rho, so repeated or clustered dominant poles are covered); the dominant pole only
    sizes the window W: it starts at ``2 ceil(log eps / log rho)`` and doubles until the last
    ``|h_t| >= eps`` lies in its first half and the tail bound, with C the largest
    ``|h_t| / (t^(m-1) rho^t)`` over the second half, is below eps at W (past the bound's peak).
    GLRError when W would exceed MEMORY_MAX_WINDOW."""
    eps = check_real(eps, "eps", 0, 1, open_low=True, open_high=True)
    rho = spectral_radius(system)
    if rho >= 1:
        return None
    if rho == 0:
        return _last_above(system.impulse_response(system.order + 1), eps)
    poles = pole_estimate(system).poles if system.order <= DENSE_EIG_MAX_ORDER else dominant_poles(system)
    m = int(np.count_nonzero(np.abs(poles) >= rho * (1 - DOMINANT_CLUSTER_RTOL)))
    peak = (m - 1) / -math.log(rho)                  # t^(m-1) rho^t decreases for t > peak
    W = max(2 * math.ceil(math.log(eps) / math.log(rho)), 2 * (system.order + 1), 2 * math.ceil(peak) + 2, 16)
    while True:
        if W > MEMORY_MAX_WINDOW:
            raise GLRError(f"the memory horizon at eps={eps:g} (spectral radius {rho:.12g}) needs more than "
                           f"the limit of {MEMORY_MAX_WINDOW} impulse-response steps")
        h = system.impulse_response(W)
        if not np.isfinite(h).all():
            raise GLRError("the impulse response overflows float64; the memory horizon is not available")
        T = _last_above(h, eps)
        t = np.arange(W // 2, W)
        log_envelope = (m - 1) * np.log(t) + t * math.log(rho)      # logs: rho^t underflows for large t
        with np.errstate(divide="ignore"):
            log_C = float(np.max(np.log(np.abs(h[t])) - log_envelope))
        if T <= W // 2 and log_C + log_envelope[-1] < math.log(eps):
            return T
        W *= 2


def _last_above(h: np.ndarray, eps: float) -> int:
    """One past the last index with ``|h_t| >= eps`` (0 if none)."""
    nz = np.flatnonzero(np.abs(h) >= eps)
    return int(nz[-1]) + 1 if nz.size else 0
