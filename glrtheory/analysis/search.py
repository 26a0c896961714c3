"""Search: the patterns that meet budgets at length n, ranked by total cost.

Bounds: ``max_decode`` (max over t of ``|A(t)| + |B(t)|``), ``max_cache`` (cache peak), ``max_hops`` (hop
diameter; a pattern with an unreachable pair has none), ``min_rank`` (max generic Hankel rank). Cheap
quantities are checked first; the rank is computed only for patterns that pass the rest, and never when
the cache already rules it out (rank <= cache). A candidate whose hops or rank are over the analysis
limits is listed as skipped, with the reason, never silently dropped.

Budget: the ranks of one search share ``hankel.RANKS_MAX_WORK`` steps of work (2^37 for the exact method, 2^36
for the flow), on top of each rank's own limit: at n = 4096 the default candidates' exact ranks took 458 s, each
within its limit. A candidate whose rank would go past what is left is skipped, with a reason that names the
limit, and the search goes on to the next (a cheaper rank may still fit).

Candidates: the built-in families (``BUILTIN``) and a grid over the parameter of a family
(``family_grid``: window W, blocks C, exponent alpha, power base b), plus any user patterns.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..errors import GLRError
from ..patterns import Pattern
from ..patterns.support import check_length
from .counts import check_pattern, decode_costs, total_cost
from .hankel import rank_and_error_bound, shared_rank_budget
from .hops import hop_diameter
from .limits import WorkBudget
from .liveness import cache_peak

#: The parameterless built-in families, and one default member of each parametric one.
BUILTIN = ("ssm", "attention", "power2", "quadratic", "fenwick", "blocks", "kron:1,11")
#: Longest n a search takes: it evaluates every candidate at n (the default candidates took 33 s at 2^22 on the
#: development machine, and over 120 s and 6 GB at 2^24).
SEARCH_MAX_N = 2 ** 22
#: The families with a searchable parameter.
FAMILY_PARAMETERS = {"window": "W", "blocks": "C", "exponent": "alpha", "power": "b"}


def check_search_length(n) -> int:
    """n, refused past ``SEARCH_MAX_N`` before anything else is checked or built at it (a grid at n = 2^31 would
    hold window:2^31, which no pattern is)."""
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > SEARCH_MAX_N:
        raise GLRError(f"a search at n={n} is over its limit n <= {SEARCH_MAX_N} (it evaluates every candidate at n)")
    return check_length(n)


def family_grid(family: str, n: int, values=None) -> list[str]:
    """Specs of ``family`` over its parameter: ``values`` when given, else a default grid at length n
    (W and C: powers of two up to n; alpha: 0, 0.05, ..., 1; b: 2..16)."""
    if family not in FAMILY_PARAMETERS:
        raise GLRError(f"no parametric search for family {family!r}; choose one of {', '.join(FAMILY_PARAMETERS)}")
    if values is None:
        if family in ("window", "blocks"):
            values = [2**k for k in range(int(n).bit_length()) if 2**k <= n]
        elif family == "exponent":
            values = [round(0.05 * k, 2) for k in range(21)]
        else:
            values = list(range(2, 17))
    if family != "exponent" and any(float(v) != int(v) for v in values):
        raise GLRError(f"{family}'s {FAMILY_PARAMETERS[family]} takes integers, got {list(values)}")
    return [f"{family}:{np.format_float_positional(v, trim='-') if family == 'exponent' else int(v)}"
            for v in values]


def default_candidates(n: int) -> list[str]:
    """``BUILTIN`` plus the default grids of window, blocks and exponent at length n."""
    return list(BUILTIN) + [s for f in ("window", "blocks", "exponent") for s in family_grid(f, n)]


def _check_bound(v, what: str):
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
        raise GLRError(f"{what} must be a non-negative integer, got {v!r}")
    return v


def evaluate(p: Pattern, n: int, max_decode=None, max_cache=None, max_hops=None, min_rank=None,
             rank_method: str = "exact", rank_budget: WorkBudget | None = None) -> dict:
    """One candidate: ``{"spec", "meets", "failed", "total_cost", ...}`` with the quantities computed so far.

    ``failed`` names the first bound that fails (None when all hold); a ``GLRError`` from the hops or the
    rank (over a limit, or past what is left of ``rank_budget``, which pays the rank's work) propagates, for
    ``search`` to list the candidate as skipped.
    """
    row = {"spec": p.spec, "total_cost": total_cost(p, n), "decode_cost_max": int(decode_costs(p, n).max())}
    row["cache_peak"] = cache_peak(p, n)
    checks = [("max_decode", max_decode, lambda: row["decode_cost_max"] <= max_decode),
              ("max_cache", max_cache, lambda: row["cache_peak"] <= max_cache),
              ("max_hops", max_hops, lambda: _hops(row, p, n) is not None and row["hop_diameter"] <= max_hops),
              ("min_rank", min_rank, lambda: row["cache_peak"] >= min_rank
               and _rank(row, p, n, rank_method, rank_budget) >= min_rank)]
    row["failed"] = next((name for name, bound, ok in checks if bound is not None and not ok()), None)
    row["meets"] = row["failed"] is None
    return row


def _hops(row: dict, p: Pattern, n: int):
    row["hop_diameter"] = hop_diameter(p, n)
    return row["hop_diameter"]


def _rank(row: dict, p: Pattern, n: int, method: str, budget: WorkBudget | None) -> int:
    row["hankel_rank_max"], row["hankel_rank_error_bound"] = rank_and_error_bound(p, n, method, budget=budget)
    return row["hankel_rank_max"]


def search(patterns, n: int, max_decode=None, max_cache=None, max_hops=None, min_rank=None,
           rank_method: str = "exact", progress: bool = False) -> dict:
    """The patterns that meet every given bound at length n, ranked by total cost ``nnz_a + nnz_b``.

    Parameters
    ----------
    patterns : iterable of Pattern
        The candidates (see ``default_candidates`` and ``family_grid`` for specs to build them from).
    n : int
        Sequence length.
    max_decode, max_cache, max_hops, min_rank : int, optional
        The bounds; None leaves a quantity free.
    rank_method : {"exact", "flow"}
        How ``min_rank`` is checked (see ``hankel_profile``).
    progress : bool
        A tqdm bar over the candidates on a terminal's stderr (an exact rank at large n takes seconds each).

    Returns
    -------
    dict
        ``{"n", "bounds", "matches": [rows by total cost], "rejected": [rows with "failed"],
        "skipped": [{"spec", "reason"}], "rank_work": {"method", "spent", "limit"}}``.

    Notes
    -----
    The ranks of one search share ``hankel.RANKS_MAX_WORK[rank_method]`` steps of work (each within its own
    limit too); a candidate whose rank would go past what is left is skipped, with that reason, and the
    search goes on (a cheaper rank may still fit). A rank kept from an earlier call costs nothing.

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> out = search([Pattern.from_spec(s) for s in ("ssm", "power2", "fenwick", "attention")], 4096,
    ...              max_cache=64, max_hops=16)
    >>> [r["spec"] for r in out["matches"]], [r["spec"] for r in out["rejected"]]
    (['fenwick'], ['ssm', 'power2', 'attention'])
    """
    n = check_search_length(n)
    bounds = {"max_decode": _check_bound(max_decode, "max_decode"), "max_cache": _check_bound(max_cache, "max_cache"),
              "max_hops": _check_bound(max_hops, "max_hops"), "min_rank": _check_bound(min_rank, "min_rank")}
    budget = shared_rank_budget(rank_method, "the search's", f"; rank it alone (glr analyze --rank --rank-method "
                                f"{rank_method}) or search fewer candidates")
    out = {"n": n, "bounds": bounds, "matches": [], "rejected": [], "skipped": []}
    for p in tqdm([check_pattern(p) for p in patterns], desc="candidates", disable=None if progress else True,
                  leave=False):
        try:
            row = evaluate(p, n, rank_method=rank_method, rank_budget=budget, **bounds)
        except GLRError as exc:
            out["skipped"].append({"spec": p.spec, "reason": str(exc)})
            continue
        out["matches" if row["meets"] else "rejected"].append(row)
    out["matches"].sort(key=lambda r: (r["total_cost"], r["spec"]))
    out["rank_work"] = {"method": rank_method, "spent": budget.spent, "limit": budget.total}
    return out
