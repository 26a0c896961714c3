"""Outputs of the CPU scan: 64-byte aligned, and recycled between calls instead of taken fresh.

A fresh output costs the operating system a zero fill of each of its pages on first touch (3-5 ms for
the 128 MiB of power2 at n = 65536, 8 heads, d = 64: a third to a half of a copy of it; docs/cpu_scan.md).
``pooled_empty`` hands out memory the module keeps instead:

* it holds the ``POOL_SLABS`` most recently used slabs (raw bytes), at most ``POOL_BYTES`` in all; the
  least recently used slab is let go first, and an output larger than ``POOL_BYTES`` is never pooled;
* a slab is handed out again only for an output of the same size in bytes, and only when the pool's own
  reference is the only one left: every array handed out earlier, and every view of one (numpy makes
  the slab the ``base`` of them all), is gone. Memory that a live array uses is never handed out twice;
* after the last output dies the pool still holds its slabs (up to ``POOL_BYTES``); ``release_pool()``
  gives them back.
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

#: Byte alignment of the outputs: a cache line, so a 256-byte state spans 4 lines, not 5.
ALIGN = 64
#: Slabs the pool holds at most (two: a caller may keep the previous output while asking for the next).
POOL_SLABS = 2
#: Bytes the pool holds at most (two power2 outputs of n = 65536, 8 heads, d = 64 float32 fit).
POOL_BYTES = 512 << 20

_slabs: list[np.ndarray] = []           # least recently used first
_lock = threading.Lock()


def _references(i: int) -> int:
    return sys.getrefcount(_slabs[i])


def _unused_count() -> int:
    """What ``_references`` reports for a slab only the pool refers to (measured, not assumed: the count
    getrefcount adds for its own argument differs between Python versions)."""
    _slabs.append(np.empty(0, np.uint8))
    try:
        return _references(len(_slabs) - 1)
    finally:
        _slabs.pop()


_UNUSED = _unused_count()


def _carve(raw: np.ndarray, shape: tuple, dtype: np.dtype, align: int) -> np.ndarray:
    """The ``align``-byte aligned C-contiguous ``shape`` array at the start of the bytes raw."""
    start = -raw.ctypes.data % align
    return raw[start:start + math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)


def aligned_empty(shape: tuple, dtype, align: int = ALIGN) -> np.ndarray:
    """An uninitialised C-contiguous array of fresh memory whose data starts at a multiple of ``align`` bytes."""
    dtype = np.dtype(dtype)
    return _carve(np.empty(math.prod(shape) * dtype.itemsize + align, np.uint8), shape, dtype, align)


def pooled_empty(shape: tuple, dtype) -> np.ndarray:
    """Like ``aligned_empty(shape, dtype)``, in a slab of the pool when one of this size is unused."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize + ALIGN
    if size > POOL_BYTES:
        return aligned_empty(shape, dtype)
    with _lock:                          # carved under the lock: no other thread sees the slab unused
        for i in range(len(_slabs)):
            if _slabs[i].size == size and _references(i) == _UNUSED:
                _slabs.append(_slabs.pop(i))
                return _carve(_slabs[-1], shape, dtype, ALIGN)
        _slabs.append(np.empty(size, np.uint8))
        while len(_slabs) > POOL_SLABS or sum(s.size for s in _slabs) > POOL_BYTES:
            del _slabs[0]                # a live output keeps its slab alive by itself
        return _carve(_slabs[-1], shape, dtype, ALIGN)


def pool_held() -> tuple[int, int]:
    """Slabs and bytes the pool holds now."""
    with _lock:
        return len(_slabs), sum(s.size for s in _slabs)


def release_pool() -> None:
    """Let go of every slab (those in use live on with their arrays)."""
    with _lock:
        _slabs.clear()
