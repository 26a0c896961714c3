"""Every CUDA entry point on the second GPU while the first is the current device (a model moved to ``cuda:1`` without
``torch.cuda.set_device``): glr_scan on each CUDA backend, glr_readout on each algorithm, and GLRMixer's training
step and decode, forward and backward. Each runs twice with fresh data, so that a CUDA graph captured on the wrong
device's stream (it records nothing and replays stale outputs) or a Triton kernel launched on the current device
with the other device's pointers shows; the results must equal the same calls on ``cuda:0``."""
import copy

import pytest

torch = pytest.importorskip("torch")

from glrtheory import Pattern  # noqa: E402
from glrtheory.kernels.torch import GLRMixer, glr_readout, glr_scan  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                 reason="needs two GPUs")]
DEVICES = ("cuda:0", "cuda:1")
TOL = 1e-5


def on_each_device(inputs, run):
    """``run(*inputs)`` (a list of tensors) and the inputs' gradients, on each device with cuda:0 current."""
    results = []
    for device in DEVICES:
        assert torch.cuda.current_device() == 0
        xs = [x.to(device).requires_grad_(x.is_floating_point()) for x in inputs]
        outs = run(*xs)
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
        got = [o.detach() for o in outs] + [x.grad for x in xs if x.is_floating_point()]
        assert all(g.device == torch.device(device) for g in got), device
        results.append([g.double().cpu().numpy() for g in got])
    return results


def assert_same(results):
    first, second = results
    for mine, ref in zip(second, first):
        assert rel_err(mine, ref) <= TOL        # NaN anywhere fails


def coefficients(tables, g, B=2, H=2):
    """Random ``a [B, T, H, wa]`` in [0.5, 1.5) and ``b [B, T, H, wb]`` with ``sum_j |b| < 1``."""
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    return (torch.rand(B, tables.n, H, wa, generator=g) + 0.5,
            (torch.rand(B, tables.n, H, wb, generator=g) - 0.5) / wb)


@pytest.mark.parametrize("backend", ["triton", "chunk"])
def test_scan(backend):
    tables = Pattern.from_spec("power2+window:2").tables(300)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        u, (a, b) = torch.randn(2, 300, 2, 8, generator=g), coefficients(tables, g)
        assert_same(on_each_device([u, a, b], lambda *x: [glr_scan(*x, tables, backend=backend)]))


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "power2", "window:4"])
def test_readout(spec):
    tables = Pattern.from_spec(spec).tables(300)
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        (q, k, v), (a, b) = torch.randn(3, 2, 300, 2, 16, generator=g), coefficients(tables, g)
        assert_same(on_each_device([q, k, v, a, b], lambda *x: [glr_readout(*x, tables)]))


@pytest.mark.parametrize("readout", [False, True])
def test_mixer_training_step_and_decode(readout):
    torch.manual_seed(2)
    base = GLRMixer("fenwick", 32, 2, readout=readout)
    mixers = {device: copy.deepcopy(base).to(device) for device in DEVICES}
    for _ in range(2):
        x = torch.randn(2, 65, 32)
        results = []
        for device in DEVICES:
            mixer = mixers[device]
            mixer.zero_grad()
            xd = x.to(device).requires_grad_()
            y = mixer(xd)
            y.square().sum().backward()
            with torch.no_grad():
                cache = mixer.init_cache(65)
                steps = torch.stack([mixer.step(xd[:, t], cache) for t in range(65)], 1)
            got = [y.detach(), steps, xd.grad] + [p.grad for p in mixer.parameters() if p.grad is not None]
            assert all(t.device == torch.device(device) for t in got) and torch.cuda.current_device() == 0
            results.append([t.double().cpu().numpy() for t in got])
        assert_same(results)
