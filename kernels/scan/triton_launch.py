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

``bind(kernel, grid, *args, **kwargs)`` fixes a launch's grid and every argument but those marked ``ARG``: a
call site that launches the same kernel many times with only its tensors changing (``readout_triton``'s plans)
then pays for those tensors alone, keyed by their dtype and 16-byte alignment (the bound arguments were keyed
once).

Direct launches hand Triton's launcher each tensor's address as an int (``_addresses``): given a tensor, the
launcher calls its ``data_ptr`` and asks the driver whether the address is a device pointer
(``cuPointerGetAttribute``), once per tensor and launch. A bound launch takes its bound tensors' addresses once.
Launches go to the current device (as Triton's own do): the callers (``glr_scan``, ``glr_readout``) check that
their tensors share one device and make it current (``current_device``).
"""
from __future__ import annotations

import functools

from torch import Tensor
from triton import knobs
from triton.runtime.driver import driver
from triton.runtime.jit import JITFunction


#: False: every launch goes through the JIT (``benchmarks/gpu_layer.py --jit-launches`` times both ways).
DIRECT = True
#: ``bind``'s placeholder for an argument given at each launch.
ARG = object()


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

    def direct(self) -> bool:
        """Whether launches may skip the JIT: ``DIRECT``, and no pre-run or launch hook set."""
        hooks = (knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook)
        return DIRECT and not self.fn.pre_run_hooks and not any(h is not None and getattr(h, "calls", True)
                                                               for h in hooks)

    def launch(self, grid, *args, **kwargs):
        """Launch on ``grid`` (a tuple of one to three ints)."""
        if not self.direct():
            return self.fn[grid](*args, **kwargs)
        device = _device()
        addresses = _addresses(args)
        key = (device, *_key(args, addresses), *zip(kwargs, _key(kwargs.values())))
        entry = self.compiled.get(key)
        if entry is None:
            kernel = self.fn[grid](*args, **kwargs)                  # compiles (once per key) and launches
            names = self.fn.arg_names[len(args):]
            self.compiled[key] = (kernel, names) if set(names) <= set(kwargs) else (None, None)
            return kernel
        kernel, names = entry
        if kernel is None:                                        # arguments left to their defaults: the JIT
            return self.fn[grid](*args, **kwargs)
        _run(kernel, grid, device, addresses, [kwargs[name] for name in names])
        return kernel


def _addresses(values) -> list:
    """values with each tensor replaced by its address (an int, which Triton's launcher takes as it is)."""
    return [x.data_ptr() if isinstance(x, Tensor) else x for x in values]


def _key(values, addresses=None) -> list:
    """What Triton specializes each of values on: a tensor's dtype and 16-byte alignment (of its address, from
    ``addresses`` where given), anything else by type and value (1, True and 1.0 are equal as keys but compile
    differently)."""
    addresses = _addresses(values) if addresses is None else addresses
    return [(x.dtype, not p & 15) if isinstance(x, Tensor) else (x.__class__, x) for x, p in zip(values, addresses)]


def _run(kernel, grid, device: int, args, constexprs) -> None:
    """Run a compiled kernel on grid with its arguments, then its constexprs, in signature order."""
    kernel.run(*grid, *(1,) * (3 - len(grid)), _stream(device), kernel.function, kernel.packed_metadata,
               None, None, None, *args, *constexprs)


def launcher(fn):
    """Decorator: ``@launcher`` above ``@triton.jit`` (module docstring); the interpreter's kernels as they are."""
    return Launcher(fn) if isinstance(fn, JITFunction) else fn


class Bound:
    """``kernel[grid](*args, **kwargs)`` with the arguments marked ``ARG`` given at each call, in their order
    (``bind``)."""

    def __init__(self, kernel, grid, args, kwargs):
        self.kernel, self.grid, self.args, self.kwargs = kernel, tuple(grid), list(args), kwargs
        self.slots = [i for i, x in enumerate(args) if x is ARG]
        self.addresses = _addresses(self.args)      # the bound tensors' (the Bound keeps them alive)
        self.compiled: dict = {}      # the device and the given arguments' key -> (compiled kernel, constexprs)

    def arguments(self, given, bound=None) -> list:
        """The positional arguments (``bound``, else those bound) with ``given`` in the ``ARG`` places."""
        if len(given) != len(self.slots):
            raise TypeError(f"{self.kernel.__name__} bound with {len(self.slots)} ARG places, given {len(given)}")
        args = list(self.args if bound is None else bound)
        for i, x in zip(self.slots, given):
            args[i] = x
        return args

    def __call__(self, *given):
        kernel = self.kernel
        if not isinstance(kernel, Launcher):                      # the interpreter's
            return kernel[self.grid](*self.arguments(given), **self.kwargs)
        if not kernel.direct():
            return kernel.fn[self.grid](*self.arguments(given), **self.kwargs)
        device = _device()
        addresses = _addresses(given)
        key = (device, *_key(given, addresses))
        entry = self.compiled.get(key)
        if entry is None:
            compiled = kernel.launch(self.grid, *self.arguments(given), **self.kwargs)
            names = kernel.fn.arg_names[len(self.args):]
            if set(names) <= set(self.kwargs):
                self.compiled[key] = (compiled, [self.kwargs[name] for name in names])
            return compiled
        compiled, constexprs = entry
        _run(compiled, self.grid, device, self.arguments(addresses, self.addresses), constexprs)
        return compiled


def bind(kernel, grid, *args, **kwargs) -> Bound:
    """A launch of kernel (a ``Launcher`` or, under the interpreter, the kernel itself) on grid whose arguments
    marked ``ARG`` are given at each call: ``bind(k, grid, ARG, n, ARG, BLOCK=16)(x, y)`` launches
    ``k[grid](x, n, y, BLOCK=16)``. A call keys its compiled kernel by the device and the given arguments only
    (``_key``): the bound ones, keyed at the first call, must not change (a bound tensor's contents may)."""
    return Bound(kernel, grid, args, kwargs)
