"""The Triton scan against the float64 references, on the CPU under the Triton interpreter.

Forward against ``glrtheory.solve`` (token by token, numpy); gradients against plain autograd through the
dense float64 solve ``scan_dense``. Inputs are rounded to the kernel's dtype first, so the references see
what the kernel sees; outputs are NaN-filled under the interpreter, so an unwritten element fails.
Tests marked ``gpu`` repeat the checks at full size on CUDA.
"""
import functools
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from glrtheory import GLRError, Pattern, solve  # noqa: E402
from glrtheory.patterns.tables import IndexTables  # noqa: E402
from glrtheory.kernels.scan import triton as backend  # noqa: E402
from glrtheory.kernels.scan import triton_kernels  # noqa: E402
from glrtheory.kernels.scan.triton import glr_scan_triton  # noqa: E402
from glrtheory.kernels.scan.naive import scan_dense  # noqa: E402
from tests.helpers import gpu_call, rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FAMILIES = ["ssm", "attention", "window:5", "lags:1,3,7", "power2", "quadratic", "exponent:0.37", "fenwick",
            "blocks", "kron:1,11"]
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
CHUNK = 32          # two 16-blocks per chunk inverse, several chunks at n = 63 and 200


def problem(rng, spec, n, batch=1, heads=1, d=4, dtype=torch.float32):
    """Fresh random inputs ``[batch, n, heads, .]`` in ``dtype`` (B rows with sum_j |b| < 1), and the same
    values in float64, ``[batch * heads, n, .]``, for the references."""
    p = Pattern.from_spec(spec)
    tables = p.tables(n)
    a_idx, b_idx = tables
    u = rng.standard_normal((batch, n, heads, d))
    a = rng.uniform(0.5, 1.5, (batch, n, heads, a_idx.shape[1])) * rng.choice([-1, 1], (batch, n, heads, 1))
    b = rng.uniform(-1, 1, (batch, n, heads, b_idx.shape[1])) / max(1, b_idx.shape[1])
    ins = [torch.tensor(x, dtype=dtype, device=DEVICE) for x in (u, a, b)]
    ref = [x.double().cpu().permute(0, 2, 1, 3).reshape(batch * heads, n, x.shape[-1]) for x in ins]
    return p, tables, ins, ref


def flat(x, heads):
    """``[batch, n, heads, .]`` -> ``[batch * heads, n, .]`` in float64 on the host (heads: a check)."""
    assert x.shape[2] == heads
    B, n, H, w = x.shape
    return x.detach().double().cpu().permute(0, 2, 1, 3).reshape(B * H, n, w).numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("n", [1, 2, 63, 200])
@pytest.mark.parametrize("spec", FAMILIES)
def test_forward_and_backward_match_float64(rng, spec, n, dtype):
    heads = 16 if n <= 2 else 1     # bf16 error is relative to the norm: at n <= 2 a few elements make the norm, and
    #                                 one that cancels over d reached 1.7% with 4 heads (CI, ssm n = 2, db)
    p, tables, ins, (u64, a64, b64) = problem(rng, spec, n, heads=heads, dtype=dtype)
    h = check_gradients(tables, ins, (u64, a64, b64), heads=heads, chunk=CHUNK, tol=TOL[dtype])
    assert h.shape == ins[0].shape
    assert rel_err(flat(h, heads), solve(p, a64.numpy(), b64.numpy(), u64.numpy())) <= TOL[dtype]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter's patches (with CUDA the kernels compile)")
def test_the_interpreter_patches_the_language_once_a_launch(rng, monkeypatch):
    """``triton_interpreter``: in a launch no module or class of ``triton.language`` is patched more than three times
    (by the launch, then once where a helper's module also holds ``core``, as ``tl.zeros``' does, which patches both
    modules, and the tensor class through each), where the interpreter itself patches them again at every call of a
    ``@triton.jit`` helper (up to 37 times a launch here); after the launches every attribute of the patched modules
    and classes is the one it was before (the interpreter's patches are new objects each launch, so one left behind
    shows), and none is an interpreter's lambda; the scan it ran is still right."""
    from collections import Counter

    import triton.language as tl
    from triton.runtime import interpreter

    patched_objects = (tl, tl.core, tl.math, tl.core.tensor, tl.core.dtype, tl.core.tensor_descriptor_base)
    glr_scan_triton(*problem(rng, "ssm", 4)[2], Pattern.from_spec("ssm").tables(4), chunk=CHUNK)  # apply() ran
    before = [dict(vars(obj)) for obj in patched_objects]
    launches = []
    patch, launch = interpreter._patch_builtin, interpreter.GridExecutor.__call__
    monkeypatch.setattr(interpreter, "_patch_builtin",
                        lambda pkg, *rest: (launches[-1].update([pkg.__name__]), patch(pkg, *rest)))
    monkeypatch.setattr(interpreter.GridExecutor, "__call__",
                        lambda self, *args, **kwargs: (launches.append(Counter()), launch(self, *args, **kwargs)))
    p, tables, ins, (u64, a64, b64) = problem(rng, "fenwick", 63)
    check_gradients(tables, ins, (u64, a64, b64), heads=1, chunk=CHUNK, tol=TOL[torch.float32])
    assert len(launches) >= 4 and all(launches) and max(max(c.values()) for c in launches) <= 3, launches
    for obj, was in zip(patched_objects, before):
        now = dict(vars(obj))
        assert now.keys() == was.keys() and all(now[k] is v for k, v in was.items()), obj
        assert not [k for k, v in now.items() if getattr(v, "__name__", None) == "<lambda>"], obj


def test_several_slices_of_d_and_chunk_16(rng):
    """d = 70 spans two 64-wide slices; chunk 16 is one inverse block; batch 2."""
    p, tables, (u, a, b), ref_in = problem(rng, "window:3+power2", 40, batch=2, heads=1, d=70)
    check_gradients(tables, (u, a, b), ref_in, heads=1, chunk=16, tol=1e-5)


@pytest.mark.parametrize("spec,n,chunk", [("power2", 200, 16), ("fenwick", 200, 16), ("quadratic", 150, 16),
                                          ("power2", 300, 128)])
def test_narrow_steps_walk_every_block(rng, monkeypatch, spec, n, chunk):
    """Table columns 2 and entries 16 at a time (the GPU reads a few per step; the interpreter's default
    reads whole rows), lag tables read through their index tables too: the forward's prefetched first
    block and every later block of B's columns before a chunk (power2 at C = 16: lags 16..128, 4 columns),
    the backward's pushes over them and A^T's entry lists are all used; chunk 128 too."""
    monkeypatch.setitem(backend.INTERPRETER, "JB", 2)
    monkeypatch.setitem(backend.INTERPRETER, "E", 16)
    monkeypatch.setitem(backend._settings(), "lags", False)
    p, tables, ins, ref_in = problem(rng, spec, n, heads=2, d=16)
    check_gradients(tables, ins, ref_in, heads=2, chunk=chunk, tol=1e-5)


@pytest.mark.parametrize("pull_width", [0, 32], ids=["push", "pull"])
@pytest.mark.parametrize("spec", ["power2", "blocks:8"])
def test_backward_pushes_or_pulls(rng, monkeypatch, spec, pull_width):
    """The backward walk gathers later chunks' z through the transposed B (rows up to PULL_WIDTH readers) or
    pushes z through B by atomic adds; both against float64, on the same problems, with narrow steps."""
    from glrtheory.kernels.scan import triton_tables
    monkeypatch.setattr(triton_tables, "PULL_WIDTH", pull_width)
    monkeypatch.setitem(backend.INTERPRETER, "JB", 2)
    monkeypatch.setitem(backend._settings(), "lags", False)
    p, tables, ins, ref_in = problem(rng, spec, 100, heads=2, d=16)
    assert (backend._check(*ins, tables, 16).bt_idx.shape[1] > 0) == (pull_width > 0)
    check_gradients(tables, ins, ref_in, heads=2, chunk=16, tol=1e-5)


LAG_SETS = {"ssm": ([0], [1]), "lags:1,3,7": ([0], [7, 3, 1]), "window:4": ([3, 2, 1, 0], []),
            "power2": ([0], [2 ** j for j in range(7, -1, -1)]),
            "window:3+power2": ([2, 1, 0], [2 ** j for j in range(7, -1, -1)]),
            "fenwick": ([0], None), "blocks": (None, None), "kron:1,11": ([0], None)}


@pytest.mark.parametrize("spec", LAG_SETS)
def test_lag_set_recognizes_exactly_the_lag_tables(spec):
    """``lag_set`` against each family's lags written out by hand (n = 200; None: not a lag table, where
    the sources are not t minus a fixed set) and against the lags the pattern built its tables from, and
    ``skip`` against its definition by counting."""
    from glrtheory.kernels.scan.triton_tables import lag_set, skipped

    n = 200
    tables = Pattern.from_spec(spec).tables(n)
    for side, idx, expect in zip("ab", tables, LAG_SETS[spec]):
        found = lag_set(np.asarray(idx))
        assert (found is None) == (expect is None)
        declared = tables.lags(side)
        if declared is not None:
            assert found is not None and found.tolist() == sorted(declared.tolist(), reverse=True)
        if expect is not None:
            assert found.tolist() == expect
            skip = skipped(found, n)
            assert [int(skip[t]) for t in range(n)] == [sum(L > t for L in expect) for t in range(n)]


def test_lag_coefficients_by_lag():
    """The kernels take lag i's coefficient at row t from column i: the table's own columns where every row
    that a lag reaches lists it in column i (ssm's B, a diagonal A), else gathered through ``slot``
    (power2's B, window:4's A, whose early rows list fewer lags); checked entry by entry against the table."""
    from glrtheory.kernels.scan.triton_tables import _lag_tensors

    n = 40
    for spec, side, in_place in [("ssm", 1, True), ("ssm", 0, True), ("power2", 1, False), ("window:4", 0, False)]:
        for tables in (Pattern.from_spec(spec).tables(n), tuple(Pattern.from_spec(spec).tables(n))):  # lags found
            idx = np.asarray(tables[side])
            lags, slot, values = _lag_tensors(IndexTables.coerce(tables), "ab"[side], "cpu")
            lags = lags.numpy()[:-1]
            assert values == tuple(lags.tolist()) and all(type(L) is int for L in values)
            assert (slot.numel() == 0) == in_place, spec
            cols = np.broadcast_to(np.arange(lags.size), (n, lags.size)) if in_place else slot.numpy()
            for t in range(n):
                for i, L in enumerate(lags):
                    if L <= t:
                        assert idx[t, cols[t, i]] == t - L, (spec, t, L)


@pytest.mark.parametrize("spec,diagonal", [("ssm", True), ("power2", True), ("fenwick", True), ("quadratic", True),
                                           ("window:4", False), ("blocks", False), ("attention", False)])
def test_diagonal_a_is_recognized(rng, spec, diagonal):
    """Where A is the identity table the backward walks write ``dU = a Z`` (no ``A^T Z`` launch); the
    gradients of both ways are checked against float64 in the tests above (diagonal: ssm, power2, ...)."""
    p, tables, ins, _ = problem(rng, spec, 40)
    assert backend._check(*ins, tables, 16).a_diagonal == diagonal


def test_lag_tables_too_wide_are_read_through_their_index_tables(rng, monkeypatch):
    """A lag table over ``MAX_LAG_ENTRIES`` (n x m) is read through its index tables (its slot table would not
    fit); the results stay exact."""
    from glrtheory.kernels.scan import triton_tables

    p, tables, ins, ref_in = problem(rng, "window:3+power2", 100, heads=2, d=16)
    assert coefficients(ins, tables, 16, "b").lagged
    monkeypatch.setattr(triton_tables, "MAX_LAG_ENTRIES", 100 * 6)          # B: 7 lags, A: 3
    tables = Pattern.from_spec("window:3+power2").tables(100)               # a fresh memo
    assert not coefficients(ins, tables, 16, "b").lagged and coefficients(ins, tables, 16, "a").lagged
    check_gradients(tables, ins, ref_in, heads=2, chunk=16, tol=1e-5)


def test_lag_set_refuses_tables_one_entry_off():
    """A power2 table with one entry moved, one dropped, one slot swapped or a lag missing from one row is not
    a lag table; an extra column of padding still is."""
    from glrtheory.kernels.scan.triton_tables import lag_set

    b = np.asarray(Pattern.from_spec("power2").tables(100)[1])
    assert lag_set(np.concatenate([b, np.full((100, 1), -1)], axis=1)).tolist() == [64, 32, 16, 8, 4, 2, 1]
    moved, dropped, swapped, hole = b.copy(), b.copy(), b.copy(), b.copy()
    moved[50, 2] -= 1                     # a lag of 13 at one row
    dropped[50, 3:] = np.append(dropped[50, 4:], -1)
    swapped[50, [0, 1]] = swapped[50, [1, 0]]
    hole[70, 0] = -1                      # row 70 loses lag 64 but keeps its column order
    for bad in (moved, dropped, swapped, hole):
        assert lag_set(bad) is None


def coefficients(ins, tables, chunk, side):
    """How the op reads side "a" or "b" of the tables (``triton.table_coefficients``)."""
    return backend.table_coefficients(backend._check(*ins, tables, chunk), side, ins[1 + "ab".index(side)], chunk)


#: The three ways the walks read a lag table: its lags compiled in as constants, loaded per lag, or its index
#: tables (the settings that select each).
READ_PATHS = {"static": dict(lags=True, static_lags=32), "per-lag": dict(lags=True, static_lags=0),
              "index-tables": dict(lags=False)}


@pytest.mark.parametrize("path", READ_PATHS)
@pytest.mark.parametrize("spec,n,chunk", [("power2", 200, 16), ("quadratic", 150, 16), ("window:5", 63, 16),
                                          ("window:3+power2", 300, 128), ("exponent:0.37", 200, 32),
                                          ("lags:1,20", 100, 16)])
def test_lag_tables_read_per_lag_or_through_their_tables(rng, monkeypatch, spec, n, chunk, path):
    """The three ways of reading a lag table (per lag, the lags as constants or loaded: forward walk, backward
    pull over the readers ``t + L``, ``A^T Z``; through the index tables: gathers and pushes) against float64,
    with sources before the first row (rows ``t < L``) and lags longer than a chunk; loaded per lag 2 or 3 lags
    a step, so that blocks of lags end inside the lag list and between its far and near parts. ``lags:1,20`` at
    chunk 16 has no far lag (none of 2 C or more) but one that reads two chunks back: its far part is empty."""
    for key, value in READ_PATHS[path].items():
        monkeypatch.setitem(backend._settings(), key, value)
    monkeypatch.setitem(backend._settings(), "LB", 3 if spec == "quadratic" else 2)
    p, tables, ins, ref_in = problem(rng, spec, n, heads=2, d=16)
    for side in "ab":
        X = coefficients(ins, tables, chunk, side)
        assert X.lagged == (path != "index-tables") and (len(X.values) > 0) == (path == "static" and X.m > 0)
    check_gradients(tables, ins, ref_in, heads=2, chunk=chunk, tol=1e-5)


def test_lags_are_constants_up_to_the_setting(rng, monkeypatch):
    """A lag table's lags are compiled in where there are at most ``static_lags`` of them (power2 at n = 200: 8),
    else loaded; the lags and the far count (lags >= 2 C) as the kernels take them."""
    p, tables, ins, _ = problem(rng, "power2", 200, heads=1, d=8)
    for limit, static in ((8, True), (7, False)):
        monkeypatch.setitem(backend._settings(), "static_lags", limit)
        B = coefficients(ins, tables, 32, "b")
        assert B.values == ((128, 64, 32, 16, 8, 4, 2, 1) if static else ()) and B.m == 8 and B.far == 2


@pytest.mark.parametrize("path", READ_PATHS)
@pytest.mark.parametrize("spec", ["power2", "quadratic", "window:3+fenwick"])
def test_padded_coefficients_are_ignored(rng, monkeypatch, spec, path):
    """NaN in every padded table slot (rows t < L of a lag table, short rows of others) changes nothing: the
    states and gradients equal those with zeros there (up to the order of the GPU's atomic adds), and the padded
    slots' gradients are 0."""
    for key, value in READ_PATHS[path].items():
        monkeypatch.setitem(backend._settings(), key, value)
    n, chunk = 100, 16
    p, tables, ins, _ = problem(rng, spec, n, heads=2, d=8)
    results = []
    for fill in (0.0, float("nan")):
        xs = [x.clone() for x in ins]
        for x, idx in zip(xs[1:], tables):
            x[padded(idx, x)] = fill
        xs = [x.requires_grad_() for x in xs]
        h = glr_scan_triton(*xs, tables, chunk=chunk)
        h.backward(torch.ones_like(h))
        results.append([h.detach()] + [x.grad for x in xs])
    for got, want in zip(*results[::-1]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for grad, idx in zip(results[1][2:], tables):
        assert grad[padded(idx, grad)].eq(0).all() and grad.isfinite().all()


@pytest.mark.parametrize("n", [5, 20])
@pytest.mark.parametrize("spec", ["blocks", "attention", "window:5"])
def test_one_chunk_reads_its_a_table_through_entry_lists(rng, monkeypatch, spec, n):
    """A in one chunk (n <= C) read through its index tables (blocks' A is no lag table; attention's and window:5's
    are read so with the setting ``lags`` off): ``dU = A^T Z`` through A^T's entry lists, whose last real entry
    is the chunk's last (the one unused entry after it, row 0, must stay unread), against float64."""
    monkeypatch.setitem(backend._settings(), "lags", False)
    _, tables, ins, ref_in = problem(rng, spec, n, heads=2, d=8)
    assert np.asarray(tables[0]).shape[1] > 1
    check_gradients(tables, ins, ref_in, heads=2, chunk=CHUNK, tol=TOL[torch.float32])


@pytest.mark.parametrize("walk_bf16", [True, False], ids=["bf16-factors", "tf32-factors"])
def test_bfloat16_factors_round_the_chunk_inverse(monkeypatch, walk_bf16):
    """ssm, one chunk: ``h_1 = u_1 + b_1 h_0`` with ``h_0 = u_0 = 1``, ``u_1 = -1/2`` (bfloat16 states) and
    ``b_1 = 1/2 + 2^-10`` (a float32 coefficient): bfloat16 factors round ``T = (I - B)^{-1}``'s ``b_1`` to 1/2,
    so ``h_1 = 0`` exactly; tf32 factors keep it (10 mantissa bits), ``h_1 = 2^-10`` exactly."""
    monkeypatch.setitem(backend._settings(), "walk_bf16", walk_bf16)
    tables = Pattern.from_spec("ssm").tables(2)
    u = torch.tensor([1.0, -0.5], device=DEVICE).reshape(1, 2, 1, 1).repeat(1, 1, 1, 4).to(torch.bfloat16)
    a = torch.ones(1, 2, 1, 1, device=DEVICE)
    b = torch.tensor([0.0, 0.5 + 2**-10], device=DEVICE).reshape(1, 2, 1, 1)
    h = glr_scan_triton(u, a, b, tables, chunk=CHUNK).float().cpu()
    assert h[0, 0].tolist() == [[1.0] * 4] and h[0, 1].tolist() == [[0.0 if walk_bf16 else 2**-10] * 4]


def padded(idx, coef):
    """The padded slots of a table (``idx < 0``) as a mask shaped like its coefficients ``[batch, n, heads, w]``."""
    return torch.as_tensor(np.asarray(idx) < 0, device=coef.device)[None, :, None, :].expand_as(coef)


@pytest.mark.parametrize("walk_bf16", [True, False], ids=["bf16-factors", "tf32-factors"])
@pytest.mark.parametrize("spec", ["power2", "window:3+fenwick", "blocks"])
def test_bfloat16_walk_products(rng, monkeypatch, spec, walk_bf16):
    """bf16 states with the walks' ``T_k x`` in bf16 factors (the default) or in tf32 ones, both within the
    bf16 tolerance of float64: the per-lag walk and pull (power2), the push walk (fenwick), the index tables
    (blocks), over 7 chunks of 32. Walks that load their lags keep tf32 factors."""
    monkeypatch.setitem(backend._settings(), "walk_bf16", walk_bf16)
    bf16 = "bf16-upcast" if backend._interpreting() else "bf16"
    assert backend._walk_precision(torch.bfloat16) == (bf16 if walk_bf16 else "tf32")
    assert backend._walk_precision(torch.bfloat16, loads_lags=True) == "tf32"
    loaded = backend._Coefficients(*[None] * 5, True, (), 0)
    assert loaded.loads_lags and not loaded._replace(values=(1,)).loads_lags
    assert not loaded._replace(lagged=False).loads_lags
    assert backend._walk_precision(torch.float32) == "tf32x3" and backend._walk_precision(torch.float16) == "tf32"
    p, tables, ins, ref_in = problem(rng, spec, 200, heads=2, d=8, dtype=torch.bfloat16)
    check_gradients(tables, ins, ref_in, heads=2, chunk=CHUNK, tol=TOL[torch.bfloat16])


@pytest.mark.parametrize("dtypes", [(torch.float16,) * 3, (torch.bfloat16, torch.float32, torch.float32)],
                         ids=["fp16", "bf16-u-fp32-coefficients"])
def test_float16_and_mixed_dtypes(rng, dtypes):
    """fp16 throughout, and bf16 states with fp32 coefficients (as under autocast): outputs and gradients
    in each input's own dtype."""
    p, tables, ins, ref_in = problem(rng, "power2", 63, heads=2)
    ins = [x.to(dt) for x, dt in zip(ins, dtypes)]
    ref_in = [x.to(dt).double() for x, dt in zip(ref_in, dtypes)]
    check_gradients(tables, ins, ref_in, heads=2, chunk=CHUNK, tol=1e-2)


@pytest.mark.parametrize("precision", ["ieee", "tf32x3"])
@pytest.mark.parametrize("chunk,shift", [(16, 0), (32, 5), (64, 0), (64, 63), (128, 17)])
@pytest.mark.parametrize("spec", ["power2", "quadratic", "window:40+fenwick"])
def test_chunk_inverses_are_the_inverses_of_the_diagonal_blocks(rng, monkeypatch, spec, chunk, shift, precision):
    """Every ``T_k`` against numpy's float64 inverse of ``I - B_kk`` built from the tables (rows before 0 and
    after n are identity rows): 1, 2, 4 or 8 blocks of 16 per side (C = 16 ... 128), chunks
    shifted as the readout's layouts shift them, two columns of the table per step (JB); products in float32 or
    in three tf32 passes (on CUDA: the interpreter computes both in float32)."""
    monkeypatch.setitem(backend.INTERPRETER, "JB", 2)
    monkeypatch.setitem(backend._settings(), "inverse_precision", precision)
    n, heads = 150, 2
    p, tables, (u, a, b), (_, _, b64) = problem(rng, spec, n, heads=heads)
    b_idx = np.asarray(tables[1])
    T = backend.chunk_inverses(b, torch.tensor(b_idx, dtype=torch.int32, device=DEVICE), n, chunk, shift)
    nc = -(-(n + shift) // chunk)
    assert T.shape == (heads, nc, chunk, chunk)
    for bh in range(heads):
        dense = np.zeros((nc * chunk, nc * chunk))        # B on the padded rows t + shift
        for t, j in zip(*np.nonzero(b_idx >= 0)):
            dense[t + shift, b_idx[t, j] + shift] += b64[bh, t, j].item()
        for k in range(nc):
            blk = slice(k * chunk, (k + 1) * chunk)
            expect = np.linalg.inv(np.eye(chunk) - dense[blk, blk])
            assert np.abs(T[bh, k].cpu().double().numpy() - expect).max() <= 1e-5 * max(1, np.abs(expect).max())


def check_gradients(tables, ins, ref_in, heads, chunk, tol):
    """Forward and all three gradients of the Triton scan against autograd through the dense float64 solve;
    returns the states."""
    ins = [x.detach().requires_grad_() for x in ins]
    h = glr_scan_triton(*ins, tables, chunk=chunk)
    assert h.dtype == ins[0].dtype
    g = torch.randn_like(h)
    h.backward(g)
    refs = [x.clone().requires_grad_() for x in ref_in]
    h64 = scan_dense(*refs, *(torch.tensor(np.asarray(t), dtype=torch.int64) for t in tables))
    h64.backward(torch.tensor(flat(g, heads)))
    assert rel_err(flat(h, heads), h64.detach().numpy()) <= tol, "forward"
    for x, r, name in zip(ins, refs, "uab"):
        assert x.grad.dtype == x.dtype
        assert rel_err(flat(x.grad, heads), r.grad.numpy()) <= tol, f"d{name}"
    return h


def test_chunk_inverses_take_the_precision_of_their_dtype(rng, monkeypatch):
    """float32 coefficients are inverted in ``inverse_precision``, bfloat16 and float16 ones in
    ``inverse_precision_16``: a precision the compiler rejects reaches only the calls of its dtype."""
    n = 40
    _, tables, (u, a, b), _ = problem(rng, "power2", n, heads=1, d=8)
    b_idx = torch.tensor(np.asarray(tables[1]), dtype=torch.int32, device=DEVICE)
    want = backend.chunk_inverses(b, b_idx, n, 16)
    for key, bad, good in (("inverse_precision", [torch.float32], [torch.bfloat16, torch.float16]),
                           ("inverse_precision_16", [torch.bfloat16, torch.float16], [torch.float32])):
        monkeypatch.setitem(backend._settings(), key, "no-such-precision")
        for dtype in good:
            torch.testing.assert_close(backend.chunk_inverses(b.to(dtype), b_idx, n, 16), want, rtol=0.05, atol=0.05)
        for dtype in bad:
            with pytest.raises(Exception):
                backend.chunk_inverses(b.to(dtype), b_idx, n, 16)
        monkeypatch.undo()


def test_flop_formula_is_registered(rng):
    from torch.utils.flop_counter import FlopCounterMode

    p, tables, (u, a, b), _ = problem(rng, "power2", 20, batch=1, heads=2, d=4)
    nnz = sum(int((t >= 0).sum()) for t in tables)
    with FlopCounterMode(display=False) as counter:
        glr_scan_triton(u.requires_grad_(), a, b, tables, chunk=16).sum().backward()
    assert counter.get_total_flops() == 2 * 1 * 2 * 4 * nnz * 3      # forward + twice it backward


def test_bad_input_names_the_problem(rng, monkeypatch):
    p, tables, (u, a, b), _ = problem(rng, "power2", 10)
    with pytest.raises(GLRError, match="dtype"):
        glr_scan_triton(u.double(), a, b, tables)
    with pytest.raises(GLRError, match="contiguous"):
        glr_scan_triton(u[..., ::2], a, b, tables)
    with pytest.raises(GLRError, match="one device"):
        glr_scan_triton(u, a.to("meta"), b, tables)
    with pytest.raises(GLRError, match="match"):
        glr_scan_triton(u, a, b, Pattern.from_spec("quadratic").tables(10))
    with pytest.raises(GLRError, match="match the tables"):
        glr_scan_triton(u, a, b, Pattern.from_spec("power2").tables(11))
    for chunk in (24, 256, True, 16.0):
        with pytest.raises(GLRError, match=f"chunk must be one of .* for the triton scan .* got {chunk!r}"):
            glr_scan_triton(u, a, b, tables, chunk=chunk)
    monkeypatch.setattr(backend, "MAX_ELEMENTS", 100)
    with pytest.raises(GLRError, match="too large"):
        glr_scan_triton(u, a, b, tables)
    if DEVICE == "cpu":
        monkeypatch.setattr(backend, "INTERPRETING", False)
        with pytest.raises(GLRError, match="CUDA"):
            glr_scan_triton(u, a, b, tables)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("n", [4097, 65536])
@pytest.mark.parametrize("spec", ["ssm", "power2", "quadratic", "fenwick", "blocks"])
def test_full_size_on_the_gpu(rng, spec, n):
    """Forward and gradients, fp32 and bf16, against the float64 PyTorch path (itself tested against
    ``solve``), and the forward at n = 4097 against ``solve``. float32 twice: the second run launches the kernels
    the first compiled directly (``triton_launch.Launcher``)."""
    from glrtheory.kernels.torch import glr_scan

    heads, d = 2, 64
    for dtype in (torch.float32, torch.bfloat16, torch.float32):
        p, tables, (u, a, b), ref_in = problem(rng, spec, n, batch=1, heads=heads, d=d, dtype=dtype)
        u, a, b = (x.requires_grad_() for x in (u, a, b))
        h = glr_scan_triton(u, a, b, tables)
        g = torch.randn_like(h)
        h.backward(g)
        refs = [x.detach().double().requires_grad_() for x in (u, a, b)]    # same values, [B, T, H, .]
        h64 = glr_scan(*refs, tables)
        h64.backward(g.double())
        assert rel_err(flat(h, heads), flat(h64, heads)) <= TOL[dtype], (dtype, "forward")
        if n == 4097:
            ref = solve(p, ref_in[1].numpy(), ref_in[2].numpy(), ref_in[0].numpy())
            assert rel_err(flat(h, heads), ref) <= TOL[dtype], (dtype, "forward vs solve")
        for x, r, name in zip((u, a, b), refs, "uab"):
            assert rel_err(flat(x.grad, heads), flat(r.grad, heads)) <= TOL[dtype], (dtype, f"d{name}")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_glr_scan_runs_triton_on_cuda_and_float64_on_chunk(rng):
    from glrtheory.kernels.scan.op import choose_backend, glr_scan

    cuda = torch.device("cuda")
    assert [choose_backend(None, cuda, dt) for dt in DTYPES] == ["triton"] * 3
    assert choose_backend(None, cuda, torch.float64) == "chunk"
    p, tables, (u, a, b), _ = problem(rng, "fenwick", 300, heads=2, d=32, dtype=torch.bfloat16)
    assert torch.equal(glr_scan(u, a, b, tables), glr_scan_triton(u, a, b, tables))


@functools.cache
def _h200_compile():
    """``benchmarks/h200_compile.py --sass --resources`` run once (in a process without the interpreter), or a skip
    where the installed triton ships no ptxas."""
    import subprocess
    import sys
    from pathlib import Path

    import triton

    if not list(Path(triton.__file__).parent.glob("backends/nvidia/bin/ptxas*")):
        pytest.skip("this triton build ships no ptxas")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "h200_compile.py"
    return subprocess.run([sys.executable, str(script), "--sass", "--resources"], env=env, capture_output=True,
                          text=True, timeout=300)


def test_offline_compile_is_the_h200s():
    """With the H200's Triton, ``h200_compile.py``'s configurations, specialized at the main shape as the JIT
    specializes a launch, compile to the machine code the H200 compiled there (``call146``, SASS digests): 26 of
    them, a twin for every kernel the H200 compiled (the four variants of ``coef_grad`` among them: da's width of 1,
    db's of 14, the lag walks' d blocks), fenwick's readout forward whole among them; and so with the H200's
    registers, spilled registers (4 bytes of stack each) and shared memory."""
    import triton

    ran = gpu_call("call146", "compile_check.json")          # what the H200 compiled at the main shape
    if triton.__version__ != ran["machine"]["triton"]:
        pytest.skip(f"Triton {triton.__version__} compiles other machine code than the H200's "
                    f"{ran['machine']['triton']}")
    out = _h200_compile()
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split() for line in out.stdout.splitlines()[:-1]]       # index, kernel, size, digest, resources
    compiled = {row["digest"]: row for row in ran["gpu"]}
    same = {int(d[0]): compiled[d[3]] for d in lines if d[3] in compiled}
    assert sorted(same) == [0, 2, 6, 7, 8, 11, 14, 16, 17, 20, 22, 24, 26, 30, 31, 32, 33, 34, 41, 42, 43, 47, 48,
                            53, 54, 55]
    assert [r["kernel"] for r in ran["gpu"] if r["digest"] not in {d[3] for d in lines}] == []
    forward = {"chunk_inverse", "chunk_coefficients", "boundary_local", "boundary_inverse", "triangular_product",
               "chunk_output"}                                # fenwick's readout forward (call148's profile)
    assert forward <= {row["kernel"] for row in same.values()}
    for i, row in same.items():
        used = dict(x.split(":") for x in lines[i][4:7])
        assert (int(used["REG"]), int(used["STACK"]), int(used["SHARED"])) == (
            row["registers"], 4 * row["spills"], row["shared"]), (i, row)


def test_kernels_compile_for_the_h200():
    """The interpreter accepts code the compiler rejects: compile every kernel for sm_90 (Hopper) with the
    ptxas that ships in the triton wheel, in a process without the interpreter (``benchmarks/h200_compile.py``).
    No GPU needed. Every configuration as the GPU launches it asks at most the H200's shared memory, but for the one
    launch the H200 refused in ``call63`` (fenwick's backward at d = 256 in float32), which asks what the H200 said
    it required; tiled mixing's tile product (``tile_product``, at the layer's first tile) spills nothing."""
    import re

    out = _h200_compile()
    configurations = 58                                                     # h200_compile.py's list
    assert out.returncode == 0 and f"compiled {configurations}" in out.stdout, out.stderr[-2000:]
    digests = [line.split() for line in out.stdout.splitlines()[:-1]]      # index, kernel, instructions, digest,
    assert [int(d[0]) for d in digests] == list(range(configurations)) and all(int(d[2]) > 100 for d in digests)
    registers = [int(d[4].removeprefix("REG:")) for d in digests]          # registers, stack bytes
    assert all(16 <= n <= 255 for n in registers) and all(d[5].startswith("STACK:") for d in digests)
    assert {d[1] for d in digests} >= {"forward_walk", "backward_pull", "boundary_walk", "chunk_output", "decay_sums",
                                       "decay_grads", "triangular_product", "level_walk", "chunk_walk",
                                       "split_fixup"}
    assert len({d[3] for d in digests}) == configurations      # distinct configurations compile to distinct code
    (refusal,) = [r["error"] for r in gpu_call("call63", "check_256.json")["rows"]
                  if r["spec"] == "fenwick" and r["dtype"] == "float32"]
    required, limit = map(int, re.search(r"Required: (\d+), Hardware limit: (\d+)", refusal).groups())
    shared = [int(d[6].removeprefix("SHARED:")) for d in digests]
    assert [(d[1], n) for d, n in zip(digests, shared) if n > limit] == [("chunk_output_backward", required)]
    tiles = [d for d in digests if d[1] in ("_forward", "_backward_rows", "_backward_columns")]    # tile_product's
    assert len(tiles) == 3 and all(d[5] == "STACK:0" for d in tiles)    # nothing spilled at the layer's tile


def test_bad_coefficients_name_the_problem(rng):
    """a and b are checked like u, each alone: a float64 or a non-contiguous coefficient tensor (same shape and
    values, other strides; the kernels read rows of a contiguous ``[batch, n, heads, w]``) is refused."""
    p, tables, ins, _ = problem(rng, "power2", 10, batch=2, heads=2)
    for i in (1, 2):
        strided = ins[i].transpose(0, 2).contiguous().transpose(0, 2)
        assert not strided.is_contiguous() and torch.equal(strided, ins[i])
        for bad, match in ((ins[i].double(), "dtype"), (strided, "contiguous")):
            args = list(ins)
            args[i] = bad
            with pytest.raises(GLRError, match=match):
                glr_scan_triton(*args, tables)


def test_too_large_counts_the_states(rng, monkeypatch):
    """The int32 limit counts u's elements: at d > C u is the largest tensor (ssm, n = 16, d = 32: 512 elements,
    against T's 16 x 16 = 256 at C = 16 and a's, b's 16), refused alone over the limit, run at it."""
    p, tables, (u, a, b), _ = problem(rng, "ssm", 16, d=32)
    monkeypatch.setattr(backend, "MAX_ELEMENTS", 511)
    with pytest.raises(GLRError, match="too large"):
        glr_scan_triton(u, a, b, tables, chunk=16)
    monkeypatch.setattr(backend, "MAX_ELEMENTS", 512)
    assert glr_scan_triton(u, a, b, tables, chunk=16).isfinite().all()


@pytest.mark.parametrize("pull", [True, False], ids=["pull", "push"])
def test_bfloat16_backward_keeps_z_in_float32(rng, monkeypatch, pull):
    """bf16 states, ``Z = (I - B)^{-T} G`` kept in float32 (pulled per lag, or pushed through B): ssm at n = 3 with
    b = 2^-10, a = 1, h_0 = (1, -1) s (s a random power of two) and g_1 = (1, 1), g_2 = (1, 0), so that
    ``z_1 = (1 + 2^-10, 1)`` and ``z_0 = (2^-10 + 2^-20, 2^-10)``, which bf16 cannot hold, give
    ``db[1] = <z_1, h_0> = 2^-10 s`` and ``da[0] = <z_0, u_0> = 2^-20 s`` from the bits bf16 would lose. Every
    value is a sum of powers of two that float32 holds: da and db equal float64's exactly."""
    monkeypatch.setitem(backend._settings(), "lags", pull)      # ssm's B^T is 1 wide: pulled through it otherwise
    if not pull:
        from glrtheory.kernels.scan import triton_tables
        monkeypatch.setattr(triton_tables, "PULL_WIDTH", 0)
    n, heads, s = 3, 2, 2.0 ** int(rng.integers(-3, 4))
    tables = Pattern.from_spec("ssm").tables(n)
    u = torch.zeros(1, n, heads, 2, dtype=torch.float64)
    u[0, 0] = torch.tensor([1.0, -1.0]) * s
    a = torch.ones(1, n, heads, 1, dtype=torch.float64)
    b = torch.full((1, n, heads, 1), 2.0 ** -10, dtype=torch.float64)
    g = torch.zeros(1, n, heads, 2, dtype=torch.float64)
    g[0, 1], g[0, 2, :, 0] = 1, 1
    ins = [x.to(torch.bfloat16).to(DEVICE).requires_grad_() for x in (u, a, b)]
    h = glr_scan_triton(*ins, tables, chunk=16)
    h.backward(g.to(torch.bfloat16).to(DEVICE))
    refs = [x.permute(0, 2, 1, 3).reshape(heads, n, x.shape[-1]).requires_grad_() for x in (u, a, b)]
    h64 = scan_dense(*refs, *(torch.tensor(np.asarray(t), dtype=torch.int64) for t in tables))
    h64.backward(g.permute(0, 2, 1, 3).reshape(heads, n, 2))
    assert refs[2].grad[0, 1, 0] == 2.0 ** -10 * s and refs[1].grad[0, 0, 0] == 2.0 ** -20 * s
    for x, r, name in zip(ins[1:], refs[1:], "ab"):
        assert np.array_equal(flat(x.grad, heads), r.grad.numpy()), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter's order of programs")
@pytest.mark.parametrize("spec,n,chunk,d,pull_width", [("power2", 200, 16, 16, 32), ("fenwick", 150, 32, 70, 32),
                                                       ("window:3+quadratic", 100, 16, 16, 0)])
def test_programs_run_in_reverse_order(rng, monkeypatch, programs_in_reverse, spec, n, chunk, d, pull_width):
    """Every launch's programs in reverse (``programs_in_reverse``: the interpreter otherwise runs them in order, and a
    program writing what a later one owns would go unseen), batch 2 x 2 heads: the chunk inverses, the forward walk,
    the backward pulling or pushing (atomics) and the coefficient gradients, d in one slice or two, against float64."""
    from glrtheory.kernels.scan import triton_tables
    monkeypatch.setattr(triton_tables, "PULL_WIDTH", pull_width)
    p, tables, ins, ref_in = problem(rng, spec, n, batch=2, heads=2, d=d)
    check_gradients(tables, ins, ref_in, heads=2, chunk=chunk, tol=1e-5)
