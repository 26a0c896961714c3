"""Numba CPU kernel and live-set decode cache against the float64 reference ``glrtheory.solve``."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glrtheory import GLRError, Pattern, solve
from glrtheory.analysis import decode_costs, live_profile, nnz
from glrtheory.kernels.cpu import Counts, Tables, scan
from glrtheory.kernels.decode import DecodeCache, step
from glrtheory.recurrence import random_coefficients
from helpers import rel_err, specs

#: Every built-in family, and unions.
FAMILIES = ["ssm", "attention", "window:7", "lags:1,3,8", "power2", "power:3", "quadratic", "exponent:0.5",
            "fenwick", "blocks", "kron:1,11,101", "window:3+power2", "fenwick+lags:5"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
ROOT = Path(__file__).resolve().parents[1]


def problem(spec, n, rng, batch=(2,), d=3):
    p = Pattern.from_spec(spec)
    a, b = random_coefficients(p, n, rng, batch)            # NaN in padded slots: must be ignored
    u = rng.standard_normal(batch + (n, d))
    return p, a, b, u


def check_scan(p, a, b, u, ref, dtype):
    a, b, u = (x.astype(dtype) for x in (a, b, u))
    ref = solve(p, a, b, u) if ref is None else ref
    out = np.full(np.broadcast_shapes(a.shape[:-2], u.shape[:-2]) + u.shape[-2:], np.nan, dtype)
    h = scan(u, a, b, p.tables(u.shape[-2]), out=out)
    assert h is out and not np.isnan(out).any()
    assert rel_err(h, ref) <= TOL[dtype]


@pytest.mark.parametrize("spec", FAMILIES + ["kron:1,11"])
@pytest.mark.parametrize("n", [1, 2, 63, 1000, 4097])
def test_scan_matches_reference(spec, n, rng):
    if spec == "kron:1,11" and n > 1000:
        pytest.skip("kron:1,11 at n=4097 has 4095-wide tables; kron:1,11,101 covers that length")
    batch = () if spec == "attention" and n > 1000 else (2,)
    p, a, b, u = problem(spec, n, rng, batch)
    for dtype in (np.float64, np.float32):
        # the float32 run is checked against the float64 solve of its own (rounded) inputs
        check_scan(p, a, b, u, None, dtype)



@pytest.mark.parametrize("d", [1, 64, 67, 130])
def test_scan_state_widths_across_blocks(d, rng):
    """h_t is summed ``BLOCK`` entries at a time in registers, then a shorter tail: every split is exact."""
    from glrtheory.kernels.cpu import BLOCK

    assert BLOCK == 64
    for spec in ("power2", "window:3+fenwick"):
        p, a, b, u = problem(spec, 63, rng, (2,), d)
        for dtype in (np.float64, np.float32):
            check_scan(p, a, b, u, None, dtype)


@pytest.mark.parametrize("spec", FAMILIES + ["lags:2,5"])
def test_one_block_states_take_the_previous_row_from_registers(spec, rng):
    """A state of exactly ``BLOCK`` entries runs its own loop, which takes a term on t - 1 from the row
    it just computed: every family (``lags:2,5`` has no such term), at awkward lengths."""
    from glrtheory.kernels.cpu import BLOCK

    for n in (1, 2, 63, 200):
        p, a, b, u = problem(spec, n, rng, (2,), BLOCK)
        for dtype in (np.float64, np.float32):
            check_scan(p, a, b, u, None, dtype)


@pytest.mark.parametrize("lags", [((0,), ()), ((0, 2), (1,)), ((0,), (2, 3, 9)), ((0, 2), (1, 40, 50, 60, 70))])
def test_prefetching_rows_ahead_changes_nothing(lags, rng):
    """Row t may prefetch the inputs of row t + ``AHEAD`` (where the tables read enough far states): no
    B terms at all (b has no columns), two A terms, no t - 1 term, four far states; lengths around
    AHEAD and widths of one and more blocks, against the solve."""
    from glrtheory.kernels.scan.cpu_memory import AHEAD, BLOCK, prefetch_pays

    p = Pattern.from_lags(*lags)
    for n in (1, AHEAD, AHEAD + 1, 63, 200):
        for d in (BLOCK, 2 * BLOCK + 3):
            a, b = random_coefficients(p, n, rng, (2,))
            u = rng.standard_normal((2, n, d))
            for dtype in (np.float64, np.float32):
                check_scan(p, a, b, u, None, dtype)
    tables = p.tables(200)[1]                                   # 40 float64 rows of 64: 20 KiB back
    assert prefetch_pays(tables, np.zeros((200, BLOCK))) == (len(lags[1]) == 5)
    assert not prefetch_pays(tables, np.zeros((200, BLOCK - 1)))


@settings(max_examples=15)
@given(spec=specs, n=st.sampled_from([1, 2, 63]) | st.integers(1, 150), seed=st.integers(0, 2**32 - 1))
def test_scan_random_patterns(spec, n, seed):
    rng = np.random.default_rng(seed)
    p, a, b, u = problem(spec, n, rng, (2,), d=2)
    check_scan(p, a, b, u, None, np.float64)


def test_prepared_tables_are_validated_once_and_frozen(rng):
    p, a, b, u = problem("fenwick", 40, rng)
    tables = Tables(p, 40)
    assert Tables(tables) is tables and rel_err(scan(u, a, b, tables), solve(p, a, b, u)) <= 1e-12
    for idx in tables:
        assert idx.dtype == np.int32 and not idx.flags.writeable
        with pytest.raises(ValueError):
            idx.flags.writeable = True            # a view of a read-only base: cannot be unfrozen
    with pytest.raises(GLRError, match="needs the length n"):
        Tables(p)


def test_parallel_path_reads_each_sequences_own_inputs(rng, monkeypatch):
    """Over the threads (6 sequences x n x d >= ``PARALLEL_MIN_ENTRIES``), u, a and b broadcast over different batch
    axes, so each sequence reads its own row of each (a kernel that took b's row from a's index would pass where they
    broadcast alike)."""
    import numba

    from glrtheory.kernels.scan import cpu

    if numba.get_num_threads() < 2:
        pytest.skip("one numba thread: scan runs serially")
    monkeypatch.setattr(cpu, "_scan_serial", None)            # the serial kernel must not be the one that runs
    p = Pattern.from_spec("window:2+power2")
    n, d = 1000, 16
    a, b = random_coefficients(p, n, rng, (2, 3))
    a, u = a[:1], rng.standard_normal((2, 1, n, d))           # u over the first axis, a over the second, b both
    assert 6 * n * d >= cpu.PARALLEL_MIN_ENTRIES
    out = np.full((2, 3, n, d), np.nan)
    assert scan(u, a, b, p.tables(n), out=out) is out
    assert rel_err(out, solve(p, a, b, u)) <= 1e-12


def test_broadcast_readout_and_pattern_tables(rng):
    p, a, b, u = problem("window:4+power2", 63, rng, batch=(3,), d=6)
    u = rng.standard_normal((2, 3, 63, 6))                   # batch 2 x heads 3; coefficients per head
    q = rng.standard_normal((2, 3, 63, 2))
    ref = solve(p, a, b, u, q)
    assert rel_err(scan(u, a, b, p, q), ref) <= 1e-12      # a Pattern stands for its tables
    # non-contiguous inputs are copied, not misread
    u_f = np.asfortranarray(u)
    a_nc = np.repeat(a, 2, axis=-1)[..., ::2]
    assert rel_err(scan(u_f, a_nc, b, p.tables(63)), solve(p, a, b, u)) <= 1e-12


@pytest.mark.parametrize("spec", FAMILIES + ["kron:1,11", "blocks:5+quadratic"])
def test_counting_mode_equals_nnz(spec, rng):
    for n in (1, 2, 37, 300):
        p, a, b, u = problem(spec, n, rng, batch=(2,), d=1)
        h, counts = scan(u, a, b, p.tables(n), count=True)
        assert counts == Counts(*nnz(p, n))
        for d in (0, 64, 65):           # no entries; exactly one block (row t - 1 in registers); a block and a tail
            assert scan(np.zeros(u.shape[:-1] + (d,)), a, b, p.tables(n), count=True)[1] == counts, d
        cache = DecodeCache(p, n, d=1, batch=(2,))
        per_step = [sum(cache.ops)]
        for t in range(n):
            cache.step(u[:, t], a[:, t], b[:, t])
            per_step.append(sum(cache.ops))
        assert cache.ops == counts
        assert np.array_equal(np.diff(per_step), decode_costs(p, n))


def live_by_definition(p, n):
    """Size of the live set after each step, straight from the sets A(t), B(t) (docs/quantities.md)."""
    a_sets, b_sets = p.sets(n)
    out = []
    for t in range(n):
        later_a = {s for tt in range(t + 1, n) for s in a_sets[tt]}
        later_b = {s for tt in range(t + 1, n) for s in b_sets[tt]}
        out.append(sum(1 for s in later_a if s <= t) + sum(1 for s in later_b if s <= t))
    return np.array(out)


@pytest.mark.parametrize("spec", FAMILIES + ["kron:1,11", "blocks:5"])
@pytest.mark.parametrize("source", ["pattern", "tables"])
def test_decode_equals_scan_and_holds_the_live_set(spec, source, rng):
    n = 150
    p, a, b, u = problem(spec, n, rng, batch=(2, 3), d=4)
    a, b = a[0], b[0]                                        # coefficients per head, broadcast over batch
    full = scan(u, a, b, p.tables(n))
    cache = DecodeCache(p if source == "pattern" else p.tables(n), n if source == "pattern" else None,
                        d=4, batch=(2, 3))
    profile = live_profile(p, n)
    assert np.array_equal(profile, live_by_definition(p, n))
    a_last, b_last = p.support_a(n).last_use(), p.support_b(n).last_use()
    for t in range(n):
        h = step(cache, u[:, :, t], a[:, t], b[:, t])
        assert rel_err(h, full[:, :, t]) <= 1e-12
        assert cache.held == profile[t]
        held_u, held_h = cache.held_positions()
        s = np.arange(t + 1)
        assert np.array_equal(held_u, s[a_last[: t + 1] > t]) and np.array_equal(held_h, s[b_last[: t + 1] > t])
        assert cache.nbytes <= (4 * cache.held + 8) * (2 * 3 * 4 * 8)    # memory follows cache(t)
    with pytest.raises(GLRError, match="all are decoded"):
        cache.step(u[:, :, 0], a[:, 0], b[:, 0])


@pytest.mark.parametrize("spec", ["attention", "power2", "fenwick", "blocks", "window:3+quadratic"])
def test_prefill_then_decode(spec, rng):
    n = 120
    p, a, b, u = problem(spec, n, rng, batch=(3,), d=5)
    full = scan(u.astype(np.float32), a.astype(np.float32), b.astype(np.float32), p)
    for L in (1, 50, n):
        cache = DecodeCache(p, n, d=5, batch=(3,), dtype=np.float32)
        cache.prefill(u[:, :L].astype(np.float32), full[:, :L])
        assert cache.held == live_profile(p, n)[L - 1]
        for t in range(L, n):
            h = cache.step(u[:, t].astype(np.float32), a[:, t].astype(np.float32), b[:, t].astype(np.float32))
            assert rel_err(h, full[:, t]) <= 1e-5


# -- bad input ----------------------------------------------------------------------------------------
@pytest.fixture
def good(rng):
    p, a, b, u = problem("window:2+power2", 20, rng, batch=(2,), d=3)
    return p.tables(20), a, b, u


@pytest.mark.parametrize("case, match", [
    ("a_shape", "a must have shape"), ("b_shape", "b must have shape"), ("u_ndim", "u must have shape"),
    ("u_len", r"u must have shape \[..., n=20, d\]"), ("int_u", "dtype int64"), ("f16", "dtype float16"),
    ("complex", "complex128"), ("mixed", "pass one dtype"), ("batch", "do not broadcast"),
    ("a_future", r"a_idx\[3, 1\] = 4 is out of range"), ("b_self", "b_idx.*out of range"),
    ("neg", "out of range"), ("float_table", "integer index table"), ("not_pair", "pair"),
    ("out_shape", "out must have shape"), ("out_dtype", "out must have shape"),
    ("out_fortran", "C-contiguous"), ("out_readonly", "read-only"), ("out_overlap", "overlaps"),
    ("out_overlaps_a", "overlaps"), ("out_overlaps_b", "overlaps"),
    ("late_entry", "after its -1 padding"), ("prepared_n", r"u must have shape \[..., n=10, d\]"),
    ("unsorted", "not strictly increasing"), ("duplicate", "not strictly increasing"),
    ("torch_grad", "u cannot be read as a numpy array .*requires grad.*go through glr_scan"),
    ("torch_bf16", "u cannot be read as a numpy array .*BFloat16"),
])
def test_bad_input(good, case, match):
    (a_idx, b_idx), a, b, u = good
    kw = {}
    if case == "a_shape":
        a = a[:, :, :1]
    elif case == "b_shape":
        b = b[:, :-1]
    elif case == "u_ndim":
        u = u[0, 0]
    elif case == "u_len":
        u = u[:, :-1]
    elif case == "int_u":
        u = u.astype(np.int64)
    elif case == "f16":
        u, a, b = (x.astype(np.float16) for x in (u, a, b))
    elif case == "complex":
        u = u + 0j
    elif case in ("torch_grad", "torch_bf16"):
        torch = pytest.importorskip("torch")
        u = torch.from_numpy(u)
        u = u.requires_grad_() if case == "torch_grad" else u.bfloat16()
    elif case == "mixed":
        u = u.astype(np.float32)
    elif case == "batch":
        u = np.stack([u[0]] * 3)
    elif case == "a_future":
        a_idx = a_idx.copy()
        a_idx[3, 1] = 4
    elif case == "b_self":
        b_idx = b_idx.copy()
        b_idx[5, 0] = 5
    elif case == "neg":
        b_idx = b_idx.copy()
        b_idx[5, 0] = -7
    elif case == "float_table":
        a_idx = a_idx.astype(float)
    elif case == "out_shape":
        kw["out"] = np.empty(u.shape[1:])
    elif case == "out_dtype":
        kw["out"] = np.empty(u.shape, np.float32)
    elif case == "out_fortran":
        kw["out"] = np.asfortranarray(np.empty(u.shape))
    elif case == "out_readonly":
        kw["out"] = np.empty(u.shape)
        kw["out"].flags.writeable = False
    elif case == "out_overlap":
        kw["out"] = u
    elif case in ("out_overlaps_a", "out_overlaps_b"):      # the output's last entry is the coefficients' first
        coef = a if case == "out_overlaps_a" else b
        memory = np.empty(u.size + coef.size - 1)
        kw["out"], shared = memory[:u.size].reshape(u.shape), memory[u.size - 1:].reshape(coef.shape)
        shared[...] = coef
        a, b = (shared, b) if case == "out_overlaps_a" else (a, shared)
    elif case == "late_entry":
        b_idx = b_idx.copy()
        b_idx[9] = [-1, 8, -1, -1, -1]
    elif case == "unsorted":
        b_idx = b_idx.copy()
        b_idx[9, :2] = b_idx[9, 1::-1]
    elif case == "duplicate":
        b_idx = b_idx.copy()
        b_idx[9, :2] = 7
    tables = (a_idx, b_idx) if case != "not_pair" else (a_idx,)
    if case == "prepared_n":
        tables = Tables((a_idx[:10], b_idx[:10]))
    with pytest.raises(GLRError, match=match):
        scan(u, a, b, tables, **kw)


def test_decode_bad_input(good):
    (a_idx, b_idx), a, b, u = good
    with pytest.raises(GLRError, match="horizon"):
        DecodeCache(Pattern.from_spec("ssm"), d=2)
    with pytest.raises(GLRError, match="float32 and float64"):
        DecodeCache((a_idx, b_idx), d=3, batch=(2,), dtype=np.int32)
    with pytest.raises(GLRError, match="state size d must be >= 1"):
        DecodeCache((a_idx, b_idx), d=0)
    for batch, message in ((3, "batch must be a tuple of sizes"), ((-1,), "a batch size must be >= 1"),
                           ((2.5,), "a batch size must be an integer")):
        with pytest.raises(GLRError, match=message):
            DecodeCache((a_idx, b_idx), d=3, batch=batch)
    with pytest.raises(GLRError, match=r"a decode horizon is limited to n <= 16777216.*got n=16777217"):
        DecodeCache(Pattern.from_spec("ssm"), 2**24 + 1, d=2)
    bad = b_idx.copy()
    bad[4, 0] = 9
    with pytest.raises(GLRError, match="out of range"):
        DecodeCache((a_idx, bad), d=3)
    cache = DecodeCache((a_idx, b_idx), d=3, batch=(2,))
    with pytest.raises(GLRError, match="u_t must broadcast"):
        cache.step(u[:, 0, :2], a[:, 0], b[:, 0])
    with pytest.raises(GLRError, match="b_t must broadcast"):
        cache.step(u[:, 0], a[:, 0], b[:, 0, :2])
    with pytest.raises(GLRError, match="pass one dtype"):
        cache.step(u[:, 0].astype(np.float32), a[:, 0], b[:, 0])
    with pytest.raises(GLRError, match="shape"):
        cache.prefill(u[0], u[0])
    cache.step(u[:, 0], a[:, 0], b[:, 0])
    with pytest.raises(GLRError, match="fresh"):
        cache.prefill(u[:, :2], u[:, :2])


# -- benchmark scripts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["bench_cpu_scan.py", "bench_cpu_scan_variants.py", "bench_decode.py",
                                    "bench_lti.py"])
def test_benchmark_smoke(script, tmp_path):
    import json

    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"platform", "cpu", "cpu_family_model", "cores", "numba", "date", "steal_fraction"} <= set(result["machine"])
    assert result["rows"] and all(np.isfinite(r["seconds"]) for r in result["rows"])


def test_machine_record_counts_stolen_time_from_proc_stat(tmp_path, monkeypatch):
    """steal over all time between two readings of /proc/stat's first line (user nice system idle iowait irq
    softirq steal, then guest fields that user already holds): 10 of 100 ticks -> 0.1."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import machine

    before, after = tmp_path / "before", tmp_path / "after"
    before.write_text("cpu  100 0 50 800 10 0 5 35 7 0\ncpu0 1 2 3\n")
    after.write_text("cpu  150 0 60 830 10 0 5 45 9 0\n")
    start, now = machine.cpu_ticks(before), machine.cpu_ticks(after)
    assert start == (35, 1000) and now == (45, 1100)
    assert machine.steal_fraction(start, now) == pytest.approx(0.1, abs=1e-15)
    assert machine.steal_fraction(now, now) is None and machine.cpu_ticks(tmp_path / "missing") is None
    if machine.cpu_ticks() is not None:                         # this machine's own record since boot
        assert 0 <= machine.steal_fraction(start=(0, 0)) <= 1


def test_importing_glrtheory_does_not_import_numba():
    code = "import sys, glrtheory; assert 'numba' not in sys.modules, 'numba imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_empty_state_and_batch_dimensions():
    p = Pattern.from_spec("power2")
    a_idx, b_idx = p.tables(5)
    a, b = np.ones(a_idx.shape, np.float32), np.ones(b_idx.shape, np.float32)
    assert scan(np.zeros((5, 0), np.float32), a, b, (a_idx, b_idx)).shape == (5, 0)
    assert scan(np.zeros((0, 5, 3), np.float32), a, b, (a_idx, b_idx)).shape == (0, 5, 3)


def test_kernels_import_no_pattern():
    """Kernels read IndexTables and arrays only (the layer GLRMixer, built from a spec, may)."""
    import importlib

    for name in ("scan.cpu", "scan.plan", "scan.naive", "scan.op", "scan.chunk", "decode", "state"):
        module = importlib.import_module(f"glrtheory.kernels.{name}")
        assert not hasattr(module, "Pattern"), name


def test_scan_allocates_cache_line_aligned_outputs(rng):
    """Outputs scan allocates start on a 64-byte boundary (a 256-byte state then spans 4 cache lines)."""
    p, a, b, u = problem("power2", 33, rng, batch=(3,), d=5)
    for dtype in (np.float32, np.float64):
        h = scan(u.astype(dtype), a.astype(dtype), b.astype(dtype), p.tables(33))
        assert h.ctypes.data % 64 == 0 and h.flags.c_contiguous and h.flags.writeable
        assert rel_err(h, solve(p, a, b, u)) <= TOL[dtype]


def test_own_outputs_are_recycled_only_when_no_array_uses_them(rng):
    """Outputs scan allocates come from a pool of slabs: two outputs alive at once never share memory, a
    kept output (or a view of it) is never overwritten by a later call, and an unused slab is reused."""
    from glrtheory.kernels.scan import cpu_out

    cpu_out.release_pool()
    p, a, b, u = problem("power2", 63, rng, batch=(3,), d=5)
    tables, ref = p.tables(63), solve(p, a, b, u)
    first = scan(u, a, b, tables)
    kept = first.copy()
    second = scan(u, a, b, tables)
    assert not np.shares_memory(first, second)
    view = second[1:, 3]                                    # only a view of second survives
    del second
    u2 = rng.standard_normal(u.shape)                       # other inputs: an overwrite would show
    third = scan(u2, a, b, tables)
    assert not np.shares_memory(third, first) and not np.shares_memory(third, view)
    np.testing.assert_array_equal(first, kept)
    assert rel_err(view, ref[1:, 3]) <= TOL[np.float64] and rel_err(first, ref) <= TOL[np.float64]
    third.fill(np.nan)
    address = third.ctypes.data
    del third
    fourth = scan(u2, a, b, tables)
    assert fourth.ctypes.data == address                    # the unused slab came back, written in full
    assert rel_err(fourth, solve(p, a, b, u2)) <= TOL[np.float64]


def test_output_pool_is_bounded_and_thread_safe(rng, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from glrtheory.kernels.scan import cpu_out

    cpu_out.release_pool()
    alive = []
    for n in (10, 20, 30, 40, 20):
        p, a, b, u = problem("fenwick", n, rng)
        alive.append((scan(u, a, b, p.tables(n)), solve(p, a, b, u)))
        count, held = cpu_out.pool_held()
        assert count <= cpu_out.POOL_SLABS and held <= cpu_out.POOL_BYTES
    assert all(rel_err(h, ref) <= TOL[np.float64] for h, ref in alive)   # slabs let go live on

    def calls(seed):
        local = np.random.default_rng(seed)
        p, a, b, u = problem("power2", 50, local)
        return [(scan(u, a, b, p.tables(50)), solve(p, a, b, u)) for _ in range(20)]

    with ThreadPoolExecutor(2) as pool:
        outs = [pair for part in pool.map(calls, range(2)) for pair in part]
    assert all(rel_err(h, ref) <= TOL[np.float64] for h, ref in outs)
    assert not any(np.shares_memory(x[0], y[0]) for i, x in enumerate(outs) for y in outs[:i])

    monkeypatch.setattr(cpu_out, "POOL_BYTES", 4096)
    cpu_out.release_pool()
    p, a, b, u = problem("ssm", 100, rng)                  # 2 x 100 x 3 float64: 4800 bytes, not pooled
    assert rel_err(scan(u, a, b, p.tables(100)), solve(p, a, b, u)) <= TOL[np.float64]
    assert cpu_out.pool_held() == (0, 0)
    scan(u[:, :50], a[:, :50], b[:, :50], p.tables(50))
    assert cpu_out.pool_held() == (1, 2400 + cpu_out.ALIGN)
    cpu_out.release_pool()
    assert cpu_out.pool_held() == (0, 0)


def test_decode_table_limit_names_no_argument_the_user_cannot_pass():
    """A table side too large to tabulate is refused with the limit, without a max_entries hint;
    lag sides never need the table (attention decodes at n = 2^20)."""
    p = Pattern.from_spec("attention")
    assert DecodeCache(p, 2**20, d=1).n == 2**20
    big = Pattern.from_spec("kron:1,11")                     # a structured side, 65535 wide at this n
    with pytest.raises(GLRError) as err:
        DecodeCache(big, 2**16, d=1)
    assert "max_entries" not in str(err.value) and "65536" in str(err.value)


def test_index_tables_doctest():
    import doctest

    import glrtheory.patterns.tables as tables

    result = doctest.testmod(tables, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 5


def test_prefill_refuses_an_empty_prompt_and_u_h_of_different_lengths(rng):
    p, a, b, u = problem("power2", 20, rng, batch=(2,), d=3)
    cache = DecodeCache(p, 20, d=3, batch=(2,))
    with pytest.raises(GLRError, match=r"prefill length must lie in \[1, n=20\], got 0"):
        cache.prefill(u[:, :0], u[:, :0])
    for lu, lh in ((5, 6), (6, 5)):
        with pytest.raises(GLRError, match="must both have shape"):
            cache.prefill(u[:, :lu], u[:, :lh])
    assert cache.t == -1 and cache.held == 0


@pytest.mark.parametrize("spec, slots", [("lags:1,2,3", 4), ("lags:1,2,3,4,5,6,7", 8)])
def test_decode_buffers_double_only_when_full(spec, slots):
    """The state buffer grows (4, 8, ...) only when every slot is taken: a side that holds at most ``slots`` states
    at once (the one just produced with the live ones) keeps exactly ``slots`` of them."""
    p = Pattern.from_spec(spec)
    cache = DecodeCache(p, 30, d=2, batch=(3,))
    wb = p.tables(30).b_idx.shape[1]
    for t in range(20):
        cache.step(np.ones((3, 2)), np.ones((3, 1)), np.ones((3, wb)))
    assert cache.nbytes == slots * 3 * 2 * 8
