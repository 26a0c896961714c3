"""The live-set decode caches (``kernels/decode.py``'s ``DecodeCache``, ``kernels/state.py``'s ``GLRCache``) on
hand-made tables: states against a naive float64 forward recurrence over the sets, buffer sizes and live sets
worked by hand, and the messages of bad input (mutation run 8, docs/mutation.md)."""
import re

import numpy as np
import pytest

from glrtheory import GLRError
from glrtheory.kernels.decode import DecodeCache
from glrtheory.patterns.tables import IndexTables, LiveSchedule
from helpers import rel_err

TOL = {np.float64: 1e-12, np.float32: 1e-5}


def tables_of(a_rows, b_rows) -> IndexTables:
    """Index tables (ascending, -1 padded) of the sets ``a_rows[t]``, ``b_rows[t]``."""
    out = []
    for rows in (a_rows, b_rows):
        table = np.full((len(rows), max(map(len, rows))), -1, np.int32)
        for t, row in enumerate(rows):
            table[t, : len(row)] = sorted(row)
        out.append(table)
    return IndexTables(*out)


def naive(tables, a, b, u) -> np.ndarray:
    """``h_t = sum_j a[t, j] u[A_j] + sum_j b[t, j] h[B_j]`` in float64, term by term over the table slots."""
    a, b, u = (np.asarray(x, np.float64) for x in (a, b, u))
    h = np.zeros(u.shape)
    for t in range(u.shape[-2]):
        for idx, coef, x in ((tables.a_idx, a, u), (tables.b_idx, b, h)):
            for j, s in enumerate(idx[t]):
                if s >= 0:
                    h[..., t, :] += coef[..., t, j, None] * x[..., s, :]
    return h


def inputs(tables, rng, batch, d, dtype):
    """Random u, a, b (NaN in the padded slots, which the cache must never read) in ``dtype``."""
    n = tables.n
    u = rng.standard_normal(batch + (n, d)).astype(dtype)
    a, b = (np.where(idx >= 0, rng.uniform(-1, 1, batch + idx.shape) / max(1, idx.shape[1]), np.nan).astype(dtype)
            for idx in (tables.a_idx, tables.b_idx))
    return u, a, b


#: A(t) without t, empty A rows, B rows reading several states: n = 6.
ODD_A = [[], [0], [0, 2], [1], [], [3, 4, 5]]
ODD_B = [[], [0], [], [1, 2], [3], [0, 4]]


@pytest.mark.parametrize("batch", [(), (2, 3)])
def test_rows_without_t_and_empty_rows_against_the_naive_recurrence(batch, rng):
    """Rows of A without t itself (u_t is then not added) and empty A rows (h_t from B alone, no internal error):
    the states equal the naive recurrence; ops, held counts and positions are the hand counts of ODD_A / ODD_B."""
    tables = tables_of(ODD_A, ODD_B)
    u, a, b = inputs(tables, rng, batch, 3, np.float64)
    ref = naive(tables, a, b, u)
    cache = DecodeCache(tables, d=3, batch=batch)
    ops, held, positions = [], [], []
    for t in range(6):
        h = cache.step(u[..., t, :], a[..., t, :], b[..., t, :])
        assert h.shape == batch + (3,) and h.dtype == np.float64
        assert rel_err(h, ref[..., t, :]) <= 1e-12, t
        ops.append(tuple(cache.ops))
        held.append(cache.held)
        positions.append(tuple(p.tolist() for p in cache.held_positions()))
    assert np.array_equal(ref[..., 0, :], np.zeros(batch + (3,)))
    assert ops == [(0, 0), (1, 1), (3, 1), (4, 3), (4, 4), (7, 6)]
    assert held == [2, 4, 4, 3, 4, 0]
    assert positions == [([0], [0]), ([0, 1], [0, 1]), ([1], [0, 1, 2]), ([3], [0, 3]), ([3, 4], [0, 4]),
                         ([], [])]


#: s < 10 is last read at LAST[s] (with s itself at its own step); n = 16, so 10 states are held at once.
LAST = [10] * 6 + [11, 12, 12, 13]
N = 16
GROW_A = [sorted({t} | {s for s in range(10) if LAST[s] == t}) for t in range(N)]
GROW_B = [[s for s in range(10) if LAST[s] == t] for t in range(N)]
#: Slots of each pool after step t, by the documented rule: the first put makes 4, a put into a full pool doubles
#: it, and a drop halves it while it is over 4 and under a quarter full (10 held -> 4 held keeps 16, 3 held -> 8).
SLOTS = [4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 8, 4, 4, 4, 4]
#: After a prefill of 10 positions the pool holds exactly 10 slots; 1 held halves 10 to 5 and 5 to 2.
SLOTS_AFTER_PREFILL = [10, 10, 2, 2, 2, 2]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [(), (2, 3)])
def test_buffers_grow_and_shrink_by_the_documented_rule(dtype, batch, rng):
    """Each pool's bytes after every step are the slot counts worked by hand (``SLOTS``) times one state in the
    cache's dtype, decoding from the start and after a prefill of 10 (``SLOTS_AFTER_PREFILL``); the states, read
    back after the buffers were halved and compacted, equal the naive recurrence, in the cache's dtype."""
    tables = tables_of(GROW_A, GROW_B)
    u, a, b = inputs(tables, rng, batch, 2, dtype)
    ref = naive(tables, a, b, u)
    state = int(np.prod(batch)) * 2 * np.dtype(dtype).itemsize
    cache = DecodeCache(tables, d=2, batch=batch, dtype=dtype)
    assert cache.nbytes == 0
    sizes = []
    for t in range(N):
        h = cache.step(u[..., t, :], a[..., t, :], b[..., t, :])
        assert h.dtype == dtype and rel_err(h, ref[..., t, :]) <= TOL[dtype], t
        sizes.append(cache.nbytes)
    assert sizes == [2 * k * state for k in SLOTS]
    cache = DecodeCache(tables, d=2, batch=batch, dtype=dtype)
    cache.prefill(u[..., :10, :], ref[..., :10, :].astype(dtype))
    assert cache.nbytes == 2 * 10 * state and cache.held == 20
    for held in cache.held_positions():                     # integer positions, as after a step
        assert held.dtype == np.int64 and held.tolist() == list(range(10))
    sizes = []
    for t in range(10, N):
        h = cache.step(u[..., t, :], a[..., t, :], b[..., t, :])
        assert h.dtype == dtype and rel_err(h, ref[..., t, :]) <= TOL[dtype], t
        sizes.append(cache.nbytes)
    assert sizes == [2 * k * state for k in SLOTS_AFTER_PREFILL]


def test_a_position_missing_from_the_cache_is_named(rng):
    """The step's guard: a needed input or state that the pool does not hold (dropped by hand, or never stored
    because the schedule was swapped for another table's) is a GLRError naming the position and the step, never
    a read of another slot."""
    tables = tables_of(GROW_A, GROW_B)
    u, a, b = inputs(tables, rng, (2,), 2, np.float64)
    for pool in ("u_pool", "h_pool"):
        cache = DecodeCache(tables, d=2, batch=(2,))
        for t in range(5):
            cache.step(u[:, t], a[:, t], b[:, t])
        getattr(cache, pool).drop(np.array([2]))
        for t in range(5, 10):
            cache.step(u[:, t], a[:, t], b[:, t])
        with pytest.raises(GLRError, match=r"^internal: position 2 is needed at step 10 but was dropped$"):
            cache.step(u[:, 10], a[:, 10], b[:, 10])
    # u_s is never stored where A(t) = {t}; a schedule reading u_{t - 1} then finds it missing
    own = tables_of([[t] for t in range(4)], [[]] * 4)
    previous = LiveSchedule.of(tables_of([[0]] + [[t - 1, t] for t in range(1, 4)], [[]] * 4))
    ua = rng.standard_normal((4, 2))
    for prefill in (False, True):
        cache = DecodeCache(own, d=2)
        if prefill:
            cache.prefill(ua[:2], ua[:2])
        else:
            cache.step(ua[0], np.ones(1), np.ones(0))
            cache.step(ua[1], np.ones(1), np.ones(0))
        cache.a = previous.a
        with pytest.raises(GLRError, match=r"^internal: position 1 is needed at step 2 but was dropped$"):
            cache.step(ua[2], np.ones(2), np.ones(0))


def test_bad_input_messages_name_the_argument(rng):
    """Each refusal names the argument at fault, in full (anchored messages)."""
    tables = tables_of(ODD_A, ODD_B)
    u, a, b = inputs(tables, rng, (2,), 3, np.float64)
    with pytest.raises(GLRError, match=r"^dtype is int32; the kernels support float32 and float64$"):
        DecodeCache(tables, d=3, dtype=np.int32)
    with pytest.raises(GLRError, match=r"^dtype is 'no such type'; the kernels support float32 and float64$"):
        DecodeCache(tables, d=3, dtype="no such type")
    cache = DecodeCache(tables, d=3, batch=(2,))
    other = " has dtype float32 but the cache holds float64; pass one dtype for the cache and its inputs"
    for args, name in (((u[:, 0].astype(np.float32), a[:, 0], b[:, 0]), "u_t"),
                       ((u[:, 0], a[:, 0].astype(np.float32), b[:, 0]), "a_t"),
                       ((u[:, 0], a[:, 0], b[:, 0].astype(np.float32)), "b_t")):
        with pytest.raises(GLRError, match="^" + re.escape(name + other) + "$"):
            cache.step(*args)
    with pytest.raises(GLRError, match=r"^a_t has dtype int64; the kernels support float32 and float64$"):
        cache.step(u[:, 0], np.ones((2, 3), np.int64), b[:, 0])
    with pytest.raises(GLRError, match=r"^a_t must broadcast to \(2, 3\), got \(2, 2\)$"):
        cache.step(u[:, 0], a[:, 0, :2], b[:, 0])
    for x, y, name in ((u.astype(np.float32), u, "u"), (u, u.astype(np.float32), "h")):
        with pytest.raises(GLRError, match="^" + re.escape(name + other) + "$"):
            cache.prefill(x[:, :3], y[:, :3])
    with pytest.raises(GLRError, match=r"^u and h must both have shape \(2, 'L', 3\), got \(2, 3, 2\), \(2, 3, 2\)$"):
        cache.prefill(u[:, :3, :2], u[:, :3, :2])
    cache.step(u[:, 0], a[:, 0], b[:, 0])
    with pytest.raises(GLRError, match=r"^prefill needs a fresh cache$"):
        cache.prefill(u[:, :3], u[:, :3])


def test_mixer_cache_messages_and_patterns_of_one_family():
    """``GLRCache``: the step past the horizon names the horizon and the step count; another mixer of the same
    family steps it at a horizon whose tables could not be built (attention at 2^16: from the family terms, not
    the tables); a user pattern's tables are compared once per pattern, not at every step."""
    torch = pytest.importorskip("torch")
    from glrtheory import Pattern
    from glrtheory.kernels.torch import GLRMixer

    x = torch.randn(2, 8)
    with torch.no_grad():
        mixer = GLRMixer("power2", 8, 2)
        cache = mixer.init_cache(3)
        for _ in range(3):
            mixer.step(x, cache)
        with pytest.raises(GLRError, match=r"^the cache was made for 3 tokens; 4 is past it$"):
            mixer.step(x, cache)
        first, second = GLRMixer("attention", 8, 2), GLRMixer("attention", 8, 2)
        assert first.pattern is not second.pattern
        cache = first.init_cache(2**16)
        second.step(x, cache)
        assert cache.t == 1
        chain = Pattern.from_sets([[0], [1], [2], [3]], [[], [0], [1], [2]])
        again = Pattern.from_sets([[0], [1], [2], [3]], [[], [0], [1], [2]])
        cache = GLRMixer(chain, 8, 2).init_cache(4)
        calls = []
        for p in (chain, again):
            real = p.tables
            object.__setattr__(p, "tables", lambda n, real=real, **kw: calls.append(n) or real(n, **kw))
        mixer = GLRMixer(again, 8, 2)
        for _ in range(4):
            mixer.step(x, cache)
        assert calls == [4, 4]
