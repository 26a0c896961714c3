"""fenwick's factored readout (``kernels/scan/readout_factored.py``) on one GPU, beside fla's ``chunk_simple_gla`` and
``glr_readout`` for ssm and fenwick (generic coefficients) in the same run.

1. Checks: the factored forward against ``glr_readout`` of fenwick's tables with b expanded (``f_t h_s``): in float64
   (torch ops) at n = 4097, in float32 (its Triton forward) at n = 65536 and at the main shape.
2. Rows (forward ms, no gradients): fla, ssm, fenwick generic, fenwick factored at its default settings, with its
   kernels' profile; ``over_fla`` is ours / fla's, and the target is at most 1.5.
3. A sweep of the factored launch settings (walk tile, warps, stages; output block, warps, stages), each checked
   against the float32 reference before it is timed.

    python benchmarks/gpu_factored.py --out benchmarks/results/gpu_calls/callN/factored.json
"""
from __future__ import annotations

import itertools

import torch

from gpu_common import bench, device_busy, error, free, inputs, is_cuda, parser, saver
from gpu_fla import fla_gla, readout_forward

from glrtheory import Pattern
from glrtheory.kernels.scan import readout_factored as RF
from glrtheory.kernels.scan.readout import glr_readout

WALK = [dict(walk_k=k, walk_v=v, walk_warps=w, walk_stages=s)
        for k, v, w, s in [(32, 64, 4, 2), (32, 64, 4, 1), (32, 64, 4, 3), (64, 64, 4, 2), (64, 64, 8, 2),
                           (32, 32, 4, 2), (16, 64, 4, 2), (32, 128, 4, 2), (64, 128, 8, 2)]]
OUT = [dict(out_v=v, out_warps=w, out_stages=s)
       for v, w, s in [(128, 4, 2), (128, 4, 1), (128, 4, 3), (128, 8, 2), (64, 4, 2), (64, 4, 3)]]


def problem(B, T, H, D, device, dtype=torch.bfloat16):
    """q (scaled by D^-1/2), k, v; a in [0.5, 1.5); f in [0, 1) / width, h in [0.3, 1): rows of |b| summing below 1."""
    width = max(1, int(T - 1).bit_length())
    q, k, v = (torch.randn(B, T, H, D, device=device).to(dtype) for _ in range(3))
    q = q * D ** -0.5
    a = torch.rand(B, T, H, device=device) + 0.5
    f = torch.rand(B, T, H, device=device) / width
    h = torch.rand(B, T, H, device=device) * 0.7 + 0.3
    return q, k, v, a, f, h


def generic(q, k, v, a, f, h, backend=None):
    """``glr_readout`` of fenwick's tables with b expanded: the reference."""
    return glr_readout(q, k, v, a[..., None], RF.expanded(f, h), Pattern.from_spec("fenwick").tables(q.shape[1]),
                       backend=backend)


def rel(x, y) -> float:
    return float((x.double() - y.double()).norm() / y.double().norm())


def checks(shape, device) -> list[dict]:
    rows = []
    long = [(1, 4097, 2, 64, torch.float64), (1, 65536, 1, 64, torch.float32)] if is_cuda(device) else \
        [(1, 70, 2, 16, torch.float64)]        # the CPU (the interpreter): the script's own smoke run
    for B, T, H, D, ref_dtype in long + [(*shape, torch.float32)]:
        row = dict(check="factored bf16 and float32 vs glr_readout (b expanded)", B=B, T=T, H=H, D=D,
                   reference=str(ref_dtype).replace("torch.", ""))
        try:
            xs = problem(B, T, H, D, device)
            with torch.no_grad():
                ref = generic(*(x.to(ref_dtype) for x in xs))
                row["rel_err_bf16"] = rel(RF.fenwick_factored_readout(*xs), ref)
                row["rel_err_float32"] = rel(RF.fenwick_factored_readout(*(x.float() for x in xs)), ref)
        except Exception as e:
            row["error"] = error(e)
        rows.append(row)
        free(device)
    return rows


def factored_row(shape, device, setting=None, ref=None) -> dict:
    row = dict(op="fenwick factored", B=shape[0], T=shape[1], H=shape[2], D=shape[3], dtype="bfloat16",
               setting=dict(RF.GPU, **(setting or {})))
    saved = dict(RF.GPU)
    try:
        RF.GPU.update(setting or {})
        xs = problem(*shape, device)
        with torch.no_grad():
            out = RF.fenwick_factored_readout(*xs)
            if ref is not None:
                row["rel_err_vs_float32"] = rel(out, ref(xs))
            row["ms"] = bench(lambda: RF.fenwick_factored_readout(*xs), rep=100, device=device)
            if setting is None:
                row["profile"] = device_busy(lambda: RF.fenwick_factored_readout(*xs), device)
    except Exception as e:
        row["error"] = error(e)
    finally:
        RF.GPU.clear()
        RF.GPU.update(saved)
    free(device)
    return row


def ssm_profile(shape, device) -> dict:
    """The kernels of ssm's ``glr_readout`` forward at the shape (bf16), beside which the factored ones are read."""
    try:
        tables, k, a, b = inputs("ssm", *shape, dtype=torch.bfloat16, device=device)
        q, v = torch.randn_like(k) * shape[3] ** -0.5, torch.randn_like(k)
        with torch.no_grad():
            return device_busy(lambda: glr_readout(q, k, v, a, b, tables), device)
    except Exception as e:
        return dict(error=error(e))
    finally:
        free(device)


def main(argv=None) -> int:
    ap = parser(__doc__, "factored", ["ssm", "fenwick"])
    ap.add_argument("--shape", default="2,16384,16,128", help="B,T,H,D")
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args(argv)
    shape = tuple(int(x) for x in args.shape.split(","))
    save, result = saver(args.out, "gpu_factored.py"), dict(rows=[], sweep=[])
    result["checks"] = checks(shape, args.device)
    save(result)
    fla = fla_gla(*shape, backward=False, device=args.device)
    result["rows"] += [fla] + [readout_forward(s, *shape, device=args.device) for s in args.specs.split(",")]
    result["ssm_profile"] = ssm_profile(shape, args.device)
    ours = factored_row(shape, args.device)
    result["rows"].append(ours)
    if "ms" in fla and "ms" in ours:
        result["over_fla"] = ours["ms"] / fla["ms"]
        result["target_met"] = result["over_fla"] <= 1.5
    save(result)
    if not args.no_sweep:
        reference = lambda xs: generic(*(x.float() for x in xs))  # noqa: E731
        for walk, out in itertools.chain(((w, OUT[0]) for w in WALK), ((WALK[0], o) for o in OUT[1:])):
            result["sweep"].append(factored_row(shape, args.device, dict(walk, **out), reference))
            save(result)
        timed = [r for r in result["sweep"] if "ms" in r and r.get("rel_err_vs_float32", 1) <= 1e-2]
        if timed:
            best = min(timed, key=lambda r: r["ms"])
            result["best"] = dict(setting=best["setting"], ms=best["ms"])
            fla_again = fla_gla(*shape, backward=False, device=args.device)
            result["rows"].append(dict(fla_again, note="fla again, after the sweep"))
            if "ms" in fla and "ms" in fla_again:
                result["best_over_fla"] = best["ms"] / min(fla["ms"], fla_again["ms"])
        save(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
