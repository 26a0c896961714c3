"""LLVM-level pieces of the Numba CPU scan (``cpu``): a block of entries on the stack that LLVM keeps in
vector registers, and software prefetches of cache lines (``llvm.prefetch``), neither of which numba
offers as such."""
from __future__ import annotations

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
prefetch_line = _prefetcher(lambda itemsize: 1)
prefetch_block = _prefetcher(lambda itemsize: max(1, BLOCK * itemsize // LINE))
