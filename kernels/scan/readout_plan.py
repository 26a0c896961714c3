"""Which algorithm ``glr_readout`` runs for a pattern, and the chunk layout of the aligned one (numpy only:
``glr analyze`` reads it without importing torch).

Chunks. Rows are cut into chunks of C rows at an offset o: chunk c holds the rows
``t in [c C - s, (c + 1) C - s)`` with ``s = (C - o) mod C``, so the rows before o form a first, short chunk
(``fenwick`` aligns with o = 1: for ``t in (c0, c0 + C]``, ``c0`` a multiple of C, every B source
``2^k floor((t - 1) / 2^k)`` lies in the chunk or is a multiple of C; ``blocks:C`` with o = 0; ``ssm`` with
any o). For a chunk with rows R starting at r0:

* A's entries of R fall in the columns ``[r0 - w, r0 + C)``, w the widest reach of any chunk (``span``);
* B's entries inside R form the strictly lower ``B_RR`` (C x C); those before r0 are the chunk's
  *external sources* ``X_R`` (sorted; ``m = max |X_R|``); their union over all chunks is the set P of
  *boundary positions*, the only positions whose d_k x d_v states the aligned readout keeps.

``chunk_layout`` gives this layout for one (C, o). Two estimates of multiply-adds per head decide
(``NOMINAL_D`` head size; a term of the vector-state scan ``glr_scan`` costs ``SCAN`` of them per channel,
an element of a triangular solve ``SOLVE``):

* ``work(layout)``, the aligned readout: ``nc C (C + w) (d_k + d_v)`` (scores and weighted values),
  ``SOLVE nc C^2 (C + w + m)`` (the triangular solves), ``nc C m d_k d_v`` (reading boundary states),
  ``|P| (C + w) d_k d_v`` (their inputs), ``SCAN (|P| + e) d_k d_v`` (their recurrence: e the external
  sources summed over P) and ``TRAFFIC nc m d_k d_v`` (each chunk gathers its m states);
* ``tiled_work(tables)``, tiled mixing: ``sum_t (t + 1) (d_k + d_v + SCAN (|A(t)| + |B(t)|))``: M's lower
  triangle in scores and weighted values, and the scan that builds its column tiles.

Memory: the aligned readout holds about ``memory(layout)`` elements per head at once: the dense blocks
``nc C (3 (C + w + m) + C)`` (``[M | E]``, its right-hand side and the weighted scores; ``B_RR``) and per
boundary position its key block and state ``|P| (2 (C + w) d_k + 2 d_k d_v)``. Its limit ``memory_limit``
is ``max(MEMORY_FLOOR, MEMORY_FACTOR T (C + d_k + d_v))``: 16 times the inputs plus one C-wide row block.

A layout is *aligned* (``is_aligned``) when its work is below tiled mixing's and its memory within the
limit (``attention+ssm``, whose A reaches back to 0, has ``w = T - C``: from T ~ 1500 on it is over it).
``aligned_layout`` tries
``CHUNKS`` (those up to T) x ``OFFSETS`` and keeps the cheapest aligned layout; ``readout_choice`` names the
algorithm: ``direct`` when B is empty, ``chunked_aligned`` when an aligned layout exists,
``tiled_mixing`` otherwise.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glrtheory.checks import check_integer
from glrtheory.patterns.support import rank_in_runs, sorted_distinct
from glrtheory.patterns.tables import IndexTables

#: Algorithm name -> cost class of its work in T (w: the widest A row span (direct) or how far A reaches
#: before a chunk's first row (aligned, ``ChunkLayout.span``; the chunk itself adds C); m: the boundary
#: states a chunk reads; nnz: nnz(A) + nnz(B), so that tiled mixing is n^2 for rows of bounded size, n^2 log n for
#: power2).
ALGORITHMS = {"chunked_aligned": "n (w + m)", "direct": "n w", "tiled_mixing": "n (n + nnz)"}
#: Chunk lengths and offsets the aligned readout tries (chunks of 32 ran 1.4-1.7x slower than 64 for ssm
#: and fenwick at T = 4096 and 16384 on a 2-core CPU, d_k = d_v = 64: small products, more states).
CHUNKS = (64, 128)
OFFSETS = (0, 1)
#: Nominal head size d_k = d_v of the estimates.
NOMINAL_D = 64
#: Multiply-adds one term of ``glr_scan`` costs per channel, and one element ``C^2 (C + w + m)`` of the
#: triangular solves, in the estimates (measured on one thread of a 2-core CPU, fenwick and lags:1,40 at
#: T = 1024-4096: 2-3 ns a scan term and channel, 0.13 ns a solve element, 0.045 ns a multiply-add of the
#: chunk products). With them fenwick and ssm get chunks of 64, which ran 1.1-1.4x faster than 128.
SCAN = 40
SOLVE = 3
#: The aligned readout's memory limit per head: ``max(MEMORY_FLOOR, MEMORY_FACTOR T (C + d_k + d_v))`` elements.
MEMORY_FACTOR = 16
MEMORY_FLOOR = 2**23
#: Multiply-adds one moved element of a d_k x d_v state costs in ``work`` (about where a CPU or GPU turns
#: memory bound: a chunk of 32 rows reading a state does 32 multiply-adds per element it moves).
TRAFFIC = 32
#: The most estimated multiply-adds one readout call may take, ``batch x heads x`` the chosen algorithm's estimate at
#: the call's d_k, d_v (``over_work``), by device type (others: the CPU's). On one thread of a 2-core CPU a unit took
#: 0.035-0.054 ns in tiled mixing and 0.135 ns in direct (power2, quadratic and attention at T = 4096-8192, d 16-64),
#: so 2^40 is about 40-150 s; on an H200 power2's tiled mixing ran 3.7e13 units a second (B8 T2048 H8 D128 bf16,
#: 2.66 ms forward), so 2^50 is about 30 s forward. Past it the call is refused: quadratic patterns at long T.
MAX_WORK = {"cpu": 2**40, "cuda": 2**50}


class ChunkLayout(NamedTuple):
    """The chunk layout of the aligned readout (module docstring): chunk C, offset, ``shift`` s (a row t
    sits at padded row ``t + s``, chunk ``(t + s) // C``), ``n_chunks``, ``span`` w, ``m``; ``ext [nc, m]``
    the index in P of each chunk's external sources (0 in padding) and ``ext_count [nc]`` how many there
    are; ``boundary [|P|]`` the positions P (numpy int64). ``entries`` places the coefficients."""

    tables: IndexTables
    chunk: int
    offset: int
    shift: int
    n_chunks: int
    span: int
    m: int
    ext: np.ndarray
    ext_count: np.ndarray
    boundary: np.ndarray

    @property
    def n_boundary(self) -> int:
        return int(self.boundary.size)

    @property
    def boundary_row(self) -> np.ndarray:
        """The padded rows ``p + s`` of the boundary positions."""
        return self.boundary + self.shift

    def first_row(self, rows: np.ndarray) -> np.ndarray:
        """The first row of each row's chunk (negative for the short first chunk)."""
        return (rows + self.shift) // self.chunk * self.chunk - self.shift

    def entries(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"a": .., "bi": .., "bx": ..}``: for every valid entry of A, of B inside its chunk and of B
        before it, ``(pos, slot)``: its flat position in the dense ``[nc, C, C + w]``, ``[nc, C, C]`` and
        ``[nc, C, m]`` blocks, and its coefficient's flat slot ``t w' + j`` in ``[T, w']``."""
        C, s, w, T = self.chunk, self.shift, self.span, self.tables.n
        a, b = self.tables.csr("a"), self.tables.csr("b")
        a_row, b_row = a.row, b.row
        out = {"a": ((a_row + s) * (C + w) + a.src - self.first_row(a_row) + w, a.slot)}
        inside = b.src >= self.first_row(b_row)
        rows = b_row[inside]
        out["bi"] = ((rows + s) * C + b.src[inside] - self.first_row(rows), b.slot[inside])
        rows, src = b_row[~inside], b.src[~inside]
        chunk = (rows + s) // C
        table = self.ext_keys()                                 # j: the rank of the source in its chunk's X
        j = np.searchsorted(table, chunk * T + src) - np.searchsorted(table, chunk * T)
        out["bx"] = ((rows + s) * self.m + j, b.slot[~inside])
        return out

    def ext_keys(self) -> np.ndarray:
        """Sorted keys ``chunk T + source`` of every chunk's external sources."""
        chunk = np.repeat(np.arange(self.n_chunks), self.ext_count)
        mask = np.arange(self.m) < self.ext_count[:, None]
        return chunk * self.tables.n + self.boundary[self.ext[mask]]


def reach(tables: IndexTables, first: np.ndarray) -> int:
    """How far A reaches before ``first[t]``: ``max_t (first[t] - min A(t))`` over rows with entries, at least 0
    (``first[t] = t``: the widest row span of the direct readout; the chunk's first row: w of a layout)."""
    lowest = tables.a_idx[:, 0]                             # rows are sorted: the first entry is the least
    return int(max(0, (first - lowest)[lowest >= 0].max(initial=0)))


def chunk_layout(tables: IndexTables, C: int, offset: int) -> ChunkLayout:
    """The layout of chunks of C rows at ``offset`` (module docstring)."""
    C = check_integer(C, "chunk C", 1)
    T = tables.n
    s = (C - offset % C) % C
    nc = -(-(T + s) // C)
    first = (np.arange(T) + s) // C * C - s
    b = tables.b_idx
    outside = (b >= 0) & (b < first[:, None])
    rows, src = np.nonzero(outside)[0], b[outside].astype(np.int64)
    seen = np.zeros(T, dtype=bool)
    seen[src] = True
    boundary = np.flatnonzero(seen)
    keys = sorted_distinct((rows + s) // C * T + src)       # (chunk, source) pairs, sorted
    chunk_of = keys // T
    count = np.bincount(chunk_of, minlength=nc)             # |X| of each chunk
    j = rank_in_runs(count)                                 # a source's rank in its chunk's X
    m = int(count.max(initial=0))
    ext = np.zeros((nc, m), dtype=np.int64)
    ext[chunk_of, j] = (np.cumsum(seen) - 1)[keys - chunk_of * T]           # a source's rank in P
    return ChunkLayout(tables, C, offset % C, s, nc, reach(tables, first), m, ext, count, boundary)


def boundary_tables(layout: ChunkLayout) -> IndexTables:
    """The tables of the recurrence among the boundary states ``H_p = L_p + sum_j E[p, j] H_{X_j}``: A the
    identity, B row p the indices in P of the external sources X of p's chunk (they precede the chunk)."""
    chunk = layout.boundary_row // layout.chunk
    b_tab = np.where(np.arange(layout.m) < layout.ext_count[chunk][:, None], layout.ext[chunk], -1)
    return IndexTables(np.arange(layout.n_boundary)[:, None], b_tab)


def level_slots(layout: ChunkLayout, most: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(home [P], src_slot [P, m])``: each boundary state's slot, its Fenwick level (the trailing zero bits of p;
    state 0 the slot after the levels, ``proofs/fenwick_level_slots.py``), and the slot of each of step p's sources
    (-1 padded), where a walk that puts state p in its slot after step p finds every source of every step in its
    slot (checked here, step by step) with at most ``most`` slots; else None."""
    P = layout.n_boundary
    levels = max(P - 1, 0).bit_length()
    if levels + 1 > most:
        return None
    home = np.array([levels if p == 0 else (p & -p).bit_length() - 1 for p in range(P)], dtype=np.int64)
    src = boundary_tables(layout).b_idx
    held = np.full(levels + 1, -1)
    for p in range(P):
        sources = src[p][src[p] >= 0]
        if (held[home[sources]] != sources).any():
            return None
        held[home[p]] = p
    return home, np.where(src >= 0, home[np.maximum(src, 0)], -1)


def chunk_slots(layout: ChunkLayout, home: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """``(column [nc, slots], state [nc], row [nc], home [nc])`` for a walk over the chunks (``chunk_walk``) that
    takes chunk c's output, then its boundary state, each state p in slot ``home[p]`` (``level_slots``): for each
    slot the column j of chunk c's sources (and of E) whose state it holds then (-1 if none), the chunk's boundary
    state (-1 if none), that state's row in the chunk and its slot; where every chunk has at most one boundary state
    (its row reads the chunk's sources: ``boundary_tables``) and every source of every chunk is in its slot when the
    chunk is taken (checked here, chunk by chunk); else (or with no boundary states) None."""
    if not layout.n_boundary:
        return None
    C, nc, m = layout.chunk, layout.n_chunks, layout.m
    chunk, row = layout.boundary_row // C, layout.boundary_row % C
    if len(np.unique(chunk)) < len(chunk):
        return None
    state = np.full(nc, -1)
    state[chunk] = np.arange(len(chunk))
    sources = np.where(np.arange(m) < layout.ext_count[:, None], layout.ext, -1)
    held = np.full(home.max(initial=0) + 1, -1)
    for c in range(nc):
        read = sources[c][sources[c] >= 0]
        if (held[home[read]] != read).any():
            return None
        if state[c] >= 0:
            held[home[state[c]]] = state[c]
    column = np.full((nc, len(held)), -1)
    chunks, j = np.nonzero(sources >= 0)
    column[chunks, home[sources[chunks, j]]] = j
    return column, state, np.where(state >= 0, row[state], 0), np.where(state >= 0, home[np.maximum(state, 0)], -1)


def walk_split(layout: ChunkLayout) -> tuple[int, int] | None:
    """``(m, c_m)``: the power of two m < P whose chunk c_m splits the chunks most evenly (the longer part, ``c_m + 1``
    or ``nc - c_m - 1`` chunks, the shortest; the smaller m on a tie), where the chunks after c_m read only states 0,
    m and later ones and chunk 0 holds state 0 and reads none (``proofs/fenwick_split_walk.py``: so for fenwick, at
    every m), so that a walk over them can start from H_0 and an unknown H_m; else None."""
    P, nc = layout.n_boundary, layout.n_chunks
    if P < 2:
        return None
    chunk = layout.boundary_row // layout.chunk
    m = min((1 << k for k in range((P - 1).bit_length())), key=lambda x: (max(chunk[x] + 1, nc - chunk[x] - 1), x))
    sources = [layout.ext[c, :layout.ext_count[c]] for c in range(chunk[m] + 1, nc)]
    if chunk[0] != 0 or layout.ext_count[0] or any(((s != 0) & (s != m) & (s < m)).any() for s in sources):
        return None
    return m, int(chunk[m])


def is_aligned(layout: ChunkLayout) -> bool:
    """``work(layout) < tiled_work(layout.tables)`` and ``memory(layout) <= memory_limit(layout)``."""
    return work(layout) < tiled_work(layout.tables) and memory(layout) <= memory_limit(layout)


def memory(layout: ChunkLayout, d_k: int = NOMINAL_D, d_v: int = NOMINAL_D) -> int:
    """Elements per head the aligned readout holds at once (module docstring)."""
    C, width = layout.chunk, layout.chunk + layout.span
    return layout.n_chunks * C * (3 * (width + layout.m) + C) + layout.n_boundary * 2 * (width + d_v) * d_k


def memory_limit(layout: ChunkLayout, d_k: int = NOMINAL_D, d_v: int = NOMINAL_D) -> int:
    """``max(MEMORY_FLOOR, MEMORY_FACTOR T (C + d_k + d_v))`` elements per head."""
    return max(MEMORY_FLOOR, MEMORY_FACTOR * layout.tables.n * (layout.chunk + d_k + d_v))


def over_memory(layout: ChunkLayout, d_k: int, d_v: int) -> str | None:
    """Why the aligned readout with this layout is refused at head sizes d_k, d_v, or None when it fits."""
    need, limit = memory(layout, d_k, d_v), memory_limit(layout, d_k, d_v)
    if need <= limit:
        return None
    return (f"the chunked_aligned readout would hold {need} elements per head (T={layout.tables.n}, chunk "
            f"C={layout.chunk}, reach w={layout.span}, m={layout.m}, {layout.n_boundary} boundary states of "
            f"{d_k} x {d_v}), over its limit {limit} = max({MEMORY_FLOOR}, {MEMORY_FACTOR} T (C + d_k + d_v)); "
            f"use algorithm='tiled_mixing'")


def over_work(tables: IndexTables, algorithm: str, layout: ChunkLayout | None, d_k: int, d_v: int, heads: int,
              device_type: str) -> str | None:
    """Why a readout call running ``algorithm`` (``layout`` for chunked_aligned) over ``heads`` = batch x heads
    is refused on this device type: its estimated work ``heads x`` (``work`` / ``direct_work`` / ``tiled_work`` at
    d_k, d_v) over ``MAX_WORK``; None when it is within."""
    per_head = (work(layout, d_k, d_v) if algorithm == "chunked_aligned"
                else readout_work(tables, algorithm, d_k, d_v))
    limit = MAX_WORK.get(device_type, MAX_WORK["cpu"])
    if heads * per_head <= limit:
        return None
    power = limit.bit_length() - 1
    return (f"the {algorithm} readout would take about {heads * per_head:.3g} multiply-adds (T={tables.n}, "
            f"batch x heads={heads}, d_k={d_k}, d_v={d_v}), over the limit MAX_WORK[{device_type!r}] = "
            f"{f'2^{power}' if limit == 1 << power else limit} on {device_type}; use a shorter T or fewer heads"
            f"{', or CUDA' if device_type != 'cuda' else ''}")


def work(layout: ChunkLayout, d_k: int = NOMINAL_D, d_v: int = NOMINAL_D) -> int:
    """Estimated multiply-adds of the aligned readout per head (module docstring)."""
    C, nc, P, m = layout.chunk, layout.n_chunks, layout.n_boundary, layout.m
    width = C + layout.span
    terms = P + int(layout.ext_count[layout.boundary_row // C].sum())
    return (nc * C * width * (d_k + d_v) + SOLVE * nc * C * C * (width + m)
            + (nc * C * m + P * width + SCAN * terms + TRAFFIC * nc * m) * d_k * d_v)


def tiled_work(tables: IndexTables, d_k: int = NOMINAL_D, d_v: int = NOMINAL_D) -> int:
    """Estimated multiply-adds of tiled mixing per head (module docstring)."""
    row = (tables.a_idx >= 0).sum(1) + (tables.b_idx >= 0).sum(1)
    return int(((np.arange(tables.n) + 1) * (d_k + d_v + SCAN * row)).sum())


def direct_work(tables: IndexTables, d_k: int = NOMINAL_D, d_v: int = NOMINAL_D) -> int:
    """Estimated multiply-adds of the direct readout per head: ``T (C + w) (d_k + d_v)``, rows in blocks of
    ``C = CHUNKS[0]`` beside a dense block over the widest row span w."""
    return tables.n * (CHUNKS[0] + reach(tables, np.arange(tables.n))) * (d_k + d_v)


def aligned_layout(tables, chunk: int | None = None) -> ChunkLayout | None:
    """The cheapest aligned layout over ``CHUNKS`` (up to T) x ``OFFSETS`` (``work`` at ``NOMINAL_D``), or None.
    With ``chunk`` given, the cheapest offset for that chunk, aligned or not (built once per tables); a chunk that is
    not an integer >= 1 raises a GLRError."""
    tables = IndexTables.coerce(tables)
    chunk = None if chunk is None else check_integer(chunk, "chunk", 1)

    def build():
        sizes = [C for C in CHUNKS if C <= max(tables.n, CHUNKS[0])] if chunk is None else (chunk,)
        layouts = [chunk_layout(tables, C, o) for C in sizes for o in OFFSETS if o < C]
        layouts = [x for x in layouts if chunk or is_aligned(x)]
        return min(layouts, key=work, default=None)

    return tables.memo(("readout_aligned_layout", chunk), build)


def readout_choice(tables) -> tuple[str, str]:
    """``(name, cost_class)`` of the algorithm ``glr_readout`` runs for these tables (module docstring)."""
    summary = readout_summary(tables)
    return summary["algorithm"], summary["cost_class"]


def readout_work(tables, algorithm: str, d_k: int = NOMINAL_D, d_v: int = NOMINAL_D) -> int:
    """Estimated multiply-adds per head of ``algorithm`` on these tables at head sizes d_k, d_v: ``direct_work``,
    ``tiled_work``, or for ``chunked_aligned`` the least ``work`` over ``CHUNKS`` (up to T) x ``OFFSETS``
    (whether or not that layout is aligned)."""
    tables = IndexTables.coerce(tables)
    if algorithm == "chunked_aligned":
        return min(work(aligned_layout(tables, C), d_k, d_v) for C in CHUNKS if C <= max(tables.n, CHUNKS[0]))
    return (direct_work if algorithm == "direct" else tiled_work)(tables, d_k, d_v)


def readout_summary(tables) -> dict:
    """The algorithm, its cost class and its sizes at this length: ``{"algorithm", "cost_class", "chunk",
    "w", "m", "boundary_states"}`` (w: A's widest row span for direct, how far A reaches before a chunk's
    first row for the aligned algorithm (``span``; the chunk itself adds C); chunk, m and boundary_states:
    the aligned layout's, else None).

    Examples
    --------
    >>> from glrtheory import Pattern
    >>> readout_summary(Pattern.from_spec("fenwick").tables(1025))
    {'algorithm': 'chunked_aligned', 'cost_class': 'n (w + m)', 'chunk': 64, 'w': 0, 'm': 5, 'boundary_states': 16}
    """
    tables = IndexTables.coerce(tables)

    def build():
        if not (tables.b_idx >= 0).any():
            return {"algorithm": "direct", "cost_class": ALGORITHMS["direct"], "chunk": None,
                    "w": reach(tables, np.arange(tables.n)), "m": None, "boundary_states": None}
        layout = aligned_layout(tables)
        if layout is None:
            return {"algorithm": "tiled_mixing", "cost_class": ALGORITHMS["tiled_mixing"], "chunk": None, "w": None,
                    "m": None, "boundary_states": None}
        return {"algorithm": "chunked_aligned", "cost_class": ALGORITHMS["chunked_aligned"], "chunk": layout.chunk,
                "w": layout.span, "m": layout.m, "boundary_states": layout.n_boundary}

    return dict(tables.memo(("readout_summary",), build))
