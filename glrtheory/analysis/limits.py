"""Refusals that name the largest n that fits: every work limit of the analysis states its model of the
work as a function of n, so a refusal can search for the largest length within the limit."""
from __future__ import annotations

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
