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


def ref_mamba2_ssd(x, dt, A, B, C, D, z, dt_bias, S0):
    """SSD closed form (ssd_minimal) with dt = softplus(dt + dt_bias):
    y = ((exp(segsum(dt A)) * C B^T) (dt x) + decay C S0 + D x) * silu(z)."""
    dt = np.log1p(np.exp(dt + dt_bias))
    b, l, h, p = x.shape
    rep = h // B.shape[2]
    B, C = np.repeat(B, rep, axis=2), np.repeat(C, rep, axis=2)
    cum = np.cumsum(dt * A, axis=1)                               # [b, l, h]
    seg = cum[:, :, None, :] - cum[:, None, :, :]                 # [b, t, s, h]
    L = np.exp(np.where(np.tril(np.ones((l, l), bool))[None, :, :, None], seg, -np.inf))
    y = np.einsum("btsh,bthn,bshn,bsh,bshp->bthp", L, C, B, dt, x)
    y += np.einsum("bth,bthn,bhpn->bthp", np.exp(cum), C, S0)
    y += D[None, None, :, None] * x
    y *= z / (1 + np.exp(-z))
    final = np.einsum("bsh,bsh,bshn,bshp->bhpn", np.exp(cum[:, -1:] - cum), dt, B, x)
    final += np.exp(cum[:, -1])[:, :, None, None] * S0
    return y, final


def ref_selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """mamba_ssm selective_scan_ref, re-derived: delta = softplus(delta + bias); x = exp(delta A) x + delta B u;
    y = C.x + D u; * silu(z). B, C: [d, n] (time-invariant), [b, n, l] or [b, g, n, l] (grouped channels)."""
    b, d, l = u.shape
    delta = np.log1p(np.exp(delta + delta_bias[:, None]))

    def full(M):   # -> [b, d, n, l]
        if M.ndim == 2:
            return np.broadcast_to(M[None, :, :, None], (b,) + M.shape + (l,))
        if M.ndim == 3:
            return np.broadcast_to(M[:, None], (b, d) + M.shape[1:])
        return np.stack([M[:, c // (d // M.shape[1])] for c in range(d)], axis=1)

    B, C = full(B), full(C)
    x = np.zeros((b, d, A.shape[1]))
    ys = []
    for i in range(l):
        x = np.exp(delta[:, :, i, None] * A) * x + delta[:, :, i, None] * B[..., i] * u[:, :, i, None]
        ys.append(np.einsum("bdn,bdn->bd", x, C[..., i]))
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
        x, dt, z, bias = n((B, T, H, P)), n((B, T, H)), n((B, T, H, P)), n(H) - 1
        A = -rng.uniform(0.5, 2.0, H)
        Bm, Cm, D, S = n((B, T, Gr, N)), n((B, T, Gr, N)), n(H), n((B, H, P, N))
        return ((x, dt, A, Bm, Cm), {"D": D, "z": z, "dt_bias": bias, "dt_softplus": True, "initial_states": S,
                                     "return_final_states": True},
                lambda x, dt, A, Bm, Cm, D, z, dt_bias, dt_softplus, initial_states, return_final_states:
                ref_mamba2_ssd(x, dt, A, Bm, Cm, D, z, dt_bias, initial_states))
    if name == "diagonal_ssm":
        d, N = 4, 2
        u, delta = n((B, d, T)), n((B, d, T))
        A = -rng.uniform(0.5, 2.0, (d, N))
        form = {1: (d, N), 2: (B, N, T), 63: (B, 2, N, T), 1000: (d, N)}[T]   # S4D, selective, grouped
        Bm, Cm, D, z, bias = n(form), n(form), n(d), n((B, d, T)), n(d) - 1
        return ((u, delta, A, Bm, Cm), {"D": D, "z": z, "delta_bias": bias, "delta_softplus": True,
                                        "return_last_state": True},
                lambda u, delta, A, Bm, Cm, D, z, delta_bias, delta_softplus, return_last_state:
                ref_selective_scan(u, delta, A, Bm, Cm, D, z, delta_bias))
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


# -- kinds and dtypes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_torch_in_torch_out(name, rng):
    """torch tensors in -> torch tensors of the primary input's dtype out, equal to the numpy result."""
    args, kwargs, _ = inputs(name, 63, rng)
    want = _outputs(getattr(cat, name)(*args, **kwargs))
    conv = lambda x: torch.from_numpy(x.astype(np.float32)) if isinstance(x, np.ndarray) else x  # noqa: E731
    got = _outputs(getattr(cat, name)(*map(conv, args), **{key: conv(val) for key, val in kwargs.items()}))
    for g, w in zip(got, want):
        assert isinstance(g, torch.Tensor) and g.dtype == torch.float32
        assert rel_err(g.numpy(), w) <= 1e-5


# -- the framework computes the result ------------------------------------------------------------------
SOLVE_MODULES = ["attention", "chacal", "long_conv", "multi_lag", "_recurrent"]


def _patch_solve(monkeypatch, factor):
    import importlib

    from glrtheory import recurrence
    seen = []

    def spy(p, a, b, u, q=None, **kw):
        seen.append(p.spec)
        return factor * recurrence.solve(p, a, b, u, q, **kw)

    for m in SOLVE_MODULES:
        monkeypatch.setattr(importlib.import_module(f"glrtheory.catalog.{m}"), "solve", spy)
    return seen


@pytest.mark.parametrize("name", NAMES)
def test_result_comes_from_solve_on_the_recorded_pattern(name, rng, monkeypatch):
    entry = next(e for e in cat.ENTRIES if e.name == name)
    args, kwargs, _ = inputs(name, 63, rng)
    if name == "sliding_window_attention":
        args = args[:3] + (64,)
    if name == "long_conv":
        args = (args[0], rng.standard_normal((args[1].shape[0], 64)))
    base = _outputs(getattr(cat, name)(*args, **kwargs))
    seen = _patch_solve(monkeypatch, 2.0)
    doubled = _outputs(getattr(cat, name)(*args, **kwargs))
    examples = {x.strip() for x in entry.example.split("|")}
    assert seen and set(seen) <= examples, (seen, examples)
    if name not in ("mamba2", "diagonal_ssm"):   # these add the D skip term outside the recurrence
        assert rel_err(doubled[0], 2 * base[0]) <= 1e-12
    else:
        assert rel_err(doubled[0], base[0]) > 1e-3


# -- the records ----------------------------------------------------------------------------------------
def test_entries_record_pattern_state_and_data_dependence():
    assert NAMES == ["softmax_attention", "sliding_window_attention", "linear_attention", "retention",
                     "simple_gla", "gla", "mamba2", "diagonal_ssm", "long_conv", "chacal",
                     "log_linear_attention", "multi_lag"]
    for e in cat.ENTRIES:
        assert getattr(cat, e.name) is e.function and e.function.__doc__
        assert e.data_in in ("A", "B", "A and B", "neither")
        assert e.state.startswith("[") and e.note
        for x in e.example.split("|"):
            Pattern.from_spec(x.strip())
    names = " ".join(x.name for x in cat.INEXPRESSIBLE)
    assert "DeltaNet" in names and all(x.reason for x in cat.INEXPRESSIBLE)


def test_log_linear_needs_more_than_one_fenwick_recurrence(rng):
    """The INEXPRESSIBLE claim: with query-dependent level scales, the pure-recurrence factor of the
    log-linear mixing matrix (unique when A is diagonal) has B entries outside the fenwick support;
    with all scales equal to 1 it collapses to the first-order (ssm) recurrence."""
    from glrtheory import factor
    from glrtheory.recurrence import dense_coefficients
    n = 16
    G = np.cumsum(np.log(rng.uniform(0.5, 1.0, n)))
    level = np.array([[(t ^ s).bit_length() for s in range(n)] for t in range(n)])
    decay = np.tril(np.exp(G[:, None] - G[None, :]))
    _, fb = Pattern.from_spec("fenwick").masks(n)
    _, ssm_b = Pattern.from_spec("ssm").masks(n)
    for lam, support in ((rng.uniform(0.5, 1.5, (n, cat.levels(n))), fb), (np.ones((n, cat.levels(n))), ssm_b)):
        f = factor(decay * np.take_along_axis(lam, level, axis=1))
        _, B = dense_coefficients(*f.pattern.tables(n), f.a, f.b)
        outside = np.abs(B[~support]).max()
        assert (outside > 1e-3) if support is fb else (outside < 1e-12)


# -- bad input ------------------------------------------------------------------------------------------
def _base(rng, B=1, T=5, H=2, K=3, V=2):
    n = rng.standard_normal
    return n((B, T, H, K)), n((B, T, H, K)), n((B, T, H, V))


def _nan(x, idx=0):
    x = x.copy()
    x.flat[idx] = np.nan
    return x


def bad_cases(rng):
    q, k, v = _base(rng)
    g3, g4 = -rng.uniform(0.1, 1, (1, 5, 2)), -rng.uniform(0.1, 1, (1, 5, 2, 3))
    attn = np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None] * np.ones((1, 2, 1, 1))
    x, dt, A, Bm = rng.standard_normal((1, 5, 2, 2)), np.ones((1, 5, 2)), -np.ones(2), rng.standard_normal((1, 5, 1, 3))
    u3, d3, A2, B3 = (rng.standard_normal((1, 3, 5)), np.ones((1, 3, 5)), -np.ones((3, 2)),
                      rng.standard_normal((1, 2, 5)))
    lam = np.ones((1, 5, 2, cat.levels(5)))
    return [
        ("shape", lambda: cat.softmax_attention(q, k[:, :4], v), "k must have shape"),
        ("shape", lambda: cat.softmax_attention(q, k, v[..., :1, :]), "v must have shape"),
        ("shape", lambda: cat.softmax_attention(np.concatenate([q, q[:, :, :1]], 2), k, v), "multiple"),
        ("shape", lambda: cat.linear_attention(q, k, v, initial_state=np.zeros((1, 2, 2, 2))), "initial_state"),
        ("shape", lambda: cat.simple_gla(q, k, v, g4), "g must have"),
        ("shape", lambda: cat.gla(q, k, v, g3), "g must have"),
        ("shape", lambda: cat.mamba2(x, dt, A, Bm, Bm[:, :4]), "C must have shape"),
        ("shape", lambda: cat.mamba2(x, dt, A, np.repeat(Bm, 3, 2), np.repeat(Bm, 3, 2)), "multiple"),
        ("shape", lambda: cat.diagonal_ssm(u3, d3, A2, B3[:, :, :4], B3), "B must have shape"),
        ("shape", lambda: cat.long_conv(rng.standard_normal((1, 5, 3)), np.ones((2, 4))), "kernel must have"),
        ("shape", lambda: cat.long_conv(rng.standard_normal((1, 5, 3)), np.ones((3, 0))), "kernel must have"),
        ("shape", lambda: cat.chacal(attn, v[:, :4], 0.5), "v must have shape"),
        ("shape", lambda: cat.log_linear_attention(q, k, v, g3, lam[..., :2]), "level_scales"),
        ("shape", lambda: cat.multi_lag(q, k, v, g4[..., :1]), "g must have shape"),
        ("shape", lambda: cat.multi_lag(q, k, v, g4, lags="fenwick"), "translation-invariant"),
        ("shape", lambda: cat.softmax_attention(q[:, :0], k[:, :0], v[:, :0]), "positive"),
        ("window", lambda: cat.sliding_window_attention(q, k, v, 0), "window must be >= 1"),
        ("window", lambda: cat.sliding_window_attention(q, k, v, -3), "window must be >= 1"),
        ("window", lambda: cat.sliding_window_attention(q, k, v, 2.5), "window must be an integer"),
        ("gamma", lambda: cat.retention(q, k, v, 0.0), r"gamma must lie in \(0, 1\]"),
        ("gamma", lambda: cat.retention(q, k, v, 1.5), r"gamma must lie in \(0, 1\]"),
        ("gamma", lambda: cat.retention(q, k, v, np.array([0.5, -0.1])), r"gamma must lie in \(0, 1\]"),
        ("gamma", lambda: cat.retention(q, k, v, np.array([0.5, 0.5, 0.5])), "one per head"),
        ("gamma", lambda: cat.chacal(attn, v, 1.5), r"gamma must lie in \(0, 1\]"),
        ("gamma", lambda: cat.chacal(attn, v, 0.0), r"gamma must lie in \(0, 1\]"),
        ("param", lambda: cat.chacal(np.swapaxes(attn, -1, -2), v, 0.5), "causal"),
        ("param", lambda: cat.chacal(attn * 1.1, v, 0.5), "rows must sum to 1"),
        ("param", lambda: cat.mamba2(x, dt, -A, Bm, Bm), "A must be <= 0"),
        ("param", lambda: cat.mamba2(x, -dt, A, Bm, Bm), "dt must be >= 0"),
        ("param", lambda: cat.diagonal_ssm(u3, -d3, A2, B3, B3), "delta must be >= 0"),
        ("nan", lambda: cat.softmax_attention(_nan(q), k, v), "q holds a non-finite"),
        ("nan", lambda: cat.softmax_attention(q, k, v, scale=float("nan")), "scale"),
        ("nan", lambda: cat.retention(q, k, v, float("nan")), "gamma holds a non-finite"),
        ("nan", lambda: cat.simple_gla(q, k, v, _nan(g3, 3)), "g holds a non-finite"),
        ("nan", lambda: cat.gla(q, k, _nan(v, 5), g4), "v holds a non-finite"),
        ("nan", lambda: cat.mamba2(x, _nan(dt), A, Bm, Bm), "dt holds a non-finite"),
        ("nan", lambda: cat.diagonal_ssm(u3, d3, _nan(A2), B3, B3), "A holds a non-finite"),
        ("nan", lambda: cat.long_conv(rng.standard_normal((1, 5, 3)), _nan(np.ones((3, 2)))), "kernel holds"),
        ("nan", lambda: cat.chacal(attn, v, float("nan")), "gamma holds a non-finite"),
        ("nan", lambda: cat.log_linear_attention(q, k, v, g3, _nan(lam, 7)), "level_scales holds"),
        ("nan", lambda: cat.multi_lag(q, k, v, g4, beta=_nan(np.ones((1, 5, 2)))), "beta holds"),
        ("nan", lambda: cat.retention(q, k, v, 0.9, initial_state=_nan(np.zeros((1, 2, 3, 2)))), "initial_state"),
    ]


BAD = bad_cases(np.random.default_rng(0))


@pytest.mark.parametrize("kind, call, msg", BAD, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD)])
def test_bad_input_raises_glrerror(kind, call, msg):
    with pytest.raises(GLRError, match=msg):
        call()


def test_fla_defaults_and_return_types(rng):
    """retention without gamma uses fla's chunk_retention decays 1 - 2^(-5-h); scale defaults to 1/sqrt(K);
    (o, None) without output_final_state, as fla returns."""
    q, k, v = _base(rng, B=2, T=40, H=3, K=4, V=2)
    o, final = cat.retention(q, k, v)
    assert final is None
    gamma = 1 - 2.0 ** (-5.0 - np.arange(3))
    assert rel_err(o, ref_retention_parallel(q, k, v, gamma, 4 ** -0.5, np.zeros((2, 3, 4, 2)))[0]) <= 1e-10
    for fn, g in ((cat.linear_attention, ()), (cat.simple_gla, (-rng.uniform(0, 1, (2, 40, 3)),)),
                  (cat.gla, (-rng.uniform(0, 1, (2, 40, 3, 4)),))):
        o, final = fn(q, k, v, *g)
        assert final is None and o.shape == v.shape
        o2, _ = fn(q, k, v, *g, scale=4 ** -0.5)
        assert np.array_equal(o, o2)
    y = cat.mamba2(rng.standard_normal((1, 7, 2, 3)), np.ones((1, 7, 2)), -np.ones(2),
                   rng.standard_normal((1, 7, 1, 2)), rng.standard_normal((1, 7, 1, 2)))
    assert isinstance(y, np.ndarray) and y.shape == (1, 7, 2, 3)


# which arguments are parameters (fixed per layer), not token data: kept equal between the two runs
PARAMETERS = {"sliding_window_attention": [3], "retention": [3, "scale"], "mamba2": [2, "D", "dt_bias"],
              "diagonal_ssm": [2, "D", "delta_bias"], "long_conv": [1], "chacal": [2], "multi_lag": ["lags"],
              "softmax_attention": ["scale"]}


@pytest.mark.parametrize("name", NAMES)
def test_recorded_data_dependence_holds(name, monkeypatch):
    """Entry.data_in: the table-aligned a (resp. b) handed to solve changes with the token data iff A
    (resp. B) is recorded as data dependent; parameters stay fixed between the two runs."""
    import importlib

    from glrtheory import recurrence
    entry = next(e for e in cat.ENTRIES if e.name == name)
    seen = []

    def spy(p, a, b, u, q=None, **kw):
        seen.append((np.array(a, float), np.array(b, float)))
        return recurrence.solve(p, a, b, u, q, **kw)

    for m in SOLVE_MODULES:
        monkeypatch.setattr(importlib.import_module(f"glrtheory.catalog.{m}"), "solve", spy)
    (args1, kw1, _), (args2, kw2, _) = (inputs(name, 63, np.random.default_rng(s)) for s in (1, 2))
    args2 = list(args2)
    for key in PARAMETERS.get(name, []):
        if isinstance(key, int):
            args2[key] = args1[key]
        else:
            kw2[key] = kw1[key]
    getattr(cat, name)(*args1, **kw1)
    getattr(cat, name)(*args2, **kw2)
    (a1, b1), (a2, b2) = seen
    assert (not np.array_equal(a1, a2)) == (entry.data_in in ("A", "A and B"))
    assert (not np.array_equal(b1, b2)) == (entry.data_in in ("B", "A and B"))


# -- operator-valued coefficients: DeltaNet ----------------------------------------------------------
def ref_delta_rule(q, k, v, beta, g, scale, S0):
    """fla's delta_rule_recurrence form: S *= exp(g); v' = beta (v - S^T k); S += k v'^T; o = scale q^T S."""
    B, T, H, K = q.shape
    S = S0.copy()
    o = np.empty(v.shape)
    for t in range(T):
        S = S * np.exp(g[:, t])[..., None, None]
        vn = beta[:, t, :, None] * (v[:, t] - np.einsum("bhkv,bhk->bhv", S, k[:, t]))
        S = S + k[:, t, :, :, None] * vn[:, :, None, :]
        o[:, t] = scale * np.einsum("bhk,bhkv->bhv", q[:, t], S)
    return o, S


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("gated", [False, True])
def test_delta_rule_matches_native(gated, T, dtype, rng):
    B, H = sizes(T)
    q, k, v = _base(rng, B=B, T=T, H=H, K=3, V=2)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)       # fla's use_qk_l2norm: keys of unit norm
    beta = rng.uniform(0.1, 1.0, (B, T, H))
    g = np.log(rng.uniform(0.8, 1.0, (B, T, H))) if gated else np.zeros((B, T, H))
    S0 = rng.standard_normal((B, H, 3, 2))
    c = lambda x: x.astype(dtype)  # noqa: E731
    if gated:
        o, S = cat.gated_delta_net(c(q), c(k), c(v), c(g), c(beta), initial_state=c(S0), output_final_state=True)
    else:
        o, S = cat.delta_net(c(q), c(k), c(v), c(beta), initial_state=c(S0), output_final_state=True)
    up = lambda x: c(x).astype(np.float64)  # noqa: E731
    o_ref, S_ref = ref_delta_rule(up(q), up(k), up(v), up(beta), up(g), 3 ** -0.5, up(S0))
    assert o.dtype == dtype and S.dtype == dtype
    assert rel_err(o, o_ref) <= TOL[dtype] and rel_err(S, S_ref) <= TOL[dtype]


@pytest.mark.parametrize("spec", ["ssm", "power2", "fenwick", "window:3+quadratic", "blocks:4"])
def test_operator_solver_reduces_to_solve_for_scalar_operators(spec, rng):
    """Bop[t,s] = b[t,s] I gives exactly the scalar framework (glrtheory.solve)."""
    from glrtheory import solve
    from glrtheory.recurrence import random_coefficients
    p = Pattern.from_spec(spec)
    n, K, V = 40, 3, 2
    a, b = random_coefficients(p, n, rng, (2,))
    u = rng.standard_normal((2, n, K, V))
    h = cat.solve_operator(p, a, b[..., None, None] * np.eye(K), u)
    assert rel_err(h.reshape(2, n, K * V), solve(p, a, b, u.reshape(2, n, K * V))) <= 1e-12


def test_operator_bad_input(rng):
    q, k, v = _base(rng)
    with pytest.raises(GLRError, match="beta must have shape"):
        cat.delta_net(q, k, v, np.ones((1, 4, 2)))
    with pytest.raises(GLRError, match="beta holds a non-finite"):
        cat.delta_net(q, k, v, _nan(np.ones((1, 5, 2))))
    with pytest.raises(GLRError, match="g must have shape"):
        cat.gated_delta_net(q, k, v, np.ones((1, 5, 3)), np.ones((1, 5, 2)))
    with pytest.raises(GLRError, match="b_op must have shape"):
        cat.solve_operator(Pattern.from_spec("ssm"), np.ones((5, 1)), np.ones((5, 1, 2, 2)), np.ones((5, 3, 2)))


def test_too_large_work_is_refused_with_the_limit(monkeypatch, rng):
    from glrtheory.catalog import _arrays
    monkeypatch.setattr(_arrays, "MAX_ELEMENTS", 1000)
    q, k, v = _base(rng, B=1, T=200, H=2, K=3, V=2)
    for call in (lambda: cat.linear_attention(q, k, v), lambda: cat.softmax_attention(q, k, v),
                 lambda: cat.delta_net(q, k, v, np.ones((1, 200, 2))),
                 lambda: cat.long_conv(rng.standard_normal((1, 200, 3)), np.ones((3, 50)))):
        with pytest.raises(GLRError, match="over the catalog's limit 1000"):
            call()


def test_chacal_at_gamma_one_is_the_limit(rng):
    """gamma = 1 equals lim_{gamma -> 1} (1 - gamma) A (I - gamma A)^{-1} V: the resolvent evaluated in exact
    rationals at gamma = 1 - 10^-40 on a rational causal row-stochastic A with an absorbing row (A[2] = e_2)
    besides row 0 (the resolvent is rational in gamma with a finite limit, so this is the limit to ~1e-40)."""
    import sympy as sp

    T, V = 5, 2
    rows = []
    for t in range(T):
        w = [sp.Rational(int(x), 1) for x in rng.integers(1, 6, t + 1)]
        if t == 2:
            w = [sp.Integer(0), sp.Integer(0), sp.Integer(1)]
        rows.append([x / sum(w) for x in w] + [0] * (T - t - 1))
    A = sp.Matrix(rows)
    vals = rng.standard_normal((T, V))
    g = 1 - sp.Rational(1, 10**40)
    limit = np.array((1 - g) * A * (sp.eye(T) - g * A).inv(), dtype=float)
    attn = np.array(A, dtype=float)[None, None]
    y = cat.chacal(attn, vals[None, :, None, :], 1.0)[0, :, 0]
    assert np.linalg.norm(y - limit @ vals) / np.linalg.norm(limit @ vals) <= 1e-10
    near = cat.chacal(attn, vals[None, :, None, :], 1 - 1e-9)[0, :, 0]
    assert np.linalg.norm(near - y) / np.linalg.norm(y) <= 1e-6
