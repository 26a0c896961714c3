"""Counting mod k (parity for k = 2): a state-tracking task, the negative control.

Definition. Inputs ``x_t`` uniform in ``{0, ..., k - 1}``; the target at every position t is the
running sum ``(x_0 + ... + x_t) mod k``.

Probed quantity: state tracking. The answer is a product of cyclic permutations of k states, which a
linear recurrence with positive gates (every coefficient here is a convex weight) cannot represent at
large t; linear mixers are expected to fail beyond short lengths, whatever their cache.
"""
from __future__ import annotations

import numpy as np

from .base import Task


class ModCount(Task, name="modcount", difficulty="k", least={"k": 2}):
    """Running sum mod ``k`` over sequences of ``length`` tokens."""

    k: int = 2

    @property
    def vocab_size(self) -> int:
        return self.k

    def _generate(self, rng, n):
        inputs = rng.integers(0, self.k, size=(n, self.length))
        return inputs, np.cumsum(inputs, axis=1) % self.k
