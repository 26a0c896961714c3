"""Time the Triton scan on one GPU next to causal SDPA, fla's ``chunk_simple_gla`` and a copy.

    python benchmarks/gpu_bench.py [--settings gpu_tune.json] [--skip-sweep] [--out benchmarks/results/gpu_triton.json]

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
Timing: ``triton.testing.do_bench`` median (CUDA events). Needs CUDA.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from glrtheory import Pattern  # noqa: E402
from glrtheory.kernels.scan.triton import glr_scan_triton  # noqa: E402
from glrtheory.symbolic.costs import evaluate, theta, total_cost_bound  # noqa: E402

SPECS = ["ssm", "power2", "quadratic", "fenwick", "blocks"]
SWEEP_SPECS = ["ssm", "power2", "quadratic", "fenwick"]


def bench(fn, rep=200) -> float:
    from triton.testing import do_bench
    return float(do_bench(fn, warmup=25, rep=rep, return_mode="median"))


def inputs(spec, B, T, H, D, dtype=torch.bfloat16, grad=False):
    tables = Pattern.from_spec(spec).tables(T)
    wa, wb = tables[0].shape[1], tables[1].shape[1]
    u = torch.randn(B, T, H, D, device="cuda", dtype=dtype)
    a = (torch.rand(B, T, H, wa, device="cuda") + 0.5).to(dtype)
    b = ((torch.rand(B, T, H, wb, device="cuda") * 2 - 1) / max(1, wb)).to(dtype)
    if grad:
        u, a, b = (x.requires_grad_() for x in (u, a, b))
    return tables, u, a, b


def ours(spec, B, T, H, D, copy_gbps) -> dict:
    tables, u, a, b = inputs(spec, B, T, H, D, grad=True)
    nnz = sum(int((t >= 0).sum()) for t in tables)
    row = dict(op=f"glr_scan_triton {spec}", B=B, T=T, H=H, D=D, dtype="bfloat16", nnz=nnz)
    try:
        with torch.no_grad():
            glr_scan_triton(u, a, b, tables)
            row["ms"] = bench(lambda: glr_scan_triton(u, a, b, tables))
        g = torch.randn_like(u)
        row["ms_fwd_bwd"] = bench(lambda: glr_scan_triton(u, a, b, tables).backward(g))
    except Exception as e:           # record, do not hide
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    el = 2                            # bytes per bf16 element
    fwd = el * (2 * u.numel() + a.numel() + b.numel())
    row.update(bytes=fwd, bytes_fwd_bwd=fwd + el * (4 * u.numel() + 2 * (a.numel() + b.numel())))
    row.update(floor_ms=row["bytes"] / copy_gbps / 1e6, floor_ms_fwd_bwd=row["bytes_fwd_bwd"] / copy_gbps / 1e6)
    if "ms" in row:
        row.update(over_floor=row["ms"] / row["floor_ms"], over_floor_fwd_bwd=row["ms_fwd_bwd"] / row["floor_ms_fwd_bwd"])
    return row


def sdpa(B, T, H, D, backward=True) -> dict:
    q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    row = dict(op="sdpa causal", B=B, T=T, H=H, D=D, dtype="bfloat16")
    with torch.no_grad():
        row["ms"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    if backward:
        g = torch.randn_like(q)
        row["ms_fwd_bwd"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g))
    return row


def fla_gla(B, T, H, D) -> dict:
    row = dict(op="fla chunk_simple_gla", B=B, T=T, H=H, D=D, dtype="bfloat16")
    try:
        import fla
        from fla.ops.simple_gla import chunk_simple_gla
        row["fla"] = getattr(fla, "__version__", "?")
        q, k, v = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        gl = F.logsigmoid(torch.randn(B, T, H, device="cuda", dtype=torch.float32)).requires_grad_()
        with torch.no_grad():
            row["ms"] = bench(lambda: chunk_simple_gla(q, k, v, gl)[0])
        try:
            g = torch.randn_like(v)
            row["ms_fwd_bwd"] = bench(lambda: chunk_simple_gla(q, k, v, gl)[0].backward(g))
        except Exception as e:
            row["backward_error"] = f"{type(e).__name__}: {str(e)[:300]} (forward only compared)"
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    return row


def sweep(lengths, B, H, D) -> list[dict]:
    rows = []
    for T in lengths:
        for spec in SWEEP_SPECS:
            tables, u, a, b = inputs(spec, B, T, H, D)
            with torch.no_grad():
                glr_scan_triton(u, a, b, tables)
                rows.append(dict(op=spec, T=T, ms=bench(lambda: glr_scan_triton(u, a, b, tables), rep=50)))
            del u, a, b
        rows.append(dict(sdpa(B, T, H, D, backward=False), op="sdpa"))
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_triton.json"))
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--settings", help="gpu_tune.py JSON: use the setting with the fastest power2 fwd+bwd")
    args = ap.parse_args(argv)
    from glrtheory.kernels.scan import triton as backend
    if args.settings:
        rows = [r for r in json.loads(Path(args.settings).read_text())["rows"]
                if r["spec"] == "power2" and "ms_fwd_bwd" in r]
        best = min(rows, key=lambda r: r["ms_fwd_bwd"])
        backend.GPU.update({k: best[k] for k in ("BD", "JB", "E", "warps")})
        backend.DEFAULT_CHUNK = best["chunk"]
    if not torch.cuda.is_available():
        print("needs CUDA", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    B, T, H, D = 2, 16384, 16, 128
    u = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    h = torch.empty_like(u)
    copy_ms = bench(lambda: h.copy_(u))
    copy_gbps = 2 * u.numel() * 2 / copy_ms / 1e6
    rows = [dict(op="copy u->h", B=B, T=T, H=H, D=D, dtype="bfloat16", ms=copy_ms, bytes=4 * u.numel(),
                 GB_per_s=copy_gbps)]
    del u, h
    rows.append(sdpa(B, T, H, D))
    rows.append(fla_gla(B, T, H, D))
    for spec in SPECS:
        rows.append(ours(spec, B, T, H, D, copy_gbps))
        print(rows[-1], flush=True)
    lengths = [2**k for k in range(10, 18)]
    sweep_rows = [] if args.skip_sweep else sweep(lengths, 1, 16, 64)
    prop = torch.cuda.get_device_properties(0)
    import triton
    header = dict(machine(), gpu=prop.name, multiprocessors=prop.multi_processor_count, triton=triton.__version__,
                  cuda=torch.version.cuda)
    result = dict(machine=header, settings=dict(backend.GPU, chunk=backend.DEFAULT_CHUNK), command="python benchmarks/gpu_bench.py",
                  timing="triton.testing.do_bench median (CUDA events), warmup 25 ms",
                  rows=rows, sweep=dict(shape="B1 H16 D64 bf16, forward", rows=sweep_rows,
                                        fits=fit(sweep_rows, lengths)),
                  seconds=time.perf_counter() - t0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for r in rows:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    for f in result["sweep"]["fits"]:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
