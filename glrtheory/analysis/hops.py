"""hops(s -> t), the hop diameter and the full receptive field (the strategies live in ``hop_methods``)."""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..patterns import Pattern
from . import _hop_impls as impls
from .counts import TABLE_MAX_ENTRIES, supports
from .hop_methods import HOP_METHODS, _run


def hop_diameter(p: Pattern, n: int, method=None, max_work: int | None = None) -> int | None:
    """Max over pairs s <= t of hops(s -> t) (one A-edge, then B-edges).

    Parameters
    ----------
    p : Pattern
        The pattern whose routes u_s -> h_t are counted.
    n : int
        Sequence length, at most ``ANALYZE_MAX_N``.
    method : str or callable, optional
        None (default): the cheapest strategy that applies, in the order ``lags``, the B-side support's
        ``unreachable_pair`` certificate, ``intervals``, ``mirrored``, ``bfs``. A name of ``HOP_METHODS``,
        or any callable ``method(p, n, max_work=None) -> int | None``.
    max_work : int, optional
        Work limit of the strategies (default ``HOPS_MAX_WORK``).

    Returns
    -------
    int or None
        The hop diameter; None when some pair s <= t is unreachable.

    Raises
    ------
    GLRError
        Unknown method; ``HopMethodError`` when the chosen strategy does not apply or every applicable
        one is over its work limit.

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> hop_diameter(Pattern.from_spec("fenwick"), 2**14)
    14
    >>> hop_diameter(Pattern.from_spec("fenwick"), 64, method="bfs")
    6
    """
    if method is None:
        return _run(impls._auto_impl, p, n, max_work)
    if isinstance(method, str):
        if method not in HOP_METHODS:
            raise GLRError(f"unknown hop method {method!r}; choose one of {', '.join(HOP_METHODS)}")
        method = HOP_METHODS[method]
    if not callable(method):
        raise GLRError(f"a hop method must be a name or a callable, got {type(method).__name__}")
    return method(p, n, max_work=max_work)


def hop_profile(p: Pattern, n: int) -> np.ndarray | None:
    """For lag patterns (both sides translation invariant): ``f[d]`` = hops(s -> s + d), -1 if unreachable;
    None for other patterns."""
    sa, sb = supports(p, n)
    if sa.lags is None or sb.lags is None:
        return None
    return impls.lag_hop_profile(sa, sb, impls.HOPS_MAX_WORK)


def full_receptive_field(p: Pattern, n: int) -> bool:
    """True when every input u_s reaches every state h_t, s <= t (whether or not the hop diameter fits).

    Notes
    -----
    The inputs reaching h_t are ``R(t) = A(t) | union of R(s) over s in B(t)``. When ``R(s) = {0..s}`` for
    every s < t, ``R(t) = A(t) | {0..m(t)}`` with ``m(t) = max B(t)`` (-1 when B(t) is empty), so
    ``R(t) = {0..t}`` iff A(t) holds all of ``m(t)+1..t``; the first t where it does not has an input out
    of reach. One pass, O(n + nnz).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> [full_receptive_field(Pattern.from_spec(spec), 64) for spec in ("fenwick", "window:4")]
    [True, False]
    """
    sa, sb = supports(p, n)
    t = np.arange(n, dtype=np.int64)
    if sb.lags is not None:
        m = np.where(t >= sb.lags[0], t - sb.lags[0], -1) if sb.lags.size else np.full(n, -1)
    else:
        table = sb.table(TABLE_MAX_ENTRIES)
        m = table.max(axis=1, initial=-1).astype(np.int64)
    if sa.lags is not None:                                   # A(t) = {t - j}: count j < t - m(t)
        held = np.searchsorted(sa.lags, t - m)
    else:
        lo = sa.interval_start(TABLE_MAX_ENTRIES)
        held = (t - np.maximum(lo, m + 1) + 1 if lo is not None
                else (sa.table(TABLE_MAX_ENTRIES) > m[:, None]).sum(axis=1))
    return bool((held >= t - m).all())
