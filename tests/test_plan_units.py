"""The kernels' chunk-layout planning (``kernels/scan/readout_plan.py``, ``kernels/scan/plan.py``) against references
written out here: chunks enumerated row by row from the module docstring, dense-block positions through
``np.ravel_multi_index``, the cost and memory formulas of the docstring with their constants written out (SCAN 40,
SOLVE 3, TRAFFIC 32, MEMORY_FACTOR 16, MEMORY_FLOOR 2^23, CHUNKS (64, 128), OFFSETS (0, 1), head size 64), and
layouts written by hand at the exact ties of every comparison."""
import numpy as np
import pytest

from glrtheory import Pattern
from glrtheory.kernels.scan import readout_plan as rp
from glrtheory.kernels.scan.readout_plan import ChunkLayout
from glrtheory.patterns.tables import IndexTables

LAGS40 = "lags:" + ",".join(map(str, range(1, 41)))


def rows(table):
    return [[int(s) for s in r if s >= 0] for r in np.asarray(table)]


def random_tables(seed, T, wa=3, wb=4):
    """A(t): up to ``wa`` sources in [0, t], empty for about one row in five; B(t): up to ``wb`` in [0, t)."""
    rng = np.random.default_rng(seed)
    a, b = np.full((T, wa), -1), np.full((T, wb), -1)
    for t in range(T):
        if rng.random() > 0.2:
            r = np.unique(rng.integers(0, t + 1, rng.integers(1, wa + 1)))
            a[t, :r.size] = r
        if t:
            r = np.unique(rng.integers(0, t, rng.integers(0, wb + 1)))
            b[t, :r.size] = r
    return IndexTables(a, b)


def identity(T, b=None):
    """A(t) = {t}; B empty unless given."""
    return IndexTables(np.arange(T)[:, None], np.full((T, 1), -1) if b is None else b)


class ByHand:
    """The layout of chunks of C rows at ``offset``, enumerated: chunk c starts at row c C - s (s the least s >= 0
    with offset + s a multiple of C) while that is below T; X of a chunk: its rows' B sources before its first row."""

    def __init__(self, tables, C, offset):
        T, A, B = tables.n, rows(tables.a_idx), rows(tables.b_idx)
        self.shift = next(x for x in range(C) if (offset + x) % C == 0)
        self.offset = next(o for o in range(C) if (o - offset) % C == 0)
        self.chunks, start = [], -self.shift
        while start < T:
            self.chunks.append((start, range(max(start, 0), min(start + C, T))))
            start += C
        self.X = [sorted({s for t in r for s in B[t] if s < first}) for first, r in self.chunks]
        self.boundary = sorted({s for x in self.X for s in x})
        self.m = max((len(x) for x in self.X), default=0)
        self.span = max([first - min(A[t]) for first, r in self.chunks for t in r if A[t]] + [0])
        self.first = {t: (c, first) for c, (first, r) in enumerate(self.chunks) for t in r}
        self.ext = [[self.boundary.index(s) for s in x] + [0] * (self.m - len(x)) for x in self.X]
        self.C, self.T, self.A, self.B = C, T, A, B

    def chunk_of_state(self, p):
        return self.first[self.boundary[p]][0]

    def work(self, dk=64, dv=64):
        """The module docstring's estimate; e: the external sources summed over P."""
        nc, C, w, m, P = len(self.chunks), self.C, self.span, self.m, len(self.boundary)
        e = sum(len(self.X[self.chunk_of_state(p)]) for p in range(P))
        return (nc * C * (C + w) * (dk + dv) + 3 * nc * C ** 2 * (C + w + m) + nc * C * m * dk * dv
                + P * (C + w) * dk * dv + 40 * (P + e) * dk * dv + 32 * nc * m * dk * dv)

    def memory(self, dk=64, dv=64):
        nc, C, w, m, P = len(self.chunks), self.C, self.span, self.m, len(self.boundary)
        return nc * C * (3 * (C + w + m) + C) + P * (2 * (C + w) * dk + 2 * dk * dv)

    def limit(self, dk=64, dv=64):
        return max(2 ** 23, 16 * self.T * (self.C + dk + dv))


def tiled_by_hand(tables, dk=64, dv=64):
    A, B = rows(tables.a_idx), rows(tables.b_idx)
    return sum((t + 1) * (dk + dv + 40 * (len(A[t]) + len(B[t]))) for t in range(tables.n))


def span_by_hand(tables):
    """A's widest row span ``max (t - min A(t))`` over rows with entries, 0 without any."""
    return max([t - min(r) for t, r in enumerate(rows(tables.a_idx)) if r] + [0])


def check_layout(tables, C, offset):
    """Every field, the entries' positions and slots, the keys and the boundary tables against ``ByHand``."""
    ref, got = ByHand(tables, C, offset), rp.chunk_layout(tables, C, offset)
    nc, T = len(ref.chunks), tables.n
    assert (got.chunk, got.offset, got.shift, got.n_chunks, got.span, got.m) == (
        C, ref.offset, ref.shift, nc, ref.span, ref.m), (T, C, offset)
    assert got.ext.dtype == got.ext_count.dtype == got.boundary.dtype == np.int64
    assert got.ext.shape == (nc, ref.m) and got.ext.tolist() == ref.ext
    assert got.ext_count.tolist() == [len(x) for x in ref.X] and got.boundary.tolist() == ref.boundary
    assert got.n_boundary == len(ref.boundary) and got.boundary_row.tolist() == [p + ref.shift for p in ref.boundary]
    assert got.first_row(np.arange(T)).tolist() == [ref.first[t][1] for t in range(T)]
    assert got.ext_keys().tolist() == sorted(c * T + s for c, x in enumerate(ref.X) for s in x)
    w, m, want = ref.span, ref.m, {"a": [], "bi": [], "bx": []}
    for side, table in (("a", tables.a_idx), ("b", tables.b_idx)):
        for (t, j), s in np.ndenumerate(table):
            if s < 0:
                continue
            c, first = ref.first[t]
            slot = int(np.ravel_multi_index((t, j), table.shape))
            if side == "a":
                want["a"].append((int(np.ravel_multi_index((c, t - first, s - first + w), (nc, C, C + w))), slot))
            elif s >= first:
                want["bi"].append((int(np.ravel_multi_index((c, t - first, s - first), (nc, C, C))), slot))
            else:
                j_x = ref.X[c].index(s)
                want["bx"].append((int(np.ravel_multi_index((c, t - first, j_x), (nc, C, m))), slot))
    for key, (pos, slot) in got.entries().items():
        assert list(zip(pos.tolist(), slot.tolist())) == want[key], (key, T, C, offset)
    bt = rp.boundary_tables(got)
    assert bt.a_idx.tolist() == [[p] for p in range(len(ref.boundary))]
    assert bt.b_idx.shape == (len(ref.boundary), m) and bt.b_idx.tolist() == [
        ref.ext[ref.chunk_of_state(p)][:len(ref.X[ref.chunk_of_state(p)])]
        + [-1] * (m - len(ref.X[ref.chunk_of_state(p)])) for p in range(len(ref.boundary))]
    return ref, got


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunk_layout_against_the_chunks_enumerated(seed):
    """Random tables (far-reaching A, empty A rows, long B edges) at lengths 1 to 40, chunks of 1 to 64 rows and
    offsets inside, past and below the chunk; also every layout's costs against the docstring's formulas."""
    for T in (1, 2, 5, 17, 40):
        tables = random_tables(seed * 100 + T, T)
        assert rp.tiled_work(tables) == tiled_by_hand(tables) and rp.tiled_work(tables, 3, 5) == tiled_by_hand(
            tables, 3, 5)
        assert rp.direct_work(tables, 3, 5) == T * (64 + span_by_hand(tables)) * 8 == rp.direct_work(tables) // 16
        for C in (1, 2, 3, 7, 16, 64):
            for offset in (0, 1, 2, 5, -1, C + 1):
                ref, got = check_layout(tables, C, offset)
                for d in ((64, 64), (3, 5), (5, 3)):
                    assert rp.work(got, *d) == ref.work(*d) and rp.memory(got, *d) == ref.memory(*d), (T, C, d)
                    assert rp.memory_limit(got, *d) == ref.limit(*d)
                assert rp.is_aligned(got) == (ref.work() < tiled_by_hand(tables) and ref.memory() <= ref.limit())


@pytest.mark.parametrize("spec", ["fenwick", "ssm", "blocks:4", "power2", "window:3+fenwick"])
def test_chunk_layout_of_patterns(spec):
    tables = Pattern.from_spec(spec).tables(50)
    for C, offset in ((4, 0), (4, 1), (16, 1), (7, 3)):
        check_layout(tables, C, offset)


def test_zero_length_and_rows_without_a():
    """T = 0: no chunk at offset 0 (one empty one at offset 1), m = 0; A without entries reaches 0."""
    empty = IndexTables(np.zeros((0, 1), int), np.zeros((0, 1), int))
    for offset, nc in ((0, 0), (1, 1)):
        got = rp.chunk_layout(empty, 4, offset)
        assert (got.n_chunks, got.span, got.m, got.n_boundary, got.ext.shape) == (nc, 0, 0, 0, (nc, 0))
    assert rp.reach(empty, np.arange(0)) == 0
    b = np.array([[-1], [0], [1], [2], [3]])
    no_a = IndexTables(np.full((5, 2), -1), b)
    assert rp.reach(no_a, np.arange(5)) == 0 and rp.reach(no_a, np.full(5, 9)) == 0
    check_layout(no_a, 2, 0)
    assert rp.readout_summary(no_a)["algorithm"] == "tiled_mixing"


def test_reach_is_the_widest_distance_before_first():
    """``max (first[t] - min A(t))`` over rows with entries, and 0 where that is negative."""
    tables = random_tables(7, 30)
    A = rows(tables.a_idx)
    rng = np.random.default_rng(3)
    for first in (np.arange(30), np.zeros(30, int), rng.integers(-5, 40, 30), np.full(30, -3)):
        want = max([int(first[t]) - min(r) for t, r in enumerate(A) if r] + [0])
        assert rp.reach(tables, first) == want


def test_level_slots_are_int64_even_without_states():
    """Slots are int64 indices, also where there is no boundary state (an empty list would make float64)."""
    for tables, C in ((identity(10), 4), (Pattern.from_spec("fenwick").tables(100), 8)):
        home, src_slot = rp.level_slots(rp.chunk_layout(tables, C, 1), 99)
        assert home.dtype == np.int64 and src_slot.dtype.kind == "i"
    home, _ = rp.level_slots(rp.chunk_layout(identity(10), 4, 1), 1)
    assert home.shape == (0,)


def chunk_slots_by_hand(ref, home):
    """``chunk_slots`` from its docstring: None without states or with two in a chunk, or where some source of a
    chunk is not the latest state of an earlier chunk in its slot; columns -1 where no source is held."""
    P, nc = len(ref.boundary), len(ref.chunks)
    chunk = [ref.chunk_of_state(p) for p in range(P)]
    if not P or len(set(chunk)) < P:
        return None
    column = np.full((nc, int(max(home)) + 1), -1)
    for c, x in enumerate(ref.X):
        for j, s in enumerate(x):
            p = ref.boundary.index(s)
            if max(q for q in range(P) if chunk[q] < c and home[q] == home[p]) != p:
                return None
            column[c, home[p]] = j
    state = [chunk.index(c) if c in chunk else -1 for c in range(nc)]
    return column, state


def chain_tables(C, nc, extra):
    """Chunks of C rows, A(t) = {t}; chunk c's second row reads the last row of chunk c - 1 and row ``extra[c]``."""
    b = np.full((C * nc, 2), -1)
    for c in range(1, nc):
        src = sorted({c * C - 1, extra.get(c, c * C - 1)})
        b[c * C + 1, :len(src)] = src
    return identity(C * nc, b)


@pytest.mark.parametrize("case", ["one_slot", "state_0_overwritten", "state_0_kept", "fenwick_levels", "fenwick_one"])
def test_chunk_slots_with_any_slot_assignment(case):
    """A chain of 6 chunks of 4 (states 0 .. 4, the last chunk has none), all in one slot: tables; chunk 3 also reading
    state 0, by then replaced in the slot: None; state 0 in a slot of its own: tables. fenwick (200, chunks of 16) in
    its levels' slots: tables; in one slot: None. Against ``chunk_slots_by_hand``; int arrays (the Triton tables cast
    them to int32)."""
    C = 4
    if case.startswith("fenwick"):
        C = 16
        layout = rp.aligned_layout(Pattern.from_spec("fenwick").tables(200), C)
        ref = ByHand(layout.tables, C, layout.offset)
        home = rp.level_slots(layout, 99)[0] if case == "fenwick_levels" else np.zeros(layout.n_boundary, int)
    else:
        ref, layout = check_layout(chain_tables(C, 6, {} if case == "one_slot" else {3: 3}), C, 0)
        home = np.zeros(layout.n_boundary, int)
        home[0] = case == "state_0_kept"
    got, want = rp.chunk_slots(layout, home), chunk_slots_by_hand(ref, home)
    assert (got is None) == (want is None) == (case in ("state_0_overwritten", "fenwick_one"))
    if got is None:
        return
    column, state, row, slot = got
    assert column.tolist() == want[0].tolist() and state.tolist() == want[1] and -1 in want[1]
    assert all(x.dtype.kind == "i" for x in got)
    has = state >= 0
    assert (row[has] == layout.boundary_row[state[has]] % C).all() and (slot[has] == home[state[has]]).all()


def test_chunk_slots_with_one_state_has_one_slot():
    """Row 17 reads row 15, chunks of 16: one state, so one slot and one column."""
    layout = rp.chunk_layout(identity(20, np.where(np.arange(20) == 17, 15, -1)[:, None]), 16, 0)
    assert layout.boundary.tolist() == [15] and layout.n_chunks == 2
    home, _ = rp.level_slots(layout, 99)
    column, state, row, slot = rp.chunk_slots(layout, home)
    assert home.tolist() == [0] and column.tolist() == [[-1], [0]] and state.tolist() == [0, -1]
    assert row[0] == 15 and slot[0] == 0


def chain(C, nc, reads):
    """Chunks of C rows, A(t) = {t}; ``reads[c]``: the rows chunk c's second row reads."""
    b = np.full((C * nc, 2), -1)
    for c, src in reads.items():
        b[c * C + 1, :len(src)] = src
    return rp.chunk_layout(identity(C * nc, b), C, 0)


def test_walk_split_at_its_boundaries():
    """Two states: split at m = 1. Three states (P - 1 a power of two) with state 2 in the middle chunk of seven:
    m = 2 (longer part 4, against 5 at m = 1). State 0 outside chunk 0, or a later chunk reading state 1 < m: None."""
    two = chain(4, 3, {1: [3], 2: [7]})
    assert two.boundary.tolist() == [3, 7] and rp.walk_split(two) == (1, 1)
    three = chain(4, 7, {1: [3], 2: [7], 4: [15], 5: [15], 6: [15]})
    assert three.boundary.tolist() == [3, 7, 15] and rp.walk_split(three) == (2, 3)
    late = chain(4, 7, {2: [7], 3: [7], 4: [11], 5: [11], 6: [11]})
    assert late.boundary.tolist() == [7, 11] and late.ext_count[0] == 0 and rp.walk_split(late) is None
    below = chain(4, 7, {1: [3], 2: [7], 4: [15], 5: [7], 6: [15]})
    assert rp.walk_split(below) is None
    assert rp.walk_split(chain(4, 7, {1: [3], 2: [7], 4: [15], 5: [3], 6: [15]})) == (2, 3)
    assert rp.walk_split(chain(4, 3, {2: [3]})) is None


def made(tables, C, nc, w):
    """A layout written by hand (a NamedTuple): nc chunks of C rows, reach w, no sources, no boundary states."""
    return ChunkLayout(tables, C, 0, 0, nc, w, 0, np.zeros((nc, 0), np.int64), np.zeros(nc, np.int64),
                       np.zeros(0, np.int64))


def test_aligned_at_the_exact_ties():
    """Work: A(t) = {t} at T = 130 costs 168 * 130 * 131 / 2 = 1430520 tiled; two chunks of 1 row reaching 5459 cost
    2 * 5460 * (128 + 3) = 1430520 as well: not aligned (strictly cheaper only), 5458 is. Memory: two chunks reaching
    1398100 hold 2 (3 * 1398101 + 1) = 2^23 = the limit at T = 2100 (16 * 2100 * 129 is below the floor): aligned,
    and 1398101 (6 more) is refused, with the message's numbers."""
    tables = identity(130)
    assert rp.tiled_work(tables) == 1430520
    assert rp.work(made(tables, 1, 2, 5459)) == 1430520 and not rp.is_aligned(made(tables, 1, 2, 5459))
    assert rp.is_aligned(made(tables, 1, 2, 5458))
    tables = identity(2100)
    fits, over = made(tables, 1, 2, 1398100), made(tables, 1, 2, 1398101)
    assert rp.memory(fits) == rp.memory_limit(fits) == 2 ** 23 and rp.memory(over) == 2 ** 23 + 6
    assert rp.work(over) < rp.tiled_work(tables) == 84 * 2100 * 2101
    assert rp.is_aligned(fits) and not rp.is_aligned(over)
    assert rp.over_memory(fits, 64, 64) is None
    assert rp.over_memory(over, 64, 64) == (
        "the chunked_aligned readout would hold 8388614 elements per head (T=2100, chunk C=1, reach w=1398101, m=0, "
        "0 boundary states of 64 x 64), over its limit 8388608 = max(8388608, 16 T (C + d_k + d_v)); "
        "use algorithm='tiled_mixing'")


def test_over_memory_counts_d_k_and_d_v_apart():
    """128 chunks of 64 reaching 1000, 4 states, T = 8192, d_k 32, d_v 100: 8192 (3 * 1064 + 64) + 4 * 2 * (1064 + 100)
    * 32 = 26971136 over 16 * 8192 * 196 = 25690112; at reach 900 it fits."""
    tables = identity(8192)
    layout = made(tables, 64, 128, 1000)._replace(boundary=np.arange(4))
    assert rp.over_memory(layout, 32, 100) == (
        "the chunked_aligned readout would hold 26971136 elements per head (T=8192, chunk C=64, reach w=1000, m=0, "
        "4 boundary states of 32 x 100), over its limit 25690112 = max(8388608, 16 T (C + d_k + d_v)); "
        "use algorithm='tiled_mixing'")
    assert rp.over_memory(layout._replace(span=900), 32, 100) is None


def test_ssm_costs_written_out():
    """ssm, T = 64, chunks of 16 at offset 0: 4 chunks, states 15, 31, 47, m = 1, e = 2, w = 0."""
    b = (np.arange(64) - 1)[:, None]
    b[0] = -1
    layout = rp.chunk_layout(identity(64, b), 16, 0)
    assert (layout.n_chunks, layout.m, layout.span, layout.boundary.tolist()) == (4, 1, 0, [15, 31, 47])
    assert rp.memory(layout, 3, 5) == 4 * 16 * (3 * 17 + 16) + 3 * 2 * (16 + 5) * 3 == 4666
    assert rp.work(layout, 3, 5) == (64 * 16 * 8 + 3 * 4 * 256 * 17 + 64 * 15 + 3 * 16 * 15 + 40 * 5 * 15
                                     + 32 * 4 * 15) == 67016


def aligned_by_hand(tables, chunk=None):
    """(C, offset, work) of the cheapest layout over C in (64, 128) up to max(T, 64) and offsets (0, 1) below C,
    aligned ones only unless ``chunk`` is given; the first on a tie; None without one."""
    sizes = [C for C in (64, 128) if C <= max(tables.n, 64)] if chunk is None else [chunk]
    best, tiled = None, tiled_by_hand(tables)
    for C in sizes:
        for offset in (0, 1)[:C]:
            ref = ByHand(tables, C, offset)
            if chunk or ref.work() < tiled and ref.memory() <= ref.limit():
                if best is None or ref.work() < best[2]:
                    best = (C, offset, ref.work())
    return best


@pytest.mark.parametrize("spec", [LAGS40, "window:100+lags:1,2,3", "blocks:64", "window:60+fenwick", "ssm",
                                  "attention+lags:1,2,3,4,5,6,7,8"])
def test_aligned_layout_is_the_cheapest_aligned_one(spec):
    """At lengths around both chunk sizes; a given chunk gets its cheapest offset, aligned or not; ``readout_work``
    is the least work over the chunk sizes up to T, aligned or not."""
    for T in (63, 64, 65, 127, 128, 129, 200):
        tables = Pattern.from_spec(spec).tables(T)
        want, got = aligned_by_hand(tables), rp.aligned_layout(tables)
        assert (None if got is None else (got.chunk, got.offset, rp.work(got))) == want, T
        for C in (1, 16, 64):
            layout = rp.aligned_layout(tables, C)
            assert (layout.chunk, layout.offset, rp.work(layout)) == aligned_by_hand(tables, C), (T, C)
        least = min(aligned_by_hand(tables, C)[2] for C in (64, 128) if C <= max(T, 64))
        assert rp.readout_work(tables, "chunked_aligned") == least
        assert rp.readout_work(tables, "tiled_mixing") == tiled_by_hand(tables)
        assert rp.readout_work(tables, "direct") == T * (64 + span_by_hand(tables)) * 128


def test_the_chunk_sizes_stop_at_t():
    """lags:1..40: only chunks of 128 are aligned below T = 200, so none at T = 127 (128 rows > T) and chunks of 128 at
    T = 128; at 127 the aligned work is that of chunks of 64."""
    short, exact = Pattern.from_spec(LAGS40).tables(127), Pattern.from_spec(LAGS40).tables(128)
    assert rp.aligned_layout(short) is None and rp.aligned_layout(exact).chunk == 128
    assert rp.readout_work(short, "chunked_aligned") == ByHand(short, 64, 0).work() == 52101120
    assert rp.readout_summary(short) == {"algorithm": "tiled_mixing", "cost_class": "n (n + nnz)", "chunk": None,
                                         "w": None, "m": None, "boundary_states": None}
    assert rp.readout_summary(exact) == {"algorithm": "chunked_aligned", "cost_class": "n (w + m)", "chunk": 128,
                                         "w": 0, "m": 0, "boundary_states": 0}
    assert rp.readout_choice(short) == ("tiled_mixing", "n (n + nnz)")


def test_readout_summary_of_a_direct_pattern():
    tables = Pattern.from_spec("window:5").tables(100)
    assert rp.readout_summary(tables) == {"algorithm": "direct", "cost_class": "n w", "chunk": None, "w": 4,
                                          "m": None, "boundary_states": None}
    assert rp.readout_choice(tables) == ("direct", "n w")
    summary = rp.readout_summary(Pattern.from_spec("fenwick").tables(1025))
    summary["chunk"] = 0
    assert rp.readout_summary(Pattern.from_spec("fenwick").tables(1025))["chunk"] == 64


def test_scan_plan_pointers_and_length():
    """``Plan.n`` is T (tables wider than long); every ``ptr`` is int64 and counts the entries of the rows before."""
    torch = pytest.importorskip("torch")
    from glrtheory.kernels.scan.plan import scan_plan

    a = np.array([[0, -1, -1, -1, -1, -1], [0, 1, -1, -1, -1, -1], [1, 2, -1, -1, -1, -1]])
    b = np.array([[-1, -1], [0, -1], [0, 1]])
    tables, n = IndexTables(a, b), 3
    plan = scan_plan(tables, "cpu")
    assert plan.n == 3
    A, B = rows(a), rows(b)
    want = {"a": [sum(len(A[u]) for u in range(t)) for t in range(n + 1)],
            "b": [sum(len(B[u]) for u in range(t)) for t in range(n + 1)],
            "at": [sum(s < r for x in A for s in x) for r in range(n + 1)],
            "bt": [sum(n - 1 - s < r for x in B for s in x) for r in range(n + 1)]}
    for side, ptr in want.items():
        got = getattr(plan, side + "_ptr")
        assert got.dtype == torch.int64 and got.tolist() == ptr, side


@pytest.mark.parametrize("call, message", [
    (lambda t: rp.aligned_layout(t, 0), "chunk must be >= 1, got 0"),
    (lambda t: rp.aligned_layout(t, 2.0), "chunk must be an integer, got 2.0"),
    (lambda t: rp.chunk_layout(t, 0, 0), "chunk C must be >= 1, got 0"),
    (lambda t: rp.chunk_layout(t, -2, 1), "chunk C must be >= 1, got -2")],
    ids=["aligned_0", "aligned_float", "layout_0", "layout_negative"])
def test_a_chunk_below_1_is_refused_by_name(call, message):
    """Before: None (against the docstring), ZeroDivisionError, numpy's "'minlength' must not be negative", a cast
    error."""
    from glrtheory import GLRError

    with pytest.raises(GLRError, match=f"^{message}$"):
        call(Pattern.from_spec("ssm").tables(10))
    assert rp.aligned_layout(Pattern.from_spec("ssm").tables(10), np.int64(1)).chunk == 1
