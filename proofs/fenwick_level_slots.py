"""fenwick's readout can walk its chunks holding one boundary state per Fenwick level (the Triton ``chunk_walk``).

Statement. Number fenwick's boundary states 0 .. P-1 (``readout_plan.aligned_layout``); give state p >= 1 the level
``tz(p)``, its count of trailing zero bits, and state 0 a level of its own. Walk the chunks in order and, once a chunk
holds a boundary state, put that state in its level's slot, replacing the one there. Then

1. when chunk c is reached, every boundary state it reads (``ext[c]``, the Fenwick chain of c - 1) is in its level's
   slot: for each set bit l of x, the chain of x holds ``x`` with the bits below l cleared, which is the latest state
   of level l up to x;
2. so ``bit_length(P - 1) + 1`` slots hold every state the walk still needs (9 at the benchmark's P = 256);
3. and one pass over the chunks computes the whole readout ``o_t = q_t^T H_t``: chunk c's rows R from its own inverse
   ``T = (I - B_RR)^{-1}``, ``M = T A_R`` and ``E = T B_R,X``, and from the slots,

       o_R = ((Q_R K_R^T) * M) V_R + sum_j (E[:, j] * Q_R) H_{X_j},

   then the chunk's boundary state, at its row r, ``H_p = sum_s M[r, s] k_s v_s^T + sum_j E[r, j] H_{X_j}``, into
   its slot.

So a forward in one kernel per (batch x head, d_v block) needs no boundary state in HBM: it reads q, k, v, the chunk
inverses and E, and writes o (and H, if the backward is to read it). ``python benchmarks/readout_bytes.py --fused``
counts those bytes. Today's forward writes L and H and reads them back (``solved_forward_bytes``). Claims 1 and 2
are what ``readout_plan.level_slots`` assigns and the Triton kernel ``level_walk`` walks by (the boundary states
alone, its outputs left to the chunk output: no faster than the solve on the H200, docs/gpu_readout.md); claim 3 is
what ``chunk_walk`` computes (a setting, off: slower than the solve on the H200, gpu_calls/call180).

Derivation. For x >= 1 and a set bit l of x, let y be x with its bits below l cleared: y is in the chain of x (clear
x's lowest set bits one at a time) and ``tz(y) = l``. Any z with ``y < z <= x`` and ``tz(z) = l`` has the bits of x
above l, bit l set, and zeros below it, so z = y: y is the latest state of level l up to x. The chain of x has one
element for each set bit of x, plus 0, so it is read from the slots of those levels and state 0's. A state y of
level l leaves its slot only when a later state z of level l arrives; every chain after that holds z, not y, so
nothing the walk needs is lost. The levels of 1 .. P-1 are 0 .. bit_length(P - 1) - 1. Claim 3 is the readout split
at the chunk's boundary states (docs/gpu_readout.md, steps 2 and 4); below it is checked in float64 against the
direct ``((Q K^T) * (I - B)^{-1} A) V``.
"""
import numpy as np
import sympy

from glrtheory import Pattern
from glrtheory.kernels.scan.readout_plan import aligned_layout
from glrtheory.recurrence import mixing_matrix, random_coefficients
from proofs.fenwick_readout_work import chain

ZERO = "state 0"


def level(p: int):
    """State p's slot: its trailing zero bits; state 0's own."""
    return ZERO if p == 0 else (p & -p).bit_length() - 1


def chunk_rows(layout) -> list[np.ndarray]:
    """The rows of each chunk (row t sits in chunk ``(t + shift) // C``)."""
    t = np.arange(layout.tables.n)
    return [t[(t + layout.shift) // layout.chunk == c] for c in range(layout.n_chunks)]


def sources(layout, c: int) -> list[int]:
    """Chunk c's sources ``ext[c]``: the boundary states it reads."""
    return [int(s) for s in layout.ext[c, :layout.ext_count[c]]]


def slot_walk(layout) -> int:
    """Claims 1 and 2 on one layout: walk its chunks, check that each chunk's sources sit in their levels' slots,
    fill the slots with the chunk's boundary states; returns the most slots used at once."""
    home = {int(t): p for p, t in enumerate(layout.boundary)}
    slots, most = {}, 0
    for c, rows in enumerate(chunk_rows(layout)):
        for p in sources(layout, c):
            assert slots.get(level(p)) == p, (c, p, slots)
        for p in (home[int(t)] for t in rows if int(t) in home):
            slots[level(p)] = p
        most = max(most, len(slots))
    return most


def chunk_system(layout, rows, ext, a, b) -> tuple[np.ndarray, np.ndarray]:
    """A chunk's ``M = T A_R`` and ``E = T B_R,X``, ``T = (I - B_RR)^{-1}``, X its sources ``ext``: float64, or exact
    (sympy) for a and b of dtype object."""
    tables = layout.tables
    home = {int(t): p for p, t in enumerate(layout.boundary)}
    where = {int(t): i for i, t in enumerate(rows)}
    B_RR, B_RX, A_R = (np.zeros((len(rows), n), dtype=b.dtype) for n in (len(rows), len(ext), len(rows)))
    for i, t in enumerate(rows):
        for j in np.flatnonzero(tables.b_idx[t] >= 0):
            s = int(tables.b_idx[t, j])
            if s in where:
                B_RR[i, where[s]] += b[t, j]
            else:                                       # a source before the chunk: a boundary state it lists
                B_RX[i, ext.index(home[s])] += b[t, j]
        for j in np.flatnonzero(tables.a_idx[t] >= 0):
            A_R[i, where[int(tables.a_idx[t, j])]] += a[t, j]           # fenwick's window is the chunk (w = 0)
    if b.dtype == object:
        T = np.array(sympy.Matrix(np.eye(len(rows), dtype=int) - B_RR).inv(), dtype=object)
    else:
        T = np.linalg.inv(np.eye(len(rows)) - B_RR)
    return T @ A_R, T @ B_RX


def walk(layout, a, b, q, k, v, chunks, slots: dict, o, states: dict, g=None, w=None):
    """Claim 3's walk over ``chunks``, from the slots given (level -> (state, H, g)), into o and ``states``; returns
    the most slots held. With g and w (dicts), each state's and each row's scalar g (the slots' third entry) of
    ``proofs/fenwick_split_walk.py``."""
    home = {int(t): p for p, t in enumerate(layout.boundary)}
    rows_of, most = chunk_rows(layout), len(slots)
    for c in chunks:
        rows, ext = rows_of[c], sources(layout, c)
        M, E = chunk_system(layout, rows, ext, a, b)
        for p in ext:
            assert slots[level(p)][0] == p, (c, p)
        held = [slots[level(p)] for p in ext]
        Q, K, V = q[rows], k[rows], v[rows]
        o[rows] = ((Q @ K.T) * M) @ V + sum(((E[:, j, None] * Q) @ H for j, (_, H, _) in enumerate(held)), 0 * V[:1])
        scalars = E @ np.array([x for _, _, x in held]) if held else np.zeros(len(rows), dtype=E.dtype)
        if w is not None:
            w.update({int(t): scalars[i] for i, t in enumerate(rows)})
        for i, t in enumerate(rows):
            if int(t) in home:
                p = home[int(t)]
                H = K.T @ (M[i, :, None] * V) + sum((E[i, j] * H for j, (_, H, _) in enumerate(held)), 0 * K.T[:, :1])
                slots[level(p)] = (p, H, scalars[i])
                states[p] = H
                if g is not None:
                    g[p] = scalars[i]
        most = max(most, len(slots))
    return most


def readout_by_slots(layout, a, b, q, k, v) -> tuple[np.ndarray, int]:
    """Claim 3: ``o`` by one walk over the chunks with a slot per level (float64); also the most slots held."""
    o = np.full((q.shape[0], v.shape[1]), np.nan)
    return o, walk(layout, a, b, q, k, v, range(layout.n_chunks), {}, o, {})


def direct_readout(pattern, a, b, q, k, v) -> np.ndarray:
    """``((Q K^T) * (I - B)^{-1} A) V`` with the library's dense mixing matrix."""
    return ((q @ k.T) * mixing_matrix(pattern, a, b)) @ v


def derive():
    for x in range(1, 2**12):
        for bit in range(x.bit_length()):
            if x >> bit & 1:
                y = x >> bit << bit
                assert y in chain(x) and level(y) == bit
                assert all(level(z) != bit for z in range(y + 1, x + 1)), (x, bit)
        assert {level(y) for y in chain(x)} == {bit for bit in range(x.bit_length()) if x >> bit & 1} | {ZERO}
    print("checked for every x < 2^12: the chain of x holds, for each set bit l of x, the latest state of level l "
          "up to x, and one state per level (and state 0)")


def layouts(n_max: int, chunks):
    """fenwick's chunk layout at every n up to n_max and every chunk C <= n: ``(n, C, layout)``."""
    fenwick = Pattern.from_spec("fenwick")
    for n in range(1, n_max + 1):
        tables = fenwick.tables(n)
        for C in (C for C in chunks if C <= n):
            yield n, C, aligned_layout(tables, C)


def check(n_max=2**10 + 1, chunks=(4, 8, 16, 64), seed=0):
    fenwick = Pattern.from_spec("fenwick")
    count = 0
    for n, C, layout in layouts(n_max, chunks):
        assert slot_walk(layout) <= max(layout.n_boundary - 1, 0).bit_length() + 1, (n, C)
        count += 1
    assert count > 3000
    print(f"checked {count} layouts (n = 1..{n_max}, chunks {chunks}): every source in its level's slot, at most "
          "bit_length(P - 1) + 1 slots")
    layout = aligned_layout(fenwick.tables(16384), 64)
    assert layout.n_boundary == 256 and slot_walk(layout) == 9
    print("the benchmark's layout (T = 16384, chunks of 64, P = 256): 9 slots")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n in (1, 2, 5, 17, 63, 64, 65, 130, 200):
        tables = fenwick.tables(n)
        for C in (C for C in (4, 8, 16) if C <= n):
            a, b = (x[0].astype(np.float64) for x in random_coefficients(fenwick, n, rng, (1,), np.float64))
            q, k, v = (rng.standard_normal((n, d)) for d in (3, 3, 2))
            layout = aligned_layout(tables, C)
            got, most = readout_by_slots(layout, a, b, q, k, v)
            want = direct_readout(fenwick, a, b, q, k, v)
            err = float(np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want))))
            assert err < 1e-12 and most <= max(layout.n_boundary - 1, 0).bit_length() + 1, (n, C, err)
            worst = max(worst, err)
    print(f"claim 3 in float64 against the direct readout at n = 1 .. 200, chunks of 4, 8 and 16: largest relative "
          f"error {worst:.1e}")
