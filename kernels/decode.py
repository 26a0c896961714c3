"""Token-by-token decoding with a cache that holds exactly the live set (docs/quantities.md).

    h_t = sum_{s in A(t)} a[t, s] u_s + sum_{s in B(t)} b[t, s] h_s

After step t the cache holds ``{u_s : s <= t < last_A(s)}`` and ``{h_s : s <= t < last_B(s)}`` with
``last_X(s) = max{t' < n : s in X(t')}`` (``Support.last_use``) for the horizon n: a state enters when
it is produced, if a later position needs it, and leaves at the step that uses it for the last time.
Its size is ``glrtheory.analysis.live_profile(p, n)[t]``. The buffers grow by doubling and shrink by
half while under a quarter full, so they hold at most ``4 cache(t) + 8`` states.

The schedule (rows, last uses, what enters and leaves at each step) is the table-level
``glrtheory.patterns.tables.LiveSchedule``, shared with the torch decode cache of ``GLRMixer``; for a
pattern, translation-invariant sides give their rows from the lags, so attention at n = 2^20 decodes
without an n x n table. Slot j of
``a_t`` / ``b_t`` is slot j of table row t, as in ``glrtheory.kernels.cpu.scan``; decoding token by
token therefore equals the full-sequence kernel.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError
from glrtheory.patterns.tables import LiveSchedule

from .scan.cpu import FASTMATH, Counts, add_row, float_array

#: The most values one state (batch x d) of a ``DecodeCache`` holds: 2^31 (8 GiB in float32).
MAX_STATE = 2 ** 31


class _Pool:
    """States ``data[slot, batch, d]`` with ``slot_of[position]`` (-1 when not held) and a free list."""

    def __init__(self, n: int, state: tuple, dtype, capacity: int = 0):
        self.state, self.dtype = state, dtype
        self.slot_of = np.full(n, -1, dtype=np.int64)
        self.owner = np.full(capacity, -1, dtype=np.int64)
        self.data = np.empty((capacity,) + state, dtype)
        self.free = list(range(capacity - 1, -1, -1))
        self.size = 0

    def put(self, s: int, x: np.ndarray) -> None:
        if not self.free:
            self._resize(max(4, 2 * len(self.owner)))
        k = self.free.pop()
        self.data[k] = x
        self.slot_of[s], self.owner[k] = k, s
        self.size += 1

    def drop(self, positions: np.ndarray) -> None:
        if not positions.size:
            return
        slots = self.slot_of[positions]
        self.slot_of[positions] = -1
        self.owner[slots] = -1
        self.free.extend(slots.tolist())
        self.size -= positions.size
        capacity = len(self.owner)
        while capacity > 4 and 4 * self.size < capacity:
            capacity //= 2
        if capacity < len(self.owner):
            self._resize(capacity)

    def fill(self, positions: np.ndarray, states: np.ndarray) -> None:
        """Hold exactly ``states[i]`` (``[m, batch, d]``) for ``positions[i]``."""
        self.data = np.ascontiguousarray(states, dtype=self.dtype)
        self.owner = positions.astype(np.int64)
        self.slot_of[:] = -1
        self.slot_of[positions] = np.arange(positions.size)
        self.free, self.size = [], positions.size

    def _resize(self, capacity: int) -> None:
        held = np.flatnonzero(self.owner >= 0)
        data = np.empty((capacity,) + self.state, self.dtype)
        data[: held.size] = self.data[held]
        owner = np.full(capacity, -1, dtype=np.int64)
        owner[: held.size] = self.owner[held]
        self.slot_of[owner[: held.size]] = np.arange(held.size)
        self.data, self.owner = data, owner
        self.free = list(range(capacity - 1, held.size - 1, -1))

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


@numba.njit(cache=True, fastmath=FASTMATH)
def _slots(row, t, slot_of, k_row, j_row):
    """Pool slots of the held positions in a table row (skipping s = t), padded with -1; the slot index
    j of each, and the slot of t (-1 if absent). Returns (count, j_t), or (-1 - s, -1) if s is not held."""
    m = 0
    jt = -1
    for j in range(row.shape[0]):
        s = row[j]
        if s < 0:
            break                       # the padding comes last
        if s == t:
            jt = j
            continue
        if slot_of[s] < 0:
            return -1 - s, -1
        k_row[0, m] = slot_of[s]
        j_row[m] = j
        m += 1
    k_row[0, m:] = -1
    return m, jt


#: Terms per chunk in a decode step: every head reads a chunk's states while they are in cache.
_CHUNK = 128


@numba.njit(cache=True, fastmath=FASTMATH)
def _gather(h, data, coef, k_row, j_row, m, c_row):
    """``h[i] += sum_{q < m} coef[i, j_row[q]] data[k_row[q], i]`` for every head i, chunk by chunk."""
    for c0 in range(0, m, _CHUNK):
        c1 = min(m, c0 + _CHUNK)
        for i in range(h.shape[0]):
            for q in range(c0, c1):
                c_row[0, q - c0] = coef[i, j_row[q]]
            add_row(h[i], 0, 0, data[:, i, :], k_row[:, c0:c1], c_row)


@numba.njit(cache=True, fastmath=FASTMATH)
def _step_kernel(t, u_t, a_t, b_t, a_row, b_row, udata, uslot, hdata, hslot, h):
    """``h[i] = sum_j a_t[i,j] u[a_row[j]] + sum_j b_t[i,j] h[b_row[j]]`` with u_t itself for s = t.

    Returns ``(na, nb)``, or ``(-1 - s, 0)`` when a needed position s is not held (never, for a
    consistent cache).
    """
    w = max(a_row.shape[0], b_row.shape[0], 1)
    k_row = np.empty((1, w), np.int64)
    j_row = np.empty(w, np.int64)
    c_row = np.empty((1, _CHUNK), h.dtype)
    ma, jt = _slots(a_row, t, uslot, k_row, j_row)
    if ma < 0:
        return ma, 0
    h[:, :] = 0
    if jt >= 0:
        for i in range(h.shape[0]):
            c = a_t[i, jt]
            for k in range(h.shape[1]):
                h[i, k] += c * u_t[i, k]
    _gather(h, udata, a_t, k_row, j_row, ma, c_row)
    mb, _ = _slots(b_row, t, hslot, k_row, j_row)
    if mb < 0:
        return mb, 0
    _gather(h, hdata, b_t, k_row, j_row, mb, c_row)
    return ma + (jt >= 0), mb


class DecodeCache:
    """Live-set cache for decoding ``n`` positions of a pattern (or of tables ``(a_idx, b_idx)``).

    ``batch`` (a tuple, e.g. ``(heads,)``) and ``d`` fix the state shape, ``dtype`` float32/float64.
    ``held`` is the live-set size after the last step, ``ops`` the multiply-adds so far (``Counts``).
    """

    def __init__(self, source, n: int | None = None, *, d: int, batch: tuple = (), dtype=np.float64):
        schedule = LiveSchedule.of(source, n)
        self.a, self.b, n = schedule.a, schedule.b, schedule.n
        d = check_integer(d, "state size d", 1)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = repr(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise GLRError(f"dtype is {self.dtype}; the kernels support float32 and float64")
        if not isinstance(batch, (tuple, list)):
            raise GLRError(f"batch must be a tuple of sizes (() for none), got {batch!r}")
        self.n, self.d, self.batch = n, int(d), tuple(check_integer(x, "a batch size", 1) for x in batch)
        self._state = (math.prod(self.batch), self.d)
        if math.prod(self._state) > MAX_STATE:
            raise GLRError(f"a state of batch {self.batch} x d {self.d} = {math.prod(self._state)} values is over "
                           f"the limit of {MAX_STATE}")
        self.u_pool = _Pool(n, self._state, self.dtype)
        self.h_pool = _Pool(n, self._state, self.dtype)
        self.t = -1
        self._ops = [0, 0]

    # -- state -------------------------------------------------------------------------------------
    @property
    def held(self) -> int:
        """Inputs and states held: the live set after step t."""
        return self.u_pool.size + self.h_pool.size

    @property
    def nbytes(self) -> int:
        """Bytes of the state buffers: room for at most ``4 held + 8`` states."""
        return self.u_pool.nbytes + self.h_pool.nbytes

    @property
    def ops(self) -> Counts:
        return Counts(*self._ops)

    def held_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted positions of the held inputs and states."""
        return tuple(np.sort(p.owner[p.owner >= 0]) for p in (self.u_pool, self.h_pool))

    # -- decoding ----------------------------------------------------------------------------------
    def _array(self, x, name: str) -> np.ndarray:
        """x as an array of the cache's dtype; another float dtype is refused naming both."""
        return float_array(x, name, self.dtype, "the cache holds", "the cache and its inputs")

    def _vector(self, x, width: int, name: str) -> np.ndarray:
        arr = self._array(x, name)
        try:
            arr = np.broadcast_to(arr, self.batch + (width,))
        except ValueError:
            raise GLRError(f"{name} must broadcast to {self.batch + (width,)}, got {arr.shape}") from None
        return np.ascontiguousarray(arr).reshape(self._state[0], width)

    def step(self, u_t, a_t, b_t) -> np.ndarray:
        """Produce ``h_t`` for the next position t from ``u_t [batch..., d]``, ``a_t [batch..., wa]``,
        ``b_t [batch..., wb]`` (table row t's slots; padded slots ignored), then update the live set."""
        t = self.t + 1
        if t >= self.n:
            raise GLRError(f"the cache was built for n={self.n} positions; all are decoded")
        u2 = self._vector(u_t, self.d, "u_t")
        a2 = self._vector(a_t, self.a.width, "a_t")
        b2 = self._vector(b_t, self.b.width, "b_t")
        h = np.empty(self._state, self.dtype)
        na, nb = _step_kernel(t, u2, a2, b2, self.a.row(t), self.b.row(t), self.u_pool.data,
                              self.u_pool.slot_of, self.h_pool.data, self.h_pool.slot_of, h)
        if na < 0:
            raise GLRError(f"internal: position {-1 - na} is needed at step {t} but was dropped")
        self._ops[0] += na
        self._ops[1] += nb
        if self.a.stored(t):
            self.u_pool.put(t, u2)
        if self.b.stored(t):
            self.h_pool.put(t, h)
        self.u_pool.drop(self.a.leaving(t))
        self.h_pool.drop(self.b.leaving(t))
        self.t = t
        return h.reshape(self.batch + (self.d,))

    def prefill(self, u, h) -> None:
        """Jump to the state after step ``t = L - 1`` from ``u, h [batch..., L, d]`` (e.g. a full scan):
        hold exactly the live ones. Only a fresh cache can be prefilled."""
        if self.t != -1:
            raise GLRError("prefill needs a fresh cache")
        u, h = (self._array(x, name) for x, name in ((u, "u"), (h, "h")))
        want = self.batch + (None, self.d)
        if u.shape != h.shape or u.ndim != len(want) or u.shape[:-2] != self.batch or u.shape[-1] != self.d:
            raise GLRError(f"u and h must both have shape {self.batch + ('L', self.d)}, got {u.shape}, {h.shape}")
        L = u.shape[-2]
        if not 1 <= L <= self.n:
            raise GLRError(f"prefill length must lie in [1, n={self.n}], got {L}")
        for pool, side, x in ((self.u_pool, self.a, u), (self.h_pool, self.b, h)):
            live = side.live_after(L)
            states = x[..., live, :].reshape((self._state[0], live.size, self.d))   # gathers only the live ones
            pool.fill(live, np.moveaxis(states, 1, 0))
        self.t = L - 1


def step(cache: DecodeCache, u_t, a_t, b_t) -> np.ndarray:
    """``h_t`` for the next position of ``cache`` (see ``DecodeCache.step``)."""
    return cache.step(u_t, a_t, b_t)
