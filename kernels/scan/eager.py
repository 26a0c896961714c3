"""Custom ops (``torch.library.custom_op``) called past the dispatcher where nothing needs to see them.

Through the dispatcher a Python custom op binds its arguments to the schema, checks that no output aliases an
input and runs its autograd wrapper, on every call: a forward of ``glr_scan`` at a tile of power2's readout (B8
T2048 H8, 512 columns, bf16) took an H200's host 0.54 ms through it, where the Triton op's function alone took
0.23 (``python benchmarks/gpu_host.py``, gpu_calls/call170); past it, 0.34 against 0.25 (call171, another
machine), and its forward + backward 1.38 ms against 2.15. ``eager(op, fn, setup_context, backward)`` registers
the op's autograd rules and returns a callable that runs ``fn`` itself, its gradients by the same rules through an
``autograd.Function``, unless something watches the dispatcher: ``torch.compile`` tracing, a dispatch or
torch-function mode (``FlopCounterMode``, fake tensors), a functorch transform (which ``glr_scan`` refuses before
it gets here), the profiler, or an input that overrides torch functions. Those calls go through the op as before,
so its FLOP formula, fake kernel, compiled graphs and profiler entries are unchanged. A gradient taken with
``create_graph`` is refused either way.
"""
from __future__ import annotations

import torch
from torch.overrides import has_torch_function
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ..second_derivative import no_second_derivative

#: False: every call goes through the dispatcher (benchmarks time both ways).
DIRECT = True


def watched(inputs=()) -> bool:
    """Whether a call must go through the dispatcher: compiling, a dispatch or torch-function mode, a functorch
    transform or the profiler active, or an input that overrides torch functions (a tracer's proxy, a tensor
    subclass); or ``DIRECT`` off."""
    return (not DIRECT or torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None
            or torch._C._is_torch_function_mode_enabled() or torch._C._are_functorch_transforms_active()
            or torch.autograd._profiler_enabled()
            or has_torch_function(tuple(x for x in inputs if isinstance(x, torch.Tensor))))


class _Direct(torch.autograd.Function):
    """``fn(*inputs)`` with the op's ``setup_context`` and ``backward`` as its autograd rules; the rules see
    ``ctx.needs_input_grad`` of the inputs alone, as through the op. Once differentiable: the backward's kernels
    record no graph, so a gradient taken with ``create_graph=True`` raises (``no_second_derivative``), here as
    through the op."""

    @staticmethod
    def forward(ctx, fn, setup_context, backward, *inputs):
        output = fn(*inputs)
        setup_context(ctx, inputs, output)
        ctx.rule = backward
        return output

    @staticmethod
    def backward(ctx, *grads):
        ctx.needs_input_grad = ctx.needs_input_grad[3:]
        got = ctx.rule(ctx, *grads)                      # one per input; a list input's [None, ...] means None
        return (None, None, None, *(g if g is None or isinstance(g, torch.Tensor) else None for g in got))


def eager(op, fn, setup_context=None, backward=None):
    """``op`` (the custom op of ``fn``) as a callable that runs ``fn`` past the dispatcher where nothing watches it
    (module docstring), with ``backward`` and ``setup_context`` registered as the op's autograd rules (None: the op
    has none, as a backward op)."""
    if backward is not None:
        backward = no_second_derivative(op._qualname.split("::")[-1])(backward)
        op.register_autograd(backward, setup_context=setup_context)

    def run(*inputs):
        if watched(inputs):
            return op(*inputs)
        needs_grad = torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad
                                                     for x in inputs)
        if backward is None or not needs_grad:
            return fn(*inputs)
        return _Direct.apply(fn, setup_context, backward, *inputs)
    return run
