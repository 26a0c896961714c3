"""``kernels/scan/eager.py``: eager calls of ``glr_scan`` skip the dispatcher, and give the op's outputs and
gradients; whatever watches the dispatcher (a dispatch mode such as ``FlopCounterMode``, functorch) still sees
the op."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from glrtheory import GLRError, Pattern
from glrtheory.kernels.scan import eager, op
from glrtheory.kernels.scan.plan import scan_plan
from glrtheory.kernels.torch import glr_scan

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN


def _inputs(n=63, B=2, H=3, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    tables = Pattern.from_spec("power2").tables(n)
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    u = torch.randn(B, n, H, d, generator=g, dtype=torch.float64)
    a = torch.rand(B, n, H, wa, generator=g, dtype=torch.float64) + 0.5
    b = (torch.rand(B, n, H, wb, generator=g, dtype=torch.float64) * 2 - 1) / wb
    return tables, [x.requires_grad_() for x in (u, a, b)]


def test_eager_call_skips_the_dispatcher_with_the_ops_outputs_and_gradients():
    """The same states and gradients, bit for bit, as the op called through ``torch.ops``; the eager call's
    graph node is ``eager._Direct``'s, the op's is the dispatcher's autograd node; without gradients no node."""
    tables, leaves = _inputs()
    grad = torch.randn(leaves[0].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    h = glr_scan(*leaves, tables)
    ours = torch.autograd.grad(h, leaves, grad)
    plan = list(scan_plan(tables, h.device))
    h_op = torch.ops.glrtheory.glr_scan(*leaves, plan, op.DEFAULT_CHUNK["cpu"], "chunk")
    theirs = torch.autograd.grad(h_op, leaves, grad)
    assert torch.equal(h, h_op)
    assert all(torch.equal(x, y) for x, y in zip(ours, theirs))
    assert type(h.grad_fn).__name__ == "_DirectBackward"
    assert type(h_op.grad_fn).__name__ != "_DirectBackward"
    with torch.no_grad():
        assert glr_scan(*leaves, tables).grad_fn is None


def test_watched_calls_go_through_the_op():
    """Under ``FlopCounterMode`` the op and its backward are counted (2 B H d nnz and twice that); ``watched`` is
    false outside, true inside a dispatch mode and inside ``vmap``."""
    tables, leaves = _inputs(n=40)
    B, n, H, d = leaves[0].shape
    nnz = int((np.asarray(tables.a_idx) >= 0).sum() + (np.asarray(tables.b_idx) >= 0).sum())
    assert not eager.watched()
    with FlopCounterMode(display=False) as counter:
        assert eager.watched()
        glr_scan(*leaves, tables).sum().backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert counts["glrtheory.glr_scan"] == 2 * B * H * d * nnz
    assert counts["glrtheory.glr_scan_backward"] == 4 * B * H * d * nnz
    seen = []
    torch.func.vmap(lambda x: seen.append(eager.watched()) or x)(torch.zeros(2))
    assert seen == [True]


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, True), (False, False, False)])
def test_eager_gradients_only_where_asked(needs):
    """Inputs that do not require gradients get none, the others the op's own (through ``torch.ops``); with none
    required the call makes no graph."""
    tables, leaves = _inputs(n=17, seed=2)
    leaves = [x.detach().requires_grad_(r) for x, r in zip(leaves, needs)]
    h = glr_scan(*leaves, tables)
    assert h.requires_grad == any(needs)
    if not any(needs):
        return
    wanted = [x for x, r in zip(leaves, needs) if r]
    ours = torch.autograd.grad(h.sum(), wanted)
    plan = list(scan_plan(tables, h.device))
    theirs = torch.autograd.grad(torch.ops.glrtheory.glr_scan(*leaves, plan, op.DEFAULT_CHUNK["cpu"], "chunk").sum(),
                                 wanted)
    assert all(torch.equal(x, y) for x, y in zip(ours, theirs))


@pytest.mark.parametrize("direct", [True, False])
def test_second_derivatives_raise_either_way(direct, monkeypatch):
    """A gradient taken with ``create_graph`` is refused, past the dispatcher (``_Direct``) as through it: the
    backward's kernels record no graph, so it would come back without the second-order terms. Refused when it is
    taken, as ``autograd.grad(..., inputs=)`` need never reach an error node hung on the gradient (the case below: P
    reaches x through u's own graph too, and gave 0 for the scan's part before)."""
    monkeypatch.setattr(eager, "DIRECT", direct)
    tables, (u, a, b) = _inputs(n=9)
    with pytest.raises(GLRError, match="no second derivative through glr_scan: "):
        torch.autograd.grad(glr_scan(u, a, b, tables).pow(2).sum(), [u], create_graph=True)
    x = u.detach().clone().requires_grad_()
    with pytest.raises(GLRError, match="take the gradient without create_graph"):
        torch.autograd.grad(glr_scan(x * x, a, b, tables).pow(2).sum(), [x], create_graph=True)
    (gu,) = torch.autograd.grad(glr_scan(u, a, b, tables).pow(2).sum(), [u])        # first order as before
    assert gu.shape == u.shape and not gu.requires_grad


def test_torch_function_modes_and_subclasses_see_the_op():
    """A ``TorchFunctionMode`` sees ``glrtheory.glr_scan`` (so do tracers built on it), and so does a call with an
    input of a tensor subclass that overrides ``__torch_function__``."""
    tables, leaves = _inputs(n=9)
    seen = []

    class Names(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Names():
        glr_scan(*leaves, tables)
    assert any("glrtheory.glr_scan" in name for name in seen)

    class Watched(torch.Tensor):
        pass

    assert eager.watched((leaves[0].detach().as_subclass(Watched),)) and not eager.watched(tuple(leaves))


def test_the_profiler_and_a_subclass_in_any_input_see_the_op():
    """Under ``torch.profiler`` the op (and its backward) are recorded; a tensor subclass makes a call watched
    whichever input it is."""
    tables, leaves = _inputs(n=9)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        assert eager.watched()
        glr_scan(*leaves, tables).sum().backward()
    names = {e.name for e in prof.events()}
    assert {"glrtheory::glr_scan", "glrtheory::glr_scan_backward"} <= names

    class Watched(torch.Tensor):
        pass

    plain = tuple(x.detach() for x in leaves)
    for i in range(3):
        assert eager.watched(plain[:i] + (plain[i].as_subclass(Watched),) + plain[i + 1:]), i


def _product(x: torch.Tensor, y: torch.Tensor, k: float) -> torch.Tensor:
    return x * y * k


_product_op = torch.library.custom_op("glrtheory_tests::product", _product, mutates_args=())
_RULES_SAW = []


def _product_setup(ctx, inputs, output):
    x, y, ctx.k = inputs
    ctx.save_for_backward(x, y)


def _product_backward(ctx, g):
    _RULES_SAW.append(tuple(ctx.needs_input_grad))
    x, y = ctx.saved_tensors
    return g * y * ctx.k, g * x * ctx.k, None


_product_eager = eager.eager(_product_op, _product, _product_setup, _product_backward)


@pytest.mark.parametrize("direct", [True, False])
def test_the_rules_see_needs_input_grad_of_the_inputs_alone(direct, monkeypatch):
    """Past the dispatcher as through it, the backward rule's ``ctx.needs_input_grad`` lists the op's inputs."""
    monkeypatch.setattr(eager, "DIRECT", direct)
    x, y = torch.randn(3, requires_grad=True), torch.randn(3)
    _RULES_SAW.clear()
    (gx,) = torch.autograd.grad(_product_eager(x, y, 2.0).sum(), [x])
    assert torch.equal(gx, 2 * y) and _RULES_SAW == [(True, False, False)]
