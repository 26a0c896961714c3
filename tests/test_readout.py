"""The matrix-state readout ``glr_readout`` (no per-token d_k x d_v states) against the float64 references:
``glrtheory.solve`` with its readout (forward) and autograd through the materializing path (u = k v^T
through the token-by-token ``naive`` scan, then q^T H) for the gradients; and the layer against its old
materializing path."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern, solve  # noqa: E402
from glrtheory.kernels.scan import readout, readout_blocks  # noqa: E402
from glrtheory.kernels.scan.naive import naive_glr_scan  # noqa: E402
from glrtheory.kernels.scan.readout import naive_readout  # noqa: E402
from glrtheory.kernels.torch import GLRMixer, glr_readout, readout_algorithm  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

SPECS = ["ssm", "power2", "fenwick", "blocks", "window:4+fenwick", "attention", "window:4"]
LENGTHS = [1, 2, 63, 200]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def problem(rng, spec, n, B=2, H=2, dk=3, dv=4):
    """Fresh random inputs (never zero), coefficients of either sign with ``sum_j |b[t, j]| < 1``."""
    tables = Pattern.from_spec(spec).tables(n)
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    q, k = rng.standard_normal((2, B, n, H, dk))
    v = rng.standard_normal((B, n, H, dv))
    a = rng.uniform(0.5, 1.5, (B, n, H, wa)) * rng.choice([-1, 1], (B, n, H, wa))
    b = rng.uniform(-1, 1, (B, n, H, wb)) / max(1, wb)
    return tables, q, k, v, a, b


def reference(spec, q, k, v, a, b):
    """float64 ``o_t = q_t^T H_t`` from ``solve`` on the flattened matrix states ``k v^T``."""
    sw = lambda x: np.swapaxes(x, 1, 2)  # noqa: E731  [B, T, H, .] <-> [B, H, T, .]
    u = (k[..., :, None] * v[..., None, :]).reshape(k.shape[:-1] + (-1,))
    return sw(solve(Pattern.from_spec(spec), sw(a), sw(b), sw(u), sw(q)))


def materialized(q, k, v, a, b, tables):
    """float64 ``o_t = q_t^T H_t`` from ``naive_glr_scan`` (token by token) on the flattened ``k v^T``,
    differentiable."""
    h = naive_glr_scan((k.unsqueeze(-1) * v.unsqueeze(-2)).flatten(-2), a, b, tables)
    return torch.matmul(q.unsqueeze(-2), h.unflatten(-1, (k.shape[-1], v.shape[-1]))).squeeze(-2)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_matches_solve(rng, spec, n, dtype):
    tables, *xs = problem(rng, spec, n)
    out = glr_readout(*(torch.tensor(x, dtype=dtype) for x in xs), tables, chunk=16)
    assert out.dtype == dtype and out.shape == xs[2].shape
    assert rel_err(out.double(), reference(spec, *xs)) <= TOL[dtype]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("n", [2, 63])
def test_gradients_match_materializing_path(rng, spec, n):
    tables, *xs = problem(rng, spec, n)
    leaves = [torch.tensor(x, requires_grad=True) for x in xs]
    out = glr_readout(*leaves, tables, chunk=8)
    grad = torch.randn_like(out)
    fast = torch.autograd.grad(out, leaves, grad, allow_unused=True)
    ref = materialized(*leaves, tables)
    slow = torch.autograd.grad(ref, leaves, grad, allow_unused=True)
    for name, f, s in zip("qkvab", fast, slow):
        s = torch.zeros_like(leaves["qkvab".index(name)]) if s is None else s
        f = torch.zeros_like(s) if f is None else f
        assert rel_err(f, s) <= 1e-12, name


def test_gradients_at_length_200_and_float32(rng):
    """The tiled backward over many tiles, and float32 gradients within 1e-5 of float64."""
    for spec in ("ssm", "fenwick"):
        tables, *xs = problem(rng, spec, 200, B=1, H=1)
        grads = {}
        for dtype in (torch.float64, torch.float32):
            leaves = [torch.tensor(x, dtype=dtype, requires_grad=True) for x in xs]
            out = glr_readout(*leaves, tables, chunk=32)
            grads[dtype] = torch.autograd.grad(out, leaves, torch.ones_like(out))
        leaves = [torch.tensor(x, requires_grad=True) for x in xs]
        ref = naive_readout(*leaves, tables)
        for f64, f32, s in zip(grads[torch.float64], grads[torch.float32],
                               torch.autograd.grad(ref, leaves, torch.ones_like(ref))):
            assert rel_err(f64, s) <= 1e-12 and rel_err(f32, s) <= 1e-5


@pytest.mark.parametrize("spec,name,cost", [("ssm", "chunked_aligned", "n (w + m)"),
                                            ("power2", "tiled_mixing", "n (n + nnz)"),
                                            ("window:4+ssm", "chunked_aligned", "n (w + m)"),
                                            ("window:4", "direct", "n w"), ("attention", "direct", "n w"),
                                            ("lags:2", "chunked_aligned", "n (w + m)")])
def test_algorithm_choice(spec, name, cost):
    """At n = 512 (at n = 100 ssm and lags:2 go to tiled mixing: its estimated work is below the aligned
    layout's, whose chunks of 64 pad 100 rows to 128)."""
    p = Pattern.from_spec(spec)
    assert readout_algorithm(p, 512) == readout_algorithm(p.tables(512)) == (name, cost)
    assert readout_algorithm(tuple(np.array(x) for x in p.tables(512))) == (name, cost)   # a plain pair



@pytest.mark.parametrize("spec, first, back, again", [("window:64+ssm", 44, 66, 79), ("blocks", 170, 194, 198),
                                                      ("window:8+fenwick", 184, 194, 221), ("fenwick", 313, 322, 339),
                                                      ("lags:1,2,3", 548, 578, 581), ("ssm", 355, None, None)])
def test_where_aligned_patterns_turn_aligned(spec, first, back, again):
    """docs/quantities.md's lengths, each edge from both sides: tiled mixing up to ``first - 1``, aligned from
    ``first``, tiled again from ``back`` to ``again - 1``, aligned from ``again`` on."""
    expected = {first - 1: "tiled_mixing", first: "chunked_aligned"}
    if back:
        expected.update({back - 1: "chunked_aligned", back: "tiled_mixing", again - 1: "tiled_mixing",
                         again: "chunked_aligned"})
    p = Pattern.from_spec(spec)
    assert {n: readout_algorithm(p.tables(n))[0] for n in expected} == expected


def test_blockwise_dtype_is_qs_only_for_tiled_mixing_where_the_scan_runs_it(monkeypatch):
    """Tiled mixing of bf16 / fp16 q with float32 a computes in q's dtype where ``glr_scan`` runs it (CUDA), else in
    a's: on this CPU (no bf16 scan) a's; with a scan of q's dtype (stubbed) q's; never for direct or for a that is
    not float32."""
    q16, q32, a32 = torch.zeros(1, dtype=torch.bfloat16), torch.zeros(1), torch.zeros(1)
    assert readout._blockwise_dtype("tiled_mixing", q16, a32) == torch.float32
    monkeypatch.setattr(readout, "choose_backend", lambda backend, device, dtype: "triton")
    assert readout._blockwise_dtype("tiled_mixing", q16, a32) == torch.bfloat16
    assert readout._blockwise_dtype("tiled_mixing", q16.half(), a32) == torch.float16
    assert readout._blockwise_dtype("direct", q16, a32) == torch.float32
    assert readout._blockwise_dtype("tiled_mixing", q32, a32) == torch.float32
    assert readout._blockwise_dtype("tiled_mixing", q16, a32.double()) == torch.float64


def test_tile_columns_fill_the_devices_budget():
    """Tiled mixing's default tile width: the largest multiple of 64 columns whose ``B H T C`` elements fit the
    device's budget (2^21 on the CPU, 2^26 on CUDA), at least 64 and at most T; by hand at the layer's shape, B8 T2048
    H8: 2^26 / 2^20 = 64 columns on CUDA is 512, 2^21 / 2^20 = 2 columns on the CPU is one tile of 64."""
    assert readout.tile_columns(8, 8, 2048, "cuda") == 512
    assert readout.tile_columns(8, 8, 2048, "cpu") == readout.tile_columns(8, 8, 2048, "mps") == 64
    assert readout.tile_columns(8, 8, 65536, "cuda") == 64                        # one tile is over the budget
    assert readout.tile_columns(1, 2, 256, "cpu") == 256                          # 2^21 / 512 = 4096 columns > T
    assert readout.tile_columns(1, 1, 2**14, "cpu") == 128                        # 2^21 / 2^14 = 128: exactly two
    assert readout.tile_columns(1, 1, 2**14 + 1, "cpu") == 64                     # one element over: one


@pytest.mark.parametrize("spec,algorithm", [("ssm", "chunked_aligned"), ("window:4", "direct"),
                                            ("power2", "tiled_mixing")])
@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_low_precision_q_k_v_with_float32_coefficients(rng, spec, algorithm, low, n=63):
    """q, k, v in bf16 / fp16 with float32 a, b (what a layer under autocast gives): the output in q's dtype,
    within the bf16 tolerance of float64 on the same (rounded) inputs, for each algorithm."""
    tables, *xs = problem(rng, spec, n)
    xs = [torch.tensor(x).to(low if i < 3 else torch.float32) for i, x in enumerate(xs)]
    out = glr_readout(*xs, tables, chunk=16, algorithm=algorithm)
    assert out.dtype == low
    assert rel_err(out.double(), reference(spec, *(x.double().numpy() for x in xs))) <= 1e-2


def test_bad_input_is_named():
    tables = Pattern.from_spec("power2").tables(8)
    q = torch.randn(1, 8, 2, 3)
    a, b = torch.rand(1, 8, 2, tables.a_idx.shape[1]), torch.rand(1, 8, 2, tables.b_idx.shape[1])
    with pytest.raises(GLRError, match="q, k, v"):
        glr_readout(q, q[:, :7], q, a, b, tables)
    with pytest.raises(GLRError, match="b must have shape"):
        glr_readout(q, q, q, a, b[..., :1], tables)
    with pytest.raises(GLRError, match="dtype"):
        glr_readout(q, q.double(), q, a, b, tables)
    with pytest.raises(GLRError, match="b is torch.float64 on cpu but a is torch.float32"):
        glr_readout(q, q, q, a, b.double(), tables)
    with pytest.raises(GLRError, match="a and b are torch.bfloat16 but q, k, v are torch.float32"):
        glr_readout(q, q, q, a.bfloat16(), b.bfloat16(), tables)
    with pytest.raises(GLRError, match="a and b are torch.float32 but q, k, v are torch.float64"):
        glr_readout(q.double(), q.double(), q.double(), a, b, tables)
    with pytest.raises(GLRError, match="chunk"):
        glr_readout(q, q, q, a, b, tables, chunk=0)
    for algorithm in (None, "chunked_aligned", "direct"):              # each algorithm refuses alike
        with pytest.raises(GLRError, match="must be float16, bfloat16, float32 or float64, got torch.int64"):
            glr_readout(*(x.long() for x in (q, q, q, a, b)), tables, algorithm=algorithm)
    for empty in (q[:0], q[:, :, :0], q[..., :0]):                     # no batch, no heads, no d_k
        coef = [x[:, :, :empty.shape[2]][:empty.shape[0]] for x in (a, b)]
        with pytest.raises(GLRError, match="no empty dimension"):
            glr_readout(empty, empty, empty, *coef, tables)
    with pytest.raises(GLRError, match="algorithm must be a string or None, got \\['direct'\\]"):
        glr_readout(q, q, q, a, b, tables, algorithm=["direct"])
    with pytest.raises(GLRError, match="backend must be a string or None"):
        glr_readout(q, q, q, a, b, tables, backend=["torch"])


def test_checks_and_choice_run_once_per_signature(monkeypatch):
    """``glr_readout`` checks its inputs and chooses its algorithm once per signature (shapes, dtypes, devices,
    options, autocast) of the same tables: a repeated call reuses the choice, a new dtype, chunk or autocast state
    makes a new one, and bad input is refused however often a good call came before it."""
    from glrtheory.kernels.scan import readout
    calls = []
    choice = readout._choice
    monkeypatch.setattr(readout, "_choice", lambda *args: calls.append(args[-4:]) or choice(*args))
    tables = Pattern.from_spec("ssm").tables(16)
    q, a = torch.randn(1, 16, 2, 4), torch.rand(1, 16, 2, 1)
    first = glr_readout(q, q, q, a, a, tables)
    assert torch.equal(glr_readout(q, q, q, a, a, tables), first) and len(calls) == 1
    glr_readout(q.double(), q.double(), q.double(), a.double(), a.double(), tables)
    glr_readout(q, q, q, a, a, tables, chunk=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        glr_readout(q, q, q, a, a, tables)
    assert torch.equal(glr_readout(q, q, q, a, a, tables, transient=True), first)
    assert calls == [(None, None, None, False), (None, None, None, False), (8, None, None, False),
                     (None, None, None, False), (None, None, None, True)]
    for _ in range(2):
        with pytest.raises(GLRError, match="b must have shape"):
            glr_readout(q, q, q, a, a[:, :15], tables)
    assert len(calls) == 7
    glr_readout(q, q, q, a, a, tables)
    assert len(calls) == 7


@pytest.mark.parametrize("spec, algorithm", [("ssm", "tiled_mixing"), ("fenwick", "tiled_mixing"),
                                             ("window:4", "direct")])
def test_blockwise_index_tensors_are_built_once_per_tables(rng, spec, algorithm):
    """The direct and tiled readouts build their blocks' device index tensors (and the tiles' suffix tables, on
    which ``glr_scan`` keeps its plans) once per tables: a second call with fresh inputs adds nothing to the tables'
    memo and reuses the same tensors (no copy from the host per call, which a CUDA graph capture refuses), and
    still gives float64's output."""
    tables, *arrays = problem(rng, spec, 63)
    assert readout_algorithm(tables)[0] == algorithm

    def run(arrays):
        xs = [torch.tensor(x, requires_grad=True) for x in arrays]
        out = glr_readout(*xs, tables, chunk=16)
        return out, torch.autograd.grad(out, xs, torch.ones_like(out))

    kept = lambda: tables.memo(("readout_blocks",), dict)  # noqa: E731
    run(arrays)
    memo, blocks = dict(tables._memo), dict(kept())
    assert len(blocks) == -(-63 // 16)
    run(problem(rng, spec, 63)[1:])
    assert tables._memo.keys() == memo.keys() and kept().keys() == blocks.keys()
    assert all(value is blocks[key] for key, value in kept().items())
    for kind, value in blocks.items():
        if kind[0] == "tile":                     # the suffix tables glr_scan planned on, kept
            assert value[0]._memo, kind
    fresh = problem(np.random.default_rng(5), spec, 63)[1:]
    out, _ = run(fresh)
    assert rel_err(out.detach(), torch.as_tensor(reference(spec, *fresh))) <= TOL[torch.float64]


def test_blockwise_index_tensors_kept_within_their_budget(rng, monkeypatch):
    """Past ``KEPT_ELEMENTS`` index-table elements a tables object keeps no more blocks (the tiles' suffix tables
    grow as ``T^2``): with room for exactly the first two tiles (rows 0: and 16:, 1 + 6 columns) those two are kept,
    the others rebuilt each call, and the output is float64's either way."""
    monkeypatch.setattr(readout_blocks, "KEPT_ELEMENTS", (63 + 47) * 7)
    tables, *arrays = problem(rng, "fenwick", 63)
    assert tables.a_idx.shape[1] + tables.b_idx.shape[1] == 7
    for _ in range(2):
        out = glr_readout(*(torch.tensor(x) for x in arrays), tables, chunk=16)
        assert sorted(key[1] for key in tables.memo(("readout_blocks",), dict)) == [0, 16]
    assert rel_err(out, torch.as_tensor(reference("fenwick", *arrays))) <= TOL[torch.float64]


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "attention"])
@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_layer_equals_its_materializing_path(spec, scores):
    """GLRMixer(readout=True) forward and parameter gradients equal the old path (u = k v^T through
    glr_scan, then q^T H) in float64; with a cache it still fills the live set and decodes the same."""
    torch.manual_seed(0)
    layer = GLRMixer(spec, 12, 2, readout=True, d_key=5, scores=scores, dtype=torch.float64)
    x = torch.randn(2, 37, 12, dtype=torch.float64)
    y = layer(x)
    g = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
    u, a, b, q = layer.coefficients(x)
    h = naive_glr_scan(u, a, b, layer.tables(37))
    old = layer._output(h, q, x)                    # the materializing readout q^T H, then the projection
    g_old = torch.autograd.grad(old.square().sum(), list(layer.parameters()))
    assert rel_err(y.detach(), old.detach()) <= 1e-12
    flat = lambda gs: torch.cat([x.flatten() for x in gs])  # noqa: E731  (the gate's is ~1e-16 without B)
    assert rel_err(flat(g), flat(g_old)) <= 1e-12
    cache = layer.init_cache(40)
    y_cache = layer(x, cache=cache)
    step = layer.step(torch.randn(2, 12, dtype=torch.float64), cache)
    assert rel_err(y_cache.detach(), y.detach()) <= 1e-12 and torch.isfinite(step).all()


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "window:4"])
def test_broadcast_coefficients_and_partial_gradients(rng, spec):
    """Coefficients shared by batch and heads (size-1 dims) equal their expanded copies; with only q, k,
    v requiring gradients the others get none and q, k, v get the same as with all of them."""
    tables, q, k, v, a, b = problem(rng, spec, 40)
    a, b = a[:1, :, :1], b[:1, :, :1]
    qkv = [torch.tensor(x, requires_grad=True) for x in (q, k, v)]
    ab = [torch.tensor(x) for x in (a, b)]
    out = glr_readout(*qkv, *ab, tables, chunk=16)
    expanded = (np.broadcast_to(x, (2, 40, 2, x.shape[3])) for x in (a, b))
    assert rel_err(out.detach(), reference(spec, q, k, v, *expanded)) <= 1e-12
    grads = torch.autograd.grad(out, qkv, torch.ones_like(out))
    full = [torch.tensor(x, requires_grad=True) for x in (q, k, v)] + [x.expand(2, 40, 2, -1).clone()
                                                                       .requires_grad_() for x in ab]
    out_full = glr_readout(*full, tables, chunk=16)
    for g, ref in zip(grads, torch.autograd.grad(out_full, full[:3], torch.ones_like(out_full))):
        assert rel_err(g, ref) <= 1e-12


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("chunk", [None, 192])
@pytest.mark.parametrize("spec", ["power2", "quadratic"])
def test_gpu_tiled_mixing_matches_float64(rng, spec, chunk, n=1000):
    """Tiled mixing on CUDA (its tiles' scans in Triton), bf16 q, k, v with float32 a, b as a layer under autocast
    passes them, at n = 1000: the default tiles (``TILE_ELEMENTS["cuda"]``: one tile of all 1000 columns here) and
    tiles of 192 (six, the last of 40); the output and the five gradients against float64 autograd through the
    materializing path on the same rounded values, within the bf16 tolerance."""
    tables, *xs = problem(rng, spec, n, B=2, H=4, dk=32, dv=32)
    low = [torch.tensor(x, device="cuda").to(torch.bfloat16 if i < 3 else torch.float32) for i, x in enumerate(xs)]
    leaves = [x.clone().requires_grad_() for x in low]
    out = glr_readout(*leaves, tables, chunk=chunk)
    assert readout_algorithm(tables)[0] == "tiled_mixing" and out.dtype == torch.bfloat16
    grad = torch.randn(out.shape, device="cuda", dtype=torch.float64)
    got = torch.autograd.grad(out, leaves, grad.to(out.dtype))
    exact = [x.double().requires_grad_() for x in low]
    ref = materialized(*exact, tables)
    want = torch.autograd.grad(ref, exact, grad)
    assert rel_err(out.detach().double().cpu(), ref.detach().cpu()) <= 1e-2
    for name, g, r in zip("qkvab", got, want):
        assert rel_err(g.double().cpu(), r.cpu()) <= 1e-2, name
