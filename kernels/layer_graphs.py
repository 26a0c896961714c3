"""A readout layer's training step replayed as CUDA graphs: ``GLRMixer.forward`` and its backward, whole.

Eager, a readout layer's step (B8 T2048, d_model 1024, 8 heads of 128 on an H200) costs its host about 2.6 ms of
Python, autograd and launches against 1.76 ms of kernels, so that a slower host sets its pace
(``benchmarks/gpu_layer.py``; the readout's own graphs, ``scan/readout_graphs``, take only the readout off the host).
Here a ``Step`` holds a static copy of x and the layer's forward (under the caller's autocast state, its weight cache
off) and the backward of its output in x and every parameter that needs a gradient, each captured once as a CUDA
graph on them (``readout_graphs.RECORD``). A call copies x in, replays the forward and clones the output; its
backward copies dY in, replays and clones the gradients, which autograd then hands on (to x's producer, or added
into ``.grad`` as for any parameter, so that accumulation, ``zero_grad`` and DDP's hooks work as eagerly). The host's
work is then a few torch calls each way; the GPU's grows by the copies.

As the readout's instances (``readout_graphs.lease``): a step is leased from its forward to its backward, another
forward meanwhile takes another, up to ``graphs`` (the readout's setting) a signature, then runs eagerly; a second
backward through one forward recomputes eagerly (``Replayed``). Parameters are read where they are (an
optimizer updates them in place); replacing one (``.to``, a new ``Parameter``) makes a new signature. Graphs are used
on CUDA with grad enabled, outside ``torch.compile`` and outside another capture, for readout layers whose q has at
most ``graph_elements`` (the readout's setting) elements and at most ``SIGNATURES`` signatures a layer; a signature
whose capture fails runs eagerly from then on (``readout_graphs.failures`` says why). The readout's setting
``layer_graphs`` False (or ``graphs`` 0) turns them off.
"""
from __future__ import annotations

import weakref

import torch

from .second_derivative import no_second_derivative
from .scan import readout_graphs as graphs
from .scan.current_device import on_input_device

Tensor = torch.Tensor

#: Most signatures (x's shape, dtype and grad, the autocast state, the parameters) a layer keeps graphs of.
SIGNATURES = 8

#: Each layer's steps, by signature (outside the module: ``copy.deepcopy`` of a model copies no CUDA graph).
_kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _grads(y: Tensor, wrt: list, grad: Tensor) -> tuple:
    """``d<y, grad> / d wrt``, zeros for a tensor y does not depend on (a lag bias that no table reads, ssm's),
    where eager autograd leaves no gradient: the replayed and the recomputed backward return one per input."""
    return torch.autograd.grad(y, wrt, grad, allow_unused=True, materialize_grads=True)


class Step:
    """One signature's forward and backward captured on a static x (module docstring)."""

    def __init__(self, layer, x: Tensor, params: tuple, needs: tuple, autocast: tuple):
        self.x = x.detach().clone()
        names = [name for name, _ in layer.named_parameters()]
        self.needs, self.autocast, self.grad, self.latest = needs, autocast, None, None
        device, enabled, dtype = autocast
        layer_of = weakref.ref(layer)

        def forward():
            """The layer on fresh leaves sharing x's and the parameters' memory, so that the recorded graph has
            gradient accumulators of its own, on the recording's stream (a parameter's own may be held elsewhere,
            by DDP for one, on another stream, which a capture must not wait on)."""
            leaves = [t.detach().requires_grad_(need) for t, need in zip((self.x, *params), needs)]
            with torch.enable_grad(), torch.autocast(device, dtype, enabled=enabled, cache_enabled=False), \
                    graphs.paused():
                y = torch.func.functional_call(layer_of(), dict(zip(names, leaves[1:])), (leaves[0],),
                                               strict=True)
            self.latest = y, [t for t, need in zip(leaves, needs) if need]
            return (y.detach(),)

        def backward(outputs):             # the latest forward's graph (the one recorded, or a stand-in's rerun)
            (y, wrt), self.latest = self.latest, None
            if self.grad is None:
                self.grad = torch.zeros_like(outputs[0])
            return _grads(y, wrt, self.grad)

        self.outputs, self._forward, self.grads, self._backward = graphs.RECORD(forward, backward)
        self.leased, self.generation = False, 0

    def forward(self, x: Tensor) -> Tensor:
        """The layer's output for x: copied in, the forward replayed, its output cloned."""
        self.x.copy_(x)
        self._forward()
        return self.outputs[0].clone()

    def backward(self, grad: Tensor) -> tuple:
        """``(dx, dparam, ...)`` of the last forward for dY = grad, clones (None where not needed)."""
        self.grad.copy_(grad)
        self._backward()
        grads = iter(self.grads)
        return tuple(next(grads).clone() if need else None for need in self.needs)


@on_input_device
def replay(layer, x: Tensor) -> Tensor | None:
    """``layer(x)`` replayed from a leased ``Step``, or None where it runs eagerly (module docstring)."""
    if torch.compiler.is_compiling() or not torch.is_grad_enabled() or not graphs.recordable(x):
        return None
    try:
        from .scan.readout_triton import _setting
    except ImportError:                         # no Triton: no Triton readout, whose settings these are
        return None
    setting = _setting()
    q_elements = x.shape[0] * x.shape[1] * layer.n_heads * layer.d_key
    if not (setting["graphs"] and setting["layer_graphs"]) or q_elements > setting["graph_elements"]:
        return None
    params = tuple(layer.parameters())
    needs = (x.requires_grad, *(p.requires_grad for p in params))
    if not any(needs):
        return None
    device = x.device.type
    autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
    key = (tuple(x.shape), x.dtype, x.device, needs, autocast,
           *((p.data_ptr(), p.dtype) for p in params))
    lease = graphs.lease(_kept.setdefault(layer, {}), key, setting["graphs"], SIGNATURES,
                         lambda: Step(layer, x, params, needs, autocast))
    return None if lease is None else Replayed.apply(lease, layer, x, *params)


class Replayed(torch.autograd.Function):
    """``layer(x)`` by a leased ``Step``'s replays. A step's backward replays once a forward: the captured backward
    frees the forward's saved tensors as it goes, and its later kernels reuse their memory; so a second backward
    (``retain_graph``), like one after the step replayed another forward, recomputes eagerly."""

    @staticmethod
    def forward(ctx, lease, layer, x, *params):
        ctx.lease, ctx.layer = lease, layer
        ctx.save_for_backward(x)
        return lease.captured.forward(x)

    @staticmethod
    @no_second_derivative("a GLR layer's CUDA graphs")
    def backward(ctx, grad):
        lease = ctx.lease
        if lease.valid:
            grads = lease.captured.backward(grad)
            lease.spend()
            return (None, None, *grads)
        x, = ctx.saved_tensors                  # a second backward, or its step replayed another forward: recompute
        needs = ctx.needs_input_grad[2:]
        device, enabled, dtype = lease.captured.autocast       # the forward's (its signature's) autocast state
        leaf = x.detach().requires_grad_(needs[0])
        wrt = [t for t, need in zip((leaf, *ctx.layer.parameters()), needs) if need]
        with torch.enable_grad(), torch.autocast(device, dtype, enabled=enabled):
            found = iter(_grads(ctx.layer.forward_eagerly(leaf), wrt, grad))
        return (None, None, *(next(found) if need else None for need in needs))
