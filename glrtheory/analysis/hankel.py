"""Generic Hankel ranks (max-flow on the dependency graph, and exactly over F_p) and degrees of freedom.

The generic Hankel rank at cut t is the rank of ``M[t+1:, :t+1]``, ``M = (I - B)^{-1} A``, with independent
indeterminate coefficients on the supports. By Lindström-Gessel-Viennot and Menger it equals the maximum
number of vertex-disjoint paths from ``{u_0..u_t}`` to ``{h_{t+1}..h_{n-1}}``.
"""
from __future__ import annotations

import functools

import numpy as np
from tqdm import tqdm

from .. import graph
from ..errors import GLRError
from ..patterns import Pattern
from ..patterns.support import check_length
from ..prime_field import mixing_matrix_mod_p, random_coefficients, rank_mod_p
from .counts import check_pattern, nnz

#: Largest n for the per-cut max-flow (generic Hankel rank).
HANKEL_MAX_N = 1024
#: Largest total size of the per-cut flow problems, (n - 1) * (2n + nnz_a + nnz_b).
HANKEL_MAX_WORK = 2**22
#: Largest n for the degrees of freedom (exact rank of the Jacobian over F_p).
DOF_MAX_N = 256


def hankel_profile(p: Pattern, n: int) -> np.ndarray:
    """Generic Hankel rank at each cut t = 0..n-2: the maximum number of vertex-disjoint paths from
    ``{u_0..u_t}`` to ``{h_{t+1}..h_{n-1}}`` (networkx max-flow with unit vertex capacities)."""
    return _hankel_profile(check_pattern(p), check_length(n)).copy()


@functools.lru_cache(maxsize=16)
def _hankel_profile(p: Pattern, n: int) -> np.ndarray:
    if n > HANKEL_MAX_N:
        raise GLRError(f"the generic Hankel rank (one max-flow per cut) is limited to n <= {HANKEL_MAX_N}, "
                       f"got n={n}")
    na, nb = nnz(p, n)
    work = (n - 1) * (2 * n + na + nb)
    if work > HANKEL_MAX_WORK:
        raise GLRError(f"the generic Hankel rank of {p.spec!r} at n={n} needs n-1 max-flows on graphs of "
                       f"{2 * n + na + nb} vertices+edges ({work} in all), over the limit {HANKEL_MAX_WORK}")
    F = graph.split_graph(graph.dependency_graph(p, n))
    out = np.zeros(max(n - 1, 0), dtype=np.int64)
    for t in tqdm(range(n - 1), desc=f"max-flow cuts of {p.spec}", disable=None, leave=False):
        out[t] = graph.max_disjoint_paths(F, map(graph.u, range(t + 1)), map(graph.h, range(t + 1, n)))
    return out


def hankel_rank_max(p: Pattern, n: int) -> int:
    """Max over cuts of the generic Hankel rank (0 when n = 1)."""
    return int(hankel_profile(p, n).max(initial=0))


def hankel_profile_exact(p: Pattern, n: int, seed=0) -> np.ndarray:
    """Rank over F_p (p = 2^31-1) of ``M[t+1:, :t+1]`` for each cut t, with ``M = (I - B)^{-1} A`` built from
    uniformly random coefficients on the supports: the generic Hankel rank at every cut with probability
    >= 1 - n^3/p (Schwartz-Zippel: each cut's rank minor has degree <= n in the coefficients, and there
    are n - 1 cuts)."""
    M = mixing_matrix_mod_p(*random_coefficients(check_pattern(p), check_length(n), seed))
    return np.array([rank_mod_p(M[t + 1:, : t + 1]) for t in range(n - 1)], dtype=np.int64)


def degrees_of_freedom(p: Pattern, n: int, seed=0) -> int:
    """Generic rank of the Jacobian of ``(a, b) -> M = (I - B)^{-1} A``, exactly over F_p.

    ``dM = L (dA + dB M)`` with L = (I - B)^{-1} invertible, and row t of ``dA + dB M`` involves only the
    coefficients of row t, so the rank is ``sum_t dim span({e_s : s in A(t)} u {M[s] : s in B(t)})``
    ``= sum_t |A(t)| + rank(M[B(t)] with the columns of A(t) removed)``.
    """
    n = check_length(n)
    check_pattern(p)
    if n > DOF_MAX_N:
        raise GLRError(f"degrees of freedom are limited to n <= {DOF_MAX_N}, got n={n}")
    a_idx, b_idx, a, b = random_coefficients(p, n, seed)
    M = mixing_matrix_mod_p(a_idx, b_idx, a, b)
    total = 0
    for t in range(n):
        in_a = a_idx[t][a_idx[t] >= 0]
        rows = b_idx[t][b_idx[t] >= 0]
        keep = np.setdiff1d(np.arange(t), in_a)
        total += in_a.size + (rank_mod_p(M[np.ix_(rows, keep)]) if rows.size and keep.size else 0)
    return total
