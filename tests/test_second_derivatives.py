"""Second derivatives: a gradient taken with ``create_graph=True`` through a backward that records no graph is
refused with a ``GLRError`` (it came back without the kernels' second-order terms: 0 where finite differences gave
19.1); one whose path runs through torch ops alone is taken, and is right (against finite differences). Likewise
torch.func transforms and forward-mode dual tensors are refused by glr_scan and glr_readout, and taken through a
decode step (torch ops alone)."""
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.kernels.layers import GLRMixer  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout  # noqa: E402
from glrtheory.kernels.torch import glr_scan  # noqa: E402

N = 16


def readout_inputs(tables, seed=0, dtype=torch.float64):
    g, n = torch.Generator().manual_seed(seed), tables.n
    q, k, v = (torch.randn(1, n, 1, 3, generator=g, dtype=dtype) for _ in range(3))
    a = torch.rand(1, n, 1, tables.a_idx.shape[1], generator=g, dtype=dtype) + 0.5
    b = torch.rand(1, n, 1, tables.b_idx.shape[1], generator=g, dtype=dtype) / (2 * tables.b_idx.shape[1])
    return q, k, v, a, b


def refused(call):
    with pytest.raises(GLRError, match="no second derivative through .*take the gradient without create_graph"):
        call()


@pytest.mark.parametrize("backend", ["chunk", "naive"])
def test_the_scan_refuses_a_gradient_with_create_graph(backend):
    """The case that came back wrong: P(x) = ||d(sum h^2)/dx||^2 with u, a, b made from x, so that P also reaches x
    through torch ops (``autograd.grad(P, x)`` need not pass an error node hung on the inner gradient)."""
    tables = Pattern.from_spec("ssm").tables(N)
    x = torch.randn(1, N, 1, 2, dtype=torch.float64, requires_grad=True)

    def h():
        return glr_scan(2 * x, torch.sigmoid(x[..., :1]), torch.sigmoid(x[..., :1]) / 2, tables, backend=backend)

    refused(lambda: torch.autograd.grad(h().square().sum(), x, create_graph=True))
    (g,) = torch.autograd.grad(h().square().sum(), x)                  # without create_graph: as before
    assert torch.isfinite(g).all() and not g.requires_grad


def second_derivative(n, spec, inner, outer):
    """``R = ||d(sum o^2)/d inner||^2`` of chunked_aligned and its gradient in ``outer`` (autograd, then central
    differences at three entries), for q, k, v named by inner and outer."""
    tables = Pattern.from_spec(spec).tables(n)
    xs = dict(zip("qkvab", readout_inputs(tables, 1)))

    def R(x):
        given = dict(xs, **{outer: x, inner: xs[inner].clone().requires_grad_()})
        o = glr_readout(*(given[c] for c in "qkvab"), tables, algorithm="chunked_aligned")
        (g,) = torch.autograd.grad(o.square().sum(), given[inner], create_graph=True)
        return g.square().sum()

    leaf = xs[outer].clone().requires_grad_()
    (d,) = torch.autograd.grad(R(leaf), leaf)
    out = []
    for index in [(0, 0, 0, 0), (0, n // 2, 0, 2), (0, n - 1, 0, 1)]:
        e = torch.zeros_like(leaf)
        e[index] = 1e-5
        out.append((float(d[index]), float((R(xs[outer] + e) - R(xs[outer] - e)).detach() / 2e-5)))
    return out


@pytest.mark.parametrize("spec", ["ssm", "power2"])
def test_the_readout_refuses_where_a_kernel_backward_is_on_the_path(spec):
    """tiled_mixing's blockwise backward, and past one chunk chunked_aligned's boundary states (``ReadStates``, the
    scan)."""
    tables = Pattern.from_spec(spec).tables(N)
    q, k, v, a, b = readout_inputs(tables)
    k.requires_grad_()
    refused(lambda: torch.autograd.grad(glr_readout(q, k, v, a, b, tables, algorithm="tiled_mixing").square().sum(),
                                        k, create_graph=True))
    refused(lambda: second_derivative(200, spec, "k", "v"))
    refused(lambda: second_derivative(200, spec, "q", "k"))


@pytest.mark.parametrize("n, spec, inner, outer", [(N, "ssm", "q", "k"), (N, "fenwick", "q", "k"),
                                                   (N, "power2", "q", "v"), (N, "fenwick", "k", "v"),
                                                   (N, "power2", "k", "q")])
def test_a_second_derivative_through_torch_ops_alone_is_taken_and_right(n, spec, inner, outer):
    """Within one chunk (no boundary state) chunked_aligned's gradients are torch ops: differentiated again (the
    scan's backward, where on the path, runs once, without create_graph), they match central differences in
    float64."""
    pairs = second_derivative(n, spec, inner, outer)
    for got, numeric in pairs:
        assert got == pytest.approx(numeric, rel=1e-6, abs=1e-8)
    assert max(abs(got) for got, _ in pairs) > 1e-3


@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_the_triton_readout_refuses_a_gradient_with_create_graph(spec):
    """The aligned readout's kernels (under the interpreter on a CPU)."""
    pytest.importorskip("triton")
    tables = Pattern.from_spec(spec).tables(N)
    q, k, v, a, b = readout_inputs(tables, dtype=torch.float32)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    q, k, v, a, b = (x.to(device) for x in (q, k, v, a, b))
    k.requires_grad_()

    def loss():
        return glr_readout(q, k, v, a, b, tables, algorithm="chunked_aligned", backend="triton").square().sum()

    refused(lambda: torch.autograd.grad(loss(), k, create_graph=True))
    (g,) = torch.autograd.grad(loss(), k)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("readout", [False, True])
def test_the_mixer_refuses_a_gradient_with_create_graph(readout):
    torch.manual_seed(0)
    mixer = GLRMixer("fenwick", 8, 2, readout=readout).double()
    x = torch.randn(1, N, 8, dtype=torch.float64, requires_grad=True)
    refused(lambda: torch.autograd.grad(mixer(x).square().sum(), x, create_graph=True))
    (g,) = torch.autograd.grad(mixer(x).square().sum(), x)
    assert torch.isfinite(g).all()


TRANSFORMS = {"grad": lambda f, x: torch.func.grad(lambda y: f(y).sum())(x),
              "jacrev": lambda f, x: torch.func.jacrev(f)(x),
              "vmap": lambda f, x: torch.func.vmap(f)(x.unsqueeze(0)),
              "jvp": lambda f, x: torch.func.jvp(f, (x,), (torch.ones_like(x),))}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_torch_func_transforms_are_refused_by_the_scan_the_readout_and_the_layer(transform):
    """``torch.func.jvp`` through glr_scan gave a zero tangent where ``glr_scan(du)`` is the right one (linear in u);
    grad and jacrev take gradients with create_graph, vmap has no batching rule."""
    tables = Pattern.from_spec("power2").tables(N)
    q, k, v, a, b = readout_inputs(tables)
    layer = GLRMixer("power2", 3, 1, readout=True).double()
    params = dict(layer.named_parameters())
    calls = [("glr_scan", lambda x: glr_scan(x, a, b, tables)),
             ("glr_readout", lambda x: glr_readout(x, k, v, a, b, tables)),
             ("glr_readout", lambda x: torch.func.functional_call(layer, params, (x.reshape(1, N, 3),)))]
    for what, f in calls:
        with pytest.raises(GLRError, match=f"{what} does not run under torch.func transforms"):
            TRANSFORMS[transform](f, q)


@pytest.mark.parametrize("dual", range(5))
def test_forward_mode_is_refused_for_a_dual_tensor_in_any_input(dual):
    """A dual tensor of torch.autograd.forward_ad among q, k, v, a, b (u, a, b for the scan) is refused; plain
    tensors inside ``dual_level`` run and give what they give outside it."""
    fwAD = torch.autograd.forward_ad
    tables = Pattern.from_spec("power2").tables(N)
    xs = readout_inputs(tables)
    want = glr_readout(*xs, tables), glr_scan(*xs[2:], tables)
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, torch.ones_like(x)) if i == dual else x for i, x in enumerate(xs)]
        with pytest.raises(GLRError, match="glr_readout has no forward-mode derivative"):
            glr_readout(*duals, tables)
        if dual >= 2:
            with pytest.raises(GLRError, match="glr_scan has no forward-mode derivative"):
                glr_scan(*duals[2:], tables)
        assert torch.equal(glr_readout(*xs, tables), want[0]) and torch.equal(glr_scan(*xs[2:], tables), want[1])


@pytest.mark.parametrize("readout", [False, True])
def test_a_decode_step_is_torch_ops_so_torch_func_takes_its_derivatives(readout):
    """``GLRMixer.step`` runs no kernel: jvp matches central differences and grad matches autograd (a kernel added to
    it would make them wrong, or must be refused as glr_scan's are)."""
    torch.manual_seed(0)
    layer = GLRMixer("power2", 6, 2, readout=readout).double()
    x, dx = torch.randn(2, 1, 6, dtype=torch.float64)

    def two_steps(x):
        cache = layer.init_cache(8)
        layer.step(x, cache)
        return layer.step(2 * x, cache)

    _, tangent = torch.func.jvp(two_steps, (x,), (dx,))
    eps = 1e-6
    assert torch.allclose(tangent, (two_steps(x + eps * dx) - two_steps(x - eps * dx)) / (2 * eps), atol=1e-8)
    grad = torch.func.grad(lambda y: two_steps(y).square().sum())(x)
    y = x.clone().requires_grad_()
    two_steps(y).square().sum().backward()
    assert torch.allclose(grad, y.grad, rtol=1e-12, atol=1e-14) and grad.abs().max() > 0
