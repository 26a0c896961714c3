"""Entry points run with their input's CUDA device current.

torch's own ops follow their tensors' device, but Triton launches its kernels on the *current* device and
``torch.cuda.graph`` captures on the current device's streams: tensors on ``cuda:1`` while ``cuda:0`` is current (a
model moved with ``.to("cuda:1")``, no ``torch.cuda.set_device``) would meet kernels launched on the wrong GPU, and
graphs that record nothing and replay stale outputs. Backward passes need no guard: autograd runs each device's work
on a thread with that device current.
"""
from __future__ import annotations

import functools

import torch


def on_input_device(fn):
    """``fn`` called with the device of its first tensor argument current, where that is a CUDA device (under
    ``torch.compile`` as it is: compiled code sets its own device)."""
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        x = next((arg for arg in args if isinstance(arg, torch.Tensor)), None)
        if x is None or not x.is_cuda or torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        with torch.cuda.device(x.device):
            return fn(*args, **kwargs)
    return guarded
