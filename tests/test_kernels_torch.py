"""The torch op ``glr_scan`` (every backend against the one-screen oracle ``naive``, which is checked
against the float64 reference ``glrtheory.solve``) and the layer ``GLRMixer``.

CPU tests run everywhere; tests marked ``gpu`` need CUDA and are skipped without it.
"""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern, solve  # noqa: E402
from glrtheory.kernels.cpu import scan as numba_scan  # noqa: E402
from glrtheory.kernels.decode import DecodeCache  # noqa: E402
from glrtheory.kernels.scan import chunk as chunk_backend  # noqa: E402
from glrtheory.kernels.scan.naive import naive_glr_scan  # noqa: E402
from glrtheory.kernels.scan.op import BACKENDS, backend_module  # noqa: E402
from glrtheory.kernels.scan.plan import entries, scan_plan, transpose  # noqa: E402
from glrtheory.kernels.torch import GLRMixer, glr_scan  # noqa: E402
from glrtheory.patterns.tables import IndexTables  # noqa: E402
from tests.helpers import BUILTIN_SPECS, rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

LENGTHS = [1, 2, 63, 1000]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def heads_second(x):
    """``[B, T, H, k] <-> [B, H, T, k]`` (numpy), between glr_scan's layout and solve's ``[..., n, d]``."""
    return np.ascontiguousarray(np.swapaxes(x, 1, 2))


def problem(rng, spec, n, B=2, H=2, d=3):
    """Fresh random (never zero) inputs in the layout of glr_scan, and the float64 reference states;
    B rows scaled so that sum_j |b[t, j]| < 1."""
    p = Pattern.from_spec(spec)
    tables = p.tables(n)
    a_idx, b_idx = tables
    u = rng.standard_normal((B, n, H, d))
    a = rng.uniform(0.5, 1.5, (B, n, H, a_idx.shape[1])) * rng.choice([-1, 1], (B, n, H, a_idx.shape[1]))
    b = rng.uniform(-1, 1, (B, n, H, b_idx.shape[1])) / max(1, b_idx.shape[1])
    ref = heads_second(solve(p, heads_second(a), heads_second(b), heads_second(u)))
    return tables, u, a, b, ref


def as_t(*xs, dtype=torch.float64, device="cpu", grad=False):
    return [torch.tensor(x, dtype=dtype, device=device, requires_grad=grad) for x in xs]


def test_importing_glrtheory_does_not_import_torch():
    code = "import sys, glrtheory, glrtheory.kernels; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- forward --------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", BUILTIN_SPECS)
@pytest.mark.parametrize("n", LENGTHS)
def test_scan_matches_reference(rng, spec, n):
    tables, u, a, b, ref = problem(rng, spec, n)
    for dtype in (torch.float64, torch.float32):
        out = glr_scan(*as_t(u, a, b, dtype=dtype), tables, chunk=16)
        assert out.dtype == dtype and out.shape == ref.shape
        assert rel_err(out.numpy(), ref) <= TOL[dtype], (spec, n, dtype)


@pytest.mark.parametrize("spec", ["power2", "fenwick+window:2", "blocks:4", "attention", "kron:1,11"])
@pytest.mark.parametrize("n", [1, 2, 63])
def test_naive_oracle_matches_solve(rng, spec, n):
    """The oracle itself against the independent float64 reference of the core."""
    tables, u, a, b, ref = problem(rng, spec, n)
    assert rel_err(naive_glr_scan(*as_t(u, a, b), tables).numpy(), ref) <= 1e-12


def torch_backends():
    """Every registered torch backend with a device it runs on here."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [(name, device) for name, entry in BACKENDS.items() for device in devices
            if device in entry.devices and backend_module(name) is not None]


@pytest.mark.parametrize("backend, device", torch_backends() + [("numba", "cpu")])
@pytest.mark.parametrize("spec", ["power2+window:3", "fenwick", "blocks", "quadratic", "exponent:0.5", "ssm",
                                  "window:9+lags:5"])
@pytest.mark.parametrize("n", [1, 2, 63, 200])
def test_backend_matches_naive(rng, backend, device, spec, n):
    """fla-style: each backend's output, and its gradients for a random upstream gradient, against the
    naive oracle on the same inputs (grads cleared in between); outputs of the NaN-free kind only pass.
    ``numba`` (numpy API, forward only) is held against the same oracle."""
    tables, u, a, b, _ = problem(rng, spec, n)
    dtypes = [torch.float64] if backend == "naive" else [        # triton takes no float64
        d for d in (torch.float64, torch.float32) if backend == "numba" or d in backend_module(backend).DTYPES]
    for dtype in dtypes:
        args = as_t(u, a, b, dtype=dtype, device=device, grad=True)
        ref = naive_glr_scan(*args, tables)
        if backend == "numba":
            out = numba_scan(*(heads_second(x.detach().numpy()) for x in args), tables)
            assert rel_err(heads_second(out), ref.detach().numpy()) <= TOL[dtype]
            continue
        g = torch.randn_like(ref)
        ref_grads = [torch.zeros_like(x) if r is None else r                 # b unused when B is empty
                     for x, r in zip(args, torch.autograd.grad(ref, args, g, allow_unused=True))]
        out = glr_scan(*args, tables, backend=backend, chunk=16)
        grads = torch.autograd.grad(out, args, g)
        assert out.dtype == dtype and out.device == args[0].device
        assert rel_err(out.detach().cpu().numpy(), ref.detach().cpu().numpy()) <= TOL[dtype], "h"
        for name, mine, theirs in zip("uab", grads, ref_grads):
            assert rel_err(mine.cpu().numpy(), theirs.cpu().numpy()) <= 10 * TOL[dtype], name


@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks", "kron:1,11", "exponent:1", "window:5+ssm"])
@pytest.mark.parametrize("n", [1, 2, 63, 200])
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_substitution_writes_every_state(rng, spec, n, chunk):
    """Chunk by chunk (n not a multiple of C too) into NaN-filled outputs equals the token-by-token
    reference; chunk=1 is the token-by-token substitution itself. Also the backward substitution
    ``Z = (I - B)^{-T} G`` over the time-reversed transposed table."""
    import scipy.linalg

    from glrtheory.recurrence import dense_coefficients

    tables, u, a, b, ref = problem(rng, spec, n, B=2, H=1)
    u, a, b, ref = (x[:, :, 0] for x in (u, a, b, ref))          # one head: [N, n, k]
    plan = scan_plan(tables, torch.device("cpu"))
    ut, at, bt = as_t(u, a, b)
    N = u.shape[0]
    nan = torch.full((N, n, 3), torch.nan, dtype=torch.float64)
    x = chunk_backend.apply(at.reshape(N, -1)[:, plan.a_slot], plan.a_row, plan.a_src, ut, nan.clone())
    h = chunk_backend.substitute(x, bt.reshape(N, -1)[:, plan.b_slot], plan.b_row, plan.b_src, chunk, nan.clone())
    assert rel_err(h.numpy(), ref) <= 1e-12
    z = chunk_backend.substitute(ut.flip(1), bt.reshape(N, -1)[:, plan.bt_slot], plan.bt_row, plan.bt_src, chunk,
                                 nan.clone()).flip(1)
    _, B = dense_coefficients(*tables, a, b)
    z_ref = [scipy.linalg.solve_triangular(np.eye(n) - B[i], u[i], lower=True, trans="T") for i in range(N)]
    assert rel_err(z.numpy(), np.stack(z_ref)) <= 1e-12


def test_padded_slots_are_ignored(rng):
    tables, u, a, b, ref = problem(rng, "fenwick+window:4", 100)
    a[np.broadcast_to((tables[0] < 0)[None, :, None], a.shape)] = np.nan
    b[np.broadcast_to((tables[1] < 0)[None, :, None], b.shape)] = np.inf
    for backend in ("chunk", "naive"):
        assert rel_err(glr_scan(*as_t(u, a, b), tables, backend=backend).numpy(), ref) <= 1e-12


def test_batch_and_head_dims_of_coefficients_broadcast(rng):
    tables, u, a, b, _ = problem(rng, "power2", 50, B=3, H=2)
    a, b = a[:1], b[:, :, :1]                        # one batch row of a, one head of b
    full_a, full_b = np.broadcast_to(a, (3,) + a.shape[1:]), np.broadcast_to(b, b.shape[:2] + (2,) + b.shape[3:])
    ref = naive_glr_scan(*as_t(u, full_a, full_b), tables)
    ut, at, bt = as_t(u, a, b, grad=True)
    out = glr_scan(ut, at, bt, tables)
    assert out.shape == ref.shape and rel_err(out.detach().numpy(), ref.numpy()) <= 1e-12
    out.sum().backward()
    assert at.grad.shape == at.shape and bt.grad.shape == bt.shape


# -- tables and plans -----------------------------------------------------------------------------
def test_transposed_tables():
    n = 70
    tables = Pattern.from_spec("fenwick+window:3").tables(n)
    for side, idx, reverse in zip("ab", tables, (False, True)):
        e = entries(tables, side)
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


def test_plan_is_built_once_per_tables_object():
    tables = Pattern.from_spec("power2").tables(40)
    cpu = torch.device("cpu")
    assert scan_plan(tables, cpu) is scan_plan(tables, cpu)
    assert scan_plan(Pattern.from_spec("power2").tables(40), cpu) is not scan_plan(tables, cpu)


def test_index_tables_contract():
    """Pattern.tables gives read-only int32 IndexTables that unpack as the pair, with CSR entries,
    last uses and lag rows that agree with the tables (an independent loop over the rows)."""
    n = 50
    for spec in ("power2+window:2", "fenwick", "attention", "blocks:4"):
        p = Pattern.from_spec(spec)
        tables = p.tables(n)
        a_idx, b_idx = tables
        assert isinstance(tables, IndexTables) and tables.n == n and len(tables) == 2
        for side, idx in zip("ab", tables):
            assert idx.dtype == np.int32 and not idx.flags.writeable
            with pytest.raises(ValueError):
                idx.flags.writeable = True
            rows = [[int(s) for s in row if s >= 0] for row in idx]
            csr = tables.csr(side)
            assert [csr.src[csr.ptr[t]:csr.ptr[t + 1]].tolist() for t in range(n)] == rows
            assert np.array_equal(idx.ravel()[csr.slot], csr.src)
            last = [max([t for t in range(n) if s in rows[t]], default=-1) for s in range(n)]
            assert tables.last_use(side).tolist() == last
            lags = tables.lags(side)
            if lags is not None:
                assert rows == [sorted(t - l for l in lags if l <= t) for t in range(n)]
        with pytest.raises(AttributeError):
            tables.a_idx = None
    assert Pattern.from_spec("power2").tables(n).lags("b").tolist() == [1, 2, 4, 8, 16, 32]


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
    tables, u, a, b, _ = problem(rng, spec, n, B=1, H=2)
    assert gradcheck(tables, *as_t(u, a, b, grad=True))


def test_glr_scan_doctest():
    import doctest

    from glrtheory.kernels.scan import op

    result = doctest.testmod(op)
    assert result.failed == 0 and result.attempted >= 4


def test_opcheck():
    """torch.library's own checks of the custom op: schema, fake tensor, autograd registration."""
    tables, u, a, b, _ = problem(np.random.default_rng(1), "power2+window:2", 20)
    plan = scan_plan(tables, torch.device("cpu"))
    args = (*as_t(u, a, b, grad=True), list(plan), 8, "chunk")
    torch.library.opcheck(torch.ops.glrtheory.glr_scan.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


# -- FLOP counts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["power2", "fenwick", "attention", "blocks:8", "quadratic+window:3"])
def test_flop_counter_reports_exact_count(rng, spec):
    from torch.utils.flop_counter import FlopCounterMode

    from glrtheory.analysis import nnz

    n, d = 300, 5
    tables, u, a, b, _ = problem(rng, spec, n, B=2, H=3, d=d)
    p = Pattern.from_spec(spec)
    nnz_a, nnz_b = nnz(p, n)
    expect = 2 * 6 * d * (nnz_a + nnz_b)
    costs = pytest.importorskip("glrtheory.symbolic.costs")
    forms = costs.cost_forms(p)
    total = getattr(costs, "total_cost_bound", None) or costs.total_cost
    symbolic = float(total(p).subs(costs.N_SYM, n))     # exact, or the upper bound
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
def test_bad_input_raises_glrerror_naming_the_argument(rng):
    tables, u, a, b, _ = problem(rng, "power2", 10)
    ut, at, bt = as_t(u, a, b)
    cases = [
        (lambda: glr_scan(ut.half(), at.half(), bt.half(), tables), "float16 on cpu"),
        (lambda: glr_scan(ut.long(), at, bt, tables), "a has dtype"),
        (lambda: glr_scan(ut.float(), at, bt, tables), "a has dtype"),
        (lambda: glr_scan(u, at, bt, tables), "u must be a torch.Tensor"),
        (lambda: glr_scan(ut, at[..., :-1], bt, tables), "a must have shape"),
        (lambda: glr_scan(ut, at, bt[:, :5], tables), "b must have shape"),
        (lambda: glr_scan(ut[:, :9], at, bt, tables), "u must have shape"),
        (lambda: glr_scan(ut.transpose(1, 2), at, bt, tables), "u must have shape"),      # [B, H, T, D]
        (lambda: glr_scan(ut[:, :, 0], at, bt, tables), "u must have shape"),
        (lambda: glr_scan(ut, at.transpose(1, 2), bt, tables), "a must have shape"),
        (lambda: glr_scan(ut, at, bt, tables[0]), "pair"),
        (lambda: glr_scan(ut, at, bt, tables, chunk=0), "chunk"),
        (lambda: glr_scan(ut, at, bt, tables, backend="fast"), "backend"),
        (lambda: glr_scan(ut[:0], at, bt, tables), "u must have shape"),
    ]
    for i, (case, match) in enumerate(cases):
        with pytest.raises(GLRError, match=match):
            case()
            pytest.fail(f"case {i} did not raise")


def _bad_tables(tables):
    a_idx, b_idx = (np.array(x) for x in tables)
    n = a_idx.shape[0]
    shifted = b_idx + 20
    selfloop = np.where(b_idx >= 0, np.arange(n)[:, None], -1)
    unsorted = b_idx.copy()
    unsorted[9, :2] = b_idx[9, 1::-1]
    late = b_idx.copy()
    late[5] = [-1, 4] + [-1] * (late.shape[1] - 2)
    dup = b_idx.copy()
    dup[5, :2] = 3
    return [(a_idx, shifted), (a_idx, selfloop), (a_idx, unsorted), (a_idx, late), (a_idx, dup),
            (a_idx.astype(float), b_idx), (a_idx[:-1], b_idx), (a_idx[:, :, None], b_idx)]


def test_every_backend_rejects_the_same_bad_tables_with_the_same_error(rng):
    tables, u, a, b, _ = problem(rng, "power2", 10)
    ut, at, bt = as_t(u, a, b)
    runs = {"numba": lambda t: numba_scan(*(heads_second(x) for x in (u, a, b)), t),
            "decode": lambda t: DecodeCache(t, d=3, batch=(2, 2)),
            "tables": lambda t: IndexTables(*t)}
    runs.update({name: (lambda t, name=name: glr_scan(ut, at, bt, t, backend=name))
                 for name, device in torch_backends() if device == "cpu"})
    for bad in _bad_tables(tables):
        messages = set()
        for name, run in runs.items():
            with pytest.raises(GLRError) as err:
                run(bad)
            messages.add(str(err.value))
        assert len(messages) == 1, messages


# -- the layer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks", "attention", "ssm", "window:3+quadratic"])
@pytest.mark.parametrize("readout", [False, True])
@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("lag_bias", [False, True])
def test_mixer_step_equals_forward(spec, readout, scores, lag_bias):
    """Decoding step by step gives forward's output (with ``lag_bias``, a random one: the step looks it up from the
    lags ``t - s`` of the cache's sources, forward from the tables)."""
    mixer = _random_mixer(spec, 16, readout=readout, chunk=8, scores=scores, lag_bias=lag_bias)
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
        h = glr_scan(u, a, b, mixer.tables(1000))
    assert h.abs().amax() <= u.abs().amax() * (1 + 1e-12)


@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_mixer_coefficients_closed_form_for_one_slot_tables(scores):
    """ssm's tables are one slot wide (A: t itself; B: t - 1, none at t = 0): a = 1 - gamma, b = gamma with
    gamma = sigmoid(w_g . x_t) (the gate row of ``scores``), except a = 1, b = 0 at t = 0; and the scores of the
    slots get no gradient (a one-slot softmax is constant)."""
    torch.manual_seed(4)
    mixer = GLRMixer("ssm", 8, 2, scores=scores, dtype=torch.float64)
    x = torch.randn(3, 17, 8, dtype=torch.float64)
    _, a, b, _ = mixer.coefficients(x)
    rows = mixer.projection_rows("scores")
    gamma = torch.sigmoid(x @ mixer.in_proj.weight[rows][:2].T + mixer.score_bias[:2])
    gamma[:, 0] = 0
    assert torch.allclose(a[..., 0], 1 - gamma, rtol=0, atol=1e-15)
    assert torch.allclose(b[..., 0], gamma, rtol=0, atol=1e-15)
    (a.sum() + (b * torch.randn_like(b)).sum()).backward()
    grad = mixer.in_proj.weight.grad
    score_rows = grad[rows][2:] if scores == "source" else grad[mixer.projection_rows("score_keys")]
    assert torch.equal(score_rows, torch.zeros_like(score_rows))
    assert grad[rows][:2].abs().sum() > 0


@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("heads, timescales", [(1, (1.5, 1.5)), (4, (2, 1000)), (2, (1 + 2 ** -20, 64))])
def test_mixer_timescales_start_the_gates(scores, bias, heads, timescales):
    """With ``timescales = (lo, hi)``, at input 0 ssm's b[t] is head h's gate ``1 - 1 / tau_h``, tau_h = lo r^h with
    r^(H - 1) = hi / lo (lo for one head), and a = 1 - b; the other scores keep nn.Linear's start (within
    ``d_model^-1/2``); a timescale of 1 or less, or a reversed pair, is refused by name."""
    torch.manual_seed(6)
    mixer = GLRMixer("ssm", 8, heads, scores=scores, bias=bias, timescales=timescales, dtype=torch.float64)
    with torch.no_grad():
        _, a, b, _ = mixer.coefficients(torch.zeros(1, 3, 8, dtype=torch.float64))
    lo, hi = timescales
    tau = np.array([lo * (hi / lo) ** (h / max(heads - 1, 1)) for h in range(heads)])
    assert np.allclose(b[0, 1:, :, 0].numpy(), 1 - 1 / tau, rtol=1e-12, atol=0)
    assert torch.equal(a[0, 1:, :, 0], 1 - b[0, 1:, :, 0])
    assert torch.equal(a[0, 0, :, 0], torch.ones(heads, dtype=a.dtype))
    scores_bias = mixer.in_proj.bias[mixer.projection_rows("scores")] if bias else mixer.score_bias
    assert (scores_bias[heads:].abs() <= 8 ** -0.5).all()
    for bad, match in [((1, 5), "lie in"), ((0.5, 5), "lie in"), ((5, 2), "tau_min <= tau_max"), ((3,), "a pair")]:
        with pytest.raises(GLRError, match=match):
            GLRMixer("ssm", 8, heads, timescales=bad)


@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("bias", [False, True])
def test_mixer_projections_are_the_stacked_rows(scores, bias):
    """The stacked input projection (``_projections``): each name's part is ``x W_rows^T + c`` with its rows of
    ``in_proj`` (``projection_rows``) tiling them in the documented order and widths, its bias (``score_bias`` on
    the scores without ``bias``), float64; as nn.Linear's, weights and biases start within ``d_model^-1/2``."""
    torch.manual_seed(5)
    H, dk = 3, 4
    mixer = GLRMixer("fenwick", 12, H, readout=True, scores=scores, bias=bias, dtype=torch.float64)
    x = torch.randn(2, 9, 12, dtype=torch.float64)
    widths = dict(values=H * dk, keys=H * dk, queries=H * dk, scores=3 * H if scores == "source" else H)
    if scores == "query_key":
        widths.update(score_queries=H * dk, score_keys=H * dk)
    rows = [mixer.projection_rows(n) for n in widths]
    assert [(r.start, r.stop) for r in rows] == list(zip(np.cumsum([0, *widths.values()])[:-1],
                                                          np.cumsum(list(widths.values()))))
    assert mixer.in_proj.weight.shape == (sum(widths.values()), 12) and (mixer.in_proj.bias is None) == (not bias)
    assert (mixer.score_bias is None) == bias
    parts = mixer._projections(x)
    assert list(parts) == list(widths)
    W, c = mixer.in_proj.weight.detach().numpy(), mixer.in_proj.bias
    for name, r in zip(widths, rows):
        want = x.numpy() @ W[r].T
        if bias:
            want = want + c.detach().numpy()[r]
        elif name == "scores":
            want = want + mixer.score_bias.detach().numpy()
        assert np.allclose(parts[name].detach().numpy(), want, rtol=0, atol=1e-13), name
    params = [p for p in (mixer.in_proj.weight, mixer.in_proj.bias, mixer.score_bias) if p is not None]
    assert all(p.abs().max() <= 12 ** -0.5 for p in params)


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
    parts = mixer._projections(x)
    q, k, v = (heads(parts[name]) for name in ("score_queries", "score_keys", "values"))
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


def _random_mixer(spec, d_model, seed=0, **options):
    """A float64 ``GLRMixer`` of two heads drawn from ``seed``, its lag bias (where it has one) drawn too."""
    torch.manual_seed(seed)
    mixer = GLRMixer(spec, d_model, 2, dtype=torch.float64, **options)
    if mixer.lag_bias is not None:
        with torch.no_grad():
            mixer.lag_bias.normal_(0, 2)
    return mixer


def _copy(mixer, dtype):
    other = GLRMixer(mixer.pattern, mixer.d_model, mixer.n_heads, readout=mixer.readout,
                     scores=mixer.score_mode, lag_bias=mixer.lag_bias is not None, dtype=dtype)
    other.load_state_dict(mixer.state_dict())
    return other


@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("readout", [False, True])
def test_mixer_low_precision_and_autocast(scores, readout):
    """bf16 / fp16 parameters and CPU autocast: forward and step agree, outputs keep the input's dtype (under
    autocast the out projection's, bf16, as torch's layers), and both match the float64 layer within the bf16
    tolerance (the scan computes in float32)."""
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
        assert y.dtype == steps.dtype == (torch.bfloat16 if autocast else dtype), (dtype, autocast)
        assert rel_err(y.float().numpy(), y_ref) <= 2e-2, (dtype, autocast)
        assert rel_err(steps.float().numpy(), y.float().numpy()) <= 1e-2, (dtype, autocast)
    mixer = _copy(ref, torch.bfloat16)
    mixer(x.to(torch.bfloat16)).float().square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all()
               for p in mixer.parameters())


@pytest.mark.parametrize("spec", ["ssm", "power2"])
def test_readout_layer_hands_q_k_v_over_as_projected(monkeypatch, spec):
    """Under bf16 autocast a readout layer gives glr_readout q, k, v in bf16 (no float32 round trip) with a, b
    in float32, and its output enters the out projection in bf16 and leaves it so (no cast back); without
    autocast everything is float32."""
    from glrtheory.kernels import layers

    seen, real = [], layers.glr_readout
    monkeypatch.setattr(layers, "glr_readout", lambda *xs, **kw: seen.append([x.dtype for x in xs[:5]])
                        or real(*xs, **kw))
    mixer = GLRMixer(spec, 16, 2, readout=True)
    x = torch.randn(2, 40, 16)
    for autocast, low in ((True, torch.bfloat16), (False, torch.float32)):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = mixer(x)
        assert seen.pop() == [low] * 3 + [torch.float32] * 2 and y.dtype == low
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mixer(x)
    ref = _copy(mixer, torch.float64)(x.double())
    assert rel_err(y.detach().double().numpy(), ref.detach().numpy()) <= 2e-2


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "window:3+power2"])
@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("lag_bias", [False, True])
def test_readout_path_gradients_equal_the_state_path(monkeypatch, spec, scores, backend, lag_bias):
    """A readout layer's forward without a cache (``glr_readout`` with q unscaled, a times ``d_key^-1/2`` and b not
    zeroed in rows without B, such as ssm's first) gives the output and every parameter's gradient of the forward
    with a cache (the states ``glr_scan`` gives, read by the scaled q, with the gate zeroed there): in float64 by
    the torch ops, in float32 by the Triton kernels (the interpreter on the CPU) against the float64 state path."""
    from glrtheory.kernels.scan import readout
    if backend == "triton":
        pytest.importorskip("triton")
        real = readout.aligned_backend
        monkeypatch.setattr(readout, "aligned_backend", lambda _, *args: real("triton", *args))
    n, dtype = 70, torch.float64 if backend == "torch" else torch.float32
    mixer = _random_mixer(spec, 16, readout=True, scores=scores, chunk=16, lag_bias=lag_bias, seed=7)
    x = torch.randn(2, n, 16, dtype=torch.float64)
    grads = {}
    for path, layer in (("readout", _copy(mixer, dtype)), ("states", mixer)):
        y = layer(x.to(dtype)) if path == "readout" else layer(x, cache=layer.init_cache(n))
        y.double().square().sum().backward()
        grads[path] = [y.detach().double()] + [p.grad.double() for p in layer.parameters() if p.grad is not None]
    unread = spec == "ssm" and lag_bias            # ssm's one-slot tables never read the lag bias: no gradient
    assert len(grads["readout"]) == len(grads["states"]) == len(list(mixer.parameters())) + 1 - unread
    for got, want in zip(grads["readout"], grads["states"]):
        assert rel_err(got.numpy(), want.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("spec", ["power2", "fenwick", "blocks:4", "attention", "window:3+quadratic"])
@pytest.mark.parametrize("scores", ["source", "query_key"])
@pytest.mark.parametrize("lag_bias", [False, True])
def test_forward_with_cache_prefills_then_steps(spec, scores, lag_bias):
    """``forward(prompt, cache=...)`` then ``step`` equals one forward over the whole sequence (which runs
    ``glr_readout``; the prefill runs ``glr_scan``), and the cache holds exactly the live set after the prompt."""
    from glrtheory.analysis import live_profile

    T = 40
    mixer = _random_mixer(spec, 16, readout=True, scores=scores, chunk=8, lag_bias=lag_bias, seed=5)
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
        with pytest.raises(GLRError, match="n_heads"):
            power2.step(x, GLRMixer("power2", 8, 4).init_cache(10))
        with pytest.raises(GLRError, match="scores"):
            power2.step(x, GLRMixer("power2", 8, 2, scores="query_key").init_cache(10))
        cache = power2.init_cache(10)
        power2.step(x, cache)
        with pytest.raises(GLRError, match="batch"):
            power2.step(torch.randn(3, 8), cache)
        with pytest.raises(GLRError, match="fresh"):
            power2(torch.randn(2, 3, 8), cache=cache)
        with pytest.raises(GLRError, match="10 tokens"):
            power2(torch.randn(2, 11, 8), cache=power2.init_cache(10))
        with pytest.raises(GLRError, match="at least one token, got 0"):
            power2(torch.randn(2, 0, 8), cache=power2.init_cache(10))
        with pytest.raises(GLRError, match="step needs the cache of init_cache"):
            power2.step(x, None)
        with pytest.raises(GLRError, match="a decode horizon is limited to n <= 16777216"):
            power2.init_cache(2**24 + 1)
        power2.step(x, GLRMixer("power2", 8, 2).init_cache(10))          # another mixer of the same family: fine


def test_cache_refuses_another_user_pattern_of_the_same_name():
    """Patterns from sets are all named 'custom': a cache made for one is refused by a mixer of another (it stepped
    the cache's schedule and gave that pattern's outputs), and taken by a mixer of the same tables."""
    chain = Pattern.from_sets([[0], [1], [2], [3]], [[], [0], [1], [2]])
    star = Pattern.from_sets([[0], [1], [2], [3]], [[], [0], [0], [0]])
    assert chain.spec == star.spec == "custom"
    x = torch.randn(2, 8)
    with torch.no_grad():
        cache = GLRMixer(chain, 8, 2).init_cache(4)
        GLRMixer(chain, 8, 2).step(x, cache)
        GLRMixer(Pattern.from_sets([[0], [1], [2], [3]], [[], [0], [1], [2]]), 8, 2).step(x, cache)
        with pytest.raises(GLRError, match="another pattern named 'custom'"):
            GLRMixer(star, 8, 2).step(x, cache)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device, message", [
    ("cuda", r"'cuda' is not available \(this machine has 0 CUDA device"),
    (0, "names CUDA device 0; this machine has 0"),
    ("gpu", "unknown device 'gpu'; use auto, cpu or cuda"), ("meta", "unsupported device 'meta'"),
    (1.5, "device must be a string such as 'cpu'")])
def test_a_device_the_machine_lacks_is_a_clear_error(device, message):
    with pytest.raises(GLRError, match=message):
        GLRMixer("power2", 8, 2, device=device)


def test_mixer_refuses_inputs_of_another_dtype_or_device():
    """Without autocast x must have the mixer's dtype (torch's matmul said "expected m1 and m2 to have the same
    dtype"); under autocast float32 and bf16 inputs both run; a dtype that is no floating type is refused."""
    mixer = GLRMixer("power2", 8, 2)
    with pytest.raises(GLRError, match="x is torch.float64, the mixer torch.float32"):
        mixer(torch.randn(1, 5, 8, dtype=torch.float64))
    with pytest.raises(GLRError, match="x is torch.int64"):
        mixer(torch.ones(1, 5, 8, dtype=torch.int64))
    with pytest.raises(GLRError, match="x is torch.float16"), torch.no_grad():
        mixer.step(torch.randn(1, 8, dtype=torch.float16), mixer.init_cache(4))
    with pytest.raises(GLRError, match="x is on meta, the mixer on cpu"):
        mixer(torch.randn(1, 5, 8, device="meta"))
    with pytest.raises(GLRError, match="dtype must be a floating torch dtype, got torch.int32"):
        GLRMixer("power2", 8, 2, dtype=torch.int32)
    with pytest.raises(GLRError, match="readout must be True or False, got 'yes'"):
        GLRMixer("power2", 8, 2, readout="yes")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for dtype in (torch.float32, torch.bfloat16):
            assert mixer(torch.randn(1, 5, 8, dtype=dtype)).dtype == torch.bfloat16


def test_mixer_table_limit_names_no_argument_the_user_cannot_pass():
    mixer = GLRMixer("attention", 8, 2)
    with pytest.raises(GLRError) as err:
        mixer(torch.zeros(1, 2**16, 8))
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
                 lambda: GLRMixer("nonsense", 8, 2), lambda: GLRMixer("power2", 8, 2, scores="qk"),
                 lambda: mixer.step(torch.randn(2, 8, 1), mixer.init_cache(3))):
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
    tables, u, a, b, ref = problem(rng, spec, n, B=2, H=2, d=8)
    for dtype in (torch.float64, torch.float32):
        out = glr_scan(*as_t(u, a, b, dtype=dtype, device="cuda"), tables, chunk=64, backend="chunk")
        assert out.is_cuda and rel_err(out.cpu().numpy(), ref) <= TOL[dtype], (spec, n, dtype)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("spec", ["power2+window:3", "fenwick", "blocks"])
def test_cuda_gradients_match_cpu(rng, spec):
    tables, u, a, b, _ = problem(rng, spec, 200)
    g = rng.standard_normal(u.shape)
    grads = []
    for device in ("cpu", "cuda"):
        args = as_t(u, a, b, device=device, grad=True)
        (glr_scan(*args, tables, chunk=32, backend="chunk") * torch.tensor(g, device=device)).sum().backward()
        grads.append([x.grad.cpu().numpy() for x in args])
    for mine, ref in zip(*grads):
        assert rel_err(mine, ref) <= 1e-12


@pytest.mark.gpu
@cuda
def test_cuda_graph_replays_with_new_inputs(rng):
    """The chunk loop is captured once per structure and replayed: later calls with other data (forward
    and backward) still match the reference, and equal the eager loop."""
    for _ in range(3):
        tables, u, a, b, ref = problem(rng, "power2+window:2", 700, B=3, H=1, d=16)
        g = rng.standard_normal(u.shape)
        grads = []
        for graphs in (True, False):
            chunk_backend.CUDA_GRAPHS = graphs
            try:
                args = as_t(u, a, b, device="cuda", grad=True)
                out = glr_scan(*args, tables, chunk=64, backend="chunk")
                (out * torch.tensor(g, device="cuda")).sum().backward()
            finally:
                chunk_backend.CUDA_GRAPHS = True
            assert rel_err(out.detach().cpu().numpy(), ref) <= 1e-12
            grads.append([x.grad.cpu().numpy() for x in args])
        for replayed, eager in zip(*grads):
            assert rel_err(replayed, eager) <= 1e-13


def graphed_forward(rng, n, device):
    """The chunk backend's forward (its loop replayed as a CUDA graph) of a fresh power2+window:2 problem of length n
    on device, checked against the float64 reference."""
    tables, u, a, b, ref = problem(rng, "power2+window:2", n, B=2, H=1, d=8)
    with torch.no_grad():
        out = glr_scan(*as_t(u, a, b, device=device), tables, chunk=64, backend="chunk")
    assert out.device == torch.device(device) and rel_err(out.cpu().numpy(), ref) <= 1e-12, device


@pytest.mark.gpu
@cuda
def test_cuda_graph_cache_reuses_and_evicts(rng, monkeypatch):
    """One captured graph per loop structure: a second call of a structure replays the very graph kept
    from the first; at most GRAPH_CACHE_SIZE are kept, the oldest evicted first."""
    monkeypatch.setattr(chunk_backend, "_GRAPHS", {})
    kept = chunk_backend._GRAPHS
    graphed_forward(rng, 300, "cuda:0")
    assert len(kept) == 1
    (first_key, first), = kept.items()
    graphed_forward(rng, 300, "cuda:0")
    assert list(kept) == [first_key] and kept[first_key] is first
    lengths = [301 + i for i in range(chunk_backend.GRAPH_CACHE_SIZE)]
    for i, n in enumerate(lengths):
        graphed_forward(rng, n, "cuda:0")
        assert len(kept) == min(i + 2, chunk_backend.GRAPH_CACHE_SIZE)
    assert first_key not in kept
    assert sorted(key[2] for key in kept) == lengths


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_cuda_graphs_are_kept_per_device(rng, monkeypatch):
    """Inputs on cuda:1 while cuda:0 is the current device, then on cuda:0, two calls each with fresh data: every
    call matches the reference (a graph captured on the wrong device's stream would record nothing and replay stale
    states), and each device keeps its own graph, its buffers on that device."""
    monkeypatch.setattr(chunk_backend, "_GRAPHS", {})
    assert torch.cuda.current_device() == 0
    for device in ("cuda:1", "cuda:1", "cuda:0", "cuda:0"):
        graphed_forward(rng, 300, device)
    assert sorted(key[-1] for key in chunk_backend._GRAPHS) == ["cuda:0", "cuda:1"]
    for key, (_, static, static_out) in chunk_backend._GRAPHS.items():
        assert {str(x.device) for x in (*static, static_out)} == {key[-1]}


@pytest.mark.gpu
@cuda
def test_cuda_gradcheck(rng):
    tables, u, a, b, _ = problem(rng, "fenwick+window:2", 9)
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
    tables, u, a, b, _ = problem(rng, "power2", 10)
    ut, at, bt = as_t(u, a, b)
    with pytest.raises(GLRError, match="a is on cpu"):
        glr_scan(ut.cuda(), at, bt, tables)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_cuda_readout_layer_step_never_waits_on_the_device(spec):
    """A training step of the readout layer under bf16 autocast (the Triton readout, T = 4096: fenwick solves for its
    64 boundary states) never synchronizes the host with the device (``set_sync_debug_mode("error")`` raises on
    one; torch calls that mode a prototype which does not catch every synchronizing call), and once warm it asks the
    driver for no new memory (``num_device_alloc``): either would let the host wait on the GPU each step."""
    torch.manual_seed(0)
    mixer = GLRMixer(spec, 256, 2, readout=True, device="cuda")
    x = torch.randn(2, 4096, 256, device="cuda", requires_grad=True)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = mixer(x)
        y.float().square().mean().backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()["num_device_alloc"]
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert torch.cuda.memory_stats()["num_device_alloc"] == before
    assert all(torch.isfinite(p.grad).all() for p in mixer.parameters())


def test_cache_refuses_another_batch_after_a_prompt():
    mixer = GLRMixer("power2", 8, 2)
    with torch.no_grad():
        cache = mixer.init_cache(5)
        mixer(torch.randn(2, 3, 8), cache=cache)
        assert cache.batch == 2
        with pytest.raises(GLRError, match="the cache holds a batch of 2, the input has 3"):
            mixer.step(torch.randn(3, 8), cache)


def test_coefficients_of_another_batch_size_are_named(rng):
    tables, u, a, b, _ = problem(rng, "power2", 10, B=2)
    ut, at, bt = as_t(u, a, b)
    with pytest.raises(GLRError, match=r"a must have shape \[batch=2"):
        glr_scan(ut, torch.cat([at, at]), bt, tables)
    with pytest.raises(GLRError, match=r"b must have shape \[batch=2"):
        glr_scan(ut, at, torch.cat([bt, bt, bt]), tables)


def test_flops_counts_both_tables():
    from glrtheory.analysis import nnz
    from glrtheory.kernels.torch import flops

    p = Pattern.from_spec("power2+window:3")
    nnz_a, nnz_b = nnz(p, 50)
    assert nnz_a != nnz_b
    assert flops(p.tables(50), 6, 5) == 2 * 6 * 5 * (nnz_a + nnz_b)


def test_plan_per_device_with_row_pointers():
    """A plan is kept per device; each side's ``ptr`` starts every row (``ptr[t + 1] - ptr[t]`` entries in row t)."""
    n = 40
    tables = Pattern.from_spec("fenwick+window:2").tables(n)
    cpu, meta = scan_plan(tables, "cpu"), scan_plan(tables, "meta")
    assert all(x.device.type == "cpu" for x in cpu) and all(x.device.type == "meta" for x in meta)
    for side in ("a", "b", "at", "bt"):
        ptr, row = getattr(cpu, side + "_ptr").numpy(), getattr(cpu, side + "_row").numpy()
        assert ptr[0] == 0 and np.array_equal(np.diff(ptr), np.bincount(row, minlength=n)), side


def test_gather_blocks_split_exactly(rng, monkeypatch):
    """With a small ``GATHER_BUDGET`` the row and entry blocks of ``apply`` and ``entry_dot`` split the tables:
    the states and every gradient still equal the oracle's."""
    monkeypatch.setattr(chunk_backend, "GATHER_BUDGET", 40)
    tables, u, a, b, _ = problem(rng, "fenwick+window:3", 50, B=2, H=1)
    args = as_t(u, a, b, grad=True)
    ref = naive_glr_scan(*args, tables)
    g = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, args, g)
    out = glr_scan(*args, tables, backend="chunk", chunk=8)
    assert rel_err(out.detach().numpy(), ref.detach().numpy()) <= 1e-12
    for name, mine, theirs in zip("uab", torch.autograd.grad(out, args, g), ref_grads):
        assert rel_err(mine.numpy(), theirs.numpy()) <= 1e-12, name


def test_an_empty_a_table_gives_zero_states(rng):
    n = 6
    tables = IndexTables(np.full((n, 1), -1, np.int32), (np.arange(n) - 1)[:, None].astype(np.int32))
    plan = scan_plan(tables, torch.device("cpu"))
    nan = torch.full((2, n, 3), torch.nan, dtype=torch.float64)
    x = chunk_backend.apply(torch.ones(2, 0, dtype=torch.float64), plan.a_row, plan.a_src,
                            torch.randn(2, n, 3, dtype=torch.float64), nan)
    assert torch.equal(x, torch.zeros_like(x))
    u, a, b = as_t(rng.standard_normal((2, n, 1, 3)), np.ones((2, n, 1, 1)), np.full((2, n, 1, 1), 0.5))
    for backend in ("chunk", "naive"):
        assert torch.equal(glr_scan(u, a, b, tables, backend=backend), torch.zeros_like(u)), backend


def test_every_backend_keeps_u_dtype(rng):
    """Outputs and gradients in u's dtype, the float64 oracle included."""
    tables, u, a, b, _ = problem(rng, "power2", 20)
    for name, device in torch_backends():
        for dtype in backend_module(name).DTYPES:
            args = as_t(u, a, b, dtype=dtype, device=device, grad=True)
            out = glr_scan(*args, tables, backend=name)
            assert out.dtype == dtype, (name, dtype)
            assert all(g.dtype == dtype for g in torch.autograd.grad(out.sum(), args)), (name, dtype)


def test_readout_queries_and_keys_come_from_their_named_rows():
    """A readout layer's q comes from ``projection_rows("queries")`` (scaled by d_key^-1/2) and its states
    u = k v^T from the ``keys`` and ``values`` rows: reference projections, float64."""
    torch.manual_seed(3)
    B, T, H, dk, dh = 2, 5, 2, 3, 4
    mixer = GLRMixer("fenwick", 8, H, d_head=dh, readout=True, d_key=dk, dtype=torch.float64)
    x = torch.randn(B, T, 8, dtype=torch.float64)
    W = mixer.in_proj.weight.detach()
    proj = lambda name, d: (x @ W[mixer.projection_rows(name)].T).view(B, T, H, d)  # noqa: E731
    q, k, v = proj("queries", dk), proj("keys", dk), proj("values", dh)
    with torch.no_grad():
        u, _, _, q_got = mixer.coefficients(x)
    assert torch.allclose(q_got, q * dk ** -0.5, rtol=0, atol=1e-13)
    assert torch.allclose(u, (k[..., :, None] * v[..., None, :]).flatten(-2), rtol=0, atol=1e-13)


@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_readout_mixer_with_d_key_unlike_d_head_steps_as_forward(scores):
    """d_key != d_head: step by step and forward with a cache equal the plain forward."""
    torch.manual_seed(6)
    T = 11
    mixer = GLRMixer("power2", 12, 2, d_head=5, readout=True, d_key=3, scores=scores, dtype=torch.float64)
    x = torch.randn(2, T, 12, dtype=torch.float64)
    with torch.no_grad():
        y = mixer(x)
        cache = mixer.init_cache(T)
        steps = torch.stack([mixer.step(x[:, t], cache) for t in range(T)], 1)
        y_cached = mixer(x, cache=mixer.init_cache(T))
    assert rel_err(steps.numpy(), y.numpy()) <= 1e-12
    assert rel_err(y_cached.numpy(), y.numpy()) <= 1e-12


@pytest.mark.skipif(torch.cuda.is_available(), reason="nan_scratch fills on the CPU only")
def test_uninitialized_allocations_are_nan_in_these_tests():
    """The module's ``nan_scratch`` mark is in force: each way the kernels allocate uninitialized memory gives NaN
    (an int tensor is left as it is)."""
    x = torch.zeros(2, 3)
    for t in (torch.empty(4), torch.empty_like(x), x.new_empty(5), torch.empty_strided((2, 2), (2, 1))):
        assert t.isnan().all()
    assert torch.empty(3, dtype=torch.int64).dtype == torch.int64
