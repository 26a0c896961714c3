"""``GLRMixer`` (``kernels/layers.py``) against a naive per-token float64 recurrence written out here.

The reference reads the parameters by the documented row order of ``in_proj`` (values, keys, queries, scores,
score_queries, score_keys), loops over t, heads and the table rows, and uses ``int.bit_length`` for the lag buckets.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError  # noqa: E402
from glrtheory.kernels.layers import GLRMixer, gate_bias, lag_buckets  # noqa: E402


def _rows(mixer):
    """The projections' row ranges by name, from the documented stacking order and sizes."""
    H, D, K = mixer.n_heads, mixer.d_head, mixer.d_key
    qk = mixer.score_mode == "query_key"
    sizes = [("values", H * D), ("keys", H * K if mixer.readout else 0), ("queries", H * K if mixer.readout else 0),
             ("scores", H if qk else 3 * H), ("score_queries", H * K if qk else 0), ("score_keys", H * K if qk else 0)]
    out, start = {}, 0
    for name, n in sizes:
        out[name] = (start, start + n)
        start += n
    return out


def _naive_coefficients(mixer, x, tables):
    """``a[B, T, H, wa]``, ``b[B, T, H, wb]`` of the tables by loops (0 at padding), and the projections by name."""
    p = {k: v.detach().cpu().double().numpy() for k, v in mixer.state_dict().items()}
    X = x.detach().cpu().double().numpy()
    Bn, T, _ = X.shape
    H, K = mixer.n_heads, mixer.d_key
    W, c = p["in_proj.weight"], p.get("in_proj.bias")
    y = X @ W.T + (0 if c is None else c)
    part = {name: y[..., lo:hi] for name, (lo, hi) in _rows(mixer).items()}
    sc = part["scores"] + (p["score_bias"] if "score_bias" in p else 0)
    qk, lag = mixer.score_mode == "query_key", p.get("lag_bias")
    coef = [np.zeros((Bn, T, H, idx.shape[1])) for idx in tables]

    def score(i, t, h, s, side):
        if qk:
            z = float(part["score_queries"][i, t, h * K:(h + 1) * K] @ part["score_keys"][i, s, h * K:(h + 1) * K])
            z /= math.sqrt(K)
        else:
            z = sc[i, s, (1 + side) * H + h]
        return z + (0 if lag is None else lag[side, h, min((t - s).bit_length(), 23)])

    for i in range(Bn):
        for t in range(T):
            rows = [[int(s) for s in idx[t] if s >= 0] for idx in tables]
            for h in range(H):
                gamma = 1 / (1 + math.exp(-sc[i, t, h])) if rows[1] else 0.0
                for side, share in ((0, 1 - gamma), (1, gamma)):
                    if rows[side]:
                        z = [score(i, t, h, s, side) for s in rows[side]]
                        e = [math.exp(v - max(z)) for v in z]
                        coef[side][i, t, h, :len(e)] = [share * v / sum(e) for v in e]
    return coef[0], coef[1], part


def _naive(mixer, x, tables=None):
    """The layer's output by a loop over tokens, in float64 numpy: per head, state (vector or matrix), readout."""
    tables = mixer.pattern.tables(x.shape[1]) if tables is None else tables
    a, b, part = _naive_coefficients(mixer, x, tables)
    Bn, T = x.shape[:2]
    H, D, K = mixer.n_heads, mixer.d_head, mixer.d_key
    out = np.zeros((Bn, T, H, D))
    for i in range(Bn):
        states = {}
        for t in range(T):
            for h in range(H):
                v = part["values"][i, :, h * D:(h + 1) * D]
                if mixer.readout:
                    u = np.einsum("sk,sd->skd", part["keys"][i, :, h * K:(h + 1) * K], v)
                else:
                    u = v
                st = 0 * u[0]
                for j, s in enumerate(tables[0][t]):
                    if s >= 0:
                        st = st + a[i, t, h, j] * u[s]
                for j, s in enumerate(tables[1][t]):
                    if s >= 0:
                        st = st + b[i, t, h, j] * states[s, h]
                states[t, h] = st
                out[i, t, h] = part["queries"][i, t, h * K:(h + 1) * K] @ st / math.sqrt(K) if mixer.readout else st
    p = {k: v.detach().cpu().double().numpy() for k, v in mixer.state_dict().items()}
    o = out.reshape(Bn, T, H * D) @ p["out.weight"].T
    return o + p["out.bias"] if "out.bias" in p else o


def _mixer(spec, seed=0, d_model=8, heads=2, lag=False, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    m = GLRMixer(spec, d_model, heads, dtype=dtype, lag_bias=lag, **kw)
    with torch.no_grad():
        if lag:
            m.lag_bias.normal_(0, 2)
        for prm in m.parameters():          # larger scores: softmaxes far from uniform
            prm.mul_(3)
    return m


CASES = [
    ("power2", {}), ("fenwick", dict(scores="query_key")), ("window:3+power2", dict(lag=True)),
    ("window:3+power2", dict(lag=True, scores="query_key", readout=True)), ("attention", dict(readout=True)),
    ("blocks:4", dict(readout=True, d_key=3, d_head=5, bias=True)), ("ssm", dict(bias=True, heads=1)),
    ("power2", dict(scores="query_key", d_key=3, heads=4, lag=True)), ("window:2+fenwick", dict(d_head=3, lag=True)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_and_steps_equal_the_naive_recurrence(case):
    """forward, forward_eagerly (readout), step by step, and a prompt then steps: all the naive loop."""
    spec, kw = CASES[case]
    mixer = _mixer(spec, seed=case, **kw)
    T = 13
    x = torch.randn(2, T, 8, dtype=torch.float64)
    want = _naive(mixer, x)
    with torch.no_grad():
        assert np.allclose(mixer(x).numpy(), want, rtol=1e-10, atol=1e-12)
        if mixer.readout:
            assert np.allclose(mixer.forward_eagerly(x).numpy(), want, rtol=1e-10, atol=1e-12)
        cache = mixer.init_cache(T)
        steps = torch.stack([mixer.step(x[:, t], cache) for t in range(T)], 1)
        assert np.allclose(steps.numpy(), want, rtol=1e-10, atol=1e-12)
        for L in (1, 6):
            cache = mixer.init_cache(T)
            first = mixer(x[:, :L], cache=cache)
            rest = torch.stack([mixer.step(x[:, t], cache) for t in range(L, T)], 1)
            assert np.allclose(torch.cat([first, rest], 1).numpy(), want, rtol=1e-10, atol=1e-12), L


def _message(fn):
    with pytest.raises(GLRError) as info:
        fn()
    return str(info.value)


def test_bad_arguments_are_refused_by_name():
    """Each check's whole message."""
    cases = [
        (dict(readout=1), "readout must be True or False, got 1"),
        (dict(bias=None), "bias must be True or False, got None"),
        (dict(lag_bias="x"), "lag_bias must be True or False, got 'x'"),
        (dict(scores="qk"), "scores must be one of ('source', 'query_key'), got 'qk'"),
        (dict(dtype=torch.int32), "dtype must be a floating torch dtype, got torch.int32"),
        (dict(dtype="float32"), "dtype must be a floating torch dtype, got 'float32'"),
        (dict(d_head=0), "d_head must be >= 1, got 0"),
        (dict(d_key=0), "d_key must be >= 1, got 0"),
        (dict(timescales=(2,)), "timescales must be a pair (tau_min, tau_max), got (2,)"),
        (dict(timescales=3), "timescales must be a pair (tau_min, tau_max), got 3"),
        (dict(timescales=(3, 2)), "timescales must be (tau_min, tau_max) with tau_min <= tau_max, got (3, 2)"),
        (dict(timescales=(1, 2)), "a timescale must lie in (1, inf], got 1"),
    ]
    for kw, want in cases:
        assert _message(lambda: GLRMixer("power2", 8, 2, **kw)) == want, kw
    assert _message(lambda: GLRMixer("power2", 10, 3)) == "d_model=10 is not divisible by n_heads=3; pass d_head"
    assert _message(lambda: GLRMixer("power2", 0, 1)) == "d_model must be >= 1, got 0"
    assert _message(lambda: GLRMixer("power2", 8, 0)) == "n_heads must be >= 1, got 0"
    assert GLRMixer("power2", 10, 3, d_head=4).d_head == 4
    assert GLRMixer("power2", 8, 2, timescales=[2, 2]).score_bias[:2].tolist() == [0.0, 0.0]   # log(2 - 1)
    assert math.isclose(gate_bias((5, 5), 1).item(), math.log(4), rel_tol=1e-15)


def test_bad_inputs_are_refused_by_name():
    mixer = GLRMixer("power2", 8, 2)
    cast = "cast x, or the mixer (mixer.to(dtype)), or run under torch.autocast"
    assert _message(lambda: mixer(torch.randn(2, 5, 7))) == "x must have shape [batch, T, 8], got (2, 5, 7)"
    assert _message(lambda: mixer(torch.randn(5, 8))) == "x must have shape [batch, T, 8], got (5, 8)"
    assert _message(lambda: mixer([1.0])) == "x must have shape [batch, T, 8], got list"
    assert _message(lambda: mixer(torch.randn(1, 5, 8, dtype=torch.float64))) == \
        f"x is torch.float64, the mixer torch.float32: {cast}"
    assert _message(lambda: mixer(torch.ones(1, 5, 8, dtype=torch.long))) == \
        f"x is torch.int64, the mixer torch.float32: {cast}"
    cache = mixer.init_cache(4)
    assert _message(lambda: mixer.step(torch.randn(2, 8), {})) == \
        "step needs the cache of init_cache(max_length), got dict"
    assert _message(lambda: mixer.coefficients(torch.randn(3, 8))) == "x must have shape [batch, T, 8], got (3, 8)"
    other = GLRMixer("power2", 8, 4)
    assert _message(lambda: other(torch.randn(2, 3, 8), cache=mixer.init_cache(4))) == (
        "the cache was made for a mixer with {'n_heads': 2, 'd_head': 4, 'd_key': 0, 'readout': False, "
        "'scores': 'source'}, this one has {'n_heads': 4, 'd_head': 2, 'd_key': 0, 'readout': False, "
        "'scores': 'source'}")
    assert _message(lambda: GLRMixer("power2", 8, 2, chunk=0)) == "chunk must be >= 1, got 0"   # when built
    assert _message(lambda: mixer.step(torch.randn(2, 8, 1), cache)) == "x must have shape [batch, 8], got (2, 8, 1)"
    assert _message(lambda: mixer.step(torch.randn(2, 1, 8), cache)) == "x must have shape [batch, 8], got (2, 1, 8)"
    with torch.no_grad():
        mixer.step(torch.randn(2, 8), cache)
    assert _message(lambda: mixer(torch.randn(2, 2, 8), cache=cache)) == \
        "forward(x, cache) prefills a fresh cache; this one is at step 1"


def test_tables_are_kept_for_the_last_eight_lengths():
    """The ninth new length drops the oldest kept (a new object next time); the other seven stay the same object."""
    mixer = GLRMixer("power2", 8, 2)
    first = {n: mixer.tables(n) for n in range(1, 9)}
    assert all(mixer.tables(n) is first[n] for n in range(1, 9))
    mixer.tables(9)
    assert all(mixer.tables(n) is first[n] for n in range(2, 9))
    assert mixer.tables(1) is not first[1]
    a, b = mixer.tables(9)
    assert a.tolist() == [[s] for s in range(9)] and b[3].tolist() == [1, 2, -1, -1]


def test_a_table_over_the_limit_names_the_layer():
    mixer = GLRMixer("attention", 8, 2)
    n = 50_000
    msg = _message(lambda: mixer.tables(n))
    assert msg.startswith(f"GLRMixer('attention') at length {n} needs an index table of {n} x {n} = ")


def _hand_tables():
    """T = 6: A one slot wide with rows 1 and 4 empty; B two wide with rows 0, 2 empty, row 5 reading 2 and 4."""
    from glrtheory.patterns.tables import IndexTables

    a = [[0], [-1], [2], [3], [-1], [5]]
    b = [[-1, -1], [0, -1], [-1, -1], [1, 2], [3, -1], [2, 4]]
    return IndexTables(np.array(a, np.int32), np.array(b, np.int32))


@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("lag", [False, True])
def test_coefficients_of_hand_tables_with_empty_rows(scores, lag):
    """Empty rows give 0 (no NaN, no weight 1 from a one-slot row), the gate is 0 where B(t) is empty, padding 0."""
    mixer = _mixer("power2", seed=3, heads=2, scores=scores, lag=lag)
    tables = _hand_tables()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    with torch.no_grad():
        u, a, b, q = mixer.coefficients(x, tables)
    wa, wb, _ = _naive_coefficients(mixer, x, tables)
    assert a.shape == (2, 6, 2, 1) and b.shape == (2, 6, 2, 2) and q is None and u.shape == (2, 6, 2, 4)
    assert np.allclose(a.numpy(), wa, rtol=1e-12, atol=1e-15) and np.allclose(b.numpy(), wb, rtol=1e-12, atol=1e-15)
    assert (a[:, [1, 4]] == 0).all() and (b[:, [0, 2]] == 0).all() and (b[:, 4, :, 1] == 0).all()
    assert (a[:, 0] == 1).all()
    full = (a.sum(-1) + b.sum(-1)).numpy()
    assert np.allclose(full[:, [0, 3, 5]], 1, rtol=0, atol=1e-15)


@pytest.mark.parametrize("readout", [False, True])
def test_a_user_pattern_of_the_hand_tables_equals_the_naive_recurrence(readout):
    """The hand tables as a user pattern: forward, step by step, and a prompt of 4 then 2 steps."""
    from glrtheory.patterns import Pattern

    tables = _hand_tables()
    pattern = Pattern.from_sets(*([[int(s) for s in row if s >= 0] for row in idx] for idx in tables))
    mixer = _mixer(pattern, seed=5, lag=True, readout=readout)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    want = _naive(mixer, x, tables)
    with torch.no_grad():
        assert np.allclose(mixer(x).numpy(), want, rtol=1e-10, atol=1e-12)
        cache = mixer.init_cache(6)
        steps = torch.stack([mixer.step(x[:, t], cache) for t in range(6)], 1)
        assert np.allclose(steps.numpy(), want, rtol=1e-10, atol=1e-12)
        cache = mixer.init_cache(6)
        got = torch.cat([mixer(x[:, :4], cache=cache)] + [mixer.step(x[:, t], cache)[:, None] for t in (4, 5)], 1)
        assert np.allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_device_tables_and_lag_buckets_of_hand_tables():
    """int64 tables, masks where slots are real (None for a one-slot A side without padding and any one-slot B side),
    which rows read a state, and the lag buckets by ``int.bit_length`` with 0 at padding."""
    from glrtheory.kernels.layers import _device_tables, _table_buckets

    tables = _hand_tables()
    ai, bi, va, vb, has_b = _device_tables(tables, "cpu")
    assert ai.dtype == bi.dtype == torch.long and ai.tolist() == tables.a_idx.tolist()
    assert bi.tolist() == tables.b_idx.tolist()
    assert va.tolist() == [[[s >= 0 for s in row]] for row in tables.a_idx.tolist()]
    assert vb.tolist() == [[[s >= 0 for s in row]] for row in tables.b_idx.tolist()]
    assert has_b.tolist() == [[False], [True], [False], [True], [True], [True]]
    ba, bb = _table_buckets(tables, "cpu")
    assert ba.dtype == bb.dtype == torch.long
    assert ba.tolist() == [[0]] * 6
    assert bb.tolist() == [[0, 0], [1, 0], [0, 0], [2, 1], [1, 0], [2, 1]]
    ssm = GLRMixer("ssm", 8, 2).tables(5)
    ai, bi, va, vb, has_b = _device_tables(ssm, "cpu")
    assert va is None and vb is None and has_b[:, 0].tolist() == [False, True, True, True, True]
    wide = GLRMixer("window:2", 8, 2).tables(3)
    assert _device_tables(wide, "cpu")[2].tolist() == [[[True, False]], [[True, True]], [[True, True]]]
    for n in (1, 2, 3, 4, 7, 8, 2 ** 22, 2 ** 23 + 5):
        assert lag_buckets([n]).tolist() == [min(n.bit_length(), 23)]


def test_a_prompt_reads_the_tables_at_the_cache_length():
    """blocks' block size follows n: a prompt of 10 with a cache for 40 uses the first 10 rows at 40 (not the tables
    at 10), and the steps after it continue the sequence of length 40."""
    mixer = _mixer("blocks", seed=7, lag=True)
    x = torch.randn(1, 40, 8, dtype=torch.float64)
    want = _naive(mixer, x)
    with torch.no_grad():
        cache = mixer.init_cache(40)
        prompt = mixer(x[:, :10], cache=cache)
        got = torch.cat([prompt] + [mixer.step(x[:, t], cache)[:, None] for t in range(10, 40)], 1)
        assert np.allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
        assert not np.allclose(mixer(x[:, :10]).numpy(), want[:, :10], rtol=1e-3, atol=1e-3)


def test_parameters_and_the_score_bias_start():
    """The parameters by name with and without ``bias``; without it the scores' bias starts uniform in
    ``+-d_model^-1/2`` (nn.Linear's), the out projection has none."""
    names = {n for n, _ in GLRMixer("power2", 8, 2).named_parameters()}
    assert names == {"in_proj.weight", "score_bias", "out.weight"}
    names = {n for n, _ in GLRMixer("power2", 8, 2, bias=True, lag_bias=True, readout=True).named_parameters()}
    assert names == {"in_proj.weight", "in_proj.bias", "out.weight", "out.bias", "lag_bias"}
    torch.manual_seed(0)
    sb = GLRMixer("power2", 4, 64, d_head=1).score_bias.detach()
    assert sb.shape == (192,) and sb.abs().max() <= 0.5 and sb.min() < -0.45 and sb.max() > 0.45


@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_a_bfloat16_gate_is_computed_in_float32(scores):
    """ssm (a = 1 - gamma, b = gamma, gamma = sigmoid(the gate's projection)): the projection as bfloat16 gives it,
    the sigmoid in float32 (not rounded to bfloat16)."""
    torch.manual_seed(1)
    mixer = GLRMixer("ssm", 8, 2, scores=scores, dtype=torch.bfloat16)
    x = torch.randn(2, 9, 8, dtype=torch.bfloat16)
    with torch.no_grad():
        _, a, b, _ = mixer.coefficients(x)
        rows = slice(8, 10)                              # values 2 x 4, then the gate's 2 rows
        z = torch.nn.functional.linear(x, mixer.in_proj.weight[rows]) + mixer.score_bias[:2]
    gamma = 1 / (1 + np.exp(-z.double().numpy()))
    gamma[:, 0] = 0
    assert a.dtype == b.dtype == torch.float32
    assert np.allclose(b[..., 0].numpy(), gamma, rtol=0, atol=1e-6)
    assert np.allclose(a[..., 0].numpy(), 1 - gamma, rtol=0, atol=1e-6)


@pytest.mark.parametrize("readout", [False, True])
def test_the_chunk_given_reaches_the_scan_or_readout(monkeypatch, readout):
    """``chunk=5`` is passed to ``glr_scan`` / ``glr_readout`` (dropping it changes no output, only the blocking);
    None passes None (the op's default for the device)."""
    import glrtheory.kernels.layers as layers

    name = "glr_readout" if readout else "glr_scan"
    for chunk in (5, None):
        seen, real = [], getattr(layers, name)
        monkeypatch.setattr(layers, name, lambda *a, **kw: (seen.append(kw["chunk"]), real(*a, **kw))[1])
        GLRMixer("power2", 8, 2, readout=readout, chunk=chunk)(torch.randn(1, 7, 8))
        assert seen == [chunk]
        monkeypatch.undo()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case", range(len(CASES)))
def test_cuda_mixer_built_there_equals_the_naive_recurrence(case):
    """Built with ``device="cuda"``: every parameter and buffer is there, and forward, forward_eagerly, steps and a
    prompt then steps equal the naive loop in float64 (the torch path); in float32 (the Triton scan or readout, the
    layer's graphs) forward with gradients on, within 1e-4."""
    spec, kw = CASES[case]
    mixer = _mixer(spec, seed=case, device="cuda", **kw)
    assert all(t.device.type == "cuda" for t in [*mixer.parameters(), *mixer.buffers()])
    T = 13
    x = torch.randn(2, T, 8, dtype=torch.float64, device="cuda")
    want = _naive(mixer, x)
    with torch.no_grad():
        outs = [mixer(x)] + ([mixer.forward_eagerly(x)] if mixer.readout else [])
        cache = mixer.init_cache(T)
        outs.append(torch.stack([mixer.step(x[:, t], cache) for t in range(T)], 1))
        cache = mixer.init_cache(T)
        first = mixer(x[:, :6], cache=cache)
        outs.append(torch.cat([first, torch.stack([mixer.step(x[:, t], cache) for t in range(6, T)], 1)], 1))
    for out in outs:
        assert out.device.type == "cuda" and np.allclose(out.cpu().numpy(), want, rtol=1e-10, atol=1e-12)
    single = _mixer(spec, seed=case, device="cuda", dtype=torch.float32, **kw)
    x32 = torch.randn(2, 70, 8, device="cuda", requires_grad=True)
    got = single(x32)
    got.sum().backward()
    assert x32.grad.isfinite().all() and np.allclose(got.detach().cpu().numpy(), _naive(single, x32), atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_table_tensors_are_kept_per_device():
    """One mixer's tables read on the CPU, then on CUDA: the index tables, lag buckets and readout scales that each
    device gets are on that device (a CPU index on CUDA still indexes, through a copy at every call, so outputs alone
    would not show it), and the CPU's stay on the CPU."""
    mixer = GLRMixer("window:3+power2", 8, 2, readout=True, lag_bias=True)
    for device in ("cpu", "cuda", "cpu"):
        x = torch.randn(1, 9, 8, device=device)
        kept = [*mixer._table_tensors(9, x.device), *mixer._buckets(9, x.device), *mixer._readout_scales(9, x)]
        assert all(t.device.type == device for t in kept if t is not None), device
