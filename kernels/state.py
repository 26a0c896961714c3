"""``GLRCache``: the decode state of ``GLRMixer`` in torch, kept by the table-level ``LiveSchedule``.

After step t it holds ``u_s`` (with its key) while ``s <= t < last_A(s)`` and ``h_s`` (with its key)
while ``s <= t < last_B(s)``: the live set of docs/quantities.md at the cache's horizon, the same
schedule the Numba ``DecodeCache`` follows.
"""
from __future__ import annotations

import numpy as np
import torch

from glrtheory.errors import GLRError
from glrtheory.patterns.tables import IndexTables, LiveSchedule

Tensor = torch.Tensor


class GLRCache:
    """Decode cache: the live inputs ``u_s`` and states ``h_s`` (each with its key), keyed by position,
    kept and dropped as the table-level ``LiveSchedule`` says (the one the Numba decode uses).

    ``size`` is the number of states held: after step t it equals the live set at length ``max_length``
    (``glrtheory.analysis.live_profile(p, max_length)[t]``). A cache belongs to one pattern and one
    batch size; stepping it with another is a GLRError.
    """

    def __init__(self, pattern, max_length: int, layout: dict | None = None):
        if not all(hasattr(pattern, key) for key in ("spec", "terms", "tables")):       # a Pattern (not imported here)
            raise GLRError(f"a GLRCache needs a Pattern (Pattern.from_spec(spec)), got {type(pattern).__name__}")
        self.pattern, self.spec, self.max_length, self.layout = pattern, pattern.spec, max_length, layout or {}
        self.schedule = LiveSchedule.of(pattern, max_length)
        self._same: dict[int, tuple] = {}       # id -> (pattern, whether its tables are the cache's)
        self.t = 0
        self.batch: int | None = None
        self.inputs: dict[int, tuple[Tensor, Tensor]] = {}
        self.states: dict[int, tuple[Tensor, Tensor]] = {}

    @property
    def size(self) -> int:
        return len(self.inputs) + len(self.states)

    def check(self, pattern, batch: int, length: int, layout: dict | None = None, device=None) -> None:
        """Refuse a step (or a prompt of ``length`` tokens) of another pattern, state layout (heads, sizes,
        score mode), batch size, device, or past the end."""
        if pattern.spec != self.spec:
            raise GLRError(f"the cache was made for pattern {self.spec!r}, the mixer has {pattern.spec!r}")
        if not self._same_pattern(pattern):
            raise GLRError(f"the cache was made for another pattern named {self.spec!r} (its tables at n = "
                           f"{self.max_length} differ from the mixer's)")
        if length < 1:
            raise GLRError(f"a prompt needs at least one token, got {length}")
        if layout is not None and layout != self.layout:
            raise GLRError(f"the cache was made for a mixer with {self.layout}, this one has {layout}")
        if self.batch is not None and batch != self.batch:
            raise GLRError(f"the cache holds a batch of {self.batch}, the input has {batch}")
        held = next(iter(self.states.values() or self.inputs.values()), None)
        if device is not None and held is not None and held[0].device != device:
            raise GLRError(f"the cache holds states on {held[0].device}, the input is on {device}")
        if self.t + length > self.max_length:
            raise GLRError(f"the cache was made for {self.max_length} tokens; {self.t + length} is past it")

    def _same_pattern(self, pattern) -> bool:
        """Whether ``pattern`` (of the cache's spec) is the cache's: the same object or the same family terms (a
        spec names those), else the same tables at the horizon (user patterns share a spec such as 'custom')."""
        if pattern is self.pattern or (pattern.terms and pattern.terms == self.pattern.terms):
            return True
        if id(pattern) not in self._same:
            same = all(np.array_equal(x, y) for x, y in zip(pattern.tables(self.max_length),
                                                             self.pattern.tables(self.max_length)))
            self._same[id(pattern)] = (pattern, same)       # holding the pattern keeps its id from being reused
        return self._same[id(pattern)][1]

    def sources(self, t: int) -> tuple[list[int], list[int]]:
        """``A(t)`` and ``B(t)`` as lists of positions."""
        return tuple([int(s) for s in side.row(t) if s >= 0] for side in (self.schedule.a, self.schedule.b))

    def prompt_tables(self, T: int) -> IndexTables:
        """The first T rows of the tables at length ``max_length`` (a prompt's rows for this horizon)."""
        rows = [[side.row(t) for t in range(T)] for side in (self.schedule.a, self.schedule.b)]
        return IndexTables(*(np.stack(r) if r[0].size else np.empty((T, 0), np.int32) for r in rows))

    def keep(self, t: int, u, k, h) -> None:
        """Store step t's input and state (with key k) if a later position reads them; drop those whose
        last reader is t."""
        a, b = self.schedule.a, self.schedule.b
        if a.stored(t):
            self.inputs[t] = (u, k)
        if b.stored(t):
            self.states[t] = (h, k)
        for s in a.leaving(t):
            self.inputs.pop(int(s))
        for s in b.leaving(t):
            self.states.pop(int(s))
        self.t = t + 1

    def prefill(self, u: Tensor, k: Tensor, h: Tensor) -> None:
        """Hold the live set after a prompt: ``u, h [B, L, H, D]``, keys ``k [B, L, H, .]``."""
        L = u.shape[1]
        self.inputs = {int(s): (u[:, s], k[:, s]) for s in self.schedule.a.live_after(L)}
        self.states = {int(s): (h[:, s], k[:, s]) for s in self.schedule.b.live_after(L)}
        self.batch, self.t = u.shape[0], L
