"""How the Numba CPU scan (``cpu``) meets memory: a block of entries on the stack that LLVM keeps in
vector registers, the valid length of a table row, and software prefetches of the inputs of a row ahead
(``llvm.prefetch``; numba offers neither the block nor the prefetch as such)."""
from __future__ import annotations

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

#: Entries of h_t summed at once: a block of this many stays in vector registers over all of row t's
#: terms (d = 64 float32 is four AVX-512 registers); d is covered by whole blocks and one shorter tail.
BLOCK = 64


@intrinsic
def register_block(typingctx, dtype):
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


#: Bytes of a cache line: the unit a prefetch brings in.
LINE = 64


def _prefetcher(lines, write=False):
    """An intrinsic ``f(arr, i, j)`` that asks for ``lines(itemsize)`` consecutive cache lines from the
    one holding ``arr[i, j]`` (2-d arr) in every cache level, for reading or for writing
    (``llvm.prefetch``): a hint that never faults and changes no value."""
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
            rw, keep_in_l1, data = (ir.Constant(ir.IntType(32), v) for v in (int(write), 3, 1))
            first = builder.bitcast(ptr, byte_ptr)
            for q in range(count):
                line = builder.gep(first, [ir.Constant(ir.IntType(64), q * LINE)])
                builder.call(fn, [line, rw, keep_in_l1, data])
            return context.get_dummy_value()

        return types.void(arr, i, j), codegen

    return prefetch


#: Prefetch the line of ``arr[i, j]``; the lines of ``arr[i, j:j + BLOCK]`` (a C-contiguous row), for
#: reading or for writing.
prefetch_line = _prefetcher(lambda itemsize: 1)
prefetch_block = _prefetcher(lambda itemsize: max(1, BLOCK * itemsize // LINE))
prefetch_block_for_writing = _prefetcher(lambda itemsize: max(1, BLOCK * itemsize // LINE), write=True)


#: Rows ahead whose inputs a row asks for: row t prefetches what row t + AHEAD reads from u, b and b_idx,
#: when the last row reads at least FAR_STATES states more than FAR_BYTES back and h_t spans a block.
#: With fewer far streams the hardware prefetchers keep up alone and prefetching measured slower, as
#: it did for rows narrower than a block (docs/cpu_scan.md).
AHEAD = 6
#: ... and asks for the lines of h[t + AHEAD_WRITE] with intent to write.
AHEAD_WRITE = 12
FAR_STATES = 4
FAR_BYTES = 16 << 10


@numba.njit(cache=True)
def prefetch_pays(b_idx, h):
    """Whether the rows of h (tables b_idx) should prefetch their inputs ``AHEAD`` rows ahead."""
    n = h.shape[0]
    far = 0
    for j in range(b_idx.shape[1] if n > 0 else 0):
        row = b_idx[n - 1, j]
        if row >= 0 and (n - 1 - row) * h.shape[1] * h.itemsize > FAR_BYTES:
            far += 1
    return far >= FAR_STATES and h.shape[1] >= BLOCK


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
            prefetch_block(u, a_idx[s, j], k)
    prefetch_line(b, s, 0)             # (a hint: with no b columns this asks for a harmless line)
    prefetch_line(b_idx, s, 0)


@numba.njit(cache=True, inline="always")
def prefetch_output(h, s, width):
    """Ask for the first ``width`` entries of row s of h with intent to write (the line comes in owned)."""
    for k in range(0, width, BLOCK):
        prefetch_block_for_writing(h, s, k)
