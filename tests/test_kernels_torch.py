"""The torch op ``glr_scan`` and the layer ``GLRMixer`` against the float64 references of the core.

CPU tests run everywhere; tests marked ``gpu`` need CUDA and are skipped without it.
"""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern, solve  # noqa: E402
from glrtheory.kernels.torch import GLRMixer, glr_scan  # noqa: E402
from glrtheory.kernels.torch_algorithms import apply, scan_dense, substitute  # noqa: E402
from glrtheory.kernels.torch_plan import entries, scan_plan, transpose  # noqa: E402
from tests.helpers import BUILTIN_SPECS, rel_err  # noqa: E402

LENGTHS = [1, 2, 63, 1000]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def problem(rng, spec, n, batch=(2,), d=3):
    """Fresh random (never zero) inputs; B rows scaled so that sum_j |b[t, j]| < 1."""
    p = Pattern.from_spec(spec)
    tables = p.tables(n)
    a_idx, b_idx = tables
    u = rng.standard_normal(batch + (n, d))
    a = rng.uniform(0.5, 1.5, batch + a_idx.shape) * rng.choice([-1, 1], batch + a_idx.shape)
    b = rng.uniform(-1, 1, batch + b_idx.shape) / max(1, b_idx.shape[1])
    return p, tables, u, a, b


def as_t(*xs, dtype=torch.float64, device="cpu", grad=False):
    return [torch.tensor(x, dtype=dtype, device=device, requires_grad=grad) for x in xs]


def test_importing_glrtheory_does_not_import_torch():
    code = "import sys, glrtheory, glrtheory.kernels; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- forward --------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", BUILTIN_SPECS)
@pytest.mark.parametrize("n", LENGTHS)
def test_scan_matches_reference(rng, spec, n):
    p, tables, u, a, b = problem(rng, spec, n)
    ref = solve(p, a, b, u)
    for dtype in (torch.float64, torch.float32):
        out = glr_scan(*as_t(u, a, b, dtype=dtype), tables, chunk=16)
        assert out.dtype == dtype and out.shape == ref.shape
        assert rel_err(out.numpy(), ref) <= TOL[dtype], (spec, n, dtype)


@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks", "kron:1,11", "exponent:1", "window:5+ssm"])
@pytest.mark.parametrize("n", LENGTHS + [200])
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_substitution_writes_every_state(rng, spec, n, chunk):
    """Chunk by chunk (n not a multiple of C too) into NaN-filled outputs equals the token-by-token
    reference; chunk=1 is the token-by-token substitution itself. Also the backward substitution
    ``Z = (I - B)^{-T} G`` over the time-reversed transposed table."""
    import scipy.linalg

    from glrtheory.recurrence import dense_coefficients

    p, tables, u, a, b = problem(rng, spec, n)
    ref = solve(p, a, b, u)
    plan = scan_plan(tables, n, torch.device("cpu"))
    a_row, a_src, a_slot, b_row, b_src, b_slot, _, _, _, bt_row, bt_src, bt_slot = plan.tensors
    ut, at, bt = as_t(u, a, b)
    N = u.shape[0]
    nan = torch.full((N, n, 3), torch.nan, dtype=torch.float64)
    x = apply(at.reshape(N, -1)[:, a_slot], a_row, a_src, ut, nan.clone())
    h = substitute(x, bt.reshape(N, -1)[:, b_slot], b_row, b_src, chunk, nan.clone())
    assert rel_err(h.numpy(), ref) <= 1e-12
    z = substitute(ut.flip(1), bt.reshape(N, -1)[:, bt_slot], bt_row, bt_src, chunk, nan.clone()).flip(1)
    _, B = dense_coefficients(*tables, a, b)
    z_ref = [scipy.linalg.solve_triangular(np.eye(n) - B[i], u[i], lower=True, trans="T") for i in range(N)]
    assert rel_err(z.numpy(), np.stack(z_ref)) <= 1e-12


def test_padded_slots_are_ignored(rng):
    p, tables, u, a, b = problem(rng, "fenwick+window:4", 100)
    ref = solve(p, a, b, u)
    a[..., tables[0] < 0] = np.nan
    b[..., tables[1] < 0] = np.inf
    assert rel_err(glr_scan(*as_t(u, a, b), tables).numpy(), ref) <= 1e-12


def test_batch_dims_broadcast(rng):
    p, tables, u, a, b = problem(rng, "power2", 50, batch=(2, 3))
    a = a[0, 0]                                      # shared [n, wa]
    b = b[:1]                                        # [1, 3, n, wb]
    ref = solve(p, a, b, u)
    ut, at, bt = as_t(u, a, b, grad=True)
    out = glr_scan(ut, at, bt, tables)
    assert out.shape == ref.shape and rel_err(out.detach().numpy(), ref) <= 1e-12
    out.sum().backward()
    assert at.grad.shape == at.shape and bt.grad.shape == bt.shape


# -- backward -------------------------------------------------------------------------------------
def test_transposed_tables():
    p = Pattern.from_spec("fenwick+window:3")
    n = 70
    for idx, reverse in zip(p.tables(n), (False, True)):
        e = entries(idx)
        mask = np.zeros((n, n), bool)
        mask[e.row, e.src] = True
        tt = transpose(e, n, reverse=reverse)
        back = np.zeros((n, n), bool)
        back[tt.row, tt.src] = True
        assert np.array_equal(back, mask.T[::-1, ::-1] if reverse else mask.T)
        t_of_slot = tt.slot // idx.shape[1]                 # each coefficient keeps its slot
        assert np.array_equal(t_of_slot, n - 1 - tt.src if reverse else tt.src)
        assert np.array_equal(idx.ravel()[tt.slot], n - 1 - tt.row if reverse else tt.row)
        key = tt.row * n + tt.src
        assert np.all(np.diff(key) > 0)                      # sorted by (row, src), no duplicates
        if reverse:
            assert np.all(tt.src < tt.row)                   # strictly lower again


def test_plan_is_built_once_per_table_object():
    tables = Pattern.from_spec("power2").tables(40)
    cpu = torch.device("cpu")
    assert scan_plan(tables, 40, cpu) is scan_plan(tables, 40, cpu)
    assert scan_plan(Pattern.from_spec("power2").tables(40), 40, cpu) is not scan_plan(tables, 40, cpu)


def gradcheck(tables, u, a, b):
    """torch.autograd.gradcheck in float64 of glr_scan in its non-empty inputs (empty b: no B slots)."""
    full = [x for x in (u, a, b) if x.numel()]

    def fn(*xs):
        it = iter(xs)
        return glr_scan(*(next(it) if x.numel() else x for x in (u, a, b)), tables, chunk=4)

    return torch.autograd.gradcheck(fn, full)


@pytest.mark.parametrize("spec", ["power2+window:3", "fenwick", "blocks:4", "attention", "ssm", "kron:1,11"])
@pytest.mark.parametrize("n", [1, 2, 11])
def test_gradcheck(rng, spec, n):
    p, tables, u, a, b = problem(rng, spec, n)
    assert gradcheck(tables, *as_t(u, a, b, grad=True))


@pytest.mark.parametrize("spec", ["power2", "fenwick+window:5", "blocks", "quadratic", "exponent:1"])
@pytest.mark.parametrize("n", [63, 300])
def test_gradients_match_autograd_through_dense_reference(rng, spec, n):
    p, tables, u, a, b = problem(rng, spec, n)
    g = torch.tensor(rng.standard_normal(u.shape))
    a_idx, b_idx = (torch.as_tensor(i, dtype=torch.long) for i in tables)
    grads = []
    for fn in (lambda u, a, b: glr_scan(u, a, b, tables, chunk=16),
               lambda u, a, b: scan_dense(u, a, b, a_idx, b_idx)):
        args = as_t(u, a, b, grad=True)
        (fn(*args) * g).sum().backward()
        grads.append([x.grad.numpy() for x in args])
    for mine, ref in zip(*grads):
        assert rel_err(mine, ref) <= 1e-10


def test_opcheck():
    """torch.library's own checks of the custom op: schema, fake tensor, autograd registration."""
    p, tables, u, a, b = problem(np.random.default_rng(1), "power2+window:2", 20)
    plan = scan_plan(tables, 20, torch.device("cpu"))
    args = (*as_t(u, a, b, grad=True), *plan.tensors, 8)
    torch.library.opcheck(torch.ops.glrtheory.glr_scan.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


# -- FLOP counts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["power2", "fenwick", "attention", "blocks:8", "quadratic+window:3"])
def test_flop_counter_reports_exact_count(rng, spec):
    from torch.utils.flop_counter import FlopCounterMode

    from glrtheory.analysis import nnz

    n, d = 300, 5
    p, tables, u, a, b = problem(rng, spec, n, batch=(2, 3), d=d)
    nnz_a, nnz_b = nnz(p, n)
    expect = 2 * 6 * d * (nnz_a + nnz_b)
    costs = pytest.importorskip("glrtheory.symbolic.costs")
    forms = costs.cost_forms(p)
    symbolic = float(costs.total_cost(p).subs(costs.N_SYM, n))     # exact, or the upper bound
    if isinstance(forms.nnz_a, costs.Bounds) or isinstance(forms.nnz_b, costs.Bounds):
        assert nnz_a + nnz_b <= symbolic + 1e-9
    else:
        assert symbolic == nnz_a + nnz_b
    args = as_t(u, a, b, grad=True)
    with FlopCounterMode(display=False) as counter:
        glr_scan(*args, tables).sum().backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert counts["glrtheory.glr_scan"] == expect
    assert counts["glrtheory.glr_scan_backward"] == 2 * expect


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input_raises_glrerror(rng):
    p, tables, u, a, b = problem(rng, "power2", 10)
    ut, at, bt = as_t(u, a, b)
    cases = [
        lambda: glr_scan(ut.half(), at.half(), bt.half(), tables),
        lambda: glr_scan(ut.long(), at, bt, tables),
        lambda: glr_scan(ut.float(), at, bt, tables),
        lambda: glr_scan(u, at, bt, tables),
        lambda: glr_scan(ut, at[..., :-1], bt, tables),
        lambda: glr_scan(ut, at, bt[..., :5, :], tables),
        lambda: glr_scan(ut[..., :9, :], at, bt, tables),
        lambda: glr_scan(torch.zeros(3, 10, 3, dtype=torch.float64), at, bt, tables),
        lambda: glr_scan(ut, at, bt, tables[0]),
        lambda: glr_scan(ut, at, bt, (tables[0], tables[1] + 20)),
        lambda: glr_scan(ut, at, bt, (tables[0], np.where(tables[1] >= 0, np.arange(10)[:, None], -1))),
        lambda: glr_scan(ut, at, bt, (tables[0], tables[1][:, ::-1].copy())),
        lambda: glr_scan(ut, at, bt, (tables[0].astype(float), tables[1])),
        lambda: glr_scan(ut, at, bt, tables, chunk=0),
        lambda: glr_scan(ut[:, :0], at, bt, tables),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(GLRError):
            case()
            pytest.fail(f"case {i} did not raise")


# -- the layer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks", "attention", "ssm", "window:3+quadratic"])
@pytest.mark.parametrize("readout", [False, True])
@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_mixer_step_equals_forward(spec, readout, scores):
    torch.manual_seed(0)
    mixer = GLRMixer(spec, 16, 2, readout=readout, chunk=8, scores=scores, dtype=torch.float64)
    for T in (1, 2, 37):
        x = torch.randn(3, T, 16, dtype=torch.float64)
        with torch.no_grad():
            y = mixer(x)
            cache = mixer.init_cache(T)
            steps = torch.stack([mixer.step(x[:, t], cache) for t in range(T)], 1)
        assert rel_err(steps.numpy(), y.numpy()) <= 1e-12


@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks", "window:4+ssm", "kron:1,11"])
def test_mixer_cache_holds_exactly_the_live_set(spec):
    from glrtheory.analysis import live_profile

    T = 70
    mixer = GLRMixer(spec, 8, 2, dtype=torch.float64)
    cache = mixer.init_cache(T)
    live = live_profile(mixer.pattern, T)
    sizes = []
    with torch.no_grad():
        for t in range(T):
            mixer.step(torch.randn(2, 8, dtype=torch.float64), cache)
            sizes.append(cache.size)
    assert sizes == live.tolist()


def test_mixer_coefficients_are_convex_so_states_stay_bounded():
    torch.manual_seed(1)
    mixer = GLRMixer("power2+window:3", 8, 2, dtype=torch.float64)
    x = 30 * torch.randn(2, 1000, 8, dtype=torch.float64)
    with torch.no_grad():
        u, a, b, _ = mixer.coefficients(x)
        assert (a >= 0).all() and (b >= 0).all()
        assert torch.allclose(a.sum(-1) + b.sum(-1), torch.ones(()).double())
        h = glr_scan(u.transpose(1, 2), a.transpose(1, 2), b.transpose(1, 2), mixer.tables(1000))
    assert h.abs().amax() <= u.abs().amax() * (1 + 1e-12)


def test_mixer_trains():
    torch.manual_seed(2)
    mixer = GLRMixer("fenwick", 8, 2, readout=True)
    x = torch.randn(2, 50, 8)
    mixer(x).pow(2).mean().backward()
    grads = [q.grad for q in mixer.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def _sdpa_reference(mixer, x, mask):
    """The mixer's own projections through torch's scaled_dot_product_attention (heads second)."""
    B, T, _ = x.shape
    heads = lambda y: y.view(B, T, mixer.n_heads, -1).transpose(1, 2)  # noqa: E731
    q, k, v = (heads(f(x)) for f in (mixer.score_queries, mixer.score_keys, mixer.values))
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return mixer.out(o.transpose(1, 2).reshape(B, T, -1))


@pytest.mark.parametrize("T", [1, 2, 63, 200])
@pytest.mark.parametrize("window", [None, 1, 5, 64])
def test_query_key_mixer_is_softmax_attention(T, window):
    """``GLRMixer("attention", scores="query_key")`` is causal softmax attention and ``window:W`` is
    sliding-window attention: SDPA with the causal (band) mask, same projections, float64."""
    torch.manual_seed(T)
    spec = "attention" if window is None else f"window:{window}"
    mixer = GLRMixer(spec, 24, 3, scores="query_key", dtype=torch.float64)
    x = torch.randn(2, T, 24, dtype=torch.float64)
    t = torch.arange(T)
    lag = t[:, None] - t[None, :]
    mask = (lag >= 0) & (lag < (window or T))
    with torch.no_grad():
        assert rel_err(mixer(x).numpy(), _sdpa_reference(mixer, x, mask).numpy()) <= 1e-12


def _copy(mixer, dtype):
    other = GLRMixer(mixer.pattern, mixer.d_model, mixer.n_heads, readout=mixer.readout,
                     scores=mixer.score_mode, dtype=dtype)
    other.load_state_dict(mixer.state_dict())
    return other


@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("readout", [False, True])
def test_mixer_low_precision_and_autocast(scores, readout):
    """bf16 / fp16 parameters and CPU autocast: forward and step agree, outputs keep the input's dtype,
    and both match the float64 layer within the bf16 tolerance (the scan computes in float32)."""
    torch.manual_seed(4)
    ref = GLRMixer("power2+window:2", 16, 2, readout=readout, scores=scores, dtype=torch.float64)
    x = torch.randn(2, 21, 16, dtype=torch.float64)
    with torch.no_grad():
        y_ref = ref(x).numpy()
    runs = [(_copy(ref, dt), dt, False) for dt in (torch.bfloat16, torch.float16)]
    runs.append((_copy(ref, torch.float32), torch.float32, True))
    for mixer, dtype, autocast in runs:
        xd = x.to(dtype)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = mixer(xd)
            cache = mixer.init_cache(21)
            steps = torch.stack([mixer.step(xd[:, t], cache) for t in range(21)], 1)
        assert y.dtype == steps.dtype == dtype, (dtype, autocast)
        assert rel_err(y.float().numpy(), y_ref) <= 2e-2, (dtype, autocast)
        assert rel_err(steps.float().numpy(), y.float().numpy()) <= 1e-2, (dtype, autocast)
    mixer = _copy(ref, torch.bfloat16)
    mixer(x.to(torch.bfloat16)).float().square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all()
               for p in mixer.parameters())


@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks:4", "attention", "window:3+quadratic"])
@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_forward_with_cache_prefills_then_steps(spec, scores):
    """``forward(prompt, cache=...)`` then ``step`` equals one forward over the whole sequence, and the
    cache holds exactly the live set after the prompt."""
    from glrtheory.analysis import live_profile

    torch.manual_seed(5)
    T = 40
    mixer = GLRMixer(spec, 16, 2, readout=True, scores=scores, chunk=8, dtype=torch.float64)
    x = torch.randn(3, T, 16, dtype=torch.float64)
    live = live_profile(mixer.pattern, T)
    with torch.no_grad():
        y = mixer(x)
        for L in (1, 17, T):
            cache = mixer.init_cache(T)
            prompt = mixer(x[:, :L], cache=cache)
            assert cache.size == live[L - 1]
            rest = [mixer.step(x[:, t], cache) for t in range(L, T)]
            out = torch.cat([prompt] + [r[:, None] for r in rest], 1)
            assert rel_err(out.numpy(), y.numpy()) <= 1e-12, L


def test_cache_refuses_another_pattern_or_batch():
    power2, fenwick = GLRMixer("power2", 8, 2), GLRMixer("fenwick", 8, 2)
    x = torch.randn(2, 8)
    with torch.no_grad():
        with pytest.raises(GLRError, match="pattern"):
            power2.step(x, fenwick.init_cache(10))
        cache = power2.init_cache(10)
        power2.step(x, cache)
        with pytest.raises(GLRError, match="batch"):
            power2.step(torch.randn(3, 8), cache)
        with pytest.raises(GLRError, match="fresh"):
            power2(torch.randn(2, 3, 8), cache=cache)
        with pytest.raises(GLRError, match="10 tokens"):
            power2(torch.randn(2, 11, 8), cache=power2.init_cache(10))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_mixer_without_cuda_is_a_clear_error():
    with pytest.raises(GLRError, match="CUDA"):
        GLRMixer("power2", 8, 2, device="cuda")


def test_mixer_table_limit_names_no_argument_the_user_cannot_pass():
    mixer = GLRMixer("attention", 8, 2)
    with pytest.raises(GLRError) as err:
        mixer.init_cache(2**16)
    assert "max_entries" not in str(err.value) and "65536" in str(err.value)


def test_query_key_mixer_learns_associative_recall():
    """Two layers (embedding, pre-norm GLRMixer("attention", scores="query_key") and MLP blocks, head)
    learn 4-pair associative recall (``k1 v1 .. k4 v4 q -> v``, 16 keys, 16 values) to >= 0.9 accuracy
    on fresh held-out sequences within 300 Adam steps of batch 64 (seeds fixed; ~150 steps needed)."""
    from torch import nn

    pairs, n_keys, n_vals, d = 4, 16, 16, 64
    gen = torch.Generator().manual_seed(1)

    def batch(n):
        keys = torch.argsort(torch.rand(n, n_keys, generator=gen), 1)[:, :pairs]
        vals = torch.randint(n_keys, n_keys + n_vals, (n, pairs), generator=gen)
        pick = torch.randint(0, pairs, (n,), generator=gen)
        rows = torch.arange(n)
        seq = torch.cat([torch.stack([keys, vals], 2).flatten(1), keys[rows, pick][:, None]], 1)
        return seq, vals[rows, pick]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.mix = GLRMixer("attention", d, 4, scores="query_key")
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            x = x + self.mix(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    torch.manual_seed(0)
    embed, pos = nn.Embedding(n_keys + n_vals, d), nn.Parameter(0.1 * torch.randn(2 * pairs + 1, d))
    model = nn.Sequential(Block(), Block())
    head = nn.Linear(d, n_keys + n_vals)
    params = [pos, *embed.parameters(), *model.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    logits = lambda seq: head(model(embed(seq) + pos)[:, -1])  # noqa: E731
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # tiny matrices: threads only contend on a shared machine
    try:
        acc = 0.0
        for it in range(300):
            seq, target = batch(64)
            loss = nn.functional.cross_entropy(logits(seq), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if it % 25 == 24:
                with torch.no_grad():
                    seq, target = batch(1000)
                    acc = (logits(seq).argmax(-1) == target).float().mean().item()
                if acc >= 0.95:
                    break
    finally:
        torch.set_num_threads(threads)
    assert acc >= 0.9, f"accuracy {acc:.3f} after {it + 1} steps"


def test_mixer_bad_input():
    mixer = GLRMixer("power2", 8, 2)
    for case in (lambda: mixer(torch.randn(2, 5, 7)), lambda: mixer(torch.randn(5, 8)),
                 lambda: GLRMixer("power2", 10, 3), lambda: GLRMixer("power2", 0, 1),
                 lambda: GLRMixer("nonsense", 8, 2), lambda: GLRMixer("power2", 8, 2, scores="qk"), lambda: mixer.step(torch.randn(2, 8, 1), mixer.init_cache(3))):
        with pytest.raises(GLRError):
            case()
    cache = mixer.init_cache(2)
    with torch.no_grad():
        mixer.step(torch.randn(1, 8), cache)
        mixer.step(torch.randn(1, 8), cache)
        with pytest.raises(GLRError):
            mixer.step(torch.randn(1, 8), cache)


# -- CUDA -----------------------------------------------------------------------------------------
@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks", "attention", "exponent:0.5", "window:3+kron:1,11"])
@pytest.mark.parametrize("n", LENGTHS + [4097])
def test_cuda_scan_matches_reference(rng, spec, n):
    p, tables, u, a, b = problem(rng, spec, n, batch=(2, 2), d=8)
    ref = solve(p, a, b, u)
    for dtype in (torch.float64, torch.float32):
        out = glr_scan(*as_t(u, a, b, dtype=dtype, device="cuda"), tables, chunk=64)
        assert out.is_cuda and rel_err(out.cpu().numpy(), ref) <= TOL[dtype], (spec, n, dtype)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("spec", ["power2+window:3", "fenwick", "blocks"])
def test_cuda_gradients_match_cpu(rng, spec):
    p, tables, u, a, b = problem(rng, spec, 200)
    g = rng.standard_normal(u.shape)
    grads = []
    for device in ("cpu", "cuda"):
        args = as_t(u, a, b, device=device, grad=True)
        (glr_scan(*args, tables, chunk=32) * torch.tensor(g, device=device)).sum().backward()
        grads.append([x.grad.cpu().numpy() for x in args])
    for mine, ref in zip(*grads):
        assert rel_err(mine, ref) <= 1e-12


@pytest.mark.gpu
@cuda
def test_cuda_graph_replays_with_new_inputs(rng):
    """The chunk loop is captured once per structure and replayed: later calls with other data (forward
    and backward) still match the reference, and equal the eager loop."""
    from glrtheory.kernels import torch_algorithms

    for _ in range(3):
        p, tables, u, a, b = problem(rng, "power2+window:2", 700, batch=(3,), d=16)
        ref = solve(p, a, b, u)
        g = rng.standard_normal(u.shape)
        grads = []
        for graphs in (True, False):
            torch_algorithms.CUDA_GRAPHS = graphs
            try:
                args = as_t(u, a, b, device="cuda", grad=True)
                out = glr_scan(*args, tables, chunk=64)
                (out * torch.tensor(g, device="cuda")).sum().backward()
            finally:
                torch_algorithms.CUDA_GRAPHS = True
            assert rel_err(out.detach().cpu().numpy(), ref) <= 1e-12
            grads.append([x.grad.cpu().numpy() for x in args])
        for replayed, eager in zip(*grads):
            assert rel_err(replayed, eager) <= 1e-13


@pytest.mark.gpu
@cuda
def test_cuda_gradcheck(rng):
    p, tables, u, a, b = problem(rng, "fenwick+window:2", 9)
    assert gradcheck(tables, *as_t(u, a, b, device="cuda", grad=True))


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("readout", [False, True])
def test_cuda_mixer_step_equals_forward(readout):
    torch.manual_seed(3)
    mixer = GLRMixer("power2", 16, 2, readout=readout, dtype=torch.float64, device="cuda")
    x = torch.randn(2, 45, 16, dtype=torch.float64, device="cuda")
    with torch.no_grad():
        y = mixer(x)
        cache = mixer.init_cache(45)
        steps = torch.stack([mixer.step(x[:, t], cache) for t in range(45)], 1)
    assert rel_err(steps.cpu().numpy(), y.cpu().numpy()) <= 1e-12


@pytest.mark.gpu
@cuda
def test_cuda_device_mismatch_raises(rng):
    p, tables, u, a, b = problem(rng, "power2", 10)
    ut, at, bt = as_t(u, a, b)
    with pytest.raises(GLRError):
        glr_scan(ut.cuda(), at, bt, tables)
