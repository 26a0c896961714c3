"""Cheap launches of compiled Triton kernels: ``@launcher`` over ``@triton.jit``.

``kernel[grid](*args, **constexprs)`` through Triton's JIT binds and specializes every argument, builds the
cache key and launch metadata, and calls the (empty) launch hooks on each call, where a layer's GPU then waits
on the host: the eager ``GLRMixer("ssm", readout=True)`` layer's forward + backward (nine launches, B8 T2048
d_model 1024) took 3.69 ms with every launch through the JIT and 2.96 ms launched directly (H200,
gpu_calls/call67). A ``Launcher`` keeps each compiled kernel under a key that determines Triton's
specialization (every argument that is not a tensor by value; a tensor by dtype and whether its address is
16-byte aligned; the keyword arguments; the device) and launches it directly (``CompiledKernel.run``).
The first launch of a key and launches while a launch or pre-run hook is set (profilers) go through the JIT; under
the interpreter (``triton.jit`` then gives no ``JITFunction``) ``launcher`` leaves the kernel as it is. Not seen
after a key's first launch: a change of Triton's debug or instrumentation knobs, or of a global the kernel reads.
"""
from __future__ import annotations

import functools

from torch import Tensor
from triton import knobs
from triton.runtime.driver import driver
from triton.runtime.jit import JITFunction


#: False: every launch goes through the JIT (``benchmarks/gpu_layer.py --jit-launches`` times both ways).
DIRECT = True


def _device() -> int:
    return driver.active.get_current_device()


def _stream(device: int) -> int:
    return driver.active.get_current_stream(device)


class Launcher:
    """A ``triton.jit`` kernel launched as ``kernel[grid](*args, **kwargs)``, compiled kernels reused directly."""

    def __init__(self, fn):
        self.fn = fn
        self.compiled: dict = {}
        functools.update_wrapper(self, fn.fn)

    def __getitem__(self, grid):
        return functools.partial(self.launch, grid)

    def launch(self, grid, *args, **kwargs):
        """Launch on ``grid`` (a tuple of one to three ints)."""
        hooks = (knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook)
        if not DIRECT or self.fn.pre_run_hooks or any(h is not None and getattr(h, "calls", True) for h in hooks):
            return self.fn[grid](*args, **kwargs)
        device = _device()
        # what Triton specializes on: a tensor's dtype and 16-byte alignment, any other argument by type and value
        # (1, True and 1.0 are equal as keys but compile differently); keyword arguments by name too
        key = (device, *[(x.dtype, not x.data_ptr() & 15) if isinstance(x, Tensor) else (x.__class__, x)
                         for x in args],
               *[(name, x.dtype, not x.data_ptr() & 15) if isinstance(x, Tensor) else (name, x.__class__, x)
                 for name, x in kwargs.items()])
        entry = self.compiled.get(key)
        if entry is None:
            kernel = self.fn[grid](*args, **kwargs)                  # compiles (once per key) and launches
            names = self.fn.arg_names[len(args):]
            self.compiled[key] = (kernel, names) if set(names) <= set(kwargs) else (None, None)
            return kernel
        kernel, names = entry
        if kernel is None:                                        # arguments left to their defaults: the JIT
            return self.fn[grid](*args, **kwargs)
        grid = tuple(grid) + (1,) * (3 - len(grid))
        kernel.run(*grid, _stream(device), kernel.function, kernel.packed_metadata,
                   None, None, None, *args, *(kwargs[name] for name in names))
        return kernel


def launcher(fn):
    """Decorator: ``@launcher`` above ``@triton.jit`` (module docstring); the interpreter's kernels as they are."""
    return Launcher(fn) if isinstance(fn, JITFunction) else fn
