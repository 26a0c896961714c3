"""fenwick's factored readout (``readout_factored``) against the float64 reference ``solve`` on fenwick's tables with
``b[t, j] = f_t h_{B(t)_j}`` built here from the pattern's own tables, on the CPU under the Triton interpreter (on CUDA
where there is one): n in {1, 2, 63, 200}, float32 and bfloat16, outputs NaN-filled under the interpreter."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.kernels.scan import readout_factored as RF  # noqa: E402
from tests.helpers import rel_err  # noqa: E402
from tests.test_readout import reference  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


def problem(rng, n, B=1, H=2, dk=5, dv=7):
    """q, k, v; a of either sign; f of either sign and h > 0 with ``sum_j |f_t h_s| < 1`` over fenwick's rows."""
    width = max(1, int(n - 1).bit_length())
    q, k = rng.standard_normal((2, B, n, H, dk))
    v = rng.standard_normal((B, n, H, dv))
    a = rng.uniform(0.5, 1.5, (B, n, H)) * rng.choice([-1, 1], (B, n, H))
    f = rng.uniform(-1, 1, (B, n, H)) / width
    h = rng.uniform(0.3, 1.0, (B, n, H))
    return q, k, v, a, f, h


def fenwick_b(f, h):
    """``b[t, j] = f_t h_{B(t)_j}`` on ``Pattern('fenwick').tables(n)``, by loops."""
    B, n, H = f.shape
    idx = Pattern.from_spec("fenwick").tables(n).b_idx
    b = np.zeros((B, n, H, idx.shape[1]))
    for t in range(n):
        for j, s in enumerate(idx[t]):
            if s >= 0:
                b[:, t, :, j] = f[:, t, :] * h[:, s, :]
    return b


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("n", [1, 2, 63, 200])
def test_forward_matches_float64(rng, n, dtype):
    xs = problem(rng, n, H=16 if n <= 2 else 2)
    low = [torch.tensor(x, dtype=dtype if i < 3 else torch.float32, device=DEVICE) for i, x in enumerate(xs)]
    q, k, v, a, f, h = (x.double().cpu().numpy() for x in low)
    ref = reference("fenwick", q, k, v, a[..., None], fenwick_b(f, h))
    out = RF.fenwick_factored_readout(*low, chunk=16)
    assert out.dtype == dtype and out.shape == low[2].shape
    assert rel_err(out.double().cpu(), ref) <= TOL[dtype]


def test_chunks_of_32_and_heads_of_64(rng):
    xs = problem(rng, 97, dk=64, dv=40)
    low = [torch.tensor(x, dtype=torch.float32, device=DEVICE) for x in xs]
    ref = reference("fenwick", *xs[:3], xs[3][..., None], fenwick_b(*xs[4:]))
    assert rel_err(RF.fenwick_factored_readout(*low, chunk=32).double().cpu(), ref) <= 1e-5


def test_two_lag_tables_are_t_minus_1_and_the_parent():
    expect = [[-1, -1], [0, -1], [1, 0], [2, -1], [3, 0], [4, -1], [5, 4], [6, -1], [7, 0], [8, -1], [9, 8]]
    assert RF.two_lag_tables(11).tolist() == expect


def test_expanded_is_f_times_h_on_fenwicks_sources(rng):
    f, h = rng.standard_normal((2, 2, 37, 3))
    out = RF.expanded(torch.tensor(f), torch.tensor(h)).numpy()
    assert np.array_equal(out, fenwick_b(f, h))


def test_float64_takes_the_generic_readout(rng):
    xs = problem(rng, 40)
    out = RF.fenwick_factored_readout(*(torch.tensor(x) for x in xs), chunk=16)
    ref = reference("fenwick", *xs[:3], xs[3][..., None], fenwick_b(*xs[4:]))
    assert out.dtype == torch.float64 and rel_err(out, ref) <= 1e-12


def test_gradients_flow_through_the_generic_readout(rng):
    """With a gradient wanted the readout is ``glr_readout`` of the expanded b: d o / d f against float64 central
    differences of the reference."""
    xs = problem(rng, 21)
    low = [torch.tensor(x, dtype=torch.float32, device=DEVICE) for x in xs]
    low[4].requires_grad_()
    g = rng.standard_normal(xs[2].shape)
    (RF.fenwick_factored_readout(*low, chunk=16) * torch.tensor(g, dtype=torch.float32, device=DEVICE)).sum().backward()
    t, j, eps = 13, 1, 1e-6
    loss = lambda f: float((reference("fenwick", *xs[:3], xs[3][..., None], fenwick_b(f, xs[5])) * g).sum())  # noqa
    bumped = [xs[4].copy() for _ in range(2)]
    bumped[0][0, t, j] += eps
    bumped[1][0, t, j] -= eps
    assert low[4].grad[0, t, j].item() == pytest.approx((loss(bumped[0]) - loss(bumped[1])) / (2 * eps), rel=1e-4)


@pytest.mark.parametrize("change, message", [
    (dict(a=(1, 5, 2, 1)), r"a must be \[B, T, H\] = \(1, 5, 2\), got \(1, 5, 2, 1\)"),
    (dict(k=(1, 5, 2, 4)), r"q, k must be"),
    (dict(v=((1, 5, 2, 4), torch.float64)), "q, k, v must share a dtype, got torch.float32, torch.float32, "
                                            "torch.float64"),
    (dict(chunk=24), "chunk must be a power of two >= 16, got 24"),
    (dict(chunk=8), "chunk must be a power of two >= 16, got 8"),
])
def test_bad_input_is_refused_by_name(change, message):
    shapes = dict(q=(1, 5, 2, 3), k=(1, 5, 2, 3), v=(1, 5, 2, 4), a=(1, 5, 2), f=(1, 5, 2), h=(1, 5, 2))
    chunk = change.get("chunk", 16)                  # read, not popped: the parameter is shared by every run
    shapes.update({name: s for name, s in change.items() if name != "chunk"})
    with pytest.raises(GLRError, match=message):
        RF.fenwick_factored_readout(*(torch.ones(s) if isinstance(s[0], int) else torch.ones(s[0], dtype=s[1])
                                      for s in shapes.values()), chunk=chunk)
