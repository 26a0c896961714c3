"""Numba CPU kernel: forward substitution over the index tables (docs/quantities.md, docs/architecture.md).

    h_t = sum_j a[t, j] u[a_idx[t, j]]  +  sum_j b[t, j] h[b_idx[t, j]]      (slots with index -1 skipped)

which is ``H = (I - B)^{-1} A U``, the same contract as ``glrtheory.solve`` but over the tables
``(a_idx, b_idx)`` alone. Every (batch x head) sequence is one independent forward substitution; they
run in parallel (``numba.prange``; serially when there is one sequence or the work is tiny). Within a
sequence the loop is time-major; row t is summed ``BLOCK`` entries at a time in a stack block that
LLVM keeps in vector registers (it cannot alias the inputs, so no alias checks, ``cpu_memory``), and each
term is a few vector multiply-adds over contiguous entries, four terms per pass. A state of exactly
one block keeps row t - 1 in registers too, and a term on t - 1 reads it there; its other terms
alternate between two blocks, one term a pass. Where the tables read far back (``prefetch_pays``),
row t prefetches the inputs of row t + ``AHEAD`` and, for writing, h[t + ``AHEAD_WRITE``].
Outputs that ``scan`` allocates come from the recycling pool of ``cpu_out``.

Every term applied is counted: ``scan(..., count=True)`` also returns ``Counts(a, b)``, the number of
state-sized multiply-adds per sequence, which equals ``(nnz_a, nnz_b)`` of docs/quantities.md.

Inputs are validated in numpy (``cpu_inputs``) before numba sees them (shapes, dtypes float32/float64;
the tables by ``IndexTables``, as for every backend), so bad input raises ``GLRError``, never a crash. Tables from
``Pattern.tables`` (``IndexTables``) are validated once, for calls in a loop.
Non-finite inputs are not searched for (that would cost a pass over u); they propagate into h.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from glrtheory.errors import GLRError
from glrtheory.patterns.tables import IndexTables

from .cpu_inputs import broadcast_batch, check_out, coefficients, flat_batch, float_array
from .cpu_memory import (AHEAD, AHEAD_WRITE, BLOCK, prefetch_inputs, prefetch_output, prefetch_pays, register_block,
                         row_length)
from .cpu_out import pooled_empty


class Counts(NamedTuple):
    """State-sized multiply-adds per sequence: ``a`` terms (inputs) and ``b`` terms (past states)."""

    a: int
    b: int


# -- validation -------------------------------------------------------------------------------------
#: The name benchmarks and tests use to validate tables once: ``Tables(pattern, n)`` or ``Tables(pair)``.
Tables = IndexTables.coerce


# -- numba kernels ----------------------------------------------------------------------------------
#: Let LLVM fuse multiply-adds; no other fast-math liberties (NaN and inf keep their IEEE meaning).
FASTMATH = {"contract"}


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def add_terms(acc, k0, t, x, idx, coef, end):
    """``acc += sum_{j < end} coef[t, j] x[idx[t, j], k0:k0 + len(acc)]``: four terms at a time through
    one pass over acc, then one at a time."""
    m = acc.shape[0]
    j = 0
    while j + 4 <= end:
        x0, x1 = x[idx[t, j], k0:], x[idx[t, j + 1], k0:]
        x2, x3 = x[idx[t, j + 2], k0:], x[idx[t, j + 3], k0:]
        c0, c1, c2, c3 = coef[t, j], coef[t, j + 1], coef[t, j + 2], coef[t, j + 3]
        for k in range(m):
            acc[k] = acc[k] + c0 * x0[k] + c1 * x1[k] + c2 * x2[k] + c3 * x3[k]
        j += 4
    while j < end:
        c, xs = coef[t, j], x[idx[t, j], k0:]
        for k in range(m):
            acc[k] += c * xs[k]
        j += 1


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def add_alternating(even, odd, t, x, idx, coef, end):
    """``even + odd += sum_{j < end} coef[t, j] x[idx[t, j]]`` over rows of ``BLOCK`` entries, the terms
    taken in turn into even and odd: two chains of multiply-adds, each half as long as one would be."""
    j = 0
    while j + 2 <= end:
        x0, x1, c0, c1 = x[idx[t, j]], x[idx[t, j + 1]], coef[t, j], coef[t, j + 1]
        for k in range(BLOCK):
            even[k] += c0 * x0[k]
            odd[k] += c1 * x1[k]
        j += 2
    while j < end:                      # (once at most; as ``if``, LLVM's code measured 25% slower)
        c, xs = coef[t, j], x[idx[t, j]]
        for k in range(BLOCK):
            even[k] += c * xs[k]
        j += 1


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def add_row(acc, k0, t, x, idx, coef):
    """``acc += sum_j coef[t, j] x[idx[t, j], k0:k0 + len(acc)]`` over row t's valid entries; returns
    their count."""
    end = row_length(idx, t)
    add_terms(acc, k0, t, x, idx, coef, end)
    return end


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _forward_block(u, a, b, a_idx, b_idx, h, t, k0, acc):
    """``h[t, k0:k0 + len(acc)]`` from row t's terms, summed in acc; returns the term counts."""
    acc[:] = 0
    na = add_row(acc, k0, t, u, a_idx, a)
    nb = add_row(acc, k0, t, h, b_idx, b)
    hs = h[t, k0:]
    for k in range(acc.shape[0]):       # an explicit loop: plain vector stores
        hs[k] = acc[k]
    return na, nb


@numba.njit(cache=True, fastmath=FASTMATH)
def _forward_one_block(u, a, b, a_idx, b_idx, h, ahead):
    """``_forward`` for a state of exactly ``BLOCK`` entries: row t - 1 stays in registers (prev), and a
    term on t - 1 (the last of its row: the tables are sorted) is taken from there, not from memory. The
    A terms and the other B terms are summed in two blocks (``add_alternating``), added at the end.
    ``ahead``: None, or the rows ahead whose inputs each row prefetches (it then also asks for
    h[t + ``AHEAD_WRITE``] for writing)."""
    even = register_block(h.dtype)
    odd = register_block(h.dtype)
    prev = register_block(h.dtype)
    na = 0
    nb = 0
    n = h.shape[0]
    for t in range(n):
        if ahead is not None and t + ahead < n:
            prefetch_inputs(u, b, a_idx, b_idx, t + ahead, BLOCK)
        if ahead is not None and t + AHEAD_WRITE < n:
            prefetch_output(h, t + AHEAD_WRITE, BLOCK)
        even[:] = 0
        odd[:] = 0
        na += add_row(odd, 0, t, u, a_idx, a)
        end = row_length(b_idx, t)
        nb += end
        last = end - 1 if end > 0 and b_idx[t, end - 1] == t - 1 else end
        add_alternating(even, odd, t, h, b_idx, b, last)
        if last < end:
            c = b[t, last]
            for k in range(BLOCK):
                even[k] = even[k] + odd[k] + c * prev[k]
        else:
            for k in range(BLOCK):
                even[k] += odd[k]
        hs = h[t]
        for k in range(BLOCK):
            hs[k] = even[k]
            prev[k] = even[k]
    return na, nb


@numba.njit(cache=True, fastmath=FASTMATH)
def _forward(u, a, b, a_idx, b_idx, h):
    """One sequence: ``h[t] = sum a[t,j] u[a_idx[t,j]] + sum b[t,j] h[b_idx[t,j]]``; returns the term counts.

    Where ``prefetch_pays``, each row prefetches the inputs of row t + ``AHEAD`` and, for writing,
    h[t + ``AHEAD_WRITE``]. The loops are compiled
    with and without that (``ahead`` an int or None): the prefetch's code alone, never run, measured
    8% slower (docs/cpu_scan.md).
    """
    if prefetch_pays(b_idx, h):
        return _sequence(u, a, b, a_idx, b_idx, h, AHEAD)
    return _sequence(u, a, b, a_idx, b_idx, h, None)


@numba.njit(cache=True, fastmath=FASTMATH)
def _sequence(u, a, b, a_idx, b_idx, h, ahead):
    """``_forward``, time-major; each row goes block by block (``BLOCK`` entries of h_t at a time, then
    the tail)."""
    n, d = h.shape
    if d == BLOCK:
        return _forward_one_block(u, a, b, a_idx, b_idx, h, ahead)
    full = d - d % BLOCK
    block = register_block(h.dtype)
    tail = register_block(h.dtype)[: d - full]     # its own: the block's accesses stay constant
    na = 0
    nb = 0
    for t in range(n):                  # every block of row t applies the same terms: count them once
        if ahead is not None and t + ahead < n:
            prefetch_inputs(u, b, a_idx, b_idx, t + ahead, d)
        if ahead is not None and t + AHEAD_WRITE < n:
            prefetch_output(h, t + AHEAD_WRITE, d)
        for k0 in range(0, full, BLOCK):
            ra, rb = _forward_block(u, a, b, a_idx, b_idx, h, t, k0, block)
        if full < d or d == 0:          # the tail; with d = 0 it still counts the row's terms
            ra, rb = _forward_block(u, a, b, a_idx, b_idx, h, t, full, tail)
        na += ra
        nb += rb
    return na, nb


@numba.njit(cache=True, parallel=True)
def _scan_parallel(u, a, b, a_idx, b_idx, iu, ia, ib, h, ops):
    for i in numba.prange(h.shape[0]):
        ops[i, 0], ops[i, 1] = _forward(u[iu[i]], a[ia[i]], b[ib[i]], a_idx, b_idx, h[i])


@numba.njit(cache=True)
def _scan_serial(u, a, b, a_idx, b_idx, iu, ia, ib, h, ops):
    for i in range(h.shape[0]):
        ops[i, 0], ops[i, 1] = _forward(u[iu[i]], a[ia[i]], b[ib[i]], a_idx, b_idx, h[i])


#: Below this many state entries (sequences x n x d) the threads' start-up costs more than they save.
PARALLEL_MIN_ENTRIES = 1 << 16


# -- public ------------------------------------------------------------------------------------------
def scan(u, a, b, tables, q=None, *, out=None, count: bool = False):
    """States ``h = (I - B)^{-1} A u`` by forward substitution over the index tables (Numba, parallel).

    u ``[..., n, d]`` (float32 or float64), a ``[..., n, wa]``, b ``[..., n, wb]`` of the same dtype,
    aligned with ``tables = (a_idx, b_idx)`` (a ``Pattern`` means ``pattern.tables(n)``; ``IndexTables``
    are not validated again); padded slots (index -1) are ignored, whatever they hold. Batch dimensions
    broadcast. ``out``: an optional C-contiguous ``[batch..., n, d]`` buffer that receives h. Without it,
    h is 64-byte aligned memory that the module recycles once no array uses it any more (at most two
    slabs, 512 MiB, kept after use; ``release_pool()`` frees them). ``q [..., n, k]``: readout
    ``o_t = q_t^T H_t`` as in ``glrtheory.solve``. ``count=True`` also returns ``Counts`` per sequence.
    """
    u = float_array(u, "u")
    if not isinstance(count, (bool, np.bool_)):
        raise GLRError(f"count must be True or False, got {count!r}")
    a_idx, b_idx = tables = IndexTables.coerce(tables, u.shape[-2] if u.ndim >= 2 else None)
    if u.ndim < 2 or u.shape[-2] != tables.n:
        raise GLRError(f"u must have shape [..., n={tables.n}, d] to match the tables, got {u.shape}")
    n, d = u.shape[-2:]
    a = coefficients(a, a_idx, "a", u.dtype)
    b = coefficients(b, b_idx, "b", u.dtype)
    batch = broadcast_batch(u, a, b)
    shape = batch + (n, d)
    h = pooled_empty(shape, u.dtype) if out is None else check_out(out, shape, u.dtype, (u, a, b))
    (u3, iu), (a3, ia), (b3, ib) = (flat_batch(x, batch) for x in (u, a, b))
    ops = np.zeros((max(math.prod(batch), 1), 2), dtype=np.int64)
    parallel = len(iu) > 1 and len(iu) * n * d >= PARALLEL_MIN_ENTRIES and numba.get_num_threads() > 1
    kernel = _scan_parallel if parallel else _scan_serial
    kernel(u3, a3, b3, a_idx, b_idx, iu, ia, ib, h.reshape((math.prod(batch), n, d)), ops)
    result = h if q is None else readout(h, q)
    if not count:
        return result
    return result, Counts(int(ops[0, 0]), int(ops[0, 1]))


def readout(h: np.ndarray, q) -> np.ndarray:
    """``o_t = q_t^T H_t`` with h_t viewed as a k x (d/k) matrix, in h's dtype (as ``glrtheory.solve``)."""
    from glrtheory import recurrence

    return recurrence.readout(h, q).astype(h.dtype, copy=False)
