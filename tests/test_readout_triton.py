"""The aligned readout's Triton forward (``readout_triton``) against the float64 materializing reference
``naive_readout``, on the CPU under the Triton interpreter (on CUDA where there is one): every built-in
family forced to ``chunked_aligned`` with chunks of 16, n in {1, 2, 63, 200}, float32 and bfloat16 (inputs
rounded to the dtype first, so the reference sees what the kernels see), the kernels' outputs NaN-filled
under the interpreter (an unwritten element fails). Gradients (the Triton backward, ``dq`` NaN-filled
under the interpreter) against float64 autograd; the backend choice and its refusals."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.patterns.tables import IndexTables  # noqa: E402
from glrtheory.kernels.scan import readout_aligned, readout_plan, readout_triton  # noqa: E402
from glrtheory.kernels.scan.readout import aligned_backend, glr_readout, naive_readout, readout_algorithm  # noqa: E402
from glrtheory.kernels.scan.readout_plan import aligned_layout  # noqa: E402
from glrtheory.kernels.scan.triton import _precision  # noqa: E402
from tests.helpers import (BUILTIN_SPECS, RefusedLaunch, large_readout_inputs, rel_err,  # noqa: E402
                           tables_reading_below_the_split)
from tests.test_readout import problem  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}
#: Families whose chunks read many earlier states (m ~ n / 2): the interpreter takes them to n = 63 with one head
#: (at 200 each costs it 10-17 s, at 63 with two heads 10-18 s); CUDA to 200 with two.
DENSE = {"attention", "power2", "power:3", "quadratic", "exponent:0", "exponent:0.37", "exponent:1",
         "kron:1,11", "kron:1,11,101", "window:3+power2", "blocks:4+quadratic"}


def inputs(rng, spec, n, dtype, H=None, dk=5, dv=7, B=1):
    """Fresh inputs rounded to ``dtype`` and their float64 copies; 16 heads
    at n <= 2 (a norm-relative bf16 error of a few elements that cancel over d says little)."""
    tables, *xs = problem(rng, spec, n, B=B, H=H or (16 if n <= 2 else 2), dk=dk, dv=dv)
    low = [torch.tensor(x, dtype=dtype, device=DEVICE) for x in xs]
    return tables, low, [x.double().cpu() for x in low]


CASES = [(spec, n) for spec in BUILTIN_SPECS for n in (1, 2, 63, 200)
         if not (n == 200 and spec in DENSE and DEVICE == "cpu")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("spec, n", CASES)
def test_forward_matches_float64(rng, spec, n, dtype):
    tables, low, ref = inputs(rng, spec, n, dtype, H=1 if spec in DENSE and n > 2 and DEVICE == "cpu" else None)
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert out.dtype == dtype and out.shape == low[2].shape
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[dtype]


@pytest.mark.parametrize("chunk", [5, 24, 100])
def test_chunks_of_any_length(rng, chunk):
    """Chunks that are not powers of two (rows padded to one in the kernel): fenwick+lags:5, n = 200."""
    tables, low, ref = inputs(rng, "fenwick+lags:5", 200, torch.float32)
    out = glr_readout(*low, tables, chunk=chunk, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]


#: Gradient cases: every family at n = 1, 2 (both dtypes); the families without DENSE chunks at 63 (both)
#: and the cheap aligned ones at 200, one head from n = 63 on (windows of neighbouring chunks overlap for blocks and
#: window:5+ssm). DENSE at 63 costs the interpreter 10-15 s each: power2 only (on CUDA: all).
GRAD_CASES = ([(spec, n, dtype) for spec in BUILTIN_SPECS for n in (1, 2) for dtype in ("fp32", "bf16")]
              + [(spec, 63, dtype) for spec in BUILTIN_SPECS if spec not in DENSE for dtype in ("fp32", "bf16")]
              + [(spec, 200, "fp32") for spec in ("ssm", "fenwick", "blocks", "lags:1,3,7", "window:5+ssm")]
              + [("fenwick", 200, "bf16"), ("power2", 63, "fp32")]
              + [(spec, 63, dtype) for spec in sorted(DENSE) for dtype in ("fp32", "bf16") if DEVICE == "cuda"])
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def gradients(rng, spec, n, dtype, chunk=16, wanted="qkvab", H=None, dk=5, dv=7):
    """The gradients of the wanted inputs by the Triton backward and by float64 autograd of ``naive_readout``."""
    return gradients_of(*inputs(rng, spec, n, dtype, H, dk, dv), chunk, wanted)


def gradients_of(tables, low, ref, chunk=16, wanted="qkvab"):
    """``gradients`` for the inputs given: low (as the kernels take them) and ref (their float64 copies)."""
    grad = torch.randn(low[2].shape, dtype=torch.float64).to(low[2].dtype).double()
    leaves = [x.clone().requires_grad_(name in wanted) for name, x in zip("qkvab", low)]
    out = glr_readout(*leaves, tables, chunk=chunk, algorithm="chunked_aligned", backend="triton")
    grads = torch.autograd.grad(out, [x for x in leaves if x.requires_grad], grad.to(DEVICE, out.dtype))
    ref_leaves = [x.clone().requires_grad_(name in wanted) for name, x in zip("qkvab", ref)]
    ref_grads = torch.autograd.grad(naive_readout(*ref_leaves, tables), [x for x in ref_leaves if x.requires_grad],
                                    grad)
    return [(g.double().cpu(), r) for g, r in zip(grads, ref_grads)]


@pytest.mark.parametrize("spec, n, dtype", GRAD_CASES)
def test_gradients_match_float64(rng, spec, n, dtype):
    """The five gradients by the Triton backward (``readout_triton_backward``) against float64 autograd."""
    for name, (g, r) in zip("qkvab", gradients(rng, spec, n, DTYPES[dtype], H=1 if n > 2 else None)):
        assert rel_err(g, r) <= TOL[DTYPES[dtype]], name


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks"])
def test_slices_of_a_wider_tensor_are_read_in_place(rng, spec):
    """q, k, v as a layer gives them: slices of a projection's last axis (strides ``(T S, S, d, 1)``, S wider than
    ``H d``, a multiple of 16: rows of 32 for q, of 48 for k and v, so that a stride passed for another tensor
    shows; and of 40 and 56, multiples of 8 only, which the kernels take in units of 8, ``_units``), read in place
    (``_rows_of`` keeps them), give the output and the five gradients float64 autograd gives (B 2, so that a wrong
    batch stride shows); a transposed k, and rows of 37, are copied first and give them too."""
    tables, low, ref = inputs(rng, "blocks:4+" + spec if spec == "blocks" else spec, 63, torch.float32, H=2)
    tables = IndexTables.coerce(tables)
    B = 2
    q, k, v = (torch.cat([x] * B) for x in low[:3])

    def slices(width, *xs, step=4):
        """xs side by side in the last axis of one [B, T, width] tensor, each at a multiple of step elements (16
        bytes of float32; zeros between and after them), each viewed back."""
        wide, sizes = q.new_zeros(B, 63, width), [x[0, 0].numel() for x in xs]
        starts = np.cumsum([0] + [-(-size // step) * step for size in sizes])
        for x, at, size in zip(xs, starts, sizes):
            wide[..., at:at + size] = x.flatten(2)
        return [wide[..., at:at + size].view(x.shape) for x, at, size in zip(xs, starts, sizes)]

    split, eights, unaligned = slices(32, q) + slices(48, k, v), slices(40, q) + slices(56, k, v), slices(37, q, k, v,
                                                                                                  step=1)
    assert [x.stride(1) for x in split + eights] == [32, 48, 48, 40, 56, 56]
    assert all(readout_triton._rows_of(x)[0] is x for x in split + eights)
    assert readout_triton._units(*eights) == (8, 5, 7, 7) and readout_triton._units(*eights[:2], unaligned[2]) == (
        1, 40, 56, 37)
    assert all(readout_triton._rows_of(x, in_place=False)[0].is_contiguous() for x in split)
    assert all(readout_triton._rows_of(x)[0].is_contiguous() for x in unaligned)
    a, b = (torch.cat([x] * B) for x in low[3:])
    grad = torch.randn(v.shape, dtype=torch.float64)
    ref_leaves = [torch.cat([x] * B).requires_grad_() for x in ref]
    ref_out = naive_readout(*ref_leaves, tables)
    ref_grads = torch.autograd.grad(ref_out, ref_leaves, grad)
    k_t = k.transpose(1, 2).contiguous().transpose(1, 2)                          # strides (T H d, d, T d, 1): copied
    for xs in (split, eights, [split[0], k_t, split[2]], unaligned):
        leaves = [x.detach().requires_grad_() for x in xs + [a, b]]
        out = glr_readout(*leaves, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
        assert rel_err(out.detach().double().cpu(), ref_out.detach()) <= TOL[torch.float32]
        grads = torch.autograd.grad(out, leaves, grad.to(DEVICE, out.dtype))
        for name, g, r in zip("qkvab", grads, ref_grads):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], name


@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_wide_heads(rng, monkeypatch, spec):
    """Heads wider than ``WIDE_HEAD`` (d_k = 200, d_v = 136, neither a power of two, so the blocks' last columns are
    masked): the forward by the ``wide`` settings (blocks, ``out_after``, the backward's warps; float32's on top) and
    the gradients by the backward's kernels (up to ``BACKWARD_HEAD``; a GPU whose shared memory they exceed refuses
    them, and the torch ops take over) against float64, float32, one head."""
    setting = readout_triton._setting()
    assert readout_triton._blocks(200, 136)["out_v"] == setting["wide"]["out_v"] != setting["out_v"]
    assert readout_triton._blocks(128, 128)["out_v"] == setting["out_v"]
    plans = []
    monkeypatch.setattr(readout_triton._Plan, "kernel_grads",
                        lambda self, *args, grads=readout_triton._Plan.kernel_grads: plans.append(self) or grads(
                            self, *args))
    tables, low, ref = inputs(rng, spec, 63, torch.float32, H=1, dk=200, dv=136)
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]
    for name, (g, r) in zip("qkvab", gradients(rng, spec, 63, torch.float32, H=1, dk=200, dv=136)):
        assert rel_err(g, r) <= TOL[torch.float32], name
    (plan,) = plans                             # the backward's kernels were asked for, with the wide settings
    want = {**setting["wide"], **setting["float32"]}                # and float32's on top
    assert {k: plan.setting[k] for k in want} == want != {k: setting[k] for k in want}


@pytest.mark.parametrize("spec, dtype, wanted", [("fenwick", "fp32", "qkvab"), ("ssm", "bf16", "qkvab"),
                                                 ("fenwick", "fp32", "vb")])
def test_heads_past_the_backward_kernels(rng, monkeypatch, spec, dtype, wanted):
    """Heads wider than ``BACKWARD_HEAD`` take their gradients by torch autograd of the torch ops: with the limit
    at 4 (d_k = 5), the backward's kernels must not run (they are removed), and the gradients match float64."""
    monkeypatch.setattr(readout_triton, "BACKWARD_HEAD", 4)
    for kernel in ("chunk_output_backward", "state_walk_backward", "boundary_backward", "coefficient_grads"):
        monkeypatch.delattr(readout_triton.KB, kernel)
    for name, (g, r) in zip(wanted, gradients(rng, spec, 63, DTYPES[dtype], wanted=wanted, H=1)):
        assert rel_err(g, r) <= TOL[DTYPES[dtype]], name


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks"])
@pytest.mark.parametrize("kernels, kernel", [("KB", "boundary_backward"), ("K", "chunk_output")])
def test_a_launch_the_device_refuses_runs_in_torch_ops(rng, monkeypatch, kernels, kernel, spec):
    """Where a backward's launch (``boundary_backward``, after the first backward launch wrote its outputs) or a
    forward's (the chunk output, after step 1's and the boundary states' launches wrote theirs) is out of the
    device's resources: what it would give comes from the torch ops instead, output and gradients right against
    float64, twice, and the refused kernel is tried once."""
    tried = []
    monkeypatch.setattr(getattr(readout_triton, kernels), kernel, RefusedLaunch(tried))   # before the plan binds it
    monkeypatch.setattr(readout_triton.graphs, "failures", {})      # on CUDA a capture records the refusal there
    tables, low, ref = inputs(rng, "blocks:4+" + spec if spec == "blocks" else spec, 63, torch.bfloat16, H=1)
    grad = torch.randn(ref[2].shape, dtype=torch.float64).to(torch.bfloat16).double()
    ref_leaves = [x.clone().requires_grad_() for x in ref]
    expect = naive_readout(*ref_leaves, tables)
    want = torch.autograd.grad(expect, ref_leaves, grad)
    for _ in range(2):                          # one plan: the tables' memo
        leaves = [x.clone().requires_grad_() for x in low]
        out = glr_readout(*leaves, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
        assert out.dtype == torch.bfloat16
        assert rel_err(out.detach().double().cpu(), expect.detach()) <= TOL[torch.bfloat16]
        got = torch.autograd.grad(out, leaves, grad.to(DEVICE, out.dtype))
        for name, g, r in zip("qkvab", got, want):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.bfloat16], name
    assert len(tried) == 1


def test_backward_right_with_slices_of_32_at_d_128(rng, monkeypatch):
    """The backward with d_k slices of 32 at d = 128 in bf16 (ssm at n = 130 with chunks of 64, so the GPU's shapes)
    matches float64: under the interpreter, and on the GPU with its loops not software-pipelined (``back_stages`` 1,
    the GPU's default), where pipelined they gave NaN in dq (gpu_calls/call61, call227)."""
    monkeypatch.setitem(readout_triton._setting(), "back_k", 32)
    for name, (g, r) in zip("qkvab", gradients(rng, "ssm", 130, torch.bfloat16, chunk=64, H=1, dk=128, dv=128)):
        assert rel_err(g, r) <= TOL[torch.bfloat16], name


@pytest.mark.parametrize("spec, dtype, wide, slices", [("ssm", torch.float32, False, 16),
                                                      ("ssm", torch.float32, True, 64),
                                                      ("ssm", torch.bfloat16, False, 64),
                                                      ("fenwick", torch.float32, False, 64)])
def test_first_order_backward_takes_its_own_slices(rng, monkeypatch, spec, dtype, wide, slices):
    """``decay_back_k`` (set to 16 in the float32 settings here; the GPU's is 32) is the d_k slice of both backward
    launches that take slices for first-order patterns (ssm) in float32 on heads up to ``WIDE_HEAD`` (lowered to 32
    for the wide case), and for nothing else (those keep ``back_k``, 64); the gradients match float64 either way."""
    setting = readout_triton._setting()
    monkeypatch.setitem(setting["float32"], "decay_back_k", 16)
    if wide:
        monkeypatch.setattr(readout_triton, "WIDE_HEAD", 32)
    bind, sliced, slices_of = readout_triton.bind, (readout_triton.KB.chunk_output_backward,
                                                    readout_triton.KB.boundary_backward), []

    def spy(kernel, *args, **kwargs):
        slices_of.extend([kwargs["BK"]] if kernel in sliced else [])
        return bind(kernel, *args, **kwargs)

    monkeypatch.setattr(readout_triton, "bind", spy)
    for name, (g, r) in zip("qkvab", gradients(rng, spec, 63, dtype, H=1, dk=64, dv=24)):
        assert rel_err(g, r) <= TOL[dtype], name
    assert slices_of == [slices, slices] and setting["back_k"] == 64


def test_backward_fallback_ignores_the_callers_autocast(rng, monkeypatch):
    """The torch-op backward of heads past ``BACKWARD_HEAD`` runs without autocast, as the forward did: float32
    gradients taken inside ``torch.autocast(bfloat16)`` stay within the float32 tolerance of float64."""
    monkeypatch.setattr(readout_triton, "BACKWARD_HEAD", 4)
    tables, low, ref = inputs(rng, "fenwick", 63, torch.float32, H=1)
    leaves = [x.clone().requires_grad_() for x in low]
    out = glr_readout(*leaves, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    grad = torch.randn(out.shape, dtype=torch.float64)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        got = torch.autograd.grad(out, leaves, grad.to(DEVICE, out.dtype))
    ref_leaves = [x.clone().requires_grad_() for x in ref]
    want = torch.autograd.grad(naive_readout(*ref_leaves, tables), ref_leaves, grad)
    for name, g, r in zip("qkvab", got, want):
        assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], name


def test_unrolled_sources_are_capped(rng, monkeypatch):
    """A walk step unrolls at most ``MAX_UNROLLED`` sources, else loops over them at run time: fenwick at n = 200
    with chunks of 16 (m sources a step, walked: ``solve_boundaries`` off) with the cap at m and at m - 1, both
    against float64."""
    monkeypatch.setitem(readout_triton._setting(), "solve_boundaries", False)
    walk, launched = readout_triton.K.boundary_walk, []

    class Spy:                                  # records the SOURCES each walk launch compiles in
        def __getitem__(self, grid):
            def launch(*args, **kw):
                launched.append(kw["SOURCES"])
                return walk[grid](*args, **kw)
            return launch

    monkeypatch.setattr(readout_triton.K, "boundary_walk", Spy())
    tables, low, ref = inputs(rng, "fenwick", 200, torch.float32, H=1)
    m = aligned_layout(tables, 16).m
    for cap, sources in ((m, m), (m - 1, 0)):
        monkeypatch.setattr(readout_triton, "MAX_UNROLLED", cap)
        out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
        assert launched[-1] == sources and m > 1
        assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]


@pytest.mark.parametrize("spec, n, chunk, wanted", [("fenwick+lags:5", 100, 24, "qkvab"),
                                                    ("fenwick+lags:5", 200, 100, "qkvab"),
                                                    ("fenwick+lags:5", 63, 16, "ab"), ("ssm", 63, 16, "qv")])
def test_gradients_any_chunk_and_subsets(rng, spec, n, chunk, wanted):
    """Chunks that are not powers of two (step 1 in torch ops, forward and backward) and gradients of some
    inputs only; float32, one head."""
    for name, (g, r) in zip(wanted, gradients(rng, spec, n, torch.float32, chunk, wanted, H=1)):
        assert rel_err(g, r) <= TOL[torch.float32], name


def test_default_layout_several_chunks(rng):
    """fenwick at n = 1000 with the default choice and layout (chunked_aligned, chunks of 64: 16 chunks reading
    up to 4 boundary states), float32 and bf16, against float64; bf16 against the torch-op backend."""
    assert readout_algorithm(Pattern.from_spec("fenwick"), 1000)[0] == "chunked_aligned"
    for dtype in (torch.float32, torch.bfloat16):
        tables, low, ref = inputs(rng, "fenwick", 1000, dtype)
        out = glr_readout(*low, tables, backend="triton")
        assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[dtype]
    torch_out = glr_readout(*low[:3], *low[3:], tables, backend="torch")
    assert rel_err(out.double().cpu(), torch_out.double().cpu()) <= TOL[torch.bfloat16]


@pytest.mark.parametrize("walk", ["unrolled", "few", "loop"])
@pytest.mark.parametrize("spec", ["fenwick", "power2"])
def test_boundary_walk_with_gathers(rng, monkeypatch, spec, walk):
    """Boundary states that gather earlier ones, walked rather than solved for: past ``MAX_SOLVED`` (set one below
    the count; the walk unrolls a step's m sources, as by default), fewer than ``min_solved`` (one above the count),
    or with ``solve_boundaries`` off and the loop over the sources at run time; the output and the five gradients
    against float64 (fenwick at n = 200; power2, DENSE, at 33 with one head, where m = 17 exceeds ``MAX_UNROLLED``:
    its gradients once). The solve's kernel is removed, so it cannot run. fenwick's heads have two d_k and three d_v
    blocks of the walks (``walk_k``, ``walk_v``): each program of ``boundary_walk`` and ``state_walk_backward`` walks
    one pair."""
    n, heads = (200, dict(dk=20, dv=40)) if spec == "fenwick" else (33, dict(H=1))
    tables, low, ref = inputs(rng, spec, n, torch.float32, **heads)
    layout = aligned_layout(tables, 16)
    assert readout_triton._tables(layout, DEVICE)["gather"] and (layout.m > readout_triton.MAX_UNROLLED) == (
        spec == "power2")
    if walk == "unrolled":
        monkeypatch.setattr(readout_triton, "MAX_SOLVED", layout.n_boundary - 1)
    elif walk == "few":
        monkeypatch.setitem(readout_triton._setting(), "min_solved", layout.n_boundary + 1)
    else:
        monkeypatch.setitem(readout_triton._setting(), "solve_boundaries", False)
        monkeypatch.setitem(readout_triton._setting(), "unrolled_sources", False)
    for key in ("walk_k", "walk_v"):
        monkeypatch.setitem(readout_triton._setting(), key, 16)
    monkeypatch.delattr(readout_triton.K, "boundary_local")
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]
    if spec == "power2" and walk == "unrolled":     # m > MAX_UNROLLED: the same loop as "loop"
        return
    for name, (g, r) in zip("qkvab", gradients(rng, spec, n, torch.float32, **heads)):
        assert rel_err(g, r) <= TOL[torch.float32], name


@pytest.mark.parametrize("warps, stages, after, out_k", [(4, 3, False, 16), (8, 1, False, 16), (4, 3, True, 16),
                                                    (4, 3, True, 64), (4, 3, False, 64)])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("spec, n", [("ssm", 1), ("fenwick", 2), ("fenwick", 200), ("fenwick+lags:5", 63),
                                     ("blocks:8", 200)])
def test_chunk_output_over_partial_slices(rng, monkeypatch, spec, n, dtype, warps, stages, after, out_k):
    """The chunk output with d_k = 40 over slices of 16 (three per source and in the scores, the last one partial),
    at the default warps and stages and at others (``out_warps``, ``out_stages``), with each source's rows scaled
    after its product (``out_after``) or before it, and over one slice of 64 (q loaded once for all sources),
    against float64."""
    monkeypatch.setitem(readout_triton._setting(), "out_warps", warps)
    monkeypatch.setitem(readout_triton._setting(), "out_stages", stages)
    monkeypatch.setitem(readout_triton._setting(), "out_after", after)
    monkeypatch.setitem(readout_triton._setting(), "out_k", out_k)
    monkeypatch.setitem(readout_triton._setting(), "float32", dict(readout_triton._setting()["float32"], out_k=out_k))
    tables, low, ref = inputs(rng, spec, n, DTYPES[dtype], dk=40)
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[DTYPES[dtype]]


@pytest.mark.parametrize("stages", [None, 1, 2])
def test_backward_stages_reach_its_launches(rng, monkeypatch, stages):
    """``back_stages``: the backward's chunk-output and boundary launches bound with ``num_stages`` of that many
    (None: no ``num_stages``, Triton's default), and fenwick's gradients at n = 200 (their boundary states walked, as
    ``min_solved`` is set past them) against float64 either way."""
    monkeypatch.setitem(readout_triton._setting(), "back_stages", stages)
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 10**6)
    for name, (g, r) in zip("qkvab", gradients(rng, "fenwick", 200, torch.float32)):
        assert rel_err(g, r) <= TOL[torch.float32], name
    tables, low, _ = inputs(rng, "fenwick", 200, torch.float32)
    launches = readout_triton._plan(*low, aligned_layout(tables, 16)).backward_launches
    bound = {name: launches[name].kwargs.get("num_stages") for name in ("chunk_output_backward", "boundary_backward")}
    assert bound == {"chunk_output_backward": stages, "boundary_backward": stages}
    assert "num_stages" not in launches["state_walk_backward"].kwargs


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_gathering_boundaries_are_solved(rng, monkeypatch, dtype):
    """By default boundary states that gather earlier ones are solved for, ``H = (I - E_PP)^{-1} L``, and their
    gradients by the transposed solve: with the walks' kernels removed, fenwick at n = 200 (its boundary states at
    chunks of 16, ``MAX_SOLVED`` and ``min_solved`` set to exactly that) still matches float64, output and
    gradients."""
    monkeypatch.delattr(readout_triton.K, "boundary_walk")
    monkeypatch.delattr(readout_triton.KB, "state_walk_backward")
    tables, low, ref = inputs(rng, "fenwick", 200, DTYPES[dtype])
    count = aligned_layout(tables, 16).n_boundary
    monkeypatch.setattr(readout_triton, "MAX_SOLVED", count)
    monkeypatch.setitem(readout_triton._setting(), "min_solved", count)
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[DTYPES[dtype]]
    for name, (g, r) in zip("qkvab", gradients(rng, "fenwick", 200, DTYPES[dtype])):
        assert rel_err(g, r) <= TOL[DTYPES[dtype]], name


@pytest.mark.parametrize("dtype, n, wanted", [("fp32", 200, "qkvab"), ("bf16", 200, "qkvab"), ("fp32", 1000, "")])
def test_level_walk(rng, monkeypatch, dtype, n, wanted):
    """With ``level_walk`` on, fenwick's boundary states (13 at n = 200 in chunks of 16, 5 slots; 63 at 1000, 7 slots)
    are walked with each state a later step reads held in its level's slot (``readout_triton_kernels.level_walk``):
    ``boundary_local`` and the other walks removed, so that they cannot run, the output (and at 200 the five gradients,
    whose transposed solve forms the boundary inverse only then) matches float64; the states it writes match the
    solve's."""
    tables, low, ref = inputs(rng, "fenwick", n, DTYPES[dtype])
    layout, args = aligned_layout(tables, 16), (*low[:3], low[3].float(), low[4].float())   # as glr_readout passes
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)    # the GPU solves from more states on
    plan = readout_triton._plan(*args, layout)
    assert plan.solves and not plan.levels
    solved = plan.forward(*args)[3]
    for name in ("boundary_local", "boundary_walk"):
        monkeypatch.delattr(readout_triton.K, name)
    monkeypatch.delattr(readout_triton.KB, "state_walk_backward")
    monkeypatch.setitem(readout_triton._setting(), "level_walk", True)
    plan = readout_triton._plan(*args, layout)
    assert plan.levels and plan.layout.n_boundary == (13 if n == 200 else 63)
    assert rel_err(plan.forward(*args)[3].double().cpu(), solved.double().cpu()) <= TOL[DTYPES[dtype]]
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[DTYPES[dtype]]
    for name, (g, r) in zip(wanted, gradients(rng, "fenwick", n, DTYPES[dtype], wanted=wanted) if wanted else ()):
        assert rel_err(g, r) <= TOL[DTYPES[dtype]], name


@pytest.mark.parametrize("walk, chunk, slots, n", [("level", 2, 3, 6), ("level", 2, 4, 10), ("level", 2, 6, 34),
                                                   ("level", 2, 8, 130), ("level", 2, 9, 258), ("chunk", 16, 2, 18),
                                                   ("chunk", 16, 4, 66), ("chunk", 16, 6, 258), ("chunk", 16, 8, 1026)])
def test_walks_with_every_slot_count(rng, monkeypatch, walk, chunk, slots, n):
    """``level_walk`` and ``chunk_walk`` compile one branch per slot (``_gather_slots``, ``_put_slot``: a state in slot
    i is read and written only where SLOTS > i), so each count of slots is its own kernel: fenwick at the first n whose
    boundary states need ``slots`` slots, forward against float64 (``test_level_walk`` has 5 and 7 slots,
    ``test_chunk_walk`` 3, 5, 7 and 9; the chunk walk needs chunks of 16 or more), heads of two blocks of d_k and three
    of d_v (each program walks one pair). Two slots (two boundary states, the second reading the first only) never reach
    the level walk: it walks what is solved, and nothing is."""
    tables, low, ref = inputs(rng, "fenwick", n, torch.float32, dk=20, dv=70)
    layout, args = aligned_layout(tables, chunk), (*low[:3], low[3].float(), low[4].float())
    if walk == "level":
        monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)
        monkeypatch.setitem(readout_triton._setting(), "level_walk", True)
    else:
        walk_settings(monkeypatch)
    plan = readout_triton._plan(*args, layout)
    assert (plan.levels if walk == "level" else plan.walks_chunks) and plan.tab["level_slots"] == slots
    out = glr_readout(*low, tables, chunk=chunk, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]


def walk_settings(monkeypatch, **settings):
    """``chunk_walk`` on for the test's inputs, float32 ones included (the GPU's float32 heads of 128 would ask too
    much shared memory, so its float32 settings turn the walk off), with ``settings`` on top."""
    for key, value in dict(chunk_walk=True, **settings).items():
        monkeypatch.setitem(readout_triton._setting(), key, value)
    monkeypatch.setitem(readout_triton._setting()["float32"], "chunk_walk", True)


WALKS = [("fp32", 200, "qkvab", True, False, True, True, False), ("bf16", 200, "qkvab", True, False, True, True, False),
         ("fp32", 63, "q", False, False, True, True, False), ("bf16", 1000, "", True, False, True, True, True),
         ("bf16", 1000, "", False, True, False, True, False), ("fp32", 63, "", False, True, True, True, True),
         ("fp32", 200, "qv", True, False, False, True, True), ("fp32", 200, "qkvab", False, True, True, False, True)]


@pytest.mark.parametrize("dtype, n, wanted, ahead, slot16, own, solves, split, shape", [
    *(case + ((1, None, 5, 7),) for case in WALKS),
    ("bf16", 200, "qkvab", False, True, True, True, False, (2, 3, 20, 40)),     # the GPU's defaults, d_v in 3 blocks
    ("bf16", 200, "qkvab", False, True, True, True, True, (2, 3, 20, 40)),
    ("fp32", 63, "kv", True, False, False, False, True, (2, 3, 20, 40)),
    ("bf16", 4097, "q", False, True, True, True, False, (1, 1, 5, 7)),          # 256 boundary states: nine slots
    ("fp32", 4097, "", True, False, False, True, True, (1, 1, 5, 7))])
def test_chunk_walk(rng, monkeypatch, dtype, n, wanted, ahead, slot16, own, solves, split, shape):
    """With ``chunk_walk`` on, fenwick's chunk outputs and boundary states come from one walk over the chunks, each
    state a later chunk reads in its level's slot (``readout_triton_kernels.chunk_walk``): with ``chunk_output``,
    ``boundary_local`` and the other walks removed, so that they cannot run, the output (and the gradients asked,
    whose transposed solve forms the boundary inverse only then) matches float64, and the states it writes match the
    solve's; inputs loaded a chunk ahead or not, slots in float32 or in q's dtype, the own terms in the walk or
    (without ``walk_chunk_own``) by ``chunk_output`` with no sources, which is then the one other launch; the
    backward by the transposed solve, or (fewer states than ``min_solved``) by the reverse walk, the solve's kernels
    removed; batches of 1 and 2 (B, H, d_k, d_v in ``shape``), d_v in one and in three blocks of 16; up to the
    nine slots of 256 boundary states (n = 4097); walked whole, or split at a power of two m below the number of
    states (``walk_chunk_split``: the chunks after state m's apart, then ``split_fixup``), in float32 element by
    element equal to the whole walk."""
    B, H, dk, dv = shape
    tables, low, ref = inputs(rng, "fenwick", n, DTYPES[dtype], H=H, dk=dk, dv=dv, B=B)
    layout, args = aligned_layout(tables, 16), (*low[:3], low[3].float(), low[4].float())   # as glr_readout passes
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)    # the GPU solves from more states on
    solved = readout_triton._plan(*args, layout).forward(*args)[3]
    removed = ("boundary_local", "boundary_walk", "level_walk") + ("chunk_output",) * own
    for name in removed + ("boundary_inverse", "triangular_product") * (not solves):
        monkeypatch.delattr(readout_triton.K, name)
    if solves:
        monkeypatch.delattr(readout_triton.KB, "state_walk_backward")
    walk_settings(monkeypatch, walk_chunk_ahead=ahead, walk_chunk_slot16=slot16, walk_chunk_own=own,
                  walk_chunk_split=split, walk_chunk_v=16, min_solved=1 if solves else 10**9)
    plan = readout_triton._plan(*args, layout)
    assert plan.walks_chunks and plan.solves == solves and plan.layout.n_boundary == len(range(0, n - 1, 16))  # 16j
    assert plan.split == split
    walked = plan.forward(*args)
    assert rel_err(walked[3].double().cpu(), solved.double().cpu()) <= TOL[DTYPES[dtype]]
    if split and dtype == "fp32":          # the split's output and states are the whole walk's, element by element
        monkeypatch.setitem(readout_triton._setting(), "walk_chunk_split", False)
        whole = readout_triton._plan(*args, layout).forward(*args)
        monkeypatch.setitem(readout_triton._setting(), "walk_chunk_split", True)
        for got, want in ((walked[0], whole[0]), (walked[3], whole[3])):
            assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    out = glr_readout(*low, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[DTYPES[dtype]]
    for name, (g, r) in zip(wanted, gradients(rng, "fenwick", n, DTYPES[dtype], wanted=wanted, H=H, dk=dk, dv=dv)
                            if wanted else ()):
        assert rel_err(g, r) <= TOL[DTYPES[dtype]], name


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_inverses_take_the_precision_of_q(rng, monkeypatch, dtype):
    """Step 1's products (the chunk inverses, ``[M | E]``) take the scan's inverse precision of q's dtype
    (``inverse_precision`` for float32 q, ``inverse_precision_16`` for bfloat16), whatever the coefficients' dtype
    (float32, as ``glr_readout`` passes them, or bfloat16); E_PP's diagonal blocks and ``boundary_inverse`` always the
    float32 one (U must solve the walk to float32 accuracy: ``test_boundary_inverse_solves_the_walk``)."""
    from glrtheory.kernels.scan import triton as scan
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)
    monkeypatch.setitem(scan._settings(), "inverse_precision", "float32's")
    monkeypatch.setitem(scan._settings(), "inverse_precision_16", "16-bit")
    tables, (q, k, v, a, b), _ = inputs(rng, "fenwick", 200, DTYPES[dtype])
    for coefficients in (torch.float32, torch.bfloat16):
        plan = readout_triton._plan(q, k, v, a.to(coefficients), b.to(coefficients), aligned_layout(tables, 16))
        assert plan.solves and plan.layout.n_boundary > 1
        launches = (plan.chunk_inverse, plan.chunk_coefficients, plan.carry_coefficients, plan.diagonal_inverse,
                    plan.boundary_inverse)
        want = "float32's" if dtype == "fp32" else "16-bit"
        assert [launch.kwargs["PREC"] for launch in launches] == [want] * 3 + ["float32's"] * 2


@pytest.mark.parametrize("kernel, block", [(True, 16), (True, 32), (False, 16)],
                         ids=["kernel16", "kernel32", "torch"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("n", [40, 257, 273, 1000])
def test_boundary_inverse_solves_the_walk(rng, monkeypatch, n, dtype, kernel, block):
    """The solve's inverse (``_Plan.boundary_inverses``: the kernel ``boundary_inverse``, whose outputs the interpreter
    NaN-fills first (its float32 copy of X too), with blocks of 16 or 32 rows, two heads, or torch's
    ``_boundary_inverse``) against the walk's recurrence written out, at 3, 16, 17 and 63 boundary states: for random
    E rows, ``H = U^T L`` satisfies ``H_p = L_p + sum_j E[p, j] H_{X_j(p)}`` for every p (float64 arithmetic on the
    float32 U), U is zero below its diagonal and the second output is U^T rounded to q's dtype, zero above its
    diagonal."""
    monkeypatch.setitem(readout_triton._setting(), "boundary_inverse", kernel)
    monkeypatch.setitem(readout_triton._setting(), "boundary_block", block)
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)
    tables, low, _ = inputs(rng, "fenwick", n, DTYPES[dtype], H=2)
    layout = aligned_layout(tables, 16)
    plan = readout_triton._plan(*low, layout)
    assert plan.solves
    gen = torch.Generator().manual_seed(n)
    N, P, m = 2, layout.n_boundary, layout.m
    ecoef = torch.randn(N, layout.n_chunks, 16, m, generator=gen) / m
    upper, lower = plan.boundary_inverses(ecoef.to(DEVICE), low[0])
    upper, lower = upper.cpu(), lower.cpu()
    assert lower.dtype == DTYPES[dtype] and torch.equal(lower, upper.transpose(1, 2).to(lower.dtype))
    assert not upper.tril(-1).any()
    local = torch.randn(N, P, 3, dtype=torch.float64, generator=gen)
    states = upper.double().transpose(1, 2) @ local
    src = readout_plan.boundary_tables(layout).b_idx
    rows = ecoef.view(N, -1, m)[:, layout.boundary_row].double()
    for p in range(P):
        want = local[:, p] + sum(rows[:, p, j, None] * states[:, src[p, j]] for j in range(m) if src[p, j] >= 0)
        assert torch.allclose(states[:, p], want, rtol=1e-5, atol=1e-5), p
    assert ((src >= 0) & (src != np.arange(P)[:, None] - 1)).any()  # a boundary reads one not its predecessor


@pytest.mark.parametrize("block", [8, 64])
def test_boundary_block_is_16_or_32(rng, monkeypatch, block):
    """Other blocks of the solve's inverse are refused, named, when a plan is built (8 would leave ``chunk_inverse``'s
    16-row blocks empty, 64 would not fit the substitution's registers)."""
    monkeypatch.setitem(readout_triton._setting(), "boundary_block", block)
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)
    tables, low, _ = inputs(rng, "fenwick", 40, torch.float32, H=1)
    with pytest.raises(GLRError, match=f"boundary_block must be 16 or 32, got {block}"):
        readout_triton._plan(*low, aligned_layout(tables, 16))


@pytest.mark.parametrize("bm", [16, 32])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("P", [1, 2, 40, 63])
def test_triangular_product_reads_only_the_triangle(rng, P, dtype, bm):
    """``K.triangular_product`` (blocks of bm rows and 32 columns, slices of 16) against float64 on the same rounded
    operands: ``U x`` for U upper triangular, whose entries in every bm x bm block wholly below the diagonal are
    NaN, so that a program summing over a block it must skip spoils its rows; x float32 (the backward's), the output
    NaN-filled first."""
    N, F, bk = 2, 70, 16
    readout_triton._setting()                       # the interpreter patched, as before a readout's first launch
    u = torch.triu(torch.tensor(rng.standard_normal((N, P, P)), dtype=torch.float32, device=DEVICE))
    block = torch.arange(P, device=DEVICE) // bm
    u[:, block[:, None] > block[None, :]] = float("nan")
    x = torch.tensor(rng.standard_normal((N, P, F)), dtype=torch.float32, device=DEVICE)
    out = torch.full((N, P, F), float("nan"), dtype=torch.float32, device=DEVICE)
    readout_triton.K.triangular_product[(-(-P // bm), -(-F // 32), N)](
        u, x, out, P, F, BM=bm, BN=32, BK=bk, PREC=_precision(DTYPES[dtype]), UPCAST=readout_triton._interpreting(),
        CAST=readout_triton._TL[DTYPES[dtype]])
    rounded = [y.to(DTYPES[dtype]).double().cpu() for y in (torch.triu(torch.nan_to_num(u)), x)]
    assert rel_err(out.double().cpu(), rounded[0] @ rounded[1]) <= TOL[DTYPES[dtype]]


def first_order_tables(n: int) -> IndexTables:
    """ssm's tables with ``B(t)`` empty at every t = 3 mod 7 and at t = 16 (a chunk's first row at chunks of 16, so
    the state before it is no boundary state): a first-order pattern other than ssm."""
    t = np.arange(n)
    b = t - 1
    b[(t % 7 == 3) | (t == 16)] = -1
    return IndexTables(t[:, None], b[:, None])


def hard_decays(rng, b: np.ndarray) -> np.ndarray:
    """b of either sign with runs that stress a product of many b: 2^-60 (their logarithms sum far beyond float32's
    range), exact zeros, 1 - 2^-10 and exactly -1; the rest as drawn."""
    b = b.copy()
    n = b.shape[1]
    for lo, value in ((0.1, 2.0**-60), (0.25, 0.0), (0.4, 1 - 2.0**-10), (0.7, -1.0)):
        run = slice(int(lo * n), int(lo * n) + max(1, n // 10))
        b[:, run] = value * rng.choice([-1, 1], b[:, run].shape)
    return b


def first_order_inputs(rng, which: str, n: int, dtype, B: int) -> tuple:
    """``(tables, [q, k, v, a, b])``: ssm's tables (``which`` "ssm") or ``first_order_tables`` (``"gaps"``), inputs
    of B batches and two heads in dtype (16 at n <= 2, as ``inputs``), b as in ``hard_decays``."""
    tables = Pattern.from_spec("ssm").tables(n) if which == "ssm" else first_order_tables(n)
    _, q, k, v, a, b = problem(rng, "ssm", n, B=B, H=16 if n <= 2 else 2, dk=5, dv=7)
    return tables, [torch.tensor(x, dtype=dtype, device=DEVICE) for x in (q, k, v, a, hard_decays(rng, b))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("chunk", [16, 64])
@pytest.mark.parametrize("n", [2, 63, 1000])
@pytest.mark.parametrize("which", ["ssm", "gaps"])
def test_first_order_skips_step_1(rng, monkeypatch, which, n, chunk, dtype):
    """First-order patterns (``readout_triton.first_order``: ssm and ssm with gaps in B) skip step 1's kernels: the
    walk and the chunk output form M and E from ``decay_sums`` (step 1 raising proves it), on b that spans 2^-60 to
    1, zeros and -1 included; against float64 and against the same forward with step 1 (``decay`` off)."""
    tables, low = first_order_inputs(rng, which, n, dtype, B=1)
    ref = naive_readout(*(x.double().cpu() for x in low), tables)
    layout = aligned_layout(tables, chunk)
    assert readout_triton.first_order(layout) == (n > 1)
    setting = readout_triton._setting()
    outs = {}
    for decay in (True, False):
        monkeypatch.setitem(setting, "decay", decay)
        with monkeypatch.context() as patch:
            if decay:
                patch.setattr(readout_triton._Plan, "coefficients", lambda *args: pytest.fail("step 1 ran"))
            outs[decay] = glr_readout(*low, tables, chunk=chunk, algorithm="chunked_aligned", backend="triton")
        assert rel_err(outs[decay].double().cpu(), ref) <= TOL[dtype], decay
    assert rel_err(outs[True].double().cpu(), outs[False].double().cpu()) <= TOL[dtype]


@pytest.mark.parametrize("spec", ["fenwick", "blocks", "window:5+ssm", "lags:1,2", "ssm+lags:2"])
def test_first_order_only_where_it_holds(spec):
    """Patterns with a wider A or a B beyond lag 1 keep step 1."""
    assert not readout_triton.first_order(aligned_layout(Pattern.from_spec(spec).tables(200), 16))


def test_first_order_chunks_fit_the_packed_count():
    """``decay_sums`` packs negatives + 256 zeros in one count, which holds while a chunk has fewer than 256 rows
    (``proofs/first_order_mixing.py``): the kernels' C x C blocks of at most ``MAX_SCORES`` entries keep C there."""
    from proofs.first_order_mixing import MAX_CHUNK, ZERO

    assert MAX_CHUNK**2 == readout_triton.MAX_SCORES and MAX_CHUNK < ZERO
    for C in (MAX_CHUNK, MAX_CHUNK + 1):
        layout = aligned_layout(Pattern.from_spec("ssm").tables(4 * C), C)
        refused = readout_triton.refusal(torch.zeros(1, 4 * C, 1, 4, device=DEVICE), layout, 4)
        assert (refused is None) == (C <= MAX_CHUNK), C


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("chunk", [16, 64])
@pytest.mark.parametrize("which, n", [("ssm", 1), ("ssm", 2), ("ssm", 63), ("ssm", 200), ("gaps", 63), ("gaps", 200)])
def test_first_order_gradients(rng, monkeypatch, which, n, chunk, dtype):
    """The backward after a forward that skipped step 1 skips it too (``decay_grads`` forms ``T_k`` from the forward's
    S and counts; step 1 or its torch backward raising proves it): the five gradients against float64 autograd, b as
    in ``hard_decays``, the chunk output's rows short of a power of two at n = 63 (chunks of 63)."""
    tables, xs = first_order_inputs(rng, which, n, dtype, B=2)
    grad = torch.randn(xs[2].shape, dtype=torch.float64)
    leaves = [x.clone().requires_grad_() for x in xs]
    with monkeypatch.context() as patch:
        if n > 1:
            patch.setattr(readout_triton._Plan, "coefficients", lambda *args: pytest.fail("step 1 ran"))
            patch.setattr(readout_triton, "_step1_backward", lambda *args: pytest.fail("step 1's backward ran"))
        out = glr_readout(*leaves, tables, chunk=chunk, algorithm="chunked_aligned", backend="triton")
        got = torch.autograd.grad(out, leaves, grad.to(DEVICE, dtype))
    ref_leaves = [x.double().cpu().requires_grad_() for x in xs]
    ref = torch.autograd.grad(naive_readout(*ref_leaves, tables), ref_leaves, grad)
    for name, g, r in zip("qkvab", got, ref):
        assert rel_err(g.double().cpu(), r) <= TOL[dtype], name


@pytest.mark.parametrize("spec, expected", [("fenwick", True), ("power2", True), ("fenwick+lags:5", True),
                                            ("ssm", True), ("blocks:4", False), ("window:3+fenwick", False),
                                            ("attention", False)])
def test_diagonal_only_where_it_holds(spec, expected):
    """``A(t) = {t}`` with no reach before the chunk (fenwick, power2, lags on them, ssm); blocks (A its block so far),
    a window and attention are not."""
    assert readout_triton.diagonal(aligned_layout(Pattern.from_spec(spec).tables(200), 16)) == expected


@pytest.mark.parametrize("spec, n", [("fenwick", 200), ("fenwick+lags:5", 63), ("power2", 63)])
def test_diagonal_forms_m_in_the_kernels(rng, monkeypatch, spec, n):
    """Where ``readout_triton.diagonal`` holds (not first order) the forward writes E alone and the kernels take
    ``M = T_k diag(a)`` from the chunk inverses; the backward forms M from them (``diagonal_mix``). Forming M by
    ``chunk_coefficients`` anywhere in the forward or backward raises. The output and the five gradients against
    float64 and against ``diagonal`` off; float32, one head, chunks of 16."""
    tables, low, ref = inputs(rng, spec, n, torch.float32, H=1)
    layout = aligned_layout(tables, 16)
    assert readout_triton.diagonal(layout) and not readout_triton.first_order(layout)
    grad = torch.randn(ref[2].shape, dtype=torch.float64)
    ref_leaves = [x.clone().requires_grad_() for x in ref]
    ref_out = naive_readout(*ref_leaves, tables)
    expected = [ref_out.detach(), *torch.autograd.grad(ref_out, ref_leaves, grad)]
    coefficients, got = readout_triton._Plan.coefficients, {}

    def without_mix(plan, a, b, mix=True):
        assert not mix, "M formed by chunk_coefficients"
        return coefficients(plan, a, b, mix)

    for diagonal in (True, False):
        monkeypatch.setitem(readout_triton._setting(), "diagonal", diagonal)
        leaves = [x.clone().requires_grad_() for x in low]
        with monkeypatch.context() as patch:
            if diagonal:
                patch.setattr(readout_triton._Plan, "coefficients", without_mix)
            out = glr_readout(*leaves, tables, chunk=16, algorithm="chunked_aligned", backend="triton")
            got[diagonal] = [out.detach(), *torch.autograd.grad(out, leaves, grad.to(DEVICE, torch.float32))]
        for name, g, r in zip(["o", *"qkvab"], got[diagonal], expected):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], (diagonal, name)
    for name, g, r in zip(["o", *"qkvab"], got[True], got[False]):
        assert rel_err(g.double().cpu(), r.double().cpu()) <= TOL[torch.float32], name


@pytest.mark.parametrize("chunk", [16, 64])
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("spec, n", [("fenwick", 1), ("fenwick", 2), ("fenwick", 200), ("power2", 63),
                                     ("fenwick+lags:5", 200)])
def test_diagonal_step1_and_the_backwards_m(rng, spec, n, offset, chunk):
    """DIAG's step 1 without M (``chunk_inverse``, then ``chunk_coefficients`` without MIX) and the backward's M
    (``_Plan.diagonal_mix``: the kept chunk inverses times a, column by column): E and M against the float64
    ``[M | E]`` of ``readout_aligned.solve_chunks`` (torch), and M against ``chunk_coefficients``' own (the kernel's),
    two batches of three heads, both offsets (shift 0 and C - 1: padded rows before and after the sequence), chunks
    of 16 and 64 (the inverse's blocks: one, or four a side)."""
    tables, *xs = problem(rng, spec, n, B=2, H=3, dk=5, dv=7)
    q, k, v, a, b = (torch.tensor(x, dtype=torch.float32, device=DEVICE) for x in xs)
    layout = readout_plan.chunk_layout(tables, chunk, offset)
    assert layout.shift == (chunk - 1) * offset
    plan = readout_triton._plan(q, k, v, a, b, layout)
    none, ecoef, inverses = plan.coefficients(a, b, mix=False)
    kernel_mix = plan.coefficients(a, b)[0]
    mix = plan.diagonal_mix(a, inverses)
    ref = readout_aligned.solve_chunks(*(torch.tensor(x, dtype=torch.float64) for x in xs[3:]), layout)
    C, m = layout.chunk, layout.m
    assert none is None
    if m:                                               # no sources before any chunk: E is a placeholder
        assert ecoef.shape[-1] == m and rel_err(ecoef.double().cpu(), ref[..., C:]) <= TOL[torch.float32]
    assert mix.shape == ref[..., :C].shape == kernel_mix.shape and mix.dtype == torch.float32
    assert rel_err(mix.double().cpu(), ref[..., :C]) <= TOL[torch.float32]
    assert rel_err(mix.double().cpu(), kernel_mix.double().cpu()) <= 1e-6


def test_backend_choice_and_refusals(rng):
    tables, low, _ = inputs(rng, "fenwick", 63, torch.float32)
    layout = aligned_layout(tables, 16)
    expected = readout_triton.chunked_aligned_triton if DEVICE == "cuda" else readout_aligned.chunked_aligned
    assert aligned_backend(None, low[0], 7, layout) is expected
    assert aligned_backend("torch", low[0], 7, layout) is readout_aligned.chunked_aligned
    assert aligned_backend("triton", low[0], 7, layout) is readout_triton.chunked_aligned_triton
    with pytest.raises(GLRError, match="backend must be one of"):
        glr_readout(*low, tables, backend="cuda")
    with pytest.raises(GLRError, match="float64"):
        glr_readout(*(x.double() for x in low), tables, chunk=16, algorithm="chunked_aligned", backend="triton")
    with pytest.raises(GLRError, match="chunked_aligned algorithm only, not tiled_mixing"):
        glr_readout(*low, tables, algorithm="tiled_mixing", backend="triton")
    wide = Pattern.from_spec("attention+ssm").tables(400)          # A reaches back to 0: w = 400 - C
    w_low = [torch.zeros(1, 400, 1, d, device=DEVICE) for d in (5, 5, 7, wide.a_idx.shape[1], wide.b_idx.shape[1])]
    with pytest.raises(GLRError, match=r"scores in registers, at most 16384: chunk C=64, window C \+ w = \d+ "
                                       r"\(rounded up to 512\)"):
        glr_readout(*w_low, wide, chunk=64, algorithm="chunked_aligned", backend="triton")
    assert np.isfinite(glr_readout(*w_low, wide, chunk=64, algorithm="chunked_aligned").cpu().numpy()).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("n, d", [(4097, 64), (65536, 64), (4097, 128), (4097, 256)])
@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks"])
def test_gpu_large_matches_torch_path(rng, spec, n, d):
    """At n = 4097 and 65536 (bf16 inputs, 2 heads, d 64; d 128 and 256 at 4097): the Triton forward against the float32
    torch-op path on the same values before rounding (itself checked against float64 at small n), within the bf16
    tolerance."""
    tables = Pattern.from_spec(spec).tables(n)
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    g = torch.Generator(device="cuda").manual_seed(int(rng.integers(2**31)))
    q, k, v = (torch.randn(1, n, 2, d, device="cuda", generator=g) for _ in range(3))
    a = torch.rand(1, n, 2, wa, device="cuda", generator=g) + 0.5
    b = (torch.rand(1, n, 2, wb, device="cuda", generator=g) * 2 - 1) / max(1, wb)
    ref = glr_readout(q, k, v, a, b, tables, backend="torch").double()
    out = glr_readout(*(x.bfloat16() for x in (q, k, v, a, b)), tables, backend="triton")
    assert rel_err(out.double().cpu(), ref.cpu()) <= TOL[torch.bfloat16]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("d", [64, 128, 256])
@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks"])
def test_gpu_large_gradients_match_torch_path(rng, spec, d):
    """At n = 4097 (bf16 inputs, 2 heads, d 64, 128 (the benchmarks' head) and 256 (``BACKWARD_HEAD``: blocks' asks
    more shared memory than an H200 has, so it takes the torch ops)): the backward's five gradients against float32
    autograd through the torch-op path on the same values, within the bf16 tolerance."""
    check_large_gradients(rng, spec, d)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("d", [128, 256])
@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks"])
def test_gpu_float32_heads_of_128_and_256_match_torch_path(rng, spec, d):
    """float32 inputs at n = 4097, d 128 and 256, where the chunk output's d_k slices for bf16 would ask more shared
    memory than an H200 has (``readout_triton.GPU["float32"]``, ``benchmarks/h200_compile.py``): the output and the
    five gradients against float32 autograd through the torch-op path, within the float32 tolerance."""
    check_large_gradients(rng, spec, d, dtype=torch.float32)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("n, d", [(4097, 64), (16384, 128), (4097, 128), (2048, 128)])
@pytest.mark.parametrize("setting", [{}, {"walk_chunk_own": False}, {"walk_chunk_ahead": True},
                                     {"walk_chunk_slot16": False, "walk_chunk_v": 16}, {"walk_chunk_split": True}])
def test_gpu_chunk_walk_matches_torch_path(rng, monkeypatch, n, d, setting):
    """fenwick with ``chunk_walk`` on (its defaults, and each other setting on top): the forward (bf16 at n = 2048,
    4097 and 16384 (256 boundary states, nine slots), d 64 and 128) and, up to 4097, the five
    gradients (at 2048 by the reverse walk: 32 states, fewer than ``min_solved``) against float32 autograd through
    the torch-op path, within the bf16 tolerance; the plan walks the chunks, and the device refused none of its
    launches (a refusal would have sent the calls to the torch ops). float32 q does not walk them (its shared memory
    would be more than the H200's)."""
    for key, value in dict(setting, chunk_walk=True).items():
        monkeypatch.setitem(readout_triton.GPU, key, value)
    tables = Pattern.from_spec("fenwick").tables(n)
    g = torch.Generator(device="cuda").manual_seed(int(rng.integers(2**31)))
    q, k, v = (torch.randn(1, n, 2, d, device="cuda", generator=g) for _ in range(3))
    a = torch.rand(1, n, 2, 1, device="cuda", generator=g) + 0.5
    b = (torch.rand(1, n, 2, tables.b_idx.shape[1], device="cuda", generator=g) * 2 - 1) / tables.b_idx.shape[1]
    args = (q.bfloat16(), k.bfloat16(), v.bfloat16(), a, b)
    plan = readout_triton._plan(*args, aligned_layout(tables))
    assert plan.walks_chunks and not readout_triton._plan(q, k, v, a, b, aligned_layout(tables)).walks_chunks
    assert plan.split == setting.get("walk_chunk_split", False)
    ref = glr_readout(q, k, v, a, b, tables, backend="torch").double()
    assert rel_err(glr_readout(*args, tables, backend="triton").double().cpu(), ref.cpu()) <= TOL[torch.bfloat16]
    leaves = [x.clone().requires_grad_() for x in args]
    glr_readout(*leaves, tables, backend="triton").float().square().sum().backward()     # this plan's backward
    assert not plan.refused_forward and not plan.refused_backward
    if n <= 4097:
        check_large_gradients(rng, "fenwick", d, n=n)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_gpu_repeated_launches_match_torch_path(rng, monkeypatch, spec):
    """Three forwards + backwards on fresh values at a length no other test runs (n = 3001, d 128): the first
    compiles each kernel through Triton's JIT, the later ones launch the compiled kernels directly
    (``triton_launch.Launcher``, counted: only its direct path asks for the stream), whose arguments must arrive as
    the JIT passes them."""
    from glrtheory.kernels.scan import triton_launch
    direct, stream = [], triton_launch._stream
    monkeypatch.setattr(triton_launch, "_stream", lambda device: direct.append(device) or stream(device))
    for _ in range(3):
        check_large_gradients(rng, spec, 128, n=3001)
    assert len(direct) >= 2 * 4          # the forward's and the backward's launches, twice at least


def check_large_gradients(rng, spec, d, n=4097, dtype=torch.bfloat16):
    """``test_gpu_large_gradients_match_torch_path`` at one head size, length and input dtype: the output and the
    five gradients."""
    tables, xs, grad = large_readout_inputs(int(rng.integers(2**31)), spec, d, n)
    xs = [x.to(dtype).float() for x in xs]                        # values the run in dtype sees exactly
    grad = grad.to(dtype)
    ref_leaves = [x.clone().requires_grad_() for x in xs]
    expect = glr_readout(*ref_leaves, tables, backend="torch")
    ref = torch.autograd.grad(expect, ref_leaves, grad.float())
    leaves = [x.to(dtype).requires_grad_() for x in xs]
    out = glr_readout(*leaves, tables, backend="triton")
    assert rel_err(out.detach().double().cpu(), expect.detach().double().cpu()) <= TOL[dtype]
    got = torch.autograd.grad(out, leaves, grad)
    for name, gx, rx in zip("qkvab", got, ref):
        assert rel_err(gx.double().cpu(), rx.double().cpu()) <= TOL[dtype], name


@pytest.mark.skipif(DEVICE == "cuda", reason="the interpreter's order of programs")
@pytest.mark.parametrize("spec, chunk, walk", [("fenwick+lags:5", 5, False), ("fenwick+lags:5", 24, False),
                                               ("fenwick", 16, True), ("ssm", 5, False)])
def test_programs_run_in_reverse_order(rng, monkeypatch, programs_in_reverse, spec, chunk, walk):
    """Every launch's programs in reverse (``programs_in_reverse``; the interpreter runs them in order, where a program
    that wrote rows a later one owns went unseen: a chunk's rows padded to a power of two ran into the next chunk's),
    two heads: in chunks that are not powers of two (5 rows padded to 16, 24 to 32; ssm's too, whose first-order
    decay sums are per chunk row), and fenwick's chunk walk split in two (the fix-up reads what the parts wrote): the
    output and the five gradients against float64 at n = 200."""
    if walk:
        walk_settings(monkeypatch, walk_chunk_split=True, walk_chunk_v=16)
    tables, low, ref = inputs(rng, spec, 200, torch.float32, H=2)
    plan = readout_triton._plan(*low, aligned_layout(tables, chunk))
    assert plan.walks_chunks == plan.split == walk
    out = glr_readout(*low, tables, chunk=chunk, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]
    for name, (g, r) in zip("qkvab", gradients(rng, spec, 200, torch.float32, chunk, H=2)):
        assert rel_err(g, r) <= TOL[torch.float32], name


def test_chunk_walk_not_split_where_a_later_chunk_reads_a_state_below_m(rng, monkeypatch):
    """With ``chunk_walk`` and ``walk_chunk_split`` on, hand-made tables whose chunk 3 reads state 1 besides its
    predecessor (``helpers.tables_reading_below_the_split``): the plan does not split (the second part would not hold
    state 1), and the output and the five gradients match float64."""
    tables, C = tables_reading_below_the_split()
    walk_settings(monkeypatch, walk_chunk_split=True, walk_chunk_v=16, min_solved=1)
    _, q, k, v, a, _ = problem(rng, "ssm", tables.n, B=1, H=2, dk=5, dv=7)
    b = rng.uniform(-1, 1, (1, tables.n, 2, 2)) / 2
    low = [torch.tensor(x, dtype=torch.float32, device=DEVICE) for x in (q, k, v, a, b)]
    ref = [x.double().cpu() for x in low]
    plan = readout_triton._plan(*low, aligned_layout(tables, C))
    assert plan.walks_chunks and not plan.split
    out = glr_readout(*low, tables, chunk=C, algorithm="chunked_aligned", backend="triton")
    assert rel_err(out.double().cpu(), naive_readout(*ref, tables)) <= TOL[torch.float32]
    for name, (g, r) in zip("qkvab", gradients_of(tables, low, ref, C)):
        assert rel_err(g, r) <= TOL[torch.float32], name
