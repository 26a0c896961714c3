"""The hop-diameter strategies: ``lag_distances``, ``interval_propagation``, ``mirrored_propagation``,
``breadth_first``.

The hop diameter is the max over pairs s <= t of hops(s -> t), the least number of B-edges on a route
from input u_s to state h_t (one A-edge, then B-edges); None when some pair is unreachable. Every
strategy has the signature ``method(p, n, max_work=None) -> int | None`` (a private ``_impl`` that
computes, a public wrapper that validates), so ``hop_diameter(p, n, method=...)`` can swap them, as
networkx's ``maximum_flow(..., flow_func=)`` does. A strategy raises ``HopMethodError`` when the structure
it needs is missing or its work would exceed ``max_work`` (default ``HOPS_MAX_WORK``).
"""
from __future__ import annotations

from ..patterns import Pattern
from ..checks import check_integer
from . import _hop_impls as impls
from ._hop_impls import HopMethodError  # noqa: F401  (documented in Raises)
from .counts import supports


_SECTIONS = """
    Parameters
    ----------
    p : Pattern
        {needs}
    n : int
        Sequence length.
    max_work : int, optional
        Largest {work} (default ``HOPS_MAX_WORK``).

    Returns
    -------
    int or None
        ``max_{{s <= t}} hops(s -> t)``, or None when some pair is unreachable.

    Raises
    ------
    HopMethodError
        {refuses}
"""


#: Per strategy: the pattern it needs, what ``max_work`` counts, and when it refuses besides too much work.
_CONTRACTS = {
    "lags": ("A pattern with lag sets on both sides (``A(t) = {t - j : j in J}``, ``B(t) = {t - l : l in L}``).",
             "number of DP steps", "a side is not a lag set"),
    "intervals": ("A pattern whose A(t) are intervals ending at t (diagonal, window, blocks, their unions).",
                  "number of DP steps, ``n + nnz_b``", "some A(t) is not such an interval, some reach set is not an "
                  "interval"),
    "mirrored": ("A pattern whose inputs are used by intervals of states (the aligned binary counter, for one).",
                 "number of worklist steps", "the intervals are missing"),
    "bfs": ("Any pattern.", "``n * (2n + nnz_a + nnz_b)``", None),
}


#: The strategies by name, for ``hop_diameter(p, n, method=NAME)``, in the order they are defined below.
HOP_METHODS = {}


def _strategy(name: str):
    """Register the decorated function as ``HOP_METHODS[name]`` and insert the sections every strategy
    shares (Parameters, Returns, Raises, filled from ``_CONTRACTS[name]``) after its summary."""
    needs, work, refuses = _CONTRACTS[name]
    sections = _SECTIONS.format(needs=needs, work=work,
                                refuses=f"When {refuses + ', or ' if refuses else ''}"
                                        "the work would exceed ``max_work``.")

    def register(fn):
        summary, rest = fn.__doc__.split("\n\n", 1)
        fn.__doc__ = summary + "\n" + sections + "\n    " + rest.lstrip()
        HOP_METHODS[name] = fn
        return fn
    return register


def _run(impl, p, n, max_work) -> int | None:
    supports(p, n)                                              # validates p and n
    return impl(p, n, impls.HOPS_MAX_WORK if max_work is None else check_integer(max_work, "max_work", 1))


@_strategy("lags")
def lag_distances(p: Pattern, n: int, max_work: int | None = None) -> int | None:
    """Hop diameter of a translation-invariant pattern, from the hops by distance.

    Notes
    -----
    hops(s -> s + d) = f[d], the least k with ``d = j + l_1 + ... + l_k``. A DP over d in O(n |L|) time;
    lag sets larger than ``LAG_DP_MAX_LAGS`` first try sumsets level by level with FFT convolutions,
    O(n log n) per level.

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> lag_distances(Pattern.from_spec("power2"), 64)      # popcount(63)
    6
    """
    return _run(impls._lags_impl, p, n, max_work)


@_strategy("intervals")
def interval_propagation(p: Pattern, n: int, max_work: int | None = None) -> int | None:
    """Hop diameter when every A(t) is an interval ``{lo(t), ..., t}`` and reach sets stay intervals.

    Notes
    -----
    The inputs reaching h_t within k hops form ``[lo_k(t), t]`` with
    ``lo_k(t) = min(lo_{k-1}(t), lo_{k-1}(s) : s in B(t))`` while no gap appears, so the farthest input
    is u_0. When the level-0 intervals leave no gap, none appears later (left ends only move down): one
    pass in order of t, O(n + nnz_b). A gap there is a gap in the inputs reaching some h_t within one hop:
    the method refuses.

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> interval_propagation(Pattern.from_spec("blocks:8"), 64)   # block(63) - block(0)
    7
    """
    return _run(impls._intervals_impl, p, n, max_work)


@_strategy("mirrored")
def mirrored_propagation(p: Pattern, n: int, max_work: int | None = None) -> int | None:
    """Hop diameter when every ``{t : s in A(t)}`` is an interval ``{s, ..., hi(s)}`` and the states reached
    from each h_x are intervals ``[x, phi_k(x)]``.

    Notes
    -----
    The interval propagation on the mirrored graph (x -> n-1-x). With K(x) the hops from h_x to h_{n-1}
    and u_s entering at h_x for x in [s, hi(s)], the eccentricity of u_s is ``min K[s : hi(s) + 1]``, a
    range minimum (sparse table, O(n log n)).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> mirrored_propagation(Pattern.from_spec("fenwick"), 64)
    6
    """
    return _run(impls._mirrored_impl, p, n, max_work)


@_strategy("bfs")
def breadth_first(p: Pattern, n: int, max_work: int | None = None) -> int | None:
    """Hop diameter by breadth-first search from every input (any pattern).

    Notes
    -----
    One BFS per input on the 2n-vertex graph: O(n (n + nnz_a + nnz_b)) time (Numba).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> breadth_first(Pattern.from_spec("kron:1,11"), 4)    # u_1 never reaches h_2
    """
    return _run(impls._bfs_impl, p, n, max_work)
