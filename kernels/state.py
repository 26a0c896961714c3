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
        self.spec, self.max_length, self.layout = pattern.spec, max_length, layout or {}
        self.schedule = LiveSchedule.of(pattern, max_length)
        self.t = 0
        self.batch: int | None = None
        self.inputs: dict[int, tuple[Tensor, Tensor]] = {}
        self.states: dict[int, tuple[Tensor, Tensor]] = {}

    @property
    def size(self) -> int:
        return len(self.inputs) + len(self.states)

    def check(self, pattern, batch: int, length: int, layout: dict | None = None) -> None:
        """Refuse a step (or a prompt of ``length`` tokens) of another pattern, state layout (heads, sizes,
        score mode), batch size, or past the end."""
        if pattern.spec != self.spec:
            raise GLRError(f"the cache was made for pattern {self.spec!r}, the mixer has {pattern.spec!r}")
        if layout is not None and layout != self.layout:
            raise GLRError(f"the cache was made for a mixer with {self.layout}, this one has {layout}")
        if self.batch is not None and batch != self.batch:
            raise GLRError(f"the cache holds a batch of {self.batch}, the input has {batch}")
        if self.t + length > self.max_length:
            raise GLRError(f"the cache was made for {self.max_length} tokens; {self.t + length} is past it")

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
