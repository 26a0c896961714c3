"""Stability triangle of the two-lag LTI recurrence ``h_t = u_t + b_1 h_{t-1} + b_2 h_{t-2}``.

Statement. For real b_1, b_2, all poles of ``H(z) = 1 / (1 - b_1 z^-1 - b_2 z^-2)`` lie in the open unit
disk (the filter is stable) iff ``|b_2| < 1`` and ``|b_1| < 1 - b_2``: the open triangle with vertices
(b_1, b_2) = (-2, -1), (2, -1), (0, 1).
"""
from fractions import Fraction

import numpy as np
import sympy as sp

from glrtheory.symbolic.lti import Z, LTISystem
from glrtheory.symbolic.lti_stability import reflection_coefficients, stability_region


def derive():
    b1, b2 = sp.symbols("b_1 b_2", real=True)
    system = LTISystem.from_lags([1, 2])
    p = system.characteristic_polynomial().as_expr()
    print(f"characteristic polynomial p(z) = {p}  (its roots are the poles)")
    k2, k1 = reflection_coefficients(system)
    print(f"Schur-Cohn step-down: k_2 = {k2}, k_1 = {sp.simplify(k1)}; stable iff |k_2| < 1 and |k_1| < 1")
    assert sp.simplify(k2 + b2) == 0 and sp.simplify(k1 + b1 / (1 - b2)) == 0
    # |k_2| < 1 gives 1 - b_2 > 0, so |k_1| < 1  <=>  |b_1| < 1 - b_2.  Jury form of the same facts:
    # (1 - b_2)^2 (1 - k_1^2) = p(1) p(-1), with p(1) = 1 - b_1 - b_2 and p(-1) = 1 + b_1 - b_2.
    identity = sp.simplify((1 - b2) ** 2 * (1 - k1**2) - p.subs(Z, 1) * p.subs(Z, -1))
    print(f"(1 - b_2)^2 (1 - k_1^2) - p(1) p(-1) = {identity}")
    assert identity == 0
    print("so with |b_2| < 1:  |k_1| < 1  <=>  p(1) > 0 and p(-1) > 0  <=>  |b_1| < 1 - b_2")
    region = stability_region(system)
    print(f"region from lti_stability: {region}")
    disc = b1**2 + 4 * b2
    print(f"real poles iff b_1^2 + 4 b_2 >= 0; complex pair of modulus sqrt(-b_2) otherwise ({disc})")
    return region


def on_edge(b1, b2) -> bool:
    """(b_1, b_2) on the closed triangle's boundary: the edge b_2 = -1 or the edges |b_1| = 1 - b_2."""
    return (b2 == -1 and abs(b1) <= 2) or (abs(b1) == 1 - b2 and -1 <= b2 <= 1)


def check(region, step=Fraction(1, 8), span=3):
    """Every rational point of a 1/8 grid of [-3, 3]^2: the triangle (exact arithmetic), the symbolic
    region, numpy's pole moduli and the LTI layer's spectral radius agree; on the triangle's edges a pole lies on
    the unit circle (z = 1 where b_1 + b_2 = 1, z = -1 where b_2 - b_1 = 1, a pair of modulus sqrt(-b_2) = 1 on
    b_2 = -1) and the region, taken at the exact rationals, excludes the point (the triangle is open)."""
    b1s, b2s = sp.symbols("b_1 b_2", real=True)
    inside = sp.lambdify((b1s, b2s), region, "math")
    k = int(span / step)
    grid = [i * step for i in range(-k, k + 1)]
    counts = {"inside": 0, "outside": 0, "boundary": 0}
    for b1 in grid:
        for b2 in grid:
            rho = np.abs(np.roots([1, -float(b1), -float(b2)])).max()
            if on_edge(b1, b2):
                counts["boundary"] += 1
                assert abs(rho - 1) < 1e-7, (b1, b2, rho)
                assert region.subs({b1s: sp.Rational(b1), b2s: sp.Rational(b2)}) == sp.false, (b1, b2)
                continue
            tri = abs(b2) < 1 and abs(b1) < 1 - b2
            assert tri == (rho < 1) == bool(inside(float(b1), float(b2))), (b1, b2, rho)
            counts["inside" if tri else "outside"] += 1
    # the LTI layer's numeric route on a sample of points
    for b1, b2 in [(0.5, 0.3), (1.5, -0.6), (-1.9, -0.95), (0.1, 1.05), (1.2, 0.0)]:
        s = LTISystem.from_lags([1, 2], b={1: b1, 2: b2})
        rho = float(np.abs(s.numeric_poles()).max())
        assert (rho < 1) == (abs(b2) < 1 and abs(b1) < 1 - b2)
    print(f"checked {sum(counts.values())} grid points: {counts}")
    # Pick's theorem on the lattice triangle (vertices are grid points): area = I + B/2 - 1 in step^2
    area = (counts["inside"] + Fraction(counts["boundary"], 2) - 1) * step**2
    print(f"Pick's theorem: {counts['inside']} interior and {counts['boundary']} edge grid points give area {area} "
          "(the triangle's area is 4)")
    assert area == 4


def main():
    print(__doc__)
    check(derive())


if __name__ == "__main__":
    main()
