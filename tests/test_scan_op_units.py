"""``glr_scan`` (``kernels/scan/op.py``) and its chunked algorithm (``kernels/scan/chunk.py``) against a naive float64
per-token recurrence written out here.

The reference runs ``h_t = sum_j a[t, j] u[a_idx[t, j]] + sum_j b[t, j] h[b_idx[t, j]]`` token by token over the
table rows, and its gradients by the adjoint recurrence ``z_s = g_s + sum_{b_idx[t, j] = s} b[t, j] z_t`` (t from the
last down): ``du_s = sum_{a_idx[t, j] = s} a[t, j] z_t``, ``da[t, j] = <z_t, u[a_idx[t, j]]>``,
``db[t, j] = <z_t, h[b_idx[t, j]]>``. FLOP counts come from the table entries counted by loops.
"""
from itertools import islice

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.kernels.scan import chunk as chunk_mod  # noqa: E402
from glrtheory.kernels.scan import naive as naive_mod  # noqa: E402
from glrtheory.kernels.scan import op  # noqa: E402
from glrtheory.kernels.scan.plan import scan_plan  # noqa: E402
from glrtheory.patterns.tables import IndexTables  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _random_tables(rng, n, wa=3, wb=4):
    """Tables of length n: rows of 0 .. w entries (empty rows on both sides), A(t) from all of ``0 .. t``, B(t) from
    all of ``0 .. t - 1`` (sources in the same chunk and far back)."""
    a_idx, b_idx = np.full((n, wa), -1), np.full((n, wb), -1)
    for t in range(n):
        for idx, pool in ((a_idx, t + 1), (b_idx, t)):
            k = min(int(rng.integers(0, idx.shape[1] + 1)), pool)
            idx[t, :k] = np.sort(rng.choice(pool, size=k, replace=False))
    return IndexTables(a_idx, b_idx)


def _inputs(rng, tables, B=2, H=3, D=4, a_shape=None, b_shape=None):
    """Fresh random u, a, b (float64 numpy); ``|b|`` row sums below 1; a and b of the given ``(batch, heads)``."""
    n, wa, wb = tables.n, tables.a_idx.shape[1], tables.b_idx.shape[1]
    Ba, Ha = a_shape or (B, H)
    Bb, Hb = b_shape or (B, H)
    u = rng.standard_normal((B, n, H, D))
    a = rng.uniform(0.5, 1.5, (Ba, n, Ha, wa)) * rng.choice([-1, 1], (Ba, n, Ha, wa))
    b = rng.uniform(-1, 1, (Bb, n, Hb, wb)) / max(1, wb)
    return u, a, b


def _entries(idx, t):
    return [(j, int(s)) for j, s in enumerate(idx[t]) if s >= 0]


def _naive(u, a, b, tables):
    """The states by the per-token recurrence (float64)."""
    B, n, H, _ = u.shape
    a = np.broadcast_to(a, (B, n, H, a.shape[3]))
    b = np.broadcast_to(b, (B, n, H, b.shape[3]))
    h = np.zeros(u.shape)
    for t in range(n):
        for j, s in _entries(tables.a_idx, t):
            h[:, t] += a[:, t, :, j, None] * u[:, s]
        for j, s in _entries(tables.b_idx, t):
            h[:, t] += b[:, t, :, j, None] * h[:, s]
    return h


def _summed_to(x, shape):
    """``x`` summed over the dimensions that ``shape`` broadcast (size 1 there)."""
    axes = tuple(i for i, (m, k) in enumerate(zip(x.shape, shape)) if k == 1 and m != 1)
    return x.sum(axis=axes, keepdims=True)


def _naive_grads(g, u, a, b, tables):
    """``(dL/du, dL/da, dL/db)`` for ``L = <g, H>`` by the adjoint recurrence (module docstring)."""
    B, n, H, _ = u.shape
    af = np.broadcast_to(a, (B, n, H, a.shape[3]))
    bf = np.broadcast_to(b, (B, n, H, b.shape[3]))
    h = _naive(u, a, b, tables)
    z = np.array(g, dtype=np.float64)
    for t in range(n - 1, -1, -1):
        for j, s in _entries(tables.b_idx, t):
            z[:, s] += bf[:, t, :, j, None] * z[:, t]
    du, da, db = np.zeros(u.shape), np.zeros(af.shape), np.zeros(bf.shape)
    for t in range(n):
        for j, s in _entries(tables.a_idx, t):
            du[:, s] += af[:, t, :, j, None] * z[:, t]
            da[:, t, :, j] = (z[:, t] * u[:, s]).sum(-1)
        for j, s in _entries(tables.b_idx, t):
            db[:, t, :, j] = (z[:, t] * h[:, s]).sum(-1)
    return du, _summed_to(da, a.shape), _summed_to(db, b.shape)


def _scan_and_grads(u, a, b, g, tables, dtype=torch.float64, **kw):
    """``glr_scan``'s states and its gradients for the cotangent g, as numpy, each checked finite and of u's dtype."""
    leaves = [torch.tensor(x, dtype=dtype, requires_grad=True) for x in (u, a, b)]
    h = op.glr_scan(*leaves, tables, **kw)
    grads = torch.autograd.grad(h, leaves, torch.tensor(g, dtype=dtype))
    out = [h.detach(), *grads]
    for x, leaf in zip(out, [leaves[0], *leaves]):
        assert x.dtype == dtype and x.shape == leaf.shape and torch.isfinite(x).all()
    return [x.numpy() for x in out]


def _check_against_naive(u, a, b, g, tables, dtype=torch.float64, **kw):
    got = _scan_and_grads(u, a, b, g, tables, dtype, **kw)
    want = [_naive(u, a, b, tables), *_naive_grads(g, u, a, b, tables)]
    for name, x, y in zip(("h", "du", "da", "db"), got, want):
        assert rel_err(x, y) <= TOL[dtype], (name, rel_err(x, y))


# -- states and gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("n, chunk", [(1, 1), (1, 64), (2, 1), (2, 2), (2, 3), (63, 1), (63, 2), (63, 7), (63, 62),
                                      (63, 63), (63, 64), (300, 16), (300, 64), (300, 299), (300, 300), (300, 301)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_states_and_gradients_equal_the_naive_recurrence(rng, n, chunk, dtype):
    """Random tables with empty rows and far sources, B = 2, H = 3, D = 4: states and all three gradients at chunks
    of 1, below, at and past T (and a chunk that does not divide T), in float64 and float32."""
    tables = _random_tables(rng, n)
    u, a, b = _inputs(rng, tables)
    g = rng.standard_normal(u.shape)
    _check_against_naive(u, a, b, g, tables, dtype, chunk=chunk, backend="chunk")


@pytest.mark.parametrize("n", [1, 2, 63, 300])
def test_the_default_backend_and_chunk_equal_the_naive_recurrence(rng, n):
    """``backend=None`` and ``chunk=None`` (the CPU default), one head, a one-dimensional state."""
    tables = _random_tables(rng, n, wa=2, wb=5)
    u, a, b = _inputs(rng, tables, B=3, H=1, D=1)
    _check_against_naive(u, a, b, rng.standard_normal(u.shape), tables)


@pytest.mark.parametrize("a_shape, b_shape", [((1, 3), (2, 1)), ((2, 1), (1, 3)), ((1, 1), (1, 1))])
def test_broadcast_coefficients_get_summed_gradients(rng, a_shape, b_shape):
    """A batch or head dimension of size 1 in a or b broadcasts; its gradient is the sum over that dimension."""
    tables = _random_tables(rng, 63)
    u, a, b = _inputs(rng, tables, B=2, H=3, a_shape=a_shape, b_shape=b_shape)
    _check_against_naive(u, a, b, rng.standard_normal(u.shape), tables, chunk=8)


def test_padded_slots_are_not_read_and_get_zero_gradients(rng):
    """NaN coefficients in padded slots change no state; their gradients are exactly 0."""
    tables = _random_tables(rng, 63)
    u, a, b = _inputs(rng, tables)
    pad_a = np.broadcast_to((tables.a_idx < 0)[None, :, None], a.shape)
    pad_b = np.broadcast_to((tables.b_idx < 0)[None, :, None], b.shape)
    assert pad_a.any() and pad_b.any()
    g = rng.standard_normal(u.shape)
    want = [_naive(u, a, b, tables), *_naive_grads(g, u, a, b, tables)]
    a[pad_a], b[pad_b] = np.nan, np.nan
    h, du, da, db = _scan_and_grads(u, a, b, g, tables, chunk=8)
    assert (da[pad_a] == 0).all() and (db[pad_b] == 0).all()
    for x, y in zip((h, du, da, db), want):
        assert rel_err(x, y) <= 1e-10


@pytest.mark.parametrize("case", ["no A entry", "no B entry", "B of width 0", "one row"])
def test_empty_sides(rng, case):
    """An A table without entries gives zero states; a B table without entries (or of width 0) gives ``A U``."""
    n = 1 if case == "one row" else 40
    t = _random_tables(rng, n)
    a_idx, b_idx = np.asarray(t.a_idx), np.asarray(t.b_idx)
    if case == "no A entry":
        a_idx = np.full_like(a_idx, -1)
    elif case == "no B entry":
        b_idx = np.full_like(b_idx, -1)
    elif case == "B of width 0":
        b_idx = b_idx[:, :0]
    tables = IndexTables(a_idx, b_idx)
    u, a, b = _inputs(rng, tables)
    g = rng.standard_normal(u.shape)
    _check_against_naive(u, a, b, g, tables, chunk=7)
    if case == "no A entry":
        h = op.glr_scan(*(torch.tensor(x) for x in (u, a, b)), tables)
        assert torch.equal(h, torch.zeros_like(h))


@pytest.mark.parametrize("budget", [1, 12, 24, 36, 84, 85, 10**9])
def test_gather_blocks_of_any_budget(rng, monkeypatch, budget):
    """``GATHER_BUDGET`` below one entry, at exactly 1, 2, 3 and 7 entries of N d = 2 * 3 * 2 = 12 numbers, just over,
    and unbounded: the same states and gradients."""
    monkeypatch.setattr(chunk_mod, "GATHER_BUDGET", budget)
    tables = _random_tables(rng, 63, wa=4, wb=4)
    u, a, b = _inputs(rng, tables, B=2, H=3, D=2)
    _check_against_naive(u, a, b, rng.standard_normal(u.shape), tables, chunk=5)


# -- the algorithm's pieces -------------------------------------------------------------------------
def test_row_pointers_start_every_row():
    """``ptr[t]`` is the number of entries in rows before t, ``ptr[n]`` all of them, for rows with gaps."""
    row = torch.tensor([0, 0, 2, 2, 2, 5, 6, 6])
    want = [sum(1 for r in row.tolist() if r < t) for t in range(9)]
    ptr = chunk_mod.row_pointers(row, 8)
    assert ptr.tolist() == want and ptr.dtype == row.dtype
    assert chunk_mod.row_pointers(torch.tensor([], dtype=torch.int64), 3).tolist() == [0, 0, 0, 0]


def _greedy_blocks(ptr, cap):
    """Row ranges from row 0: each as long as it holds at most cap entries, or one row."""
    blocks, r0 = [], 0
    while r0 < len(ptr) - 1:
        r1 = r0 + 1
        while r1 < len(ptr) - 1 and ptr[r1 + 1] - ptr[r0] <= cap:
            r1 += 1
        blocks.append((r0, r1))
        r0 = r1
    return blocks


@pytest.mark.parametrize("budget, per_entry", [(8, 1), (8, 2), (8, 3), (8, 8), (8, 9), (8, 0), (100, 1)])
def test_row_blocks_are_the_longest_within_the_budget(monkeypatch, budget, per_entry):
    """Rows of 0, 1, 2, 3 and 5 entries: each block is the longest run of rows from its first that holds at most
    ``GATHER_BUDGET // per_entry`` entries (at least 1; at least one row; per_entry 0 counts as 1)."""
    monkeypatch.setattr(chunk_mod, "GATHER_BUDGET", budget)
    counts = [2, 0, 1, 3, 5, 0, 0, 1, 2, 2, 3, 1]
    ptr = np.concatenate([[0], np.cumsum(counts)])
    cap = max(1, budget // max(per_entry, 1))
    blocks = list(islice(chunk_mod._row_blocks(ptr, per_entry), len(counts) + 1))     # a block too many, not a hang
    assert blocks == _greedy_blocks(ptr, cap)
    assert list(islice(chunk_mod._row_blocks(np.array([0]), per_entry), 1)) == []


@pytest.fixture
def gathered(monkeypatch):
    """The entry counts (dimension 1) of every ``index_select`` result, in order."""
    sizes, real = [], torch.Tensor.index_select

    def recording(self, dim, index):
        out = real(self, dim, index)
        sizes.append(out.shape[1])
        return out
    monkeypatch.setattr(torch.Tensor, "index_select", recording)
    return sizes


@pytest.mark.parametrize("budget", [5, 6, 12, 18, 36, 10**9])
def test_apply_gathers_the_longest_row_blocks_within_the_budget(monkeypatch, gathered, budget):
    """``apply`` over N = 2, d = 3 (6 numbers an entry): the gathered ``[N, entries, d]`` blocks are the greedy row
    blocks of at most ``GATHER_BUDGET // 6`` entries (at least one row), and the result is ``sum_e c_e v[src_e]``."""
    monkeypatch.setattr(chunk_mod, "GATHER_BUDGET", budget)
    counts = [2, 0, 1, 3, 5, 0, 1, 2]
    row = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(budget)
    src = np.concatenate([np.sort(rng.choice(8, size=k, replace=False)) for k in counts])
    c, v = rng.standard_normal((2, row.size)), rng.standard_normal((2, 8, 3))
    want = np.zeros((2, 8, 3))
    for e, (r, s) in enumerate(zip(row, src)):
        want[:, r] += c[:, e, None] * v[:, s]
    out = torch.empty(2, 8, 3, dtype=torch.float64)
    got = chunk_mod.apply(torch.tensor(c), torch.tensor(row), torch.tensor(src), torch.tensor(v), out)
    assert got is out and rel_err(got.numpy(), want) <= 1e-12
    ptr = np.concatenate([[0], np.cumsum(counts)])
    assert gathered == [ptr[r1] - ptr[r0] for r0, r1 in _greedy_blocks(ptr, max(1, budget // 6))]


@pytest.mark.parametrize("budget, step", [(5, 1), (6, 1), (11, 1), (12, 2), (18, 3), (10**9, 7)])
def test_entry_dot_gathers_blocks_within_the_budget(monkeypatch, gathered, budget, step):
    """``entry_dot`` over N = 2, d = 3 (6 numbers an entry), 7 entries: ``<z[row_e], v[src_e]>`` per entry, gathered
    (z and v) in blocks of ``max(1, GATHER_BUDGET // 6)`` entries, the last one the rest."""
    monkeypatch.setattr(chunk_mod, "GATHER_BUDGET", budget)
    rng = np.random.default_rng(budget)
    z, v = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 3))
    row, src = [0, 1, 1, 3, 4, 4, 5], [0, 0, 1, 2, 0, 3, 5]
    want = np.stack([[z[i, r] @ v[i, s] for r, s in zip(row, src)] for i in range(2)])
    got = chunk_mod.entry_dot(torch.tensor(z), torch.tensor(row), torch.tensor(src), torch.tensor(v))
    assert rel_err(got.numpy(), want) <= 1e-12
    blocks = [min(step, 7 - e0) for e0 in range(0, 7, step)]
    assert gathered == [k for k in blocks for _ in "zv"]


def test_substitute_solves_each_chunk_size():
    """``substitute`` against ``h_t = x_t + sum_e c_e h[src_e]`` by loops, T = 11, chunks 1 .. 12."""
    rng = np.random.default_rng(13)
    n, N, d = 11, 2, 3
    pairs = sorted({(t, int(s)) for t in range(1, n) for s in rng.choice(t, size=min(t, 3), replace=False)})
    row, src = (torch.tensor(x) for x in zip(*pairs))
    c, x = rng.uniform(-0.5, 0.5, (N, len(pairs))), rng.standard_normal((N, n, d))
    want = x.copy()
    for t in range(n):
        for e, (r, s) in enumerate(pairs):
            if r == t:
                want[:, t] += c[:, e, None] * want[:, s]
    for C in range(1, 13):
        got = chunk_mod.substitute(torch.tensor(x), torch.tensor(c), row, src, C,
                                     torch.empty(N, n, d, dtype=torch.float64))
        assert rel_err(got.numpy(), want) <= 1e-12, C


# -- FLOP counts ----------------------------------------------------------------------------------
def _nnz(tables):
    """Entries of A and of B, counted row by row."""
    return tuple(sum(1 for row in idx for s in row if s >= 0) for idx in (tables.a_idx, tables.b_idx))


def test_flop_counts_of_the_op_and_its_backward(rng):
    """Under ``FlopCounterMode``: the forward ``2 B H D (nnz_a + nnz_b)``, the backward twice that, with
    ``nnz_a != nnz_b`` and B, H, D distinct."""
    from torch.utils.flop_counter import FlopCounterMode

    tables = _random_tables(rng, 63, wa=2, wb=5)
    nnz_a, nnz_b = _nnz(tables)
    assert nnz_a != nnz_b
    B, H, D = 2, 3, 5
    leaves = [torch.tensor(x, requires_grad=True) for x in _inputs(rng, tables, B=B, H=H, D=D)]
    with FlopCounterMode(display=False) as counter:
        op.glr_scan(*leaves, tables).sum().backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert counts == {"glrtheory.glr_scan": 2 * B * H * D * (nnz_a + nnz_b),
                      "glrtheory.glr_scan_backward": 4 * B * H * D * (nnz_a + nnz_b)}


def test_flops_of_tables(rng):
    """``flops(tables, batch, d) = 2 batch d (nnz_a + nnz_b)``, from a pair as from IndexTables."""
    tables = _random_tables(rng, 300, wa=2, wb=5)
    nnz_a, nnz_b = _nnz(tables)
    assert nnz_a != nnz_b
    assert op.flops(tables, 6, 5) == 2 * 6 * 5 * (nnz_a + nnz_b)
    assert op.flops((np.asarray(tables.a_idx), np.asarray(tables.b_idx)), 1, 1) == 2 * (nnz_a + nnz_b)


# -- the custom op --------------------------------------------------------------------------------
def test_fake_kernels_give_the_outputs_shapes():
    """torch.library's checks of both ops (schema, fake tensors against the real outputs): u ``[2, 20, 3, 4]``,
    a and b ``[2, 20, 3, w]`` as ``glr_scan`` hands them over, the backward's three gradients included."""
    rng = np.random.default_rng(23)
    tables = _random_tables(rng, 20)
    u, a, b = (torch.tensor(x) for x in _inputs(rng, tables))
    plan = list(scan_plan(tables, torch.device("cpu")))
    h = op.glr_scan(u, a, b, tables)
    checks = ("test_schema", "test_faketensor")
    torch.library.opcheck(torch.ops.glrtheory.glr_scan.default, (u, a, b, plan, 8, "chunk"), test_utils=checks)
    torch.library.opcheck(torch.ops.glrtheory.glr_scan_backward.default,
                          (torch.randn_like(u), u, a, b, h, plan, 8, "chunk"), test_utils=checks)


def _recording(monkeypatch, module, calls):
    """Record ``(name, chunk)`` of each forward and backward call of a backend module."""
    for name in ("forward", "backward"):
        real = getattr(module, name)

        def record(*args, real=real, name=name):
            calls.append((name, args[-1]))
            return real(*args)
        monkeypatch.setattr(module, name, record)


@pytest.mark.parametrize("watched", [False, True])
@pytest.mark.parametrize("chunk, backend, runs", [(None, None, "chunk"), (5, None, "chunk"), (None, "naive", "naive"),
                                                  (3, "chunk", "chunk")])
def test_the_chunk_and_backend_reach_forward_and_backward(monkeypatch, watched, chunk, backend, runs):
    """The backend chosen (None on the CPU in float64: chunk) runs both passes with the chunk given, or the CPU
    default 64; the same through the dispatcher (under a dispatch mode) as past it."""
    from torch.utils.flop_counter import FlopCounterMode

    calls = []
    _recording(monkeypatch, chunk_mod if runs == "chunk" else naive_mod, calls)
    rng = np.random.default_rng(29)
    tables = _random_tables(rng, 20)
    leaves = [torch.tensor(x, requires_grad=True) for x in _inputs(rng, tables)]
    with FlopCounterMode(display=False) if watched else torch.enable_grad():
        op.glr_scan(*leaves, tables, chunk=chunk, backend=backend).sum().backward()
    expect = 64 if chunk is None else chunk
    assert calls == [("forward", expect), ("backward", expect)]


def test_choose_backend():
    """float32 and float64 on the CPU: chunk; a name asked for is kept; the default CPU chunk is 64."""
    cpu = torch.device("cpu")
    for dtype in (torch.float32, torch.float64):
        assert op.choose_backend(None, cpu, dtype) == "chunk"
        assert op.choose_backend("naive", cpu, dtype) == "naive"
    assert op.DEFAULT_CHUNK == {"cpu": 64, "cuda": 256}
    assert op.backend_module("nope") is None
    assert op.backend_module("chunk") is chunk_mod


def test_a_backend_that_is_not_installed_is_skipped(monkeypatch):
    """A registered backend whose module cannot be imported is None; ``backend=None`` goes on to the next of AUTO, and
    the error names what the device runs when none is left."""
    monkeypatch.setitem(op.BACKENDS, "absent", op.Backend("no_such_module", ("cpu",)))
    monkeypatch.setattr(op, "AUTO", ("absent", "chunk"))
    assert op.backend_module("absent") is None
    assert op.choose_backend(None, torch.device("cpu"), torch.float64) == "chunk"
    with pytest.raises(GLRError) as err:
        op.choose_backend("absent", torch.device("cpu"), torch.float64)
    assert str(err.value) == "no glr_scan backend runs float64 on cpu (backend='absent'; cpu runs none)"


@pytest.mark.parametrize("chunk", [None, 5])
def test_a_backend_with_its_own_scan_gets_the_checked_inputs(monkeypatch, chunk):
    """A registered backend with its own ``scan`` (as Triton on CUDA; here on the CPU, in the chunk module) is called
    once with u, a and b broadcast to ``[B, T, H, w]`` (contiguous), the IndexTables, and ``chunk`` only when given;
    its result is returned as it is."""
    calls = []

    def own_scan(u, a, b, tables, **kw):
        calls.append((u, a, b, tables, kw))
        return "result"
    monkeypatch.setattr(chunk_mod, "own_scan", own_scan, raising=False)
    monkeypatch.setitem(op.BACKENDS, "own", op.Backend("chunk", ("cpu",), scan="own_scan"))
    rng = np.random.default_rng(31)
    tables = _random_tables(rng, 20)
    u, a, b = (torch.tensor(x) for x in _inputs(rng, tables, a_shape=(1, 3), b_shape=(2, 1)))
    assert op.glr_scan(u, a, b, tables, chunk=chunk, backend="own") == "result"
    [(u1, a1, b1, t1, kw)] = calls
    assert torch.equal(u1, u) and u1.is_contiguous() and t1 is tables
    assert kw == ({} if chunk is None else {"chunk": 5})
    for x, full in ((a1, a.expand(2, 20, 3, 3)), (b1, b.expand(2, 20, 3, 4))):
        assert x.is_contiguous() and torch.equal(x, full)


# -- bad input ------------------------------------------------------------------------------------
def _bad_cases():
    tables = Pattern.from_spec("power2").tables(10)          # wa 1, wb 4
    empty = IndexTables(np.zeros((0, 1), int), np.zeros((0, 4), int))
    u, a, b = torch.randn(2, 10, 3, 5), torch.randn(2, 10, 3, 1), torch.randn(2, 10, 3, 4)
    shape_u = "u must have shape [batch, T=10, heads, D] (the tables are for T=10; D, batch, heads >= 1), got "
    shape_a = ("a must have shape [batch=2, T=10, heads=3, a_idx width=1] (batch and heads may be 1) to match u and "
               "its index table, got ")
    shape_b = ("b must have shape [batch=2, T=10, heads=3, b_idx width=4] (batch and heads may be 1) to match u and "
               "its index table, got ")
    return [
        ((u.numpy(), a, b, tables), {}, "u must be a torch.Tensor, got ndarray"),
        ((u, [1.0], b, tables), {}, "a must be a torch.Tensor, got list"),
        ((u, a, None, tables), {}, "b must be a torch.Tensor, got NoneType"),
        ((u, a.double(), b, tables), {},
         "a has dtype torch.float64 but u has torch.float32; pass one dtype for u, a and b"),
        ((u, a, b.double(), tables), {},
         "b has dtype torch.float64 but u has torch.float32; pass one dtype for u, a and b"),
        ((u, a.to("meta"), b, tables), {}, "a is on meta but u is on cpu; put u, a and b on one device"),
        ((u, a, b.to("meta"), tables), {}, "b is on meta but u is on cpu; put u, a and b on one device"),
        ((u[:, :9], a, b, tables), {}, shape_u + "(2, 9, 3, 5)"),
        ((u[0], a, b, tables), {}, shape_u + "(10, 3, 5)"),
        ((u[..., :0], a, b, tables), {}, shape_u + "(2, 10, 3, 0)"),
        ((u[:0], a, b, tables), {}, shape_u + "(0, 10, 3, 5)"),
        ((u[:, :, :0], a, b, tables), {}, shape_u + "(2, 10, 0, 5)"),
        ((u, a[0], b, tables), {}, shape_a + "(10, 3, 1)"),
        ((u, a[:, :9], b, tables), {}, shape_a + "(2, 9, 3, 1)"),
        ((u, torch.cat([a, a], 3), b, tables), {}, shape_a + "(2, 10, 3, 2)"),
        ((u, torch.cat([a, a, a]), b, tables), {}, shape_a + "(6, 10, 3, 1)"),
        ((u, a[:, :, :2], b, tables), {}, shape_a + "(2, 10, 2, 1)"),
        ((u, a, b[..., :3], tables), {}, shape_b + "(2, 10, 3, 3)"),
        ((u, a, b[:, :, :2], tables), {}, shape_b + "(2, 10, 2, 4)"),
        ((u, a, torch.cat([b, b, b]), tables), {}, shape_b + "(6, 10, 3, 4)"),
        ((u, a, b[:, :9], tables), {}, shape_b + "(2, 9, 3, 4)"),
        ((u, a, b, tables), {"chunk": 0}, "chunk must be >= 1, got 0"),
        ((u, a, b, tables), {"chunk": 2.0}, "chunk must be an integer, got 2.0"),
        ((u, a, b, tables), {"chunk": True}, "chunk must be an integer, got True"),
        ((u, a, b, tables), {"backend": "fast"},
         "backend must be one of ['chunk', 'naive', 'triton'] or None, got 'fast'"),
        ((u, a, b, tables), {"backend": ["chunk"]},
         "backend must be one of ['chunk', 'naive', 'triton'] or None, got ['chunk']"),
        ((u, a, b, tables), {"backend": "triton"}, "backend 'triton' runs on cuda tensors, not on cpu"),
        ((u.to("meta"), a.to("meta"), b.to("meta"), tables), {"backend": "chunk"},
         "backend 'chunk' runs on cpu and cuda tensors, not on meta"),
        ((u.to("meta"), a.to("meta"), b.to("meta"), tables), {},
         "no glr_scan backend runs float32 on meta (backend=None; meta runs none)"),
        ((u.half(), a.half(), b.half(), tables), {},
         "no glr_scan backend runs float16 on cpu (backend=None; cpu runs {'chunk': ['float32', 'float64']})"),
        ((u.half(), a.half(), b.half(), tables), {"backend": "naive"},
         "no glr_scan backend runs float16 on cpu (backend='naive'; cpu runs {'naive': ['float32', 'float64']})"),
        ((u.long(), a.long(), b.long(), tables), {"backend": "chunk"},
         "no glr_scan backend runs int64 on cpu (backend='chunk'; cpu runs {'chunk': ['float32', 'float64']})"),
        ((u[:, :0], a[:, :0], b[:, :0], empty), {}, "the tables are for T=0; glr_scan needs T >= 1"),
        ((u, a, b, empty), {}, "the tables are for T=0; glr_scan needs T >= 1"),
        ((u, a, b, tables.a_idx), {},
         "tables must be the pair (a_idx, b_idx) of index tables that Pattern.tables(n) gives, got ndarray"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_refused_by_name(case):
    """Each argument check of ``glr_scan`` and ``choose_backend``: the whole message."""
    args, kw, message = _bad_cases()[case]
    with pytest.raises(GLRError) as err:
        op.glr_scan(*args, **kw)
    assert str(err.value) == message
