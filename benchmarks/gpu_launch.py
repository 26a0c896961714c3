"""The host's cost of single launches, in microseconds, measured with the device busy (``gpu_common.host_ms``): what
a host-bound layer (``gpu_layer.py``) spends per op, so that its host time can be read off its launches.

    python benchmarks/gpu_launch.py [--out PATH]

Rows: a torch elementwise op (``x.add_(1)``); ``torch.cat`` of four weights of the layer's input projections at
d_model 1024 (what ``GLRMixer._projections`` did every step before ``in_proj``); ``F.linear`` at the layer's shape
(B8 T2048, bf16); a trivial Triton kernel with 2 and with 16 tensor arguments (and 8 integers), launched through
``triton_launch``'s direct path, through Triton's JIT, and bound (``triton_launch.bind``, the tensors given); and
the Triton readout (``glr_readout``, ssm and fenwick, B1 T2048 H1 d 128 bf16, so that its kernels take next to
nothing), forward alone and forward + backward, eager (``graphs`` 0) and replayed as CUDA graphs
(``readout_graphs``, the default).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import triton
import triton.language as tl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import error, host_ms, parser, saver  # noqa: E402

from glrtheory import Pattern  # noqa: E402
from glrtheory.kernels.scan import readout_triton, triton_launch  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout  # noqa: E402
from glrtheory.kernels.scan.triton_launch import launcher  # noqa: E402


@launcher
@triton.jit
def _two(p0, p1, n0, n1, n2, n3, n4, n5, n6, n7, B: tl.constexpr):
    tl.store(p0 + tl.arange(0, B), tl.load(p1 + tl.arange(0, B)) + n0)


@launcher
@triton.jit
def _sixteen(p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, n0, n1, n2, n3, n4, n5, n6, n7,
             B: tl.constexpr):
    tl.store(p0 + tl.arange(0, B), tl.load(p15 + tl.arange(0, B)) + n0)


def _triton_rows(device) -> list[dict]:
    x = [torch.zeros(16, device=device) for _ in range(16)]
    ints = list(range(1, 9))
    rows = []
    for name, kernel, ptrs in (("triton kernel, 2 tensors + 8 ints", _two, x[:2]),
                               ("triton kernel, 16 tensors + 8 ints", _sixteen, x)):
        for direct in (True, False):
            triton_launch.DIRECT = direct
            try:
                rows.append(dict(op=name, launch="direct" if direct else "jit",
                                 host_us=1e3 * host_ms(lambda: kernel[(1,)](*ptrs, *ints, B=16), device, calls=50)))
            finally:
                triton_launch.DIRECT = True
        bound = triton_launch.bind(kernel, (1,), *[triton_launch.ARG] * len(ptrs), *ints, B=16)
        rows.append(dict(op=name, launch="bound", host_us=1e3 * host_ms(lambda: bound(*ptrs), device, calls=50)))
    return rows


def _readout_rows(device) -> list[dict]:
    rows, graphs_on = [], readout_triton.GPU["graphs"]
    try:
        for spec in ("ssm", "fenwick"):
            tables = Pattern.from_spec(spec).tables(2048)
            q, k, v = (torch.randn(1, 2048, 1, 128, device=device, dtype=torch.bfloat16, requires_grad=True)
                       for _ in range(3))
            a, b = (torch.rand(1, 2048, 1, idx.shape[1], device=device, requires_grad=True) for idx in tables)
            g = torch.randn_like(v)

            def forward():
                with torch.no_grad():
                    glr_readout(q, k, v, a, b, tables)

            def forward_backward():
                glr_readout(q, k, v, a, b, tables).backward(g)

            for graphs in (0, graphs_on):
                readout_triton.GPU["graphs"] = graphs
                for label, fn in (("forward", forward), ("forward + backward", forward_backward)):
                    try:
                        rows.append(dict(op=f"glr_readout {spec}, B1 T2048 H1 d128 bf16, {label}", graphs=graphs,
                                         host_us=1e3 * host_ms(fn, device, calls=10)))
                    except Exception as e:                  # record, do not hide
                        rows.append(dict(op=f"glr_readout {spec} {label}", graphs=graphs, error=error(e)))
    finally:
        readout_triton.GPU["graphs"] = graphs_on
    return rows


def run(device="cuda", save=None) -> dict:
    x = torch.zeros(1024, device=device)
    weights = [torch.randn(n, 1024, device=device) for n in (1024, 1024, 1024, 24)]
    act = torch.randn(8, 2048, 1024, device=device, dtype=torch.bfloat16)
    w = torch.randn(3096, 1024, device=device, dtype=torch.bfloat16)
    rows = [dict(op="x.add_(1)", host_us=1e3 * host_ms(lambda: x.add_(1), device, calls=100)),
            dict(op="torch.cat of the layer's 4 projection weights (float32)",
                 host_us=1e3 * host_ms(lambda: torch.cat(weights), device, calls=50)),
            dict(op="F.linear [8, 2048, 1024] x [3096, 1024] bf16",
                 host_us=1e3 * host_ms(lambda: torch.nn.functional.linear(act, w), device, calls=20))]
    rows += _triton_rows(device) + _readout_rows(device)
    result = dict(measure="host microseconds per call, the device kept busy (gpu_common.host_ms)", rows=rows)
    if save is not None:
        save(result)
    for r in rows:
        print(r, flush=True)
    return result


def main(argv=None) -> int:
    ap = parser(__doc__, "launch", ())
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        ap.error("gpu_launch.py measures CUDA launches; this machine has no CUDA")
    run(args.device, saver(args.out, "gpu_launch.py"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
