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


def _interpreter():
    """Triton's interpreter module where the kernels run under it (no CUDA, Triton installed), else None."""
    if _cuda:
        return None
    try:
        from triton.runtime import interpreter
    except ImportError:             # no Triton: no Triton kernels either
        return None
    return interpreter


@pytest.fixture
def nan_masked_lanes(monkeypatch):
    """Under the Triton interpreter, a masked load without ``other`` gives NaN in its masked-off float lanes. Triton
    leaves those lanes unspecified (on a GPU, whatever the registers held); the interpreter gives 0, so a kernel that
    lets them into a result (``0 * x`` is NaN where x is NaN) passes there by luck. With this fixture it gives NaN."""
    interpreter = _interpreter()
    if interpreter is None:
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
def bounded_accesses(monkeypatch):
    """Under the Triton interpreter, every lane a load, store or atomic add of a kernel keeps (its mask on) must lie,
    its whole element, inside the storage of a tensor given to that launch; one outside fails the launch, naming the
    kernel. On a GPU such an access reads or writes another tensor's memory, or faults; compute-sanitizer's memcheck
    sees it only where it leaves every allocation (and this machine has no GPU). The interpreter just reads whatever
    host memory is there. Not seen: an access past one tensor of the launch into another (nor by memcheck), and
    block-pointer or descriptor accesses (the kernels use none)."""
    interpreter = _interpreter()
    if interpreter is None:
        return
    launch = {}                     # the running launch: its kernel's name and its tensors' storages, merged

    def collect(arg, spans):
        if isinstance(arg, (tuple, list)):
            for item in arg:
                collect(item, spans)
        elif isinstance(arg, torch.Tensor):
            storage = arg.untyped_storage()
            spans.append((storage.data_ptr(), storage.data_ptr() + storage.nbytes()))

    init = interpreter.GridExecutor._init_args_hst

    def init_recorded(self, args_dev, kwargs):
        args, kwargs_hst = init(self, args_dev, kwargs)
        spans = []
        collect([*args, *kwargs_hst.values()], spans)
        starts, ends = [], []
        for start, end in sorted(spans):
            if starts and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        launch.update(name=self.fn.__name__, starts=np.array(starts, np.uint64), ends=np.array(ends, np.uint64))
        return args, kwargs_hst

    def check(what, ptrs, mask):
        addresses = ptrs.data[mask.data]                # the builder always passes a mask (all on if none)
        if not addresses.size or not launch:
            return
        size = np.uint64(interpreter._get_np_dtype(ptrs.get_element_ty()).itemsize)
        span = np.searchsorted(launch["starts"], addresses, side="right") - 1
        inside = (span >= 0) & (addresses + size <= launch["ends"][np.maximum(span, 0)])
        if not inside.all():
            bad = int(np.count_nonzero(~inside))
            raise AssertionError(f"{launch['name']}: a {what} of {bad} lane(s) outside every tensor of the launch")

    builder = interpreter.interpreter_builder
    load, store, atomic = builder.create_masked_load, builder.create_masked_store, builder.create_atomic_rmw

    def checked_load(ptrs, mask, *args, **kwargs):
        check("load", ptrs, mask)
        return load(ptrs, mask, *args, **kwargs)

    def checked_store(ptrs, value, mask, *args, **kwargs):
        check("store", ptrs, mask)
        return store(ptrs, value, mask, *args, **kwargs)

    def checked_atomic(op, ptrs, value, mask, *args, **kwargs):
        check("atomic", ptrs, mask)
        return atomic(op, ptrs, value, mask, *args, **kwargs)

    monkeypatch.setattr(interpreter.GridExecutor, "_init_args_hst", init_recorded)
    for name, checked in (("create_masked_load", checked_load), ("create_masked_store", checked_store),
                          ("create_atomic_rmw", checked_atomic)):
        monkeypatch.setattr(builder, name, checked)


@pytest.fixture
def nan_scratch(monkeypatch, nan_masked_lanes, bounded_accesses):
    """Every float tensor the code allocates uninitialized (``torch.empty``, ``empty_like``, ``empty_strided``,
    ``Tensor.new_empty``) comes filled with NaN, on the CPU only, and so do the masked-off lanes of the Triton
    interpreter's loads without ``other`` (``nan_masked_lanes``). On a GPU such memory holds whatever was there last;
    on the CPU it is often zeros, so a kernel that reads scratch before writing it (or adds into it) passes here by
    luck. With this fixture it gives NaN. Every access of a Triton kernel is bounds-checked too
    (``bounded_accesses``)."""
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
