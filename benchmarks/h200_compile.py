"""Compile every Triton kernel of the scan and the readout for the H200 (sm_90) offline, in configurations the GPU
launches, with the ptxas that ships in the triton wheel: no GPU needed.

    python benchmarks/h200_compile.py           # compiles each configuration, prints "compiled N"
    python benchmarks/h200_compile.py --sass    # and one line per configuration: kernel, SASS instructions, digest
    python benchmarks/h200_compile.py --sass --resources    # and its registers and stack bytes a thread, shared memory
    python benchmarks/h200_compile.py --chunk-walk          # chunk_walk's resources at each of its settings' values

The test suite runs the first (the interpreter accepts code the compiler rejects). Run the second before and after
a change to the kernels' code: configurations whose digest is unchanged compile to the same machine code, so their
timings still hold. (A review once saw the largest configuration, the refused launch of ``call63``, compile to two
digests in one process; three compiles in a row later gave one.)

Each configuration is specialized as Triton's JIT specializes a launch (``native_specialize_impl``, Triton's own):
a pointer is 16-byte aligned (torch's allocations are), an int argument equal to 1 is compiled in and one divisible
by 16 is marked so, which lets the compiler vectorize masked loads and pipeline them. The int values are those of
the benchmarks' main shape, B2 T16384 H16 D128 (``SHAPE``), with fenwick's chunk layout (ssm's for the first-order
configurations, ``DECAY``), or a configuration's own ``ints``; an int neither names is compiled unspecialized. Before
2026-12-04 no configuration was specialized, so the registers, spills and shared memory printed then (and quoted in
docs/ and the GPU notes up to ``call145``) are those of code the GPU never ran. Since, 23 of the configurations
compile to exactly the machine code the H200 compiled at the main shape (``gpu_compile_check.py``, ``call146``): a
twin for every kernel it compiled for the scan (power2, fenwick) and the readout (ssm, fenwick), forward and
backward, but three variants of ``coef_grad``; since (2026-12-04) those three too (26 configurations): da's table
width of 1, which the JIT compiles in, and the lag walks' d blocks.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)        # before triton is imported: compile, do not interpret

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton._C.libtriton import native_specialize_impl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.backends.nvidia.compiler import CUDABackend  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from glrtheory import Pattern  # noqa: E402

from glrtheory.kernels.scan import readout_triton as R  # noqa: E402
from glrtheory.kernels.scan import readout_triton_backward as RB  # noqa: E402
from glrtheory.kernels.scan import readout_triton_kernels as RK  # noqa: E402
from glrtheory.kernels.scan import tile_product as TP  # noqa: E402
from glrtheory.kernels.scan import triton as backend  # noqa: E402
from glrtheory.kernels.scan import triton_kernels as K  # noqa: E402
from glrtheory.kernels.scan.readout_plan import aligned_layout  # noqa: E402
from glrtheory.kernels.scan.triton_launch import Launcher  # noqa: E402

#: Each configuration: (kernel, its argument types, its constexprs[, warps[, ints]]) as the GPU launches it (ints:
#: argument values in place of ``int_values``', those its launch at the main shape passed, as the ``specialization``
#: of each kernel in ``gpu_calls/call146/compile_check.json`` shows them).
i32, f32, bf16, c = "i32", "*fp32", "*bf16", "constexpr"
lags = ["*i32", i32]                           # a table's lags and their number
diag = [bf16, i32, bf16]                       # a, its width, dU
g, r = backend.GPU, R.GPU
shapes = dict(C=64, WIN=64, W=64, UPCAST=False, UNIT=8)      # the readout kernels' (row strides in units of 8)
out = dict(AFTER=r["out_after"], QONCE=r["out_k"] >= 128)    # the chunk output's at d_k = 128
f32_out, f32_wide = {**r, **r["float32"]}, {**r, **r["wide"], **r["float32"]}   # float32's settings on top
pull = dict(H=16, D=128, WB=8, B_LAGS=(), B_FAR=0)                 # the shapes and lags compiled into the walks
walk = dict(pull, WA=1, A_LAGS=())
power2_pull = dict(pull, B_LAGS=tuple(2 ** j for j in range(13, -1, -1)), B_FAR=7, WB=14)
power2 = dict(power2_pull, WA=1, A_LAGS=(0,))


def _layout_values(spec: str) -> dict:
    """The readout kernels' ints that spec's tables and chunk layout at T = 16384 fix."""
    tables = Pattern.from_spec(spec).tables(16384)
    layout = aligned_layout(tables)
    return dict(P=len(layout.boundary), nc=layout.n_chunks, shift=layout.shift, m=layout.m, me=max(layout.m, 1),
                WA=tables.a_idx.shape[1], WB=tables.b_idx.shape[1])


#: The int arguments at the main shape (B2 T16384 H16 D128; row strides in units of ``shapes["UNIT"]``, the
#: scan's chunks of 64), and the readout's chunk layouts: fenwick's, and ssm's for DECAY configurations.
SHAPE = dict(n=16384, T=16384, H=16, D=128, dk=128, dv=128, sq=256, sk=256, sv=256, F=128 * 128)
LAYOUTS = {False: _layout_values("fenwick"), True: _layout_values("ssm")}
SCAN = dict(nc=16384 // 64, shift=0)
#: The ints of the chunk inverses of E_PP's diagonal blocks (fenwick's P boundary states, blocks of
#: ``boundary_block``): one sequence of P rows, m columns.
E_PP_BLOCKS = dict(n=LAYOUTS[False]["P"], H=1, nc=LAYOUTS[False]["P"] // r["boundary_block"], WB=LAYOUTS[False]["m"],
                   shift=0)
#: The fused walk (``chunk_walk``, a setting, off; not on the GPU yet) and its split's fix-up, at the main shape.
WALK = dict(C=64, CP=64, BK=128, BV=r["walk_chunk_v"], PREC="tf32", UPCAST=False, UNIT=8)
WALK_TYPES = [bf16] * 3 + [f32] * 3 + [bf16] * 2 + [f32] * 2 + ["*i32"] * 4 + [i32] * 13
#: Tiled mixing's tile product (``tile_product``) at the layer's shape, B8 T2048 H8 D128 bf16, its first tile
#: (rows 0:, 512 columns): q, k, v and g strided as [B, T, H, d] (views), m [B, T, H, 512].
TILE = dict(BM=TP.BLOCK, BN=TP.BLOCK, DK=128, DV=128, PREC="tf32", UPCAST=False)
TILE_INTS = dict(R=2048, C=512, H=8, dk=128, dv=128, **{f"{x}s0": 2048 * 8 * 128 for x in "qkvg"},
                 **{f"{x}s1": 8 * 128 for x in "qkvg"}, **{f"{x}s2": 128 for x in "qkvg"}, ms0=2048 * 8 * 512,
                 ms1=8 * 512, ms2=512)
kernels = [
    (K.chunk_inverse, [bf16, "*i32", f32] + [i32] * 5, dict(C=64, BS=16, JB=8, PREC="tf32"), 1),      # the scan's
    (K.chunk_inverse, [f32, "*i32", f32] + [i32] * 5, dict(C=64, BS=16, JB=8, PREC="tf32x3"), 1),    # float32
    (K.chunk_inverse, [f32, "*i32", f32] + [i32] * 5, dict(C=64, BS=16, JB=8, PREC="tf32"), 1,       # the readout's
     LAYOUTS[False]),
    (K.forward_walk, [bf16, bf16, bf16, "*i32", "*i32", "*i32", f32, bf16] + [i32] * 2 + lags * 2,
     dict(walk, C=64, BD=g["BD"], JA=2, JB=g["JB"], PREC="tf32", LAG_A=False, LAG_B=False)),
    (K.forward_walk, [f32, f32, f32, "*i32", "*i32", "*i32", f32, f32] + [i32] * 2 + lags * 2,
     dict(walk, C=64, BD=g["BD"], JA=2, JB=g["JB"], PREC="tf32x3", LAG_A=False, LAG_B=False)),
    (K.forward_walk, [bf16, bf16, bf16, "*i32", "*i32", "*i32", f32, bf16] + [i32] * 2 + lags * 2,
     dict(walk, C=64, BD=g["lag_BD"], JA=2, JB=g["LB"], PREC="bf16", LAG_A=True, LAG_B=True), g["lag_warps"]),
    (K.forward_walk, [bf16, bf16, bf16, "*i32", "*i32", "*i32", f32, bf16] + [i32] * 2 + lags * 2,     # power2
     dict(power2, C=64, BD=g["lag_BD"], JA=2, JB=g["LB"], PREC="bf16", LAG_A=True, LAG_B=True), g["lag_warps"],
     dict(ma=1, mb=14)),
    (K.forward_walk, [bf16, bf16, bf16, "*i32", "*i32", "*i32", f32, bf16] + [i32] * 2 + lags * 2,     # fenwick
     dict(pull, WB=14, WA=1, A_LAGS=(0,), C=64, BD=g["BD"], JA=2, JB=g["JB"], PREC="bf16", LAG_A=True, LAG_B=False),
     g["warps"], dict(ma=1, mb=16)),
    (K.backward_walk, [bf16, bf16, "*i32", "*i32", f32, f32] + [i32] * 5 + diag,
     dict(C=64, BD=g["BD"], JB=g["JB"], PREC="bf16", DU=True), g["warps"], dict(WA=1)),
    (K.backward_pull, [bf16, bf16, "*i32", "*i32", f32, f32] + [i32] * 3 + lags + diag,
     dict(pull, C=64, BD=g["BD"], JB=g["JB"], PREC="tf32", LAG_B=False, DU=False)),
    (K.backward_pull, [bf16, bf16, "*i32", "*i32", f32, f32] + [i32] * 3 + lags + diag,
     dict(pull, C=64, BD=g["lag_BD"], JB=g["LB"], PREC="bf16", LAG_B=True, DU=True), g["lag_warps"]),
    (K.backward_pull, [bf16, bf16, "*i32", "*i32", f32, f32] + [i32] * 3 + lags + diag,
     dict(power2_pull, C=64, BD=g["lag_BD"], JB=g["LB"], PREC="bf16", LAG_B=True, DU=True), g["lag_warps"],
     dict(WA=1, mb=14, WT=16)),
    (K.transpose_apply, [f32, bf16] + ["*i32"] * 4 + [bf16] + [i32] * 4 + lags,
     dict(C=64, BD=g["BD"], E=g["E"], JA=2, PREC="tf32", LAG_A=False)),
    (K.transpose_apply, [f32, bf16] + ["*i32"] * 4 + [bf16] + [i32] * 4 + lags,
     dict(C=64, BD=g["lag_BD"], E=g["E"], JA=2, PREC="tf32", LAG_A=True)),
    (K.coef_grad, [f32, bf16, "*i32", bf16] + [i32] * 4, dict(C=64, BD=g["BD"], JB=g["JB"]), g["grad_warps"]),
    (RK.chunk_coefficients, [f32, f32] + ["*i32"] * 2 + [f32] * 3 + [i32] * 7,
     dict(C=64, WIN=64, JB=2, BW=32, MIX=True, PREC="tf32x3")),
    (RK.chunk_coefficients, [f32, f32] + ["*i32"] * 2 + [f32] * 3 + [i32] * 7,
     dict(C=64, WIN=64, JB=8, BW=32, MIX=False, PREC="tf32")),
    (RK.decay_sums, [f32, f32, "*i32", "*fp64", "*i32", f32, f32] + [i32] * 4, dict(C=64, CP=64), None,
     LAYOUTS[True]),
    (RK.boundary_walk, [bf16, bf16, bf16, f32, f32, bf16] + ["*i32"] * 3 + [i32] * 11,
     dict(shapes, BK=r["walk_k"], BV=r["walk_v"], PREC="tf32", GATHER=True, DECAY=False, SOURCES=0, DIAG=False)),
    (RK.boundary_walk, [bf16, bf16, bf16, f32, f32, bf16] + ["*i32"] * 3 + [i32] * 11,
     dict(shapes, BK=r["walk_k"], BV=r["walk_v"], PREC="tf32", GATHER=True, DECAY=False, SOURCES=9, DIAG=True)),
    (RK.boundary_walk, [bf16, bf16, bf16, f32, f32, bf16] + ["*i32"] * 3 + [i32] * 11,
     dict(shapes, BK=r["walk_k"], BV=r["walk_v"], PREC="tf32", GATHER=False, DECAY=True, SOURCES=0, DIAG=False)),
    (RK.level_walk, [bf16, bf16, f32, f32, f32, bf16] + ["*i32"] * 4 + [i32] * 11,
     dict(shapes, BK=r["level_k"], BV=r["level_v"], MP=16, SLOTS=9, PREC="tf32", DIAG=True), r["level_warps"]),
    (RK.boundary_local, [bf16, bf16, f32, f32, bf16] + ["*i32"] * 2 + [i32] * 10,
     dict(shapes, BK=r["local_k"], BV=r["local_v"], PREC="tf32", DIAG=True), r["local_warps"]),
    (RK.chunk_output, [bf16] * 3 + [f32, f32, f32, bf16, "*i32", "*i32", bf16] + [i32] * 11,
     dict(shapes, CP=64, BK=r["out_k"], BV=r["out_v"], PREC="tf32", DECAY=False, DIAG=False, **out)),
    (RK.chunk_output, [bf16] * 3 + [f32, f32, f32, bf16, "*i32", "*i32", bf16] + [i32] * 11,
     dict(shapes, CP=64, BK=r["out_k"], BV=r["out_v"], PREC="tf32", DECAY=False, DIAG=True, **out)),
    (RK.chunk_output, [bf16] * 3 + [f32, f32, f32, bf16, "*i32", "*i32", bf16] + [i32] * 11,     # wide heads' slices
     dict(shapes, CP=64, BK=r["wide"]["out_k"], BV=r["wide"]["out_v"], PREC="tf32", DECAY=False, DIAG=True,
          AFTER=r["wide"]["out_after"], QONCE=False)),
    (RK.chunk_output, [bf16] * 3 + [f32, "*fp64", "*i32", bf16, "*i32", "*i32", bf16] + [i32] * 11,
     dict(shapes, CP=64, BK=r["out_k"], BV=r["out_v"], PREC="tf32", DECAY=True, DIAG=False, **out)),
    (RK.chunk_output, [bf16] * 3 + [f32, "*fp64", "*i32", bf16, "*i32", "*i32", bf16] + [i32] * 11,  # ssm, wide heads
     dict(shapes, CP=64, BK=r["wide"]["out_k"], BV=r["wide"]["out_v"], PREC="tf32", DECAY=True, DIAG=False,
          AFTER=r["wide"]["out_after"], QONCE=False)),
    (RK.chunk_output, [f32] * 7 + ["*i32", "*i32", f32] + [i32] * 11,                      # float32, d 128
     dict(shapes, CP=64, BK=f32_out["out_k"], BV=f32_out["out_v"], PREC="tf32x3", DECAY=False, DIAG=True,
          AFTER=f32_out["out_after"], QONCE=f32_out["out_k"] >= 128)),
    (RK.chunk_output, [f32] * 7 + ["*i32", "*i32", f32] + [i32] * 11,                      # float32, d 256
     dict(shapes, CP=64, BK=f32_wide["out_k"], BV=f32_wide["out_v"], PREC="tf32x3", DECAY=False, DIAG=True,
          AFTER=f32_wide["out_after"], QONCE=False)),
    (K.chunk_inverse, [f32, "*i32", f32] + [i32] * 5, dict(C=r["boundary_block"], BS=16, JB=8, PREC="tf32x3"),
     1, E_PP_BLOCKS),                                                                  # E_PP's diagonal blocks
    (RK.boundary_inverse, [f32, "*i32", f32, bf16, f32, f32] + [i32] * 2,
     dict(MP=16, BS=r["boundary_block"], PREC="tf32x3")),
    (RK.triangular_product, [f32, f32, f32] + [i32] * 2,
     dict(BM=r["product_m"], BN=r["product_n"], BK=r["product_k"], PREC="tf32", UPCAST=False, CAST=tl.bfloat16),
     r["product_warps"]),
    (RB.chunk_output_backward, [bf16] * 4 + [f32, f32, f32, bf16, "*i32", "*i32", bf16] + [f32] * 5 + [i32] * 11,
     dict(shapes, CP=64, BK=r["back_k"], DV=128, MP=16, PREC="tf32", DECAY=False), r["back_warps"]),
    (RB.chunk_output_backward, [bf16] * 4 + [f32, "*fp64", "*i32", bf16, "*i32", "*i32", bf16] + [f32] * 5 + [i32] * 11,
     dict(shapes, CP=64, BK=r["back_k"], DV=128, MP=1, PREC="tf32", DECAY=True), r["back_warps"]),
    (RB.chunk_output_backward, [f32] * 8 + ["*i32", "*i32"] + [f32] * 6 + [i32] * 11,
     dict(shapes, CP=64, BK=r["back_k"], DV=128, MP=16, PREC="tf32x3", DECAY=False), r["back_warps"]),
    (RB.chunk_output_backward, [f32] * 4 + [f32, "*fp64", "*i32", f32, "*i32", "*i32", f32] + [f32] * 5 + [i32] * 11,
     dict(shapes, CP=64, BK=f32_out["decay_back_k"], DV=128, MP=1, PREC="tf32x3", DECAY=True), r["back_warps"]),
    (RB.chunk_output_backward, [bf16] * 4 + [f32, f32, f32, bf16, "*i32", "*i32", bf16] + [f32] * 5 + [i32] * 11,
     dict(shapes, CP=64, BK=r["back_k"], DV=256, MP=16, PREC="tf32", DECAY=False), r["wide"]["back_warps"]),  # d 256
    (RB.chunk_output_backward, [bf16] * 4 + [f32, "*fp64", "*i32", bf16, "*i32", "*i32", bf16] + [f32] * 5 + [i32] * 11,
     dict(shapes, CP=64, BK=r["back_k"], DV=256, MP=1, PREC="tf32", DECAY=True), r["wide"]["back_warps"]),
    (RB.chunk_output_backward, [f32] * 8 + ["*i32", "*i32"] + [f32] * 6 + [i32] * 11,       # refused: call63's launch
     dict(shapes, CP=64, BK=64, DV=256, MP=4, PREC="tf32x3", DECAY=False), 4),
    (RB.state_walk_backward, [f32, f32] + ["*i32"] * 3 + [i32] * 6,
     dict(C=64, BK=r["walk_k"], BV=r["walk_v"], GATHER=True, DECAY=False)),
    (RB.state_walk_backward, [f32, f32] + ["*i32"] * 3 + [i32] * 6,
     dict(C=64, BK=r["walk_k"], BV=r["walk_v"], GATHER=False, DECAY=True)),
    (RB.boundary_backward, [bf16, bf16, f32, bf16, f32] + ["*i32"] * 3 + [f32] * 4 + [i32] * 10,
     dict(shapes, BK=r["back_k"], DV=128, PREC="tf32", DECAY=False), r["back_warps"]),
    (RB.boundary_backward, [bf16, bf16, f32, bf16, f32] + ["*i32"] * 3 + [f32] * 4 + [i32] * 10,
     dict(shapes, BK=r["back_k"], DV=128, PREC="tf32", DECAY=True), r["back_warps"]),
    (RB.boundary_backward, [f32] * 5 + ["*i32"] * 3 + [f32] * 4 + [i32] * 10,
     dict(shapes, BK=r["back_k"], DV=128, PREC="tf32x3", DECAY=False), r["back_warps"]),
    (RB.boundary_backward, [f32] * 5 + ["*i32"] * 3 + [f32] * 4 + [i32] * 10,                  # ssm, float32
     dict(shapes, BK=f32_out["decay_back_k"], DV=128, PREC="tf32x3", DECAY=True), r["back_warps"]),
    (RB.boundary_backward, [bf16, bf16, f32, bf16, f32] + ["*i32"] * 3 + [f32] * 4 + [i32] * 10,
     dict(shapes, BK=r["back_k"], DV=256, PREC="tf32", DECAY=False), r["wide"]["back_warps"]),      # d 256
    (RB.coefficient_grads, [f32, f32] + ["*i32"] * 3 + [f32] * 6 + [i32] * 7, dict(C=64, WIN=64, JB=8, BW=32),
     r["back_warps"]),
    (RB.decay_grads, [f32, f32, f32, "*i32", "*fp64", "*i32", f32, f32] + [i32] * 5, dict(C=64, CP=64),
     r["decay_warps"], LAYOUTS[True]),
    (TP._forward, [bf16] * 5 + [i32] * 17, TILE, TP.WARPS, TILE_INTS),        # tiled mixing's first tile, power2's
    (TP._backward_rows, [bf16] * 7 + [i32] * 20, TILE, TP.BACKWARD_WARPS, TILE_INTS),      # layer (B8 T2048 H8)
    (TP._backward_columns, [bf16] * 7 + [i32] * 20, TILE, TP.BACKWARD_WARPS, TILE_INTS),
    (RK.chunk_walk, WALK_TYPES, dict(WALK, SP=16, SLOTS=9, AHEAD=r["walk_chunk_ahead"], SLOT16=r["walk_chunk_slot16"],
                                     OWN=r["walk_chunk_own"], SPLIT=False), r["walk_chunk_warps"]),
    *((K.coef_grad, [f32, bf16, "*i32", bf16] + [i32] * 4, dict(C=64, BD=bd, JB=backend._columns(w)),
       g["grad_warps"], dict(W=w)) for bd, w in ((g["lag_BD"], 1), (g["lag_BD"], 14), (g["BD"], 1))),  # da, db
    (RK.chunk_walk, WALK_TYPES, dict(WALK, SP=16, SLOTS=9, AHEAD=r["walk_chunk_ahead"], SLOT16=r["walk_chunk_slot16"],
                                     OWN=r["walk_chunk_own"], SPLIT=True), r["walk_chunk_warps"]),      # split in two
    (RK.split_fixup, [bf16] * 3 + [f32] * 2 + ["*i32"] + [i32] * 10, WALK, r["walk_chunk_warps"],
     dict(split_state=128, first=130)),
]


def cuobjdump(cubin: bytes, flag: str) -> str:
    """cuobjdump (from the triton wheel) of a compiled kernel with flag."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        return subprocess.run([str(tool), flag, f.name], capture_output=True, text=True, check=True).stdout


def resources(compiled) -> str:
    """A compiled kernel's registers and stack bytes a thread (spilled registers live on the stack) and the shared
    memory bytes a program asks (a launch past the device's limit raises ``OutOfResources``): ``REG:n STACK:m
    SHARED:s``."""
    out = cuobjdump(compiled.asm["cubin"], "--dump-resource-usage")
    used = [re.search(rf"\b{key}:\d+", out).group(0) for key in ("REG", "STACK")]
    return " ".join(used + [f"SHARED:{compiled.metadata.shared}"])


def sass(cubin: bytes) -> list[str]:
    """The SASS instructions of a compiled kernel (cuobjdump from the triton wheel), addresses stripped."""
    out = cuobjdump(cubin, "-sass")
    return [re.sub(r"/\*[0-9a-f]+\*/", "", line).strip() for line in out.splitlines()
            if re.match(r"\s+/\*[0-9a-f]{4,}\*/", line)]


def digest(code: list[str]) -> str:
    """A short digest of SASS instructions (``sass``): equal digests, the same machine code."""
    return hashlib.sha256("\n".join(code).encode()).hexdigest()[:16]


def int_values(fn, consts: dict) -> dict:
    """The ints of a configuration at the main shape (``SHAPE``), by argument name."""
    values = dict(SHAPE)
    if fn.__module__ == K.__name__:
        values.update(SCAN)
    else:
        values.update(LAYOUTS[bool(consts.get("DECAY", False))])
        if "BV" in consts:
            values["n_vb"] = -(-values["dv"] // consts["BV"])
    return values


def source(fn, types: list, consts: dict, ints: dict | None = None) -> ASTSource:
    """Configuration (fn, types, consts) specialized as the JIT specializes its launch at the main shape: each int
    in ``int_values`` as ``native_specialize_impl`` says (1 compiled in, a multiple of 16 marked), every pointer
    16-byte aligned; ints: values in place of those."""
    names = [a for a in fn.arg_names if a not in consts]
    assert len(names) == len(types), f"{fn.__name__}: {len(types)} types for {len(names)} arguments"
    values, consts, attrs = dict(int_values(fn, consts), **(ints or {})), dict(consts), {}
    for name, kind in zip(names, types):
        if kind.startswith("*"):
            attrs[(fn.arg_names.index(name),)] = CUDABackend.parse_attr("D")
        elif name in values:
            kind, flag = native_specialize_impl(CUDABackend, values[name], False, True, True)
            if kind == "constexpr":
                consts[name] = flag
            elif flag:
                attrs[(fn.arg_names.index(name),)] = CUDABackend.parse_attr(flag)
    sig = dict(zip(names, types), **{k: c for k in consts})      # (an int compiled in becomes a constexpr)
    return ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)


def compile_one(fn, types: list, consts: dict, warps: int | None = None, ints: dict | None = None):
    """One configuration compiled for sm_90 (``source``), at warps (default ``triton.GPU["warps"]``)."""
    fn = fn.fn if isinstance(fn, Launcher) else fn                # the JITFunction under triton_launch's launcher
    return triton.compile(source(fn, types, consts, ints), target=GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=warps or g["warps"]))


def compile_all():
    """Each configuration of ``kernels`` compiled (``compile_one``): ``(index, kernel, compiled)`` in order."""
    for i, (fn, types, consts, *more) in enumerate(kernels):
        yield i, fn, compile_one(fn, types, consts, *more)


def chunk_walk_grid():
    """``chunk_walk`` (a setting, off) compiled at each of its settings' values (d_v blocks, warps, inputs a chunk
    ahead, 16-bit slots, the own terms in the walk; and split in two at a few): one line each, its settings and
    resources (``resources``)."""
    fn, types, consts, _ = next(config for config in kernels if config[0] is RK.chunk_walk)
    grid = [(own, bv, warps, ahead, slot16, False) for own, bv, warps, ahead, slot16 in itertools.product(
        (True, False), (16, 32, 64), (4, 8, 16), (True, False), (False, True))]
    grid += [(own, bv, 8, False, True, True) for own in (True, False) for bv in (16, 32)]     # split in two
    for own, bv, warps, ahead, slot16, split in grid:
        compiled = compile_one(fn, types, dict(consts, BV=bv, AHEAD=ahead, SLOT16=slot16, OWN=own, SPLIT=split),
                               warps)
        print(f"walk_chunk_v={bv} walk_chunk_warps={warps} walk_chunk_ahead={ahead} walk_chunk_slot16={slot16} "
              f"walk_chunk_own={own} walk_chunk_split={split}", resources(compiled), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sass", action="store_true", help="print each configuration's SASS size and digest")
    ap.add_argument("--resources", action="store_true", help="with --sass: and its registers and stack bytes a "
                    "thread, and its shared memory")
    ap.add_argument("--chunk-walk", action="store_true", help="only chunk_walk, at each of its settings' values")
    args = ap.parse_args(argv)
    if args.chunk_walk:
        chunk_walk_grid()
        return 0
    for i, fn, compiled in compile_all():
        if args.sass:
            code = sass(compiled.asm["cubin"])
            used = resources(compiled) if args.resources else ""
            print(i, fn.__name__, len(code), digest(code), used)
    print("compiled", len(kernels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
