"""The matrix-state readout of patterns that are not aligned (``tiled_mixing``: power2, quadratic, ...) on one GPU,
at the layer's shape (B8 T2048 H8 D128, bf16 unless ``--dtype``), beside causal SDPA in the same run.

    python benchmarks/gpu_tiled.py [--specs power2,quadratic] [--shape 8,2048,8,128] [--out PATH]

Per spec: the algorithm ``glr_readout`` picks, forward ms and forward + backward ms (``gpu_common.bench``), the
device's kernel time, launches and longest kernels of one forward and of one forward + backward
(``gpu_common.device_busy``), the peak memory of a forward + backward, and the forward's norm-relative difference
from the same readout in float32. ``--chunks``: the same at each tile width given (``glr_readout``'s ``chunk``);
``--float32-coefficients``: a, b in float32; ``--all-kernels``: every kernel of a forward + backward; ``--host``: the
host's milliseconds of a forward and of a forward + backward (``gpu_common.host_ms``) and the Python functions that
take most of the host's time in a forward + backward (``cProfile``, by own time).
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import (bench, device_busy, error, free, host_ms, inputs, kernel_ms, parser, peak_bytes,  # noqa: E402
                        python_functions, saver)
from gpu_bench import sdpa  # noqa: E402

from glrtheory.kernels.scan.readout import glr_readout, readout_algorithm  # noqa: E402

SPECS = ("power2", "quadratic")


def row(spec, B, T, H, D, device, rep, chunk=None, dtype=torch.bfloat16, float32_coefficients=False,
        all_kernels=False, host=False) -> dict:
    """One spec's forward and forward + backward (module docstring), tiles of ``chunk`` columns (None: the
    default); a, b in float32 beside q's dtype if asked (as a layer under autocast passes them); every kernel of a
    forward + backward (``kernel_ms``) and the host's time (``host_profile``) if asked."""
    tables, q, a, b = inputs(spec, B, T, H, D, dtype=dtype, device=device)
    if float32_coefficients:
        a, b = a.float(), b.float()
    k, v = torch.randn_like(q), torch.randn_like(q)
    q = q * D ** -0.5
    leaves = [x.detach().clone().requires_grad_() for x in (q, k, v, a, b)]
    grad = torch.randn_like(v)

    def forward():
        with torch.no_grad():
            return glr_readout(q, k, v, a, b, tables, chunk=chunk)

    def forward_backward():
        glr_readout(*leaves, tables, chunk=chunk).backward(grad)

    out = dict(op=f"glr_readout {spec}", chunk=chunk, algorithm=readout_algorithm(tables)[0],
               coefficients=str(a.dtype).replace("torch.", ""))
    try:
        ref = glr_readout(*(x.float() for x in (q, k, v, a, b)), tables)
        got = forward().float()
        out["rel_err_vs_float32"] = float((got - ref).norm() / ref.norm())
        out["ms"] = bench(forward, rep, device)
        out["forward_device"] = device_busy(forward, device, steps=2)
        out["ms_fwd_bwd"] = bench(forward_backward, rep, device)
        out["fwd_bwd_device"] = device_busy(forward_backward, device, steps=2)
        out.update(peak_bytes(forward_backward, device))
        if all_kernels and device != "cpu":
            out["fwd_bwd_kernels"] = kernel_ms(forward_backward, steps=2)[0]
        if host:
            out.update(host_profile(forward, forward_backward, device))
    except Exception as e:                  # noqa: BLE001 - recorded in the row
        out["error"] = error(e)
    free(device)
    return out


def host_profile(forward, forward_backward, device, calls=5, top=30) -> dict:
    """The host's ms of a forward and of a forward + backward (``host_ms``), and the ``top`` Python functions by
    their own time over ``calls`` forwards + backwards (``python_functions``)."""
    return dict(host_ms=host_ms(forward, device), host_ms_fwd_bwd=host_ms(forward_backward, device),
                host_functions=python_functions(forward_backward, device, calls, top))


def main(argv=None) -> int:
    ap = parser(__doc__, "tiled", SPECS)
    ap.add_argument("--shape", default="8,2048,8,128", help="B,T,H,D")
    ap.add_argument("--rep", type=int, default=100)
    ap.add_argument("--chunks", default="", help="comma-separated tile widths to time (default: glr_readout's)")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="the inputs' dtype")
    ap.add_argument("--float32-coefficients", action="store_true", help="a, b in float32 (as a layer passes them)")
    ap.add_argument("--all-kernels", action="store_true", help="every kernel of a forward + backward in the row")
    ap.add_argument("--host", action="store_true", help="the host's time and its top Python functions in the row")
    args = ap.parse_args(argv)
    try:
        B, T, H, D = (int(x) for x in args.shape.split(","))
        chunks = [int(c) for c in args.chunks.split(",") if c] or [None]
    except ValueError:
        ap.error(f"--shape takes four integers B,T,H,D and --chunks integers, got {args.shape!r}, {args.chunks!r}")
    if min(B, T, H, D) < 1 or any(c is not None and c < 1 for c in chunks):
        ap.error(f"--shape and --chunks take positive integers, got {args.shape!r}, {args.chunks!r}")
    save = saver(args.out, "gpu_tiled.py")
    rows = [sdpa(B, T, H, D, device=args.device)]
    for spec, chunk in itertools.product(args.specs.split(","), chunks):
        rows.append(row(spec, B, T, H, D, args.device, args.rep, chunk, getattr(torch, args.dtype),
                        args.float32_coefficients, args.all_kernels, args.host))
        print(rows[-1], flush=True)
        save(dict(shape=dict(B=B, T=T, H=H, D=D), rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
