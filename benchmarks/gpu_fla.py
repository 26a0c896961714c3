"""fla's ``chunk_simple_gla`` (matrix state, per-head decay) and ``chunk_log_linear_attn`` (its Fenwick levels) next
to our matrix-state readout ``glr_readout``, forward, at the shapes fla's own op benchmarks use: ``SHAPE_CONFIGS``
of ``benchmarks/ops/registry.py`` in fla-org/flash-linear-attention (commit
0080966f94e98296476b53d381d9144350ec7691), bf16, q, k, v ``[B, T, H, D]``, log-decay g ``[B, T, H]``
(``logsigmoid`` of a normal sample, as fla's registry makes it).

    python benchmarks/gpu_bench.py --fla-shapes ...       (rows under "fla_shapes" of its JSON)
    python benchmarks/gpu_fla.py [--shapes 2,16384,16,128;8,1024,8,64] [--specs ssm,fenwick] [--dtype float32]
                                 [--out PATH]     (these rows alone, saved after each shape; with several
                                                  shapes, each shape in a process of its own)

Where fla is not installed (or there is no CUDA) its rows say so and ours still run.
"""
from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from gpu_common import bench, dtype_name, error, inputs, is_cuda, parser, saver

from glrtheory.kernels.scan.readout import glr_readout, readout_algorithm

#: (B, T, H, D) of fla's op benchmarks.
FLA_SHAPES = [(1, 8192, 96, 128), (2, 16384, 16, 128), (4, 2048, 16, 128), (4, 4096, 64, 128), (8, 2048, 32, 256),
              (8, 1024, 8, 64)]
#: fla's ops these benchmarks run, by the module that holds each.
FLA_OPS = {"chunk_simple_gla": "fla.ops.simple_gla", "chunk_log_linear_attn": "fla.ops.log_linear_attn"}
#: Our patterns compared with it: the same first-order recurrence (ssm), and fenwick (log-linear-like).
FLA_SPECS = ["ssm", "fenwick"]


def fla_gla(B, T, H, D, backward=True, device="cuda") -> dict:
    """fla's ``chunk_simple_gla`` forward (and forward + backward, or why not); a row saying why where fla is
    missing or CUDA is not there (fla's kernels need it)."""
    return _fla_row("chunk_simple_gla", B, T, H, D, backward, device)


def fla_log_linear(B, T, H, D, backward=True, device="cuda") -> dict:
    """fla's ``chunk_log_linear_attn`` (log-linear Mamba-2: per-head decay g and a weight per Fenwick level,
    ``level_scales [B, T, H, L]`` in bf16 with ``L = ceil(log2 T) + 1``), the same aligned binary counter as our
    fenwick with scalar level weights in place of its state recurrence; timed as ``fla_gla``."""
    return _fla_row("chunk_log_linear_attn", B, T, H, D, backward, device)


def fla_inputs(op: str, B, T, H, D, device) -> list[torch.Tensor]:
    """The arguments of fla's ``op``: bf16 q, k, v ``[B, T, H, D]``, log-decay g ``[B, T, H]`` float32, and for
    ``chunk_log_linear_attn`` the level weights ``[B, T, H, ceil(log2 T) + 1]`` in q's dtype, as fla's tests make
    every input (its kernel multiplies them into a product with v, which must share v's dtype)."""
    q, k, v = (torch.randn(B, T, H, D, device=device, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    gl = F.logsigmoid(torch.randn(B, T, H, device=device, dtype=torch.float32)).requires_grad_()
    if op != "chunk_log_linear_attn":
        return [q, k, v, gl]
    levels = math.ceil(math.log2(T)) + 1
    return [q, k, v, gl, torch.rand(B, T, H, levels, device=device, dtype=q.dtype, requires_grad=True)]


def _fla_row(op: str, B, T, H, D, backward, device) -> dict:
    """One of fla's ops (``fla_gla``, ``fla_log_linear``) on ``fla_inputs`` (g is the ``logsigmoid`` of a normal
    sample, as fla's registry makes it); warnings fla gives are kept."""
    row = dict(op=f"fla {op}", B=B, T=T, H=H, D=D, dtype="bfloat16")
    try:
        import fla
        fn = getattr(importlib.import_module(FLA_OPS[op]), op)
    except (ImportError, AttributeError) as e:                     # fla missing, or a version without the op
        return dict(row, skipped=f"fla or its {op} is not installed ({error(e)})")
    if not is_cuda(device):
        return dict(row, skipped="fla's kernels need CUDA")
    try:
        row["fla"] = getattr(fla, "__version__", "?")
        args = fla_inputs(op, B, T, H, D, device)
        run = lambda: fn(*args)[0]  # noqa: E731
        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            row["ms"] = bench(run)
        if caught:
            row["warnings"] = sorted({str(w.message) for w in caught})
        if backward:
            try:
                g = torch.randn_like(args[2])
                row["ms_fwd_bwd"] = bench(lambda: run().backward(g))
            except Exception as e:
                row["backward_error"] = f"{error(e)} (forward only compared)"
    except Exception as e:
        row["error"] = error(e)
    return row


def readout_forward(spec, B, T, H, D, device="cuda", dtype=torch.bfloat16) -> dict:
    """``glr_readout`` forward (q, k, v ``[B, T, H, D]``, the pattern's random stable a, b) and the algorithm
    it runs (``chunked_aligned`` by its Triton forward on CUDA, ``backend="triton"``)."""
    backend = "triton" if is_cuda(device) else None
    row = dict(op=f"glr_readout {spec}", B=B, T=T, H=H, D=D, dtype=dtype_name(dtype), backend=backend or "torch")
    try:
        tables, k, a, b = inputs(spec, B, T, H, D, dtype=dtype, device=device)
        row["readout_algorithm"], row["cost_class"] = readout_algorithm(tables)[:2]
        q, v = torch.randn_like(k) * D ** -0.5, torch.randn_like(k)
        with torch.no_grad():
            row["ms"] = bench(lambda: glr_readout(q, k, v, a, b, tables, backend=backend), rep=100, device=device)
    except Exception as e:
        row["error"] = error(e)
    return row


def fla_shapes(shapes=FLA_SHAPES, specs=FLA_SPECS, device="cuda", dtype=torch.bfloat16) -> list[dict]:
    """Forward at fla's benchmark shapes: fla's ``chunk_simple_gla`` and ``chunk_log_linear_attn`` (where installed)
    and ``glr_readout`` for each spec, with ``over_fla`` = ours / fla's ``chunk_simple_gla`` and, for fenwick,
    ``over_fla_log_linear`` = ours / fla's ``chunk_log_linear_attn`` where both ran."""
    rows = []
    for B, T, H, D in shapes:
        ref = fla_gla(B, T, H, D, backward=False, device=device)
        log_linear = fla_log_linear(B, T, H, D, backward=False, device=device)
        rows += [ref, log_linear]
        print(ref, log_linear, sep="\n", flush=True)
        for spec in specs:
            row = readout_forward(spec, B, T, H, D, device=device, dtype=dtype)
            if "ms" in row and "ms" in ref:
                row["over_fla"] = row["ms"] / ref["ms"]
            if spec == "fenwick" and "ms" in row and "ms" in log_linear:
                row["over_fla_log_linear"] = row["ms"] / log_linear["ms"]
            rows.append(row)
            print(row, flush=True)
    return rows


def in_fresh_process(shape, specs, device, dtype) -> list[dict]:
    """``fla_shapes([shape])`` run by this script in a new Python process (its rows printed here too); one row
    with the error where that process fails.

    ``gpu_fla.py`` with several shapes times each this way: fla's kernels autotune by keys without B and T (``H, K,
    V, BT``), so in one process a shape reuses the launch settings tuned at an earlier one with the same heads. That
    this moved fla's times was not shown: at B2 T16384 H16 D128 its ``chunk_simple_gla`` took 0.429 ms in a fresh
    process in ``call139`` and 0.590 in ``call140``. The new process runs the readout's default launch settings, so
    ``gpu_readout.py`` and ``gpu_bench.py``, which may change them (``--settings``), keep their shapes in their own
    process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, __file__, "--shapes", ",".join(map(str, shape)), "--specs", ",".join(specs),
               "--device", str(device), "--dtype", dtype_name(dtype), "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        print(done.stdout, end="", flush=True)
        if done.returncode != 0 or not out.exists():
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return [dict(op="fla shapes", B=shape[0], T=shape[1], H=shape[2], D=shape[3],
                         error=f"its process exited {done.returncode}: {why}")]
        return json.loads(out.read_text())["rows"]


def main(argv=None) -> int:
    ap = parser(__doc__, "fla", FLA_SPECS)
    ap.add_argument("--shapes", default=";".join(",".join(map(str, s)) for s in FLA_SHAPES),
                    help="B,T,H,D shapes separated by ';' (default: fla's six)")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="of our rows (fla's: bf16)")
    args = ap.parse_args(argv)
    try:
        shapes = [tuple(int(x) for x in s.split(",")) for s in args.shapes.split(";")]
    except ValueError:
        ap.error(f"--shapes takes B,T,H,D;B,T,H,D..., got {args.shapes!r}")
    if any(len(s) != 4 or min(s) < 1 for s in shapes):
        ap.error(f"--shapes takes four positive integers a shape, got {args.shapes!r}")
    save, rows = saver(args.out, "gpu_fla.py"), []
    specs, dtype = args.specs.split(","), getattr(torch, args.dtype)
    for shape in shapes:            # several shapes: each in a process of its own (``in_fresh_process``)
        rows += (in_fresh_process(shape, specs, args.device, dtype) if len(shapes) > 1
                 else fla_shapes([shape], specs=specs, device=args.device, dtype=dtype))
        save(dict(note=f"forward only; ours: glr_readout (matrix state), {args.dtype}", rows=rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
