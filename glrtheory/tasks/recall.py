"""Long-range recall at distance D: bring back one marked token after D steps of noise.

Definition. With ``T`` the sequence length and ``1 <= D <= T - 2``, the input is uniform noise in
``{3, ..., V - 1}`` except

    inputs[T - 2 - D] = MARK (1),   inputs[T - 1 - D] = x,   inputs[T - 1] = QUERY (2)

with ``x`` uniform in ``{3, ..., V - 1}``. The only scored target is at the last position: ``x``, the
token seen D steps earlier.

Probed quantity: how far information survives the recurrence. One token must be kept (capacity 1),
so what matters is the route from ``u_{T-1-D}`` to ``h_{T-1}``: its number of hops (the pattern's
hops at distance D) and the decay along it.
"""
from __future__ import annotations

import numpy as np

from .base import IGNORE, Task

MARK, QUERY = 1, 2


class Recall(Task, name="recall", difficulty="D", least={"D": 1, "vocab": 4}):
    """Recall the marked token ``D`` steps back, in sequences of ``length`` tokens over ``vocab`` ids."""

    D: int = 16
    vocab: int = 16

    def _check(self):
        self._check_fits(self.D + 2, f"recall at distance D={self.D}")

    def _generate(self, rng, n):
        D, T = self.D, self.length
        inputs = rng.integers(3, self.vocab, size=(n, T))
        x = rng.integers(3, self.vocab, size=n)
        inputs[:, T - 2 - D], inputs[:, T - 1 - D], inputs[:, T - 1] = MARK, x, QUERY
        targets = np.full((n, T), IGNORE, dtype=np.int64)
        targets[:, T - 1] = x
        return inputs, targets
