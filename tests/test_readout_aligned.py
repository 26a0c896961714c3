"""The ``chunked_aligned`` readout (states only at chunk boundaries) against the float64 materializing
reference ``naive_readout`` (u = k v^T through ``glr_scan``, then q^T H): outputs and autograd gradients on
fresh random inputs; which patterns get it (exact boundary sets from the fenwick definition); that its
FLOPs grow like T log T for fenwick (not T^2); dtypes and autocast."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout, naive_readout, readout_algorithm  # noqa: E402
from glrtheory.kernels.scan.readout_plan import aligned_layout, chunk_layout, is_aligned, level_slots  # noqa: E402
from tests.helpers import rel_err, tables_reading_below_the_split  # noqa: E402
from tests.test_readout import problem as numpy_problem  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

ALIGNED = ["ssm", "fenwick", "blocks", "blocks:16", "window:4+fenwick", "window:3+blocks:16", "window:4+ssm",
           "lags:1,2", "lags:1,2,3", "lags:1,3,7"]
NOT_ALIGNED = ["power2", "quadratic", "kron:1,11", "lags:1,40", "lags:64"]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def problem(rng, spec, n, H=2):
    """``test_readout.problem`` (fresh random inputs, never zero) with one batch, as float64 tensors."""
    tables, *xs = numpy_problem(rng, spec, n, B=1, H=H)
    return tables, [torch.tensor(x) for x in xs]


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks", "blocks:16", "window:4+fenwick", "window:3+blocks:16",
                                  "power2"])
@pytest.mark.parametrize("n", [1, 2, 63, 200])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_matches_materializing_reference(rng, spec, n, dtype):
    tables, xs = problem(rng, spec, n)
    ref = naive_readout(*xs, tables)
    out = glr_readout(*(x.to(dtype) for x in xs), tables)
    assert out.dtype == dtype and rel_err(out.double(), ref) <= TOL[dtype]
    forced = glr_readout(*(x.to(dtype) for x in xs), tables, chunk=16, algorithm="chunked_aligned")   # many
    assert rel_err(forced.double(), ref) <= TOL[dtype]                                   # chunks; also power2


def test_forward_at_length_1000(rng):
    tables, xs = problem(rng, "window:4+fenwick", 1000, H=1)
    assert readout_algorithm(tables)[0] == "chunked_aligned"
    assert rel_err(glr_readout(*xs, tables), naive_readout(*xs, tables)) <= 1e-12


@pytest.mark.parametrize("spec,n", [("ssm", 63), ("fenwick", 200), ("blocks", 63), ("blocks:16", 200),
                                    ("window:4+fenwick", 63), ("window:3+blocks:16", 63), ("fenwick", 2)])
def test_gradients_match_reference(rng, spec, n):
    """Gradients of q, k, v, a, b in float64 (1e-12) and float32 (1e-5) against autograd through the
    float64 materializing path, with random upstream gradients; chunks of 16 (several boundary states), and
    at n = 200 also the default layout (chunks of 64)."""
    tables, xs = problem(rng, spec, n)
    grad = torch.randn(xs[2].shape, dtype=torch.float64)
    leaves = [x.clone().requires_grad_() for x in xs]
    ref = torch.autograd.grad(naive_readout(*leaves, tables), leaves, grad)
    for dtype, chunk in [(torch.float64, 16), (torch.float32, 16)] + [(torch.float64, None)] * (n >= 200):
        leaves = [x.to(dtype).requires_grad_() for x in xs]
        out = glr_readout(*leaves, tables, chunk=chunk, algorithm="chunked_aligned")
        for name, g, r in zip("qkvab", torch.autograd.grad(out, leaves, grad.to(dtype)), ref):
            assert rel_err(g.double(), r) <= TOL[dtype], (name, dtype, chunk)


@pytest.mark.parametrize("spec", ALIGNED + NOT_ALIGNED + ["attention", "window:4"])
def test_algorithm_choice(spec):
    """At n = 2048 and 4096 (the estimates leave out fixed costs per call, which dominate at short lengths:
    below ~1000 short lag sets such as lags:1,3,7 go to tiled mixing). lags:1,2,3 and lags:1,3,7 have 3 and 7
    boundary states per chunk, more than the old fixed criterion allowed, yet run 8x and 3x faster than
    tiled mixing at T = 4096; lags:1,40 and lags:64 (40, 64 per chunk) ran 20x and 65x slower at 2048."""
    expect = "chunked_aligned" if spec in ALIGNED else "direct" if spec.startswith(("att", "window:4")) and \
        "+" not in spec else "tiled_mixing"
    for n in (2048, 4096):
        assert readout_algorithm(Pattern.from_spec(spec), n)[0] == expect, n
    if expect == "chunked_aligned":
        assert readout_algorithm(Pattern.from_spec(spec), 2048)[1] == "n (w + m)"


def test_fenwick_boundaries_are_the_chunk_ends():
    """fenwick at offset 1: the boundary positions are exactly the multiples of C before the last chunk, and
    chunk (c0, c0 + C] reads {c0} and its roundings to 2^k >= C, i.e. popcount(c0 / C) + 1 states (the
    count from the definition B(t) = {2^k floor((t-1)/2^k)}); at offset 0 the sources c0 - 1, c0 - 2, ...
    are not boundaries and the layout's work estimate exceeds tiled mixing's."""
    C, K = 32, 32
    tables = Pattern.from_spec("fenwick").tables(1 + C * K)
    layout = chunk_layout(tables, C, 1)
    assert layout.boundary.tolist() == list(range(0, C * K, C)) and is_aligned(layout)
    assert layout.ext_count.tolist() == [0] + [bin(j).count("1") + 1 for j in range(K)]
    assert layout.m == 6 and layout.span == 0
    assert not is_aligned(chunk_layout(tables, C, 0))
    assert aligned_layout(tables).offset == 1
    blocks = chunk_layout(Pattern.from_spec("blocks:16").tables(200), 16, 0)   # block ends 15, 31, ...
    assert blocks.boundary.tolist() == list(range(15, 192, 16)) and blocks.m == 1


@pytest.mark.parametrize("spec", ["fenwick", "ssm", "window:4+fenwick", "blocks:4+fenwick", "fenwick+lags:5", "power2",
                                  "blocks:16", "lags:1,3,7"])
def test_level_slots_are_exactly_the_layouts_that_walk_by_level(spec):
    """``level_slots`` gives slots exactly where, for every boundary state p and each of its sources s, no state
    between s and p has the level of s (its trailing zero bits; state 0 a level of its own), so that s is still in
    its level's slot when step p reads it; and then the levels themselves: state p's slot is its trailing zero bits
    (state 0 the one after the levels), each source's slot its own, ``bit_length(P - 1) + 1`` slots; None where some
    source would have left its slot, or where more slots than ``most`` would be needed. fenwick's and ssm's layouts
    walk by level (``proofs/fenwick_level_slots.py``)."""
    from glrtheory.kernels.scan.readout_plan import boundary_tables

    def level(p):
        return -1 if p == 0 else format(p, "b")[::-1].index("1")

    for n in (1, 2, 17, 63, 200, 1000, 4097):
        for C in (4, 16, 64):
            layout = aligned_layout(Pattern.from_spec(spec).tables(n), C)
            src = boundary_tables(layout).b_idx
            fits = all(level(z) != level(s) for p in range(layout.n_boundary) for s in src[p] if s >= 0
                       for z in range(s + 1, p))
            if spec in ("fenwick", "ssm"):
                assert fits, (n, C)
            got = level_slots(layout, 99)
            assert (got is not None) == fits, (n, C)
            if got is None:
                continue
            P = layout.n_boundary
            levels = max(P - 1, 0).bit_length()
            home, src_slot = got
            assert home.tolist() == [levels] * (P > 0) + [format(p, "b")[::-1].index("1") for p in range(1, P)]
            src = boundary_tables(layout).b_idx
            assert (src_slot == np.where(src >= 0, home[np.maximum(src, 0)], -1)).all()
            assert level_slots(layout, levels + 1) is not None and (P < 2 or level_slots(layout, levels) is None)
    if spec in ("fenwick", "ssm"):
        assert level_slots(aligned_layout(Pattern.from_spec(spec).tables(16384), 64), 9) is not None


@pytest.mark.parametrize("spec", ["fenwick", "ssm", "window:4+fenwick", "blocks:4+fenwick", "fenwick+lags:5", "power2",
                                  "blocks:16", "lags:1,3,7", "window:8"])
def test_chunk_slots_hold_each_chunks_sources(spec):
    """``chunk_slots`` (the walk over the chunks): where it gives tables, each of chunk c's sources is the latest
    boundary state before the chunk in its slot's level (counted here over the states, not walked), in the column
    of E it takes, and every source has a slot; each chunk's state, row and slot are its boundary's. It gives
    tables wherever ``level_slots`` does and every chunk reads only such latest states, and not without boundary
    states: so for fenwick and ssm at every length from 17, and not for power2 from 200 on, whose chunks read more
    states than it has levels."""
    from glrtheory.kernels.scan.readout_plan import chunk_slots

    for n in (1, 2, 17, 63, 200, 1000, 4097):
        for C in (4, 16, 64):
            layout = aligned_layout(Pattern.from_spec(spec).tables(n), C)
            levels = level_slots(layout, 99)
            got = None if levels is None else chunk_slots(layout, levels[0])
            chunk_of = layout.boundary_row // C
            sources = [[s for s in layout.ext[c][:layout.ext_count[c]]] for c in range(layout.n_chunks)]
            if levels is None or not layout.n_boundary:
                assert got is None
                continue
            home = levels[0]

            def latest(c, slot):
                before = [p for p in range(layout.n_boundary) if chunk_of[p] < c and home[p] == slot]
                return max(before, default=-1)
            fits = all(s == latest(c, home[s]) for c in range(layout.n_chunks) for s in sources[c])
            assert (got is not None) == fits, (n, C)
            if spec in ("fenwick", "ssm") and n >= 17:
                assert fits, (n, C)
            if spec == "power2" and n >= 200:
                assert not fits, (n, C)
            if got is None:
                continue
            column, state, row, slot_of = got
            for c in range(layout.n_chunks):
                taken = {slot: j for slot, j in enumerate(column[c]) if j >= 0}
                assert sorted(taken.values()) == list(range(len(sources[c]))), (n, C, c)
                assert all(sources[c][j] == latest(c, slot) for slot, j in taken.items())
                mine = [p for p in range(layout.n_boundary) if chunk_of[p] == c]
                assert state[c] == (mine[0] if mine else -1) and len(mine) <= 1
                if mine:
                    assert (row[c], slot_of[c]) == (layout.boundary_row[mine[0]] % C, home[mine[0]])


def test_fenwick_work_grows_like_n_log_n_and_memory_like_n():
    """FLOPs (torch's counter: matrix products and the registered glr_scan formula) at T and 4T: the ratio
    is above 4 (n) and at most 4 log(4T) / log(T) = 4.8 (n log n) plus 0.6, far from 16 (n^2, the tiled
    algorithm; step 4 reads popcount + 1 states per chunk, log2(T / C) / 2 + 1 on average, so the ratio
    is about 4.2 at d = 16); the largest tensor
    any op produces and the storage autograd keeps for the backward grow about 4-fold
    (O(T (C + w + m + d) + |P| d_k d_v)), and no T x T tensor is built."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Largest.numel = max(Largest.numel, t.numel())
            return out

    def measure(T, d=16):
        tables = Pattern.from_spec("fenwick").tables(T)
        q, k, v = torch.randn(3, 1, T, 1, d)
        a, b = torch.rand(1, T, 1, tables.a_idx.shape[1]), torch.rand(1, T, 1, tables.b_idx.shape[1]) / 8
        Largest.numel, saved = 0, {}

        def keep(x):                      # the storages autograd saves (each counted once)
            saved[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes() // x.element_size()
            return x

        leaves = [x.requires_grad_() for x in (q, k, v, a, b)]
        with FlopCounterMode(display=False) as counter, Largest(), \
                torch.autograd.graph.saved_tensors_hooks(keep, lambda x: x):
            glr_readout(*leaves, tables)
        return counter.get_total_flops(), Largest.numel, sum(saved.values())

    (f1, m1, s1), (f4, m4, s4) = measure(1024), measure(4096)
    assert 4.1 <= f4 / f1 <= 4 * math.log(4096) / math.log(1024) + 0.6, f4 / f1
    assert m4 / m1 <= 4.5 and m4 < 4096 * 4096 / 8, (m1, m4)
    assert s4 / s1 <= 4.5, (s1, s4)
    # with d_k = d_v = 64: a few T (C + w + m + d_k + d_v) and |P| d_k d_v, not the T / C x m gathered states
    layout = aligned_layout(Pattern.from_spec("fenwick").tables(4096))
    bound = 5 * 4096 * (layout.chunk + layout.span + layout.m + 128) + 3 * layout.n_boundary * 64 * 64
    assert measure(4096, d=64)[2] <= bound < layout.n_chunks * layout.m * 64 * 64 * 3


def test_autocast_and_half_inputs(rng):
    """Under CPU autocast(bfloat16) float64 inputs still compute in float64 (1e-12); float16 inputs compute
    their products in float16 and return float16 (1e-2; bf16 and autocast: ``test_readout_bf16``). The
    aligned algorithm forced: at n = 100 the choice is tiled mixing."""
    tables, xs = problem(rng, "fenwick", 100)
    ref = naive_readout(*xs, tables)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = glr_readout(*xs, tables, algorithm="chunked_aligned")
    assert out.dtype == torch.float64 and rel_err(out, ref) <= 1e-12
    xs = [x.half() for x in xs]
    half = glr_readout(*xs, tables, algorithm="chunked_aligned")
    assert (half.dtype == torch.float16
            and rel_err(half.double(), naive_readout(*(x.double() for x in xs), tables)) <= 1e-2)


def test_bad_algorithm_is_named():
    tables = Pattern.from_spec("fenwick").tables(8)
    q, a, b = torch.randn(1, 8, 1, 2), torch.rand(1, 8, 1, 1), torch.rand(1, 8, 1, tables.b_idx.shape[1])
    for bad in ("direct", "flash"):
        with pytest.raises(GLRError, match="algorithm must be one of"):
            glr_readout(q, q, q, a, b, tables, algorithm=bad)
    assert np.isfinite(glr_readout(q, q, q, a, b, tables, algorithm="tiled_mixing").numpy()).all()


def test_benchmark_runs(tmp_path):
    """``benchmarks/bench_readout.py --quick`` runs and writes its JSON (machine, rows, fitted exponents)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_readout.py"
    subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path / "r.json")], check=True,
                   capture_output=True)
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["machine"]["cores"] and {f["algorithm"] for f in result["fits"]} == {"tiled_mixing",
                                                                                      "chunked_aligned"}


def test_readme_quotes_the_benchmark():
    """The README's readout numbers are those of ``benchmarks/results/readout.json``."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = json.loads((root / "benchmarks" / "results" / "readout.json").read_text())
    readme = (root / "README.md").read_text()
    rows = {(r["algorithm"], r["passes"], r["T"]): r["seconds"] for r in result["rows"]}
    fits = {(f["algorithm"], f["passes"]): f for f in result["fits"]}
    tiled, aligned = rows["tiled_mixing", "forward", 4096], rows["chunked_aligned", "forward", 4096]
    assert "machine" in result and "`readout.json`" in readme
    assert (f"{tiled * 1e3:.1f} ms by tiled mixing and {aligned * 1e3:.1f} ms by chunked_aligned "
            f"({tiled / aligned:.1f}x faster)") in " ".join(readme.split())
    exponents = [fits[k]["fitted_exponent"] for k in (("tiled_mixing", "forward"), ("chunked_aligned", "forward"),
                                                      ("chunked_aligned", "forward+backward"))]
    assert "tiled {:.2f} (theory 2), aligned {:.2f} forward and {:.2f} forward+backward".format(*exponents) in \
        " ".join(readme.split())


def test_memory_limit_refuses_and_falls_back():
    """A forced chunked_aligned over ``memory_limit`` raises naming the limit and the sizes (lags:64 at
    T = 4096: every chunk reads 64 states, 4032 boundary states of 64 x 64; it ran 26.9 s against 0.55 s
    tiled); the default choice never picks a layout over the limit: attention+ssm at T = 2048 (A reaches
    back to 0, dense blocks ~ T^2 per head) gets tiled mixing although its aligned work estimate is lower."""
    from glrtheory.kernels.scan import readout_plan as plan
    tables = Pattern.from_spec("lags:64").tables(4096)
    q = torch.randn(1, 4096, 1, 64)
    with pytest.raises(GLRError, match=r"over its limit 12582912 = max\(8388608, 16 T \(C \+ d_k \+ d_v\)\)") as info:
        glr_readout(q, q, q, torch.rand(1, 4096, 1, 1), torch.rand(1, 4096, 1, 1), tables, algorithm="chunked_aligned")
    assert "4032 boundary states of 64 x 64" in str(info.value) and "m=64" in str(info.value)
    tables = Pattern.from_spec("attention+ssm").tables(2048)
    assert readout_algorithm(tables)[0] == "tiled_mixing"
    for C in plan.CHUNKS:
        for offset in plan.OFFSETS:
            layout = chunk_layout(tables, C, offset)
            assert plan.work(layout) < plan.tiled_work(tables) and plan.memory(layout) > plan.memory_limit(layout)


def random_tables(rng, T, wa=4, wb=3):
    """Hand-made tables: A(t) up to ``wa`` sources anywhere in ``[0, t]`` (far-reaching), B(t) up to ``wb``
    sources anywhere in ``[0, t)`` (long-range edges); sorted rows, -1 padded."""
    from glrtheory.patterns.tables import IndexTables
    a, b = np.full((T, wa), -1), np.full((T, wb), -1)
    for t in range(T):
        row = np.unique(rng.integers(0, t + 1, rng.integers(1, wa + 1)))
        a[t, :row.size] = row
        row = np.unique(rng.integers(0, t, rng.integers(0, wb + 1))) if t else []
        b[t, :len(row)] = row
    return IndexTables(a, b)


@pytest.mark.parametrize("T", [1, 2, 63, 130])
def test_random_tables_match_reference(rng, T):
    """Random tables (``random_tables``), forced chunked_aligned in chunks of 1, 5 and 16 and the default
    choice, float64 against the materializing reference (1e-12); batch 2 and 2 heads, a and b of batch and
    heads 1 (broadcast)."""
    tables = random_tables(rng, T)
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    q, k = (torch.tensor(rng.standard_normal((2, T, 2, 3))) for _ in range(2))
    v = torch.tensor(rng.standard_normal((2, T, 2, 4)))
    a = torch.tensor(rng.uniform(0.5, 1.5, (1, T, 1, wa)) * rng.choice([-1, 1], (1, T, 1, wa)))
    b = torch.tensor(rng.uniform(-1, 1, (1, T, 1, wb)) / wb)
    ref = naive_readout(q, k, v, a.expand(2, T, 2, wa), b.expand(2, T, 2, wb), tables)
    assert torch.isfinite(ref).all()
    if T >= 63:                                # A reaches before the chunks and B crosses them
        layout = aligned_layout(tables, 5)
        assert layout.span > 5 and layout.m >= 3 and layout.n_boundary > T // 5, layout[1:6]
    for chunk, algorithm in [(1, "chunked_aligned"), (5, "chunked_aligned"), (16, "chunked_aligned"), (None, None)]:
        out = glr_readout(q, k, v, a, b, tables, chunk=chunk, algorithm=algorithm)
        assert out.shape == v.shape and rel_err(out, ref) <= 1e-12, (chunk, algorithm)


@pytest.mark.parametrize("spec", ["fenwick", "ssm"])
def test_walk_split_balances_the_two_parts(spec):
    """``walk_split`` (the fused walk split in two): for fenwick and ssm, at every length and chunk with two boundary
    states or more, the power of two m below their number whose chunk leaves the longer of the two parts shortest
    (counted here over every m), and that chunk (``proofs/fenwick_split_walk.py`` proves the split holds for fenwick
    at every m); None with fewer states."""
    from glrtheory.kernels.scan.readout_plan import walk_split

    for n in (1, 2, 17, 63, 64, 65, 200, 1000, 4097, 4160, 6144, 16448):
        for C in (4, 16, 64):
            layout = aligned_layout(Pattern.from_spec(spec).tables(n), C)
            P, nc = layout.n_boundary, layout.n_chunks
            if P < 2:
                assert walk_split(layout) is None
                continue
            parts = {}
            for m in (2 ** j for j in range(P.bit_length())):
                if m < P:
                    c_m = (layout.boundary[m] + layout.shift) // C
                    parts.setdefault(max(c_m + 1, nc - c_m - 1), (m, c_m))
            m, c_m = parts[min(parts)]
            assert walk_split(layout) == (m, c_m) and c_m < nc - 1, (n, C)
    layout = aligned_layout(Pattern.from_spec(spec).tables(16448), 64)      # 257 states: m = 128, not 256
    assert walk_split(layout)[0] == 128


def test_walk_split_refused_where_a_later_chunk_reads_a_state_below_m():
    """``walk_split`` splits the fused walk at state m only where the chunks after m's read no state between 0 and m
    (the second part starts from H_0 and an unknown H_m: it never holds the others). Hand-made tables, chunks of 16,
    six chunks: ssm's chain (each chunk reads the previous chunk's last row: states 0 to 4) and chunk 3 also reads
    state 1. The walk over the chunks holds every source in its slot (``chunk_slots`` gives tables), the split that
    balances the parts would be at m = 2 (chunk 2), but chunk 3 reads state 1 < m: no split."""
    from glrtheory.kernels.scan.readout_plan import chunk_slots, walk_split

    tables, C = tables_reading_below_the_split()
    layout = chunk_layout(tables, C, 0)
    assert layout.boundary.tolist() == [15, 31, 47, 63, 79]
    assert layout.ext[3, :layout.ext_count[3]].tolist() == [1, 2]
    assert chunk_slots(layout, level_slots(layout, 9)[0]) is not None
    assert walk_split(layout) is None
    tables, C = tables_reading_below_the_split(read=False)     # without that read: split at m = 2, chunk 2
    assert walk_split(chunk_layout(tables, C, 0)) == (2, 2)


def test_memory_limit_counts_the_value_head():
    """The memory check of a forced chunked_aligned counts the boundary states at d_k x d_v: lags:64 at T = 1024 in
    chunks of 64, d_k = 32, fits with d_v = 32 but not with d_v = 70 (each state's ``(C + w + d_v) d_k``), and is
    refused there, naming the states' size."""
    from glrtheory.kernels.scan.readout_plan import over_memory
    tables = Pattern.from_spec("lags:64").tables(1024)
    layout = aligned_layout(tables, 64)
    assert over_memory(layout, 32, 70) and not over_memory(layout, 32, 32)
    q, v = torch.zeros(1, 1024, 1, 32), torch.zeros(1, 1024, 1, 70)
    ab = torch.rand(1, 1024, 1, 1)
    glr_readout(q, q, q, ab, ab, tables, chunk=64, algorithm="chunked_aligned")       # d_v = 32: fits
    with pytest.raises(GLRError, match="boundary states of 32 x 70"):
        glr_readout(q, q, v, ab, ab, tables, chunk=64, algorithm="chunked_aligned")
