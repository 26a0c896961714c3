"""One op of the issue-12 shapes (B2 T16384 H16 D128 bf16), run a few times for Nsight Compute to read.

    ncu --clock-control none -k regex:forward_walk --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
        python benchmarks/gpu_ncu.py scan-forward power2

Ops: ``scan-forward`` and ``scan-backward`` (the vector-state scan, forward / forward + backward),
``readout-forward`` and ``readout-backward`` (``glr_readout``, matrix state). ``benchmarks/gpu_ncu.sh``
runs the sections on the walks (the kernels that go through the chunks in order) into $OUT.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import inputs  # noqa: E402
from gpu_readout import problem  # noqa: E402

from glrtheory.kernels.scan.op import glr_scan  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout  # noqa: E402

SHAPE = (2, 16384, 16, 128)


def op(name: str, spec: str):
    """A callable running ``name`` for ``spec`` at ``SHAPE``."""
    if name.startswith("scan"):
        tables, u, a, b = inputs(spec, *SHAPE, grad=name.endswith("backward"))
        run = lambda: glr_scan(u, a, b, tables, backend="triton")  # noqa: E731
    else:
        tables, xs = problem(spec, *SHAPE, "cuda")
        run = lambda: glr_readout(*xs, tables, backend="triton")  # noqa: E731
    if name.endswith("forward"):
        return lambda: torch.no_grad()(run)()
    return lambda: run().float().sum().backward()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("op", choices=("scan-forward", "scan-backward", "readout-forward", "readout-backward"))
    ap.add_argument("spec")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    fn = op(args.op, args.spec)
    for _ in range(args.repeat):
        fn()
    torch.cuda.synchronize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
