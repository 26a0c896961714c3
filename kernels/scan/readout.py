"""The matrix-state readout ``o_t = q_t^T H_t`` with ``u_s = k_s v_s^T``, without per-token d_k x d_v states.

With ``M = (I - B)^{-1} A`` the scalar mixing matrix of a (batch, head), ``H_t = sum_s M[t, s] k_s v_s^T``,
so the readout is attention weighted by M (causal: M is lower triangular):

    o = ((Q K^T) * M) V                                   q, k [T, d_k], v [T, d_v], M [T, T]

``glr_readout`` chooses one of three algorithms from the index tables (``readout_algorithm``; the choice is
``readout_plan.readout_choice``, which needs no torch):

* ``"chunked_aligned"`` for patterns whose chunks read few earlier states, when its estimated work is below
  tiled mixing's (``readout_plan``), e.g. ``ssm``, ``fenwick``, ``blocks[:C]``, short lag sets such as
  ``lags:1,2,3`` and windows on top of them (from T ~ 1000 on; below, fixed costs the estimates leave out
  dominate and the choice may be about 2x off: ssm at T = 256 gets tiled mixing, 3.4 ms against 1.8 ms
  aligned, float32, H 2, d 64, one thread): chunks of C rows are solved
  locally and d_k x d_v states are kept only at the boundary positions P (``readout_aligned``). Work
  ``O(T (C + w)(d_k + d_v) + T m d_k d_v)`` with w the A reach before a chunk: class ``n (w + m)``, i.e.
  ``n`` for ``ssm`` and ``blocks:C``, ``n log n`` for ``fenwick`` (m ~ log2(T / C)), ``n^1.5`` for
  ``blocks`` as T grows (blocks of ``b = ceil(sqrt T)`` rows reach ``w = b - C`` before a chunk when C
  divides b: 0 at T = 4096, where b = C = 64, 64 at 16384, 192 at 65536; up to b - 1 otherwise).
  Memory ``O(T (C + w + m + d_k + d_v))`` plus ``|P| (C + w + d_v) d_k`` for the boundary states, within
  ``readout_plan.memory_limit`` (else tiled mixing).
* ``"direct"`` when B is empty (``attention``, ``window:W``): ``M = A``, so row blocks of C positions
  take A's rows scattered into a dense ``C x (span + C)`` block (``span``: the widest row, ``t - min A(t)``)
  beside ``Q K^T`` of the same block, flash-attention style. Work ``O(T (span + C) (d_k + d_v))``: class
  ``n w`` with w the span (``n`` for a window, ``n^2`` for attention). Memory one block.
* ``"tiled_mixing"`` for every other pattern: M's column blocks ``M[c0:, c0:c0+C] = (I - B)^{-1} A E``
  (``E`` the unit vectors of the tile; rows before c0 are zero) come from the vector-state scan
  ``glr_scan`` over the rows c0: and are combined tile by tile (``tile_product``: Triton kernels on CUDA,
  no scores in memory; einsums elsewhere). Work ``O(T^2 (d_k + d_v + |A| + |B|))``
  with ``|A|, |B|`` the mean row sizes: class ``n (n + nnz)``, nnz = nnz(A) + nnz(B) (``n^2`` for rows of
  bounded size, ``n^2 log n`` for power2). Memory ``O(T (d_k + d_v))`` per head plus one tile
  ``T x C``; the backward (here and in ``direct``) recomputes each block instead of keeping them, so
  training memory stays the same.

``chunked_aligned`` runs in torch ops (``readout_aligned``) or, on CUDA, by Triton kernels (``readout_triton``:
the default there, forward and backward; ``backend=`` forces either, ``aligned_backend`` decides).

Layout ``[batch, T, heads, dim]``: ``q, k [B, T, H, d_k]``, ``v [B, T, H, d_v]``, ``a [B, T, H, wa]``,
``b [B, T, H, wb]`` (aligned with the tables' slots, as in ``glr_scan``); ``o [B, T, H, d_v]``.
The reference is the materializing path: ``u = k v^T`` flattened through ``glr_scan``, then ``q^T H``.
"""
from __future__ import annotations

import functools

import torch

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError, WorkLimitError
from glrtheory.patterns.tables import IndexTables

from ..second_derivative import reverse_mode_only
from .current_device import on_input_device
from .op import choose_backend, glr_scan
from .readout_aligned import chunked_aligned
from .readout_blocks import DIRECT, TILED, Blockwise
from .readout_plan import ALGORITHMS, aligned_layout, over_memory, over_work, readout_choice

Tensor = torch.Tensor

#: Backends of the aligned algorithm (``aligned_backend``).
BACKENDS = ("torch", "triton")
#: Default chunk (direct) length C.
DEFAULT_CHUNK = 64
#: Elements ``B * H * T * C`` of one tile of M by default (tiled mixing), by device type (others: the CPU's): each
#: tile runs ``glr_scan`` once (plus its backward), so wider tiles mean fewer scans; C is a multiple of
#: DEFAULT_CHUNK. On CUDA the tiles' scans and products are launch bound when narrow: power2's readout at B8 T2048 H8
#: D128 bf16 on an H200 took 29.1 / 156.0 ms forward / forward + backward with tiles of 64 (2^23 elements), 6.77 /
#: 33.4 with 256, 2.78 / 13.7 with 512 (2^26; peak 1.84 GB), 2.66 / 10.6 with 1024 (2.78 GB) and 3.26 / 13.5 with
#: 2048 (4.66 GB); quadratic 4.61 / 40.8, 4.04 / 17.5, 4.41 / 19.8 and 6.11 / 28.3 with 256 to 2048
#: (``benchmarks/gpu_tiled.py``, gpu_calls/call159, call160).
TILE_ELEMENTS = {"cpu": 2**21, "cuda": 2**26}


def readout_algorithm(source, n: int | None = None) -> tuple[str, str]:
    """The algorithm ``glr_readout`` runs for these tables, and its cost class in T.

    Parameters
    ----------
    source : IndexTables, (a_idx, b_idx) or Pattern
        The index tables, or a pattern (then its tables at length n).
    n : int, optional
        The length, for a Pattern (default 256).

    Returns
    -------
    (name, cost_class) : ``("chunked_aligned", "n (w + m)")``, ``("direct", "n w")`` (B empty; w the
        widest span of an A row) or ``("tiled_mixing", "n (n + nnz)")`` (module docstring).
    """
    if hasattr(source, "support_a"):
        source = source.tables(256 if n is None else n)
    return readout_choice(source)


def aligned_dtypes(x: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """``(solve, product)`` dtypes of the aligned algorithm for inputs like x: float64 for float64; else a
    float32 solve and products in the autocast dtype when autocast is on for x's device, else in x's dtype."""
    if x.dtype == torch.float64:
        return torch.float64, torch.float64
    device = x.device.type
    return torch.float32, torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


def naive_readout(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, tables) -> Tensor:
    """The materializing reference: ``H = glr_scan(k v^T)`` (``[B, T, H, d_k * d_v]``), ``o_t = q_t^T H_t``."""
    u = (k.unsqueeze(-1) * v.unsqueeze(-2)).flatten(-2)
    h = glr_scan(u, a, b, tables).unflatten(-1, (k.shape[-1], v.shape[-1]))
    return torch.matmul(q.unsqueeze(-2), h).squeeze(-2)


def aligned_backend(backend: str | None, q: Tensor, d_v: int, layout) -> callable:
    """The aligned readout's implementation for q (in the product dtype): ``readout_triton``'s when asked
    for, or by default where it runs q (CUDA, float32 / bfloat16 / float16, a window within its registers);
    else ``readout_aligned``'s torch ops. A forced backend that cannot run q raises GLRError saying why."""
    if backend == "torch" or backend is None and q.device.type != "cuda":
        return chunked_aligned
    try:
        from .readout_triton import chunked_aligned_triton, refusal
    except ImportError as err:
        if backend is None:
            return chunked_aligned
        raise GLRError(f"backend='triton' needs triton installed ({err})") from None
    why = refusal(q, layout, d_v)
    if why and backend == "triton":
        raise GLRError(why)
    return chunked_aligned if why else chunked_aligned_triton


@on_input_device
def glr_readout(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, tables, *,
                chunk: int | None = None, algorithm: str | None = None, backend: str | None = None,
                transient: bool = False) -> Tensor:
    """Readout ``o_t = q_t^T H_t`` of the matrix states ``H = (I - B)^{-1} A U``, ``u_s = k_s v_s^T``,
    without materializing them (module docstring); differentiable in q, k, v, a and b.

    Parameters
    ----------
    q, k : Tensor ``[B, T, H, d_k]``
    v : Tensor ``[B, T, H, d_v]``
    a, b : Tensor ``[B, T, H, wa]``, ``[B, T, H, wb]``
        Coefficients aligned with the tables' slots (padded slots ignored); batch and heads may be 1. In
        q's dtype, or float32 with bfloat16 / float16 q, k, v (as a layer under autocast gives them: the
        coefficients, products along chains of states, keep float32).
    tables : IndexTables or (a_idx, b_idx)
        ``Pattern.tables(T)``.
    chunk : int, optional
        Chunk / tile length C (default: the aligned layout's own; ``DEFAULT_CHUNK`` for direct; for tiled
        mixing the multiple of it that keeps a tile ``B * H * T * C`` within ``TILE_ELEMENTS`` of q's device).
    algorithm : str, optional
        Force one of ``ALGORITHMS`` (default ``readout_algorithm(tables)``); ``direct`` needs B empty.
    backend : {"torch", "triton"}, optional
        How ``chunked_aligned`` runs (``aligned_backend``): by default its Triton kernels on CUDA where they
        apply (``readout_triton``), else torch ops. The other algorithms run in
        torch ops, but tiled mixing's tile products by Triton kernels on CUDA (``tile_product``).
    transient : bool
        The caller uses the output before it calls again with inputs of the same signature and keeps no gradient
        of q, k, v, a or b (a layer, whose out projection takes the output): where the Triton readout replays
        CUDA graphs (``readout_graphs``) it then hands out the graphs' own output and gradients, not copies.

    Returns
    -------
    Tensor ``[B, T, H, d_v]`` in q's dtype. The aligned algorithm runs its triangular solves and boundary
    states in float32 (float64 for float64 inputs) and its matrix products in q's dtype, or in the
    autocast dtype under ``torch.autocast`` (``aligned_dtypes``); the others compute in a's dtype, but tiled
    mixing of bfloat16 / float16 q, k, v with float32 a, b in q's where ``glr_scan`` runs it (CUDA:
    ``_blockwise_dtype``), and in float32 where it does not (the CPU), whatever a's dtype.

    Raises
    ------
    GLRError
        Shapes, dtypes or devices that disagree (named), a device without an autocast state (``meta``), bad tables,
        a bad chunk, algorithm or backend; a forced ``chunked_aligned`` over its memory limit (Notes; the message
        names the limit and the sizes);
        ``backend="triton"`` for another algorithm or for inputs its kernels cannot run (named).
    WorkLimitError
        A call whose estimated work, batch x heads times the algorithm's estimate per head, is over
        ``readout_plan.MAX_WORK`` of its device type (2^40 multiply-adds on the CPU, about a minute or two; 2^50 on
        CUDA): quadratic patterns at long T (power2 at T = 131072 on the CPU).

    Notes
    -----
    ``readout_algorithm(tables)`` says which algorithm runs: ``O(T (w + m))`` work for aligned patterns (``O(T log
    T)`` for ``fenwick``), ``O(T w)`` when B is empty (w: A's widest row span), ``O(T (T + nnz))`` otherwise
    (``O(T^2)`` for rows of bounded size, ``O(T^3)`` for ``attention+ssm``). Memory per head: ``O(T (d_k + d_v))``
    plus one block (direct: ``C x (w + C)``; tiled mixing: a tile ``T x C``); the aligned algorithm holds all
    chunks' dense blocks ``[nc, C, C + w + m]`` at once and |P| boundary states of ``d_k x d_v`` (|P| up to T),
    about ``readout_plan.memory(layout, d_k, d_v)`` elements, which must stay within ``readout_plan.memory_limit`` =
    ``max(2^23, 16 T (C + d_k + d_v))``: beyond it the default choice falls back to tiled mixing and a forced
    ``chunked_aligned`` raises. The checks and the choice run once per signature of a call (shapes, dtypes and
    devices of the inputs, the options, the autocast state) and are kept with the tables (``_choice``).
    """
    reverse_mode_only("glr_readout", (q, k, v, a, b))
    tables = IndexTables.coerce(tables)
    for x, name in ((q, "q"), (k, "k"), (v, "v"), (a, "a"), (b, "b")):
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise GLRError(f"{name} must be a 4-d tensor [batch, T, heads, dim], got "
                           f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if chunk is not None:
        check_integer(chunk, "chunk", 1)
    if not isinstance(transient, bool):
        raise GLRError(f"transient must be True or False, got {transient!r}")
    for option, name in ((algorithm, "algorithm"), (backend, "backend")):
        if option is not None and not isinstance(option, str):         # before it keys the memo
            raise GLRError(f"{name} must be a string or None, got {option!r}")
    device = q.device.type
    try:
        autocast = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device)
    except RuntimeError:                        # torch knows no autocast state there: no device that computes
        raise GLRError(f"glr_readout runs on devices that compute, not on {device} (q's device)") from None
    signature = tuple((x.shape, x.dtype, x.device) for x in (q, k, v, a, b)) + (chunk, algorithm, backend, autocast,
                                                                              transient)
    algorithm, C, layout, run, (solve, product) = tables.memo(
        ("glr_readout",) + signature, lambda: _choice(q, k, v, a, b, tables, chunk, algorithm, backend, transient))
    B, T, H, _ = q.shape
    a, b = (x if x.shape[0] == B and x.shape[2] == H else x.expand(B, T, H, x.shape[3]) for x in (a, b))
    dtype = q.dtype
    if algorithm == "chunked_aligned":
        q, k, v, a, b = (_as(x, t) for x, t in ((q, product), (k, product), (v, product), (a, solve), (b, solve)))
        with torch.autocast(device, enabled=False):
            out = run(q, k, v, a, b, layout)
        return _as(out, dtype)
    q, k, v, a, b = (_as(x, solve) for x in (q, k, v, a, b))              # the blockwise algorithms' one dtype
    return _as(Blockwise.apply(run, q, k, v, a.contiguous(), b.contiguous(), tables, C), dtype)


def _blockwise_dtype(algorithm: str, q: Tensor, a: Tensor) -> torch.dtype:
    """The one dtype of the blockwise algorithms: a's, except tiled mixing of bfloat16 / float16 q, k, v with float32
    a, b (a layer under autocast passes them) where ``glr_scan`` runs q's dtype (on CUDA): then q's, a and b rounded
    to it too, the tiles' scans accumulating in float32 and storing M in q's dtype, as bf16 inputs store their
    states, and the tiles' parts of the output and of the gradients summed in q's dtype; within the bf16 tolerance of
    float64 on the H200 (``test_gpu_tiled_mixing_matches_float64``: power2 and quadratic, one tile and six). power2's
    layer at B8 T2048 d_model 1024 under bf16 autocast took 19.80 ms forward + backward with float32 tiles
    (gpu_calls/call161; their scans 8.12 ms of its kernels), 10.87 with bf16 tiles (call162; quadratic 31.06 and
    18.20). Where no scan of q's dtype runs (the CPU's runs float32 and float64), tiled mixing of such q computes in
    float32, whether a, b are float32 or q's dtype."""
    low = (torch.bfloat16, torch.float16)
    if algorithm != "tiled_mixing" or q.dtype not in low or a.dtype not in (torch.float32, q.dtype):
        return a.dtype
    try:
        choose_backend(None, q.device, q.dtype)
    except GLRError:                                    # no scan of q's dtype there (the CPU's runs float32)
        return torch.float32
    return q.dtype


def tile_columns(B: int, H: int, T: int, device_type: str) -> int:
    """Tiled mixing's default tile width C: the largest multiple of ``DEFAULT_CHUNK`` (at least one) whose tile
    ``B * H * T * C`` stays within ``TILE_ELEMENTS`` of the device type, at most T."""
    budget = TILE_ELEMENTS.get(device_type, TILE_ELEMENTS["cpu"])
    return min(T, max(1, budget // (B * H * T * DEFAULT_CHUNK)) * DEFAULT_CHUNK)


def _as(x: Tensor, dtype: torch.dtype) -> Tensor:
    """x in dtype (x itself where it already is: no call into torch)."""
    return x if x.dtype == dtype else x.to(dtype)


def _choice(q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, tables: IndexTables, chunk, algorithm,
            backend, transient: bool = False) -> tuple:
    """``glr_readout``'s checks of its inputs' shapes, dtypes and devices and of its options, and its choice for
    them: ``(algorithm, C, layout, run, aligned_dtypes(q))``, run the aligned readout's implementation
    (``aligned_backend``, told ``transient``) or the block function of the others; built once per signature (shapes,
    dtypes, devices, options, autocast)."""
    T = tables.n
    for x, name, ref, ref_name in ((k, "k", q, "q"), (v, "v", q, "q"), (a, "a", q, "q"), (b, "b", a, "a")):
        if x.dtype != ref.dtype and name != "a" or x.device != ref.device:       # a's dtype: the rule below
            raise GLRError(f"{name} is {x.dtype} on {x.device} but {ref_name} is {ref.dtype} on {ref.device}; "
                           f"pass one dtype and device")
    if a.dtype != q.dtype and not (a.dtype == torch.float32 and q.dtype in (torch.bfloat16, torch.float16)):
        raise GLRError(f"a and b are {a.dtype} but q, k, v are {q.dtype}: pass q's dtype, or float32 "
                       f"coefficients with bfloat16 / float16 q, k, v")
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise GLRError(f"q, k, v must be float16, bfloat16, float32 or float64, got {q.dtype}")
    if 0 in q.shape or 0 in v.shape:
        raise GLRError(f"q, k, v must have no empty dimension, got {tuple(q.shape)}, {tuple(v.shape)}")
    B, _, H, dk = q.shape
    if q.shape[1] != T or k.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise GLRError(f"q, k, v must be [batch, T={T}, heads, d] with the tables' T and equal batch, T, heads "
                       f"(q, k also equal d_k), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    C = min(DEFAULT_CHUNK if chunk is None else check_integer(chunk, "chunk", 1), T)
    forced = algorithm is not None
    if backend is not None and backend not in BACKENDS:
        raise GLRError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if algorithm is None:
        algorithm = readout_choice(tables)[0]
    elif algorithm not in ALGORITHMS or algorithm == "direct" and (tables.b_idx >= 0).any():
        raise GLRError(f"algorithm must be one of {sorted(ALGORITHMS)} (direct only when B is empty), got "
                       f"{algorithm!r}")
    if algorithm == "chunked_aligned":
        layout = aligned_layout(tables, None if chunk is None else C) or aligned_layout(tables, DEFAULT_CHUNK)
        refusal = over_memory(layout, dk, v.shape[-1])
        if refusal and forced:
            raise GLRError(refusal)
        algorithm = "tiled_mixing" if refusal else algorithm
    if chunk is None and algorithm == "tiled_mixing":
        C = tile_columns(B, H, T, q.device.type)
    too_much = over_work(tables, algorithm, layout if algorithm == "chunked_aligned" else None, dk, v.shape[-1],
                         B * H, q.device.type)
    if too_much:
        raise WorkLimitError(too_much)
    for x, w, name in ((a, tables.a_idx.shape[1], "a"), (b, tables.b_idx.shape[1], "b")):
        if x.shape[1] != T or x.shape[3] != w or x.shape[0] not in (1, B) or x.shape[2] not in (1, H):
            raise GLRError(f"{name} must have shape [batch={B}, T={T}, heads={H}, {name}_idx width={w}] (batch "
                           f"and heads may be 1), got {tuple(x.shape)}")
    dtypes = aligned_dtypes(q)
    if algorithm == "chunked_aligned":
        like = q.new_empty((), dtype=dtypes[1]).expand(q.shape)    # q as the products take it
        run = aligned_backend(backend, like, v.shape[-1], layout)
        if transient and run is not chunked_aligned:            # the Triton readout's (torch ops keep nothing)
            run = functools.partial(run, transient=True)
        return algorithm, C, layout, run, dtypes
    if backend == "triton":
        raise GLRError(f"backend='triton' runs the chunked_aligned algorithm only, not {algorithm}")
    work = _blockwise_dtype(algorithm, q, a)
    return algorithm, C, None, DIRECT if algorithm == "direct" else TILED, (work, work)


