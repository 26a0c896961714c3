"""glrtheory: structured generalized linear recurrences ``H = (I - B)^{-1} A U``.

    from glrtheory import Pattern, solve, factor
    p = Pattern.from_spec("power2")
    a_idx, b_idx = p.tables(n)
    h = solve(p, a, b, u)
"""
from .errors import GLRError
from .patterns import Pattern
from .recurrence import best_approximation, factor, mixing_matrix, solve

__all__ = ["GLRError", "Pattern", "solve", "factor", "mixing_matrix", "best_approximation"]
__version__ = "0.1.0"
