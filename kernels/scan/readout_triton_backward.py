"""Triton kernels of the aligned readout's backward (``readout_triton``), layouts as ``readout_triton_kernels``.

Given dO, with ``S = Q K_w^T``, ``dP = dO V_w^T`` on each chunk's window and Z_p = dL/dH_p:

* ``chunk_output_backward``, one program per (chunk, n), the output terms (as a flash-attention backward):
  ``dM = dP * S``, ``dS = dP * M``, ``dq = dS K_w + sum_j E_j (dO H_j^T)``, ``dk_w += dS^T Q``,
  ``dv_w += (S * M)^T dO``, ``dE[t, j] = q_t . (H_j dO_t)``, and each source's share of
  ``G_p = sum_{ext[c, j] = p} (E_j Q)^T dO`` (float32 atomics into ``dstates``);
* ``state_walk_backward``, one program per (n, d_k block, d_v block), in reverse over P:
  ``Z_p = G_p + sum_{p' reads p} E[p', j] Z_p'`` (each step pushes its Z into its sources: the predecessor's
  share in registers, others in ``dstates`` itself), leaving Z in ``dstates``;
* ``boundary_backward``, one program per (boundary p, n), the boundary rows' terms:
  ``dM[r, s] += k_s^T Z_p v_s``, ``dk_s += M[r, s] Z_p v_s``, ``dv_s += M[r, s] Z_p^T k_s``,
  ``dE[r, j] += <Z_p, H_{X_j(p)}>``;
* ``coefficient_grads``, one program per (n, chunk), step 1 backwards with the forward's chunk inverses:
  ``dR = T_k^T [dM | dE]``, ``dB_RR = dR [M | E]^T``, da and db gathered from dR_M, dB_RR and dR_E;
* ``decay_grads``, the same for first-order patterns (DECAY) with ``T_k``, M and E formed in registers from
  ``decay_sums``' S and counts, as the forward's kernels form M and E: the backward runs no step 1. With DECAY the
  other kernels read S and the counts (chunk output) or the chunks' last rows of M and E (walk, boundary rows) in
  place of M and E, as the forward's do.

dk and dv are float32 sums, by atomics where windows overlap (w > 0); with w = 0 a row's chunk output program is its
first writer and stores (``_add_rows``' STORE), so that dk, dv and dM need no zeros first. Products take q's dtype,
sums float32.
"""
import triton
import triton.language as tl

from .readout_triton_kernels import (_b_present, _chunk_block, _chunk_rows, _coefficient, _decay, _decay_block, _dot,
                                     _padded_rows, _position, _rows, _window)
from .triton_launch import launcher


@triton.jit
def _add_rows(ptr, t, ok, n, T, H, d, cols, x, STORE: tl.constexpr = False):
    """``x[b, t, h, cols] += x`` (relaxed float32 atomics: no launch reads them back) for the rows t marked ok; STORE:
    ``=`` (the rows' one writer so far)."""
    off = _position(n, t, T, H) * d
    mask = ok[:, None] & (cols < d)[None, :]
    if STORE:
        tl.store(ptr + off[:, None] + cols[None, :], x, mask=mask)
    else:
        tl.atomic_add(ptr + off[:, None] + cols[None, :], x, mask=mask, sem="relaxed")


@launcher
@triton.jit
def chunk_output_backward(q_ptr, k_ptr, v_ptr, do_ptr, a_ptr, mix, ecoef, states, ext, ext_count, dq_ptr, dk_ptr,
                          dv_ptr, dmix, decoef, dstates, P, nc, m, T, H, dk, dv, shift, sq, sk, sv,
                          C: tl.constexpr, CP: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr,
                          DV: tl.constexpr, MP: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
                          UNIT: tl.constexpr, DECAY: tl.constexpr):
    """MP: a power of two, at least m (dE's columns, summed over the d_k slices in registers); row strides in
    units of UNIT (``readout_triton_kernels._rows``). DECAY: M and E from a and ``decay_sums``' S and counts (in
    ``mix`` and ``ecoef``), as the forward's chunk output forms them."""
    sq, sk, sv = sq * UNIT, sk * UNIT, sv * UNIT
    c, n = tl.program_id(0), tl.program_id(1)
    rl, t, ok, win, tw, wok = _chunk_rows(c, T, shift, C, CP, WIN, W)
    vcol = tl.arange(0, DV)
    block = ((n * nc + c) * C + rl).to(tl.int64)
    do = _rows(do_ptr, t, ok, n, T, H, dv, vcol, H * dv)
    vw = _rows(v_ptr, tw, wok, n, T, H, dv, vcol, sv)
    dp = _dot(do, tl.trans(vw), PREC, UPCAST)
    scores = tl.zeros((CP, W), tl.float32)
    for k0 in range(0, dk, BK):
        kc = k0 + tl.arange(0, BK)
        scores += _dot(_rows(q_ptr, t, ok, n, T, H, dk, kc, sq),
                       tl.trans(_rows(k_ptr, tw, wok, n, T, H, dk, kc, sk)), PREC, UPCAST)
    rows_ok = (rl < C)[:, None] & (win < WIN)[None, :]
    if DECAY:
        weights, carry = _decay_block(a_ptr, mix, ecoef, n, c, nc, rl, ok, win, tw, wok, T, H, C)
    else:
        weights = tl.load(mix + (block * WIN)[:, None] + win[None, :], mask=rows_ok, other=0.0)
    tl.store(dmix + (block * WIN)[:, None] + win[None, :], dp * scores, mask=rows_ok)
    _add_rows(dv_ptr, tw, wok, n, T, H, dv, vcol,
              _dot(tl.trans((scores * weights).to(do.dtype)), do, PREC, UPCAST), WIN == C)
    ds = (dp * weights).to(do.dtype)
    count = tl.load(ext_count + c)
    jcol = tl.arange(0, MP)
    de = tl.zeros((CP, MP), tl.float32)
    for k0 in range(0, dk, BK):
        kc = k0 + tl.arange(0, BK)
        q = _rows(q_ptr, t, ok, n, T, H, dk, kc, sq)
        _add_rows(dk_ptr, tw, wok, n, T, H, dk, kc, _dot(tl.trans(ds), q, PREC, UPCAST), WIN == C)
        dq = _dot(ds, _rows(k_ptr, tw, wok, n, T, H, dk, kc, sk), PREC, UPCAST)
        for j in range(count):
            src = tl.load(ext + c * m + j)
            if DECAY:
                e = carry
            else:
                e = tl.load(ecoef + block * m + j, mask=rl < C, other=0.0)
            at = ((n * P + src).to(tl.int64) * dk + kc)[:, None] * dv + vcol[None, :]
            smask = (kc < dk)[:, None] & (vcol < dv)[None, :]
            st = tl.load(states + at, mask=smask, other=0.0).to(do.dtype)
            back = _dot(do, tl.trans(st), PREC, UPCAST)                 # dO H_j^T [CP, BK]
            dq += e[:, None] * back
            de += tl.where(jcol[None, :] == j, tl.sum(back * q.to(tl.float32), 1)[:, None], 0.0)
            weighted = (q.to(tl.float32) * e[:, None]).to(do.dtype)
            tl.atomic_add(dstates + at, _dot(tl.trans(weighted), do, PREC, UPCAST), mask=smask, sem="relaxed")
        off = _position(n, t, T, H) * dk
        tl.store(dq_ptr + off[:, None] + kc[None, :], dq.to(dq_ptr.dtype.element_ty),
                 mask=ok[:, None] & (kc < dk)[None, :])
    tl.store(decoef + (block * m)[:, None] + jcol[None, :], de, mask=(rl < C)[:, None] & (jcol < count)[None, :])


@launcher
@triton.jit
def state_walk_backward(ecoef, dstates, b_chunk, b_row, b_src, P, nc, m, dk, dv, n_vb, C: tl.constexpr,
                        BK: tl.constexpr, BV: tl.constexpr, GATHER: tl.constexpr, DECAY: tl.constexpr):
    """GATHER: some boundary state reads a source other than its predecessor (pushed through memory). DECAY:
    ``ecoef`` holds each chunk's last row of E (``decay_sums``' ``last_carry``)."""
    n, blk = tl.program_id(0), tl.program_id(1)
    kcol = (blk // n_vb) * BK + tl.arange(0, BK)
    vcol = (blk % n_vb) * BV + tl.arange(0, BV)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    base = dstates + ((n * P).to(tl.int64) * dk + kcol)[:, None] * dv + vcol[None, :]
    carry = tl.zeros((BK, BV), tl.float32)
    for i in range(P):
        p = P - 1 - i
        z = tl.load(base + p * dk * dv, mask=smask, other=0.0) + carry
        tl.store(base + p * dk * dv, z, mask=smask)
        chunk = n * nc + tl.load(b_chunk + p)
        row = chunk * C + tl.load(b_row + p)
        previous = 0.0
        for j in range(m):
            src = tl.load(b_src + p * m + j)
            if DECAY:
                coef = tl.where(src >= 0, tl.load(ecoef + chunk), 0.0)
            else:
                coef = tl.where(src >= 0, tl.load(ecoef + row * m + j), 0.0)     # (no scalar masks: Triton 3.9)
            previous += tl.where(src == p - 1, coef, 0.0)
            if GATHER:
                block = tl.zeros((BK, BV), tl.int32) + src      # a block: Triton 3.9's interpreter refuses
                far = smask & (block >= 0) & (block != p - 1)   # a scalar term in a block mask
                old = tl.load(base + src * dk * dv, mask=far, other=0.0)
                tl.store(base + src * dk * dv, old + coef * z, mask=far)
        carry = previous * z
        if GATHER:
            tl.debug_barrier()


@launcher
@triton.jit
def boundary_backward(k_ptr, v_ptr, mix, states, dstates, b_chunk, b_row, b_src, dmix, decoef, dk_ptr, dv_ptr,
                      P, nc, m, T, H, dk, dv, shift, sk, sv, C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr,
                      BK: tl.constexpr, DV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
                      UNIT: tl.constexpr, DECAY: tl.constexpr):
    """DECAY: ``mix`` holds each chunk's last row of M (``decay_sums``' ``last``), the boundary rows' (W wide)."""
    sk, sv = sk * UNIT, sv * UNIT
    p, n = tl.program_id(0), tl.program_id(1)
    c, r = tl.load(b_chunk + p), tl.load(b_row + p)
    row = ((n * nc + c) * C + r).to(tl.int64)
    win, t, ok = _window(c, T, shift, C, WIN, W)
    vcol = tl.arange(0, DV)
    if DECAY:
        mrow = tl.load(mix + (n * nc + c).to(tl.int64) * W + win, mask=ok, other=0.0)
    else:
        mrow = tl.load(mix + row * WIN + win, mask=ok, other=0.0)
    vw = _rows(v_ptr, t, ok, n, T, H, dv, vcol, sv)
    dm = tl.zeros((W,), tl.float32)
    dvw = tl.zeros((W, DV), tl.float32)
    zbase = dstates + (n * P + p).to(tl.int64) * dk * dv
    for k0 in range(0, dk, BK):
        kc = k0 + tl.arange(0, BK)
        smask = (kc < dk)[:, None] & (vcol < dv)[None, :]
        z = tl.load(zbase + kc[:, None] * dv + vcol[None, :], mask=smask, other=0.0).to(vw.dtype)
        kw = _rows(k_ptr, t, ok, n, T, H, dk, kc, sk)
        zv = _dot(vw, tl.trans(z), PREC, UPCAST)                         # (Z_p v_s)^T [W, BK]
        dm += tl.sum(kw.to(tl.float32) * zv, 1)
        _add_rows(dk_ptr, t, ok, n, T, H, dk, kc, mrow[:, None] * zv)
        dvw += _dot((kw.to(tl.float32) * mrow[:, None]).to(vw.dtype), z, PREC, UPCAST)
    _add_rows(dv_ptr, t, ok, n, T, H, dv, vcol, dvw)
    at = dmix + row * WIN + win
    tl.store(at, tl.load(at, mask=win < WIN, other=0.0) + dm, mask=win < WIN)
    for j in range(m):
        src = tl.load(b_src + p * m + j)
        de = 0.0
        for k0 in range(0, dk, BK):
            kc = k0 + tl.arange(0, BK)
            live = (tl.zeros((BK, DV), tl.int32) + src) >= 0    # a block: Triton 3.9's interpreter refuses
            smask = (kc < dk)[:, None] & (vcol < dv)[None, :] & live  # a scalar term in a block mask
            off = kc[:, None] * dv + vcol[None, :]
            z = tl.load(zbase + off, mask=smask, other=0.0)
            h = tl.load(states + (n * P + src).to(tl.int64) * dk * dv + off, mask=smask, other=0.0)
            de += tl.sum(tl.sum(z * h.to(tl.float32), 1), 0)
        tl.store(decoef + row * m + j, tl.load(decoef + row * m + j) + de)


@triton.jit
def _transpose_times(tt, grad_rows, x_rows, width, C: tl.constexpr, BW: tl.constexpr):
    """``dR = T_k^T dX`` in place for the rows ``[C, width]`` at ``grad_rows``, BW columns at a time; returns
    ``dR X^T`` ([C, C]) for the rows X at ``x_rows``."""
    acc = tl.zeros((C, C), tl.float32)
    for c0 in range(0, width, BW):
        col = c0 + tl.arange(0, BW)
        cm = (col < width)[None, :]
        dr = tl.dot(tt, tl.load(grad_rows + col[None, :], mask=cm, other=0.0), input_precision="tf32x3")
        acc += tl.dot(dr, tl.trans(tl.load(x_rows + col[None, :], mask=cm, other=0.0)), input_precision="tf32x3")
        tl.debug_barrier()
        tl.store(grad_rows + col[None, :], dr, mask=cm)
    return acc


@launcher
@triton.jit
def coefficient_grads(da_ptr, db_ptr, a_idx, b_idx, x_col, t_ptr, mix, ecoef, dmix, decoef, dbrr, T, H, nc, WA, WB,
                      shift, m, C: tl.constexpr, WIN: tl.constexpr, JB: tl.constexpr, BW: tl.constexpr):
    """Step 1 backwards, one program per (n, chunk): ``dR = T_k^T [dM | dE]``, ``dB_RR = dR [M | E]^T``; da and db
    gathered where ``readout_triton_kernels.chunk_coefficients`` scattered a and b."""
    n, k = tl.program_id(0), tl.program_id(1)
    rl, first, rows, ok, pos, chunk_rows = _chunk_block(n, k, T, H, nc, shift, C)
    tt = tl.trans(tl.load(t_ptr + (n * nc + k).to(tl.int64) * (C * C) + rl[:, None] * C + rl[None, :]))
    dm_rows, de_rows = dmix + chunk_rows * WIN, decoef + chunk_rows * m
    grad_b = _transpose_times(tt, dm_rows, mix + chunk_rows * WIN, WIN, C, BW)
    grad_b += _transpose_times(tt, de_rows, ecoef + chunk_rows * m, m, C, BW)
    scratch = dbrr + (n * nc + k).to(tl.int64) * (C * C) + rl[:, None] * C + rl[None, :]
    tl.store(scratch, grad_b)
    tl.debug_barrier()
    for j0 in range(0, WA, JB):                # dA[t, j] = dR_M at the window's column a_idx - first + w
        jj = j0 + tl.arange(0, JB)
        live = ok[:, None] & (jj < WA)[None, :]
        idx = tl.load(a_idx + rows[:, None] * WA + jj[None, :], mask=live, other=-1)
        g = tl.load(dm_rows + idx - first + (WIN - C), mask=idx >= 0, other=0.0)
        tl.store(da_ptr + (pos * WA)[:, None] + jj[None, :], g.to(da_ptr.dtype.element_ty), mask=live)
    for j0 in range(0, WB, JB):                # dB: dR_E at its source's slot before the chunk, dB_RR inside
        jj = j0 + tl.arange(0, JB)
        live = ok[:, None] & (jj < WB)[None, :]
        idx = tl.load(b_idx + rows[:, None] * WB + jj[None, :], mask=live, other=-1)
        slot = tl.load(x_col + rows[:, None] * WB + jj[None, :], mask=live, other=-1)
        g = tl.load(de_rows + slot, mask=slot >= 0, other=0.0)
        inside = (idx >= first) & (slot < 0)
        g += tl.load(dbrr + (n * nc + k).to(tl.int64) * (C * C) + rl[:, None] * C + idx - first, mask=inside,
                     other=0.0)
        tl.store(db_ptr + (pos * WB)[:, None] + jj[None, :], g.to(db_ptr.dtype.element_ty), mask=live)


@launcher
@triton.jit
def decay_grads(da_ptr, db_ptr, a_ptr, b_idx, sums, counts, dmix, decoef, T, H, nc, shift, me, C: tl.constexpr,
                CP: tl.constexpr):
    """DECAY's step 1 backwards, one program per (n, chunk), no chunk inverse: ``T_k[r, i] = prod_{i < r' <= r} b_r'``
    from ``decay_sums``' S and counts (``sums``, ``counts``) in registers, ``dR_M = T_k^T dM``, ``dR_E = T_k^T dE``;
    then ``da_i = dR_M[i, i]``, and ``db_i = dR_M[i] . M[i - 1] + dR_E[i] E[i - 1]`` (``dB_RR[i, i - 1]``) inside
    the chunk, ``dR_E[0]`` on its first row (whose b reads the state before it), 0 where b is absent. ``me``: dE's
    row width (``max(m, 1)``)."""
    n, c = tl.program_id(0), tl.program_id(1)
    rl, t, ok = _padded_rows(c, T, shift, C, CP)
    inside, prev = rl < C, (rl < C) & (rl >= 1)
    rows = (n * nc + c).to(tl.int64) * C + rl
    sums_i, counts_i = tl.load(sums + rows, mask=inside, other=0.0), tl.load(counts + rows, mask=inside, other=0)
    sums_p, counts_p = tl.load(sums + rows - 1, mask=prev, other=0.0), tl.load(counts + rows - 1, mask=prev, other=0)
    tk = _decay(1.0, sums_i[:, None], sums_i[None, :], counts_i[:, None], counts_i[None, :],
                (rl[None, :] <= rl[:, None]) & inside[:, None])
    dm = tl.load(dmix + (rows * C)[:, None] + rl[None, :], mask=inside[:, None] & inside[None, :], other=0.0)
    de = tl.load(decoef + rows * me, mask=inside, other=0.0)
    dre = tl.sum(tk * de[:, None], 0)
    m_prev = _decay(_coefficient(a_ptr, n, t, ok, T, H)[None, :], sums_p[:, None], sums_i[None, :], counts_p[:, None],
                    counts_i[None, :], (rl[None, :] < rl[:, None]) & prev[:, None])        # M[i - 1, j]
    drm = tl.dot(tl.trans(tk), dm, input_precision="tf32x3")
    db = tl.where(rl >= 1, tl.sum(drm * m_prev, 1) + dre * _decay(1.0, sums_p, 0.0, counts_p, 0, prev), dre)
    live = _b_present(b_idx, t, ok)
    pos = _position(n, t, T, H)
    tl.store(da_ptr + pos, tl.sum(tk * dm, 0).to(da_ptr.dtype.element_ty), mask=ok)
    tl.store(db_ptr + pos, tl.where(live, db, 0.0).to(db_ptr.dtype.element_ty), mask=ok)
