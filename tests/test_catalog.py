"""Catalog: each entry against an independent native implementation written here (the architecture's own
recurrence or closed form, never the framework), at lengths 1, 2, 63, 1000, float64 and float32."""
import numpy as np
import pytest
import torch

import glrtheory.catalog as cat
from glrtheory import GLRError, Pattern
from helpers import rel_err

LENGTHS = [1, 2, 63, 1000]
TOL = {np.float64: 1e-10, np.float32: 1e-5}


# -- independent native references (numpy, float64) ----------------------------------------------------
def ref_attention(q, k, v, scale, window=None):
    """Closed form: masked softmax(scale q k^T) v, grouped queries as in fla's naive_parallel_attn."""
    B, T, HQ, K = q.shape
    G = HQ // k.shape[2]
    k, v = np.repeat(k, G, axis=2), np.repeat(v, G, axis=2)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) * scale
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    mask = j > i
    if window is not None:
        mask |= i - j >= window
    scores = np.where(mask, -np.inf, scores)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", w, v)


def ref_decayed_linear(q, k, v, decay, scale, S0=None):
    """Recurrent form (fla naive_recurrent_*): S = decay * S + k v^T, o = scale q^T S; decay [B,T,H(,K)]."""
    B, T, H, K = q.shape
    S = np.zeros((B, H, K, v.shape[-1])) if S0 is None else S0.copy()
    o = np.empty((B, T, H, v.shape[-1]))
    for t in range(T):
        d = decay[:, t]
        d = d[..., None, None] if d.ndim == 2 else d[..., None]
        S = S * d + k[:, t, :, :, None] * v[:, t, :, None, :]
        o[:, t] = scale * np.einsum("bhk,bhkv->bhv", q[:, t], S)
    return o, S


def ref_retention_parallel(q, k, v, gamma, scale, S0):
    """Parallel (closed) form of retention: o = (scale q k^T * gamma^(t-s)) v + scale gamma^(t+1) q S0."""
    T = q.shape[1]
    t = np.arange(T)
    lag = t[:, None] - t[None, :]
    D = np.where(lag >= 0, gamma[:, None, None] ** np.maximum(lag, 0), 0.0)   # [H, T, T]
    o = np.einsum("bthk,bshk,hts,bshv->bthv", q, k, D, v) * scale
    o += scale * np.einsum("bthk,ht,bhkv->bthv", q, gamma[:, None] ** (t + 1), S0)
    S = np.einsum("hs,bshk,bshv->bhkv", gamma[:, None] ** (T - 1 - t), k, v) + gamma[:, None, None] ** T * S0
    return o, S


def ref_mamba2_ssd(x, dt, A, B, C, D, S0):
    """SSD closed form (ssd_minimal): y = (exp(segsum(dt A)) * C B^T) (dt x) + decay C S0 + D x."""
    b, l, h, p = x.shape
    rep = h // B.shape[2]
    B, C = np.repeat(B, rep, axis=2), np.repeat(C, rep, axis=2)
    cum = np.cumsum(dt * A, axis=1)                               # [b, l, h]
    seg = cum[:, :, None, :] - cum[:, None, :, :]                 # [b, t, s, h]
    L = np.exp(np.where(np.tril(np.ones((l, l), bool))[None, :, :, None], seg, -np.inf))
    y = np.einsum("btsh,bthn,bshn,bsh,bshp->bthp", L, C, B, dt, x)
    y += np.einsum("bth,bthn,bhpn->bthp", np.exp(cum), C, S0)
    y += D[None, None, :, None] * x
    final = np.einsum("bsh,bsh,bshn,bshp->bhpn", np.exp(cum[:, -1:] - cum), dt, B, x)
    final += np.exp(cum[:, -1])[:, :, None, None] * S0
    return y, final


def ref_selective_scan(u, delta, A, B, C, D, z):
    """mamba_ssm selective_scan_ref, re-derived: x = exp(delta A) x + delta B u; y = C.x + D u; * silu(z)."""
    b, d, l = u.shape
    x = np.zeros((b, d, A.shape[1]))
    ys = []
    for i in range(l):
        x = np.exp(delta[:, :, i, None] * A) * x + delta[:, :, i, None] * B[:, None, :, i] * u[:, :, i, None]
        ys.append(np.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = np.stack(ys, axis=2) + D[:, None] * u
    return y * z / (1 + np.exp(-z)), x


def ref_fft_conv(u, kernel):
    """S4/Hyena convolution mode: FFT of size 2T, y = irfft(rfft(u) rfft(k))[:T]."""
    T = u.shape[1]
    kk = np.zeros((kernel.shape[0], T))
    L = min(T, kernel.shape[1])
    kk[:, :L] = kernel[:, :L]
    y = np.fft.irfft(np.fft.rfft(u, 2 * T, axis=1) * np.fft.rfft(kk, 2 * T, axis=1).T[None], 2 * T, axis=1)
    return y[:, :T]


def ref_chacal(attn, v, gamma):
    """Dense resolvent: Y = (1 - gamma) A (I - gamma A)^{-1} V per batch and head."""
    B, H, T, _ = attn.shape
    y = np.empty((B, T, H, v.shape[-1]))
    for b in range(B):
        for h in range(H):
            A = attn[b, h]
            y[b, :, h] = (1 - gamma[h]) * A @ np.linalg.solve(np.eye(T) - gamma[h] * A, v[b, :, h])
    return y


def ref_log_linear(q, k, v, g, lam, scale):
    """Closed form: o_t = scale sum_s exp(G_t - G_s) lam_t^{level(t,s)} (q_t.k_s) v_s, with the Fenwick level
    of fla's construct_level_mask: level l >= 1 iff t mod 2^l >= 2^(l-1) and s lies in
    [t - t mod 2^(l-1) - 2^(l-1), t - t mod 2^(l-1))."""
    B, T, G, K = q.shape
    H = v.shape[2]
    q, k = np.repeat(q, H // G, axis=2), np.repeat(k, H // G, axis=2)
    Gc = np.cumsum(g, axis=1)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    Hm = np.zeros((B, H, T, T))
    Hm += np.where(i == j, 1.0, 0.0) * lam[..., 0].transpose(0, 2, 1)[..., None]
    for l in range(1, int(np.ceil(np.log2(T))) + 1 if T > 1 else 1):
        half = 1 << (l - 1)
        lo = i - i % half - half
        mask = (i % (1 << l) >= half) & (j >= lo) & (j < i - i % half)
        Hm += mask * lam[..., l].transpose(0, 2, 1)[..., None]
    decay = np.exp(np.where(i >= j, Gc.transpose(0, 2, 1)[..., :, None] - Gc.transpose(0, 2, 1)[..., None, :], -np.inf))
    M = decay * Hm * np.einsum("bthk,bshk->bhts", q, k)
    return scale * np.einsum("bhts,bshv->bthv", M, v)


def ref_multi_lag(q, k, v, g, lags, beta, scale):
    """Direct recurrence S_t = beta_t k_t v_t^T + sum_j exp(g_t[j]) S_{t - lags[j]} (lags <= t)."""
    B, T, H, K = q.shape
    S = np.zeros((T, B, H, K, v.shape[-1]))
    o = np.empty((B, T, H, v.shape[-1]))
    for t in range(T):
        S[t] = beta[:, t, :, None, None] * k[:, t, :, :, None] * v[:, t, :, None, :]
        for j, l in enumerate(lags):
            if l <= t:
                S[t] += np.exp(g[:, t, :, j])[..., None, None] * S[t - l]
        o[:, t] = scale * np.einsum("bhk,bhkv->bhv", q[:, t], S[t])
    return o


def power2_lags(T):
    return [2**i for i in range(T.bit_length() + 1) if 2**i <= T - 1]


def quadratic_lags(T):
    return [i * i + 1 for i in range(T + 1) if i * i + 1 <= T - 1]


# -- random native inputs -----------------------------------------------------------------------------
def sizes(T):
    return (1, 2) if T == 1000 else (2, 2)   # (batch, heads): small, so the file stays fast


def inputs(name, T, rng):
    """(args, kwargs) for the catalog function and a callable giving the float64 reference output(s)."""
    B, H = sizes(T)
    K, V = 3, 2
    n = rng.standard_normal
    if name in ("softmax_attention", "sliding_window_attention"):
        q, k, v = n((B, T, 2 * H, K)), n((B, T, H, K)), n((B, T, H, V))   # grouped queries
        scale = 0.7
        if name == "softmax_attention":
            return (q, k, v), {"scale": scale}, lambda q, k, v, scale: ref_attention(q, k, v, scale)
        w = int(rng.integers(1, 9))
        return (q, k, v, w), {}, lambda q, k, v, w: ref_attention(q, k, v, K ** -0.5, w)
    q, k, v = n((B, T, H, K)), n((B, T, H, K)), n((B, T, H, V))
    S0 = n((B, H, K, V))
    if name == "linear_attention":
        return ((q, k, v), {"initial_state": S0, "output_final_state": True},
                lambda q, k, v, initial_state, output_final_state:
                ref_decayed_linear(q, k, v, np.ones((B, T, H)), K ** -0.5, initial_state))
    if name == "retention":
        gamma = rng.uniform(0.5, 1.0, H)
        return ((q, k, v, gamma), {"scale": 0.3, "initial_state": S0, "output_final_state": True},
                lambda q, k, v, gamma, scale, initial_state, output_final_state:
                ref_retention_parallel(q, k, v, gamma, scale, initial_state))
    if name == "simple_gla":
        g = np.log(rng.uniform(0.8, 1.0, (B, T, H)))
        return ((q, k, v, g), {"initial_state": S0, "output_final_state": True},
                lambda q, k, v, g, initial_state, output_final_state:
                ref_decayed_linear(q, k, v, np.exp(g), K ** -0.5, initial_state))
    if name == "gla":
        g = np.log(rng.uniform(0.8, 1.0, (B, T, H, K)))
        return ((q, k, v, g), {"initial_state": S0, "output_final_state": True},
                lambda q, k, v, g, initial_state, output_final_state:
                ref_decayed_linear(q, k, v, np.exp(g), K ** -0.5, initial_state))
    if name == "mamba2":
        P, N, Gr = 2, 3, 1
        x, dt = n((B, T, H, P)), np.logaddexp(0, n((B, T, H)) - 1)
        A = -rng.uniform(0.5, 2.0, H)
        Bm, Cm, D, S = n((B, T, Gr, N)), n((B, T, Gr, N)), n(H), n((B, H, P, N))
        return ((x, dt, A, Bm, Cm), {"D": D, "initial_states": S, "return_final_states": True},
                lambda x, dt, A, Bm, Cm, D, initial_states, return_final_states:
                ref_mamba2_ssd(x, dt, A, Bm, Cm, D, initial_states))
    if name == "diagonal_ssm":
        d, N = 3, 2
        u, delta = n((B, d, T)), np.logaddexp(0, n((B, d, T)) - 1)
        A = -rng.uniform(0.5, 2.0, (d, N))
        Bm, Cm, D, z = n((B, N, T)), n((B, N, T)), n(d), n((B, d, T))
        return ((u, delta, A, Bm, Cm), {"D": D, "z": z, "return_last_state": True},
                lambda u, delta, A, Bm, Cm, D, z, return_last_state: ref_selective_scan(u, delta, A, Bm, Cm, D, z))
    if name == "long_conv":
        d = 3
        L = int(rng.integers(1, T + 5))
        return ((n((B, T, d)), n((d, L)) / np.sqrt(L)), {}, ref_fft_conv)
    if name == "chacal":
        logits = n((B, H, T, T))
        logits = np.where(np.tril(np.ones((T, T), bool)), logits, -np.inf)
        attn = np.exp(logits - logits.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        gamma = rng.uniform(0.05, 0.95, H)
        return (attn, v, gamma), {}, ref_chacal
    if name == "log_linear_attention":
        Gq = 1
        qg, kg = n((B, T, Gq, K)), n((B, T, Gq, K))
        g = np.log(rng.uniform(0.8, 1.0, (B, T, H)))
        lam = rng.uniform(0.2, 1.5, (B, T, H, cat.levels(T) + 1))
        return ((qg, kg, v, g, lam), {}, lambda q, k, v, g, lam: ref_log_linear(q, k, v, g, lam, K ** -0.5))
    if name == "multi_lag":
        spec = "power2" if rng.random() < 0.5 else "quadratic"
        lags = power2_lags(T) if spec == "power2" else quadratic_lags(T)
        g = np.log(rng.uniform(0.05, 1.0, (B, T, H, len(lags) + 2)) / (len(lags) + 1))
        beta = rng.uniform(0.5, 1.5, (B, T, H))
        return ((q, k, v, g), {"lags": spec, "beta": beta},
                lambda q, k, v, g, lags, beta: ref_multi_lag(q, k, v, g, power2_lags(T) if lags == "power2"
                                                             else quadratic_lags(T), beta, K ** -0.5))
    raise KeyError(name)


NAMES = [e.name for e in cat.ENTRIES]


def _cast(x, dtype):
    return x.astype(dtype) if isinstance(x, np.ndarray) else x


def _outputs(r):
    return r if isinstance(r, tuple) else (r,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("name", NAMES)
def test_entry_matches_native(name, T, dtype, rng):
    args, kwargs, ref = inputs(name, T, rng)
    args = tuple(_cast(a, dtype) for a in args)
    kwargs = {key: _cast(val, dtype) for key, val in kwargs.items()}
    out = _outputs(getattr(cat, name)(*args, **kwargs))
    up = lambda x: x.astype(np.float64) if isinstance(x, np.ndarray) else x  # noqa: E731
    expected = _outputs(ref(*map(up, args), **{key: up(val) for key, val in kwargs.items()}))
    assert len(out) == len(expected)
    for o, e in zip(out, expected):
        assert o.dtype == dtype
        assert np.isfinite(e).all() and np.linalg.norm(e) > 0
        assert rel_err(o, e) <= TOL[dtype], (name, T, dtype)
