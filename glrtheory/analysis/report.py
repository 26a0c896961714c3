"""Reports: ``analyze`` (the ``glr analyze --json`` dict), ``compare`` and ``sweep``. The only module of
the analysis that reads ``glrtheory.symbolic`` (for the asymptotic classes)."""
from __future__ import annotations

from fractions import Fraction

from tqdm import tqdm

from ..errors import GLRError, WorkLimitError
from ..patterns import MAX_TABLE_ENTRIES, Pattern
from . import counts, hankel
from .counts import check_pattern, decode_costs, nnz, total_cost
from .depth import depth
from .fit import fit_class, fit_classes, fixed_lags, lag_families
from .hankel import _method, hankel_rank_max, rank_and_error_bound, shared_rank_budget
from .hops import full_receptive_field, hop_diameter
from .limits import WorkBudget, refuse
from .liveness import cache_peak

KEYS = ("spec", "n", "nnz_a", "nnz_b", "decode_cost_max", "decode_cost_mean", "cache_peak", "depth",
        "hop_diameter", "full_receptive_field", "theta_total", "theta_decode", "theta_cache", "theta_basis",
        "theta_fit", "theta_family", "readout")
THETA = ("theta_total", "theta_decode", "theta_cache")
#: The exact counts of the report, computed together from the supports at n.
COUNT_KEYS = ("nnz_a", "nnz_b", "decode_cost_max", "decode_cost_mean")


#: Longest n, and most table entries ``nnz_a + nnz_b``, for which the readout choice is made (it builds the
#: index tables and chunk layouts at n and at the fit's shorter lengths: fenwick at n = 2^18 takes about a
#: second; at 2^20 it took 8 s of analyze's 10, on a loaded 2-core machine).
READOUT_MAX_N = 2**18
READOUT_MAX_ENTRIES = 2**24
#: The readout's class is fitted to its work estimate at ``n / 2^k``, k < READOUT_FIT_POINTS, each at least
#: READOUT_FIT_MIN_N.
READOUT_FIT_POINTS = 5
READOUT_FIT_MIN_N = 64

#: Most patterns ``compare`` takes at once: matplotlib's ten colours, one a line in ``glr compare --plot``, and a
#: bound on the time at the largest n (each pattern's report is within its own limits: five of them at n = 2^24 took
#: 34 s on the 2-core machine, so ten would take about a minute, an estimate not measured).
COMPARE_MAX_PATTERNS = 10

#: The keys added by ``rank=True``: the rank, its method, and a bound on the probability that it is below
#: the generic rank (0 for the deterministic max-flow, and when the exact rank reaches the cut bound).
RANK_KEYS = ("hankel_rank_max", "hankel_rank_method", "hankel_rank_error_bound")


def analyze(p: Pattern, n: int, rank: bool = False, rank_method: str = "exact", seed=0,
            rank_budget: WorkBudget | None = None) -> dict:
    """The ``glr analyze --json`` report: exact counts at length n and the asymptotic classes.

    Keys: ``KEYS`` (and ``RANK_KEYS`` when rank=True; ``rank_method`` "exact" over F_p with random
    coefficients from ``seed``, or "flow"; its work paid from ``rank_budget`` when given). The classes
    ``theta_*`` and their ``theta_basis``: "closed form" (``glrtheory.symbolic.costs.theta``); "closed form,
    for fixed lags" when both sides are lag lists that do not grow with n (``theta_family`` then names the
    families those lags are a truncation of, with their classes); "fitted" from exact counts over a range
    of n where no closed form exists (``theta_fit``: range, slope and residual per quantity; also "fitted,
    for fixed lags"); "none" when neither is possible.

    ``readout``: the algorithm the matrix-state readout ``glr_readout`` runs at n, its cost class and sizes
    (``glrtheory.kernels.scan.readout_plan.readout_summary``), and ``theta``, the class in n of that
    algorithm's estimated work (``readout_plan.readout_work``), fitted (``fit.fit_class``) to the estimates
    at ``n / 16, n / 8, ..., n``: a measurement over that range, not a proof (``theta_fit``: range, slope,
    residual; theta None and the reason when n / 16 < 64).

    A quantity whose work at n is over its limit (``WorkLimitError``) is None, and the last key
    ``skipped`` (present only then) maps its name to the reason, which names the limit and the largest n
    that fits (or, for a rank past what is left of ``rank_budget``, what was left); the other quantities are
    still computed.
    """
    check_pattern(p)
    _method(rank_method)
    skipped: dict[str, str] = {}
    out = {"spec": p.spec, "n": int(n),
           **(_within_limits(skipped, COUNT_KEYS, _counts, p, n) or dict.fromkeys(COUNT_KEYS))}
    hd = _within_limits(skipped, "hop_diameter", hop_diameter, p, n)
    out.update({"cache_peak": _within_limits(skipped, "cache_peak", cache_peak, p, n),
                "depth": _within_limits(skipped, "depth", depth, p, n), "hop_diameter": hd,
                "full_receptive_field": (_within_limits(skipped, "full_receptive_field", full_receptive_field, p, n)
                                         if "hop_diameter" in skipped else hd is not None)})
    out.update(_classes(p, n))
    out["readout"] = _within_limits(skipped, "readout", _readout, p, n)
    if rank:
        value, error = (_within_limits(skipped, "hankel_rank_max", rank_and_error_bound, p, n, rank_method, seed,
                                       rank_budget) or (None, None))
        out.update(zip(RANK_KEYS, (value, rank_method, error)))
    if skipped:
        out["skipped"] = skipped
    return out


def _within_limits(skipped: dict, name: str | tuple[str, ...], quantity, *args):
    """``quantity(*args)``, or None with ``skipped[name]`` = the reason when its work is over a limit (for
    each of the names, when ``name`` is a tuple of report keys computed together)."""
    try:
        return quantity(*args)
    except WorkLimitError as exc:
        skipped.update(dict.fromkeys((name,) if isinstance(name, str) else name, str(exc)))
        return None


def _counts(p: Pattern, n: int) -> dict:
    """The ``COUNT_KEYS`` of the report, from the supports at n (over a limit when a table is too large)."""
    na, nb = nnz(p, n)
    cost = decode_costs(p, n)
    return dict(zip(COUNT_KEYS, (na, nb, int(cost.max()), float(cost.mean()))))


def _classes(p: Pattern, n: int) -> dict:
    """The ``theta_*`` keys of the report (see ``analyze``)."""
    from ..symbolic.costs import theta

    th, fit, basis, family = theta(p), None, "closed form", None
    if any(th[k] is None for k in THETA):
        try:
            fit = fit_classes(p, n)
        except GLRError as exc:
            return {**th, "theta_basis": "none", "theta_fit": {"reason": str(exc)}, "theta_family": None}
        th, basis = {k: fit[k[6:]]["class"] for k in THETA}, "fitted"
    lags = fixed_lags(p, n)
    if lags is not None:
        basis += ", for fixed lags"
        matches = lag_families(lags[1]) if list(lags[0]) == [0] else []
        if matches:
            spec, lo, hi = matches[0]
            family = {"spec": spec, "same_lags_for_n": [lo, hi], **theta(Pattern.from_spec(spec)),
                      "also": [m[0] for m in matches[1:]]}
    return {**th, "theta_basis": basis, "theta_fit": fit, "theta_family": family}


def _padded_entries(p: Pattern, n: int) -> int:
    """Entries of the larger index table at n: n times its widest row."""
    return max(n * side.width() for side in counts.supports(p, n))


def _readout_excess(p: Pattern, m: int) -> int:
    """How far the readout choice at length m is over a limit (<= 0: within both): its table entries over
    ``READOUT_MAX_ENTRIES``, or an index table over ``MAX_TABLE_ENTRIES``; the two limits' refusals search it."""
    return max(sum(nnz(p, m)) - READOUT_MAX_ENTRIES, _padded_entries(p, m) - MAX_TABLE_ENTRIES)


def _readout(p: Pattern, n: int) -> dict:
    """The ``readout`` key of the report (see ``analyze``) from the tables at n, refused over
    ``READOUT_MAX_N`` or ``READOUT_MAX_ENTRIES`` entries; numpy only, torch is not imported."""
    from ..kernels.scan.readout_plan import readout_summary, readout_work

    if n > READOUT_MAX_N:
        refuse("the readout choice", p, n, lambda m: m - READOUT_MAX_N, n, READOUT_MAX_N, unit="positions")
    entries, padded = sum(nnz(p, n)), _padded_entries(p, n)
    if entries > READOUT_MAX_ENTRIES:
        refuse("the readout choice", p, n, lambda m: _readout_excess(p, m), entries, READOUT_MAX_ENTRIES,
               unit="table entries")
    if padded > MAX_TABLE_ENTRIES:
        refuse("the readout choice's index tables", p, n, lambda m: _readout_excess(p, m), padded,
               MAX_TABLE_ENTRIES, unit="padded entries")
    tables = p.tables(n)
    out = readout_summary(tables)
    lengths = [n >> k for k in range(READOUT_FIT_POINTS - 1, -1, -1)]
    if lengths[0] < READOUT_FIT_MIN_N:
        reason = (f"n = {n} is too short: the fit over n / {1 << (READOUT_FIT_POINTS - 1)} .. n needs n >= "
                  f"{READOUT_FIT_MIN_N << (READOUT_FIT_POINTS - 1)}")
        return {**out, "theta": None, "theta_fit": {"reason": reason}}
    # the tables at n are built once: their layouts, memoized on them, serve the summary and the fit
    fit = fit_class(lengths, [readout_work(tables if m == n else p.tables(m), out["algorithm"]) for m in lengths],
                    least=Fraction(1))        # the readout reads every position
    return {**out, "theta": fit.pop("class"), "theta_fit": {"range": [lengths[0], n], **fit}}


def compare(patterns, n: int, rank: bool = False, rank_method: str = "exact", seed=0,
            progress: bool = False, rank_budget: WorkBudget | None = None) -> list[dict]:
    """``analyze`` for each pattern at the same n (the rows of ``glr compare``), at most ``COMPARE_MAX_PATTERNS``
    of them; ``progress``: a tqdm bar over the patterns on a terminal's stderr (an exact rank at large n takes
    seconds each).

    The ranks share ``rank_budget`` (default: a fresh ``compare_rank_budget``), each within its own limit too: a
    rank past what is left of it is skipped, with that reason, and the next pattern's may still fit."""
    patterns = list(patterns)
    if len(patterns) > COMPARE_MAX_PATTERNS:
        raise WorkLimitError(f"compare takes at most {COMPARE_MAX_PATTERNS} patterns at once (got {len(patterns)}):"
                             " compare them in groups")
    if rank and rank_budget is None:
        rank_budget = compare_rank_budget(rank_method)
    return [analyze(p, n, rank=rank, rank_method=rank_method, seed=seed, rank_budget=rank_budget)
            for p in tqdm(patterns, desc="patterns", disable=None if progress else True, leave=False)]


def compare_rank_budget(rank_method: str) -> WorkBudget:
    """The budget of ``hankel.RANKS_MAX_WORK[rank_method]`` steps that the ranks of one compare share."""
    return shared_rank_budget(rank_method, "the compare's", f"; rank it alone (glr analyze --rank --rank-method "
                              f"{rank_method}) or compare fewer patterns")


def sweep(p: Pattern, ns, rank: bool = False, rank_method: str = "flow") -> dict[str, list]:
    """Total cost ``nnz_a + nnz_b``, ``cache_peak`` (and ``hankel_rank_max``) at each n of ``ns``."""
    out = {"n": [int(n) for n in ns], "total_cost": [total_cost(p, n) for n in ns],
           "cache_peak": [cache_peak(p, n) for n in ns]}
    if rank:
        out["hankel_rank_max"] = [hankel_rank_max(p, n, rank_method) for n in ns]
    return out


def rank_series(p: Pattern, ns, rank_method: str = "flow", seed=0, budget: WorkBudget | None = None) -> dict:
    """``hankel_rank_max`` at each n of ``ns`` in turn, its work paid from ``budget`` when given, up to the first n
    whose rank is over a limit or past what is left of the budget: ``{"n", "hankel_rank_max", "stopped"}``, with
    ``stopped`` that refusal's message (None when every n was ranked)."""
    out: dict = {"n": [], "hankel_rank_max": [], "stopped": None}
    for n in ns:
        try:
            rank = hankel_rank_max(p, n, rank_method, seed, budget)
        except WorkLimitError as exc:
            out["stopped"] = str(exc)
            break
        out["n"].append(int(n))
        out["hankel_rank_max"].append(rank)
    return out


def clear_caches() -> None:
    """Forget the cached supports and rank profiles (for timing, or after patterns change)."""
    counts.cached_supports.cache_clear()
    for cached in (hankel.flow_profile, hankel.exact_profile, hankel.exact_max):
        cached.cache_clear()
