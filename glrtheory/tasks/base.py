"""What every synthetic task shares: the ``Task`` interface, seeding and the ignore label.

A task is a frozen dataclass of its parameters. ``sample(n, seed)`` returns ``(inputs, targets)``, two
int64 arrays of shape ``[n, seq_len]``: ``targets[i, t]`` is the token the model must predict after
reading ``inputs[i, : t + 1]`` (next-token convention), or ``IGNORE`` where nothing is asked. A batch
depends only on ``(seed, n)``, so it is reproducible, and held-out seeds give held-out data.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError

#: Target value at positions that are not scored (the ``ignore_index`` of ``torch.nn.functional.cross_entropy``).
IGNORE = -100
#: Largest number of tokens one ``sample`` call may produce.
SAMPLE_MAX_TOKENS = 2**26


@dataclasses.dataclass(frozen=True, kw_only=True)
class Task:
    """Base class of the tasks, declared as ``class Copy(Task, name="copy", difficulty="L", least={"L": 1})``
    with the parameters as annotated fields: each subclass becomes a frozen dataclass of keyword-only
    fields, those and ``length`` (tokens per sequence); ``vocab`` too unless it overrides ``vocab_size``.
    ``name`` is the registry name, ``difficulty`` the swept parameter, ``least`` the least value of each
    integer parameter (``length`` >= 1 is added last); ``_check`` adds the constraints between them, and
    ``_generate(rng, n) -> (inputs, targets)`` makes the data."""

    length: int = 64

    name = "task"
    difficulty = ""
    #: ``(field, least value)`` of each integer parameter (from ``least``), checked in this order.
    minimums = ()

    def __init_subclass__(cls, *, name: str, difficulty: str, least: dict, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.name, cls.difficulty = name, difficulty
        cls.minimums = (*least.items(), ("length", 1))
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    def __post_init__(self):
        for field, least in self.minimums:
            check_integer(getattr(self, field), field, least)
        self._check()

    def _check(self):
        """Constraints between the parameters, each broken one a GLRError naming them; none by default."""

    def _check_fits(self, need: int, what: str):
        """A GLRError saying that ``what`` does not fit unless ``length >= need``."""
        if self.length < need:
            raise GLRError(f"{what} does not fit in length={self.length}: it needs >= {need}")

    @property
    def vocab_size(self) -> int:
        return self.vocab

    @property
    def seq_len(self) -> int:
        return self.length

    @property
    def level(self) -> int:
        """The value of the swept parameter (``K``, ``L``, ``D`` or ``k``)."""
        return getattr(self, self.difficulty)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` sequences from seed ``seed``: ``(inputs, targets)``, int64 ``[n, seq_len]`` each."""
        n = check_integer(n, "n", 1)
        seed = check_integer(seed, "seed", 0, 2**64 - 1)
        if n * self.seq_len > SAMPLE_MAX_TOKENS:
            raise GLRError(f"sample of {n} x {self.seq_len} tokens is over the limit {SAMPLE_MAX_TOKENS}")
        rng = np.random.default_rng(seed)
        inputs, targets = self._generate(rng, n)
        return inputs.astype(np.int64), targets.astype(np.int64)

    def describe(self) -> dict:
        """Name, parameters, vocabulary and length, as plain data."""
        return {"task": self.name, **dataclasses.asdict(self), "vocab_size": self.vocab_size,
                "seq_len": self.seq_len, "difficulty": self.difficulty}

    def _generate(self, rng: np.random.Generator, n: int):
        raise NotImplementedError
