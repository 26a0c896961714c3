"""The derivatives the kernels do not take, refused rather than silently wrong.

Backwards without a second derivative: their kernels record no graph, so a gradient taken with
``create_graph=True`` would leave out their second-order terms; torch's ``once_differentiable`` does not stop that
where ``autograd.grad(..., inputs=)`` never reaches its error node, or where no incoming gradient requires grad.
``no_second_derivative`` refuses such a gradient when it is taken. Forward mode and ``torch.func`` transforms:
the kernels have no tangent or batching rule, and ``torch.func.grad`` takes its gradients with ``create_graph``;
``torch.func.jvp`` through ``glr_scan`` returned a zero tangent. ``reverse_mode_only`` refuses them at the entry
points (``glr_scan``, ``glr_readout``)."""
from __future__ import annotations

import functools

import torch
from torch.autograd import forward_ad

from glrtheory.errors import GLRError


def reverse_mode_only(what: str, tensors) -> None:
    """A ``GLRError`` naming ``what`` under a ``torch.func`` transform (grad, vmap, jvp, jacrev, ...) or when a
    tensor is a dual tensor of ``torch.autograd.forward_ad``; nothing otherwise (nor while compiling)."""
    if torch.compiler.is_compiling():
        return
    if torch._C._are_functorch_transforms_active():
        raise GLRError(f"{what} does not run under torch.func transforms (grad, vmap, jvp, jacrev, ...): its kernels "
                       "have no batching or forward-mode rule and their backward records no graph; call it "
                       "directly and take gradients with torch.autograd (backward() or autograd.grad)")
    if forward_ad._current_level >= 0 and any(isinstance(x, torch.Tensor) and forward_ad.unpack_dual(x).tangent
                                               is not None for x in tensors):
        raise GLRError(f"{what} has no forward-mode derivative (got a dual tensor of torch.autograd.forward_ad); "
                       "take gradients in reverse mode (backward() or autograd.grad)")


def no_second_derivative(what: str):
    """Decorator of an autograd backward ``(ctx, *grads)``: a ``GLRError`` naming ``what`` under
    ``create_graph=True`` (grad mode on in the backward), else the backward as it is."""
    def wrap(backward):
        @functools.wraps(backward)
        def checked(ctx, *grads):
            if torch.is_grad_enabled():
                raise GLRError(f"no second derivative through {what}: the backward records no graph, so a "
                               "gradient taken with create_graph=True (as torch.func transforms take one) would leave "
                               "out its terms; take the gradient without create_graph")
            return backward(ctx, *grads)
        return checked
    return wrap
