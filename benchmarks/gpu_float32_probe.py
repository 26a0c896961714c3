"""How far the float32 readout's Triton path and its float32 torch-op path each lie from float64.

    python benchmarks/gpu_float32_probe.py --seeds 1211486483272781269,1,2 [--specs fenwick] [--heads 128]
        [--n 4097] [--repeats 5] [--graphs 0] [--out PATH]

Per test seed (the ``rng`` fixture's, as ``test_gpu_float32_heads_of_128_and_256_match_torch_path`` draws its
inputs from it), spec and head size d: the output and the five gradients (q, k, v, a, b) of ``<glr_readout, g>``
by the Triton backend (float32, ``repeats`` runs on the same inputs: its backward sums by atomics, so runs may
differ) and by the torch-op path in float32, each as ``||x - ref|| / ||ref||`` against the torch-op path in
float64 on the same values; and the Triton runs' largest distance from the float32 torch path, which is what the
test bounds (1e-5). A test failure with the Triton path as near float64 as the torch path is the reference's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpu_common import parser, saver  # noqa: E402
from tests.helpers import large_readout_inputs  # noqa: E402

from glrtheory.kernels.scan import readout_triton  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout  # noqa: E402

NAMES = ("out", "q", "k", "v", "a", "b")


def inputs(seed: int, spec: str, d: int, n: int, device: str):
    """The test's inputs (``check_large_gradients`` in float32) from the ``rng`` fixture's seed."""
    return large_readout_inputs(int(np.random.default_rng(seed).integers(2**31)), spec, d, n, device)


def run(tables, xs, grad, backend: str, dtype) -> list[torch.Tensor]:
    """The output and the five gradients, in float64."""
    leaves = [x.to(dtype).requires_grad_() for x in xs]
    kw = dict(algorithm="chunked_aligned") if backend == "triton" else {}      # the default on CUDA at 4097
    out = glr_readout(*leaves, tables, backend=backend, **kw)
    return [t.double() for t in (out.detach(), *torch.autograd.grad(out, leaves, grad.to(dtype)))]


def errors(got, ref) -> dict:
    """``||x - r|| / ||r||`` of the output and each gradient, by name."""
    return {name: float((x - r).norm() / r.norm()) for name, x, r in zip(NAMES, got, ref)}


def probe(seed, spec, d, n, repeats, device="cuda") -> dict:
    """One row: the float32 torch path and ``repeats`` Triton runs against float64, and the Triton runs against the
    float32 torch path (the largest) and against their first (the largest absolute difference)."""
    tables, xs, grad = inputs(seed, spec, d, n, device)
    exact = run(tables, xs, grad, "torch", torch.float64)
    torch32 = run(tables, xs, grad, "torch", torch.float32)
    tritons = [run(tables, xs, grad, "triton", torch.float32) for _ in range(repeats)]
    vs_torch32 = [errors(t, torch32) for t in tritons]
    return dict(seed=seed, spec=spec, d=d, n=n, torch32_vs_f64=errors(torch32, exact),
                triton_vs_f64=[errors(t, exact) for t in tritons],
                triton_vs_torch32_max={k: max(e[k] for e in vs_torch32) for k in NAMES},
                triton_runs_differ={k: max(float((t[i] - tritons[0][i]).abs().max()) for t in tritons)
                                    for i, k in enumerate(NAMES)})


def main(argv=None) -> None:
    p = parser(__doc__, "float32_probe", ["fenwick"])
    p.add_argument("--seeds", default="1211486483272781269")
    p.add_argument("--heads", default="128")
    p.add_argument("--n", type=int, default=4097)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--graphs", type=int, help="readout_triton's graphs setting (0: every call eager)")
    args = p.parse_args(argv)
    if args.graphs is not None:
        readout_triton._setting()["graphs"] = args.graphs
    save = saver(args.out, "gpu_float32_probe.py")
    rows = []
    for seed in map(int, args.seeds.split(",")):
        for spec in args.specs.split(","):
            for d in map(int, args.heads.split(",")):
                rows.append(probe(seed, spec, d, args.n, args.repeats, args.device))
                print(json.dumps(rows[-1]), flush=True)
                save(dict(rows=rows))


if __name__ == "__main__":
    main()
