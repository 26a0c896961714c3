"""What the GPU compiles, against the offline compile of ``h200_compile.py``: the scan (power2, fenwick) and the
Triton readout (ssm, fenwick) run forward and backward at the main shape, B2 T16384 H16 D128 bf16; then every kernel
Triton compiled for them is listed (its specialization, registers, spilled registers, shared memory, SASS digest),
with the offline configuration whose machine code is the same, if any.

    python benchmarks/gpu_compile_check.py [--out PATH]

A configuration whose digest appears among the GPU's was compiled offline into exactly the code the GPU ran, so its
offline registers, spills and shared memory are the GPU's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import h200_compile  # noqa: E402  (before triton's compiles: it drops TRITON_INTERPRET)
from gpu_common import inputs, parser, saver  # noqa: E402

import triton  # noqa: E402

from glrtheory.kernels.scan import readout_triton_backward as RB  # noqa: E402
from glrtheory.kernels.scan import readout_triton_kernels as RK  # noqa: E402
from glrtheory.kernels.scan import triton_kernels as K  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout  # noqa: E402
from glrtheory.kernels.scan.triton import glr_scan_triton  # noqa: E402
from glrtheory.kernels.scan.triton_launch import Launcher  # noqa: E402

SHAPE = (2, 16384, 16, 128)


def run_workloads(device) -> None:
    """Forward and backward of the scan and the readout at ``SHAPE``, so that Triton compiles what they launch."""
    for spec in ("power2", "fenwick"):
        tables, u, a, b = inputs(spec, *SHAPE, grad=True, device=device)
        glr_scan_triton(u, a, b, tables).backward(torch.randn_like(u))
    for spec in ("ssm", "fenwick"):
        tables, k, a, b = inputs(spec, *SHAPE, device=device)
        q, v = torch.randn_like(k) * SHAPE[3] ** -0.5, torch.randn_like(k)
        xs = [x.requires_grad_() for x in (q, k, v, a, b)]
        glr_readout(*xs, tables, backend="triton").backward(torch.randn_like(v))
    torch.cuda.synchronize(device)


def compiled_kernels() -> list[dict]:
    """Every kernel the JIT compiled in this process for the scan's and the readout's kernels."""
    rows = []
    for module in (K, RK, RB):
        for fn in vars(module).values():
            fn = fn.fn if isinstance(fn, Launcher) else fn
            if not isinstance(fn, triton.runtime.jit.JITFunction) or fn.__module__ != module.__name__:
                continue
            for cache in fn.device_caches.values():
                for key, kernel in cache[0].items():
                    kernel._init_handles()
                    code = h200_compile.sass(kernel.asm["cubin"])
                    rows.append(dict(kernel=fn.__name__, specialization=str(key)[:2000], registers=kernel.n_regs,
                                     spills=kernel.n_spills, shared=kernel.metadata.shared,
                                     warps=kernel.metadata.num_warps, instructions=len(code),
                                     digest=h200_compile.digest(code)))
    return rows


def offline_digests() -> list[dict]:
    """``h200_compile``'s configurations, compiled here for sm_90: index, kernel, digest, resources."""
    rows = []
    for i, fn, compiled in h200_compile.compile_all():
        code = h200_compile.sass(compiled.asm["cubin"])
        rows.append(dict(index=i, kernel=fn.__name__, instructions=len(code),
                         resources=h200_compile.resources(compiled), digest=h200_compile.digest(code)))
    return rows


def main(argv=None) -> int:
    ap = parser(__doc__, "compile_check", [])
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        ap.error("needs CUDA: it lists what the GPU compiles (h200_compile.py compiles offline without one)")
    save = saver(args.out, "gpu_compile_check.py")
    run_workloads(torch.device(args.device))
    gpu = compiled_kernels()
    offline = offline_digests()
    ran = {row["digest"] for row in gpu}
    for row in offline:
        row["same_as_gpu"] = row["digest"] in ran
    by_digest = {row["digest"]: row["index"] for row in offline}
    for row in gpu:
        row["offline_configuration"] = by_digest.get(row["digest"])
        print(row["kernel"], row["registers"], row["spills"], row["shared"], row["digest"],
              row["offline_configuration"])
    matched = sorted(row["index"] for row in offline if row["same_as_gpu"])
    print(f"{len(gpu)} kernels compiled on the GPU; offline configurations with the same code: {matched}")
    save(dict(shape=SHAPE, gpu=gpu, offline=offline, matched=matched))
    return 0


if __name__ == "__main__":
    sys.exit(main())
