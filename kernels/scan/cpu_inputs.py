"""Checks of the CPU scan's arguments, in numpy before numba sees them (shared with the decode step):
dtypes, coefficient shapes against their tables, batch broadcasting, and a caller's output buffer. Each
failure is a ``GLRError`` naming the problem."""
from __future__ import annotations

import math

import numpy as np

from glrtheory.errors import GLRError

#: dtypes the kernels compute in; u, a, b (and out) must share one of them.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(x, name: str, dtype=None, holder: str = "u has", together: str = "u, a and b") -> np.ndarray:
    """x as a float32/float64 array (of ``dtype`` when given, which ``holder`` has: another dtype is refused naming
    both, and what must share one, ``together``); anything else is a GLRError."""
    try:
        arr = np.asarray(x)
    except (TypeError, RuntimeError, ValueError) as e:   # torch: bf16, on CUDA, or requiring grad; ragged lists
        raise GLRError(f"{name} cannot be read as a numpy array ({e}); the Numba scan takes float32 or float64 "
                       f"arrays on the CPU (torch tensors with gradients or on CUDA go through glr_scan)") from None
    if arr.dtype not in DTYPES:
        raise GLRError(f"{name} has dtype {arr.dtype}; the kernels support float32 and float64")
    if dtype is not None and arr.dtype != dtype:
        raise GLRError(f"{name} has dtype {arr.dtype} but {holder} {dtype}; pass one dtype for {together}")
    return arr


def coefficients(x, idx: np.ndarray, name: str, dtype) -> np.ndarray:
    """Coefficients ``[..., n, w]`` aligned with the table idx ``[n, w]``."""
    arr = float_array(x, name, dtype)
    if arr.ndim < 2 or arr.shape[-2:] != idx.shape:
        raise GLRError(f"{name} must have shape [..., {idx.shape[0]}, {idx.shape[1]}] to match its index "
                       f"table, got {arr.shape}")
    return arr


def flat_batch(arr: np.ndarray, batch: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``arr[..., x, y]`` as a contiguous ``[m, x, y]`` plus, per flat index of ``batch``, its row in it."""
    own = arr.shape[:-2]
    rows = np.broadcast_to(np.arange(math.prod(own), dtype=np.int64).reshape(own), batch).ravel()
    flat = np.ascontiguousarray(arr).reshape((math.prod(own),) + arr.shape[-2:])
    return flat, np.ascontiguousarray(rows)


def broadcast_batch(*arrays) -> tuple:
    """The broadcast of the batch shapes ``x.shape[:-2]``, or a GLRError naming them."""
    try:
        return np.broadcast_shapes(*(x.shape[:-2] for x in arrays))
    except ValueError:
        shapes = ", ".join(str(x.shape[:-2]) for x in arrays)
        raise GLRError(f"batch shapes {shapes} of u, a and b do not broadcast") from None


def check_out(out, shape: tuple, dtype, inputs) -> np.ndarray:
    """A caller's output buffer: exact shape and dtype, C-contiguous, writable, not overlapping the inputs."""
    if not isinstance(out, np.ndarray):
        raise GLRError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise GLRError(f"out must have shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous:
        raise GLRError("out must be C-contiguous (the kernel writes it in place)")
    if not out.flags.writeable:
        raise GLRError("out is read-only")
    if any(np.may_share_memory(out, x) for x in inputs):
        raise GLRError("out overlaps u, a or b; the kernel reads them while writing out")
    return out
