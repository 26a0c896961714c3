"""Triton kernels of the vector-state scan ``H = (I - B)^{-1} A U`` over index tables (docs/architecture.md).

Layout: u, h, z ``[batch, n, heads, d]``, coefficients ``[batch, n, heads, w]`` (all contiguous); padded
tables ``a_idx[n, wa]``, ``b_idx[n, wb]`` (int32, -1 padded); transposed tables as entry lists sorted by
row with row pointers (``ptr[n + 1]``, ``row[e]``, ``src[e]``, ``col[e]``: entry e of row s reads position
``src`` and the coefficient ``coef[.., src, .., col]``). Time is cut into chunks of C positions; program
``(bh, ...)`` owns one (batch, head) pair. Every sum accumulates in float32.
Table columns are read JA / JB at a time and entry lists E at a time (small on the GPU, large under the
interpreter, whose cost is per operation). Where a table is a lag table (``triton_tables.lag_set``; LAG_A,
LAG_B), the kernels instead take its coefficients by lag (column i for lag L_i) and read, per lag, one row of
states for each of the chunk's rows: no index loads, no sums across threads. Where the walks get the lags as
compile-time constants (A_LAGS, B_LAGS, ``_gather_static``) each lag's loads sit at fixed offsets from one row
pointer per chunk; else they load the lags (``_gather_lags``).

* ``chunk_inverse``:  ``T_k = (I - B_kk)^{-1}`` for every chunk k at once, by blocked forward substitution:
  with ``L = B_kk`` cut into BS x BS blocks, ``T_ii = (I + L_ii)(I + L_ii^2)(I + L_ii^4)...`` (L_ii is
  nilpotent: ``L_ii^BS = 0``), then ``T_ij = T_ii sum_{i > m >= j} L_im T_mj`` (matrix products in PREC:
  "ieee" float32 on the FMA units or "tf32x3", three tensor-core passes of float32 accuracy).
* ``forward_walk``:   chunks in order, ``h_k = T_k (x_k + B_k,past h_past)``, ``x = A U`` gathered; what
  the next chunk reads independently of the walk is loaded while this chunk waits on its states.
* ``backward_pull``:  chunks in reverse, ``z_k = T_k^T (g_k + (B^T)_k,future z_future)``, gathering through a
  padded transposed table (when B^T's rows restricted to later chunks are narrow) or per lag of a lag
  table, pipelined alike;
* ``backward_walk``:  otherwise (a hub such as fenwick's h_0 is read by every later t): chunks in reverse,
  ``z_k = T_k^T (g_k + p_k)``, each chunk pushing ``b[t, j] z_t`` onto the p of its sources in earlier
  chunks by atomic adds.
* ``transpose_apply``: ``dU = A^T Z`` (through A^T's entry lists, or per lag of a lag table); where A is
  diagonal the backward walks write ``dU = a Z`` themselves.
* ``coef_grad``:      ``g[t, j] = <z_t, v[idx[t, j]]>`` (``v = u`` for da, ``v = h`` for db).
"""
import triton
import triton.language as tl

from .triton_launch import launcher


@triton.jit
def _gather_csr(acc, e_lo, e_hi, r0, ent_row, ent_src, ent_col, coef_ptr, W, v_ptr, bb, hh, n, H, D,
                dcol, dmask, C: tl.constexpr, E: tl.constexpr, PREC: tl.constexpr):
    """``acc[r - r0] += sum_{e in [e_lo, e_hi), row_e = r} coef[src_e, col_e] * v[src_e]``: blocks of E
    entries, summed into their rows by a one-hot [C, E] matrix product."""
    rl = tl.arange(0, C)
    for e0 in range(e_lo, e_hi, E):
        e = e0 + tl.arange(0, E)
        em = e < e_hi
        row = tl.load(ent_row + e, mask=em, other=-1) - r0
        src = tl.load(ent_src + e, mask=em, other=0)
        col = tl.load(ent_col + e, mask=em, other=0)
        pos = (bb * n + src) * H + hh
        coef = tl.load(coef_ptr + pos * W + col, mask=em, other=0.0).to(tl.float32)
        v = tl.load(v_ptr + (pos * D)[:, None] + dcol[None, :], mask=em[:, None] & dmask[None, :],
                    other=0.0).to(tl.float32)
        onehot = (rl[:, None] == row[None, :]).to(tl.float32)
        acc += tl.dot(onehot, coef[:, None] * v, input_precision=PREC)
    return acc


@triton.jit
def _table_block(rows, rmask, idx_ptr, W, coef_ptr, j0, lo, hi, bb, hh, n, H, JB: tl.constexpr):
    """Columns ``[j0, j0 + JB)`` of a table at ``rows``: ``(idx, coef, ok)``, ok marking ``lo <= idx < hi``."""
    jj = j0 + tl.arange(0, JB)
    idx = tl.load(idx_ptr + rows[:, None] * W + jj[None, :], mask=rmask[:, None] & (jj < W)[None, :], other=-1)
    ok = (idx >= lo) & (idx < hi)
    pos = (bb * n + rows) * H + hh
    coef = tl.load(coef_ptr + (pos * W)[:, None] + jj[None, :], mask=ok, other=0.0).to(tl.float32)
    return idx, coef, ok


@triton.jit
def _reader_block(rows, rmask, bt_idx, bt_col, WT, coef_ptr, WB, i0, bb, hh, n, H, JB: tl.constexpr):
    """Readers ``[i0, i0 + JB)`` of ``rows`` in the padded transposed table: ``(t, coef, ok)`` with
    ``coef = b[t, bt_col]``, ok marking entries (not -1 padding)."""
    ii = i0 + tl.arange(0, JB)
    m = rmask[:, None] & (ii < WT)[None, :]
    t = tl.load(bt_idx + rows[:, None] * WT + ii[None, :], mask=m, other=-1)
    col = tl.load(bt_col + rows[:, None] * WT + ii[None, :], mask=m, other=0)
    ok = t >= 0
    coef = tl.load(coef_ptr + ((bb * n + t) * H + hh) * WB + col, mask=ok, other=0.0).to(tl.float32)
    return t, coef, ok


@triton.jit
def _gather_block(acc, idx, coef, ok, v_ptr, bb, hh, n, H, D, dcol, dmask):
    """``acc[r] += sum_j coef[r, j] * v[idx[r, j]]`` over the entries marked ok."""
    v = tl.load(v_ptr + (((bb * n + idx) * H + hh) * D)[:, :, None] + dcol[None, None, :],
                mask=ok[:, :, None] & dmask[None, None, :], other=0.0).to(tl.float32)
    return acc + tl.sum(coef[:, :, None] * v, axis=1)


@triton.jit
def _gather_table(acc, rows, rmask, idx_ptr, W, coef_ptr, v_ptr, lo, hi, bb, hh, n, H, D, dcol, dmask,
                  JB: tl.constexpr):
    """``acc[r] += sum_j coef[r, j] * v[idx[r, j]]`` over the entries with ``lo <= idx[r, j] < hi``."""
    for j0 in range(0, W, JB):
        idx, coef, ok = _table_block(rows, rmask, idx_ptr, W, coef_ptr, j0, lo, hi, bb, hh, n, H, JB)
        acc = _gather_block(acc, idx, coef, ok, v_ptr, bb, hh, n, H, D, dcol, dmask)
    return acc


@triton.jit
def _gather_lags(acc, rows, rmask, lags, first, last, coef_ptr, W, v_ptr, lo, hi, bb, hh, n, H, D, dcol, dmask,
                 LB: tl.constexpr, READERS: tl.constexpr):
    """``acc[r] += sum_i c[t, i] v[s]`` over the lags ``L_first > ... > L_{last-1}`` of a lag table whose
    coefficients ``c`` are by lag (column i for lag L_i, W columns), for the sources ``0 <= lo <= s < hi <= n``:
    ``s = r - L_i`` and ``t = r``, or with READERS (the transposed table) ``s = t = r + L_i``. LB lags a step,
    unrolled, so that their loads are in flight together."""
    for i0 in range(first, last, LB):
        for u in tl.static_range(LB):
            i = i0 + u
            L = tl.load(lags + i, mask=i < last, other=n)       # L = n: no source in [lo, hi)
            if READERS:
                s = rows + L
                t = s
            else:
                s = rows - L
                t = rows
            ok = rmask & (s >= lo) & (s < hi)
            c = tl.load(coef_ptr + ((bb * n + t) * H + hh) * W + i, mask=ok, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + (((bb * n + s) * H + hh) * D)[:, None] + dcol[None, :],
                        mask=ok[:, None] & dmask[None, :], other=0.0).to(tl.float32)
            acc += c[:, None] * v
    return acc


@triton.jit
def _diagonal(a_ptr, WA, rows, rmask, bb, hh, n, H):
    """``a[t, 0]`` at ``rows`` (float32): a diagonal A's coefficients, ``dU = a Z`` row by row."""
    return tl.load(a_ptr + ((bb * n + rows) * H + hh) * WA, mask=rmask, other=0.0).to(tl.float32)


@triton.jit
def _store_du(du_ptr, offs, a_diag, z, mask):
    """``dU = a z`` at offs where A is diagonal (``a_diag``: ``_diagonal``'s coefficients of z's rows)."""
    tl.store(du_ptr + offs, (a_diag[:, None] * z).to(du_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _row_ptrs(ptr, bb, hh, n, r0, rl, H: tl.constexpr, W: tl.constexpr):
    """Pointers to the rows ``r0 + rl`` of a contiguous ``[batch, n, H, W]`` tensor at (batch bb, head hh)."""
    return ptr + ((bb * n + r0) * H + hh) * W + rl * (H * W)


@triton.jit
def _gather_static(acc, v_rows, c_rows, rl, rmask, dmask, lo, hi, LAGS: tl.constexpr, FIRST: tl.constexpr,
                   LAST: tl.constexpr, SV: tl.constexpr, SC: tl.constexpr, READERS: tl.constexpr):
    """``_gather_lags`` over the compile-time lags ``LAGS[FIRST:LAST]`` for the rows ``r0 + rl`` of one chunk:
    ``v_rows`` ([C, BD]) and ``c_rows`` ([C]) point at those rows of v and of the coefficients (row strides SV, SC
    elements), the sources s are read where ``lo <= s - r0 < hi``. Each load sits at a fixed offset."""
    for i in tl.static_range(FIRST, LAST):
        L = LAGS[i]
        if READERS:
            ok = rmask & (rl + L >= lo) & (rl + L < hi)
            c = tl.load(c_rows + (L * SC + i), mask=ok, other=0.0).to(tl.float32)
            v = tl.load(v_rows + L * SV, mask=ok[:, None] & dmask[None, :], other=0.0).to(tl.float32)
        else:
            ok = rmask & (rl - L >= lo) & (rl - L < hi)
            c = tl.load(c_rows + i, mask=ok, other=0.0).to(tl.float32)
            v = tl.load(v_rows - L * SV, mask=ok[:, None] & dmask[None, :], other=0.0).to(tl.float32)
        acc += c[:, None] * v
    return acc


@triton.jit
def _gather_by_lag(acc, r0, rl, rmask, lags, m, coef_ptr, W: tl.constexpr, v_ptr, lo, hi, bb, hh, n, H: tl.constexpr,
                   D: tl.constexpr, dcol, dmask, LB: tl.constexpr, READERS: tl.constexpr, LAGS: tl.constexpr,
                   FIRST: tl.constexpr, LAST: tl.constexpr):
    """``_gather_lags`` over the lags ``[FIRST, LAST)`` (LAST -1: all from FIRST, m of them in all) for the rows
    ``r0 + rl``, sources in ``[lo, hi)``: ``_gather_static`` where the lags are compile-time constants (LAGS),
    else loaded from ``lags``."""
    if len(LAGS) > 0:
        return _gather_static(acc, _row_ptrs(v_ptr, bb, hh, n, r0, rl, H, D)[:, None] + dcol[None, :],
                              _row_ptrs(coef_ptr, bb, hh, n, r0, rl, H, W), rl, rmask, dmask, lo - r0, hi - r0, LAGS,
                              FIRST, len(LAGS) if LAST < 0 else LAST, H * D, H * W, READERS)
    return _gather_lags(acc, r0 + rl, rmask, lags, FIRST, m if LAST < 0 else LAST, coef_ptr, W, v_ptr, lo, hi, bb, hh,
                        n, H, D, dcol, dmask, LB, READERS)


@triton.jit
def _inputs(r0, u_ptr, a_ptr, a_idx, WA: tl.constexpr, a_lags, ma, bb, hh, n, H: tl.constexpr, D: tl.constexpr,
            dcol, dmask, C: tl.constexpr, BD: tl.constexpr, JA: tl.constexpr, LAG_A: tl.constexpr,
            A_LAGS: tl.constexpr):
    """``x = A U`` at the rows ``[r0, r0 + C)`` (with LAG_A, a by lag; A_LAGS: its lags as constants)."""
    rl = tl.arange(0, C)
    rows = r0 + rl
    rmask = rows < n
    x = tl.zeros((C, BD), tl.float32)
    if LAG_A:
        return _gather_by_lag(x, r0, rl, rmask, a_lags, ma, a_ptr, WA, u_ptr, 0, n, bb, hh, n, H, D, dcol, dmask, JA,
                              False, A_LAGS, 0, -1)
    return _gather_table(x, rows, rmask, a_idx, WA, a_ptr, u_ptr, 0, n, bb, hh, n, H, D, dcol, dmask, JA)


@triton.jit
def _unit_inverse(L, eye, BS: tl.constexpr, PREC: tl.constexpr):
    """``(I - L)^{-1} = (I + L)(I + L^2)(I + L^4)(I + L^8)`` for a strictly lower 16 x 16 block L."""
    tl.static_assert(BS == 16)
    T = eye + L
    P = L
    for _ in tl.static_range(3):
        P = tl.dot(P, P, input_precision=PREC)
        T = tl.dot(T, eye + P, input_precision=PREC)
    return T


@triton.jit
def _program_columns(H, D, BD: tl.constexpr, AXIS_D: tl.constexpr):
    """What a program owns: ``pid_bh`` (program axis 0) is the (batch, head) pair ``bb, hh``; program axis
    AXIS_D picks the BD columns ``dcol`` of the state, ``dmask`` marks those below D."""
    pid_bh = tl.program_id(0)
    dcol = tl.program_id(AXIS_D) * BD + tl.arange(0, BD)
    return pid_bh, pid_bh // H, pid_bh % H, dcol, dcol < D


@launcher
@triton.jit
def chunk_inverse(b_ptr, b_idx, t_ptr, n, H, nc, WB, shift, C: tl.constexpr, BS: tl.constexpr,
                  JB: tl.constexpr, PREC: tl.constexpr):
    """Chunk k holds the rows ``[k C - shift, (k + 1) C - shift)`` (those outside ``[0, n)`` are identity rows)."""
    pid_bh, k = tl.program_id(0), tl.program_id(1)
    bb, hh = pid_bh // H, pid_bh % H
    c0 = k * C - shift
    rl = tl.arange(0, C)
    rows = c0 + rl
    rmask = (rows >= 0) & (rows < n)
    pos = (bb * n + rows) * H + hh
    base = t_ptr + (pid_bh * nc + k).to(tl.int64) * (C * C)
    tl.store(base + rl[:, None] * C + rl[None, :], tl.zeros((C, C), tl.float32))
    tl.debug_barrier()
    for j0 in range(0, WB, JB):  # scatter the strictly lower block L = B_kk of this chunk
        jj = j0 + tl.arange(0, JB)
        idx = tl.load(b_idx + rows[:, None] * WB + jj[None, :], mask=rmask[:, None] & (jj < WB)[None, :],
                      other=-1)
        intra = (idx >= c0) & (idx >= 0)
        coef = tl.load(b_ptr + (pos * WB)[:, None] + jj[None, :], mask=intra, other=0.0).to(tl.float32)
        tl.store(base + rl[:, None] * C + (idx - c0), coef, mask=intra)
    tl.debug_barrier()
    r = tl.arange(0, BS)
    eye = (r[:, None] == r[None, :]).to(tl.float32)
    for i in range(C // BS):
        blk = base + (i * BS + r)[:, None] * C + r[None, :]          # block (i, m) at blk + m * BS
        Tii = _unit_inverse(tl.load(blk + i * BS), eye, BS, PREC)
        for j in range(i):       # ascending j: block (i, j) is read as L before it is overwritten as T
            acc = tl.zeros((BS, BS), tl.float32)
            for m in range(j, i):
                Tmj = tl.load(base + (m * BS + r)[:, None] * C + j * BS + r[None, :])
                acc += tl.dot(tl.load(blk + m * BS), Tmj, input_precision=PREC)
            tl.store(blk + j * BS, tl.dot(Tii, acc, input_precision=PREC))
            tl.debug_barrier()
        tl.store(blk + i * BS, Tii)
        tl.debug_barrier()


@triton.jit
def _factor(T, PREC: tl.constexpr):
    """A chunk inverse as the walks' left factor: rounded to bfloat16 where PREC is "bf16" or "bf16-upcast"."""
    return T.to(tl.bfloat16) if (PREC == "bf16") or (PREC == "bf16-upcast") else T


@triton.jit
def _product(T, x, PREC: tl.constexpr):
    """``T x`` (T from ``_factor``) accumulated in float32: bfloat16 factors where PREC is "bf16"; the same rounded
    factors multiplied in float32 where it is "bf16-upcast" (the interpreter, whose bfloat16 dot is wrong in
    Triton 3.6); else float32 factors in PREC's tensor-core passes ("tf32" one, "tf32x3" three)."""
    if PREC == "bf16":
        y = tl.dot(T, x.to(tl.bfloat16))
    elif PREC == "bf16-upcast":
        y = tl.dot(T.to(tl.float32), x.to(tl.bfloat16).to(tl.float32), input_precision="ieee")
    else:
        y = tl.dot(T, x, input_precision=PREC)
    return y


@launcher
@triton.jit
def forward_walk(u_ptr, a_ptr, b_ptr, a_idx, b_idx, ext_ptr, t_ptr, h_ptr, n, H: tl.constexpr, nc, D: tl.constexpr,
                 WA: tl.constexpr, WB: tl.constexpr, a_lags, ma, b_lags, mb, C: tl.constexpr, BD: tl.constexpr,
                 JA: tl.constexpr, JB: tl.constexpr, PREC: tl.constexpr, LAG_A: tl.constexpr, LAG_B: tl.constexpr,
                 A_LAGS: tl.constexpr, B_LAGS: tl.constexpr, B_FAR: tl.constexpr):
    """Software-pipelined: what chunk k + 1 reads that does not depend on the walk (its ``x = A U``, ``T``,
    the first JB columns of its B rows) is loaded while chunk k waits on its gathered states. B's entries
    before a chunk form a prefix of each row (rows ascend); ``ext[k]`` is chunk k's widest such prefix.
    With LAG_B (b by lag), chunk k reads per lag the rows before it, ``h[r - L_i]`` for ``r - L_i < C k``; the
    B_FAR lags of at least 2 C (the first), which read chunks before k - 1, are read a step ahead with ``x``."""
    pid_bh, bb, hh, dcol, dmask = _program_columns(H, D, BD, 1)
    rl = tl.arange(0, C)
    t_base = t_ptr + (pid_bh * nc).to(tl.int64) * (C * C) + rl[:, None] * C + rl[None, :]
    rmask = rl < n
    x = _inputs(0, u_ptr, a_ptr, a_idx, WA, a_lags, ma, bb, hh, n, H, D, dcol, dmask, C, BD, JA, LAG_A, A_LAGS)
    T = _factor(tl.load(t_base), PREC)
    if not LAG_B:
        idx, coef, ok = _table_block(rl, rmask, b_idx, WB, b_ptr, 0, 0, 0, bb, hh, n, H, JB)
    for k in range(nc):
        c0 = k * C
        rows = c0 + rl
        rmask = rows < n
        nxt = rows + C                                     # chunk k + 1: loads independent of the walk
        x_next = _inputs(c0 + C, u_ptr, a_ptr, a_idx, WA, a_lags, ma, bb, hh, n, H, D, dcol, dmask,
                         C, BD, JA, LAG_A, A_LAGS)
        if LAG_B:                                          # chunk k + 1's far lags read chunks <= k - 1
            x_next = _gather_by_lag(x_next, c0 + C, rl, nxt < n, b_lags, mb, b_ptr, WB, h_ptr, 0, c0, bb, hh, n, H, D,
                                    dcol, dmask, JB, False, B_LAGS, 0, B_FAR)
        T_next = _factor(tl.load(t_base + tl.minimum(k + 1, nc - 1) * (C * C)), PREC)
        if LAG_B:                                          # + B_k,past h_past: the near lags
            x = _gather_by_lag(x, c0, rl, rmask, b_lags, mb, b_ptr, WB, h_ptr, 0, c0, bb, hh, n, H, D, dcol, dmask, JB,
                               False, B_LAGS, B_FAR, -1)
        else:
            idx_next, coef_next, ok_next = _table_block(nxt, nxt < n, b_idx, WB, b_ptr, 0, 0, c0 + C,
                                                        bb, hh, n, H, JB)
            x = _gather_block(x, idx, coef, ok, h_ptr, bb, hh, n, H, D, dcol, dmask)
            for j0 in range(JB, tl.load(ext_ptr + k), JB):
                idx_j, coef_j, ok_j = _table_block(rows, rmask, b_idx, WB, b_ptr, j0, 0, c0, bb, hh, n, H, JB)
                x = _gather_block(x, idx_j, coef_j, ok_j, h_ptr, bb, hh, n, H, D, dcol, dmask)
            idx, coef, ok = idx_next, coef_next, ok_next
        hk = _product(T, x, PREC)
        tl.store(h_ptr + (((bb * n + rows) * H + hh) * D)[:, None] + dcol[None, :],
                 hk.to(h_ptr.dtype.element_ty), mask=rmask[:, None] & dmask[None, :])
        tl.debug_barrier()       # this chunk's states are visible to the next chunk's gathers
        x, T = x_next, T_next


@launcher
@triton.jit
def backward_pull(g_ptr, b_ptr, bt_idx, bt_col, t_ptr, z_ptr, n, H: tl.constexpr, nc, D: tl.constexpr,
                  WB: tl.constexpr, WT, b_lags, mb, a_ptr, WA, du_ptr, C: tl.constexpr, BD: tl.constexpr,
                  JB: tl.constexpr, PREC: tl.constexpr, LAG_B: tl.constexpr, DU: tl.constexpr, B_LAGS: tl.constexpr,
                  B_FAR: tl.constexpr):
    """Chunks in reverse, gathering like ``forward_walk``: ``z_k = T_k^T (g_k + sum_i b[t, j] z_t)`` over the
    readers ``(t, j) = (bt_idx[s, i], bt_col[s, i])`` of each row s in later chunks (a padded table, WT wide),
    or with LAG_B (b by lag) over the readers ``t = s + L_i`` of a lag table (those of the B_FAR lags >= 2 C, in
    chunks after k, a step ahead; B_LAGS: the lags as constants); chunk k - 1's gradient rows, ``T^T`` and first
    JB readers are loaded while chunk k waits. With DU (A diagonal) it also writes ``dU = a z`` chunk by chunk."""
    pid_bh, bb, hh, dcol, dmask = _program_columns(H, D, BD, 1)
    rl = tl.arange(0, C)
    t_base = t_ptr + (pid_bh * nc).to(tl.int64) * (C * C) + rl[None, :] * C + rl[:, None]    # T_k^T
    rows = (nc - 1) * C + rl
    g = tl.load(g_ptr + (((bb * n + rows) * H + hh) * D)[:, None] + dcol[None, :],
                mask=(rows < n)[:, None] & dmask[None, :], other=0.0).to(tl.float32)
    Tt = _factor(tl.load(t_base + (nc - 1) * (C * C)), PREC)
    if DU:
        a_diag = _diagonal(a_ptr, WA, rows, rows < n, bb, hh, n, H)
    if not LAG_B:
        idx, coef, ok = _reader_block(rows, rows < n, bt_idx, bt_col, WT, b_ptr, WB, 0, bb, hh, n, H, JB)
    for kk in range(nc):
        k = nc - 1 - kk
        rows = k * C + rl
        rmask = rows < n
        p0 = tl.maximum(k - 1, 0) * C
        prv = p0 + rl                                      # chunk k - 1: loads independent of the walk
        g_prev = tl.load(g_ptr + (((bb * n + prv) * H + hh) * D)[:, None] + dcol[None, :],
                         mask=(prv < n)[:, None] & dmask[None, :], other=0.0).to(tl.float32)
        Tt_prev = _factor(tl.load(t_base + p0 * C), PREC)
        if DU:
            a_prev = _diagonal(a_ptr, WA, prv, prv < n, bb, hh, n, H)
        if LAG_B:                                          # chunk k - 1's far readers lie in chunks >= k + 1
            g_prev = _gather_by_lag(g_prev, p0, rl, prv < n, b_lags, mb, b_ptr, WB, z_ptr, p0 + C, n, bb, hh, n, H, D,
                                    dcol, dmask, JB, True, B_LAGS, 0, B_FAR)
            g = _gather_by_lag(g, k * C, rl, rmask, b_lags, mb, b_ptr, WB, z_ptr, k * C + C, n, bb, hh, n, H, D, dcol,
                               dmask, JB, True, B_LAGS, B_FAR, -1)
        else:
            idx_prev, coef_prev, ok_prev = _reader_block(prv, prv < n, bt_idx, bt_col, WT, b_ptr, WB, 0,
                                                         bb, hh, n, H, JB)
            g = _gather_block(g, idx, coef, ok, z_ptr, bb, hh, n, H, D, dcol, dmask)
            for i0 in range(JB, WT, JB):
                idx_i, coef_i, ok_i = _reader_block(rows, rmask, bt_idx, bt_col, WT, b_ptr, WB, i0, bb, hh, n, H, JB)
                g = _gather_block(g, idx_i, coef_i, ok_i, z_ptr, bb, hh, n, H, D, dcol, dmask)
            idx, coef, ok = idx_prev, coef_prev, ok_prev
        offs = (((bb * n + rows) * H + hh) * D)[:, None] + dcol[None, :]
        z = _product(Tt, g, PREC)
        tl.store(z_ptr + offs, z, mask=rmask[:, None] & dmask[None, :])
        if DU:
            _store_du(du_ptr, offs, a_diag, z, rmask[:, None] & dmask[None, :])
            a_diag = a_prev
        tl.debug_barrier()
        g, Tt = g_prev, Tt_prev


@launcher
@triton.jit
def backward_walk(g_ptr, b_ptr, b_idx, ext_ptr, t_ptr, z_ptr, n, H, nc, D, WB, a_ptr, WA, du_ptr,
                  C: tl.constexpr, BD: tl.constexpr, JB: tl.constexpr, PREC: tl.constexpr, DU: tl.constexpr):
    """Chunks in reverse, pushing instead of gathering: z (float32) starts at zero and row t of chunk k
    holds ``p_t = sum_{later t'} b[t', j] z_t'`` when chunk k's turn comes, so ``z_k = T_k^T (g_k + p_k)``
    overwrites it; then chunk k adds ``b[t, j] z_t`` onto z at its B entries before the chunk (atomic adds,
    which the walk never waits on; they land in earlier chunks only). With DU (A diagonal) it also writes
    ``dU = a z`` chunk by chunk."""
    pid_bh, bb, hh, dcol, dmask = _program_columns(H, D, BD, 1)
    rl = tl.arange(0, C)
    t_base = t_ptr + (pid_bh * nc).to(tl.int64) * (C * C) + rl[None, :] * C + rl[:, None]    # T_k^T
    for kk in range(nc):
        k = nc - 1 - kk
        c0 = k * C
        rows = c0 + rl
        rmask = rows < n
        offs = (((bb * n + rows) * H + hh) * D)[:, None] + dcol[None, :]
        mask = rmask[:, None] & dmask[None, :]
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        Tt = _factor(tl.load(t_base + k * (C * C)), PREC)
        p = tl.load(z_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")      # pushed by later chunks
        z = _product(Tt, g + p, PREC)
        tl.store(z_ptr + offs, z, mask=mask)
        if DU:
            _store_du(du_ptr, offs, _diagonal(a_ptr, WA, rows, rmask, bb, hh, n, H), z, mask)
        for j0 in range(0, tl.load(ext_ptr + k), JB):
            idx, coef, ok = _table_block(rows, rmask, b_idx, WB, b_ptr, j0, 0, c0, bb, hh, n, H, JB)
            tl.atomic_add(z_ptr + (((bb * n + idx) * H + hh) * D)[:, :, None] + dcol[None, None, :],
                          coef[:, :, None] * z[:, None, :], mask=ok[:, :, None] & dmask[None, None, :],
                          sem="relaxed")
        tl.debug_barrier()       # this chunk's pushes are visible to the earlier chunks' loads


@launcher
@triton.jit
def transpose_apply(z_ptr, a_ptr, ptr, ent_row, ent_src, ent_col, du_ptr, n, H, D, WA, a_lags, ma,
                    C: tl.constexpr, BD: tl.constexpr, E: tl.constexpr, JA: tl.constexpr, PREC: tl.constexpr,
                    LAG_A: tl.constexpr):
    _, bb, hh, dcol, dmask = _program_columns(H, D, BD, 2)
    k = tl.program_id(1)
    rows = k * C + tl.arange(0, C)
    acc = tl.zeros((C, BD), tl.float32)
    if LAG_A:
        acc = _gather_lags(acc, rows, rows < n, a_lags, 0, ma, a_ptr, WA, z_ptr, 0, n, bb, hh, n, H, D, dcol, dmask,
                           JA, True)
    else:
        e_lo = tl.load(ptr + k * C)
        e_hi = tl.load(ptr + tl.minimum(k * C + C, n))
        acc = _gather_csr(acc, e_lo, e_hi, k * C, ent_row, ent_src, ent_col, a_ptr, WA, z_ptr, bb, hh, n, H, D,
                          dcol, dmask, C, E, PREC)
    tl.store(du_ptr + (((bb * n + rows) * H + hh) * D)[:, None] + dcol[None, :],
             acc.to(du_ptr.dtype.element_ty), mask=(rows < n)[:, None] & dmask[None, :])


@launcher
@triton.jit
def coef_grad(z_ptr, v_ptr, idx_ptr, g_ptr, n, H, D, W, C: tl.constexpr, BD: tl.constexpr,
              JB: tl.constexpr):
    pid_bh, k = tl.program_id(0), tl.program_id(1)
    bb, hh = pid_bh // H, pid_bh % H
    rows = k * C + tl.arange(0, C)
    rmask = rows < n
    pos = (bb * n + rows) * H + hh
    for j0 in range(0, W, JB):
        jj = j0 + tl.arange(0, JB)
        jm = rmask[:, None] & (jj < W)[None, :]
        idx = tl.load(idx_ptr + rows[:, None] * W + jj[None, :], mask=jm, other=-1)
        ok = idx >= 0
        s = tl.zeros((C, JB), tl.float32)
        for d0 in range(0, D, BD):
            dcol = d0 + tl.arange(0, BD)
            dmask = dcol < D
            z = tl.load(z_ptr + (pos * D)[:, None] + dcol[None, :], mask=rmask[:, None] & dmask[None, :],
                        other=0.0)
            v = tl.load(v_ptr + (((bb * n + idx) * H + hh) * D)[:, :, None] + dcol[None, None, :],
                        mask=ok[:, :, None] & dmask[None, None, :], other=0.0).to(tl.float32)
            s += tl.sum(z[:, None, :] * v, axis=2)
        tl.store(g_ptr + (pos * W)[:, None] + jj[None, :], s.to(g_ptr.dtype.element_ty), mask=jm)
