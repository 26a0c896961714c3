"""Which Triton launch of the readout first computes something else: every launch's tensors, recorded, against a
saved trace of the same inputs.

    python benchmarks/gpu_launch_trace.py --save trace.pt [--seed S --spec fenwick --head 128 --n 4097]
    compute-sanitizer python benchmarks/gpu_launch_trace.py --against trace.pt --repeats 3

One forward and backward of ``glr_readout`` (float32 inputs, or ``--dtype bfloat16``; Triton, every call eager:
``graphs`` 0) on the inputs of ``gpu_float32_probe`` (the ``rng`` fixture's seed). After each launch of a bound
kernel (``triton_launch.Bound``) the device is synchronized and the launch's given tensors are copied. ``--save``
keeps them; ``--against`` prints, per run, each launch's tensors that differ from the saved run's by more than
``--bound`` (``||x - y|| / ||y||``; float32 atomics make a few differ by about 1e-7 from run to run), and then the
output's and gradients' errors against float64 (as ``gpu_float32_probe``). A launch that reads only tensors equal to
the saved ones and writes different ones is wrong under this run's conditions (a sanitizer's serialized, slower
programs, say).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_float32_probe import errors, inputs, run  # noqa: E402
from gpu_readout import _apply  # noqa: E402

from glrtheory.kernels.scan import readout_triton, triton_launch  # noqa: E402


def traced(fn):
    """Run fn with every bound launch recorded: ``[(kernel name, [given tensors on the CPU]), ...]``."""
    trace, call = [], triton_launch.Bound.__call__

    def record(self, *given):
        result = call(self, *given)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        trace.append((self.kernel.__name__, [x.detach().cpu().clone() if torch.is_tensor(x) else None
                                              for x in given]))
        return result
    triton_launch.Bound.__call__ = record
    try:
        return fn(), trace
    finally:
        triton_launch.Bound.__call__ = call


def differences(trace, saved, bound: float) -> list[str]:
    """Each launch's given tensors that differ from the saved trace's by more than bound."""
    lines = []
    for i, ((name, xs), (saved_name, ys)) in enumerate(zip(trace, saved)):
        if name != saved_name:
            return lines + [f"launch {i}: {name}, saved {saved_name}: the launches differ from here"]
        for j, (x, y) in enumerate(zip(xs, ys)):
            if x is None or not x.is_floating_point():
                if x is not None and not torch.equal(x, y):
                    lines.append(f"launch {i} {name} arg {j}: integers differ")
                continue
            x, y = x.double(), y.double()
            err = float((x - y).norm() / y.norm()) if y.norm() else float((x - y).norm())
            if not err <= bound:
                where = (x - y).abs().flatten().argmax().item()
                lines.append(f"launch {i} {name} arg {j} {tuple(x.shape)}: rel {err:.2e}, largest at flat {where} "
                             f"({x.flatten()[where].item():.6g} against {y.flatten()[where].item():.6g})")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1211486483272781269)
    ap.add_argument("--spec", default="fenwick")
    ap.add_argument("--head", type=int, default=128)
    ap.add_argument("--n", type=int, default=4097)
    ap.add_argument("--save")
    ap.add_argument("--against")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--bound", type=float, default=1e-5)
    ap.add_argument("--settings", default="{}", help="JSON: readout_triton.GPU settings on top of its own "
                    "(gpu_readout._apply: a wide head's keys go to its wide settings; the GPU's only)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    _apply(dict(readout_triton.GPU), json.loads(args.settings), args.head)
    readout_triton._setting()["graphs"] = 0
    tables, xs, grad = inputs(args.seed, args.spec, args.head, args.n, args.device)
    exact = run(tables, xs, grad, "torch", torch.float64)
    saved = torch.load(args.against) if args.against else None
    for r in range(args.repeats):
        got, trace = traced(lambda: run(tables, xs, grad, "triton", getattr(torch, args.dtype)))
        if args.save and r == 0:
            torch.save(trace, args.save)
        print(f"run {r}: {len(trace)} launches: {' '.join(name for name, _ in trace)}")
        if saved is not None:
            print("\n".join(differences(trace, saved, args.bound)) or "  every launch's tensors as saved")
        print("  against float64:", {k: f"{v:.1e}" for k, v in errors(got, exact).items()}, flush=True)


if __name__ == "__main__":
    main()
