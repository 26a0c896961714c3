"""The ``chunked_aligned`` readout in bfloat16: bf16 inputs and CPU ``autocast(bfloat16)`` against the float64
materializing reference ``naive_readout`` (u = k v^T through ``glr_scan``, then q^T H) at the bf16 tolerance
(norm-relative 1e-2), forward and the gradients of q, k, v, a, b; and proof that the products really run in
bfloat16 (every matrix product's operands, seen by a dispatch hook) while the triangular solve and the
boundary states stay float32."""
import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from glrtheory.kernels.scan.readout import glr_readout, naive_readout  # noqa: E402
from tests.helpers import rel_err  # noqa: E402
from tests.test_readout import problem as numpy_problem  # noqa: E402
from tests.test_readout_aligned import random_tables  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

BF16 = 1e-2
PRODUCTS = {"bmm", "mm", "baddbmm", "addmm"}
#: The CPU, and CUDA where there is one (CUDA autocast, cuBLAS products, the Triton boundary scan).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def problem(rng, spec, n, dk=3, dv=4):
    """Fresh random inputs (never zero) of one batch, rounded to bfloat16 and held as float64 (the reference
    sees the inputs the bf16 run sees); ``random``: hand-made tables. 2 heads, 32 at n <= 2 (so that the
    norm-relative error is not made by a few elements that cancel over d)."""
    H = 32 if n <= 2 else 2
    if spec != "random":
        tables, *xs = numpy_problem(rng, spec, n, B=1, H=H, dk=dk, dv=dv)
    else:
        tables = random_tables(rng, n)
        wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
        xs = [rng.standard_normal((1, n, H, d)) for d in (dk, dk, dv)]
        xs += [rng.uniform(0.5, 1.5, (1, n, H, wa)) * rng.choice([-1, 1], (1, n, H, wa)),
               rng.uniform(-1, 1, (1, n, H, wb)) / wb]
    return tables, [torch.tensor(x).bfloat16().double() for x in xs]


def run(xs, tables, mode, grad=None, chunk=16, device="cpu", backend=None):
    """Output (and gradients for ``grad``) of the forced aligned readout on ``device``, on the CPU: ``mode``
    "bf16" (bf16 inputs), "mixed" (bf16 q, k, v with float32 a, b), "autocast" (float32 inputs under
    autocast(bfloat16)) or "float32"; ``backend``
    as ``glr_readout`` takes it (on CUDA the default runs the Triton forward)."""
    low = lambda i: mode == "bf16" or mode == "mixed" and i < 3  # noqa: E731
    leaves = [x.to(device, torch.bfloat16 if low(i) else torch.float32).requires_grad_(grad is not None)
              for i, x in enumerate(xs)]
    with torch.autocast(device, dtype=torch.bfloat16, enabled=mode == "autocast"):
        out = glr_readout(*leaves, tables, chunk=chunk, algorithm="chunked_aligned", backend=backend)
    assert out.dtype == leaves[0].dtype
    if grad is None:
        return out.detach().cpu(), None
    grads = torch.autograd.grad(out, leaves, grad.to(device, out.dtype))
    assert all(g.dtype == x.dtype for g, x in zip(grads, leaves))
    return out.detach().cpu(), [g.cpu() for g in grads]


@pytest.mark.parametrize("spec", ["ssm", "fenwick", "blocks", "random"])
@pytest.mark.parametrize("n", [1, 2, 63, 200])
@pytest.mark.parametrize("mode", ["bf16", "mixed", "autocast"])
@pytest.mark.parametrize("device", DEVICES)
def test_bf16_matches_reference(rng, spec, n, mode, device):
    """Forward and the five gradients (random upstream gradient) within 1e-2 of float64 autograd through the
    materializing path; chunks of 16 (several boundary states) and at n = 200 also the default layout."""
    tables, xs = problem(rng, spec, n)
    grad = torch.randn(xs[2].shape, dtype=torch.float64).bfloat16().double()      # what the bf16 run sees
    leaves = [x.clone().requires_grad_() for x in xs]
    ref = naive_readout(*leaves, tables)
    ref_grads = torch.autograd.grad(ref, leaves, grad)
    for chunk in [16] + [None] * (n >= 200):
        out, grads = run(xs, tables, mode, grad, chunk, device)
        assert rel_err(out.double(), ref.detach()) <= BF16, (chunk, "out")
        for name, g, r in zip("qkvab", grads, ref_grads):
            assert rel_err(g.double(), r) <= BF16, (chunk, name)


class Products(TorchDispatchMode):
    """Records the operand dtypes of every matrix product (``head``: whether an operand has a head axis,
    d_k or d_v, among its last two: the products of steps 2-4 and their backward; the others belong to
    the triangular solve), triangular solve and ``glr_scan`` (forward and backward) run inside it."""

    def __init__(self, heads):
        super().__init__()
        self.heads, self.seen = heads, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        tensors = [x for x in args if isinstance(x, torch.Tensor) and x.is_floating_point()]
        dtypes = {x.dtype for x in tensors}
        if name in PRODUCTS:
            head = any(size in self.heads for x in tensors for size in x.shape[-2:])
            self.seen.append(("head product" if head else "other product", dtypes))
        elif "solve_triangular" in name or "glr_scan" in name:
            self.seen.append(("solve" if "solve" in name else "scan", dtypes))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mode", ["bf16", "mixed", "autocast", "float32"])
@pytest.mark.parametrize("device", DEVICES)
def test_products_run_in_the_compute_dtype(rng, mode, device):
    """fenwick at n = 200, chunks of 16 (13 chunks, up to 4 sources each), d_k = 5, d_v = 7 (no chunk size):
    every matrix product with a head axis, forward and backward, takes bfloat16 operands under bf16, mixed and
    autocast (float32 in the float32 control), at least the 3 of steps 2 and 3 plus one per source slot in
    each pass; the solves (and the products of their backward) and the boundary scan get float32 only.
    The torch-op backend (on CUDA the default forward runs in Triton, ``test_readout_triton``).
    The bf16 output differs from float32 on the same inputs (representable in bf16), by less than the
    bf16 tolerance: it cannot be float32 in disguise."""
    tables, xs = problem(rng, "fenwick", 200, dk=5, dv=7)
    grad = torch.randn(xs[2].shape, dtype=torch.float64).bfloat16().double()      # what the bf16 run sees
    with Products(heads={5, 7}) as hook:
        out, _ = run(xs, tables, mode, grad, device=device, backend="torch")
    low = torch.float32 if mode == "float32" else torch.bfloat16
    seen = {kind: [d for k, d in hook.seen if k == kind] for kind in ("head product", "other product", "solve", "scan")}
    assert len(seen["head product"]) >= 2 * (3 + 4) and all(d == {low} for d in seen["head product"]), seen
    for kind in ("other product", "solve", "scan"):
        assert seen[kind] and all(d == {torch.float32} for d in seen[kind]), (kind, seen[kind])
    if mode != "float32":
        exact = run(xs, tables, "float32", device=device, backend="torch")[0].double()
        diff = rel_err(out.double(), exact)
        assert 1e-5 < diff <= BF16, diff


def test_benchmark_runs(tmp_path):
    """``benchmarks/bench_readout_aligned.py --quick`` runs and writes its JSON: the machine and, per pattern and
    pass, the times of the earlier commit's float32 and this checkout's float32, bf16 and autocast."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        from bench_readout_aligned import BEFORE
    finally:
        sys.path.pop(0)
    if subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=root, capture_output=True).returncode:
        pytest.skip(f"commit {BEFORE} is not in this checkout's history")
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_readout_aligned.py"), "--quick", "--out",
                    str(tmp_path / "r.json")], check=True, capture_output=True)
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["machine"]["cores"] and len(result["rows"]) == 6
    assert all(row[f"ms_{v}"] > 0 for row in result["rows"] for v in ("before", "float32", "bf16", "autocast"))


def test_readme_quotes_the_benchmark():
    """The README's forward + backward times of ``bench_readout_aligned`` are those of its JSON."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rows = {r["spec"]: r for r in json.loads((root / "benchmarks" / "results" / "readout_aligned.json").read_text())
            ["rows"] if r["passes"] == "forward+backward"}
    readme = " ".join((root / "README.md").read_text().split())
    specs = ("ssm", "fenwick", "blocks")
    assert ", ".join(f"{s} {rows[s]['ms_before']:.1f} -> {rows[s]['ms_float32']:.1f} ms" for s in specs) in readme
    assert "bf16 inputs " + ", ".join(f"{rows[s]['ms_bf16']:.1f}" for s in specs) + " ms" in readme
