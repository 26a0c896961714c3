"""Time of the matrix-state readout ``glr_readout`` for ``fenwick`` on the CPU: ``tiled_mixing`` (forced;
O(T^2)) against ``chunked_aligned`` (states only at chunk boundaries; O(T log T)), float32, forward, and
forward + backward for the aligned algorithm; one process, one torch thread. Each length is timed on its
own: a warm-up call, then 7 calls, keeping the best (timing the lengths in interleaved rounds made each
short length pay for the allocations of the long one before it: T = 512 ran slower than T = 1024). The
machine is shared: run it when ``uptime`` shows a load below 0.8.

Per algorithm the exponent of time against T is fitted by least squares over the lengths (log-log), next
to the theory's local slope (n^2: 2; n log n: 1 + 1 / ln T at the geometric middle of the lengths).

    python benchmarks/bench_readout.py [--quick] [--out PATH]
"""
from __future__ import annotations

import math

import numpy as np

from machine import best_of, machine, plan, write

SHAPE = dict(batch=1, heads=2, d_k=64, d_v=64)
#: Lengths per (algorithm, pass); the tiled algorithm stops earlier (quadratic).
LENGTHS = {("tiled_mixing", "forward"): [512, 1024, 2048, 4096],
           ("chunked_aligned", "forward"): [512, 1024, 2048, 4096, 8192, 16384],
           ("chunked_aligned", "forward+backward"): [512, 1024, 2048, 4096, 8192, 16384]}
THEORY = {"tiled_mixing": "n^2", "chunked_aligned": "n log n"}


def runner(algorithm: str, passes: str, T: int, batch: int, heads: int, d_k: int, d_v: int):
    """One call of ``glr_readout`` (and its backward) on fresh random fenwick inputs of length T."""
    import torch

    from glrtheory import Pattern
    from glrtheory.kernels.torch import glr_readout

    torch.manual_seed(0)
    tables = Pattern.from_spec("fenwick").tables(T)
    q, k = torch.randn(2, batch, T, heads, d_k)
    v = torch.randn(batch, T, heads, d_v)
    a = torch.rand(batch, T, heads, tables.a_idx.shape[1]) + 0.5
    b = (torch.rand(batch, T, heads, tables.b_idx.shape[1]) * 2 - 1) / tables.b_idx.shape[1]
    leaves = [x.requires_grad_(passes != "forward") for x in (q, k, v, a, b)]

    def run():
        out = glr_readout(*leaves, tables, algorithm=algorithm)
        if passes != "forward":
            out.square().mean().backward()

    return run


def slope(lengths, seconds) -> float:
    return float(np.polyfit(np.log(lengths), np.log(seconds), 1)[0])


def theory_slope(cls: str, lengths) -> float:
    middle = math.exp(np.mean(np.log(lengths)))
    return 2.0 if cls == "n^2" else 1 + 1 / math.log(middle)


def main() -> None:
    import torch

    args, lengths_of, repeats, _ = plan(__doc__, None, LENGTHS, dict.fromkeys(LENGTHS, [128, 256]), 7)
    header = machine()                   # before timing: reading numba's threads resets torch's to all cores
    torch.set_num_threads(1)
    shape = dict(SHAPE, d_k=8, d_v=8) if args.quick else SHAPE
    rows, fits = [], []
    for (algorithm, passes), lengths in lengths_of.items():
        best = {T: best_of(runner(algorithm, passes, T, **shape), repeats) for T in lengths}
        seconds = [best[T] for T in lengths]
        for T in lengths:
            rows.append({"algorithm": algorithm, "passes": passes, "T": T, "seconds": round(best[T], 5)})
            print(rows[-1], flush=True)
        fits.append({"algorithm": algorithm, "passes": passes, "lengths": lengths,
                     "fitted_exponent": round(slope(lengths, seconds), 3), "theory": THEORY[algorithm],
                     "theory_local_slope": round(theory_slope(THEORY[algorithm], lengths), 3)})
        print(fits[-1], flush=True)
    write({"machine": header, "timed_with_torch_threads": torch.get_num_threads(), "pattern": "fenwick",
           "shape": dict(shape, dtype="float32"), "repeats": repeats,
           "command": "python benchmarks/bench_readout.py", "rows": rows, "fits": fits}, args, "readout")


if __name__ == "__main__":
    main()
