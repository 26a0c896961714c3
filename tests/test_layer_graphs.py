"""A readout layer's whole step replayed as CUDA graphs (``layer_graphs``): on CUDA real graphs, on the CPU an eager
stand-in recorder (``rerun_record``: each replay reruns the recorded functions and copies their results into the
first run's tensors), so that the steps' static x, their leases, the clones and the fallbacks are tested
everywhere. Each output and gradient is compared with the same steps run op by op (graphs off), which on the CPU
computes the same ops in the same order, so the two must agree exactly."""
import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from glrtheory.kernels import layer_graphs  # noqa: E402
from glrtheory.kernels.layers import GLRMixer  # noqa: E402
from glrtheory.kernels.scan import readout_graphs, readout_triton  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SETTINGS = readout_triton.GPU if DEVICE == "cuda" else readout_triton.INTERPRETER
#: Lengths on CUDA from 1000 on: from 512 on the layer's readout runs its Triton kernels, whose steps were captured on
#: the H200 (gpu_calls/call103); below, the torch ops it chooses copied index tables from the host at each call, which
#: a capture refuses (call102), and their capture since has not been run there.
OFFSET = 0 if DEVICE == "cpu" else 1000
#: How far a replayed step may be from the eager one: exact on the CPU (the same ops rerun); on CUDA float32 atomics
#: (fenwick's boundary rows) add in any order, and bf16 rounds the difference up to a unit in its last place.
SAME = 0.0 if DEVICE == "cpu" else 1e-2


def rerun_record(forward, backward):
    """``readout_graphs.cuda_record``'s contract without CUDA for a step whose backward frees its forward's autograd
    graph: a forward replay reruns forward; a backward replay reruns forward on the static inputs, then backward, and
    copies the gradients; as a captured step's, whose backward reuses the memory of what its forward kept, a backward
    replay must follow a forward replay (else it raises)."""
    outputs = forward()
    grads = backward(outputs)
    fresh = [False]                                 # a forward replayed since the last backward

    def replay_forward():
        for x, y in zip(outputs, forward()):
            x.detach().copy_(y)
        fresh[0] = True

    def replay_backward():
        if not fresh[0]:
            raise RuntimeError("a backward replayed twice on one forward reads memory its first replay reused")
        fresh[0] = False
        for x, y in zip(grads, backward(forward())):
            x.copy_(y)
    return outputs, replay_forward, grads, replay_backward


@pytest.fixture
def graphs(monkeypatch):
    """Layer graphs on (two steps a signature), the failures forgotten; the CPU's stand-in recorder."""
    monkeypatch.setitem(SETTINGS, "graphs", 2)
    monkeypatch.setitem(SETTINGS, "layer_graphs", True)
    monkeypatch.setattr(readout_graphs, "failures", {})
    if DEVICE == "cpu":
        monkeypatch.setattr(readout_graphs, "RECORD", rerun_record)


def steps_of(mixer) -> list:
    """Every step kept for this layer."""
    return [s for xs in layer_graphs._kept.get(mixer, {}).values() for s in xs]


def same(x, y) -> bool:
    return rel_err(x.detach().double().cpu(), y.detach().double().cpu()) <= SAME


def train(mixer, xs, grads, autocast=True):
    """``(outputs, x grads, parameter grads)`` of one backward per x in order, the parameters' gradients accumulated
    over all of them (``zero_grad`` once, first)."""
    mixer.zero_grad()
    outs, dxs = [], []
    for x, g in zip(xs, grads):
        x = x.clone().requires_grad_()
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
            y = mixer(x)
        y.backward(g.to(y.dtype))
        outs.append(y.detach())
        dxs.append(x.grad)
    return outs, dxs, [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in mixer.parameters()]


def eagerly(monkeypatch, fn):
    monkeypatch.setitem(SETTINGS, "layer_graphs", False)
    monkeypatch.setitem(SETTINGS, "graphs", 0)
    try:
        return fn()
    finally:
        monkeypatch.setitem(SETTINGS, "layer_graphs", True)
        monkeypatch.setitem(SETTINGS, "graphs", 2)


def x_of(T, dtype=torch.float32):
    """A random x ``[2, T + OFFSET, 32]``."""
    return torch.randn(2, T + OFFSET, 32, device=DEVICE, dtype=dtype)


def problem(T, seed, d=32, count=3):
    """count inputs x and dY ``[2, T + OFFSET, d]``."""
    T += OFFSET
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(2, T, d, generator=gen).to(DEVICE) for _ in range(count)]
    return xs, [torch.randn(2, T, d, generator=gen).to(DEVICE) for _ in range(count)]


@pytest.mark.parametrize("autocast", [True, False], ids=["bf16", "fp32"])
@pytest.mark.parametrize("spec, T", [("ssm", 1), ("ssm", 63), ("fenwick", 2), ("fenwick", 63), ("blocks", 40)])
@pytest.mark.parametrize("lag_bias", [False, True])
def test_replayed_steps_equal_the_eager_ones(graphs, monkeypatch, spec, T, autocast, lag_bias):
    """Three steps in a row on one step instance (each backward gives it back), with fresh x and dY each, gradients
    accumulated over the three: outputs, x's gradients and every parameter's gradient as the eager steps give them
    (also after the replays that followed them: the outputs are clones). With a lag bias, which ssm's one-slot
    tables never read: the replayed step gives it zeros where the eager one leaves no gradient."""
    torch.manual_seed(T)
    mixer = GLRMixer(spec, 32, 2, readout=True, lag_bias=lag_bias, device=DEVICE)
    if lag_bias:
        with torch.no_grad():
            mixer.lag_bias.normal_()
    xs, grads = problem(T, seed=T)
    outs, dxs, pgrads = train(mixer, xs, grads, autocast)
    assert len(steps_of(mixer)) == 1 and not readout_graphs.failures, readout_graphs.failures
    e_outs, e_dxs, e_pgrads = eagerly(monkeypatch, lambda: train(mixer, xs, grads, autocast))
    assert all(same(a, b) for a, b in zip(outs, e_outs))
    assert all(same(a, b) for a, b in zip(dxs, e_dxs))
    assert all(same(a, b) for a, b in zip(pgrads, e_pgrads))
    assert not all(same(outs[0], o) for o in outs[1:])          # the steps differ: a stale replay would not


def test_forwards_in_flight_each_hold_a_step(graphs, monkeypatch):
    """Two forwards before one backward (two micro-batches summed) take two steps; a third meanwhile runs eagerly;
    the gradients equal the eager ones. In float32: under autocast the eager forwards share one cached bf16 cast of
    each weight, whose gradients then add in bf16 (2e-3 apart here), where the replayed steps cast apiece and add in
    float32."""
    torch.manual_seed(1)
    mixer = GLRMixer("fenwick", 32, 2, readout=True, device=DEVICE)
    xs, grads = problem(37, seed=1)

    def summed():
        mixer.zero_grad()
        leaves = [x.clone().requires_grad_() for x in xs]
        ys = [mixer(x) for x in leaves]
        sum((y.float() * g).sum() for y, g in zip(ys, grads)).backward()
        return [y.detach() for y in ys], [x.grad for x in leaves], [p.grad.clone() for p in mixer.parameters()]

    replayed = summed()
    assert len(steps_of(mixer)) == 2 and not any(s.leased for s in steps_of(mixer)), readout_graphs.failures
    eager = eagerly(monkeypatch, summed)
    for got, expect in zip(replayed, eager):
        assert all(same(a, b) for a, b in zip(got, expect))


@pytest.mark.parametrize("lag_bias", [False, True])
def test_a_second_backward_after_its_step_replayed_recomputes(graphs, monkeypatch, lag_bias):
    """``retain_graph``: a step's second backward through one forward recomputes it eagerly, as does one after the
    step replayed another forward: the first forward's gradients, not the second's (ssm's lag bias, which no table
    reads, gets zeros both ways)."""
    torch.manual_seed(2)
    mixer = GLRMixer("ssm", 32, 2, readout=True, lag_bias=lag_bias, device=DEVICE)
    (x1, x2), (g1, g2) = problem(20, seed=2, count=2)
    x1, x2 = x1.requires_grad_(), x2.requires_grad_()
    y1 = mixer(x1)
    first = torch.autograd.grad(y1, [x1, *mixer.parameters()], g1, retain_graph=True)
    replayed = torch.autograd.grad(y1, [x1, *mixer.parameters()], g1, retain_graph=True)
    assert all(same(a, b) for a, b in zip(first, replayed))
    mixer(x2).backward(g2)                                        # the same step replays x2
    again = torch.autograd.grad(y1, [x1, *mixer.parameters()], g1)
    assert len(steps_of(mixer)) == 1, readout_graphs.failures
    assert all(same(a, b) for a, b in zip(first, again))
    expect = eagerly(monkeypatch, lambda: torch.autograd.grad(mixer(x1), [x1, *mixer.parameters()], g1,
                                                              allow_unused=True, materialize_grads=True))
    assert all(same(a, b) for a, b in zip(again, expect))
    if lag_bias:
        names = ["x", *(name for name, _ in mixer.named_parameters())]
        assert not again[names.index("lag_bias")].any()


def test_eager_where_graphs_do_not_apply(graphs, monkeypatch):
    """No grad, nothing needing a gradient, the setting off, too large a problem, the CPU without a stand-in: no
    step is recorded, and the outputs are the eager ones."""
    torch.manual_seed(3)
    mixer = GLRMixer("ssm", 32, 2, readout=True, device=DEVICE)
    x = x_of(9)
    with torch.no_grad():
        mixer(x)
    for p in mixer.parameters():
        p.requires_grad_(False)
    mixer(x)                                                      # neither x nor a parameter needs a gradient
    for p in mixer.parameters():
        p.requires_grad_(True)
    monkeypatch.setitem(SETTINGS, "layer_graphs", False)
    mixer(x).sum().backward()
    monkeypatch.setitem(SETTINGS, "layer_graphs", True)
    elements = x.shape[0] * x.shape[1] * 2 * 16                   # q's: B T heads d_key
    monkeypatch.setitem(SETTINGS, "graph_elements", elements - 1)
    mixer(x).sum().backward()
    assert steps_of(mixer) == []
    monkeypatch.setitem(SETTINGS, "graph_elements", elements)
    mixer(x).sum().backward()
    assert len(steps_of(mixer)) == 1
    if DEVICE == "cpu":
        monkeypatch.setattr(readout_graphs, "RECORD", readout_graphs.cuda_record)
        mixer(x_of(10)).sum().backward()
        assert len(steps_of(mixer)) == 1


def test_new_parameters_and_too_many_signatures(graphs, monkeypatch):
    """A parameter replaced (``.to``) makes a new signature, and the step follows the new one; past
    ``SIGNATURES`` signatures a layer runs eagerly."""
    monkeypatch.setattr(layer_graphs, "SIGNATURES", 2)
    torch.manual_seed(4)
    mixer = GLRMixer("ssm", 32, 2, readout=True, device=DEVICE)
    x = x_of(8)
    mixer(x).sum().backward()
    mixer.to(torch.bfloat16)
    y = mixer(x.bfloat16())
    y.float().sum().backward()
    assert len(layer_graphs._kept[mixer]) == 2 and not readout_graphs.failures, readout_graphs.failures
    mixer(x_of(9, torch.bfloat16)).float().sum().backward()                     # a third signature
    assert len(layer_graphs._kept[mixer]) == 2
    expect = eagerly(monkeypatch, lambda: mixer(x.bfloat16()))
    assert same(y, expect)


def test_a_failed_capture_is_recorded_and_the_layer_runs_eagerly(graphs, monkeypatch):
    def refuse(forward, backward):
        raise RuntimeError("capture refused")
    monkeypatch.setattr(readout_graphs, "RECORD", refuse)
    torch.manual_seed(5)
    mixer = GLRMixer("ssm", 32, 2, readout=True, device=DEVICE)
    x = x_of(8)
    y = mixer(x)
    layer_failures = [why for key, why in readout_graphs.failures.items() if key[0] == tuple(x.shape)]
    assert steps_of(mixer) == [] and layer_failures == ["RuntimeError: capture refused"]     # (and the readout's)
    assert same(y, eagerly(monkeypatch, lambda: mixer(x)))


def test_a_copied_layer_shares_no_step(graphs):
    """``copy.deepcopy`` of a layer that replays (an LM's CPU twin) copies no graph; the copy records its own."""
    torch.manual_seed(6)
    mixer = GLRMixer("ssm", 32, 2, readout=True, device=DEVICE)
    x = x_of(8)
    mixer(x).sum().backward()
    twin = copy.deepcopy(mixer)
    assert steps_of(twin) == [] and len(steps_of(mixer)) == 1
    assert same(twin(x), mixer(x))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_cuda_training_replayed_matches_eager_training(graphs, monkeypatch, spec):
    """Three SGD steps of a readout layer under bf16 autocast (T = 4096: fenwick solves for its 64 boundary states)
    with its step replayed, against the same steps op by op from the same start: losses and the parameters after
    them within bf16's tolerance; the whole step was captured once (the readout's own graphs paused inside it)."""
    from glrtheory.kernels.layers import GLRMixer as Mixer

    def trained():
        torch.manual_seed(0)
        mixer = Mixer(spec, 256, 2, readout=True, device="cuda")
        opt = torch.optim.SGD(mixer.parameters(), lr=0.5)
        losses = []
        for seed in range(3):
            x = torch.randn(2, 4096, 256, device="cuda", generator=torch.Generator("cuda").manual_seed(seed))
            opt.zero_grad()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = mixer(x).float().square().mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return mixer, losses, [p.detach().clone() for p in mixer.parameters()]

    mixer, losses, params = trained()
    assert len(steps_of(mixer)) == 1 and not readout_graphs.failures, readout_graphs.failures
    assert readout_graphs.kept(mixer.tables(4096)) == {}
    _, e_losses, e_params = eagerly(monkeypatch, trained)
    assert losses == pytest.approx(e_losses, rel=1e-2) and len(set(losses)) == 3
    assert all(rel_err(a.double().cpu(), b.double().cpu()) <= 1e-2 for a, b in zip(params, e_params))
