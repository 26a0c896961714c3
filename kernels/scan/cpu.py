"""Numba CPU kernel: forward substitution over the index tables (docs/quantities.md, docs/architecture.md).

    h_t = sum_j a[t, j] u[a_idx[t, j]]  +  sum_j b[t, j] h[b_idx[t, j]]      (slots with index -1 skipped)

which is ``H = (I - B)^{-1} A U``, the same contract as ``glrtheory.solve`` but over the tables
``(a_idx, b_idx)`` alone. Every (batch x head) sequence is one independent forward substitution; they
run in parallel (``numba.prange``; serially when there is one sequence or the work is tiny). Within a
sequence the loop is time-major; row t is summed ``BLOCK`` entries at a time in a stack block that
LLVM keeps in vector registers (it cannot alias the inputs, so no alias checks), and each term is a
few vector multiply-adds over contiguous entries, four terms per pass. A state of exactly one block
keeps row t - 1 in registers too, and a term on t - 1 reads it there. Outputs that ``scan`` allocates
come from the recycling pool of ``cpu_out``.

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
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from glrtheory.errors import GLRError
from glrtheory.patterns.tables import IndexTables

from .cpu_inputs import broadcast_batch, check_out, coefficients, flat_batch, float_array
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


#: Entries of h_t summed at once: a block of this many stays in vector registers over all of row t's
#: terms (d = 64 float32 is four AVX-512 registers); d is covered by whole blocks and one shorter tail.
BLOCK = 64


@intrinsic
def _register_block(typingctx, dtype):
    """An uninitialised ``BLOCK``-entry array of ``dtype`` on the stack. Being local and of fixed size,
    it cannot alias the arrays it is summed from, so LLVM keeps it in registers (no alias checks)."""
    ty = types.Array(dtype.dtype, 1, "C")

    def codegen(context, builder, sig, args):
        item = context.get_data_type(dtype.dtype)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(item))
        block = context.make_array(ty)(context, builder)
        context.populate_array(block, data=cgutils.alloca_once(builder, item, BLOCK),
                               shape=[context.get_constant(types.intp, BLOCK)], strides=[itemsize],
                               itemsize=itemsize, meminfo=None)
        return block._getvalue()

    return ty(dtype), codegen


#: Rows ahead whose inputs a row asks for: row t prefetches what row t + AHEAD reads from u, b and b_idx.
AHEAD = 6
#: Bytes of a cache line: the unit a prefetch brings in.
LINE = 64


def _prefetcher(lines):
    """An intrinsic ``f(arr, i, j)`` that asks for ``lines(itemsize)`` consecutive cache lines from the
    one holding ``arr[i, j]`` (2-d arr) in every cache level, for reading (``llvm.prefetch``): a hint that
    never faults and changes no value."""
    @intrinsic
    def prefetch(typingctx, arr, i, j):
        if not (isinstance(arr, types.Array) and arr.ndim == 2):
            return None
        count = lines(arr.dtype.bitwidth // 8)

        def codegen(context, builder, sig, args):
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            index = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:])]
            ptr = cgutils.get_item_pointer2(context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
                                            cgutils.unpack_tuple(builder, ary.strides), sig.args[0].layout, index)
            byte_ptr = ir.IntType(8).as_pointer()
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
                ir.VoidType(), [byte_ptr] + [ir.IntType(32)] * 3), "llvm.prefetch.p0i8")
            read, keep_in_l1, data = (ir.Constant(ir.IntType(32), v) for v in (0, 3, 1))
            first = builder.bitcast(ptr, byte_ptr)
            for q in range(count):
                line = builder.gep(first, [ir.Constant(ir.IntType(64), q * LINE)])
                builder.call(fn, [line, read, keep_in_l1, data])
            return context.get_dummy_value()

        return types.void(arr, i, j), codegen

    return prefetch


#: Prefetch the line of ``arr[i, j]``; the lines of ``arr[i, j:j + BLOCK]`` (a C-contiguous row).
_prefetch_line = _prefetcher(lambda itemsize: 1)
_prefetch_block = _prefetcher(lambda itemsize: max(1, BLOCK * itemsize // LINE))


@numba.njit(cache=True, inline="always")
def row_length(idx, t):
    """The valid entries of row t of a table (its -1 padding comes last, as ``IndexTables`` ensures)."""
    w = idx.shape[1]
    if w == 0 or idx[t, w - 1] >= 0:
        return w
    c = 0
    while idx[t, c] >= 0:
        c += 1
    return c


@numba.njit(cache=True, inline="always")
def prefetch_inputs(u, b, a_idx, b_idx, s, width):
    """Prefetch what row s reads from its inputs: the first ``width`` entries of the u rows of its A
    terms, its rows of b and b_idx. The hardware prefetchers, with a dozen streams to follow, leave
    these to arrive late (docs/cpu_scan.md)."""
    for j in range(row_length(a_idx, s)):
        for k in range(0, width, BLOCK):
            _prefetch_block(u, a_idx[s, j], k)
    _prefetch_line(b, s, 0)             # (a hint: with no b columns this asks for a harmless line)
    _prefetch_line(b_idx, s, 0)


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def add_terms(acc, k0, t, x, idx, coef, end, group=4):
    """``acc += sum_{j < end} coef[t, j] x[idx[t, j], k0:k0 + len(acc)]``: ``group`` (4 or 1) terms at a
    time through one pass over acc, then one at a time."""
    m = acc.shape[0]
    j = 0
    if group == 4:
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
def add_row(acc, k0, t, x, idx, coef, group=4):
    """``acc += sum_j coef[t, j] x[idx[t, j], k0:k0 + len(acc)]`` over row t's valid entries (``group``
    terms a pass); returns their count."""
    end = row_length(idx, t)
    add_terms(acc, k0, t, x, idx, coef, end, group)
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
def _forward_one_block(u, a, b, a_idx, b_idx, h):
    """``_forward`` for a state of exactly ``BLOCK`` entries: row t - 1 stays in registers (prev), and a
    term on t - 1 (the last of its row: the tables are sorted) is taken from there, not from memory."""
    acc = _register_block(h.dtype)
    prev = _register_block(h.dtype)
    na = 0
    nb = 0
    n = h.shape[0]
    for t in range(n):
        if t + AHEAD < n:
            prefetch_inputs(u, b, a_idx, b_idx, t + AHEAD, BLOCK)
        acc[:] = 0
        na += add_row(acc, 0, t, u, a_idx, a, 1)
        end = row_length(b_idx, t)
        nb += end
        last = end - 1 if end > 0 and b_idx[t, end - 1] == t - 1 else end
        add_terms(acc, 0, t, h, b_idx, b, last, 1)   # one call site, one term a pass (docs/cpu_scan.md)
        if last < end:
            c = b[t, last]
            for k in range(BLOCK):
                acc[k] += c * prev[k]
        hs = h[t]
        for k in range(BLOCK):
            hs[k] = acc[k]
            prev[k] = acc[k]
    return na, nb


@numba.njit(cache=True, fastmath=FASTMATH)
def _forward(u, a, b, a_idx, b_idx, h):
    """One sequence: ``h[t] = sum a[t,j] u[a_idx[t,j]] + sum b[t,j] h[b_idx[t,j]]``; returns the term counts.

    Time-major; each row goes block by block (``BLOCK`` entries of h_t at a time, then the tail).
    """
    n, d = h.shape
    if d == BLOCK:
        return _forward_one_block(u, a, b, a_idx, b_idx, h)
    full = d - d % BLOCK
    block = _register_block(h.dtype)
    tail = _register_block(h.dtype)[: d - full]     # its own: the block's accesses stay constant
    na = 0
    nb = 0
    for t in range(n):                  # every block of row t applies the same terms: count them once
        if t + AHEAD < n and d >= BLOCK:  # narrower rows measured slower with it (docs/cpu_scan.md)
            prefetch_inputs(u, b, a_idx, b_idx, t + AHEAD, d)
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
