"""The Triton readout replayed as CUDA graphs (``readout_graphs``): on CUDA real graphs, on the CPU under the
interpreter an eager stand-in for ``RECORD`` (each replay runs the captured function again and copies its results
into the first run's tensors, as a graph rewrites its outputs in place), so that the instances' static buffers,
their leases and the fallbacks are tested everywhere. Each output and gradient is compared with float64 autograd
of the materializing reference and with the same call run eagerly (``graphs`` 0)."""
import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from glrtheory.kernels.scan import readout_graphs, readout_triton  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout, naive_readout  # noqa: E402
from tests.helpers import rel_err  # noqa: E402
from tests.test_readout_triton import DEVICE, TOL, RefusedLaunch, inputs  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

SETTINGS = readout_triton.GPU if DEVICE == "cuda" else readout_triton.INTERPRETER
#: How far a replay may be from the eager run of the same inputs: exact under the interpreter; on CUDA float32
#: atomics (fenwick's boundary rows) add in any order, which moves float32 sums by rounding (and a bf16 result by a
#: unit in the last place where that crosses a rounding boundary): far below what stale inputs or state would give.
SAME = 0.0 if DEVICE == "cpu" else 1e-3


def same(x, y) -> bool:
    return rel_err(x.detach().double().cpu(), y.detach().double().cpu()) <= SAME


def eager_record(forward, backward):
    """``readout_graphs.cuda_record``'s contract without CUDA: each replay reruns the function and copies its results
    into the first run's tensors."""
    outputs = forward()
    grads = backward(outputs)

    def replay(fn, into, *args):
        return lambda: [x.copy_(y) for x, y in zip(into, fn(*args)) if x is not None]
    return outputs, replay(forward, outputs), grads, replay(backward, grads, outputs)


@pytest.fixture
def graphs(monkeypatch):
    """Graphs on (two instances a signature), the failures forgotten; the CPU's stand-in recorder."""
    monkeypatch.setitem(SETTINGS, "graphs", 2)
    monkeypatch.setattr(readout_graphs, "failures", {})
    if DEVICE == "cpu":
        monkeypatch.setattr(readout_graphs, "RECORD", eager_record)


def instances(tables) -> list:
    """Every captured instance kept with these tables."""
    return [x for xs in readout_graphs.kept(tables).values() for x in xs]


def run(spec, n, dtype, seed):
    """``(tables, output, its five gradients, float64's output and gradients)`` of a fresh problem and dO (random,
    drawn from seed)."""
    tables, low, ref = inputs(np.random.default_rng(seed), spec, n, dtype)
    xs = [x.clone().requires_grad_() for x in low]
    out = readout(xs, tables)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out)
    grads = torch.autograd.grad(out, xs, grad)
    refs = [x.clone().requires_grad_() for x in ref]
    expect = naive_readout(*refs, tables)
    return tables, out.detach(), grads, expect.detach(), torch.autograd.grad(expect, refs, grad.double().cpu())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("spec, n", [("ssm", 2), ("ssm", 63), ("fenwick", 63), ("fenwick", 200), ("blocks", 63)])
def test_replayed_readout_matches_float64_and_the_eager_run(graphs, monkeypatch, spec, n, dtype):
    tables, out, grads, expect, expect_grads = run(spec, n, dtype, seed=n)
    assert len(instances(tables)) == 1 and not readout_graphs.failures
    assert rel_err(out.double().cpu(), expect) <= TOL[dtype]
    for name, g, r in zip("qkvab", grads, expect_grads):
        assert rel_err(g.double().cpu(), r) <= TOL[dtype], name
    monkeypatch.setitem(SETTINGS, "graphs", 0)
    _, eager, eager_grads, _, _ = run(spec, n, dtype, seed=n)
    assert same(out, eager) and all(same(g, e) for g, e in zip(grads, eager_grads))


def readout(xs, tables):
    return glr_readout(*xs, tables, chunk=16, algorithm="chunked_aligned", backend="triton")


def test_each_forward_in_flight_holds_its_own_instance(graphs):
    """Two forwards before their backwards take two instances (each keeps its forward's state); a third, with both
    leased, runs eagerly; each backward gives its own inputs' gradients (float64's) and gives its instance back.
    A reused instance takes the new inputs (forward and dO); outputs and gradients are clones, which later replays
    leave alone."""
    problems = [inputs(np.random.default_rng(seed), "fenwick", 63, torch.float32) for seed in range(3)]
    tables = problems[0][0]
    leaves = [[x.clone().requires_grad_() for x in low] for _, low, _ in problems]
    outs = [readout(xs, tables) for xs in leaves]
    assert len(instances(tables)) == 2 and all(x.leased for x in instances(tables))
    values, grads = [o.detach().clone() for o in outs], {}
    for i in (2, 1, 0):
        grads[i] = torch.autograd.grad(outs[i], leaves[i], torch.ones_like(outs[i]))
        refs = [x.clone().requires_grad_() for x in problems[i][2]]
        expect = naive_readout(*refs, tables)
        assert rel_err(values[i].double().cpu(), expect.detach()) <= TOL[torch.float32]
        for name, g, r in zip("qkvab", grads[i], torch.autograd.grad(expect, refs, torch.ones_like(expect))):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], name
    assert not any(x.leased for x in instances(tables))
    again = readout(leaves[2], tables)                     # problem 2 ran eagerly; now on the first instance
    assert len(instances(tables)) == 2 and [x.leased for x in instances(tables)] == [True, False]
    assert same(again, values[2])
    twice = torch.autograd.grad(again, leaves[2], 2 * torch.ones_like(again))
    assert all(same(a, 2 * b) for a, b in zip(twice, grads[2]))
    kept, twice_kept = again.detach().clone(), [g.clone() for g in twice]
    with torch.no_grad():
        other = readout(leaves[0], tables)                 # the first instance again
    assert same(other, values[0]) and torch.equal(again.detach(), kept)
    torch.autograd.grad(readout(leaves[1], tables).sum(), leaves[1])
    assert all(torch.equal(a, b) for a, b in zip(twice, twice_kept))


def test_a_second_backward_after_its_instance_replayed_recomputes(graphs):
    """``retain_graph``: the first backward gives the instance back, another forward replays it, then a second
    backward through the first forward recomputes that forward's state and gives the same gradients."""
    problems = [inputs(np.random.default_rng(seed), "ssm", 63, torch.float32) for seed in (5, 6)]
    tables = problems[0][0]
    leaves = [[x.clone().requires_grad_() for x in low] for _, low, _ in problems]
    out = readout(leaves[0], tables)
    first = torch.autograd.grad(out, leaves[0], torch.ones_like(out), retain_graph=True)
    later = readout(leaves[1], tables)
    assert len(instances(tables)) == 1 and instances(tables)[0].leased
    second = torch.autograd.grad(out, leaves[0], torch.ones_like(out))
    assert all(same(a, b) for a, b in zip(first, second))
    del later


def test_without_grad_the_instance_is_given_back_at_once(graphs):
    tables, low, _ = inputs(np.random.default_rng(0), "ssm", 63, torch.float32)
    with torch.no_grad():
        outs = [readout(low, tables) for _ in range(3)]
    assert len(instances(tables)) == 1 and not instances(tables)[0].leased
    assert all(same(o, outs[0]) for o in outs)


def test_paused_calls_run_eagerly(graphs):
    """Inside ``paused`` (a layer recording its whole step, ``layer_graphs``) a readout call takes no instance, also
    inside nested blocks; after them it does."""
    tables, low, _ = inputs(np.random.default_rng(1), "ssm", 63, torch.float32)
    with readout_graphs.paused():
        with readout_graphs.paused():
            readout(low, tables)
        readout(low, tables)
        assert instances(tables) == [] and not readout_graphs.on()
    assert readout_graphs.on()
    readout(low, tables)
    assert len(instances(tables)) == 1


def test_a_failed_capture_is_recorded_and_the_readout_runs_eagerly(graphs, monkeypatch):
    def refuse(forward, backward):
        raise RuntimeError("capture refused")
    monkeypatch.setattr(readout_graphs, "RECORD", refuse)
    tables, out, grads, expect, expect_grads = run("ssm", 63, torch.float32, seed=1)
    assert instances(tables) == [] and list(readout_graphs.failures.values()) == ["RuntimeError: capture refused"]
    assert rel_err(out.double().cpu(), expect) <= TOL[torch.float32]
    for name, g, r in zip("qkvab", grads, expect_grads):
        assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], name


def test_a_plan_whose_backward_needs_torch_autograd_runs_eagerly(graphs):
    """n = 1: one chunk of one row, which the kernels' step 1 does not take (``triton.CHUNKS``) and B empty (not
    first order): its backward runs torch autograd, which no graph holds."""
    tables, out, grads, expect, expect_grads = run("fenwick", 1, torch.float32, seed=4)
    assert instances(tables) == [] and "torch autograd" in next(iter(readout_graphs.failures.values()))
    assert rel_err(out.double().cpu(), expect) <= TOL[torch.float32]


@pytest.mark.parametrize("eager_first", [False, True], ids=["graphs", "eager-then-graphs"])
@pytest.mark.parametrize("kernels, kernel", [("KB", "boundary_backward"), ("K", "chunk_output")])
def test_a_launch_the_device_refuses_is_never_captured(graphs, monkeypatch, eager_first, kernels, kernel):
    """A backward's or a forward's launch out of the device's resources (``OutOfResources``), met in a capture's
    first run or in an eager call (``paused``) before any capture of the same signature: the plan is marked, no
    instance is captured, the refused kernel is tried once in all, and the gradients (by the torch ops) match
    float64."""
    tried = []
    monkeypatch.setattr(getattr(readout_triton, kernels), kernel, RefusedLaunch(tried))
    tables, low, ref = inputs(np.random.default_rng(21), "fenwick", 63, torch.bfloat16)
    grad = torch.randn(low[2].shape, generator=torch.Generator().manual_seed(21)).to(low[2])
    refs = [x.clone().requires_grad_() for x in ref]
    want = torch.autograd.grad(naive_readout(*refs, tables), refs, grad.double().cpu())
    for call in range(3):                       # eager first: as inside a layer's own graphs (``paused``)
        with readout_graphs.paused() if eager_first and call == 0 else contextlib.nullcontext():
            xs = [x.clone().requires_grad_() for x in low]
            got = torch.autograd.grad(readout(xs, tables), xs, grad)
        for name, g, r in zip("qkvab", got, want):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.bfloat16], (call, name)
    assert instances(tables) == [] and len(tried) == 1
    (why,) = readout_graphs.failures.values()
    if eager_first:
        assert why == ("GLRError: its backward takes torch autograd of the torch ops (refused by the device, or heads "
                       "over 256), which no graph holds")
    else:
        assert why.startswith("OutOfResources: ") and "278528" in why


def test_the_signatures_graphed_per_tables_are_bounded(graphs, monkeypatch):
    """Each batch size is a signature of its own: past ``GRAPHED_SIGNATURES`` per tables new ones run eagerly (and
    right), those captured before still replay."""
    monkeypatch.setattr(readout_triton, "GRAPHED_SIGNATURES", 2)
    rng = np.random.default_rng(12)
    tables, low, ref = inputs(rng, "ssm", 63, torch.float32, H=1)
    counts = []
    for batch in (1, 2, 3, 1):
        xs, refs = ([x.expand(batch, *x.shape[1:]).contiguous() for x in xx] for xx in (low, ref))
        with torch.no_grad():
            out = readout(xs, tables)
        assert rel_err(out.double().cpu(), naive_readout(*refs, tables)) <= TOL[torch.float32], batch
        counts.append(len(readout_graphs.kept(tables)))
    assert counts == [1, 2, 2, 2] and [len(v) for v in readout_graphs.kept(tables).values()] == [1, 1]
    assert [v[0].generation for v in readout_graphs.kept(tables).values()] == [2, 1]     # batch 1 replayed twice


def test_large_problems_and_the_cpu_without_a_stand_in_run_eagerly(graphs, monkeypatch):
    monkeypatch.setitem(SETTINGS, "graph_elements", 63 * 2 * 5 - 1)         # one less than q's elements
    tables, *_ = run("ssm", 63, torch.float32, seed=2)
    assert instances(tables) == []
    if DEVICE == "cpu":
        monkeypatch.setitem(SETTINGS, "graph_elements", 2**25)
        monkeypatch.setattr(readout_graphs, "RECORD", readout_graphs.cuda_record)
        tables, *_ = run("ssm", 63, torch.float32, seed=3)
        assert instances(tables) == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_cuda_layer_steps_replayed_match_the_eager_ones(spec):
    """``GLRMixer(readout=True)`` training steps (its own graphs off: ``layer_graphs``) under bf16 autocast (T = 4096:
    fenwick solves for its 64 boundary
    states, so a triangular solve and a batched product are captured too), three in a row on one instance (each
    backward gives it back), against the same steps with graphs off: outputs and every parameter's gradient within
    bf16's tolerance."""
    from glrtheory.kernels.layers import GLRMixer

    torch.manual_seed(0)
    mixer = GLRMixer(spec, 256, 2, readout=True, device="cuda")
    xs = [torch.randn(2, 4096, 256, device="cuda") for _ in range(3)]

    def steps(graphs):
        readout_triton.GPU["graphs"] = graphs
        outs, grads = [], []
        for x in xs:
            mixer.zero_grad()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                outs.append(mixer(x))
            outs[-1].float().square().mean().backward()
            grads.append([p.grad.clone() for p in mixer.parameters()])
        return [o.detach().float() for o in outs], grads

    saved = readout_triton.GPU["graphs"], readout_triton.GPU["layer_graphs"]
    readout_triton.GPU["layer_graphs"] = False                  # the readout's graphs alone, in the eager layer
    try:
        eager, replayed = steps(0), steps(2)
    finally:
        readout_triton.GPU["graphs"], readout_triton.GPU["layer_graphs"] = saved
    tables = mixer.tables(4096)
    assert len(instances(tables)) == 1 and not readout_graphs.failures
    for (o, g), (oe, ge) in zip(zip(*replayed), zip(*eager)):
        assert rel_err(o.cpu(), oe.cpu()) <= 1e-2
        assert all(rel_err(a.cpu(), b.cpu()) <= 1e-2 for a, b in zip(g, ge))


def test_slices_of_one_projection_are_copied_in_as_one_buffer(graphs):
    """q, k, v as a layer gives them, slices of one projection's last axis with a column between them: one buffer
    (its span from q's first element to v's last), copied in once a call; replayed on two such projections they
    give float64's output and gradients; dq, dk, dv come back as views of one clone, da and db of another."""
    rng = np.random.default_rng(7)
    tables, low, ref = inputs(rng, "ssm", 63, torch.float32)
    (B, T, H, dk), dv = low[0].shape, low[2].shape[-1]
    # q, k, v at 0, row, 2 row (16-byte aligned, columns between), rows of a multiple of 8: read in place
    row, shapes = 4 * (H * dv // 4 + 1), [(B, T, H, dk), (B, T, H, dk), (B, T, H, dv)]
    wide = low[0].new_zeros(B, T, 3 * row + 8)

    def split(x):
        return [x[..., i * row:i * row + H * shape[-1]].view(shape) for i, shape in enumerate(shapes)]
    q, k, v = split(wide)
    layout = readout_graphs.Layout((q, k, v, low[3], low[4]))
    assert layout.spans == [(B * T - 1) * (3 * row + 8) + 2 * row + H * dv, low[3].numel(), low[4].numel()]
    assert [spot[:2] for spot in layout.spots] == [(0, 0), (0, row), (0, 2 * row), (1, 0), (2, 0)]
    for seed in (8, 9):
        _, low, ref = inputs(np.random.default_rng(seed), "ssm", 63, torch.float32)
        for x, y in zip((q, k, v), low[:3]):
            x.copy_(y)
        leaves = [wide.clone().requires_grad_(), low[3].clone().requires_grad_(), low[4].clone().requires_grad_()]
        out = readout([*split(leaves[0]), *leaves[1:]], tables)
        grads = torch.autograd.grad(out, leaves, torch.ones_like(out))
        refs = [x.clone().requires_grad_() for x in ref]
        expect = naive_readout(*refs, tables)
        assert rel_err(out.detach().double().cpu(), expect.detach()) <= TOL[torch.float32]
        dq, dk, dv, da, db = torch.autograd.grad(expect, refs, torch.ones_like(expect))
        got = split(grads[0])
        for name, g, r in zip("qkvab", got + list(grads[1:]), (dq, dk, dv, da, db)):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], name
    (captured,) = instances(tables)
    assert len(captured.buffers) == 3 and len(captured.grad_buffers) == 2


def test_transient_calls_hand_out_the_graphs_own_buffers(graphs):
    """``transient=True`` (a layer's readout): the output and gradients are the instance's own tensors, not copies,
    with float64's values; a later replay rewrites them (which is why the default copies)."""
    problems = [inputs(np.random.default_rng(seed), "fenwick", 63, torch.float32) for seed in (10, 11)]
    tables = problems[0][0]
    for _, low, ref in problems:
        leaves = [x.clone().requires_grad_() for x in low]
        out = glr_readout(*leaves, tables, chunk=16, algorithm="chunked_aligned", backend="triton", transient=True)
        (captured,) = instances(tables)
        assert out.data_ptr() == captured.outputs[0].data_ptr()
        grads = torch.autograd.grad(out, leaves, torch.ones_like(out))
        assert [g.data_ptr() for g in grads] == [g.data_ptr() for g in captured.grads]
        refs = [x.clone().requires_grad_() for x in ref]
        expect = naive_readout(*refs, tables)
        assert rel_err(out.detach().double().cpu(), expect.detach()) <= TOL[torch.float32]
        for name, g, r in zip("qkvab", grads, torch.autograd.grad(expect, refs, torch.ones_like(expect))):
            assert rel_err(g.double().cpu(), r) <= TOL[torch.float32], name


def test_the_layer_asks_for_a_transient_readout(monkeypatch):
    """``GLRMixer(readout=True)``'s output goes straight into its out projection, its q, k, v gradients into the
    projection's: it calls ``glr_readout(..., transient=True)``."""
    from glrtheory.kernels import layers
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return glr_readout(*args, **kwargs)
    monkeypatch.setattr(layers, "glr_readout", spy)
    layers.GLRMixer("ssm", 8, 2, readout=True)(torch.randn(1, 5, 8))
    assert [kwargs.get("transient") for kwargs in calls] == [True]


DDP_STEPS = """
import os, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from glrtheory.kernels import layer_graphs
from glrtheory.kernels.layers import GLRMixer
from glrtheory.kernels.scan import readout_graphs, readout_triton
dist.init_process_group("nccl")
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
x = torch.randn(2, 2048, 256, device="cuda")
grads = []
for whole in (False, True):                 # the readout's graphs alone, then the layer's whole step
    readout_triton.GPU["layer_graphs"] = whole
    torch.manual_seed(0)
    model = DistributedDataParallel(GLRMixer("ssm", 256, 2, readout=True, device="cuda"))
    for _ in range(3):
        model.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = model(x)
        y.float().square().mean().backward()
    torch.cuda.synchronize()
    assert not readout_graphs.failures, readout_graphs.failures
    kept = sum(len(v) for v in readout_graphs.kept(model.module.tables(2048)).values())
    steps = sum(len(v) for v in layer_graphs._kept.get(model.module, {}).values())
    assert (kept, steps) == ((0, 1) if whole else (1, 0)), (kept, steps)
    grads.append([p.grad.float() for p in model.parameters()])
assert all(torch.isfinite(g).all() for g in grads[1])
assert all(((a - b).norm() / b.norm()).item() < 1e-2 for a, b in zip(*grads))
dist.destroy_process_group()
print("replayed under DDP")
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_replays_under_torchrun_with_nccl(tmp_path):
    """Under ``torchrun`` with an NCCL process group (whose watchdog thread queries CUDA events), the layer's
    readout captures its graphs (thread-local capture) and replays them in DDP training steps, and so does the
    layer's whole step (``layer_graphs``; DDP's hooks fire on the gradients its backward hands on): the same
    gradients."""
    import subprocess
    import sys
    script = tmp_path / "ddp_steps.py"
    script.write_text(DDP_STEPS)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                          str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "replayed under DDP" in run.stdout, run.stderr[-3000:]
