"""Refusals that name the largest n that fits: every work limit of the analysis states its model of the
work as a function of n, so a refusal can search for the largest length within the limit. And budgets: a total
of work that several computations share (a search's ranks), each refused once it would go past what is left."""
from __future__ import annotations

import dataclasses
import functools

from ..errors import GLRError, WorkLimitError
from ..patterns import Pattern


def largest_fitting(work, n: int) -> int:
    """The largest m < n with ``work(m) <= 0`` (work returns the excess over the limit; 0 if none)."""
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            fits = work(mid) <= 0
        except GLRError:
            fits = False
        lo, hi = (mid, hi) if fits else (lo, mid - 1)
    return lo


def refuse(what: str, p: Pattern, n: int, work, amount: int, limit: int,
           fits: str = "the largest n that fits is", unit: str = "steps") -> None:
    """A ``WorkLimitError`` naming the limit and the largest m < n with ``work(m) <= 0``, introduced by ``fits``."""
    m = largest_fitting(work, n)
    fit = f"{fits} {m}" if m else "no n fits"
    raise WorkLimitError(f"{what} of {p.spec!r} at n={n} needs {amount} {unit}, over the limit {limit}; {fit}")


@dataclasses.dataclass(eq=False)
class WorkBudget:
    """A total of work that several computations share, in the steps of their work model: ``spent`` of ``total``.
    ``name`` says whose total it is and ``advice`` how to do without it, for the refusals."""
    total: int
    name: str
    advice: str = ""
    spent: int = 0

    def pay(self, what: str, p: Pattern, n: int, done: int, cost: int) -> None:
        """Count the next ``cost`` steps of ``what`` (which has paid ``done`` before), or refuse them past the total.

        The refusal names no largest n that fits: what is left depends on what ran before."""
        left = self.total - self.spent
        if cost > left:
            raise WorkLimitError(f"{what} of {p.spec!r} at n={n} needs more than the {done + left} steps left of "
                                 f"{self.name}{self.advice}")
        self.spent += cost


def cached_within_budget(maxsize: int):
    """An LRU cache of ``f(*args, budget=None)`` keyed by ``args`` alone: a kept result costs no budget the second
    time, and a refusal is not kept (a larger budget may compute it). ``cache_clear`` as ``functools.lru_cache``."""
    def wrap(f):
        @functools.lru_cache(maxsize=maxsize)
        def slot(*args) -> dict:
            return {}

        @functools.wraps(f)
        def cached(*args, budget: WorkBudget | None = None):
            kept = slot(*args)
            if "result" not in kept:
                kept["result"] = f(*args, budget=budget)
            return kept["result"]
        cached.cache_clear = slot.cache_clear
        return cached
    return wrap
