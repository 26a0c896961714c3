"""Depth: the number of edges of the longest path in the B-graph (sequential steps of a level-scheduled
solve). The B-side support answers ``longest_paths()`` from its structure (lag sets, Kronecker powers)
or from its table."""
from __future__ import annotations

from ..patterns import Pattern
from .counts import TABLE_MAX_ENTRIES, supports


def depth(p: Pattern, n: int) -> int:
    """Number of edges of the longest path in the B-graph (steps of a level-scheduled solve)."""
    _, sb = supports(p, n)
    return int(sb.longest_paths(TABLE_MAX_ENTRIES).max(initial=0))
