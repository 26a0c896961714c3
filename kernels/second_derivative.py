"""Backwards without a second derivative. Their kernels record no graph, so a gradient taken with
``create_graph=True`` (as ``torch.func`` transforms take it) would leave out their second-order terms; torch's
``once_differentiable`` does not stop that where ``autograd.grad(..., inputs=)`` never reaches its error node, or
where no incoming gradient requires grad. ``no_second_derivative`` refuses such a gradient when it is taken."""
from __future__ import annotations

import functools

import torch

from glrtheory.errors import GLRError


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
