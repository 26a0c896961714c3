"""The aligned readout in Triton (``readout_triton_kernels``): ``glr_readout``'s ``chunked_aligned``
algorithm with ``backend="triton"`` (by default on CUDA for float32, bfloat16 and float16 inputs,
``readout.aligned_backend``).

Four launches (``readout_triton_kernels``), reading q, k, v, a, b where they are (``[B, T, H, d]``; q, k, v also as
slices of a wider last axis whose row stride is a multiple of ``ALIGNED_STRIDE``, ``_rows_of``): the chunk
inverses ``(I - B_RR)^{-1}`` (the scan's ``chunk_inverse``, rows shifted to the layout) and ``[M | E]``
(step 1; chunks outside ``triton.CHUNKS`` solve it in torch, ``readout_aligned.solve_chunks``), the boundary
walk (step 3: neither ``L_p`` nor a recurrence input goes through HBM; each boundary state is written once)
and the chunk output (steps 2 + 4: each chunk reads its m sources). Where boundary states gather earlier ones than
their predecessor (fenwick) and there are from ``min_solved`` (a setting) to ``MAX_SOLVED``, step 3 solves for them
at once instead:
``boundary_local`` forms every ``L_p`` in parallel, then ``H = (I - E_PP)^{-1} L``: the inverse by
``chunk_inverse`` (its diagonal blocks) and ``boundary_inverse`` (blocked forward substitution; ``_boundary_inverse``,
a triangular solve in torch, where the setting ``boundary_inverse`` is off), then one batched matrix product in
torch. First-order patterns (``first_order``:
ssm) take three: ``decay_sums`` in place of step 1, whose running sums of ``log2 |b|`` (float64) the chunk output
turns into M and E in registers, and whose chunks' last rows of M and E the walk reads. Patterns with ``A(t) = {t}``
and no reach (``diagonal``: fenwick) form no M in the forward: ``chunk_coefficients`` makes E alone after the
inverses (``MIX`` off), and the kernels read ``M = T_k diag(a)`` from the inverses and a.

Each signature (shapes, dtypes, device, row strides, settings) gets a ``_Plan`` once: its tables, sizes and every
launch bound to all but the tensors of a call (``triton_launch.bind``), so that a call allocates and launches only.
Where the host would set the pace (q of at most ``graph_elements``), a call replays the plan's forward and backward as
CUDA graphs instead (``readout_graphs``, ``_lease``).

Precision: ``[M | E]`` float32 (step 1's products, the chunk inverses' and ``[M | E]``'s, in
``triton.GPU["inverse_precision"]`` for float32 q, three tf32 passes by default, which keep float32 accuracy, and in
``"inverse_precision_16"``, one tf32 pass, for bfloat16 and float16 q, whose products round to as few bits or fewer:
``triton.inverse_precision``, whatever the coefficients' dtype; E_PP's inverse, whose errors would compound along
the chain of boundary states, always in the float32 setting); products in q's dtype with float32 sums; the
walk carries ``H_{p-1}`` in float32 and stores the boundary states in q's dtype (a state read by a later
step other than its successor is read rounded so); the solve's matrix products take q's dtype (``L_p``, the
inverse and, backward, G rounded to it); the output in q's dtype. Within 1e-5 of float64 for
float32 inputs and 1e-2 for bfloat16, as the torch ops.

The backward (``_backward``) reads what the forward kept (M, E, the boundary states, the chunk inverses; for
first-order patterns ``decay_sums``' S, counts and last rows, from which its kernels form M, E and ``T_k`` as the
forward's do, so that it runs no step 1 either):
four launches (``readout_triton_backward``: the chunk outputs' terms, the reverse walk of the state gradients,
the boundary rows' terms, step 1's through the inverses, or for first-order patterns ``decay_grads``; solved
boundary states take the reverse walk as the transposed solve, ``Z = (I - E_PP)^{-T} G``, in
``triangular_product``); chunks outside ``triton.CHUNKS`` (first-order patterns aside) take step 1's by
torch autograd of ``solve_chunks`` (``_step1_backward``); heads wider than ``BACKWARD_HEAD``, and plans whose
backward needs more shared memory than the device has, take all their gradients by torch autograd of
``readout_aligned.chunked_aligned``. A plan whose forward the device refuses so runs that forward in torch ops
(``_forward``), and its gradients as above.
"""
from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch
import triton.language as tl
from triton.runtime.errors import OutOfResources

from glrtheory.errors import GLRError

from ..second_derivative import no_second_derivative
from . import readout_graphs as graphs
from . import readout_triton_backward as KB
from . import readout_triton_kernels as K
from .readout_aligned import chunked_aligned, solve_chunks
from .readout_plan import ChunkLayout, boundary_tables, chunk_slots, level_slots, walk_split
from .triton import (CHUNKS, MAX_ELEMENTS, MAX_GRID_Y, _arg, _columns, _interpreting, _output, _precision, _settings,
                     chunk_inverse_launch, inverse_precision)
from .triton_launch import ARG, bind

Tensor = torch.Tensor

#: Input dtypes the kernels take (float64 runs in torch ops).
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
#: Each one's Triton dtype.
_TL = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}
#: Largest chunk-output score block ``C x window(layout)`` the kernels hold in registers (float32).
MAX_SCORES = 2**14
#: Widest head (d_k, d_v) the backward's kernels take; they hold all of d_v in one program. At 256 with slices of
#: 64 (``back_k``) they gave the right gradients for ssm and fenwick in bf16 on an H200, but blocks (bf16 and
#: float32) and fenwick in float32 asked more shared memory than it has (gpu_calls/call63; ssm in float32 not
#: measured). ssm's forward + backward at B8 T2048 H32 D256 took 11.738 ms in the kernels against 52.557 through the
#: torch ops (call129, call128), 9.849 with the ``wide`` heads' ``back_warps`` of 8 (call130). A plan whose backward
#: launch the device refuses (``OutOfResources``) takes its gradients by torch autograd of the torch ops
#: (``_autograd``) from then on, as wider heads always do; no CUDA graph holds it (``_kernels_plan``).
BACKWARD_HEAD = 256
#: Row strides of q, k, v read in place (``_rows_of``) are multiples of this, and so are the strides the kernels
#: take in its units (``_units``, the kernels' UNIT), so that they know each row is 16-byte aligned: Triton itself
#: specializes an integer argument only on divisibility by 16. Read in place at a stride of 3096 (the layer's
#: projection at d_model 1024, 8 heads) without that, ssm's boundary walk took 0.117 ms against 0.052 copied and
#: the chunk output 0.097 against 0.075, which cost as much as the two copies saved (gpu_calls/call69); with it,
#: 0.055 and 0.079, and the layer's kernels 2.054 ms against 2.123 copied (call72).
ALIGNED_STRIDE = 8
#: Most signatures (shapes, strides, dtypes, settings) replayed as CUDA graphs per tables; calls of others run eagerly
#: (``_lease``): a capture costs a host sync and memory that stays with the tables, which a loop over many batch sizes
#: would otherwise pile up.
GRAPHED_SIGNATURES = 8
#: Heads wider than this (d_k or d_v) take the ``wide`` settings (``_head_setting``) and run eagerly, never as the
#: readout's CUDA graphs (``_lease``: none timed for them).
WIDE_HEAD = 128
#: Most sources a walk step unrolls (``unrolled_sources``); more (power2, quadratic forced to ``chunked_aligned``
#: reach m in the hundreds) loop at run time rather than compile one huge kernel per m. fenwick's m: 6 to 15.
MAX_UNROLLED = 16
#: Most boundary states the solve takes (``solve_boundaries``): per head a dense ``[|P|, |P|]`` float32 inverse
#: (``|P|^3 / 3``) and ``|P|^2 d_k d_v`` multiply-adds, against the walk's ``|P| m d_k d_v`` in |P| steps. At
#: |P| = 256 (fenwick, T = 16384, C = 64) the solve was the faster (gpu_calls/call64); more boundary states walk,
#: the solve's cost growing faster (not measured past 256).
MAX_SOLVED = 256
#: Most slots of ``level_walk`` (``readout_plan.level_slots``): fenwick's Fenwick levels at up to ``MAX_SOLVED``
#: boundary states, plus state 0's.
MAX_SLOTS = 9
#: Widest d_k and longest chunk of ``chunk_walk``, which holds d_k whole in each of its slots: compiled offline for
#: sm_90, chunks of 128 ask more shared memory than an H200 has (394240 bytes at the defaults), as float32 q does at
#: d_k 128 (246272; hence ``chunk_walk`` off in the float32 settings).
MAX_WALK_HEAD, MAX_WALK_CHUNK = 128, 64
#: Launch settings: the d_k x d_v block of a walking program, the d_k slices and d_v block of a chunk-output
#: program (each capped at the head size rounded up to a power of two, at least 16), warps per program. GPU:
#: the fastest of 10 settings for ssm + fenwick at B2 T16384 H16 D128 bf16 on an H200 (``gpu_readout.py``).
#: The backward's chunk and boundary programs take d_k slices of ``back_k`` and all of d_v, ``back_warps`` warps
#: (step 1's backward too). ``back_stages``: those two launches' ``num_stages`` (None: Triton's default), 1 so
#: that the chunk program's loop over its sources is not software-pipelined: pipelined, its dq and dE were wrong in
#: float32 under compute-sanitizer (gpu_calls/call226) and NaN or wrong in bf16 with slices of 32 (call61, call231;
#: a miscompile suspected); at one stage they are right in both (call227-call229), and fenwick's forward + backward
#: took 6.776 ms against 7.330 in bf16, 25.267 against 26.860 in float32 (call228, H100). Slices of 64 are right at
#: d = 64, 128 and 256; at 256 slices of 32 and 16 read shared memory out of bounds, at one stage too (call230,
#: call231: the compiler's code). ``decay_back_k`` (None: ``back_k``): the slices of first-order patterns' backward
#: (``decay``) on heads up to ``WIDE_HEAD``: 32 in float32, where ssm's forward + backward took 12.000-12.121 ms
#: against 16.927-17.033 with 64 (call228, call232, H100) and fenwick's was slower with 32 (27.4-27.8 against
#: 25.2-25.4); bf16 within 1% either way.
#: ``local_k`` x ``local_v``, ``local_warps``: the blocks of ``boundary_local``: fenwick's forward 1.495 ms with
#: 128 x 128 at 8 warps, 1.502 with 64 x 128, 1.553 with 64 x 64 at 4 warps, 1.609 walked (gpu_calls/call64).
#: ``decay``: step 1 of first-order patterns (``first_order``) by ``decay_sums``, and its backward by ``decay_grads``
#: from the same sums (``decay_warps`` warps); False runs the general step 1 and its backward.
#: ``diagonal``: where ``A(t) = {t}`` and w = 0 (``diagonal``; not first order) the forward's step 1 writes E alone and
#: the kernels form ``M = T_k diag(a)`` from the chunk inverses as they read them; the backward forms M from the kept
#: inverses and a in one product (``diagonal_mix``).
#: ``out_maxnreg``: a cap on the chunk output's registers a thread (Triton's ``maxnreg``; None: the compiler's).
#: Compiled offline as the H200 compiles it (``benchmarks/h200_compile.py``), fenwick's takes 250 registers at 4 warps
#: and 142 at 8 (so one program of 8 warps an SM); capped at 128 at 8 warps it spills nothing, and two programs of 8
#: warps fit an SM. Timed (fenwick / ssm forward ms, against 1.054-1.056 / 0.570 at the defaults, alternating;
#: gpu_calls/call153): 8 warps capped at 128 1.091-1.094 / 0.621-0.622, and at 2 stages 1.089 / 0.612; 4 warps capped
#: at 168 at 1 stage (three programs an SM, 48 bytes spilled) 1.033 / 0.576. Within 2%: not kept (None).
#: ``out_warps``, ``out_stages``: the chunk output's warps and software-pipeline stages (Triton's default, 3). Its
#: program holds 226 registers a thread, so two programs of 4 warps fit an SM, and it waits on latency (Nsight
#: Compute on fenwick's: 12% of the SM's warps active, the SM 32% and memory 49% busy; gpu_calls/call83). Yet no
#: other form timed faster (fenwick / ssm forward ms, against 1.40 / 0.59): 8 warps 1.78 / 0.84, with 1 or 2 stages
#: 1.50-1.89 / 0.66-0.86; 4 warps with 1 or 2 stages 1.45-1.46 / 0.64-0.66 (call84); d_k slices of 128 1.82 / 0.79,
#: 1.41 / 0.60 at 2 stages; the sources unrolled, loads masked past each chunk's count, 1.53 / 0.59 (call85); their
#: loop flattened over (source, d_k slice) pairs for the compiler to pipeline, 1.43 / 0.65 (call83). DIAG's step 1
#: in one launch (each chunk's inverse, then its E in the same program) took fenwick's 1.56 against 1.40 in two
#: (call86); so again with the inverse's blocks in registers, 1.46 / 1.57 ms at 2 / 4 warps against 1.30 in two
#: (call109); the chunk inverses with their 16 x 16 blocks in registers took fenwick's 1.305 ms against 1.284 in memory
#: (call109), though alone they were faster (0.121 against 0.133 ms on the scan's inputs). E formed where it is read
#: instead of in step 1 (``boundary_local`` its boundary rows, the chunk output every row, from B's table one-hot in
#: registers and the inverse it loads) took fenwick's 1.900 ms against 1.284 (the chunk output 1.084 ms against 0.452;
#: call110): not kept. ``out_after``: each source's term as ``E_j * (Q H_j)``, rows scaled after the product, where
#: ``(E_j * Q) H_j`` scaled and rounded Q for every source: fenwick 1.466 / 1.475 ms against 1.491 / 1.499 (H200 call105
#: / H100 call104); with it and one d_k slice (``out_k`` >= d_k) Q is loaded once for all sources (the kernels' QONCE):
#: fenwick 1.296 against 1.376 at slices of 64, ssm 0.578 against 0.587 (call106). With one slice Q is loaded once
#: either way: ``out_after`` off then took fenwick's forward 1.104 / 1.108 ms against 1.061 / 1.066 (call154).
#: ``boundary_inverse``: the solve's ``(I - E_PP)^{-1}`` by the kernels (``chunk_inverse`` over E's boundary rows in
#: chunks of ``boundary_block``, then ``boundary_inverse``), else by torch's triangular solve, its copies and casts
#: (0.141 ms of kernels at 256 boundary states, call110): fenwick's forward 1.132 / 1.128 ms with blocks of 32,
#: 1.137 / 1.138 with 16, 1.289 / 1.284 by torch (gpu_calls/call114; the kernel 0.017 ms). It gathered its sources
#: from U's float32 columns first, 16 scattered loads a source: 1.198 ms (the kernel 0.078, call113), and before that
#: formed the diagonal blocks' inverses in its own loop: 1.250 ms (0.150, call112).
#: ``product_m`` x ``product_n``, ``product_k``, ``product_warps``: the blocks, slices and warps of the solve's
#: backward ``Z = U dH`` (``triangular_product``; fenwick's forward + backward 6.99-7.05 ms over five settings,
#: call106). Its forward ``H = U^T L`` took 0.199 ms in that kernel against cuBLAS's dense 0.135 (calls 105 and 95)
#: and stays in torch, dense: in 2, 4 or 8 row blocks that skip U^T's zero upper triangle (a torch product each, 3/4
#: to 9/16 of the work) fenwick's forward took 1.100, 1.176 and 1.316 ms against 1.061-1.066 dense (call154).
#: ``unrolled_sources``: where boundary states gather earlier ones (``_tables``' "gather") and m is at most
#: ``MAX_UNROLLED``, the walk compiles m in (one compile per m) and unrolls its loop over a step's sources, so that
#: their loads need not wait on each other: fenwick's forward 1.607 ms against 1.803 (gpu_calls/call55; ssm, which
#: gathers nothing, 0.598 either way). ``wide``: the blocks, ``out_after`` and the backward's warps for heads wider
#: than ``WIDE_HEAD`` (d_k or d_v): at B8 T2048 H32 D256 ssm's forward took 1.516 ms with them against 1.956 with the
#: others (fenwick 3.247 against 3.914; gpu_calls/call55, call56); ``out_after``, which came later, took ssm's to 1.910
#: (fenwick 3.873) with d_k slices of 32, against 1.410 (3.009) without it and slices of 64, 1.500 (3.111) without it
#: and slices of 32, 1.950 (4.357) with it and slices of 64 (gpu_calls/call128); ``back_warps`` of 8 took ssm's
#: forward + backward to 9.849 ms from 11.679 at 4 (fenwick 19.168 from 24.133; call130). The interpreter runs the
#: same ones. ``float32``: settings for float32 inputs, on top of those (``_head_setting``): the chunk output's d_k
#: slices and d_v blocks of 64. Compiled offline for sm_90 (``benchmarks/h200_compile.py --sass --resources``),
#: its float32 program asked 262148 bytes of shared memory with the slices of 128 that bf16 takes (294912 with the
#: wide blocks, 64 x 256), more than the H200's 232448, which would refuse the launch; with slices of 32, 81920 and
#: 147456; with slices and blocks of 64, 98304 at either width. At B2 T16384
#: H16 D128 float32 slices of 32 took ssm's forward 2.240 ms and fenwick's 7.546, 64 took 2.657 and 8.842, 128 (over
#: the shared memory) 7.018 and 13.798, all with d_v blocks of 128 (gpu_calls/call133). With d_v blocks of 64 too
#: (98304 bytes, offline): slices of 64 took 2.099 and 6.153, slices of 32 2.126 and 6.334, against 2.226-2.235 and
#: 7.520-7.538 with blocks of 128 (call156); at B8 T2048 H32 D256, 7.046-7.049 and 15.898-16.016 against 9.957-9.960
#: and 28.119-28.161 with call133's slices of 32 and the wide blocks of 256 (call157). Hence slices and blocks of 64.
#: ``solve_boundaries``: where boundary states gather earlier ones and there are at most ``MAX_SOLVED``, they are
#: solved for at once (``_Plan.boundary_inverses``) instead of walked, and their gradients likewise, if there are at
#: least ``min_solved``: in the layer at T = 2048 (32 boundary states) the walk's kernels took as long as the solve's
#: (2.791 against 2.788 ms a forward + backward step, with torch's triangular solve) in 73 launches against 90
#: (gpu_calls/call69), and with the inverse in the kernels 2.708 walked against 2.709 solved, interleaved with
#: attention (call115); at 256 the solve was the faster (call64); from 64 to 128 neither is measured. The
#: interpreter solves from 1, so that the tests' short sequences take the solve. ``in_place``: q, k, v that are
#: slices of a wider last axis are read where they are (``_rows_of``); False copies them first. ``graphs``,
#: ``graph_elements``: calls with q of at most ``graph_elements`` elements replay their forward and backward as CUDA
#: graphs (``readout_graphs``), up to ``graphs`` instances a signature (0: never); ``layer_graphs``: a readout layer's
#: whole step replays so too, under the same two (``kernels/layer_graphs``). ``level_walk``: solved states walked
#: instead by ``level_walk``, each state a later step reads in its Fenwick level's register slot (``level_slots``):
#: fenwick's forward 1.049 ms against 1.066 solved, with d_k x d_v tiles of 64 x 64 and 8 warps (32 x 64 1.327,
#: 64 x 128 2.511), forward + backward 6.777 (gpu_calls/call142) against 6.675-6.762 solved (calls 134, 137): off.
#: ``chunk_walk``: the boundary states and the chunk output in one walk over the chunks (``chunk_walk``: d_v blocks
#: of ``walk_chunk_v``, its inputs a chunk ahead or not, its slots in q's dtype or float32): fenwick's forward
#: 2.404 ms at its defaults (the one wave at the main shape, 32 x 4 programs), 2.570-4.449 at eight other settings,
#: against 1.054 solved (gpu_calls/call180): latency-bound, so off.
GPU = dict(walk_k=32, walk_v=64, out_k=128, out_v=128, warps=4, back_k=64, back_warps=4, back_stages=1,
           decay=True, diagonal=True, unrolled_sources=True, solve_boundaries=True, min_solved=64, local_k=128,
           local_v=128, local_warps=8, out_warps=4, out_stages=3, out_maxnreg=None, out_after=True, product_m=64,
           product_n=128, product_k=64, product_warps=4, in_place=True, decay_warps=4, graphs=4, graph_elements=2**25,
           layer_graphs=True, boundary_inverse=True, boundary_block=32, level_walk=False, level_k=64, level_v=64,
           level_warps=8, chunk_walk=False, walk_chunk_v=32, walk_chunk_warps=8, walk_chunk_ahead=False,
           walk_chunk_slot16=True, walk_chunk_own=True, walk_chunk_split=False, decay_back_k=None,
           wide=dict(walk_k=64, walk_v=64, out_k=64, out_v=256, out_after=False, back_warps=8),
           float32=dict(out_k=64, out_v=64, chunk_walk=False, decay_back_k=32))
INTERPRETER = dict(walk_k=64, walk_v=64, out_k=64, out_v=64, warps=4, back_k=64, back_warps=4, back_stages=None,
                   decay=True, diagonal=True, unrolled_sources=True, solve_boundaries=True, min_solved=1, local_k=64,
                   local_v=64, local_warps=4, out_warps=4, out_stages=3, out_maxnreg=None, out_after=True, product_m=16,
                   product_n=32, product_k=16, product_warps=4, in_place=True, decay_warps=4, graphs=0,
                   graph_elements=2**25, layer_graphs=True, boundary_inverse=True,
                   boundary_block=16, level_walk=False, level_k=16, level_v=32, level_warps=4, chunk_walk=False,
                   walk_chunk_v=32, walk_chunk_warps=4, walk_chunk_ahead=True, walk_chunk_slot16=False,
                   walk_chunk_own=True, walk_chunk_split=False, decay_back_k=None,
                   wide=dict(GPU["wide"]), float32=dict(out_k=64, out_v=64))    # chunk_walk as in force


def _block(x: int) -> int:
    """x rounded up to a power of two, at least 16 (``tl.dot``'s smallest side)."""
    return max(16, 1 << (x - 1).bit_length())


def _slots(m: int) -> int:
    """A row's m source slots as a block: m rounded up to a power of two, at least 1."""
    return 1 << max(m - 1, 0).bit_length()


def window(layout: ChunkLayout) -> int:
    """The kernels' window width: ``C + w`` as a block (``_block``)."""
    return _block(layout.chunk + layout.span)


def rows(layout: ChunkLayout) -> int:
    """A chunk-output program's rows: C as a block (``_block``)."""
    return _block(layout.chunk)


def refusal(q: Tensor, layout: ChunkLayout, d_v: int) -> str | None:
    """Why the Triton forward cannot run these inputs (then the readout runs in torch ops), or None."""
    B, T, H, dk = q.shape
    if q.dtype not in DTYPES:
        return f"the triton readout takes float32, bfloat16 or float16, got {q.dtype}"
    if q.device.type != "cuda" and not _interpreting():
        return f"the triton readout needs CUDA tensors (got {q.device}); TRITON_INTERPRET=1 runs it on the CPU"
    C = layout.chunk
    if rows(layout) * window(layout) > MAX_SCORES:
        return (f"the triton readout holds C x (C + w) scores in registers, at most {MAX_SCORES}: chunk C={C}, "
                f"window C + w = {C + layout.span} (rounded up to {window(layout)})")
    if layout.n_chunks > MAX_GRID_Y:
        return (f"the triton readout launches a program a chunk along a grid axis of at most {MAX_GRID_Y}: "
                f"{layout.n_chunks} chunks of {C}")
    N = B * H
    biggest = max(N * layout.n_boundary * dk * d_v, N * (layout.n_chunks * layout.chunk + layout.span) * max(dk, d_v))
    if biggest > MAX_ELEMENTS:
        return f"problem too large for the triton readout: {biggest} elements in one tensor (limit {MAX_ELEMENTS})"
    return None


def first_order(layout: ChunkLayout) -> bool:
    """Whether the pattern is first order (``A(t) = {t}``, ``B(t)`` is ``{t - 1}`` or empty, as ``ssm``), so that
    ``M[i, j] = a_j prod_{j < r <= i} b_r`` and ``E[i] = prod_{r <= i} b_r`` and the boundary states are the chunks'
    last rows: then step 1 is ``decay_sums`` (``readout_triton_kernels``, DECAY)."""
    a, b, t = layout.tables.a_idx, layout.tables.b_idx, np.arange(layout.tables.n)
    return (layout.span == 0 and a.shape[1] == 1 and b.shape[1] == 1 and bool((a[:, 0] == t).all())
            and bool(((b[:, 0] == t - 1) | (b[:, 0] < 0)).all())
            and bool((layout.boundary_row % layout.chunk == layout.chunk - 1).all()))


def diagonal(layout: ChunkLayout) -> bool:
    """Whether ``A(t) = {t}`` and the window is the chunk's rows (w = 0), as ``fenwick`` and ``power2``: then
    ``A_R = diag(a)`` and ``M = T_k diag(a)``, which the kernels form from the chunk inverses as they read them
    (``readout_triton_kernels``, DIAG)."""
    a = layout.tables.a_idx
    return layout.span == 0 and a.shape[1] == 1 and bool((a[:, 0] == np.arange(layout.tables.n)).all())


def _tables(layout: ChunkLayout, device) -> dict:
    """int32 device tables: A (padded); ``x_col [T, wb]``, the slot in its chunk's X of each B entry before
    the chunk (-1 elsewhere); each boundary position's chunk and row, its sources' indices in P ``[P, m]``
    (-1 padded); each chunk's sources as indices in P (``ext [nc, m]``) and their count; the B table
    (the chunk inverses'); ``gather``: whether some boundary state reads one other than its predecessor;
    ``decay``: ``first_order``; ``diagonal``: ``diagonal``; for ``_boundary_inverse`` (int64), each boundary
    position's row in the chunks' rows (``b_flat``) and its sources' columns (``b_src_column``, |P| where there is
    none)."""
    def build():
        C, tables = layout.chunk, layout.tables
        row = layout.boundary_row
        x_col = np.full(tables.b_idx.size, -1, dtype=np.int64)
        pos, slot = layout.entries()["bx"]
        x_col[slot] = pos % max(layout.m, 1)
        arrays = dict(a_idx=tables.a_idx, b_idx=tables.b_idx, x_col=x_col.reshape(tables.b_idx.shape),
                      b_chunk=row // C, b_row=row % C, b_src=boundary_tables(layout).b_idx, ext=layout.ext,
                      ext_count=layout.ext_count)
        out = {k: torch.as_tensor(np.array(x, dtype=np.int32), device=device) for k, x in arrays.items()}
        src = arrays["b_src"]
        out["b_flat"] = torch.as_tensor(row, device=device)                        # the solve's (int64)
        out["b_src_column"] = torch.as_tensor(np.where(src >= 0, src, len(src)), device=device)
        out["gather"] = bool(((src >= 0) & (src != np.arange(len(src))[:, None] - 1)).any())
        levels = level_slots(layout, MAX_SLOTS)
        out["level_home"], out["level_src"] = (None, None) if levels is None else (
            torch.as_tensor(x.astype(np.int32), device=device) for x in levels)
        out["level_slots"] = 0 if levels is None else int(levels[0].max(initial=0)) + 1
        walk = None if levels is None else chunk_slots(layout, levels[0])
        if walk is not None:                    # its columns' slots padded to a power of two (``_slots``)
            walk = (np.pad(walk[0], ((0, 0), (0, _slots(walk[0].shape[1]) - walk[0].shape[1])), constant_values=-1),
                    *walk[1:])
        split = walk_split(layout) if walk is not None else None    # (m, its chunk, its slot): host ints
        out["walk_split"] = None if split is None else (*split, int(walk[3][split[1]]))
        out["chunk_walk"] = None if walk is None else [torch.as_tensor(x.astype(np.int32), device=device) for x in walk]
        out["decay"] = first_order(layout)
        out["diagonal"] = diagonal(layout)
        return out

    return layout.tables.memo(("readout_triton", layout.chunk, layout.offset, str(device)), build)


def _setting() -> dict:
    """The launch settings in force: the interpreter's (patched first) when it runs, else the GPU's."""
    _settings()
    return INTERPRETER if _interpreting() else GPU


def _head_setting(dk: int, dv: int, dtype: torch.dtype = torch.bfloat16) -> dict:
    """The setting in force for these heads and inputs: its ``wide`` entries on top for heads over ``WIDE_HEAD``,
    then its ``float32`` ones for float32 inputs."""
    setting = _setting()
    merged = {**setting, **setting["wide"]} if max(dk, dv) > WIDE_HEAD else dict(setting)
    return {**merged, **setting["float32"]} if dtype == torch.float32 else merged


def _blocks(dk: int, dv: int, dtype: torch.dtype = torch.bfloat16, decay: bool = False) -> dict:
    """The block sizes in force for these heads and inputs (``_head_setting``), each at most the head size as a block
    (``_block``); a first-order pattern's backward (``decay``) takes ``decay_back_k`` where set, on heads up to
    ``WIDE_HEAD``."""
    setting = _head_setting(dk, dv, dtype)
    if decay and setting["decay_back_k"] and max(dk, dv) <= WIDE_HEAD:
        setting = dict(setting, back_k=setting["decay_back_k"])
    return {key: min(setting[key], _block(d))
            for key, d in (("walk_k", dk), ("walk_v", dv), ("out_k", dk), ("out_v", dv), ("back_k", dk),
                           ("local_k", dk), ("local_v", dv), ("level_k", dk), ("level_v", dv))}


def _boundary_inverse(coef: Tensor, layout: ChunkLayout, tab: dict) -> Tensor:
    """``U = (I - E_PP)^{-T}`` ``[N, |P|, |P|]`` float32, contiguous and upper triangular, by torch's triangular solve,
    where ``E_PP[p, X_j(p)] = E[p, j]``: boundary p's coefficients on the boundary states it reads (its row of E,
    ``coef[:, p]``), so that the walk's ``H_p = L_p + sum_j E[p, j] H_{X_j(p)}`` is ``H = U^T L`` (a dense product),
    and its backward ``Z = U dH`` (``K.triangular_product``)."""
    N, P, m = coef.shape[0], layout.n_boundary, layout.m
    e = coef.new_zeros(N, P, P + 1).scatter_add_(2, tab["b_src_column"].expand(N, P, m), coef)[..., :P]
    eye = torch.eye(P, dtype=e.dtype, device=e.device)
    inverse = torch.linalg.solve_triangular(eye - e, eye.expand(N, P, P), upper=False, unitriangular=True)
    return inverse.transpose(1, 2).contiguous()     # a view where the solve returns column-major matrices


def _solves(tab: dict, layout: ChunkLayout, setting: dict) -> bool:
    """Whether the boundary states are solved for (``solve_boundaries``) rather than walked."""
    return tab["gather"] and setting["solve_boundaries"] and setting["min_solved"] <= layout.n_boundary <= MAX_SOLVED


def _rows_of(x: Tensor, in_place: bool = True) -> tuple[Tensor, int]:
    """``(x, S)``: x itself where it is ``[B, T, H, d]`` with strides ``(T S, S, d, 1)``, ``S >= H d`` (contiguous, or,
    ``in_place``, a slice of a wider last axis with S a multiple of ``ALIGNED_STRIDE`` starting at a 16-byte address,
    as a layer's q, k, v split from one projection can be), which the kernels read in place; else ``x.contiguous()``
    and ``S = H d``."""
    B, T, H, d = x.shape
    S = x.stride(1)
    aligned = S % ALIGNED_STRIDE == 0 and x.data_ptr() % 16 == 0
    if x.stride() == (T * S, S, d, 1) and (S == H * d or in_place and S > H * d and aligned):
        return x, S
    return x.contiguous(), H * d


def _units(*rows: Tensor) -> tuple[int, ...]:
    """``(UNIT, S_1 / UNIT, ...)``: the row strides of ``rows`` (q, k, v as ``_rows_of`` keeps them) in the kernels'
    units, ``ALIGNED_STRIDE`` where every one is a multiple of it (the kernels then know their rows' alignment),
    else 1."""
    strides = [x.stride(1) for x in rows]
    unit = ALIGNED_STRIDE if all(S % ALIGNED_STRIDE == 0 for S in strides) else 1
    return (unit,) + tuple(S // unit for S in strides)


def _plan(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout) -> "_Plan":
    """The ``_Plan`` of these inputs (q, k, v as ``_rows_of`` keeps them, a and b contiguous), built once per
    signature: shapes, dtypes, device, row strides and the settings in force (``MAX_UNROLLED`` and ``MAX_SOLVED``
    too), kept with the tables. Its launches are bound to the kernels as they were when it was built."""
    return layout.tables.memo(("readout_triton_plan",) + _signature(q, k, v, a, b, layout),
                              lambda: _Plan(q, k, v, a, b, layout))


def _signature(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout) -> tuple:
    """What a plan depends on: the layout, shapes, dtypes, device, row strides and the settings in force (the scan's
    too, whose ``chunk_inverse`` step 1 launches)."""
    setting = _setting()
    return (layout.chunk, layout.offset, q.device, q.shape, v.shape[-1], q.dtype, k.dtype, v.dtype, a.dtype, b.dtype,
            a.shape[-1], b.shape[-1], *_units(q, k, v), _interpreting(), MAX_UNROLLED, MAX_SOLVED,
            *[tuple(x.items()) if isinstance(x, dict) else x for x in setting.values()],
            *_settings().values())


class _Plan:
    """A signature's forward (step 1, the boundary states, the chunk output) and backward (module docstring):
    its tables (``_tables``), sizes and settings, each launch bound to all but the tensors of a call
    (``triton_launch.bind``), so that a call allocates and launches only."""

    def __init__(self, q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout):
        B, T, H, dk = q.shape
        dv, wa, wb = v.shape[-1], a.shape[-1], b.shape[-1]
        N, C, w, m, nc, P, s = B * H, layout.chunk, layout.span, layout.m, layout.n_chunks, layout.n_boundary, \
            layout.shift
        self.layout, self.sizes, self.widths, self.dtype = layout, (B, T, H, dk, dv, N, nc, P, m), (wa, wb), q.dtype
        self.refused_forward = self.refused_backward = False      # set where the device refuses them
        tab = self.tab = _tables(layout, q.device)
        setting = self.setting = _head_setting(dk, dv, q.dtype)
        self.decay = tab["decay"] and setting["decay"]
        blk = self.blk = _blocks(dk, dv, q.dtype, self.decay)
        unit, *self.strides = _units(q, k, v)
        sq, sk, sv = self.strides
        self.diagonal = tab["diagonal"] and setting["diagonal"] and not self.decay and C in CHUNKS
        self.solves = bool(m) and _solves(tab, layout, setting)
        self.levels = self.solves and setting["level_walk"] and tab["level_home"] is not None
        self.walks_chunks = (bool(m) and setting["chunk_walk"] and tab["chunk_walk"] is not None and self.diagonal
                             and dk <= MAX_WALK_HEAD and C <= MAX_WALK_CHUNK)
        self.shapes = dict(C=C, WIN=C + w, W=window(layout), PREC=_precision(q.dtype), UPCAST=_interpreting(),
                           UNIT=unit)
        if C in CHUNKS:                         # step 1 (else in torch: solve_chunks), as precise as q's products
            precision = inverse_precision(q.dtype)
            self.inverse_shape, self.chunk_inverse = chunk_inverse_launch(b, tab["b_idx"], T, C, s,
                                                                          precision=precision)
            self.chunk_coefficients, self.carry_coefficients = (
                bind(K.chunk_coefficients, (N, nc), ARG, ARG, tab["a_idx"], _arg(tab["x_col"]), ARG, ARG, ARG, T, H, nc,
                     wa, wb, s, m, C=C, WIN=C + w, JB=_columns(max(wa, wb)), BW=32, MIX=full, PREC=precision)
                for full in (True, False))
        if self.decay:                          # step 1 by decay_sums (kernels' docstring)
            self.decay_sums = bind(K.decay_sums, (N, nc), ARG, ARG, tab["b_idx"], ARG, ARG, ARG, ARG, T, H, nc, s,
                                   C=C, CP=rows(layout))
        forward = dict(self.shapes, DECAY=self.decay, DIAG=self.diagonal, num_warps=setting["warps"])
        if self.solves:                         # H = (I - E_PP)^{-1} L, L_p by boundary_local in parallel
            e_rows = a.new_empty(N, P, 1, m, dtype=torch.float32)      # E's boundary rows, as chunk_inverse reads b
            bs = setting["boundary_block"]
            if bs not in (16, 32):
                raise GLRError(f"readout_triton setting boundary_block must be 16 or 32, got {bs}")
            self.diagonal_shape, self.diagonal_inverse = chunk_inverse_launch(e_rows, tab["b_src"], P, bs)
            self.boundary_inverse = bind(
                K.boundary_inverse, (N, -(-P // bs)), ARG, tab["b_src"], ARG, ARG, ARG, ARG, P, m,
                MP=_slots(m), BS=bs, PREC=inverse_precision(torch.float32), num_warps=4)
            if self.levels:                     # the forward walks instead, its states in registers by level
                n_vb = -(-dv // blk["level_v"])
                self.level_walk = bind(
                    K.level_walk, (N, -(-dk // blk["level_k"]) * n_vb), ARG, ARG, ARG, ARG, ARG, ARG, tab["b_chunk"],
                    tab["b_row"], tab["level_src"], tab["level_home"], P, nc, m, T, H, dk, dv, s, sk, sv, n_vb,
                    BK=blk["level_k"], BV=blk["level_v"], MP=_slots(m), SLOTS=tab["level_slots"],
                    DIAG=self.diagonal, num_warps=setting["level_warps"], **self.shapes)
            elif not self.walks_chunks:
                n_vb = -(-dv // blk["local_v"])
                self.boundary_local = bind(
                    K.boundary_local, (P, N, -(-dk // blk["local_k"]) * n_vb), ARG, ARG, ARG, ARG, ARG,
                    tab["b_chunk"], tab["b_row"], P, nc, T, H, dk, dv, s, sk, sv, n_vb, BK=blk["local_k"],
                    BV=blk["local_v"], num_warps=setting["local_warps"], DIAG=self.diagonal, **self.shapes)
        elif m and not self.walks_chunks:
            n_vb = -(-dv // blk["walk_v"])
            unrolled = m if setting["unrolled_sources"] and tab["gather"] and m <= MAX_UNROLLED else 0
            self.boundary_walk = bind(
                K.boundary_walk, (N, -(-dk // blk["walk_k"]) * n_vb), ARG, ARG, ARG, ARG, ARG, ARG, tab["b_chunk"],
                tab["b_row"], tab["b_src"], P, nc, m, T, H, dk, dv, s, sk, sv, n_vb, BK=blk["walk_k"],
                BV=blk["walk_v"], GATHER=tab["gather"], SOURCES=unrolled, **forward)
        self.split = self.walks_chunks and setting["walk_chunk_split"] and tab["walk_split"] is not None
        if self.walks_chunks:                   # the states and the output in one walk over the chunks
            bv = min(setting["walk_chunk_v"], _block(dv))
            split_state, split_chunk, split_slot = tab["walk_split"] if self.split else (0, 0, 0)
            walk = dict(C=C, CP=rows(layout), BK=_block(dk), BV=bv, PREC=self.shapes["PREC"], UPCAST=_interpreting(),
                        UNIT=unit)
            self.chunk_walk = bind(
                K.chunk_walk, (N, -(-dv // bv), 1 + self.split), ARG, ARG, ARG, ARG, ARG, ARG, ARG, ARG, ARG, ARG,
                *tab["chunk_walk"], nc, P, m, T, H, dk, dv, s, sq, sk, sv, split_chunk, split_slot,
                SP=tab["chunk_walk"][0].shape[1], SLOTS=tab["level_slots"],
                AHEAD=setting["walk_chunk_ahead"], SLOT16=setting["walk_chunk_slot16"], OWN=setting["walk_chunk_own"],
                SPLIT=self.split, num_warps=setting["walk_chunk_warps"], **walk)
            if self.split:
                self.split_fixup = bind(
                    K.split_fixup, (nc - split_chunk - 1, N, -(-dv // bv)), ARG, ARG, ARG, ARG, ARG,
                    tab["chunk_walk"][1], split_state, split_chunk + 1, nc, P, T, H, dk, dv, s, sq,
                    num_warps=setting["walk_chunk_warps"], **walk)
        if not (self.walks_chunks and setting["walk_chunk_own"]):
            sources = (_arg(tab["ext"]), tab["ext_count"]) if not self.walks_chunks else (   # the walk's own
                tab["ext"][:1], torch.zeros_like(tab["ext_count"]))                          # terms: no sources
            self.chunk_output = bind(
                K.chunk_output, (nc, N, -(-dv // blk["out_v"])), ARG, ARG, ARG, ARG, ARG, ARG, ARG, *sources, ARG, P,
                nc, m, T, H, dk, dv, s, sq, sk, sv, CP=rows(layout), BK=blk["out_k"], BV=blk["out_v"],
                AFTER=setting["out_after"], QONCE=blk["out_k"] >= dk,
                **dict(forward, num_warps=setting["out_warps"], num_stages=setting["out_stages"],
                       **({} if setting["out_maxnreg"] is None else dict(maxnreg=setting["out_maxnreg"]))))

    @functools.cached_property
    def backward_launches(self) -> dict:
        """The backward's launches, bound at its first call (heads over ``BACKWARD_HEAD`` never make them)."""
        tab, setting, blk, layout = self.tab, self.setting, self.blk, self.layout
        B, T, H, dk, dv, N, nc, P, m = self.sizes
        (wa, wb), (sq, sk, sv), C, s = self.widths, self.strides, layout.chunk, layout.shift
        backward = dict(self.shapes, num_warps=setting["back_warps"], BK=blk["back_k"],
                        **({} if setting["back_stages"] is None else dict(num_stages=setting["back_stages"])))
        out = dict(chunk_output_backward=bind(
            KB.chunk_output_backward, (nc, N), ARG, ARG, ARG, ARG, ARG, ARG, ARG, ARG, _arg(tab["ext"]),
            tab["ext_count"], ARG, ARG, ARG, ARG, ARG, ARG, P, nc, m, T, H, dk, dv, s, sq, sk, sv, CP=rows(layout),
            DV=_block(dv), MP=_slots(m), DECAY=self.decay, **backward))
        if self.solves:                             # Z = U dH (U from boundary_inverses), products in q's dtype
            bm, bn = min(setting["product_m"], _block(P)), min(setting["product_n"], _block(dk * dv))
            out["solved_product"] = bind(
                K.triangular_product, (-(-P // bm), -(-dk * dv // bn), N), ARG, ARG, ARG, P, dk * dv, BM=bm, BN=bn,
                BK=min(setting["product_k"], bm), PREC=self.shapes["PREC"], UPCAST=_interpreting(),
                CAST=_TL[self.dtype], num_warps=setting["product_warps"])
        if m and not self.solves:
            n_vb = -(-dv // blk["walk_v"])
            out["state_walk_backward"] = bind(
                KB.state_walk_backward, (N, -(-dk // blk["walk_k"]) * n_vb), ARG, ARG, tab["b_chunk"], tab["b_row"],
                tab["b_src"], P, nc, m, dk, dv, n_vb, C=C, BK=blk["walk_k"], BV=blk["walk_v"], GATHER=tab["gather"],
                DECAY=self.decay, num_warps=setting["warps"])
        if m:
            out["boundary_backward"] = bind(
                KB.boundary_backward, (P, N), ARG, ARG, ARG, ARG, ARG, tab["b_chunk"], tab["b_row"], tab["b_src"], ARG,
                ARG, ARG, ARG, P, nc, m, T, H, dk, dv, s, sk, sv, DV=_block(dv), DECAY=self.decay, **backward)
        if self.decay:
            out["decay_grads"] = bind(KB.decay_grads, (N, nc), ARG, ARG, ARG, tab["b_idx"], ARG, ARG, ARG, ARG, T, H,
                                      nc, s, max(m, 1), C=C, CP=rows(layout), num_warps=setting["decay_warps"])
        elif C in CHUNKS:
            out["coefficient_grads"] = bind(
                KB.coefficient_grads, (N, nc), ARG, ARG, tab["a_idx"], tab["b_idx"], _arg(tab["x_col"]), ARG, ARG, ARG,
                ARG, ARG, ARG, T, H, nc, wa, wb, s, m, C=C, WIN=C + layout.span, JB=_columns(max(wa, wb)), BW=32,
                num_warps=setting["back_warps"])
        return out

    def coefficients(self, a: Tensor, b: Tensor, mix: bool = True) -> tuple[Tensor | None, Tensor, Tensor | None]:
        """Step 1, ``M [N, nc, C, C + w]`` and ``E [N, nc, C, m]`` float32 (E as ``_arg`` gives it) and the chunk
        inverses: by ``chunk_inverse`` and ``chunk_coefficients`` for chunks the inverse takes (``triton.CHUNKS``),
        else ``readout_aligned.solve_chunks`` (inverses None). Without ``mix`` (DIAG) M is None (the kernels form it
        from the inverses) and ``chunk_coefficients`` makes E alone."""
        layout = self.layout
        C, w, m, nc = layout.chunk, layout.span, layout.m, layout.n_chunks
        if C not in CHUNKS:
            mix, ecoef = solve_chunks(a, b, layout).split([C + w, m], -1)
            return mix.contiguous(), _arg(ecoef.contiguous()), None
        inverses = a.new_empty(self.inverse_shape, dtype=torch.float32)
        ecoef = _arg(a.new_empty(self.sizes[5], nc, C, m))
        self.chunk_inverse(_arg(b), inverses)
        if not mix:
            self.carry_coefficients(a, _arg(b), inverses, inverses, ecoef)   # E alone; M's place unused
            return None, ecoef, inverses
        out = a.new_empty(self.sizes[5], nc, C, C + w)
        self.chunk_coefficients(a, _arg(b), inverses, out, ecoef)
        return out, ecoef, inverses

    def boundary_inverses(self, ecoef: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        """``(U, U^T)``: ``U = (I - E_PP)^{-T}`` ``[N, P, P]`` float32 (upper) and ``U^T`` in q's dtype, by the kernel
        ``boundary_inverse`` (setting ``boundary_inverse``), else by torch (``_boundary_inverse``), from E's boundary
        rows."""
        N, P, m = self.sizes[5], self.sizes[7], self.sizes[8]
        e_rows = ecoef.view(N, -1, m)[:, self.tab["b_flat"]]
        if not self.setting["boundary_inverse"]:
            upper = _boundary_inverse(e_rows, self.layout, self.tab)
            return upper, upper.transpose(1, 2).to(q.dtype)
        diag = ecoef.new_empty(self.diagonal_shape)
        self.diagonal_inverse(e_rows, diag)
        upper, lower, scratch = _output(ecoef, N, P, P), _output(q, N, P, P), _output(ecoef, N, P, P)
        self.boundary_inverse(e_rows, diag, lower, upper, scratch)
        return upper, lower

    def diagonal_mix(self, a: Tensor, inverses: Tensor) -> Tensor:
        """DIAG's ``M = T_k diag(a) [N, nc, C, C]`` (float32) from the chunk inverses: ``M[n, c, i, j] = T_k[i, j]
        a[t_j]`` with ``t_j = c C - s + j``, 0 where ``t_j`` is outside ``[0, T)`` (no A row there), as
        ``chunk_coefficients`` makes it, in one product."""
        B, T, H, _, _, N, nc, _, _ = self.sizes
        C, s = self.layout.chunk, self.layout.shift
        cols = a.new_zeros(B, H, nc * C, dtype=torch.float32)
        cols[:, :, s:s + T] = a[..., 0].transpose(1, 2)
        return inverses * cols.view(N, nc, 1, C)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor) -> tuple:
        """``kernel_outputs``; where the device refuses a launch (``OutOfResources``), the plan is marked
        ``refused_forward`` and ``refused_backward``, and the error propagates."""
        try:
            return self.kernel_outputs(q, k, v, a, b)
        except OutOfResources:
            self.refused_forward = self.refused_backward = True
            raise

    def kernel_outputs(self, q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor) -> tuple:
        """``(o, mix, ecoef, states, inverses, boundary_inverse, last, last_carry)``: the output and what the backward
        reads: M and E, or DECAY ``decay_sums``' S and counts in their place and its last rows of M and E (else
        None), the inverses None; M None where the kernels formed it from the inverses (DIAG); the boundary inverse
        None where the states were walked."""
        B, T, H, dk, dv, N, nc, P, m = self.sizes
        if self.decay:
            CP = rows(self.layout)
            sums, counts = a.new_empty(N, nc * self.layout.chunk, dtype=torch.float64), a.new_empty(
                N, nc * self.layout.chunk, dtype=torch.int32)
            last, last_carry = a.new_empty(N, nc, CP, dtype=torch.float32), a.new_empty(N, nc, dtype=torch.float32)
            self.decay_sums(a, b, sums, counts, last, last_carry)
            (mix, ecoef), inverses, walked = (sums, counts), None, (last, last_carry)
        else:
            mix, ecoef, inverses = self.coefficients(a, b, mix=not self.diagonal)
            walked, last, last_carry = (inverses if self.diagonal else mix, ecoef), None, None
        read = walked if self.diagonal else (mix, ecoef)
        states = _output(q, N, P, dk, dv) if m else q.new_zeros(1)
        solved, o = None, _output(q, B, T, H, dv)
        if self.walks_chunks:
            if not self.setting["walk_chunk_own"]:
                self.chunk_output(q, k, v, a, *read, states, o)           # the own terms, then the walk adds
            w = g = ecoef                                                 # (not read without SPLIT)
            if self.split:                                                # SPLIT's w by row, then g by state
                rows_w = N * nc * self.layout.chunk
                scalars = _output(ecoef, rows_w + N * P)
                w, g = scalars[:rows_w], scalars[rows_w:]
            self.chunk_walk(q, k, v, a, inverses, ecoef, states, o, w, g)
            if self.split:                                                # the later part's g_p H_m, w_t q_t^T H_m
                self.split_fixup(q, states, o, w, g)
            return o, mix, ecoef, states, inverses, solved, last, last_carry
        if self.levels:
            self.level_walk(k, v, a, *walked, states)
        elif self.solves:
            local = _output(q, N, P, dk, dv)
            self.boundary_local(k, v, a, walked[0], local)
            solved, lower = self.boundary_inverses(ecoef, q)          # H = U^T L, dense (faster than the kernel)
            torch.matmul(lower, local.view(N, P, dk * dv), out=states.view(N, P, dk * dv))
        elif m:
            self.boundary_walk(k, v, a, *walked, states)
        self.chunk_output(q, k, v, a, *read, states, o)
        return o, mix, ecoef, states, inverses, solved, last, last_carry

    def backward(self, grad: Tensor, saved: tuple, need: tuple) -> tuple:
        """``(dq, dk, dv, da, db)`` by ``kernel_grads``; where the device refuses a launch (``OutOfResources``: more
        shared memory than it has), the plan is marked ``refused_backward`` and the error propagates."""
        try:
            return self.kernel_grads(grad, saved, need)
        except OutOfResources:
            self.refused_backward = True
            raise

    def kernel_grads(self, grad: Tensor, saved: tuple, need: tuple) -> tuple:
        """``(dq, dk, dv, da, db)``: steps 4, 3 and 2 backwards in the kernels (``readout_triton_backward``), then
        step 1 (``coefficient_grads``; DECAY ``decay_grads``, from the forward's S and counts without the chunk
        inverses; else ``_step1_backward``)."""
        q, k, v, a, b, mix, ecoef, states, inverses, solved, last, last_carry = saved
        B, T, H, dk, dv, N, nc, P, m = self.sizes
        C, w = self.layout.chunk, self.layout.span
        if self.diagonal:                           # M = T_k diag(a) from the kept inverses (E kept too)
            mix = self.diagonal_mix(a, inverses)
        grad = grad.to(q.dtype).contiguous()
        dqkv = _output(q, q.numel() + k.numel() + v.numel())     # one buffer: one clone in readout_graphs
        qkv_grads = _split(dqkv, q.shape, k.shape, v.shape)
        decoef, dstates = _zeros((N, nc, C, max(m, 1)), (N, P, dk, dv) if m else (1,), device=q.device)
        dmix = _output(decoef, N, nc, C, C + w)             # the chunk output stores all of dM, and dk, dv if w = 0
        kv32 = _output(decoef, k.numel() + v.numel()) if w == 0 else decoef.new_zeros(k.numel() + v.numel())
        dk32, dv32 = _split(kv32, k.shape, v.shape)
        launch = self.backward_launches
        launch["chunk_output_backward"](q, k, v, grad, a, mix, ecoef, states, qkv_grads[0], dk32, dv32, dmix, decoef,
                                        dstates)
        if self.solves:                             # Z = (I - E_PP)^{-T} G: the forward's solve, transposed
            if solved is None:                      # the forward walked by level (level_walk): U only now
                solved = self.boundary_inverses(ecoef, q)[0]
            dstates, gathered = _output(dstates), dstates
            launch["solved_product"](solved, gathered, dstates)
        elif m:                                     # DECAY: the chunks' last rows of E and M (walked)
            launch["state_walk_backward"](last_carry if self.decay else ecoef, dstates)
        if m:
            launch["boundary_backward"](k, v, last if self.decay else mix, states, dstates, dmix, decoef, dk32, dv32)
        if not any(need[3:5]):
            da = db = None
        elif self.decay or inverses is not None:
            da, db = _split(_output(a, a.numel() + b.numel()), a.shape, b.shape)
            if self.decay:
                launch["decay_grads"](da, db, a, mix, ecoef, dmix, decoef)
            else:
                launch["coefficient_grads"](da, db, inverses, mix, ecoef, dmix, decoef, torch.empty_like(inverses))
        else:
            da, db = _step1_backward(dmix, decoef, a, b, self.layout, need[3:5])
        dqkv[q.numel():].copy_(kv32)                                      # one cast for dk and dv
        return (*qkv_grads, da, db)


def _zeros(*shapes, device) -> list[Tensor]:
    """float32 zeros of each shape, as views of one buffer (one fill to launch, not one per tensor)."""
    flat = torch.zeros(sum(math.prod(shape) for shape in shapes), dtype=torch.float32, device=device)
    return _split(flat, *shapes)


def _split(flat: Tensor, *shapes) -> list[Tensor]:
    """flat as consecutive views of the given shapes."""
    return [x.view(shape) for x, shape in zip(flat.split([math.prod(shape) for shape in shapes]), shapes)]


def _autograd(fn, grad: Tensor, inputs: tuple, need: tuple) -> tuple:
    """The gradients of ``<fn(*inputs), grad>`` in the inputs marked in need (None for the others), by torch
    autograd of fn, recomputed."""
    if not any(need):
        return (None,) * len(need)
    leaves = [x.detach().requires_grad_(want) for x, want in zip(inputs, need)]
    with torch.enable_grad(), torch.autocast(grad.device.type, enabled=False):   # as the forward ran
        out = fn(*leaves)
        grads = iter(torch.autograd.grad(out, [x for x in leaves if x.requires_grad], grad.to(out.dtype)))
    return tuple(next(grads) if want else None for want in need)


def _step1_backward(dmix: Tensor, decoef: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout, need: tuple) -> tuple:
    """``(da, db)`` from ``dM, dE``: through ``[M | E] = (I - B_RR)^{-1} [A_R | B_R,X]``, by torch autograd of
    ``readout_aligned.solve_chunks`` (None where not needed)."""
    return _autograd(lambda a, b: solve_chunks(a, b, layout), torch.cat([dmix, decoef[..., :layout.m]], -1), (a, b),
                     need)


def _forward(plan: _Plan, q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor) -> tuple:
    """``(o, *kept)`` by the plan's kernels (``_Plan.forward``); where the device refuses them, now or before, the
    output by the torch ops in q's dtype, nothing kept."""
    if not plan.refused_forward:
        with contextlib.suppress(OutOfResources):       # marks the plan; no launch wrote what the torch ops read
            return plan.forward(q, k, v, a, b)
    with torch.autocast(q.device.type, enabled=False):
        return (chunked_aligned(q, k, v, a, b, plan.layout).to(q.dtype),) + (None,) * 7


def _backward(grad: Tensor, saved: tuple, plan: _Plan, need: tuple) -> tuple:
    """``(dq, dk, dv, da, db)`` by the forward's plan (``_Plan.backward``); where it cannot run (``_kernel_backward``),
    or the device refuses it now, torch autograd of the torch ops."""
    q, k, v, a, b = saved[:5]
    if _kernel_backward(plan):
        with contextlib.suppress(OutOfResources):       # marks the plan; no launch wrote what the torch ops read
            return plan.backward(grad, saved, need)
    return _autograd(lambda *x: chunked_aligned(*x, plan.layout), grad, (q, k, v, a, b), need[:5])


def _kernel_backward(plan: _Plan) -> bool:
    """Whether the plan's backward runs in its kernels: heads up to ``BACKWARD_HEAD`` that the device has not refused
    (``_backward``)."""
    dk, dv = plan.sizes[3:5]
    return max(dk, dv) <= BACKWARD_HEAD and not plan.refused_backward


def _lease(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout):
    """A lease on a captured instance of these inputs' signature (``readout_graphs``), or None where they run
    eagerly: graphs off or paused (``readout_graphs.paused``) or q over ``graph_elements``, heads over ``WIDE_HEAD``
    (no wider head's graphs have been timed), not CUDA (unless a test's stand-in records), inside another capture,
    or a new signature where the tables keep ``GRAPHED_SIGNATURES``."""
    setting = _setting()
    if (not setting["graphs"] or q.numel() > setting["graph_elements"] or max(k.shape[-1], v.shape[-1]) > WIDE_HEAD
            or not graphs.recordable(q)):
        return None
    key = (graphs.Layout.key((q, k, v, a, b)),) + _signature(q, k, v, a, b, layout)
    return graphs.lease(graphs.kept(layout.tables), key, setting["graphs"], GRAPHED_SIGNATURES,
                        lambda: graphs.Captured(functools.partial(_kernels_plan, layout=layout), q, k, v, a, b))


def _kernels_plan(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout) -> "_Plan":
    """The plan of these inputs, if its backward runs in its kernels alone (no torch autograd: a CUDA graph holds
    it); else GLRError."""
    plan = _plan(q, k, v, a, b, layout)
    if not _kernel_backward(plan):
        raise GLRError("its backward takes torch autograd of the torch ops (refused by the device, or heads over "
                       f"{BACKWARD_HEAD}), which no graph holds")
    if not (plan.decay or layout.chunk in CHUNKS):
        raise GLRError(f"chunks of {layout.chunk} take step 1's backward by torch autograd, which no graph holds")
    return plan


class AlignedTriton(torch.autograd.Function):
    """Forward and backward by the kernels (module docstring), replayed as CUDA graphs where ``_lease`` gives
    an instance."""

    @staticmethod
    def forward(ctx, q, k, v, a, b, layout, transient):
        in_place = _setting()["in_place"]
        q, k, v = (_rows_of(x, in_place)[0] for x in (q, k, v))
        a, b = a.contiguous(), b.contiguous()
        ctx.lease, ctx.layout, ctx.transient = _lease(q, k, v, a, b, layout), layout, transient
        if ctx.lease is not None:                   # its backward replays too, or else recomputes from the inputs
            ctx.save_for_backward(q, k, v, a, b)
            return ctx.lease.captured.forward((q, k, v, a, b), copy=not transient)
        ctx.plan = _plan(q, k, v, a, b, layout)                 # the backward's too
        o, *kept = _forward(ctx.plan, q, k, v, a, b)
        if not _kernel_backward(ctx.plan):                     # the backward recomputes in torch ops
            kept = [None] * len(kept)
        ctx.save_for_backward(q, k, v, a, b, *kept)
        return o

    @staticmethod
    @no_second_derivative("glr_readout's Triton kernels")
    def backward(ctx, grad):
        need, lease = ctx.needs_input_grad[:5], ctx.lease
        if lease is not None and lease.valid:
            grads = lease.captured.backward(grad, need, copy=not ctx.transient)
            lease.release()
            return grads + (None, None)
        saved = ctx.saved_tensors
        if lease is not None:                       # its instance replayed another forward since: recompute
            ctx.plan = _plan(*saved, ctx.layout)
            saved = (*saved, *_forward(ctx.plan, *saved)[1:])
        grads = _backward(grad, saved, ctx.plan, need)
        return tuple(g if want else None for g, want in zip(grads, need)) + (None, None)


def chunked_aligned_triton(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, layout: ChunkLayout,
                           transient: bool = False) -> Tensor:
    """``readout_aligned.chunked_aligned`` (same arguments; the result in q's dtype) in Triton; ``transient`` as
    ``glr_readout``'s.

    Raises
    ------
    GLRError
        Inputs the kernels cannot run (``refusal`` names why).
    """
    why = refusal(q, layout, v.shape[-1])
    if why:
        raise GLRError(why)
    return AlignedTriton.apply(q, k, v, a, b, layout, transient)
