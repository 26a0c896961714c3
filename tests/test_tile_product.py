"""One tile's product of tiled mixing (``tile_product``): its Triton kernels (under the interpreter on the CPU, on
CUDA where there is one) against float64 einsums of the same rounded inputs, output and the four gradients, at
awkward row and column counts, the kernels' outputs NaN-filled under the interpreter (an unwritten element fails)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from triton.runtime.errors import OutOfResources  # noqa: E402

from glrtheory import GLRError  # noqa: E402
from glrtheory.kernels.scan import tile_product as tp  # noqa: E402
from tests.helpers import RefusedLaunch, rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


def tile(rng, R, C, dtype, B=2, H=3, dk=5, dv=7):
    """Random q, k, v and a tile of M zero above its diagonal (``m[r, j] = 0`` for j > r, as M's tiles are), rounded
    to dtype, and their float64 copies."""
    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    q, k, v = (torch.randn(B, n, H, d, generator=g, dtype=torch.float64) for n, d in ((R, dk), (C, dk), (C, dv)))
    m = torch.randn(B, R, H, C, generator=g, dtype=torch.float64)
    m = m * (torch.arange(C)[None, :] <= torch.arange(R)[:, None])[None, :, None, :]
    low = [x.to(DEVICE, dtype) for x in (q, k, v, m)]
    return low, [x.double().cpu() for x in low]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("R, C", [(1, 1), (2, 1), (2, 2), (63, 17), (200, 64), (130, 100)])
def test_kernels_match_float64(rng, R, C, dtype):
    low, ref = tile(rng, R, C, dtype)
    leaves = [x.clone().requires_grad_() for x in low]
    out = tp.tile_product(*leaves, kernels=True)
    assert out.dtype == dtype and out.shape == (2, R, 3, 7)
    ref_leaves = [x.clone().requires_grad_() for x in ref]
    expect = tp.tile_einsum(*ref_leaves)
    assert rel_err(out.detach().double().cpu(), expect.detach()) <= TOL[dtype]
    grad = torch.randn(out.shape, dtype=torch.float64).to(dtype)
    got = torch.autograd.grad(out, leaves, grad.to(DEVICE))
    want = torch.autograd.grad(expect, ref_leaves, grad.double())
    for name, gt, w in zip(("q", "k", "v", "m"), got, want):
        if name == "m":                         # 0 in the blocks above the diagonal blocks (module docstring)
            blk = tp.BLOCK if DEVICE == "cuda" else tp.INTERPRETER_BLOCK
            w = w * (torch.arange(C)[None, :] < (torch.arange(R)[:, None] // blk + 1) * blk)[None, :, None, :]
        assert rel_err(gt.double().cpu(), w) <= TOL[dtype], name


@pytest.mark.parametrize("spec, n, chunk", [("power2", 63, 16), ("quadratic", 200, 48), ("lags:1,40", 100, None)])
def test_tiled_mixing_through_the_kernels(rng, monkeypatch, spec, n, chunk):
    """``glr_readout``'s tiled mixing with every tile's product by the kernels (forced; CUDA takes them by default):
    the output and the five gradients against float64 autograd of the materializing path, float32 inputs, tiles of
    16, 48 (the last of 8 columns) and the default; the dm the kernels leave above M's diagonal (``dP * S``) must not
    reach a and b's gradients."""
    from glrtheory.kernels.scan import readout_blocks
    from glrtheory.kernels.torch import glr_readout
    from tests.test_readout import materialized, problem

    monkeypatch.setattr(readout_blocks, "tile_combine", lambda *x: tp.tile_product(*x, kernels=True))
    tables, *xs = problem(rng, spec, n, H=2, dk=5, dv=7)
    leaves = [torch.tensor(x, dtype=torch.float32, device=DEVICE, requires_grad=True) for x in xs]
    out = glr_readout(*leaves, tables, chunk=chunk, algorithm="tiled_mixing")
    grad = torch.randn(out.shape, dtype=torch.float64)
    got = torch.autograd.grad(out, leaves, grad.to(DEVICE, torch.float32))
    exact = [torch.tensor(x, requires_grad=True) for x in xs]
    ref = materialized(*exact, tables)
    want = torch.autograd.grad(ref, exact, grad)
    assert rel_err(out.detach().double().cpu(), ref.detach()) <= TOL[torch.float32]
    for name, g, w in zip("qkvab", got, want):
        assert rel_err(g.double().cpu(), w) <= TOL[torch.float32], name


@pytest.mark.skipif(DEVICE == "cuda", reason="CPU tensors")
def test_kernels_refuse_what_they_cannot_take(monkeypatch):
    """Mixed dtypes, heads over ``MAX_HEAD`` or more batch x heads than a grid's second axis holds, with the kernels
    forced: a GLRError naming them; by default (None) the CPU's tensors take the einsums, whatever the
    interpreter."""
    q = torch.zeros(1, 4, 1, 8)
    with pytest.raises(GLRError, match="one dtype"):
        tp.tile_product(q, q, q, q.double(), kernels=True)
    wide = torch.zeros(1, 4, 1, tp.MAX_HEAD + 1)
    with pytest.raises(GLRError, match=f"at most {tp.MAX_HEAD}"):
        tp.tile_product(wide, wide, q, torch.zeros(1, 4, 1, 4), kernels=True)
    assert not tp.kernels_take(q, q, q, q.double()) and tp.kernels_take(q, q, q, q)
    monkeypatch.setattr(tp, "MAX_GRID_Y", 3)                   # batch x heads on the grids' second axis
    many = torch.zeros(2, 4, 2, 8)
    assert not tp.kernels_take(many, many, many, torch.zeros(2, 4, 2, 4))
    with pytest.raises(GLRError, match="at most 3 batch x heads, .* 4 batch x heads"):
        tp.tile_product(many, many, many, torch.zeros(2, 4, 2, 4), kernels=True)
    monkeypatch.undo()
    calls = []
    monkeypatch.setattr(tp._TileProduct, "apply", lambda *x: calls.append(x))
    out = tp.tile_product(q, q, q, torch.zeros(1, 4, 1, 4))
    assert calls == [] and out.shape == (1, 4, 1, 8)


@pytest.mark.parametrize("kernel", ["_forward", "_backward_rows", "_backward_columns"])
def test_a_refused_launch_takes_the_einsums(rng, monkeypatch, kernel):
    """Where the device refuses a kernel, the default path (kernels where they run: here forced for the CPU's
    tensors) gives the einsums' output and gradients, within float32's tolerance of float64, and records the
    signature, so that later tiles of it take the einsums without trying (one refused launch in all); asked for
    explicitly (``kernels=True``), the refusal raises, in the forward or in the backward, and records nothing."""
    tried = []
    monkeypatch.setattr(tp, kernel, RefusedLaunch(tried))
    monkeypatch.setattr(tp, "_on_device", lambda q: True)
    monkeypatch.setattr(tp, "REFUSED", set())
    low, ref = tile(rng, 40, 24, torch.float32)
    ref_leaves = [x.clone().requires_grad_() for x in ref]
    expect = tp.tile_einsum(*ref_leaves)
    grad = torch.randn(expect.shape, dtype=torch.float64)
    want = torch.autograd.grad(expect, ref_leaves, grad)
    for _ in range(2):
        leaves = [x.clone().requires_grad_() for x in low]
        out = tp.tile_product(*leaves)
        got = torch.autograd.grad(out, leaves, grad.float().to(DEVICE))
        assert rel_err(out.detach().double().cpu(), expect.detach()) <= TOL[torch.float32]
        for name, g, w in zip(("q", "k", "v", "m"), got, want):
            assert rel_err(g.double().cpu(), w) <= TOL[torch.float32], name
    assert len(tried) == 1 and tp.REFUSED == {(torch.float32, 5, 7)}
    monkeypatch.setattr(tp, "REFUSED", set())
    leaves = [x.clone().requires_grad_() for x in low]
    with pytest.raises(OutOfResources):
        out = tp.tile_product(*leaves, kernels=True)
        torch.autograd.grad(out, leaves, grad.float().to(DEVICE))
    assert tp.REFUSED == set()


def test_a_second_derivative_through_the_kernels_raises(rng):
    """The kernels' backward is not differentiable: a gradient taken with ``create_graph`` is refused where it would
    otherwise come back without the second-order terms (``no_second_derivative``)."""
    low, _ = tile(rng, 20, 20, torch.float32)
    leaves = [x.clone().requires_grad_() for x in low]
    out = tp.tile_product(*leaves, kernels=True)
    with pytest.raises(GLRError, match="no second derivative through tile_product's kernels"):
        torch.autograd.grad(out.square().sum(), leaves[0], create_graph=True)


def test_kernels_refuse_a_wide_value_head():
    """d_v over ``MAX_HEAD`` with d_k within it (the kernels hold d_v whole, as d_k): ``kernels_take`` says no and the
    forced kernels raise, named; by default the einsums take it."""
    q, m = torch.zeros(1, 4, 1, 8), torch.zeros(1, 4, 1, 4)
    v = torch.zeros(1, 4, 1, tp.MAX_HEAD + 1)
    assert not tp.kernels_take(q, q, v, m)
    with pytest.raises(GLRError, match=f"at most {tp.MAX_HEAD}.*d_v = {tp.MAX_HEAD + 1}"):
        tp.tile_product(q, q, v, m, kernels=True)
    assert tp.tile_product(q, q, v, m).shape == (1, 4, 1, tp.MAX_HEAD + 1)


@pytest.mark.skipif(DEVICE == "cuda", reason="the interpreter's order of programs")
@pytest.mark.parametrize("R, C", [(63, 17), (130, 100)])
def test_kernels_in_reverse_program_order(rng, programs_in_reverse, R, C):
    """The kernels' output and gradients with every launch's programs run in reverse (``programs_in_reverse``)."""
    test_kernels_match_float64(rng, R, C, torch.float32)
