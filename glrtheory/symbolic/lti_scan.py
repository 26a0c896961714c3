"""The stable range of one coefficient symbol of an LTI pattern, by a scan (any order).

Let one real symbol c enter the B-coefficients affinely, ``b_l = beta_l + c gamma_l`` (a shared
coefficient ``b_l = c`` for every lag is the common case). In ``w = z^-1`` the denominator is

    P(w; c) = P0(w) + c P1(w),   P0 = 1 - sum_l beta_l w^l,   P1 = -sum_l gamma_l w^l,

and the poles are ``1 / w`` over the roots of P, so the filter is stable (every pole inside ``|z| < 1``)
iff P has no root in the closed disk ``|w| <= 1``. By the argument principle the number of roots inside
the unit circle is the winding number of ``P(e^{i theta})`` around 0. The scan evaluates P0 and P1 once at
M points of the circle (FFT of the coefficients), then for every c on the grid ``lo, lo + step, ..., hi``
sums the phase steps of P between neighbouring points; c is stable when the winding number is 0.

Resolution: the grid step in c. The phase sum is the winding number when every phase step is below
pi; a root close to the circle between two points makes one step near +-pi, so a value whose largest
step exceeds pi/2 is unresolved at M points (``M = 8 (K + 1)`` to start, K the order). Unresolved values
next to a stable one are redone with 4x the points, up to ``MAX_POINTS``, so that every stable interval
is followed to its edge; a value still unresolved has a root within about ``1 / MAX_POINTS`` of the circle
and counts as not stable (a root on the circle is not stable). A stable interval whose every value is
unresolved at M points (a root just outside the circle throughout) is not reported.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import sympy as sp

from ..errors import GLRError
from .lti import LTISystem

#: Largest scan, grid values times circle points (complex evaluations).
SCAN_MAX_WORK = 2**28
#: Circle points per unit of order (M = POINTS_PER_ORDER * (K + 1), a power of two, at least 256).
POINTS_PER_ORDER = 8
#: Most circle points for a grid value whose phase steps stay coarse (then it counts as not stable).
MAX_POINTS = 2**22


@numba.njit(cache=True)
def _winding_status(f0, f1, grid):
    """For each c: 0 when P = f0 + c f1 winds 0 times around 0, 1 when it winds, 2 when unresolved (the
    phase moves by more than pi/2 between neighbouring points, or P vanishes at one)."""
    M = f0.size
    out = np.zeros(grid.size, dtype=np.int8)
    for i in range(grid.size):
        c = grid[i]
        prev = f0[0] + c * f1[0]
        turn, worst = 0.0, 0.0
        for k in range(1, M + 1):
            cur = f0[k % M] + c * f1[k % M]
            step = cur * np.conj(prev)
            delta = math.atan2(step.imag, step.real)
            turn += delta
            worst = max(worst, abs(delta))
            if step == 0:
                worst = math.pi
            prev = cur
        out[i] = 2 if worst > math.pi / 2 else (0 if round(turn / (2 * math.pi)) == 0 else 1)
    return out


def _stable_on_grid(p0: np.ndarray, p1: np.ndarray, grid: np.ndarray, M: int) -> tuple[np.ndarray, int]:
    """Stable flags on the grid, and the most circle points used. Every value is counted at M points;
    an unresolved value next to a stable one is redone with 4x the points up to MAX_POINTS (so stable
    intervals grow to their edges); other unresolved values count as not stable."""
    status = _winding_status(np.fft.fft(p0, M), np.fft.fft(p1, M), grid)
    finest = M
    while True:
        stable = status == 0
        near = np.zeros(grid.size, dtype=bool)
        near[1:] |= stable[:-1]
        near[:-1] |= stable[1:]
        todo = np.flatnonzero(near & (status == 2))
        if not todo.size:
            return stable, finest
        m = M
        while todo.size and m * 4 <= MAX_POINTS:
            m *= 4
            finest = max(finest, m)
            status[todo] = _winding_status(np.fft.fft(p0, m), np.fft.fft(p1, m), grid[todo])
            todo = todo[status[todo] == 2]
        status[todo] = 1                          # a root within ~1/MAX_POINTS of the circle


class StableRange(NamedTuple):
    """The values of ``symbol`` in ``[lo, hi]`` (grid ``step``; ``points`` circle points, up to
    ``finest`` near the edges) that are stable, as closed intervals of grid values
    ``[[first, last], ...]``; empty when none is."""

    symbol: str
    intervals: list
    lo: float
    hi: float
    step: float
    points: int
    finest: int

    def describe(self) -> str:
        spans = ", ".join(f"[{a:.6g}, {b:.6g}]" for a, b in self.intervals) or "no value"
        return (f"{self.symbol} in {spans} (scan of [{self.lo:g}, {self.hi:g}] with step {self.step:g}, "
                f"{self.points} to {self.finest} points on the unit circle)")


def _affine_taps(system: LTISystem, c: sp.Symbol) -> tuple[np.ndarray, np.ndarray]:
    """``P0``, ``P1`` as dense float64 coefficients in w (degree K), after checking ``b_l`` is affine in c."""
    K = max(system.b, default=0)
    p0, p1 = np.zeros(K + 1), np.zeros(K + 1)
    p0[0] = 1.0
    for l, e in system.b.items():
        others = e.free_symbols - {c}
        if others:
            raise GLRError(f"b_{l} = {e} holds symbols other than {c}: the scan varies one symbol")
        try:
            poly = sp.Poly(e, c)
        except sp.PolynomialError:                       # sin(c), 1/c: not a polynomial in c
            poly = None
        if poly is None or poly.degree() > 1:
            raise GLRError(f"b_{l} = {e} is not affine in {c}; the scan needs b_l = beta + {c} gamma")
        gamma, beta = (poly.all_coeffs() if poly.degree() == 1 else [0, poly.all_coeffs()[-1]])
        p0[l], p1[l] = -float(beta), -float(gamma)
    if not p1.any():
        raise GLRError(f"{c} does not enter the B-coefficients: stability does not depend on it")
    return p0, p1


def stable_range(system: LTISystem, symbol=None, lo: float = -2.0, hi: float = 2.0,
                 step: float = 1e-3) -> StableRange:
    """Stable values of one symbol on a grid (module docstring: argument principle on the unit circle).

    Parameters
    ----------
    system : LTISystem
        Its B-coefficients hold one free symbol c, affinely (A-coefficients may hold any symbols).
    symbol : sympy.Symbol or str, optional
        The symbol to scan; the one free symbol of the B-coefficients by default.
    lo, hi, step : float
        The grid ``lo, lo + step, ..., hi``.

    Raises
    ------
    GLRError
        Several symbols, a non-affine coefficient, a bad grid, or a scan over ``SCAN_MAX_WORK``.
    """
    free = system.b_symbols
    if symbol is None:
        if len(free) != 1:
            raise GLRError(f"the scan varies one symbol; the B-coefficients hold {len(free)}: "
                           f"{', '.join(sorted(s.name for s in free)) or 'none'}")
        c = free.pop()
    else:
        c = next((s for s in free if s.name == str(symbol)), None)
        if c is None:
            raise GLRError(f"{symbol} is not a symbol of the B-coefficients")
    if not (np.isfinite([lo, hi, step]).all() and lo <= hi and step > 0):
        raise GLRError(f"the scan needs finite lo <= hi and step > 0, got [{lo}, {hi}] step {step}")
    p0, p1 = _affine_taps(system, c)
    K = p0.size - 1
    M = max(256, 1 << int(np.ceil(np.log2(POINTS_PER_ORDER * (K + 1)))))
    values = float(np.floor((hi - lo) / step + 1e-9)) + 1      # the grid's size, before it is built: may be huge
    if values * M > SCAN_MAX_WORK:
        shown = f"{values:.0f}" if values < 1e9 else f"{values:.3g}"
        raise GLRError(f"the scan of {shown} values at {M} circle points (order {K}) exceeds the limit "
                       f"SCAN_MAX_WORK = {SCAN_MAX_WORK}; use a larger step or a smaller range")
    grid = np.round(lo + step * np.arange(int(values)), 12)
    stable, finest = _stable_on_grid(p0, p1, grid, M)   # FFT: P(e^{-i theta_k}), the circle clockwise
    edges = np.flatnonzero(np.diff(np.concatenate([[0], stable.astype(np.int8), [0]])))
    intervals = [[float(grid[a]), float(grid[b - 1])] for a, b in zip(edges[::2], edges[1::2])]
    return StableRange(c.name, intervals, float(lo), float(hi), float(step), M, finest)
