"""Small helpers shared by the cost proofs: exact quantities over many lengths, and assertions."""
import numpy as np

from glrtheory import analysis
from glrtheory.symbolic.costs import Bounds, cost_forms, evaluate


def forms_and_lengths(p, n_max: int):
    """The library's closed forms of p (``cost_forms``; asserts that there are some) and the lengths
    ``1..n_max`` at which a proof checks them."""
    forms = cost_forms(p)
    assert forms is not None, f"{p.spec}: no closed forms"
    return forms, np.arange(1, n_max + 1)


def caches(p, ns) -> np.ndarray:
    """Exact ``cache_peak(n)`` (docs/quantities.md) for every n in ns."""
    return np.array([analysis.cache_peak(p, int(n)) for n in ns], dtype=np.int64)


def values(form, ns=None, ts=None) -> np.ndarray:
    """An exact closed form evaluated at integers; asserts that the values are integers."""
    v = evaluate(form, ns, ts)
    r = np.rint(v)
    assert np.all(np.abs(v - r) <= 1e-9 * np.maximum(1, np.abs(r))), f"{form} is not integer-valued"
    return r.astype(np.int64)


def same(what: str, got, want) -> None:
    """Assert equality of two integer arrays, naming the first mismatch; print what was checked."""
    got, want = np.asarray(got), np.asarray(want)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{what}: mismatch at index {bad[0]}: formula {got[bad[0]]} != exact {want[bad[0]]}"
    print(f"  checked: {what} ({got.size} values)")


def agrees(what: str, typed, form, ns=None, ts=None) -> None:
    """The proof's own typed formula equals the library's closed form (each end of ``Bounds``) at every
    argument, so the statement and glrtheory.symbolic.costs cannot drift apart."""
    pairs = zip(typed, form) if isinstance(form, Bounds) else [(typed, form)]
    for mine, theirs in pairs:
        v, w = evaluate(mine, ns, ts), evaluate(theirs, ns, ts)
        assert np.allclose(v, w, rtol=1e-12, atol=1e-9), f"{what}: the proof's {mine} != library {theirs}"
    print(f"  checked: {what}: the statement's formula is the library's closed form")
