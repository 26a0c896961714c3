"""Build, verify and time ``glr_scan`` on CUDA next to ``scaled_dot_product_attention``.

    python benchmarks/gpu_bench.py [--out benchmarks/results/gpu.json] [--smoke]

1. Verification: the CUDA op in float64 and float32 against the float64 reference of the core
   (``glrtheory.solve``, token by token, numpy on the host) on fresh random inputs at the benchmark
   shapes, outputs compared by ||out - ref|| / ||ref|| (float64 <= 1e-12, float32 <= 1e-5).
2. Timing: forward and forward+backward of ``glr_scan`` (float32; 8 heads, d = 64, n = 4096 / 16384 /
   65536) for ``power2`` and ``fenwick``, a device copy of u into h (the memory floor), and
   ``scaled_dot_product_attention`` (causal, the same [1, 8, n, 64] shapes, float32 and bf16).
   Median of repeated runs after warm-up, CUDA events (``triton.testing.do_bench`` when triton is there);
   glr_scan with its chunk loop run eagerly and replayed as a CUDA graph. Every verified output is a
   second call (other data first), so on CUDA it comes from a graph replay with freshly copied inputs.
Needs no numba. ``--smoke`` runs a tiny version (CPU allowed) to check the script itself.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glrtheory import Pattern, solve
from glrtheory.kernels import torch_algorithms as algorithms
from glrtheory.kernels.torch import flops, glr_scan

HEADS, D = 8, 64
LENGTHS = [4096, 16384, 65536]
SPECS = ["power2", "fenwick"]
CHUNKS = [64, 256, 1024]


def machine(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "python": sys.version.split()[0], "numpy": np.__version__,
            "torch": torch.__version__, "cuda": torch.version.cuda, "processor": platform.processor(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        info.update(gpu=prop.name, gpu_memory_gib=round(prop.total_memory / 2**30, 1),
                    multiprocessors=prop.multi_processor_count)
    return info


def timer(device: torch.device):
    """Median milliseconds of fn(): triton.testing.do_bench (CUDA events) or a synchronized loop."""
    if device.type == "cuda":
        try:
            from triton.testing import do_bench
            return (lambda fn: float(do_bench(fn, warmup=50, rep=300, return_mode="median")),
                    "triton.testing.do_bench median (CUDA events, L2 flushed between runs), warmup 50 ms, rep 300 ms")
        except ImportError:
            pass

    def bench(fn, reps=20):
        fn()
        out = []
        for _ in range(reps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            out.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(out)
    return bench, "median of 20 synchronized wall-clock runs after one warm-up"


def problem(rng, spec: str, n: int, heads: int, d: int):
    p = Pattern.from_spec(spec)
    tables = p.tables(n)
    a_idx, b_idx = tables
    u = rng.standard_normal((heads, n, d))
    a = rng.uniform(0.5, 1.5, (heads,) + a_idx.shape)
    b = rng.uniform(-1, 1, (heads,) + b_idx.shape) / max(1, b_idx.shape[1])
    return p, tables, u, a, b


def rel_err(out: torch.Tensor, ref: np.ndarray) -> float:
    out = out.detach().double().cpu().numpy()
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


def verify(device, lengths, specs, heads, d, rng) -> list[dict]:
    rows = []
    for spec in specs:
        for n in lengths:
            p, tables, u, a, b = problem(rng, spec, n, heads, d)
            t0 = time.perf_counter()
            ref = solve(p, a, b, u)
            ref_s = time.perf_counter() - t0
            for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
                for chunk in CHUNKS:
                    args = [torch.tensor(x, dtype=dtype, device=device) for x in (u, a, b)]
                    glr_scan(*(torch.randn_like(x) for x in args), tables, chunk=chunk)  # other data first:
                    err = rel_err(glr_scan(*args, tables, chunk=chunk), ref)              # a CUDA graph replays
                    rows.append(dict(spec=spec, n=n, dtype=str(dtype).removeprefix("torch."), chunk=chunk,
                                     rel_err=err, tol=tol, ok=bool(err <= tol), reference_seconds=ref_s))
    return rows


def time_all(device, lengths, specs, heads, d, rng, bench) -> list[dict]:
    rows = []
    for n in lengths:
        shape = (heads, n, d)
        u = torch.randn(shape, device=device)
        h = torch.empty_like(u)
        copy_ms = bench(lambda: h.copy_(u))
        rows.append(dict(op="copy u->h (floor)", n=n, dtype="float32", ms=copy_ms,
                         bytes=2 * u.numel() * 4))
        for dtype in (torch.float32, torch.bfloat16):
            q, k, v = (torch.randn((1,) + shape, device=device, dtype=dtype) for _ in range(3))
            try:
                ms = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
                qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
                ms_fb = bench(lambda: F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).sum().backward())
                rows.append(dict(op="sdpa causal", n=n, dtype=str(dtype).removeprefix("torch."), ms=ms,
                                 ms_fwd_bwd=ms_fb, flops=4 * heads * d * n * (n + 1) // 2))
            except RuntimeError as e:        # out of memory or no kernel: record, do not hide
                rows.append(dict(op="sdpa causal", n=n, dtype=str(dtype).removeprefix("torch."), error=str(e)[:200]))
            del q, k, v
        for spec in specs:
            tables = Pattern.from_spec(spec).tables(n)
            a_idx, b_idx = tables
            a = torch.rand((heads,) + a_idx.shape, device=device) + 0.5
            b = (torch.rand((heads,) + b_idx.shape, device=device) * 2 - 1) / max(1, b_idx.shape[1])
            nbytes = 4 * (2 * u.numel() + a.numel() + b.numel())
            for chunk, graphs in [(c, g) for c in CHUNKS for g in (False, True)]:
                algorithms.CUDA_GRAPHS = graphs
                glr_scan(u, a, b, tables, chunk=chunk)                     # plan built outside the timing
                ms = bench(lambda: glr_scan(u, a, b, tables, chunk=chunk))
                ug, ag, bg = (x.clone().requires_grad_() for x in (u, a, b))
                ms_fb = bench(lambda: glr_scan(ug, ag, bg, tables, chunk=chunk).sum().backward())
                rows.append(dict(op=f"glr_scan {spec}" + (" graph" if graphs else ""), n=n, dtype="float32",
                                 chunk=chunk, cuda_graphs=graphs, ms=ms, ms_fwd_bwd=ms_fb,
                                 flops=flops(tables, heads, d), bytes=nbytes,
                                 nnz=int((a_idx >= 0).sum() + (b_idx >= 0).sum())))
            algorithms.CUDA_GRAPHS = True
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, any device (checks the script)")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    rng = np.random.default_rng()
    lengths, heads, d = ([1, 2, 63, 300], 2, 8) if args.smoke else (LENGTHS, HEADS, D)
    bench, method = timer(device)
    t0 = time.perf_counter()
    small = [1, 2, 63, 1000] if args.smoke else [1, 2, 63, 1000, 4097]
    checks = (verify(device, small + ([] if args.smoke else lengths), SPECS, heads, d, rng)
              + verify(device, small, ["blocks", "quadratic", "kron:1,11"], heads, d, rng)
              + verify(device, [1, 2, 63, 1000], ["attention"], heads, d, rng))
    print(f"verified {len(checks)} cases in {time.perf_counter() - t0:.1f} s; "
          f"max float64 err {max(c['rel_err'] for c in checks if c['dtype'] == 'float64'):.2e}, "
          f"max float32 err {max(c['rel_err'] for c in checks if c['dtype'] == 'float32'):.2e}; "
          f"all ok: {all(c['ok'] for c in checks)}", flush=True)
    timings = time_all(device, lengths, SPECS, heads, d, rng, bench)
    result = {"machine": machine(device), "timing_method": method,
              "shapes": f"glr_scan u[{heads}, n, {d}] (heads, n, d), a/b on the pattern tables; "
                        f"sdpa q,k,v[1, {heads}, n, {d}], is_causal=True",
              "command": "python benchmarks/gpu_bench.py" + (" --smoke" if args.smoke else ""),
              "verification": checks, "timings": timings}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{'op':30s} {'n':>6s} {'dtype':9s} {'chunk':>5s} {'fwd ms':>9s} {'fwd+bwd ms':>10s}")
    for r in timings:
        print(f"{r['op']:30s} {r['n']:6d} {r['dtype']:9s} {str(r.get('chunk', '')):>5s} "
              f"{r.get('ms', math.nan):9.3f} {r.get('ms_fwd_bwd', math.nan):10.3f} {r.get('error', '')}")
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
