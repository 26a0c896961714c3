"""Make the Triton CPU interpreter (``TRITON_INTERPRET=1``) compute what the GPU computes, and fast enough.

Applied once, before the first launch, by the Triton backend when the interpreter is on:

* loop bounds: the 3.6 interpreter turns them into ints with ``int(array of size 1)``, which NumPy >= 2.4
  refuses; that one conversion is patched (and restored after each launch, like the interpreter's own);
* float32 -> bfloat16 casts: the interpreter truncates, the GPU rounds to nearest even; the cast is done
  by torch (round to nearest even) instead, so bf16 results match the GPU's rounding;
* integer-overflow checks are skipped: they take most of the interpreter's time, and the host bounds every
  offset instead (``MAX_ELEMENTS``);
* ``triton.language`` is patched once a launch: the interpreter patches it again (every builtin, found by
  ``inspect.getmembers``) at each call of a ``@triton.jit`` helper inside a kernel, and never undoes that. Every
  kernel module reads it as ``tl``, so the launch's own patches, in force until it ends, serve its helpers; only a
  helper whose module also holds ``triton.language.core`` (``tl.zeros``') patches once more, undone at the end.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch


def apply() -> None:
    """Patch the interpreter (idempotent)."""
    import triton.language as tl
    from triton.runtime import interpreter

    builder = getattr(interpreter, "interpreter_builder", None)
    if builder is not None and hasattr(builder.options, "sanitize_overflow"):
        builder.options = dataclasses.replace(builder.options, sanitize_overflow=False)
    patch = getattr(interpreter, "_patch_lang_tensor", None)
    convert = getattr(interpreter, "_convert_float", None)
    if patch is None or convert is None or getattr(patch, "glrtheory", False):
        return              # another interpreter layout (tested with triton 3.6 and 3.9): leave it alone

    def patched(tensor, scope):
        patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    def convert_rounding(values, input_dtype, output_dtype, rounding_mode):
        if input_dtype == tl.float32 and output_dtype == tl.bfloat16:
            x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(torch.bfloat16)
            return x.view(torch.int16).numpy().view(np.uint16).reshape(np.shape(values))
        return convert(values, input_dtype, output_dtype, rounding_mode)

    patched.glrtheory = True
    interpreter._patch_lang_tensor = patched
    interpreter._convert_float = convert_rounding
    _once_a_launch(interpreter)


class _InForce:
    """A helper's call inside a launch: the patches it needs are in force until the launch ends."""

    def restore(self) -> None:
        pass


def _languages(fn) -> set:
    """The modules the interpreter patches for ``fn``: ``triton.language`` and ``triton.language.core`` where fn's
    module holds them (``tl.zeros``' module holds ``core``)."""
    import triton.language as tl

    return {v.__name__ for v in fn.__globals__.values() if v is tl or v is tl.core}


def _once_a_launch(interpreter) -> None:
    """Inside a launch (``GridExecutor.__call__``), ``_patch_lang(fn)`` patches only where fn's module holds a module
    not yet patched, the launch's own call first; the launch's end undoes every patch it made, the latest first.
    Outside a launch (a helper called from Python) it is the interpreter's own."""
    patch_lang, call = interpreter._patch_lang, interpreter.GridExecutor.__call__
    launch = None                                   # (modules patched, their scopes) while a launch runs

    def once(fn):
        if launch is None:
            return patch_lang(fn)
        languages = _languages(fn)
        if not languages <= launch[0]:
            launch[1].append(patch_lang(fn))
            launch[0].update(languages)
        return _InForce()

    def launched(self, *args, **kwargs):
        nonlocal launch
        outer, launch = launch, (set(), [])
        try:
            return call(self, *args, **kwargs)
        finally:
            scopes, launch = launch[1], outer
            for scope in reversed(scopes):
                scope.restore()

    interpreter._patch_lang = once
    interpreter.GridExecutor.__call__ = launched
