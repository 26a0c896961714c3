"""``triton_launch.Launcher``: which launches reuse a compiled kernel, and in which order it gets its arguments.

A fake JIT function (it records its launches and gives a fake compiled kernel that records its runs) stands in
for Triton's, so that the launcher's own logic runs on the CPU. The GPU tests of the scan and the readout run the
real kernels through it (each compiled kernel's later launches take the direct path; ``test_readout_triton``'s
``test_repeated_launches_*`` checks that those give the same results).
"""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from glrtheory.kernels.scan import triton_launch as L  # noqa: E402


class Compiled:
    function, packed_metadata = "function", "metadata"

    def __init__(self, runs):
        self.runs = runs

    def run(self, *args):
        self.runs.append(args)


class FakeJit:
    """A kernel ``(x, n, BLOCK, MODE)`` whose last two are constexprs."""
    arg_names = ["x", "n", "BLOCK", "MODE"]

    def __init__(self):
        self.launches, self.runs, self.pre_run_hooks = [], [], []

    @staticmethod
    def fn(x, n, BLOCK, MODE):
        """The kernel's source."""

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((grid, args, kwargs))
            return Compiled(self.runs)
        return launch


@pytest.fixture
def kernel(monkeypatch):
    monkeypatch.setattr(L, "_device", lambda: 0)
    monkeypatch.setattr(L, "_stream", lambda device: 1234)
    return L.Launcher(FakeJit())


def test_second_launch_runs_the_compiled_kernel_with_constexprs_in_signature_order(kernel):
    x = torch.zeros(8)
    kernel[(2,)](x, 5, MODE="a", BLOCK=16, num_warps=4)
    assert len(kernel.fn.launches) == 1 and kernel.fn.runs == []
    kernel[(2, 3)](x, 5, MODE="a", BLOCK=16, num_warps=4)
    assert len(kernel.fn.launches) == 1
    (run,) = kernel.fn.runs
    assert run[:9] == (2, 3, 1, 1234, "function", "metadata", None, None, None)
    assert run[9:] == (x.data_ptr(), 5, 16, "a")                  # a tensor as its address
    assert kernel.__doc__ == FakeJit.fn.__doc__


@pytest.mark.parametrize("change", ["int", "float", "bool", "dtype", "alignment", "constexpr", "constexpr type",
                                    "warps"])
def test_what_triton_specializes_on_compiles_again(kernel, change):
    x = torch.zeros(16)
    kernel[(1,)](x, 1, BLOCK=16, MODE="a", num_warps=4)
    args = dict(x=x, n=1, BLOCK=16, MODE="a", num_warps=4)
    args.update({"int": dict(n=2), "float": dict(n=1.0), "bool": dict(n=True), "dtype": dict(x=x.double()),
                 "alignment": dict(x=x[1:]), "constexpr": dict(BLOCK=32), "constexpr type": dict(BLOCK=16.0),
                 "warps": dict(num_warps=8)}[change])
    kernel[(1,)](args.pop("x"), args.pop("n"), **args)
    assert len(kernel.fn.launches) == 2 and kernel.fn.runs == []


def test_aligned_views_and_other_values_reuse(kernel):
    x = torch.zeros(64)
    kernel[(1,)](x, 32, BLOCK=16, MODE="a")
    kernel[(4,)](torch.ones(64)[16:], 32, BLOCK=16, MODE="a")        # another tensor, 64 bytes in: aligned
    assert len(kernel.fn.launches) == 1 and len(kernel.fn.runs) == 1


def test_defaulted_arguments_stay_with_the_jit(kernel):
    x = torch.zeros(8)
    for _ in range(3):
        kernel[(1,)](x, 5, BLOCK=16)                # MODE left to a default: the JIT binds it
    assert len(kernel.fn.launches) == 3 and kernel.fn.runs == []


def test_tensors_passed_by_keyword_are_keyed_by_dtype_and_alignment(kernel):
    """Not by identity: another tensor of the same dtype and alignment reuses the compiled kernel."""
    kernel[(1,)](torch.zeros(8), 5, BLOCK=16, MODE=torch.zeros(4))
    kernel[(1,)](torch.zeros(8), 5, BLOCK=16, MODE=torch.ones(4))
    assert len(kernel.fn.launches) == 1 and len(kernel.fn.runs) == 1


def test_pre_run_hooks_go_through_the_jit(kernel):
    x = torch.zeros(8)
    kernel[(1,)](x, 5, BLOCK=16, MODE="a")
    kernel.fn.pre_run_hooks.append(lambda *args, **kwargs: None)
    kernel[(1,)](x, 5, BLOCK=16, MODE="a")
    assert len(kernel.fn.launches) == 2 and kernel.fn.runs == []


def test_launch_hooks_go_through_the_jit(kernel):
    x = torch.zeros(8)
    kernel[(1,)](x, 5, BLOCK=16, MODE="a")
    hook = lambda metadata: None  # noqa: E731
    L.knobs.runtime.launch_enter_hook.add(hook)
    try:
        kernel[(1,)](x, 5, BLOCK=16, MODE="a")
    finally:
        L.knobs.runtime.launch_enter_hook.remove(hook)
    assert len(kernel.fn.launches) == 2 and kernel.fn.runs == []
    kernel[(1,)](x, 5, BLOCK=16, MODE="a")
    assert len(kernel.fn.runs) == 1


def test_interpreted_kernels_are_left_as_they_are():
    fake = FakeJit()
    assert L.launcher(fake) is fake


def test_bound_launch_puts_given_arguments_in_their_places(kernel):
    """``bind``: the ``ARG`` places take the given arguments in order; the first call goes through the launcher,
    later ones run the compiled kernel with the bound arguments and the constexprs in signature order, each tensor,
    given or bound, as its address."""
    x, y = torch.zeros(8), torch.ones(8)
    bound = L.bind(kernel, (3,), L.ARG, 7, MODE="m", BLOCK=32)
    bound(x)
    assert kernel.fn.launches == [((3,), (x, 7), dict(MODE="m", BLOCK=32))] and kernel.fn.runs == []
    bound(y)
    (run,) = kernel.fn.runs
    assert run[:9] == (3, 1, 1, 1234, "function", "metadata", None, None, None)
    assert run[9:] == (y.data_ptr(), 7, 32, "m")
    given_int = L.bind(kernel, (1,), x, L.ARG, BLOCK=16, MODE="a")
    given_int(5)
    given_int(5)
    assert kernel.fn.launches[-1] == ((1,), (x, 5), dict(BLOCK=16, MODE="a")) and kernel.fn.runs[-1][9:] == (
        x.data_ptr(), 5, 16, "a")


@pytest.mark.parametrize("change", ["dtype", "alignment", "int", "bool"])
def test_bound_launch_keys_what_is_given(kernel, change):
    x = torch.zeros(16)
    bound = L.bind(kernel, (1,), L.ARG, L.ARG, BLOCK=16, MODE="a")
    bound(x, 1)
    given = {"dtype": (x.double(), 1), "alignment": (x[1:], 1), "int": (x, 2), "bool": (x, True)}[change]
    bound(*given)
    assert len(kernel.fn.launches) == 2 and kernel.fn.runs == []
    bound(*given)
    assert len(kernel.fn.runs) == 1 and kernel.fn.runs[0][9] == given[0].data_ptr()


def test_bound_launch_with_hooks_or_wrong_arguments(kernel):
    x = torch.zeros(8)
    bound = L.bind(kernel, (1,), L.ARG, 5, BLOCK=16, MODE="a")
    bound(x)
    kernel.fn.pre_run_hooks.append(lambda *args, **kwargs: None)
    bound(x)
    assert len(kernel.fn.launches) == 2 and kernel.fn.runs == []
    with pytest.raises(TypeError, match="1 ARG places, given 2"):
        bound(x, x)


def test_bound_interpreted_kernel_is_launched_as_it_is():
    fake = FakeJit()
    x = torch.zeros(8)
    for _ in range(2):
        L.bind(fake, (2,), L.ARG, 3, BLOCK=16, MODE="a")(x)
    assert fake.launches == [((2,), (x, 3), dict(BLOCK=16, MODE="a"))] * 2 and fake.runs == []


def test_bound_launch_refuses_too_few_arguments(kernel):
    """A bound launch given fewer arguments than its ``ARG`` places raises, as it does given more: no ``ARG``
    placeholder reaches the kernel."""
    bound = L.bind(kernel, (1,), L.ARG, L.ARG, BLOCK=16, MODE="a")
    for given in ((), (torch.zeros(8),)):
        with pytest.raises(TypeError, match=f"2 ARG places, given {len(given)}"):
            bound(*given)
    assert kernel.fn.launches == [] and kernel.fn.runs == []
