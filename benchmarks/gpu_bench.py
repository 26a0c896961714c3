"""Time the Triton scan on one GPU next to causal SDPA, fla's ``chunk_simple_gla`` and a copy.

    python benchmarks/gpu_bench.py [--settings gpu_tune.json] [--skip-sweep] [--specs ssm,power2] [--fla-shapes]
                                   [--out benchmarks/results/gpu_triton.json]

1. Anchors at B2 T16384 H16 D128, bf16: the copy u -> h (the bandwidth every roofline uses), causal
   ``scaled_dot_product_attention`` (q, k, v ``[B, H, T, D]``), fla's ``chunk_simple_gla`` (q, k, v
   ``[B, T, H, D]``, log-decay g ``[B, T, H]``; forward only where its backward refuses).
2. Ours (``glr_scan_triton``, u ``[B, T, H, D]``, a/b ``[B, T, H, w]``, bf16) for ssm, power2,
   quadratic, fenwick and blocks: forward and forward + backward, with the roofline: bytes that must move
   (forward: read u, a, b, write h; backward adds read g, u, h, a, b, write du, da, db) over the measured
   copy bandwidth, and measured time / that floor.
3. Length sweep T = 2^10 .. 2^17 at B1 H16 D64 (ours forward, SDPA forward): the exponent of time in T
   fitted over T >= 2^14, next to the symbolic class and the local exponent of ``total_cost_bound`` over the
   same lengths.
4. ``--fla-shapes``: fla's ``chunk_simple_gla`` next to our matrix-state readout (``glr_readout``, q, k, v
   ``[B, T, H, D]`` bf16, ssm and fenwick) forward, at the shapes of fla's op benchmarks (``SHAPE_CONFIGS``
   of ``benchmarks/ops/registry.py`` in fla-org/flash-linear-attention).
Timing: ``triton.testing.do_bench`` median (CUDA events). ``--device cpu`` (and every function's ``device``) is
a smoke run: float32, the PyTorch scan instead of the Triton one, wall-clock medians, tiny sizes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import TIMING, bench, dtype_name, error, inputs, is_cuda, saver  # noqa: E402
from gpu_fla import FLA_SHAPES, fla_gla, fla_shapes  # noqa: E402

from glrtheory import Pattern  # noqa: E402
from glrtheory.kernels.scan.op import glr_scan  # noqa: E402
from glrtheory.kernels.scan.triton import glr_scan_triton  # noqa: E402
from glrtheory.symbolic.costs import evaluate, theta, total_cost_bound  # noqa: E402

SPECS = ["ssm", "power2", "quadratic", "fenwick", "blocks"]
SWEEP_SPECS = ["ssm", "power2", "quadratic", "fenwick"]


def scan_op(device):
    """The scan a row times: the Triton kernel on CUDA, ``glr_scan`` (its CPU backend) elsewhere."""
    return glr_scan_triton if is_cuda(device) else glr_scan


def ours(spec, B, T, H, D, copy_gbps, device="cuda", dtype=torch.bfloat16) -> dict:
    tables, u, a, b = inputs(spec, B, T, H, D, dtype=dtype, grad=True, device=device)
    nnz = sum(int((t >= 0).sum()) for t in tables)
    scan = scan_op(device)
    row = dict(op=f"{scan.__name__} {spec}", B=B, T=T, H=H, D=D, dtype=dtype_name(dtype), nnz=nnz)
    try:
        with torch.no_grad():
            scan(u, a, b, tables)
            row["ms"] = bench(lambda: scan(u, a, b, tables), device=device)
        g = torch.randn_like(u)
        row["ms_fwd_bwd"] = bench(lambda: scan(u, a, b, tables).backward(g), device=device)
    except Exception as e:           # record, do not hide
        row["error"] = error(e)
    el = u.element_size()
    fwd = el * (2 * u.numel() + a.numel() + b.numel())
    row.update(bytes=fwd, bytes_fwd_bwd=fwd + el * (4 * u.numel() + 2 * (a.numel() + b.numel())))
    row.update(floor_ms=row["bytes"] / copy_gbps / 1e6, floor_ms_fwd_bwd=row["bytes_fwd_bwd"] / copy_gbps / 1e6)
    for key in ("", "_fwd_bwd"):
        if "ms" + key in row:
            row["over_floor" + key] = row["ms" + key] / row["floor_ms" + key]
    return row


def copy_row(B, T, H, D, device="cuda", dtype=torch.bfloat16) -> dict:
    """The copy u -> h of ``[B, T, H, D]``: the bandwidth (bytes read and written per second) rooflines use."""
    u = torch.randn(B, T, H, D, device=device, dtype=dtype)
    h = torch.empty_like(u)
    ms = bench(lambda: h.copy_(u), device=device)
    nbytes = 2 * u.numel() * u.element_size()
    return dict(op="copy u->h", B=B, T=T, H=H, D=D, dtype=dtype_name(dtype), ms=ms, bytes=nbytes,
                GB_per_s=nbytes / ms / 1e6)


def sdpa(B, T, H, D, backward=True, device="cuda", dtype=torch.bfloat16) -> dict:
    q, k, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    row = dict(op="sdpa causal", B=B, T=T, H=H, D=D, dtype=dtype_name(dtype))
    with torch.no_grad():
        row["ms"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), device=device)
    if backward:
        g = torch.randn_like(q)
        row["ms_fwd_bwd"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g),
                                  device=device)
    return row


def sweep(lengths, B, H, D, device="cuda", dtype=torch.bfloat16) -> list[dict]:
    rows = []
    scan = scan_op(device)
    for T in lengths:
        for spec in SWEEP_SPECS:
            tables, u, a, b = inputs(spec, B, T, H, D, dtype=dtype, device=device)
            with torch.no_grad():
                scan(u, a, b, tables)
                rows.append(dict(op=spec, T=T, ms=bench(lambda: scan(u, a, b, tables), rep=50, device=device)))
        rows.append(dict(sdpa(B, T, H, D, backward=False, device=device, dtype=dtype), op="sdpa"))
    return rows


def fit(rows, lengths) -> list[dict]:
    """Exponent of ms in T over T >= 2^14, beside the symbolic class and the local exponent of the exact
    operation count ``total_cost_bound`` over the same T (``n^2/2`` for SDPA)."""
    out = []
    big = [T for T in lengths if T >= 2**14]
    for op in SWEEP_SPECS + ["sdpa"]:
        ms = [r["ms"] for r in rows if r["op"] == op and r["T"] in big]
        if len(ms) < 2:
            continue
        slope = float(np.polyfit(np.log(big), np.log(ms), 1)[0])
        if op == "sdpa":
            cls, work = "n**2", np.array(big, float) ** 2
        else:
            p = Pattern.from_spec(op)
            cls, work = theta(p)["theta_total"], evaluate(total_cost_bound(p), np.array(big))
        out.append(dict(op=op, fitted_exponent=slope, theta_total=cls,
                        theory_local_exponent=float(np.polyfit(np.log(big), np.log(work), 1)[0]), T=big))
    return out


def apply_settings(path) -> dict:
    """Set the Triton scan's launch settings to the ``gpu_tune.py`` row (JSON at path) with the fastest power2
    forward + backward; returns the settings in force."""
    from glrtheory.kernels.scan import triton as backend
    if path:
        rows = [r for r in json.loads(Path(path).read_text())["rows"] if r["spec"] == "power2" and "ms_fwd_bwd" in r]
        best = min(rows, key=lambda r: r["ms_fwd_bwd"])
        backend.GPU.update({k: v for k, v in best.items() if k in backend.GPU})
        backend.DEFAULT_CHUNK = best["chunk"]
    return dict(backend.GPU, chunk=backend.DEFAULT_CHUNK)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_triton.json"))
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--specs", default=",".join(SPECS), help="comma-separated specs of ours")
    ap.add_argument("--shape", default="2,16384,16,128", help="B,T,H,D of the rows")
    ap.add_argument("--fla-shapes", action="store_true", help="also fla's benchmark shapes (forward, see above)")
    ap.add_argument("--settings", help="gpu_tune.py JSON: use the setting with the fastest power2 fwd+bwd")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cpu: a smoke run (float32, the PyTorch scan, sweep T = 2^4 .. 2^6)")
    args = ap.parse_args(argv)
    device = args.device
    dtype = torch.bfloat16 if is_cuda(device) else torch.float32          # the CPU scan takes no bf16
    save = saver(args.out, "gpu_bench.py")
    result = dict(settings=apply_settings(args.settings), timing=TIMING, rows=[])
    rows = result["rows"]
    B, T, H, D = map(int, args.shape.split(","))
    rows.append(copy_row(B, T, H, D, device, dtype))
    copy_gbps = rows[-1]["GB_per_s"]
    for make in (*(lambda s=s: ours(s, B, T, H, D, copy_gbps, device, dtype) for s in args.specs.split(",")),
                 lambda: sdpa(B, T, H, D, device=device, dtype=dtype), lambda: fla_gla(B, T, H, D, device=device)):
        # fla last: its refused backward first autotunes kernels, which once took over a minute
        rows.append(make())
        print(rows[-1], flush=True)
        save(result)
    if args.fla_shapes:
        shapes = FLA_SHAPES if is_cuda(device) else [(1, 16, 2, 8)]
        result["fla_shapes"] = dict(note="forward only; ours: glr_readout (matrix state)",
                                    rows=fla_shapes(shapes, device=device, dtype=dtype))
        save(result)
    if not args.skip_sweep:
        lengths = [2**k for k in (range(10, 18) if is_cuda(device) else range(4, 7))]
        sweep_rows = sweep(lengths, 1, 16, 64, device, dtype)
        result["sweep"] = dict(shape=f"B1 H16 D64 {dtype_name(dtype)}, forward", rows=sweep_rows,
                               fits=fit(sweep_rows, lengths))
        save(result)
    for f in result.get("sweep", {}).get("fits", []):
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
