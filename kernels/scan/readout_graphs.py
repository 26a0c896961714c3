"""The Triton readout's forward and backward replayed as CUDA graphs, where the host, not the GPU, sets the pace.

Eager, each call of the aligned readout (``readout_triton``) costs the host its Python, its allocations and up to
eight launches: about 0.25 ms forward and 1.1 ms forward + backward on the H200's host (``gpu_launch.py``,
gpu_calls/call80), about as much as the kernels take at a layer's size (B8 T2048, 8 heads of 128), so that a layer
waits on its host. A ``Captured`` instance holds static copies of q, k, v, a and b, and its plan's forward and
backward (``_Plan.forward``, ``_Plan.backward`` with every gradient) each captured once as a CUDA graph on them: a
call copies its inputs in (one copy per buffer they share: a layer's q, k, v are one, ``Layout``), replays the
forward and clones the output; its backward copies dO in, replays and clones the gradients (dq, dk, dv in one
buffer, da, db in another). A ``transient`` call (``glr_readout``'s; a layer's) hands out the graphs' own output
and gradients instead. The host's work is then a few torch calls each way; the GPU's grows by the copies.

An instance holds one forward's saved state until its backward has run or its autograd context is freed (at once
without grad; ``Lease``), so that another forward meanwhile takes another instance: at most ``graphs`` (a setting)
per signature, each capturing on its first use; with all of them leased a call runs eagerly. A second backward
through the same forward (``retain_graph``) after its instance replayed another forward recomputes eagerly.
Graphs are used for problems of at most ``graph_elements`` (a setting) elements per q (``B T H d_k``), where the
host's time is the larger; for CUDA tensors only, outside another capture and outside a ``paused`` block (a layer
captured whole as a CUDA graph runs the readout as it is: ``recordable``) and where the plan's backward runs in its
kernels alone (no torch autograd), for at most ``readout_triton.GRAPHED_SIGNATURES`` signatures a tables object
(``kept``). A signature whose capture fails runs eagerly from then on (``failures`` says why).
"""
from __future__ import annotations

import contextlib

import torch

Tensor = torch.Tensor

#: Why a signature's capture failed (it then runs eagerly), by signature.
failures: dict = {}


def cuda_record(forward, backward):
    """``(outputs, replay_forward, grads, replay_backward)``: forward() and then backward(outputs), each run once on a
    side stream (compiling and warming what they call), then each captured as a CUDA graph, the two sharing one
    memory pool (``torch.cuda.make_graphed_callables`` does the same). The captures refuse unsafe CUDA calls from this
    thread only (``thread_local``), so that other threads (a process group's watchdog) carry on meanwhile."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        backward(forward())
    torch.cuda.current_stream().wait_stream(side)
    first, second = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
    with torch.cuda.graph(first, capture_error_mode="thread_local"):
        outputs = forward()
    with torch.cuda.graph(second, pool=first.pool(), capture_error_mode="thread_local"):
        grads = backward(outputs)
    return outputs, first.replay, grads, second.replay


#: How instances capture (tests replace it by an eager stand-in on the CPU).
RECORD = cuda_record
#: Open ``paused`` blocks: while any is open, readout calls take no instance (``on``).
_pauses = [0]


@contextlib.contextmanager
def paused():
    """Readout calls inside run eagerly (a caller recording its own graphs around them: ``layer_graphs``)."""
    _pauses[0] += 1
    try:
        yield
    finally:
        _pauses[0] -= 1


def on() -> bool:
    """Whether readout calls may take instances now (no ``paused`` block open)."""
    return not _pauses[0]


def recordable(x: Tensor) -> bool:
    """Whether a call on tensors like x may record and replay graphs now: no ``paused`` block open, and on CUDA outside
    another capture (or on the CPU where a test's stand-in records)."""
    if not on():
        return False
    return not torch.cuda.is_current_stream_capturing() if x.is_cuda else RECORD is not cuda_record


class Layout:
    """Where tensors lie in the buffers (storages) they share: each buffer's span, the elements from the lowest any of
    them reads to past the highest, and each tensor's ``(buffer, offset in the span, shape, stride)``. Tensors laid
    out alike (``key``) are copied in one copy per buffer (a layer's q, k, v, slices of one projection: one copy),
    and cloned so."""

    def __init__(self, tensors):
        buffers, offsets = Layout.placement(tensors)
        ends = [o + sum((n - 1) * s for n, s in zip(x.shape, x.stride())) + 1 if x.numel() else o
                for x, o in zip(tensors, offsets)]
        count = max(buffers) + 1
        self.spans = [max(e for b, e in zip(buffers, ends) if b == i) for i in range(count)]
        self.first = [buffers.index(i) for i in range(count)]
        self.spots = [(b, o, tuple(x.shape), x.stride()) for x, b, o in zip(tensors, buffers, offsets)]

    @staticmethod
    def placement(tensors) -> tuple[list[int], list[int]]:
        """Each tensor's buffer (numbered in order of first appearance; one storage and dtype) and its offset from
        the lowest element that any of that buffer's tensors starts at."""
        places = [(x.untyped_storage().data_ptr(), x.dtype) for x in tensors]
        low = {}
        for place, x in zip(places, tensors):
            low[place] = min(low.get(place, x.storage_offset()), x.storage_offset())
        number = {place: i for i, place in enumerate(low)}
        return [number[p] for p in places], [x.storage_offset() - low[p] for p, x in zip(places, tensors)]

    @staticmethod
    def key(tensors) -> tuple:
        """Equal for tensors laid out alike, given their shapes: their placement and strides."""
        buffers, offsets = Layout.placement(tensors)
        return (tuple(buffers), tuple(offsets), *(x.stride() for x in tensors))

    def flat(self, tensors) -> list[Tensor]:
        """Each buffer's span in tensors laid out as these, flat (views)."""
        out = []
        for i, j in enumerate(self.first):
            x = tensors[j]
            out.append(x.as_strided((self.spans[i],), (1,), x.storage_offset() - self.spots[j][1]))
        return out

    def views(self, buffers) -> list[Tensor]:
        """The tensors as views of buffers (flat, one per buffer)."""
        return [buffers[i].as_strided(shape, stride, offset) for i, offset, shape, stride in self.spots]


class Captured:
    """One signature's forward and backward captured on static inputs (module docstring)."""

    def __init__(self, plan_for, q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor):
        self.layout = Layout((q, k, v, a, b))
        self.buffers = [x.clone() for x in self.layout.flat((q, k, v, a, b))]
        self.inputs = self.layout.views(self.buffers)
        plan = plan_for(*self.inputs)
        self.grad = torch.zeros(v.shape, dtype=q.dtype, device=q.device)
        self.leased, self.generation = False, 0

        def backward(outputs):
            return plan.backward(self.grad, (*self.inputs, *outputs[1:]), (True,) * 5)

        self.outputs, self._forward, self.grads, self._backward = RECORD(lambda: plan.forward(*self.inputs),
                                                                        backward)
        self.grad_layout = Layout(self.grads)
        self.grad_buffers = self.grad_layout.flat(self.grads)

    def forward(self, inputs, copy: bool = True) -> Tensor:
        """The readout of inputs (q, k, v, a, b, laid out as ``layout``): copied in, the forward replayed; its output
        cloned, or without ``copy`` the graph's own (the next replay overwrites it)."""
        for static, x in zip(self.buffers, self.layout.flat(inputs)):
            static.copy_(x)
        self._forward()
        return self.outputs[0].clone() if copy else self.outputs[0]

    def backward(self, grad: Tensor, need, copy: bool = True) -> tuple:
        """``(dq, dk, dv, da, db)`` of the last forward for dO = grad (clones, one per buffer they share, or without
        ``copy`` the graph's own; None where not needed)."""
        self.grad.copy_(grad)
        self._backward()
        grads = self.grad_layout.views([x.clone() for x in self.grad_buffers]) if copy else self.grads
        return tuple(g if want else None for g, want in zip(grads, need))


class Lease:
    """An instance taken by one forward (its ``generation``), given back at its backward (``release``) or when this
    lease, kept by the forward's autograd context, is freed; ``valid`` while no later forward has replayed it."""

    def __init__(self, captured: Captured):
        self.captured = captured
        captured.leased = True
        captured.generation += 1
        self.generation = captured.generation

    @property
    def valid(self) -> bool:
        return self.captured.generation == self.generation

    def release(self) -> None:
        if self.valid:
            self.captured.leased = False

    def spend(self) -> None:
        """Release, and make this lease invalid: its backward consumed what its forward kept (``layer_graphs``)."""
        if self.valid:
            self.captured.leased = False
            self.captured.generation += 1

    __del__ = release


def kept(tables) -> dict:
    """The captured instances kept with these tables, by signature."""
    return tables.memo(("readout_graphs",), dict)


def lease(signatures: dict, key, limit: int, most: int, build) -> Lease | None:
    """A lease on an instance of signature key (``signatures[key]``, a list) not leased now, or on a new one
    (``build()``) if it has fewer than limit; None where all are leased, where key is new and signatures holds most
    already, or where the signature's capture failed before (then ``failures[key]`` says why; a failed capture records
    itself there and gives None)."""
    if key in failures or key not in signatures and len(signatures) >= most:
        return None
    instances = signatures.setdefault(key, [])
    free = next((x for x in instances if not x.leased), None)
    if free is None and len(instances) < limit:
        try:
            free = build()
        except Exception as err:                    # noqa: BLE001 -- recorded; the readout runs eagerly
            failures[key] = f"{type(err).__name__}: {err}"
            return None
        instances.append(free)
    return None if free is None else Lease(free)
