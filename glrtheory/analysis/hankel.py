"""Generic Hankel ranks and degrees of freedom.

The generic Hankel rank at cut t is the rank of ``M[t+1:, :t+1]``, ``M = (I - B)^{-1} A``, with independent
indeterminate coefficients on the supports. Two strategies, chosen with ``method=``:

* ``"flow"``: by Lindström-Gessel-Viennot and Menger it equals the maximum number of vertex-disjoint
  paths from ``{u_0..u_t}`` to ``{h_{t+1}..h_{n-1}}``: one incremental max-flow over all cuts
  (deterministic);
* ``"exact"``: the rank over F_p (p = 2^31 - 1) with random coefficients, by a two-sided sketch of size
  ``k_t = min(live set, t + 1, n - t - 1)`` per cut (randomized, one-sided: it never exceeds the generic
  rank, and falls short with probability <= k (n + 2) / (p - 1), Schwartz-Zippel).

Both bound the work and refuse above the limit, naming the largest n that fits; both can also pay their work
from a ``WorkBudget`` that the ranks of one command share (``shared_rank_budget``: a search's candidates, a
compare's patterns), and refuse past what is left of it.
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from ..patterns.support import check_length
from ..prime_field import mixing_matrix_mod_p, random_coefficients_mod_p, rank_mod_p
from ._rank_common import cut_bounds
from ._rank_exact import EXACT_RANK_MAX_ENTRIES, EXACT_RANK_MAX_WORK, exact_max, exact_profile
from ._rank_flow import FLOW_RANK_MAX_WORK, flow_profile
from .counts import check_pattern
from .limits import WorkBudget

#: Largest n for the degrees of freedom (exact rank of the Jacobian over F_p).
DOF_MAX_N = 256
#: The rank strategies.
RANK_METHODS = ("exact", "flow")
#: Total work of the ranks one command computes together (a search's candidates; a compare's patterns and its
#: plot's rank series), per method, in the steps of its work model (those of ``EXACT_RANK_MAX_WORK`` and
#: ``FLOW_RANK_MAX_WORK``), on top of each rank's own limit. Measured on the 2-core development machine, one rank
#: at a time: exact ranks at n = 4096 ran at 0.13-0.74 ns a step (attention 56 Gi steps in 31 s, power2 24 Gi in
#: 11 s, exponent:0.25 44 Gi in 35 s; the default search candidates' 917 Gi in 458 s), so 2^37 = 128 Gi is 1 to 1.7
#: minutes: ``glr search --n 4096 --min-rank 1`` took 61 s (480 s without it). Flow ranks ran at 0.02-5.2 ns a
#: step (blocks:2048 at n = 2560: 11 Gi in 60 s), and with 2^36 the default flow search took 53 s at n = 2560
#: (155 s without it) and 87 s at n = 4096 (106 s).
RANKS_MAX_WORK = {"exact": 2**37, "flow": 2**36}


# -- public API ------------------------------------------------------------------------------------------
def _method(method: str) -> str:
    if method not in RANK_METHODS:
        raise GLRError(f"unknown rank method {method!r}; choose one of {', '.join(RANK_METHODS)}")
    return method


def shared_rank_budget(method: str, whose: str, advice: str) -> WorkBudget:
    """The ``WorkBudget`` of ``RANKS_MAX_WORK[method]`` steps that the ranks of one command share: ``whose`` names
    the command ("the search's") and ``advice`` says, for its refusals, how to do without it."""
    total = RANKS_MAX_WORK[_method(method)]
    return WorkBudget(total, f"{whose} rank work limit RANKS_MAX_WORK[{method!r}] = {total}", advice)


def hankel_profile(p: Pattern, n: int, method: str = "flow", seed=0) -> np.ndarray:
    """Generic Hankel rank at each cut t = 0..n-2.

    Parameters
    ----------
    p : Pattern
        The pattern whose mixing matrix ``M = (I - B)^{-1} A`` is cut.
    n : int
        Sequence length; the cuts are t = 0..n-2.
    method : {"flow", "exact"}
        ``"flow"``: maximum number of vertex-disjoint paths from ``{u_0..u_t}`` to ``{h_{t+1}..h_{n-1}}``
        (incremental max-flow, deterministic). ``"exact"``: rank over F_p of a random sketch of each block.
    seed : int
        Random seed of ``"exact"``.

    Returns
    -------
    numpy.ndarray
        int64 ``[n - 1]``.

    Raises
    ------
    GLRError
        Unknown method, or work over the limit (the message names the largest n that fits).

    Notes
    -----
    Flow: O(n (n + nnz)) time at worst. Exact: two sweeps O(K (n + nnz)) and per cut O(k^2 (live + k)),
    K the largest cut bound; it can only fall short, with probability <= k (n + 2) / (p - 1) per cut.

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> hankel_profile(Pattern.from_spec("fenwick"), 8).tolist()
    [1, 2, 2, 2, 2, 2, 1]
    >>> hankel_profile(Pattern.from_spec("fenwick"), 8, method="exact").tolist()
    [1, 2, 2, 2, 2, 2, 1]
    """
    p, n = check_pattern(p), check_length(n)
    if _method(method) == "flow":
        return flow_profile(p, n).copy()
    return exact_profile(p, n, seed).copy()


def hankel_rank_max(p: Pattern, n: int, method: str = "flow", seed=0, budget: WorkBudget | None = None) -> int:
    """Max over cuts of the generic Hankel rank (0 when n = 1); ``method`` and ``seed`` as in
    ``hankel_profile`` (``"exact"`` through ``exact_rank_max``), its work paid from ``budget`` when given."""
    p, n = check_pattern(p), check_length(n)
    if _method(method) == "flow":
        return int(flow_profile(p, n, budget=budget).max(initial=0))
    return exact_rank_max(p, n, seed, budget)[0]


def exact_rank_max(p: Pattern, n: int, seed=0, budget: WorkBudget | None = None) -> tuple[int, float]:
    """The max over cuts of the rank over F_p (p = 2^31 - 1) of random instances, and a bound on the
    probability that it is below the generic maximum.

    Parameters
    ----------
    p : Pattern
        The pattern whose random instances are ranked.
    n : int
        Sequence length (the work is about ``n K^2``, K the largest cut bound).
    seed : int
        Seed of the random coefficients and sketches.
    budget : WorkBudget, optional
        A total of work shared with other ranks (a search's), which pays the work as it goes; a rank kept
        from an earlier call costs nothing.

    Returns
    -------
    (int, float)
        The rank, and the error bound: 0 when the rank reaches the largest cut bound
        ``min(live set, t + 1, n - t - 1)`` (then it is certain), else ``sum k_t (n + 2) / (p - 1)`` over
        the cuts visited (Schwartz-Zippel: a k x k minor of a sketch has degree <= k (n + 2)).

    Raises
    ------
    GLRError
        Work over the limit (the message names the largest n whose whole profile fits), or past what is
        left of ``budget`` (the message says so, and what was left).

    Notes
    -----
    Cuts are visited by decreasing bound; a rank r at cut t' bounds every cut t by ``r + |t - t'|``, and
    the search stops when no cut can exceed the best rank. A visit costs O(k^2 (live + k)).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> exact_rank_max(Pattern.from_spec("power2"), 128)        # reaches the cache: certain
    (64, 0.0)
    """
    return exact_max(check_pattern(p), check_length(n), seed, budget=budget)


def rank_and_error_bound(p: Pattern, n: int, method: str = "exact", seed=0,
                         budget: WorkBudget | None = None) -> tuple[int, float]:
    """``(hankel_rank_max, bound on P(rank below the generic rank))``: ``exact_rank_max`` for ``"exact"``;
    the deterministic max-flow rank and 0 for ``"flow"``; the work paid from ``budget`` when given."""
    if _method(method) == "exact":
        return exact_rank_max(p, n, seed, budget)
    return hankel_rank_max(p, n, method, budget=budget), 0.0


def hankel_profile_exact(p: Pattern, n: int, seed=0) -> np.ndarray:
    """Reference: rank over F_p (p = 2^31-1) of the dense block ``M[t+1:, :t+1]`` for each cut t, with
    ``M = (I - B)^{-1} A`` from uniformly random coefficients on the supports (n <= 512). It is the
    generic Hankel rank at every cut with probability >= 1 - n^3/p (Schwartz-Zippel: each cut's rank
    minor has degree <= n^2 in the coefficients... summed over the n - 1 cuts)."""
    M = mixing_matrix_mod_p(*random_coefficients_mod_p(check_pattern(p), check_length(n), seed))
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
    a_idx, b_idx, a, b = random_coefficients_mod_p(p, n, seed)
    M = mixing_matrix_mod_p(a_idx, b_idx, a, b)
    total = 0
    for t in range(n):
        in_a = a_idx[t][a_idx[t] >= 0]
        rows = b_idx[t][b_idx[t] >= 0]
        keep = np.setdiff1d(np.arange(t), in_a)
        total += in_a.size + (rank_mod_p(M[np.ix_(rows, keep)]) if rows.size and keep.size else 0)
    return total
