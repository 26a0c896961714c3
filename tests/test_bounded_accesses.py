"""The ``bounded_accesses`` fixture (conftest.py): under the Triton interpreter, a kernel's load, store or atomic add
whose kept lanes leave every tensor of its launch fails, one element past the end included; lanes the mask drops,
and every lane inside a tensor's storage, pass."""
import pytest
import torch

triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402

pytestmark = [pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU interpreter's accesses"),
              pytest.mark.usefixtures("bounded_accesses")]

BLOCK = 16


@triton.jit
def _copy(src, dst, read, write, ADD: tl.constexpr, BLOCK: tl.constexpr):
    """``dst[i] = src[i]`` (or ``+=`` atomically with ADD) for the lanes ``i < write``, reading those ``i < read``."""
    i = tl.arange(0, BLOCK)
    x = tl.load(src + i, mask=i < read, other=0.0)
    if ADD:
        tl.atomic_add(dst + i, x, mask=i < write)
    else:
        tl.store(dst + i, x, mask=i < write)


def copy(n_src: int, n_dst: int, read: int, write: int, add: bool = False):
    """``_copy`` from ``0, 1, ..., n_src - 1`` into ``n_dst`` zeros (separate allocations, 64-byte aligned: a lane
    past one never lands in the other)."""
    src, dst = torch.arange(n_src, dtype=torch.float32), torch.zeros(n_dst)
    _copy[(1,)](src, dst, read, write, ADD=add, BLOCK=BLOCK)
    return dst


@pytest.mark.parametrize("add", [False, True], ids=["store", "atomic"])
def test_accesses_inside_pass_and_masked_lanes_are_free(add):
    """Every kept lane inside (up to the last element exactly); the block's other lanes, past both tensors, masked."""
    assert copy(5, 7, 5, 7, add).tolist() == [0, 1, 2, 3, 4, 0, 0]
    assert copy(BLOCK, BLOCK, BLOCK, BLOCK, add).tolist() == list(range(BLOCK))


@pytest.mark.parametrize("what, n_src, n_dst, read, write, add", [
    ("load", 5, 7, 6, 7, False),            # one element past src
    ("store", 5, 7, 5, 8, False),           # one element past dst
    ("atomic", 5, 7, 5, 8, True),
    ("load", 5, 7, BLOCK, 7, False),        # many past
])
def test_one_element_past_a_tensor_fails(what, n_src, n_dst, read, write, add):
    with pytest.raises(Exception, match=f"_copy: a {what} of {max(read - n_src, write - n_dst)} lane"):
        copy(n_src, n_dst, read, write, add)


def test_the_bound_is_the_storage_of_a_view():
    """A view's bound is its storage's: on a GPU that is one allocation, and a read past the view but inside it is
    no fault (memcheck sees none either), so it passes; past the storage it fails."""
    base = torch.arange(8, dtype=torch.float32)
    dst = torch.zeros(BLOCK)
    _copy[(1,)](base[:5], dst, 8, 8, ADD=False, BLOCK=BLOCK)
    assert dst[:8].tolist() == list(range(8))
    with pytest.raises(Exception, match="_copy: a load of 1 lane"):
        _copy[(1,)](base[:5], dst, 9, 8, ADD=False, BLOCK=BLOCK)


@triton.jit
def _read_words(src, dst, read, BLOCK: tl.constexpr):
    """``dst[i]`` = the i-th int32 word of ``src``'s bytes, for ``i < read``."""
    i = tl.arange(0, BLOCK)
    x = tl.load(src.to(tl.pointer_type(tl.int32)) + i, mask=i < read, other=0)
    tl.store(dst + i, x, mask=i < read)


def test_an_element_that_starts_inside_and_ends_past_fails():
    """Each lane's whole element must be inside: six bytes hold one int32 word and half of the next."""
    src, dst = torch.arange(6, dtype=torch.uint8), torch.zeros(BLOCK, dtype=torch.int32)
    _read_words[(1,)](src, dst, 1, BLOCK=BLOCK)
    assert dst[0] == int.from_bytes(bytes(range(4)), "little")
    with pytest.raises(Exception, match="_read_words: a load of 1 lane"):
        _read_words[(1,)](src, dst, 2, BLOCK=BLOCK)
