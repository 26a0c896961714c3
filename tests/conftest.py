import os

# BLAS thread pools fight over the 2 cores of the CI machine: a 3x3 triangular solve took 24 ms under
# load with two threads. Set before numpy (imported by torch below) starts its pool.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:                                    # the Triton kernels run under the CPU interpreter where there is no GPU;
    import torch                        # the variable must be set before anything imports triton (torch may
    _cuda = torch.cuda.is_available()   # import it lazily), or the kernels are compiled, not interpreted
except ImportError:
    _cuda = False
if not _cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import pytest
from hypothesis import settings

from tests.helpers import rng_seed

settings.register_profile("ci", max_examples=25, deadline=None, print_blob=True)
settings.load_profile("ci")


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a shared 2-core machine, OpenMP threads that wait for each other make the small
    triangular solves of the scan ~1000x slower (measured 0.4 s against 0.3 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rng():
    """A freshly seeded generator; the seed is printed, and ``GLR_TEST_SEED=<seed>`` replays a failure with it."""
    seed = rng_seed()
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture
def programs_in_reverse(monkeypatch):
    """Under the interpreter, every launch's programs run in reverse order of their ids, on every grid axis. A GPU
    runs a launch's programs at once, in no order; the interpreter runs them in order, so a program that writes
    what a later one owns goes unseen there when the later one overwrites it with the right values."""
    from triton.runtime import interpreter

    builder = interpreter.interpreter_builder
    set_index = builder.set_grid_idx

    def reversed_index(x, y, z):
        nx, ny, nz = builder.grid_dim
        set_index(nx - 1 - x, ny - 1 - y, nz - 1 - z)

    monkeypatch.setattr(builder, "set_grid_idx", reversed_index)


#: NaN in the storage of the interpreter's floats (bfloat16 is held as uint16).
_NAN_BITS = {np.dtype(np.uint16): 0x7FC0}


@pytest.fixture
def nan_masked_lanes(monkeypatch):
    """Under the Triton interpreter, a masked load without ``other`` gives NaN in its masked-off float lanes. Triton
    leaves those lanes unspecified (on a GPU, whatever the registers held); the interpreter gives 0, so a kernel that
    lets them into a result (``0 * x`` is NaN where x is NaN) passes there by luck. With this fixture it gives NaN."""
    if _cuda:
        return
    try:
        from triton.runtime import interpreter
    except ImportError:             # no Triton: no Triton kernels either
        return
    builder = interpreter.interpreter_builder
    load = builder.create_masked_load

    def nan_lanes(ptrs, mask, other, *args, **kwargs):
        dtype = ptrs.get_element_ty()
        if other is None and dtype.is_floating():
            stored = interpreter._get_np_dtype(dtype)
            fill = np.nan if stored.kind == "f" else _NAN_BITS.get(stored)
            if fill is not None:
                other = interpreter.TensorHandle(np.full(ptrs.data.shape, fill, dtype=stored), dtype)
        return load(ptrs, mask, other, *args, **kwargs)

    monkeypatch.setattr(builder, "create_masked_load", nan_lanes)


@pytest.fixture
def nan_scratch(monkeypatch, nan_masked_lanes):
    """Every float tensor the code allocates uninitialized (``torch.empty``, ``empty_like``, ``empty_strided``,
    ``Tensor.new_empty``) comes filled with NaN, on the CPU only, and so do the masked-off lanes of the Triton
    interpreter's loads without ``other`` (``nan_masked_lanes``). On a GPU such memory holds whatever was there last;
    on the CPU it is often zeros, so a kernel that reads scratch before writing it (or adds into it) passes here by
    luck. With this fixture it gives NaN."""
    if _cuda:
        return

    def filled(allocate):
        def allocate_nan(*args, **kwargs):
            out = allocate(*args, **kwargs)
            return out.fill_(float("nan")) if out.is_floating_point() and out.numel() else out
        return allocate_nan

    for owner, name in ((torch, "empty"), (torch, "empty_like"), (torch, "empty_strided"),
                        (torch.Tensor, "new_empty")):
        monkeypatch.setattr(owner, name, filled(getattr(owner, name)))
