"""``glr_readout`` (``kernels/scan/readout.py``) unit by unit, against a reference written out here: the matrix
states ``H_t = sum_j a[t, j] k_s v_s^T (s = A_j(t)) + sum_j b[t, j] H_{B_j(t)}`` and ``o_t = q_t^T H_t`` token by
token in float64 numpy (``naive``), on fresh random inputs at lengths 1, 2, 63 and a few hundred; the checks' whole
messages; which algorithm, chunk, layout, implementation and dtypes each call is given (``_choice``); the choice
kept per signature (mutation run 19, docs/mutation.md)."""
import functools
import importlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.kernels.scan import readout, readout_aligned, readout_blocks  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout  # noqa: E402
from glrtheory.kernels.scan.readout_plan import aligned_layout, over_memory  # noqa: E402
from glrtheory.patterns.tables import IndexTables  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch", "one_torch_thread")

TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}
ALGORITHMS = ("chunked_aligned", "direct", "tiled_mixing")


def naive(q, k, v, a, b, tables) -> np.ndarray:
    """float64 ``o_t = q_t^T H_t`` by the recurrence, one token at a time (module docstring); a, b broadcast over
    batch and heads; slots with index -1 skipped."""
    q, k, v, a, b = (np.asarray(x.detach().double() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
                     for x in (q, k, v, a, b))
    B, T, H, dk = q.shape
    dv = v.shape[-1]
    a = np.broadcast_to(a, (B, T, H, a.shape[-1]))
    b = np.broadcast_to(b, (B, T, H, b.shape[-1]))
    a_idx, b_idx = (np.asarray(x) for x in tables)
    states = np.zeros((T, B, H, dk, dv))
    out = np.empty((B, T, H, dv))
    for t in range(T):
        h = np.zeros((B, H, dk, dv))
        for j, s in enumerate(a_idx[t]):
            if s >= 0:
                h += a[:, t, :, j, None, None] * k[:, s, :, :, None] * v[:, s, :, None, :]
        for j, s in enumerate(b_idx[t]):
            if s >= 0:
                h += b[:, t, :, j, None, None] * states[s]
        states[t] = h
        out[:, t] = np.einsum("bhk,bhkv->bhv", q[:, t], h)
    return out


def draw(rng, tables, B=2, H=2, dk=3, dv=4, a_shape=None, dtype=torch.float64, coef_dtype=None):
    """Fresh random q, k, v, a, b as tensors (a, b of ``a_shape``'s batch and heads when given), never zero;
    ``sum_j |b[t, j]| < 1``."""
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    T = tables.n
    cb, ch = a_shape or (B, H)
    q, k = rng.standard_normal((2, B, T, H, dk))
    v = rng.standard_normal((B, T, H, dv))
    a = rng.uniform(0.5, 1.5, (cb, T, ch, wa)) * rng.choice([-1, 1], (cb, T, ch, wa))
    b = rng.uniform(-1, 1, (cb, T, ch, wb)) / max(1, wb)
    coef = coef_dtype or dtype
    return [torch.tensor(x, dtype=dtype) for x in (q, k, v)] + [torch.tensor(x, dtype=coef) for x in (a, b)]


def zeros(shape, dtype=torch.float32):
    """A tensor of that shape without its memory (the checks and the choice read shapes only)."""
    return torch.zeros((), dtype=dtype).expand(shape)


def triton_readout():
    """The Triton readout's module (the tests that need it skip without triton)."""
    pytest.importorskip("triton")
    from glrtheory.kernels.scan import readout_triton
    return readout_triton


def same_layout(x, y) -> bool:
    """Two chunk layouts with the same fields (the tables aside)."""
    return x._fields == y._fields and all(np.array_equal(getattr(x, f), getattr(y, f)) for f in x._fields
                                          if f != "tables")


def allowed(tables) -> list:
    """The algorithms ``glr_readout`` takes for these tables (direct only without B)."""
    return [x for x in ALGORITHMS if x != "direct" or not (tables.b_idx >= 0).any()]


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "window:3", "power2", "attention", "blocks:16"])
@pytest.mark.parametrize("n", [1, 2, 63, 300])
def test_every_algorithm_equals_the_recurrence(rng, spec, n):
    """Each algorithm the tables allow, the default choice, and chunks of 5 and 64, in float64 (1e-10) and
    float32 (1e-5), against ``naive``; the output has q's dtype and v's shape."""
    tables = Pattern.from_spec(spec).tables(n)
    xs = draw(rng, tables)
    ref = naive(*xs, tables)
    runs = [(None, None)] + [(algorithm, chunk) for algorithm in allowed(tables) for chunk in (5, None)]
    for dtype in (torch.float64, torch.float32):
        for algorithm, chunk in runs:
            out = glr_readout(*(x.to(dtype) for x in xs), tables, chunk=chunk, algorithm=algorithm)
            assert out.dtype == dtype and out.shape == xs[2].shape
            assert rel_err(out.double(), ref) <= TOL[dtype], (dtype, algorithm, chunk)


@pytest.mark.parametrize("a_shape", [(1, 3), (3, 1), (1, 1)])
@pytest.mark.parametrize("spec", ["ssm", "window:3", "power2"])
@pytest.mark.parametrize("n", [3, 63])
def test_coefficients_shared_by_batch_or_heads(rng, a_shape, spec, n):
    """a and b of batch 1 or heads 1 (or both) with q, k, v of batch 3 and 3 heads (at T = 3 too, and window:3's a
    3 slots wide: no size of another axis stands in for batch or heads): each algorithm equals the recurrence on the
    broadcast coefficients."""
    tables = Pattern.from_spec(spec).tables(n)
    xs = draw(rng, tables, B=3, H=3, a_shape=a_shape)
    ref = naive(*xs, tables)
    for algorithm in allowed(tables):
        out = glr_readout(*xs, tables, chunk=16, algorithm=algorithm)
        assert rel_err(out, ref) <= TOL[torch.float64], algorithm


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_keep_their_dtype(rng, low, n=63):
    """bf16 / fp16 q, k, v with float32 a, b (a layer under autocast), and all five in bf16 / fp16: the output in
    q's dtype for each algorithm, within the bf16 tolerance of the recurrence on the rounded inputs."""
    for spec in ("ssm", "window:3"):
        tables = Pattern.from_spec(spec).tables(n)
        for coef in (torch.float32, low):
            xs = draw(rng, tables, dtype=low, coef_dtype=coef)
            ref = naive(*xs, tables)
            for algorithm in allowed(tables):
                out = glr_readout(*xs, tables, chunk=16, algorithm=algorithm)
                assert out.dtype == low and rel_err(out.double(), ref) <= TOL[low], (spec, coef, algorithm)


def test_autocast_leaves_float64_alone_and_rounds_float32_products(rng, n=63):
    """Under CPU autocast(bfloat16) float64 inputs stay within 1e-10 of the recurrence for every algorithm, and
    float32 inputs come back float32 within the bf16 tolerance."""
    tables = Pattern.from_spec("ssm").tables(n)
    xs = draw(rng, tables)
    ref = naive(*xs, tables)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for algorithm in allowed(tables):
            out = glr_readout(*xs, tables, chunk=16, algorithm=algorithm)
            assert out.dtype == torch.float64 and rel_err(out, ref) <= TOL[torch.float64], algorithm
            out = glr_readout(*(x.float() for x in xs), tables, chunk=16, algorithm=algorithm)
            assert out.dtype == torch.float32 and rel_err(out.double(), ref) <= TOL[torch.bfloat16], algorithm


def test_aligned_dtypes():
    """``(solve, product)``: float64 for float64 (under autocast too); else a float32 solve and products in x's
    dtype, or in the autocast dtype when autocast is on for x's device."""
    x = lambda dtype: torch.zeros(1, dtype=dtype)  # noqa: E731
    f64, f32, bf16, f16 = torch.float64, torch.float32, torch.bfloat16, torch.float16
    assert readout.aligned_dtypes(x(f64)) == (f64, f64)
    assert readout.aligned_dtypes(x(f32)) == (f32, f32)
    assert readout.aligned_dtypes(x(bf16)) == (f32, bf16)
    assert readout.aligned_dtypes(x(f16)) == (f32, f16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert readout.aligned_dtypes(x(f32)) == (f32, bf16)
        assert readout.aligned_dtypes(x(f16)) == (f32, bf16)
        assert readout.aligned_dtypes(x(f64)) == (f64, f64)
    with torch.autocast("cpu", dtype=torch.float16):
        assert readout.aligned_dtypes(x(f32)) == (f32, f16)


def test_naive_readout_is_the_recurrence(rng):
    """The module's materializing reference equals ``naive`` (random hand-made rows, B reaching far back)."""
    a_idx = np.array([[0, -1], [0, 1], [2, -1], [1, 3], [4, -1], [0, 5]])
    b_idx = np.array([[-1, -1], [0, -1], [0, 1], [2, -1], [-1, -1], [1, 3]])
    tables = IndexTables(a_idx, b_idx)
    xs = draw(rng, tables, dk=2, dv=5)
    assert rel_err(readout.naive_readout(*xs, tables), naive(*xs, tables)) <= TOL[torch.float64]


def test_readout_algorithm_reads_a_pattern_at_256_by_default():
    """A pattern (anything with ``support_a``) is read at length 256 unless n is given; tables as they are."""
    seen = []

    class Spy:
        support_a = None

        def tables(self, n):
            seen.append(n)
            return Pattern.from_spec("ssm").tables(n)

    assert readout.readout_algorithm(Spy()) == readout.readout_algorithm(Pattern.from_spec("ssm").tables(256))
    assert readout.readout_algorithm(Spy(), 400) == ("chunked_aligned", "n (w + m)")
    assert seen == [256, 400]


def message(call) -> str:
    """The message of the GLRError ``call()`` raises."""
    with pytest.raises(GLRError) as info:
        call()
    return str(info.value)


def test_inputs_that_are_not_4d_tensors_are_named():
    """Each of q, k, v, a, b that is not a 4-d tensor, by name, with its shape or type."""
    tables = Pattern.from_spec("ssm").tables(8)
    xs = [zeros((1, 8, 2, 3))] * 3 + [zeros((1, 8, 2, 1))] * 2
    for i, name in enumerate("qkvab"):
        bad = list(xs)
        bad[i] = xs[i][0]
        assert message(lambda: glr_readout(*bad, tables)) == (
            f"{name} must be a 4-d tensor [batch, T, heads, dim], got {tuple(xs[i].shape[1:])}")
        bad[i] = xs[i].tolist()
        assert message(lambda: glr_readout(*bad, tables)) == (
            f"{name} must be a 4-d tensor [batch, T, heads, dim], got list")


def test_bad_options_are_named():
    """chunk, algorithm and backend, each refused by name with the value given."""
    tables = Pattern.from_spec("ssm").tables(8)
    xs = [zeros((1, 8, 2, 3))] * 3 + [zeros((1, 8, 2, 1))] * 2
    assert message(lambda: glr_readout(*xs, tables, chunk=0)) == "chunk must be >= 1, got 0"
    assert message(lambda: glr_readout(*xs, tables, chunk=2.0)) == "chunk must be an integer, got 2.0"
    assert message(lambda: glr_readout(*xs, tables, chunk=True)) == "chunk must be an integer, got True"
    assert message(lambda: glr_readout(*xs, tables, algorithm=3)) == "algorithm must be a string or None, got 3"
    assert message(lambda: glr_readout(*xs, tables, backend=("torch",))) == (
        "backend must be a string or None, got ('torch',)")
    assert message(lambda: glr_readout(*xs, tables, backend="cuda")) == (
        "backend must be one of ('torch', 'triton') or None, got 'cuda'")
    for bad in ("flash", "direct"):                                      # ssm has B: no direct
        assert message(lambda: glr_readout(*xs, tables, algorithm=bad)) == (
            "algorithm must be one of ['chunked_aligned', 'direct', 'tiled_mixing'] (direct only when B is empty), "
            f"got {bad!r}")
    for algorithm in ("tiled_mixing", "direct"):
        window = Pattern.from_spec("window:3").tables(8)
        ab = zeros((1, 8, 2, window.a_idx.shape[1])), zeros((1, 8, 2, window.b_idx.shape[1]))
        assert message(lambda: glr_readout(*xs[:3], *ab, window, algorithm=algorithm, backend="triton")) == (
            f"backend='triton' runs the chunked_aligned algorithm only, not {algorithm}")


def test_dtypes_and_devices_that_disagree_are_named():
    """k, v against q, b against a (dtype and device in the message; another device: ``meta``), a's dtype rule,
    integer inputs; all on ``meta``, where torch has no autocast state."""
    tables = Pattern.from_spec("ssm").tables(8)
    f32, f64 = torch.float32, torch.float64
    q, ab = zeros((1, 8, 2, 3)), zeros((1, 8, 2, 1))
    assert message(lambda: glr_readout(q, q.double(), q, ab, ab, tables)) == (
        "k is torch.float64 on cpu but q is torch.float32 on cpu; pass one dtype and device")
    assert message(lambda: glr_readout(q, q, zeros((1, 8, 2, 4), torch.float16), ab, ab, tables)) == (
        "v is torch.float16 on cpu but q is torch.float32 on cpu; pass one dtype and device")
    assert message(lambda: glr_readout(q, q, q, ab, ab.double(), tables)) == (
        "b is torch.float64 on cpu but a is torch.float32 on cpu; pass one dtype and device")
    for i, (name, ref) in enumerate(zip("kvab", "qqqa")):
        xs = [q, q, q, ab, ab]
        xs[i + 1] = xs[i + 1].to("meta")
        assert message(lambda: glr_readout(*xs, tables)) == (
            f"{name} is torch.float32 on meta but {ref} is torch.float32 on cpu; pass one dtype and device")
    for qd, ad in ((f32, f64), (f64, f32), (torch.bfloat16, torch.float16), (torch.float16, f64)):
        x, c = zeros((1, 8, 2, 3), qd), zeros((1, 8, 2, 1), ad)
        assert message(lambda: glr_readout(x, x, x, c, c, tables)) == (
            f"a and b are {ad} but q, k, v are {qd}: pass q's dtype, or float32 coefficients with bfloat16 / "
            "float16 q, k, v")
    x, c = zeros((1, 8, 2, 3), torch.int32), zeros((1, 8, 2, 1), torch.int32)
    assert message(lambda: glr_readout(x, x, x, c, c, tables)) == (
        "q, k, v must be float16, bfloat16, float32 or float64, got torch.int32")
    every = [x.to("meta") for x in (q, q, q, ab, ab)]                # all on a device that computes nothing
    assert message(lambda: glr_readout(*every, tables)) == (
        "glr_readout runs on devices that compute, not on meta (q's device)")


def test_shapes_that_disagree_are_named():
    """Empty dimensions, q, k, v against the tables' T and each other, a and b against q's batch, T, heads and
    their tables' widths (batch and heads 1 allowed): whole messages."""
    tables = Pattern.from_spec("fenwick").tables(8)
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    q, v, a, b = zeros((3, 8, 2, 5)), zeros((3, 8, 2, 4)), zeros((3, 8, 2, wa)), zeros((3, 8, 2, wb))
    for empty_q, empty_v in ((q[:0], v[:0]), (q[..., :0], v), (q, v[..., :0])):
        coef = [x[:empty_q.shape[0]] for x in (a, b)]
        assert message(lambda: glr_readout(empty_q, empty_q, empty_v, *coef, tables)) == (
            f"q, k, v must have no empty dimension, got {tuple(empty_q.shape)}, {tuple(empty_v.shape)}")
    for qs, ks, vs in [((3, 7, 2, 5), (3, 7, 2, 5), (3, 7, 2, 4)), ((3, 8, 2, 5), (3, 8, 2, 6), (3, 8, 2, 4)),
                       ((3, 8, 2, 5), (3, 8, 2, 5), (1, 8, 2, 4)), ((3, 8, 2, 5), (3, 8, 2, 5), (3, 8, 1, 4)),
                       ((3, 8, 2, 5), (3, 8, 2, 5), (3, 9, 2, 4)), ((3, 8, 2, 5), (3, 8, 1, 5), (3, 8, 2, 4))]:
        assert message(lambda: glr_readout(zeros(qs), zeros(ks), zeros(vs), a, b, tables)) == (
            "q, k, v must be [batch, T=8, heads, d] with the tables' T and equal batch, T, heads (q, k also equal "
            f"d_k), got {qs}, {ks}, {vs}")
    for name, w in (("a", wa), ("b", wb)):
        for shape in ((3, 7, 2, w), (3, 8, 2, w + 1), (2, 8, 2, w), (3, 8, 3, w)):
            bad = (zeros(shape), b) if name == "a" else (a, zeros(shape))
            assert message(lambda: glr_readout(q, q, v, *bad, tables)) == (
                f"{name} must have shape [batch=3, T=8, heads=2, {name}_idx width={w}] (batch and heads may be 1), "
                f"got {shape}")


def test_forced_aligned_over_memory_is_refused_and_the_default_falls_back():
    """ssm at T = 400 is chosen aligned (at the nominal head size) but its layout is over the memory limit with
    d_k = 2048, d_v = 1500: forced, the refusal of ``over_memory`` for those sizes (not d_k twice, not d_v twice);
    by default tiled mixing in tiles of ``min(T, 64 max(1, 2^21 // (B H T 64)))`` = 400 columns."""
    tables = Pattern.from_spec("ssm").tables(400)
    assert readout.readout_algorithm(tables)[0] == "chunked_aligned"
    layout = aligned_layout(tables)
    q, v, ab = zeros((1, 400, 1, 2048)), zeros((1, 400, 1, 1500)), zeros((1, 400, 1, 1))
    why = over_memory(layout, 2048, 1500)
    assert why and "6 boundary states of 2048 x 1500" in why
    assert message(lambda: glr_readout(q, q, v, ab, ab, tables, algorithm="chunked_aligned")) == why
    algorithm, C, layout_given, run, dtypes = readout._choice(q, q, v, ab, ab, tables, None, None, None)
    assert (algorithm, C, layout_given, run, dtypes) == ("tiled_mixing", 400, None, readout_blocks.TILED,
                                                         (torch.float32, torch.float32))


def test_the_choice_of_each_algorithm():
    """``_choice``'s ``(algorithm, C, layout, run, dtypes)``: direct takes chunks of ``min(chunk or 64, T)``;
    tiled mixing the given chunk, else the tile width for the device by hand; the aligned algorithm the
    cheapest aligned layout, or a given chunk's (at most T), or chunks of 64 where no layout is aligned."""
    f64 = (torch.float64, torch.float64)

    def choice(spec, n, B=1, H=1, chunk=None, algorithm=None, dtype=torch.float64):
        tables = Pattern.from_spec(spec).tables(n)
        q, ab = zeros((B, n, H, 3), dtype), zeros((B, n, H, tables.a_idx.shape[1]), dtype)
        b = zeros((B, n, H, tables.b_idx.shape[1]), dtype)
        return readout._choice(q, q, q, ab, b, tables, chunk, algorithm, None)

    assert choice("window:3", 63) == ("direct", 63, None, readout_blocks.DIRECT, f64)
    assert choice("window:3", 300)[:2] == ("direct", 64)
    assert choice("window:3", 300, chunk=16)[:2] == ("direct", 16)
    assert choice("window:3", 63, chunk=100)[:2] == ("direct", 63)
    assert choice("power2", 300) == ("tiled_mixing", 300, None, readout_blocks.TILED, f64)
    assert choice("power2", 300, B=30)[:2] == ("tiled_mixing", 192)      # 2^21 // (30 * 300 * 64) = 3 tiles of 64
    assert choice("power2", 300, B=128)[:2] == ("tiled_mixing", 64)      # one tile over the budget: 64
    assert choice("power2", 300, B=30, chunk=16)[:2] == ("tiled_mixing", 16)
    assert choice("window:3", 63, algorithm="tiled_mixing")[:2] == ("tiled_mixing", 63)
    algorithm, C, layout, run, dtypes = choice("ssm", 400)
    assert (algorithm, run, dtypes) == ("chunked_aligned", readout_aligned.chunked_aligned, f64)
    assert same_layout(layout, aligned_layout(Pattern.from_spec("ssm").tables(400))) and layout.chunk == C == 64
    wide = Pattern.from_spec("window:100+lags:1,2,3").tables(128)           # aligned only in one chunk of 128
    assert aligned_layout(wide).chunk == 128 and aligned_layout(wide, 64).chunk == 64
    algorithm, C, layout, *_ = choice("window:100+lags:1,2,3", 128)
    assert algorithm == "chunked_aligned" and same_layout(layout, aligned_layout(wide)) and layout.chunk == 128
    for n, chunk in ((63, 16), (63, 100), (300, 5)):
        algorithm, C, layout, *_ = choice("ssm", n, chunk=chunk, algorithm="chunked_aligned")
        assert algorithm == "chunked_aligned" and C == layout.chunk == min(chunk, n)
    assert aligned_layout(Pattern.from_spec("power2").tables(300)) is None
    algorithm, C, layout, *_ = choice("power2", 300, algorithm="chunked_aligned")
    assert algorithm == "chunked_aligned" and layout.chunk == 64
    assert choice("ssm", 400, dtype=torch.bfloat16)[4] == (torch.float32, torch.bfloat16)
    assert choice("power2", 300, dtype=torch.float32)[4] == (torch.float32, torch.float32)


def test_the_aligned_implementation_and_transient():
    """The aligned readout's implementation: torch ops by default on the CPU and for ``backend="torch"``, the
    Triton readout for ``backend="triton"`` (the interpreter here), told ``transient=True`` only when asked and
    only the Triton one (torch ops keep nothing)."""
    readout_triton = triton_readout()
    tables = Pattern.from_spec("ssm").tables(63)
    q, v, ab = zeros((1, 63, 2, 3)), zeros((1, 63, 2, 4)), zeros((1, 63, 2, 1))

    def run(backend, transient):
        return readout._choice(q, q, v, ab, ab, tables, 16, "chunked_aligned", backend, transient)[3]

    for transient in (False, True):
        assert run(None, transient) is run("torch", transient) is readout_aligned.chunked_aligned
    assert run("triton", False) is readout_triton.chunked_aligned_triton
    assert readout._choice(q, q, v, ab, ab, tables, 16, "chunked_aligned", "triton")[3] is (
        readout_triton.chunked_aligned_triton)
    partial = run("triton", True)
    assert isinstance(partial, functools.partial) and partial.func is readout_triton.chunked_aligned_triton
    assert partial.args == () and partial.keywords == {"transient": True}


def test_aligned_backend_choice_and_its_refusals(monkeypatch):
    """``aligned_backend``: ``"torch"`` and the CPU's default give torch ops; a forced Triton readout its kernels or
    the refusal (float64; d_v counted: ``v``'s width, not q's); without triton, the import error named."""
    readout_triton = triton_readout()
    tables = Pattern.from_spec("ssm").tables(63)
    layout = aligned_layout(tables, 16)
    q = zeros((2, 63, 3, 5))
    assert readout.aligned_backend(None, q, 7, layout) is readout_aligned.chunked_aligned
    assert readout.aligned_backend("torch", q.double(), 7, layout) is readout_aligned.chunked_aligned
    assert readout.aligned_backend("triton", q, 7, layout) is readout_triton.chunked_aligned_triton
    assert message(lambda: readout.aligned_backend("triton", q.double(), 7, layout)) == (
        "the triton readout takes float32, bfloat16 or float16, got torch.float64")
    # the largest tensor: N (nc C + w) max(d_k, d_v) = 6 * 64 * 40 = 15360 with d_v = 40 (5 with q's width)
    monkeypatch.setattr(readout_triton, "MAX_ELEMENTS", 6 * 64 * 5)
    v, ab = zeros((2, 63, 3, 40)), zeros((2, 63, 3, 1))
    too_large = "problem too large for the triton readout: 15360 elements in one tensor (limit 1920)"
    assert message(lambda: glr_readout(q, q, v, ab, ab, tables, chunk=16, algorithm="chunked_aligned",
                                       backend="triton")) == too_large
    # refused when chosen, not only when the kernels run (on CUDA a refusal by default takes the torch ops)
    assert message(lambda: readout._choice(q, q, v, ab, ab, tables, 16, "chunked_aligned", "triton")) == too_large
    monkeypatch.setitem(sys.modules, "glrtheory.kernels.scan.readout_triton", None)
    with pytest.raises(ImportError) as err:
        importlib.import_module("glrtheory.kernels.scan.readout_triton")
    assert message(lambda: readout.aligned_backend("triton", q, 7, layout)) == (
        f"backend='triton' needs triton installed ({err.value})")
    assert readout.aligned_backend(None, q, 7, layout) is readout_aligned.chunked_aligned


def test_the_choice_is_kept_per_signature(rng):
    """After a good call, a call that differs in one input's shape, dtype, the options or the autocast state is
    checked again: each bad variant is refused (none reuses the good call's choice), and float64 after float32
    still computes in float64."""
    tables = Pattern.from_spec("ssm").tables(63)
    xs = draw(rng, tables, dtype=torch.float32)
    glr_readout(*xs, tables)
    for i in range(5):
        wider = list(xs)
        wider[i] = torch.cat([xs[i], xs[i][..., :1]], -1)
        if i == 2:                                  # a wider d_v is fine
            assert glr_readout(*wider, tables).shape == wider[2].shape
        else:
            with pytest.raises(GLRError):
                glr_readout(*wider, tables)
        other = list(xs)
        other[i] = xs[i].double() if i != 4 else xs[i].half()
        with pytest.raises(GLRError):
            glr_readout(*other, tables)
    with pytest.raises(GLRError):
        glr_readout(*xs, tables, algorithm="direct")
    with pytest.raises(GLRError):
        glr_readout(*xs, tables, backend="cuda")
    with torch.autocast("cpu", dtype=torch.float16):
        assert glr_readout(*xs, tables).dtype == torch.float32
    xs64 = [x.double() for x in xs]
    assert rel_err(glr_readout(*xs64, tables), naive(*xs64, tables)) <= TOL[torch.float64]


def test_a_pair_of_arrays_is_taken_as_tables(rng):
    """Tables given as a plain pair of arrays, and a forced algorithm by name on them, equal the recurrence."""
    tables = Pattern.from_spec("fenwick").tables(63)
    xs = draw(rng, tables)
    pair = tuple(np.array(x) for x in tables)
    for algorithm in (None, "chunked_aligned", "tiled_mixing"):
        assert rel_err(glr_readout(*xs, pair, chunk=16, algorithm=algorithm), naive(*xs, tables)) <= 1e-10


def test_direct_is_refused_where_b_reads_only_position_0(rng):
    """Hand tables whose B reads position 0 only (every row from 1 on): B is not empty, so ``direct`` (M = A) is
    refused, by the whole message; the default choice and tiled mixing equal the recurrence."""
    n = 40
    a_idx = np.arange(n)[:, None]
    b_idx = np.where(np.arange(n) > 0, 0, -1)[:, None]
    tables = IndexTables(a_idx, b_idx)
    xs = draw(rng, tables)
    assert message(lambda: glr_readout(*xs, tables, algorithm="direct")) == (
        "algorithm must be one of ['chunked_aligned', 'direct', 'tiled_mixing'] (direct only when B is empty), "
        "got 'direct'")
    ref = naive(*xs, tables)
    for algorithm in (None, "tiled_mixing", "chunked_aligned"):
        assert rel_err(glr_readout(*xs, tables, chunk=16, algorithm=algorithm), ref) <= TOL[torch.float64]


def test_the_autocast_dtype_is_part_of_the_signature(monkeypatch, rng):
    """Under autocast(bfloat16) and then autocast(float16), the same float32 inputs are checked and chosen for
    again: the aligned products in bfloat16, then float16 (``_choice``'s dtypes); outside autocast float32."""
    seen = []
    choice = readout._choice
    monkeypatch.setattr(readout, "_choice", lambda *args: seen.append(choice(*args)[4]) or choice(*args))
    tables = Pattern.from_spec("ssm").tables(63)
    xs = draw(rng, tables, dtype=torch.float32)
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", dtype=dtype):
            glr_readout(*xs, tables, algorithm="chunked_aligned")
    glr_readout(*xs, tables, algorithm="chunked_aligned")
    f32 = torch.float32
    assert seen == [(f32, torch.bfloat16), (f32, torch.float16), (f32, f32)]


def test_blockwise_dtype_asks_for_a_scan_of_qs_dtype(monkeypatch):
    """Tiled mixing of bf16 / fp16 q asks ``choose_backend`` for a scan of q's dtype on q's device: with a stub that
    runs bfloat16 only (as a CUDA machine's Triton scan), bf16 q computes in bf16 (a float32 or bf16), fp16 q in
    float32 (the fix of run 19: fp16 a too); direct and float32 q keep a's dtype."""
    asked = []

    def bf16_only(backend, device, dtype):
        asked.append((backend, device.type, dtype))
        if dtype != torch.bfloat16:
            raise GLRError("no scan")
        return "triton"

    monkeypatch.setattr(readout, "choose_backend", bf16_only)
    bf16, f16, f32 = (torch.zeros(1, dtype=d) for d in (torch.bfloat16, torch.float16, torch.float32))
    assert readout._blockwise_dtype("tiled_mixing", bf16, f32) == torch.bfloat16
    assert readout._blockwise_dtype("tiled_mixing", bf16, bf16) == torch.bfloat16
    assert readout._blockwise_dtype("tiled_mixing", f16, f32) == torch.float32
    assert readout._blockwise_dtype("tiled_mixing", f16, f16) == torch.float32
    assert asked == [(None, "cpu", torch.bfloat16)] * 2 + [(None, "cpu", torch.float16)] * 2
    assert readout._blockwise_dtype("direct", bf16, bf16) == torch.bfloat16
    assert readout._blockwise_dtype("direct", f16, f32) == torch.float32
    assert readout._blockwise_dtype("tiled_mixing", f32, f32) == torch.float32
    assert len(asked) == 4


def test_tile_width_at_the_exact_budget():
    """Tiled mixing's default tile ``64 max(1, budget // (B H T 64))`` at most T, the budget 2^21 elements on the CPU
    (and any device type but CUDA) and 2^26 on CUDA, each at the exact budget and one row over it: 8 x 1024 x 256 =
    2^21 (4 tiles of 64), 8 x 1025 x 256 is over (3); 128 x 1024 x 512 = 2^26 (8), 128 x 1025 x 512 over (7)."""
    for device in ("cpu", "mps"):
        assert readout.tile_columns(8, 1, 1024, device) == readout.tile_columns(1, 8, 1024, device) == 256
        assert readout.tile_columns(8, 1, 1025, device) == 192
    assert readout.tile_columns(128, 1, 1024, "cuda") == 512
    assert readout.tile_columns(128, 1, 1025, "cuda") == 448
    assert readout.tile_columns(1, 1, 100, "cuda") == 100


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_choice_takes_the_triton_readout_and_the_cuda_tile_budget():
    """On CUDA by default: the aligned readout's Triton implementation, torch ops where it refuses (attention+ssm at
    T = 400 in chunks of 64: a window over its registers); tiled mixing's tiles within CUDA's 2^26 elements: B8 H8
    T2048 takes 2^26 // (8 8 2048 64) = 8 tiles of 64 = 512 columns (the CPU's budget would give 64)."""
    readout_triton = triton_readout()
    def cuda(shape):
        return torch.zeros((), device="cuda").expand(shape)

    tables = Pattern.from_spec("ssm").tables(63)
    q, ab = cuda((1, 63, 2, 3)), cuda((1, 63, 2, 1))
    assert readout._choice(q, q, q, ab, ab, tables, 16, "chunked_aligned", None)[3] is (
        readout_triton.chunked_aligned_triton)
    wide = Pattern.from_spec("attention+ssm").tables(400)
    q, a, b = cuda((1, 400, 1, 5)), cuda((1, 400, 1, wide.a_idx.shape[1])), cuda((1, 400, 1, wide.b_idx.shape[1]))
    assert readout._choice(q, q, q, a, b, wide, 64, "chunked_aligned", None)[3] is readout_aligned.chunked_aligned
    power2 = Pattern.from_spec("power2").tables(2048)
    q, a, b = (cuda((8, 2048, 8, w)) for w in (4, power2.a_idx.shape[1], power2.b_idx.shape[1]))
    assert readout._choice(q, q, q, a, b, power2, None, None, None)[:2] == ("tiled_mixing", 512)
