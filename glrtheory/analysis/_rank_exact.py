"""The exact strategy of the Hankel rank: a random instance over F_p, its sketch per cut (``_rank_sketch``),
and the limits on its work."""
from __future__ import annotations

import functools

import numpy as np

from ..patterns import Pattern
from ..prime_field import PRIME
from ._rank_common import cut_bounds, tables
from ._rank_anchor import anchored_rank, rref_with_transform
from ._rank_sketch import advance, backward_sweep, block_rank, forward_sweep
from .counts import supports
from .limits import WorkBudget, cached_within_budget, refuse

#: Largest work of the exact rank (sweeps, prefix updates and eliminations; see ``_exact_costs``).
EXACT_RANK_MAX_WORK = 2**36
#: Largest sketch arrays (n * K entries each, int64).
EXACT_RANK_MAX_ENTRIES = 2**23


class _Sketch:
    """The random instance of ``method="exact"`` at length n: ``X = M Omega``, ``P = M^T Psi`` and the running
    prefix sum ``S`` (at cut ``self.t``), moved to any cut by rank-2 updates."""

    def __init__(self, p: Pattern, n: int, seed):
        self.bounds = cut_bounds(p, n)
        K = int(self.bounds.max(initial=0))
        a_idx, b_idx = tables(p, n)
        rng = np.random.default_rng(seed)
        a = np.where(a_idx >= 0, rng.integers(1, PRIME, size=a_idx.shape, dtype=np.int64), 0)
        b = np.where(b_idx >= 0, rng.integers(1, PRIME, size=b_idx.shape, dtype=np.int64), 0)
        self.omega = rng.integers(0, PRIME, size=(n, K), dtype=np.int64)
        self.psi = rng.integers(0, PRIME, size=(n, K), dtype=np.int64)
        self.X = forward_sweep(a_idx, a, b_idx, b, self.omega)
        self.P = backward_sweep(a_idx, a, b_idx, b, self.psi)
        self.S = np.zeros((K, K), dtype=np.int64)
        self.t, self.factor = -1, None

    def rank(self, t: int) -> int:
        """Rank of the leading ``k_t x k_t`` block of the sketch at cut t (S moved there, one elimination)."""
        lo, hi = sorted((self.t + 1, t + 1))
        advance(self.S, lo, hi, 1 if t > self.t else -1, self.P, self.omega, self.psi, self.X)
        self.t = t
        return block_rank(self.S, int(self.bounds[t]))

    def anchor(self) -> None:
        """Factor the whole K x K sketch at the current cut, for ``rank_near``."""
        self.factor, self.t_anchor = rref_with_transform(self.S), self.t

    def rank_near(self, t: int) -> int:
        """Rank of the whole sketch at cut t as the anchor's plus ``U V^T``, the 2|t - t_a| prefix terms
        between them (``_rank_anchor``); no elimination of a K x K matrix."""
        a = self.t_anchor
        rows = np.arange(min(a, t) + 1, max(a, t) + 1)
        P, psi = (self.P[rows], PRIME - self.psi[rows]) if t > a else (PRIME - self.P[rows], self.psi[rows])
        U = np.ascontiguousarray(np.concatenate([P, psi]).T)
        V = np.ascontiguousarray(np.concatenate([self.omega[rows], self.X[rows]]).T)
        return int(anchored_rank(*self.factor, U, V))


def _exact_costs(p: Pattern, n: int) -> tuple[int, int, np.ndarray, int]:
    """(sweep steps, steps per prefix update, steps per cut, sketch entries): sweeps ``2 K (n + nnz)``,
    updates ``2 K^2`` per position moved, an elimination ``k^3`` per cut visited, and ``n K`` entries."""
    sa, sb = supports(p, n)
    k = cut_bounds(p, n)
    nnz = int(sa.counts().sum() + sb.counts().sum())
    K = int(k.max(initial=0))
    return 2 * K * (n + nnz), 2 * K * K, k ** 3, n * K


def _exact_excess(p: Pattern, n: int) -> int:
    """How far the whole exact profile at n is over the limits (<= 0: it fits)."""
    sweep, step, per_cut, entries = _exact_costs(p, n)
    work = sweep + step * n + int(per_cut.sum())
    return max(work - EXACT_RANK_MAX_WORK, entries - EXACT_RANK_MAX_ENTRIES)


def _exact_check(p: Pattern, n: int, work: int, entries: int) -> None:
    if entries > EXACT_RANK_MAX_ENTRIES:
        refuse("the exact Hankel rank (sketch arrays)", p, n,
               lambda m: _exact_costs(p, m)[3] - EXACT_RANK_MAX_ENTRIES, entries, EXACT_RANK_MAX_ENTRIES,
               "the largest n whose sketch arrays fit is", unit="entries")
    if work > EXACT_RANK_MAX_WORK:
        refuse("the exact Hankel rank", p, n, lambda m: _exact_excess(p, m), work, EXACT_RANK_MAX_WORK,
               "the largest n whose every cut fits is")


@functools.lru_cache(maxsize=16)
def exact_profile(p: Pattern, n: int, seed) -> np.ndarray:
    sweep, step, per_cut, entries = _exact_costs(p, n)
    _exact_check(p, n, sweep + step * n + int(per_cut.sum()), entries)
    sketch = _Sketch(p, n, seed)
    return np.array([sketch.rank(t) for t in range(n - 1)], dtype=np.int64)


@cached_within_budget(maxsize=16)
def exact_max(p: Pattern, n: int, seed, budget: WorkBudget | None = None) -> tuple[int, float]:
    """``(rank, error)``: the max over cuts of the exact rank, and a bound on the probability that it is
    below the generic maximum (0 when it reaches the largest cut bound, which makes it certain).

    Cuts are visited by decreasing bound ``b_t``, starting from ``k_t``; a rank r found at cut t' lowers
    every bound to ``min(b_t, r + |t - t'|)`` (one row less and one column more change a rank by at most
    one), and the search stops when no bound exceeds the best rank. The work is checked cut by cut against
    ``EXACT_RANK_MAX_WORK`` (a refusal names the largest n whose whole profile fits) and paid from ``budget``
    when given (a refusal names what was left of it; a kept result costs nothing). Wrong only if a visited
    cut fell short: the error bound is the sum of ``k_t (n + 2) / (p - 1)`` over them (Schwartz-Zippel,
    union bound), capped at 1.
    """
    if n == 1:
        return 0, 0.0
    sweep, step, per_cut, entries = _exact_costs(p, n)
    k = cut_bounds(p, n)
    K, bound, t_axis = int(k.max()), k.copy(), np.arange(n - 1)
    spent, visited, best, here = 0, [], 0, -1
    sketch = None

    def pay(cost: int) -> None:
        """Refuse the next ``cost`` steps past the limit of one rank or the budget, else count them."""
        nonlocal spent
        _exact_check(p, n, spent + cost, entries)
        if budget is not None:
            budget.pay("the exact Hankel rank", p, n, spent, cost)
        spent += cost

    while bound.max() > best:
        t = int(np.argmax(bound))
        near = bool(visited) and abs(t - visited[0]) <= K // 8        # cheaper from the first cut's factors
        if near:
            if sketch.factor is None:                                  # factor the first cut's sketch
                pay(2 * K**3 + step * abs(visited[0] - here))
                sketch.rank(visited[0])
                sketch.anchor()
                here = visited[0]
            pay(4 * K * K * abs(t - visited[0]))
            r = sketch.rank_near(t)
        else:
            pay(int(per_cut[t]) + step * abs(t - here) + (sweep if sketch is None else 0))   # with the sweeps, once
            if sketch is None:
                sketch = _Sketch(p, n, seed)
            r, here = sketch.rank(t), t
        visited.append(t)
        best = max(best, r)
        bound = np.minimum(bound, r + np.abs(t_axis - t))
    if best >= k.max():
        return best, 0.0
    return best, min(1.0, float(k[visited].sum() * (n + 2) / (PRIME - 1)))      # a probability: at most 1
