"""Memory of ``GLRMixer(readout=True)`` forward + backward on the CPU: the materializing path (u = k v^T,
``[B, T, H, d_key * d_head]`` through ``glr_scan``, then q^T H; the layer's forward before ``glr_readout``)
against ``glr_readout`` (the layer's forward now), float32.

Each (pattern, path) runs in a fresh process and records two numbers: the largest tensor a torch op
produced (a ``TorchDispatchMode`` sees the outputs of the ops it dispatches, but not the temporaries inside
the custom op ``glr_scan``, on either path), and the growth of the process's peak resident memory
(``ru_maxrss``) over its value just before the call (inputs and layer already built, one small warm-up call
done), which counts everything. Also the wall time of that one call (one run on a shared machine: informative
only).

    python benchmarks/bench_readout_memory.py [--quick] [--out PATH]
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from machine import arguments, machine, write

#: Pattern -> length T (attention's materializing path gathers T^2 / 2 states of 4096 numbers: kept short).
SPECS = {"ssm": 1024, "fenwick": 1024, "power2": 1024, "attention": 256}
SHAPE = dict(batch=2, d_model=256, heads=4)               # d_head = d_key = 64


def measure(spec: str, path: str, batch: int, T: int, d_model: int, heads: int) -> dict:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from glrtheory.kernels.torch import GLRMixer, glr_scan

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in (out if isinstance(out, (tuple, list)) else (out,)):
                if isinstance(t, torch.Tensor):
                    Largest.largest = max(Largest.largest, t.numel() * t.element_size())
            return out

    torch.manual_seed(0)
    layer = GLRMixer(spec, d_model, heads, readout=True)

    def run(x):
        if path == "glr_readout":
            y = layer(x)
        else:                                   # the layer's forward before glr_readout
            u, a, b, q = layer.coefficients(x)
            y = layer._output(glr_scan(u, a, b, layer.tables(x.shape[1])), q, x)
        y.square().mean().backward()

    run(torch.randn(batch, 8, d_model))
    layer.zero_grad()
    x = torch.randn(batch, T, d_model)
    layer.tables(T)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with Largest():
        run(x)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"spec": spec, "path": path, "largest_tensor_MiB": round(Largest.largest / 2**20, 2),
            "peak_rss_growth_MiB": round((peak - before) / 1024, 1), "seconds_one_run": round(seconds, 2)}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    rows = []
    for spec, T in SPECS.items():
        shape = dict(SHAPE, T=64 if args.quick else T)
        for path in ("materializing", "glr_readout"):
            code = (f"import sys, json; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
                    f"from bench_readout_memory import measure; "
                    f"print(json.dumps(measure({spec!r}, {path!r}, **{shape!r})))")
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    write({"machine": machine(), "shape": dict(SHAPE, d_head=64, d_key=64, dtype="float32", T=SPECS),
           "command": "python benchmarks/bench_readout_memory.py", "rows": rows}, args, "readout_memory")


if __name__ == "__main__":
    main()
