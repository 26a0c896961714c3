"""Triton kernels of the aligned matrix-state readout (``readout_aligned``'s steps 1, 3 and 2 + 4).

Layout: q, k ``[B, T, H, d_k]``, v ``[B, T, H, d_v]``, a, b ``[B, T, H, w]`` and the output ``[B, T, H, d_v]``
as the caller holds them (contiguous); program axis ``n = batch * H + head``. Chunk c holds the rows
``t = c C - s + i`` (i < C) and reads the window ``t = c C - s - w + j`` (j < C + w = WIN); rows outside
``[0, T)`` read as zeros. ``mix [N, nc, C, WIN]`` and ``ecoef [N, nc, C, m]`` (float32) hold M and E of
every chunk (apart, so M's rows stay aligned), boundary
states ``[N, |P|, d_k, d_v]`` and the output are in q's dtype. Products take q, k, v's dtype (operands
rounded to it), sums float32.

* ``chunk_coefficients``: ``[M | E] = T_k [A_R | B_R,X]`` from the chunk inverses ``T_k = (I - B_RR)^{-1}``
  (``triton_kernels.chunk_inverse``): A's rows and B's entries before the chunk are scattered into the
  chunk's rows of ``mix`` and ``ecoef`` (A at the window's columns, B at ``x_col``, the slot of its source
  in the chunk's X), then multiplied by ``T_k`` in place, BW columns at a time.
* ``boundary_walk``: one program per (n, d_k block, d_v block) walks the boundary positions p in order,
  ``H_p = L_p + sum_j E[p, j] H_{X_j}`` with ``L_p = sum_s M[p, s] k_s v_s^T``. What step p + 1 reads besides
  ``H_p`` (its window, its M row, its sources written at steps <= p - 1) is loaded while step p computes; ``H_p``
  itself stays in registers, so each step waits only on its own products.
* ``level_walk``: that walk with every state a later step reads held in registers, one slot per Fenwick level
  (``readout_plan.level_slots``), so that no step reads a boundary state from memory.
* ``boundary_local``: every ``L_p`` at once, for the solve that replaces the walk where boundary states gather
  earlier ones (``readout_triton``: ``H = (I - E_PP)^{-1} L``).
* ``boundary_inverse``: the solve's ``(I - E_PP)^{-1}`` from E's boundary rows and the inverses of its diagonal
  blocks, one program per (n, BS columns): blocked forward substitution down the rows,
  ``X_i = (I - E_ii)^{-1} (delta_ij I + sum_{s < i BS} E[i, s] X_s)``, the earlier rows gathered (from a float32
  row-major copy) through the sources' table; written lower in q's dtype (the forward's product) and
  transposed, ``U = (I - E_PP)^{-T}``, in float32 (the backward's).
* ``triangular_product``: the solve's backward ``Z = U dH`` with U the upper triangular ``(I - E_PP)^{-T}``,
  reading only U's upper triangle and dH in float32 (the forward's ``H = U^T L`` is a dense torch product).
* ``chunk_output``: one program per (chunk, n, d_v block) (its C rows padded to CP, a power of two >= 16),
  ``o = ((Q K^T) * M) V + sum_j (E_j * Q) H_{X_j}``.
* ``chunk_walk`` (DIAG, a setting): the boundary states and the chunk output in one walk over the chunks, each state
  a later chunk reads in its level's slot (``readout_plan.chunk_slots``), so that no state is read from memory.

DECAY (a first-order pattern: ``A(t) = {t}``, ``B(t) = {t - 1}`` or empty, as ``ssm``): step 1 is
``decay_sums``, which writes per row ``S_i = sum_{r <= i} log2 |b_r|`` in float64 and the counts of negative and
zero b, and each chunk's last row of M and E. The chunk output reads S and the counts in place of M and E
(``mix``, ``ecoef``) and forms ``M[i, j] = a_j prod_{j < r <= i} b_r = a_j (-1)^{negatives} 2^{S_i - S_j}`` and
``E[i] = prod_{r <= i} b_r`` in registers (``_decay``; zero where a b in between is zero or absent); the walk reads
the last rows in place of M's and E's rows. S in float64 keeps ``S_i - S_j`` exact to float32 however large the
chunk's sum grows.

DIAG (``A(t) = {t}`` and w = 0, as ``fenwick``): ``M = T_k diag(a)``, so the forward does not form M:
``chunk_coefficients`` writes E alone, and the walk, ``boundary_local`` and the chunk output read the chunk inverses
in place of M and multiply column j by ``a_j`` as they load it.
"""
import triton
import triton.language as tl

from .triton_launch import launcher


@triton.jit
def _dot(x, y, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``x @ y`` with float32 accumulation; UPCAST (the interpreter, whose half-precision dot is wrong in
    Triton 3.6) multiplies the same rounded operands in float32."""
    if UPCAST:
        return tl.dot(x.to(tl.float32), y.to(tl.float32), input_precision="ieee")
    return tl.dot(x, y, input_precision=PREC)


@triton.jit
def _position(n, t, T, H):
    """The flat index of ``[b, t, h]`` in ``[B, T, H]`` of program ``n = b H + h`` (int64)."""
    return (n // H * T + t).to(tl.int64) * H + n % H


@triton.jit
def _rows(ptr, t, ok, n, T, H, d, cols, S):
    """``x[b, t, h, cols]`` of program ``n = b H + h`` for the rows t marked ok (zeros elsewhere), x ``[B, T, H, d]``
    with strides ``(T S, S, d, 1)``: S is ``H d`` where x is contiguous, wider where x is a slice of the last axis
    of a wider tensor (a layer's q, k, v, split from one projection). The kernels take S in units of a
    compile-time UNIT (8 where every row stride is a multiple of 8 elements, else 1) and multiply it back, so that
    the compiler knows the rows' alignment where Triton's own specialization (on divisibility by 16) does not."""
    off = (n // H * T + t).to(tl.int64) * S + n % H * d
    return tl.load(ptr + off[:, None] + cols[None, :], mask=ok[:, None] & (cols < d)[None, :], other=0.0)


@triton.jit
def _zero_rows(rows, width, C: tl.constexpr, BW: tl.constexpr):
    for c0 in range(0, width, BW):
        col = c0 + tl.arange(0, BW)
        tl.store(rows + col[None, :], tl.zeros((C, BW), tl.float32), mask=(col < width)[None, :])


@triton.jit
def _times_inverse(inv, rows, width, BW: tl.constexpr, PREC: tl.constexpr):
    """``X = inv @ X`` for the rows ``[C, width]`` at ``rows``, BW columns at a time, in place (products in PREC)."""
    for c0 in range(0, width, BW):
        col = c0 + tl.arange(0, BW)
        cm = (col < width)[None, :]
        res = tl.dot(inv, tl.load(rows + col[None, :], mask=cm, other=0.0), input_precision=PREC)
        tl.debug_barrier()
        tl.store(rows + col[None, :], res, mask=cm)


@triton.jit
def _chunk_block(n, k, T, H, nc, shift, C: tl.constexpr):
    """Program (n, chunk k)'s rows of step 1: ``(i, first row, t, t in [0, T), flat offset of t in [B, T, H],
    row offset in [N, nc, C])``."""
    rl = tl.arange(0, C)
    first = k * C - shift
    rows = first + rl
    pos = ((n // H * T + rows) * H + n % H).to(tl.int64)
    return rl, first, rows, (rows >= 0) & (rows < T), pos, ((n * nc + k) * C + rl).to(tl.int64)[:, None]


@triton.jit
def _decay(a_j, sum_i, sum_j, count_i, count_j, inside):
    """``M[i, j] = a_j prod_{j < r <= i} b_r = a_j (-1)^{negatives} 2^{S_i - S_j}`` from ``decay_sums``
    (``E[i]`` with ``a_j = 1`` and ``S_j``, ``count_j`` 0); 0 outside ``inside`` (j <= i) and where a b in
    ``(j, i]`` is zero."""
    between = count_i - count_j
    live = inside & (between < 256)
    sign = 1 - 2 * (between & 1)
    return tl.where(live, a_j * sign * tl.exp2(tl.where(live, sum_i - sum_j, 0.0).to(tl.float32)), 0.0)


@triton.jit
def _decay_block(a_ptr, sums_ptr, counts_ptr, n, c, nc, rl, ok, win, tw, wok, T, H, C: tl.constexpr):
    """DECAY: chunk c's ``(M [CP, W], E [CP])`` in registers from a and ``decay_sums``' S and counts (its window is
    its rows, ``win`` at the rows ``rl``)."""
    at = (n * nc + c).to(tl.int64) * C + win
    a, sums, counts = (_coefficient(a_ptr, n, tw, wok, T, H), tl.load(sums_ptr + at, mask=win < C, other=0.0),
                       tl.load(counts_ptr + at, mask=win < C, other=0))
    weights = _decay(a[None, :], sums[:, None], sums[None, :], counts[:, None], counts[None, :],
                     (win[None, :] <= rl[:, None]) & ok[:, None])
    return weights, _decay(1.0, sums, 0.0, counts, 0, True)


@triton.jit
def _padded_rows(c, T, shift, C: tl.constexpr, CP: tl.constexpr):
    """Chunk c's C rows padded to CP (a power of two): ``(i < CP, t = c C - s + i, t in [0, T) and i < C)``."""
    rl = tl.arange(0, CP)
    t = c * C - shift + rl
    return rl, t, (rl < C) & (t >= 0) & (t < T)


@triton.jit
def _b_present(b_idx, t, ok):
    """Where the rows t marked ok read a state (one-column B table ``b_idx``: its slot is not -1)."""
    return ok & (tl.load(b_idx + t, mask=ok, other=-1) >= 0)


@triton.jit
def _coefficient(ptr, n, t, ok, T, H):
    """A one-column coefficient table's ``x[b, t, h]`` of program ``n = b H + h`` at the t marked ok (0 elsewhere)."""
    return tl.load(ptr + _position(n, t, T, H), mask=ok, other=0.0).to(tl.float32)


@launcher
@triton.jit
def decay_sums(a_ptr, b_ptr, b_idx, sums, counts, last, last_carry, T, H, nc, shift, C: tl.constexpr,
               CP: tl.constexpr):
    """DECAY's step 1, one program per (n, chunk): per chunk row i ``S_i = sum_{r <= i} log2 |b_r|`` (float64)
    and ``negatives + 256 zeros`` among ``b_r, r <= i`` (int32), a b that is zero, absent (``b_idx < 0``) or
    outside ``[0, T)`` counting as a zero; and the chunk's last row of M (``last [N, nc, CP]``) and of E, which
    the walk reads."""
    n, c = tl.program_id(0), tl.program_id(1)
    rl, t, ok = _padded_rows(c, T, shift, C, CP)
    live = _b_present(b_idx, t, ok)
    b = _coefficient(b_ptr, n, t, live, T, H)
    sum_i = tl.cumsum(tl.log2(tl.where(b != 0, tl.abs(b), 1.0)).to(tl.float64), 0)
    count_i = tl.cumsum((b < 0).to(tl.int32) + 256 * (b == 0).to(tl.int32), 0)
    chunk = (n * nc + c).to(tl.int64)
    tl.store(sums + chunk * C + rl, sum_i, mask=rl < C)
    tl.store(counts + chunk * C + rl, count_i, mask=rl < C)
    at_last = rl == C - 1
    sum_last, count_last = tl.sum(tl.where(at_last, sum_i, 0.0), 0), tl.sum(tl.where(at_last, count_i, 0), 0)
    tl.store(last + chunk * CP + rl, _decay(_coefficient(a_ptr, n, t, ok, T, H), sum_last, sum_i, count_last, count_i,
                                            rl < C))
    tl.store(last_carry + chunk, _decay(1.0, sum_last, 0.0, count_last, 0, True))


@launcher
@triton.jit
def chunk_coefficients(a_ptr, b_ptr, a_idx, x_col, t_ptr, mix, ecoef, T, H, nc, WA, WB, shift, m,
                       C: tl.constexpr, WIN: tl.constexpr, JB: tl.constexpr, BW: tl.constexpr, MIX: tl.constexpr,
                       PREC: tl.constexpr):
    """``[M | E] = T_k [A_R | B_R,X]`` of chunk k, products in PREC (the chunk inverses'); without MIX, E alone
    (``mix`` is not touched)."""
    n, k = tl.program_id(0), tl.program_id(1)
    rl, first, rows, ok, pos, chunk_rows = _chunk_block(n, k, T, H, nc, shift, C)
    m_rows, e_rows = mix + chunk_rows * WIN, ecoef + chunk_rows * m
    if MIX:
        _zero_rows(m_rows, WIN, C, BW)         # zeros, then A's and B's entries scattered into their columns
    _zero_rows(e_rows, m, C, BW)
    tl.debug_barrier()
    if MIX:
        for j0 in range(0, WA, JB):            # A[t, a_idx[t, j]] at column a_idx - first + w of the window
            jj = j0 + tl.arange(0, JB)
            live = ok[:, None] & (jj < WA)[None, :]
            idx = tl.load(a_idx + rows[:, None] * WA + jj[None, :], mask=live, other=-1)
            coef = tl.load(a_ptr + (pos * WA)[:, None] + jj[None, :], mask=idx >= 0, other=0.0)
            tl.store(m_rows + idx - first + (WIN - C), coef.to(tl.float32), mask=idx >= 0)
    for j0 in range(0, WB, JB):                # B's entries before the chunk at their source's slot in X
        jj = j0 + tl.arange(0, JB)
        live = ok[:, None] & (jj < WB)[None, :]
        slot = tl.load(x_col + rows[:, None] * WB + jj[None, :], mask=live, other=-1)
        coef = tl.load(b_ptr + (pos * WB)[:, None] + jj[None, :], mask=slot >= 0, other=0.0)
        tl.store(e_rows + slot, coef.to(tl.float32), mask=slot >= 0)
    tl.debug_barrier()
    inv = tl.load(t_ptr + (n * nc + k).to(tl.int64) * (C * C) + rl[:, None] * C + rl[None, :])
    if MIX:
        _times_inverse(inv, m_rows, WIN, BW, PREC)   # [M | E] = T_k [A_R | B_R,X]
    _times_inverse(inv, e_rows, m, BW, PREC)


@triton.jit
def _window(c, T, shift, C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr):
    """Chunk c's window (the WIN positions up to its last row): ``(j < W, t, t in [0, T) and j < WIN)``."""
    win = tl.arange(0, W)
    t = c * C - shift - (WIN - C) + win
    return win, t, (win < WIN) & (t >= 0) & (t < T)


@triton.jit
def _state_ptrs(states, n, P, p, kc, vcol, dk, dv):
    """Pointers to rows kc, columns vcol of boundary state p of program n in ``states [N, P, d_k, d_v]``."""
    return states + ((n * P + p).to(tl.int64) * dk + kc)[:, None] * dv + vcol[None, :]


@triton.jit
def _boundary_step(step, P, b_chunk, b_row):
    """Step p's chunk and row; a step past the last reads the last's (unused)."""
    s = tl.minimum(step, P - 1)
    return tl.load(b_chunk + s), tl.load(b_row + s)


@triton.jit
def _boundary_inputs(p, c, r, P, n, nc, m, k_ptr, v_ptr, a_ptr, mix, ecoef, states, b_src, T, H, dk, dv, shift, sk, sv,
                     kcol, vcol,
                     C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                     GATHER: tl.constexpr, DECAY: tl.constexpr, SOURCES: tl.constexpr, UPCAST: tl.constexpr,
                     DIAG: tl.constexpr):
    """What step p (chunk c, row r: ``_boundary_step``) reads besides ``H_{p-1}``: ``(k window [W, BK], v window
    [W, BV], M row [W], sum of E[p, j] H_{X_j} over sources other than p - 1 [BK, BV] (zeros unless GATHER),
    the coefficient of H_{p-1})``; DECAY: ``mix`` and ``ecoef`` hold ``decay_sums``' last rows; DIAG: ``mix`` holds
    the chunk inverses (M's row is their row times a); SOURCES: m compiled in (0: read at run time)."""
    win, t, ok = _window(c, T, shift, C, WIN, W)
    kw = _rows(k_ptr, t, ok, n, T, H, dk, kcol, sk)
    vw = _rows(v_ptr, t, ok, n, T, H, dv, vcol, sv)
    row = ((n * nc + c) * C + r).to(tl.int64)
    if DECAY:                                   # the chunk's last row (r = C - 1) from decay_sums
        chunk = (n * nc + c).to(tl.int64)
        mrow = tl.load(mix + chunk * W + win)
        carry = tl.load(ecoef + chunk)
    else:
        mrow = _mix_row(mix, row, a_ptr, n, win, t, ok, T, H, WIN, DIAG)
        carry = 0.0
    if UPCAST:      # the interpreter (Triton 3.9) refuses a scalar condition in a block's mask: one-element blocks
        step = tl.zeros((1,), tl.int32) + tl.minimum(p, P - 1)
        previous = tl.zeros((1,), tl.float32)
    else:
        step = tl.minimum(p, P - 1)
        previous = 0.0
    gathered = tl.zeros((BK, BV), tl.float32)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    if SOURCES:                                 # m compiled in: every source's loads issued before any sum
        for j in tl.static_range(SOURCES):
            previous, gathered = _source(j, p, step, row, m, carry, ecoef, b_src, states, n, P, dk, dv, kcol, vcol,
                                         smask, previous, gathered, GATHER, DECAY)
    else:
        for j in range(m):
            previous, gathered = _source(j, p, step, row, m, carry, ecoef, b_src, states, n, P, dk, dv, kcol, vcol,
                                         smask, previous, gathered, GATHER, DECAY)
    return kw, vw, mrow, gathered, previous


@triton.jit
def _mix_row(mix, row, a_ptr, n, win, t, ok, T, H, WIN: tl.constexpr, DIAG: tl.constexpr):
    """M's row (flat index ``row`` in ``[N, nc, C]``) over the window: read, or with DIAG its row of the chunk inverse
    times ``a`` at the window's positions (``M = T_k diag(a)``)."""
    mrow = tl.load(mix + row * WIN + win, mask=ok, other=0.0)
    if DIAG:
        mrow = mrow * _coefficient(a_ptr, n, t, ok, T, H)
    return mrow


@triton.jit
def _source(j, p, step, row, m, carry, ecoef, b_src, states, n, P, dk, dv, kcol, vcol, smask, previous, gathered,
            GATHER: tl.constexpr, DECAY: tl.constexpr):
    """Step p's source j: ``(previous, gathered)`` with its coefficient added to ``previous`` if it is p - 1, else
    its state times its coefficient added to ``gathered`` (GATHER)."""
    src = tl.load(b_src + step * m + j)
    if DECAY:
        coef = tl.where(src >= 0, carry, 0.0)
    else:
        coef = tl.where(src >= 0, tl.load(ecoef + row * m + j), 0.0)
    previous += tl.where(src == p - 1, coef, 0.0)
    if GATHER:
        st = tl.load(_state_ptrs(states, n, P, src, kcol, vcol, dk, dv),
                     mask=smask & (src >= 0) & (src != p - 1), other=0.0)
        gathered += coef * st.to(tl.float32)
    return previous, gathered


@triton.jit
def _local_state(kw, vw, mrow, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``L = sum_s M[p, s] k_s v_s^T`` over a boundary row's window ``[W, BK] x [W, BV]`` (float32)."""
    weighted = (kw.to(tl.float32) * mrow[:, None]).to(kw.dtype)
    return _dot(tl.trans(weighted), vw, PREC, UPCAST)


@launcher
@triton.jit
def boundary_local(k_ptr, v_ptr, a_ptr, mix, local, b_chunk, b_row, P, nc, T, H, dk, dv, shift, sk, sv, n_vb,
                   C: tl.constexpr,
                   WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr,
                   UPCAST: tl.constexpr, UNIT: tl.constexpr, DIAG: tl.constexpr):
    """Each boundary state's own window, ``L_p = sum_s M[p, s] k_s v_s^T`` (``local [N, |P|, d_k, d_v]``), one
    program per (p, n, d_k block x d_v block), all in parallel (the solve's right-hand side)."""
    sk, sv = sk * UNIT, sv * UNIT
    p, n, blk = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    kcol = (blk // n_vb) * BK + tl.arange(0, BK)
    vcol = (blk % n_vb) * BV + tl.arange(0, BV)
    c, r = tl.load(b_chunk + p), tl.load(b_row + p)
    win, t, ok = _window(c, T, shift, C, WIN, W)
    mrow = _mix_row(mix, ((n * nc + c) * C + r).to(tl.int64), a_ptr, n, win, t, ok, T, H, WIN, DIAG)
    state = _local_state(_rows(k_ptr, t, ok, n, T, H, dk, kcol, sk), _rows(v_ptr, t, ok, n, T, H, dv, vcol, sv), mrow,
                         PREC, UPCAST)
    out = _state_ptrs(local, n, P, p, kcol, vcol, dk, dv)
    tl.store(out, state.to(local.dtype.element_ty), mask=(kcol < dk)[:, None] & (vcol < dv)[None, :])


@triton.jit
def _block_row(coef, b_src, diag, i, n, P, m, r, slot, BS: tl.constexpr):
    """Block row i's sources ``[BS, MP]`` (-1 padded; all -1 past the last row), their coefficients and its
    diagonal block's inverse (zeros past the last row, where none is read)."""
    rows = i * BS + r
    has = (rows < P)[:, None] & (slot < m)[None, :]
    src = tl.load(b_src + rows[:, None] * m + slot[None, :], mask=has, other=-1)
    c = tl.load(coef + (n.to(tl.int64) * P + rows)[:, None] * m + slot[None, :], mask=has, other=0.0)
    d = tl.load(diag + ((n * tl.cdiv(P, BS) + i) * BS + r)[:, None].to(tl.int64) * BS + r[None, :],
                mask=(rows - r < P)[:, None], other=0.0)              # block i exists: i BS < P
    return src, c, d


@launcher
@triton.jit
def boundary_inverse(coef, b_src, diag, lower, upper, rows_ptr, P, m, MP: tl.constexpr, BS: tl.constexpr,
                     PREC: tl.constexpr):
    """Columns ``[j BS, (j + 1) BS)`` of ``X = (I - E_PP)^{-1}`` for program (n, j), with ``E_PP[p, b_src[p, s]] =
    coef[n, p, s]`` (sources < p, -1 padded, MP >= m slots) and its diagonal blocks' inverses ``diag[n, i] =
    (I - E_ii)^{-1}`` (``chunk_inverse``): for each block row i >= j, ``X_i = diag_i (delta_ij I + sum_{s < i BS}
    E[i, s] X_s)``, the rows s gathered from ``rows_ptr[n] = X`` (float32, row-major: a source's BS columns are one
    contiguous load), written there, to ``upper[n] = X^T`` (float32) and to ``lower[n] = X`` (its dtype), zeros
    above the diagonal (not in ``rows_ptr``, which no program reads there)."""
    n, jb = tl.program_id(0), tl.program_id(1)
    r, slot = tl.arange(0, BS), tl.arange(0, MP)
    cols = jb * BS + r
    eye = (r[:, None] == r[None, :]).to(tl.float32)
    base = n.to(tl.int64) * P * P
    for i in range(0, jb):                                  # above the diagonal
        rows = i * BS + r
        ok = (cols < P)[None, :] & (rows < P)[:, None]
        tl.store(upper + base + cols[None, :] * P + rows[:, None], tl.zeros((BS, BS), tl.float32), mask=ok)
        tl.store(lower + base + rows[:, None] * P + cols[None, :], tl.zeros((BS, BS), lower.dtype.element_ty), mask=ok)
    src, c, d = _block_row(coef, b_src, diag, jb, n, P, m, r, slot, BS)
    for i in range(jb, tl.cdiv(P, BS)):
        rows = i * BS + r
        earlier = (src >= jb * BS) & (src < i * BS)
        past = tl.load(rows_ptr + base + src[:, :, None] * P + cols[None, None, :],
                       mask=earlier[:, :, None] & (cols < P)[None, None, :], other=0.0)
        x = tl.dot(d, tl.sum(c[:, :, None] * past, axis=1) + eye * (i == jb), input_precision=PREC)
        src, c, d = _block_row(coef, b_src, diag, i + 1, n, P, m, r, slot, BS)     # the next row's, meanwhile
        ok = (rows < P)[:, None] & (cols < P)[None, :]
        tl.store(rows_ptr + base + rows[:, None] * P + cols[None, :], x, mask=ok)
        tl.store(upper + base + cols[None, :] * P + rows[:, None], x, mask=ok)
        tl.store(lower + base + rows[:, None] * P + cols[None, :], x.to(lower.dtype.element_ty), mask=ok)
        tl.debug_barrier()


@launcher
@triton.jit
def triangular_product(u_ptr, x_ptr, out_ptr, P, F, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
                       PREC: tl.constexpr, UPCAST: tl.constexpr, CAST: tl.constexpr):
    """``out[n] = U[n] x[n]`` for U ``[N, P, P]`` upper triangular (float32) and x, out ``[N, P, F]``: one program
    per (BM rows, BN columns, n) sums over the k from its first row on, where ``U[row, k]`` can be nonzero. Products
    in CAST (U and x rounded to it, x read in its own dtype), sums float32. BK divides BM."""
    rb, fb, n = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rows, cols = rb * BM + tl.arange(0, BM), fb * BN + tl.arange(0, BN)
    u, x = u_ptr + n.to(tl.int64) * P * P, x_ptr + n.to(tl.int64) * P * F
    acc = tl.zeros((BM, BN), tl.float32)
    for k0 in range(rb * BM, P, BK):
        kk = k0 + tl.arange(0, BK)
        a = tl.load(u + rows[:, None] * P + kk[None, :], mask=(rows < P)[:, None] & (kk < P)[None, :], other=0.0)
        xt = tl.load(x + kk[:, None].to(tl.int64) * F + cols[None, :], mask=(kk < P)[:, None] & (cols < F)[None, :],
                     other=0.0)
        acc += _dot(a.to(CAST), xt.to(CAST), PREC, UPCAST)
    out = out_ptr + n.to(tl.int64) * P * F + rows[:, None].to(tl.int64) * F + cols[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(rows < P)[:, None] & (cols < F)[None, :])


@launcher
@triton.jit
def boundary_walk(k_ptr, v_ptr, a_ptr, mix, ecoef, states, b_chunk, b_row, b_src, P, nc, m, T, H, dk, dv, shift, sk,
                  sv, n_vb,
                  C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                  PREC: tl.constexpr, UPCAST: tl.constexpr, GATHER: tl.constexpr, DECAY: tl.constexpr,
                  SOURCES: tl.constexpr, UNIT: tl.constexpr, DIAG: tl.constexpr):
    """GATHER: some step reads a source other than its predecessor (then each step's stores are made
    visible before the next step's loads); without it no step reads ``states``. Step p loads step p + 2's
    chunk and row and step p + 1's inputs, so that no step waits on two loads in a row. SOURCES: m as a
    compile-time constant, the sources' loop unrolled (0: m read at run time)."""
    sk, sv = sk * UNIT, sv * UNIT
    n, blk = tl.program_id(0), tl.program_id(1)
    kcol = (blk // n_vb) * BK + tl.arange(0, BK)
    vcol = (blk % n_vb) * BV + tl.arange(0, BV)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    out = _state_ptrs(states, n, P, 0, kcol, vcol, dk, dv)
    c, r = _boundary_step(0, P, b_chunk, b_row)
    kw, vw, mrow, gathered, previous = _boundary_inputs(0, c, r, P, n, nc, m, k_ptr, v_ptr, a_ptr, mix, ecoef, states,
                                                        b_src, T, H, dk, dv, shift, sk, sv, kcol, vcol, C, WIN, W, BK,
                                                        BV, GATHER, DECAY, SOURCES, UPCAST, DIAG)
    c, r = _boundary_step(1, P, b_chunk, b_row)
    h = tl.zeros((BK, BV), tl.float32)
    for p in range(P):
        # step p + 1's inputs: its sources other than p were written at steps <= p - 1 (barrier passed)
        c2, r2 = _boundary_step(p + 2, P, b_chunk, b_row)
        nk, nv, nm, ng, npv = _boundary_inputs(p + 1, c, r, P, n, nc, m, k_ptr, v_ptr, a_ptr, mix, ecoef, states,
                                               b_src, T, H, dk, dv, shift, sk, sv, kcol, vcol, C, WIN, W, BK, BV,
                                               GATHER, DECAY, SOURCES, UPCAST, DIAG)
        h = _local_state(kw, vw, mrow, PREC, UPCAST) + gathered + previous * h
        tl.store(out + p * dk * dv, h.to(states.dtype.element_ty), mask=smask)
        if GATHER:
            tl.debug_barrier()
        kw, vw, mrow, gathered, previous = nk, nv, nm, ng, npv
        c, r = c2, r2


@triton.jit
def _level_inputs(p, c, r, P, n, nc, m, k_ptr, v_ptr, a_ptr, mix, ecoef, src_slot, b_slot, T, H, dk, dv, shift, sk, sv,
                  kcol, vcol, C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, MP: tl.constexpr,
                  DIAG: tl.constexpr):
    """What step p (chunk c, row r) of ``level_walk`` reads: ``(k window [W, BK], v window [W, BV], M row [W],
    E row [MP], its sources' slots [MP] (-1 padded), state p's slot)``."""
    win, t, ok = _window(c, T, shift, C, WIN, W)
    row = ((n * nc + c) * C + r).to(tl.int64)
    j = tl.arange(0, MP)
    step = tl.minimum(p, P - 1)
    return (_rows(k_ptr, t, ok, n, T, H, dk, kcol, sk), _rows(v_ptr, t, ok, n, T, H, dv, vcol, sv),
            _mix_row(mix, row, a_ptr, n, win, t, ok, T, H, WIN, DIAG),
            tl.load(ecoef + row * m + j, mask=j < m, other=0.0),
            tl.load(src_slot + step * m + j, mask=j < m, other=-1), tl.load(b_slot + step))


@triton.jit
def _weight(e, slot, i: tl.constexpr):
    """The E coefficient of a step's source in slot i (0 where it reads none there)."""
    return tl.sum(tl.where(slot == i, e, 0.0), axis=0)


@triton.jit
def _gather_slots(h, e, slot, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS: tl.constexpr):
    """``h + sum_i w_i s_i`` over the first SLOTS slots, ``w_i`` the E coefficient of the source in slot i
    (``_weight``)."""
    h += _weight(e, slot, 0) * s0
    if SLOTS > 1:
        h += _weight(e, slot, 1) * s1
    if SLOTS > 2:
        h += _weight(e, slot, 2) * s2
    if SLOTS > 3:
        h += _weight(e, slot, 3) * s3
    if SLOTS > 4:
        h += _weight(e, slot, 4) * s4
    if SLOTS > 5:
        h += _weight(e, slot, 5) * s5
    if SLOTS > 6:
        h += _weight(e, slot, 6) * s6
    if SLOTS > 7:
        h += _weight(e, slot, 7) * s7
    if SLOTS > 8:
        h += _weight(e, slot, 8) * s8
    return h


@triton.jit
def _put_slot(h, home, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS: tl.constexpr):
    """The slots with h in slot ``home`` (none where home is -1)."""
    s0 = tl.where(home == 0, h, s0)
    if SLOTS > 1:
        s1 = tl.where(home == 1, h, s1)
    if SLOTS > 2:
        s2 = tl.where(home == 2, h, s2)
    if SLOTS > 3:
        s3 = tl.where(home == 3, h, s3)
    if SLOTS > 4:
        s4 = tl.where(home == 4, h, s4)
    if SLOTS > 5:
        s5 = tl.where(home == 5, h, s5)
    if SLOTS > 6:
        s6 = tl.where(home == 6, h, s6)
    if SLOTS > 7:
        s7 = tl.where(home == 7, h, s7)
    if SLOTS > 8:
        s8 = tl.where(home == 8, h, s8)
    return s0, s1, s2, s3, s4, s5, s6, s7, s8


@launcher
@triton.jit
def level_walk(k_ptr, v_ptr, a_ptr, mix, ecoef, states, b_chunk, b_row, src_slot, b_slot, P, nc, m, T, H, dk, dv,
               shift, sk, sv, n_vb, C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr,
               BV: tl.constexpr, MP: tl.constexpr, SLOTS: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
               UNIT: tl.constexpr, DIAG: tl.constexpr):
    """The boundary walk ``H_p = L_p + sum_j E[p, j] H_{X_j}`` with every state a later step reads held in registers,
    float32, in one of SLOTS (at most 9) slots assigned on the host (``readout_plan.level_slots``: a state's Fenwick
    level), so that no step reads ``states``, which it only writes (in q's dtype); one program per (n, d_k block x
    d_v block). Step p + 1's inputs are loaded while step p computes."""
    tl.static_assert(SLOTS <= 9)        # the named slots s0 .. s8 below (readout_triton.MAX_SLOTS)
    sk, sv = sk * UNIT, sv * UNIT
    n, blk = tl.program_id(0), tl.program_id(1)
    kcol = (blk // n_vb) * BK + tl.arange(0, BK)
    vcol = (blk % n_vb) * BV + tl.arange(0, BV)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    out = _state_ptrs(states, n, P, 0, kcol, vcol, dk, dv)
    s0 = tl.zeros((BK, BV), tl.float32)
    s1, s2, s3, s4, s5, s6, s7, s8 = s0, s0, s0, s0, s0, s0, s0, s0
    c, r = _boundary_step(0, P, b_chunk, b_row)
    kw, vw, mrow, e, slot, home = _level_inputs(0, c, r, P, n, nc, m, k_ptr, v_ptr, a_ptr, mix, ecoef, src_slot,
                                                b_slot, T, H, dk, dv, shift, sk, sv, kcol, vcol, C, WIN, W, MP, DIAG)
    c, r = _boundary_step(1, P, b_chunk, b_row)
    for p in range(P):
        c2, r2 = _boundary_step(p + 2, P, b_chunk, b_row)
        nk, nv, nm, ne, ns, nh = _level_inputs(p + 1, c, r, P, n, nc, m, k_ptr, v_ptr, a_ptr, mix, ecoef, src_slot,
                                               b_slot, T, H, dk, dv, shift, sk, sv, kcol, vcol, C, WIN, W, MP, DIAG)
        h = _gather_slots(_local_state(kw, vw, mrow, PREC, UPCAST), e, slot, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS)
        tl.store(out + p * dk * dv, h.to(states.dtype.element_ty), mask=smask)
        s0, s1, s2, s3, s4, s5, s6, s7, s8 = _put_slot(h, home, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS)
        kw, vw, mrow, e, slot, home = nk, nv, nm, ne, ns, nh
        c, r = c2, r2


@triton.jit
def _chunk_rows(c, T, shift, C: tl.constexpr, CP: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr):
    """Chunk c's rows ``(i < CP, t, t in [0, T) and i < C)`` (``_padded_rows``) and its window's (``_window``)."""
    rl, t, ok = _padded_rows(c, T, shift, C, CP)
    win, tw, wok = _window(c, T, shift, C, WIN, W)
    return rl, t, ok, win, tw, wok


@triton.jit
def _state_block(states, n, P, src, kc, vcol, dk, dv):
    """Rows kc, columns vcol of boundary state src of program n (``states [N, P, d_k, d_v]``; zeros outside)."""
    return tl.load(_state_ptrs(states, n, P, src, kc, vcol, dk, dv),
                   mask=(kc < dk)[:, None] & (vcol < dv)[None, :], other=0.0)


@launcher
@triton.jit
def chunk_output(q_ptr, k_ptr, v_ptr, a_ptr, mix, ecoef, states, ext, ext_count, o_ptr, P, nc, m, T,
                 H, dk, dv, shift, sq, sk, sv, C: tl.constexpr, CP: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr,
                 BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr, DECAY: tl.constexpr,
                 UNIT: tl.constexpr, DIAG: tl.constexpr, AFTER: tl.constexpr, QONCE: tl.constexpr):
    """DECAY: M and E from a and ``decay_sums``' S and counts (in ``mix`` and ``ecoef``; the window is the
    chunk's rows: W = CP). DIAG: M from the chunk inverses (in ``mix``) and a. AFTER: each source's term as
    ``E_j * (Q H_{X_j})``, its rows scaled after the product, where it is ``(E_j * Q) H_{X_j}``; QONCE (one slice,
    BK >= d_k) loads Q once for all sources."""
    sq, sk, sv = sq * UNIT, sk * UNIT, sv * UNIT
    c, n, vb = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rl, t, ok, win, tw, wok = _chunk_rows(c, T, shift, C, CP, WIN, W)
    vcol = vb * BV + tl.arange(0, BV)
    block = ((n * nc + c) * C + rl).to(tl.int64)
    scores = tl.zeros((CP, W), tl.float32)
    for k0 in range(0, dk, BK):
        kc = k0 + tl.arange(0, BK)
        scores += _dot(_rows(q_ptr, t, ok, n, T, H, dk, kc, sq),
                       tl.trans(_rows(k_ptr, tw, wok, n, T, H, dk, kc, sk)), PREC, UPCAST)
    if DECAY:
        weights, carry = _decay_block(a_ptr, mix, ecoef, n, c, nc, rl, ok, win, tw, wok, T, H, C)
    else:
        weights = tl.load(mix + (block * WIN)[:, None] + win[None, :], mask=ok[:, None] & wok[None, :], other=0.0)
        if DIAG:
            weights = weights * _coefficient(a_ptr, n, tw, wok, T, H)[None, :]
    v = _rows(v_ptr, tw, wok, n, T, H, dv, vcol, sv)
    o = _dot((scores * weights).to(v.dtype), v, PREC, UPCAST)
    if QONCE:
        q_all = _rows(q_ptr, t, ok, n, T, H, dk, tl.arange(0, BK), sq)
    for j in range(tl.load(ext_count + c)):
        src = tl.load(ext + c * m + j)
        if DECAY:
            e = carry
        else:
            e = tl.load(ecoef + block * m + j, mask=ok, other=0.0)
        if QONCE:
            st = _state_block(states, n, P, src, tl.arange(0, BK), vcol, dk, dv).to(q_all.dtype)
            if AFTER:
                o += _dot(q_all, st, PREC, UPCAST) * e[:, None]
            else:
                o += _dot((q_all.to(tl.float32) * e[:, None]).to(q_all.dtype), st, PREC, UPCAST)
        else:
            part = tl.zeros((CP, BV), tl.float32)
            for k0 in range(0, dk, BK):
                kc = k0 + tl.arange(0, BK)
                q = _rows(q_ptr, t, ok, n, T, H, dk, kc, sq)
                st = _state_block(states, n, P, src, kc, vcol, dk, dv).to(q.dtype)
                if AFTER:
                    part += _dot(q, st, PREC, UPCAST)
                else:
                    o += _dot((q.to(tl.float32) * e[:, None]).to(q.dtype), st, PREC, UPCAST)
            if AFTER:
                o += part * e[:, None]
    off = _position(n, t, T, H) * dv
    tl.store(o_ptr + off[:, None] + vcol[None, :], o.to(o_ptr.dtype.element_ty),
             mask=ok[:, None] & (vcol < dv)[None, :])


@triton.jit
def _walk_inputs(c, nc, n, q_ptr, k_ptr, v_ptr, a_ptr, inv, o_ptr, T, H, dk, dv, shift, sq, sk, sv, kcol, vcol,
                 C: tl.constexpr, CP: tl.constexpr, OWN: tl.constexpr):
    """What chunk c of ``chunk_walk`` reads (a chunk past the last reads the last's, unused): ``(Q [CP, BK],
    K [CP, BK], V [CP, BV], M = T_k diag(a) [CP, CP])``; without OWN, the chunk's own term ``[CP, BV]`` (float32)
    from the output in M's place."""
    c = tl.minimum(c, nc - 1)
    rl, t, ok = _padded_rows(c, T, shift, C, CP)
    if OWN:
        block = ((n * nc + c) * C + rl).to(tl.int64)
        mix = tl.load(inv + (block * C)[:, None] + rl[None, :], mask=ok[:, None] & ok[None, :], other=0.0)
        mix = mix * _coefficient(a_ptr, n, t, ok, T, H)[None, :]
    else:
        mix = tl.load(o_ptr + (_position(n, t, T, H) * dv)[:, None] + vcol[None, :],
                      mask=ok[:, None] & (vcol < dv)[None, :], other=0.0).to(tl.float32)
    return (_rows(q_ptr, t, ok, n, T, H, dk, kcol, sq), _rows(k_ptr, t, ok, n, T, H, dk, kcol, sk),
            _rows(v_ptr, t, ok, n, T, H, dv, vcol, sv), mix)


@triton.jit
def _read_slot(o, w, q, ecoef, block, m, ok, column, state, g, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``(o + E_j * (Q H), w + E_j g)`` where the chunk reads the state H of a slot as its source j (``column``), g
    that state's scalar (``chunk_walk``'s SPLIT), else ``(o, w)``."""
    if column >= 0:
        e = tl.load(ecoef + block * m + column, mask=ok, other=0.0)
        o += _dot(q, state.to(q.dtype), PREC, UPCAST) * e[:, None]
        w += e * g
    return o, w


@triton.jit
def _read_slots(o, w, q, ecoef, block, m, ok, columns, s0, s1, s2, s3, s4, s5, s6, s7, s8,
                g0, g1, g2, g3, g4, g5, g6, g7, g8, SLOTS: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``(o + sum_j E_j * (Q H_{X_j}), w + sum_j E_j g_{X_j})`` over the slots, ``columns`` each slot's source
    column (``_read_slot``)."""
    o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns), s0, g0, PREC, UPCAST)
    if SLOTS > 1:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 1), s1, g1, PREC, UPCAST)
    if SLOTS > 2:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 2), s2, g2, PREC, UPCAST)
    if SLOTS > 3:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 3), s3, g3, PREC, UPCAST)
    if SLOTS > 4:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 4), s4, g4, PREC, UPCAST)
    if SLOTS > 5:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 5), s5, g5, PREC, UPCAST)
    if SLOTS > 6:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 6), s6, g6, PREC, UPCAST)
    if SLOTS > 7:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 7), s7, g7, PREC, UPCAST)
    if SLOTS > 8:
        o, w = _read_slot(o, w, q, ecoef, block, m, ok, tl.load(columns + 8), s8, g8, PREC, UPCAST)
    return o, w


@triton.jit
def _local_row(inv, a_ptr, n, nc, c, r, rl, t, ok, T, H, C: tl.constexpr):
    """DIAG's M row r of chunk c over its rows: its inverse's row times a (``M = T_k diag(a)``)."""
    row = ((n * nc + c) * C + r).to(tl.int64)
    return tl.load(inv + row * C + rl, mask=ok, other=0.0) * _coefficient(a_ptr, n, t, ok, T, H)


@launcher
@triton.jit
def chunk_walk(q_ptr, k_ptr, v_ptr, a_ptr, inv, ecoef, states, o_ptr, w_ptr, g_ptr, c_column, c_state, c_row, c_home,
               nc, P, m, T, H, dk, dv, shift, sq, sk, sv, split_chunk, split_slot, C: tl.constexpr, CP: tl.constexpr,
               BK: tl.constexpr, BV: tl.constexpr, SP: tl.constexpr, SLOTS: tl.constexpr, PREC: tl.constexpr,
               UPCAST: tl.constexpr, UNIT: tl.constexpr, AHEAD: tl.constexpr, SLOT16: tl.constexpr,
               OWN: tl.constexpr, SPLIT: tl.constexpr):
    """The boundary states and the chunk output in one walk over the chunks (DIAG, w = 0): one program per (n, d_v
    block) takes chunk c's output ``o = ((Q K^T) * M) V + sum_j E_j * (Q H_{X_j})``, then its boundary state
    ``H_p = L_p + sum_j E[p, j] H_{X_j}``, with every state a later chunk reads in its slot (``level_walk``'s, d_k
    whole: BK >= d_k) and ``c_column [nc, SP]`` the column j of E whose source each slot holds (-1: none;
    ``readout_plan.chunk_slots``), so that no state is read from memory; ``states`` is written for the backward.
    AHEAD: chunk c + 1's inputs are loaded while chunk c computes (else at the top of its step, for the compiler to
    pipeline); SLOT16: the slots in q's dtype (else float32); OWN: the chunk's own term ``((Q K^T) * M) V`` taken
    here, else read from the output, where ``chunk_output`` with no sources wrote it (rounded to q's dtype once
    more so). SPLIT (``proofs/fenwick_split_walk.py``): two programs per (n, d_v block), the first walking the chunks
    up to ``split_chunk`` (which holds state m, in slot ``split_slot``), the second the chunks after it from H_0
    (chunk 0's own) and H_m taken as zero, carrying each state's scalar g (g_m = 1) into ``g_ptr [N, P]`` and each
    row's w into ``w_ptr [N, nc C]``, for ``split_fixup`` to add ``g_p H_m`` and ``w_t q_t^T H_m``."""
    tl.static_assert(SLOTS <= 9)        # the named slots s0 .. s8 below (readout_triton.MAX_SLOTS)
    sq, sk, sv = sq * UNIT, sk * UNIT, sv * UNIT
    n, vb, part = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    kcol, vcol, slot = tl.arange(0, BK), vb * BV + tl.arange(0, BV), tl.arange(0, SP)
    out = _state_ptrs(states, n, P, 0, kcol, vcol, dk, dv)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    if SLOT16:
        s0 = tl.zeros((BK, BV), q_ptr.dtype.element_ty)
    else:
        s0 = tl.zeros((BK, BV), tl.float32)
    s1, s2, s3, s4, s5, s6, s7, s8 = s0, s0, s0, s0, s0, s0, s0, s0
    g0 = tl.sum(tl.zeros((SP,), tl.float32), axis=0)
    g1, g2, g3, g4, g5, g6, g7, g8 = g0, g0, g0, g0, g0, g0, g0, g0
    first, last = 0, nc
    if SPLIT:
        if part == 0:
            last = split_chunk + 1
        else:                                   # H_0 from chunk 0 alone (no sources), H_m unknown: zero, g 1
            first = split_chunk + 1
            rl, t, ok = _padded_rows(0, T, shift, C, CP)
            h = _local_state(_rows(k_ptr, t, ok, n, T, H, dk, kcol, sk), _rows(v_ptr, t, ok, n, T, H, dv, vcol, sv),
                             _local_row(inv, a_ptr, n, nc, 0, tl.load(c_row), rl, t, ok, T, H, C), PREC, UPCAST)
            h, g, home = h.to(s0.dtype), g0 + 1.0, tl.load(c_home)
            s0, s1, s2, s3, s4, s5, s6, s7, s8 = _put_slot(h, home, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS)
            g0, g1, g2, g3, g4, g5, g6, g7, g8 = _put_slot(g, split_slot, g0, g1, g2, g3, g4, g5, g6, g7, g8, SLOTS)
    if AHEAD:
        q, k, v, mix = _walk_inputs(first, nc, n, q_ptr, k_ptr, v_ptr, a_ptr, inv, o_ptr, T, H, dk, dv, shift, sq,
                                    sk, sv, kcol, vcol, C, CP, OWN)
    for c in range(first, last):
        if AHEAD:
            nq, nk, nv, nmix = _walk_inputs(c + 1, nc, n, q_ptr, k_ptr, v_ptr, a_ptr, inv, o_ptr, T, H, dk, dv,
                                            shift, sq, sk, sv, kcol, vcol, C, CP, OWN)
        else:
            q, k, v, mix = _walk_inputs(c, nc, n, q_ptr, k_ptr, v_ptr, a_ptr, inv, o_ptr, T, H, dk, dv, shift, sq, sk,
                                        sv, kcol, vcol, C, CP, OWN)
        rl, t, ok = _padded_rows(c, T, shift, C, CP)
        block = ((n * nc + c) * C + rl).to(tl.int64)
        if OWN:
            o = _dot((_dot(q, tl.trans(k), PREC, UPCAST) * mix).to(v.dtype), v, PREC, UPCAST)
        else:
            o = mix
        w = tl.zeros((CP,), tl.float32)
        o, w = _read_slots(o, w, q, ecoef, block, m, ok, c_column + c * SP, s0, s1, s2, s3, s4, s5, s6, s7, s8,
                           g0, g1, g2, g3, g4, g5, g6, g7, g8, SLOTS, PREC, UPCAST)
        tl.store(o_ptr + (_position(n, t, T, H) * dv)[:, None] + vcol[None, :], o.to(o_ptr.dtype.element_ty),
                 mask=ok[:, None] & (vcol < dv)[None, :])
        if SPLIT:
            if (part == 1) & (vb == 0):
                tl.store(w_ptr + block, w, mask=ok)
        p = tl.load(c_state + c)
        if p >= 0:                              # the chunk's boundary state, at its row r, into its slot
            column = tl.load(c_column + c * SP + slot)
            r = tl.load(c_row + c)
            erow = tl.load(ecoef + ((n * nc + c) * C + r).to(tl.int64) * m + column, mask=column >= 0, other=0.0)
            h = _gather_slots(_local_state(k, v, _local_row(inv, a_ptr, n, nc, c, r, rl, t, ok, T, H, C), PREC,
                                           UPCAST), erow, slot, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS)
            tl.store(out + p * dk * dv, h.to(states.dtype.element_ty), mask=smask)
            h, home = h.to(s0.dtype), tl.load(c_home + c)
            s0, s1, s2, s3, s4, s5, s6, s7, s8 = _put_slot(h, home, s0, s1, s2, s3, s4, s5, s6, s7, s8, SLOTS)
            if SPLIT:
                g = _gather_slots(0.0, erow, slot, g0, g1, g2, g3, g4, g5, g6, g7, g8, SLOTS)
                g0, g1, g2, g3, g4, g5, g6, g7, g8 = _put_slot(g, home, g0, g1, g2, g3, g4, g5, g6, g7, g8, SLOTS)
                if (part == 1) & (vb == 0):
                    tl.store(g_ptr + n * P + p, g)
        if AHEAD:
            q, k, v, mix = nq, nk, nv, nmix


@launcher
@triton.jit
def split_fixup(q_ptr, states, o_ptr, w_ptr, g_ptr, c_state, split_state, first, nc, P, T, H, dk, dv, shift, sq,
                C: tl.constexpr, CP: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr,
                UPCAST: tl.constexpr, UNIT: tl.constexpr):
    """After ``chunk_walk``'s SPLIT, one program per (chunk c after the split, n, d_v block): ``o_t += w_t q_t^T H_m``
    over the chunk's rows, and ``H_p += g_p H_m`` for its boundary state p (``proofs/fenwick_split_walk.py``)."""
    c, n, vb = first + tl.program_id(0), tl.program_id(1), tl.program_id(2)
    kcol, vcol = tl.arange(0, BK), vb * BV + tl.arange(0, BV)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    rl, t, ok = _padded_rows(c, T, shift, C, CP)
    block = ((n * nc + c) * C + rl).to(tl.int64)
    h_m = _state_block(states, n, P, split_state, kcol, vcol, dk, dv)
    q = _rows(q_ptr, t, ok, n, T, H, dk, kcol, sq * UNIT)
    at = o_ptr + (_position(n, t, T, H) * dv)[:, None] + vcol[None, :]
    omask = ok[:, None] & (vcol < dv)[None, :]
    o = tl.load(at, mask=omask, other=0.0).to(tl.float32)
    o += _dot(q, h_m.to(q.dtype), PREC, UPCAST) * tl.load(w_ptr + block, mask=ok, other=0.0)[:, None]
    tl.store(at, o.to(o_ptr.dtype.element_ty), mask=omask)
    p = tl.load(c_state + c)
    if p >= 0:
        fixed = (_state_block(states, n, P, p, kcol, vcol, dk, dv).to(tl.float32)
                 + tl.load(g_ptr + n * P + p) * h_m.to(tl.float32))
        tl.store(_state_ptrs(states, n, P, p, kcol, vcol, dk, dv),
                 fixed.to(states.dtype.element_ty), mask=smask)
