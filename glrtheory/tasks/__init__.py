"""Synthetic tasks that probe what a pattern can remember (numpy generators, seeded, made on the fly).

| task | swept | probes |
| --- | --- | --- |
| ``mqar`` (``MQAR``) | K pairs | associative capacity: K values retrievable by key |
| ``copy`` (``Copy``) | L tokens | state size: L tokens held at once |
| ``recall`` (``Recall``) | distance D | how far one token survives the recurrence (hops, decay) |
| ``modcount`` (``ModCount``) | modulus k | state tracking (negative control for positive gates) |

``make_task("mqar", K=8, length=256, vocab=64).sample(n, seed) -> (inputs, targets)``.
"""
from __future__ import annotations

import dataclasses

from glrtheory.errors import GLRError

from .base import IGNORE, Task
from .copy import Copy
from .modcount import ModCount
from .mqar import MQAR
from .recall import Recall

#: Task name -> class.
TASKS = {cls.name: cls for cls in (MQAR, Copy, Recall, ModCount)}


def make_task(name: str, **params) -> Task:
    """The task ``name`` with ``params``; an unknown name or parameter is a GLRError naming it."""
    if name not in TASKS:
        raise GLRError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    cls = TASKS[name]
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise GLRError(f"unknown parameter(s) {', '.join(unknown)} for task {name!r}; known: {', '.join(known)}")
    return cls(**params)


__all__ = ["IGNORE", "TASKS", "Copy", "MQAR", "ModCount", "Recall", "Task", "make_task"]
