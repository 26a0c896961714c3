"""Triton kernels of the aligned matrix-state readout (``readout_aligned``'s steps 3 and 2 + 4, fused).

Inputs as ``readout_triton`` lays them out, per (batch x head) ``n``: ``q [N, nc C, d_k]`` (row ``t + s``),
``k [N, nc C + w, d_k]``, ``v [N, nc C + w, d_v]`` (row ``t + s + w``: chunk c's window is rows
``[c C, c C + C + w)``), ``me [N, nc, C, C + w + m]`` float32 (``[M | E]`` of every chunk), boundary states
``[N, |P|, d_k, d_v]`` float32. Products take q, k, v's dtype (operands rounded to it), sums float32.

* ``boundary_walk``: one program per (n, d_k block, d_v block) walks the boundary positions p in order,
  ``H_p = sum_s M[p, s] k_s v_s^T + sum_j E[p, j] H_{X_j}``. What step p + 1 reads besides ``H_p`` (its
  window, its M row, its sources written at steps <= p - 1) is loaded while step p computes; ``H_p`` itself
  stays in registers, so each step waits only on its own products.
* ``chunk_output``: one program per (chunk, n, d_v block) (its C rows padded to CP, a power of two >= 16), ``o = ((Q K^T) * M) V + sum_j (E_j * Q) H_{X_j}``.
"""
import triton
import triton.language as tl


@triton.jit
def _dot(x, y, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``x @ y`` with float32 accumulation; UPCAST (the interpreter, whose half-precision dot is wrong in
    Triton 3.6) multiplies the same rounded operands in float32."""
    if UPCAST:
        return tl.dot(x.to(tl.float32), y.to(tl.float32), input_precision="ieee")
    return tl.dot(x, y, input_precision=PREC)


@triton.jit
def _boundary_inputs(p, P, n, nc, m, ks, vs, me, states, b_chunk, b_row, b_src, Lk, dk, dv, WME,
                     kcol, vcol, C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr,
                     BV: tl.constexpr):
    """What step p reads besides ``H_{p-1}``: ``(k window [W, BK], v window [W, BV], M row [W], sum of
    E[p, j] H_{X_j} over sources other than p - 1 [BK, BV], the coefficient of H_{p-1})``; zeros for p >= P."""
    live = p < P
    c = tl.load(b_chunk + p, mask=live, other=0)
    r = tl.load(b_row + p, mask=live, other=0)
    win = tl.arange(0, W)
    wm = (win < WIN) & live
    rows = (n * Lk + c * C + win).to(tl.int64)
    kw = tl.load(ks + rows[:, None] * dk + kcol[None, :], mask=wm[:, None] & (kcol < dk)[None, :], other=0.0)
    vw = tl.load(vs + rows[:, None] * dv + vcol[None, :], mask=wm[:, None] & (vcol < dv)[None, :], other=0.0)
    row = me + ((n * nc + c) * C + r).to(tl.int64) * WME
    mrow = tl.load(row + win, mask=wm, other=0.0)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    gathered = tl.zeros((BK, BV), tl.float32)
    previous = 0.0
    for j in range(m):
        src = tl.load(b_src + p * m + j, mask=live, other=-1)
        coef = tl.load(row + WIN + j, mask=live & (src >= 0), other=0.0)
        previous += tl.where(src == p - 1, coef, 0.0)
        far = (src >= 0) & (src != p - 1)
        st = tl.load(states + ((n * P + src).to(tl.int64) * dk + kcol)[:, None] * dv + vcol[None, :],
                     mask=smask & far, other=0.0)
        gathered += coef * st
    return kw, vw, mrow, gathered, previous


@triton.jit
def boundary_walk(ks, vs, me, states, b_chunk, b_row, b_src, P, nc, m, Lk, dk, dv, WME, n_vb,
                  C: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                  PREC: tl.constexpr, UPCAST: tl.constexpr):
    n, blk = tl.program_id(0), tl.program_id(1)
    kcol = (blk // n_vb) * BK + tl.arange(0, BK)
    vcol = (blk % n_vb) * BV + tl.arange(0, BV)
    smask = (kcol < dk)[:, None] & (vcol < dv)[None, :]
    out = states + ((n * P).to(tl.int64) * dk + kcol)[:, None] * dv + vcol[None, :]
    kw, vw, mrow, gathered, previous = _boundary_inputs(0, P, n, nc, m, ks, vs, me, states, b_chunk, b_row,
                                                        b_src, Lk, dk, dv, WME, kcol, vcol, C, WIN, W, BK, BV)
    h = tl.zeros((BK, BV), tl.float32)
    for p in range(P):
        # step p + 1's inputs: its sources other than p were written at steps <= p - 1 (barrier passed)
        nk, nv, nm, ng, npv = _boundary_inputs(p + 1, P, n, nc, m, ks, vs, me, states, b_chunk, b_row, b_src,
                                               Lk, dk, dv, WME, kcol, vcol, C, WIN, W, BK, BV)
        weighted = (kw.to(tl.float32) * mrow[:, None]).to(kw.dtype)
        h = _dot(tl.trans(weighted), vw, PREC, UPCAST) + gathered + previous * h
        tl.store(out + p * dk * dv, h, mask=smask)
        tl.debug_barrier()
        kw, vw, mrow, gathered, previous = nk, nv, nm, ng, npv


@triton.jit
def chunk_output(qs, ks, vs, me, states, ext, ext_count, o_ptr, N, P, nc, m, Lq, Lk, dk, dv, WME,
                 C: tl.constexpr, CP: tl.constexpr, WIN: tl.constexpr, W: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                 PREC: tl.constexpr, UPCAST: tl.constexpr):
    c, n, vb = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rl = tl.arange(0, CP)
    rm = rl < C
    win = tl.arange(0, W)
    vcol = vb * BV + tl.arange(0, BV)
    vmask = vcol < dv
    qrow = (n * Lq + c * C + rl).to(tl.int64)
    krow = (n * Lk + c * C + win).to(tl.int64)
    wm = win < WIN
    block = me + ((n * nc + c) * C + rl).to(tl.int64) * WME
    scores = tl.zeros((CP, W), tl.float32)
    for k0 in range(0, dk, BK):
        kc = k0 + tl.arange(0, BK)
        km = kc < dk
        q = tl.load(qs + qrow[:, None] * dk + kc[None, :], mask=rm[:, None] & km[None, :], other=0.0)
        k = tl.load(ks + krow[:, None] * dk + kc[None, :], mask=wm[:, None] & km[None, :], other=0.0)
        scores += _dot(q, tl.trans(k), PREC, UPCAST)
    mix = tl.load(block[:, None] + win[None, :], mask=rm[:, None] & wm[None, :], other=0.0)
    v = tl.load(vs + krow[:, None] * dv + vcol[None, :], mask=wm[:, None] & vmask[None, :], other=0.0)
    o = _dot((scores * mix).to(v.dtype), v, PREC, UPCAST)
    count = tl.load(ext_count + c)
    for j in range(count):
        src = tl.load(ext + c * m + j)
        e = tl.load(block + WIN + j, mask=rm, other=0.0)
        for k0 in range(0, dk, BK):
            kc = k0 + tl.arange(0, BK)
            km = kc < dk
            q = tl.load(qs + qrow[:, None] * dk + kc[None, :], mask=rm[:, None] & km[None, :], other=0.0)
            st = tl.load(states + ((n * P + src).to(tl.int64) * dk + kc)[:, None] * dv + vcol[None, :],
                         mask=km[:, None] & vmask[None, :], other=0.0)
            o += _dot((q.to(tl.float32) * e[:, None]).to(q.dtype), st.to(q.dtype), PREC, UPCAST)
    tl.store(o_ptr + ((n * nc + c) * C + rl).to(tl.int64)[:, None] * dv + vcol[None, :], o, mask=rm[:, None] & vmask[None, :])
