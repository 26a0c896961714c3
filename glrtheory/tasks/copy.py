"""Copy: reproduce a random string after a delay.

Definition. With ``L`` the string length and ``T >= 2L`` the sequence length, the input is

    s_0 ... s_{L-1}  0 ... 0 (T - 2L pads)  SEP  s_0 ... s_{L-2}

with ``s_i`` uniform in ``{2, ..., V - 1}`` (0 = pad, 1 = SEP), teacher-forced: the target after SEP is
``s_0``, after ``s_{i-1}`` in the copy it is ``s_i``; the first ``T - L`` targets are ignored.

Probed quantity: state size. At SEP the model must still hold the whole string, ``L * log2(V - 2)``
bits, so copying separates patterns whose cache grows with the length (power2, attention) from those
with an O(log n) cache (fenwick) or O(1) (ssm).
"""
from __future__ import annotations

import numpy as np

from .base import IGNORE, Task

SEP = 1


class Copy(Task, name="copy", difficulty="L", least={"L": 1, "vocab": 3}):
    """Copy a string of ``L`` tokens inside sequences of ``length`` tokens over ``vocab`` token ids."""

    L: int = 16
    vocab: int = 16

    def _check(self):
        self._check_fits(2 * self.L, f"copy of L={self.L} tokens")

    def _generate(self, rng, n):
        L, T = self.L, self.length
        s = rng.integers(2, self.vocab, size=(n, L))
        inputs = np.zeros((n, T), dtype=np.int64)
        targets = np.full((n, T), IGNORE, dtype=np.int64)
        inputs[:, :L] = s
        inputs[:, T - L] = SEP
        inputs[:, T - L + 1:] = s[:, :-1]
        targets[:, T - L:] = s
        return inputs, targets
