"""Time of the ``chunked_aligned`` readout on the CPU, forward and forward + backward, for ssm, fenwick and
blocks (B 1, H 2, d_k = d_v = 64, one torch thread): float32 by this checkout's ``chunked_aligned`` against
the one of an earlier commit (``--before``, default 4c51e05: float32 inside for every dtype, step 4
recomputed in the backward by ``torch.utils.checkpoint``), both called through this checkout's
``glr_readout`` in one process; and this checkout's bfloat16 inputs and float32 inputs under
``autocast(bfloat16)`` (products in bf16; a CPU's bf16 matrix products say little about a GPU's).

The machine is shared: the calls of one (pattern, pass) alternate (``best_of_each``: a warm-up call each,
then rounds), keeping each one's best wall time.

    python benchmarks/bench_readout_aligned.py [--quick] [--out PATH] [--before COMMIT]
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import arguments, best_of_each, machine, write

SPECS = ("ssm", "fenwick", "blocks")
SHAPE = dict(batch=1, heads=2, d_k=64, d_v=64, T=4096)
BEFORE = "4c51e05"
ROOT = Path(__file__).resolve().parents[1]


def load_before(commit: str):
    """``chunked_aligned`` of ``kernels/scan/readout_aligned.py`` at ``commit``, imported into this package."""
    source = subprocess.run(["git", "show", f"{commit}:kernels/scan/readout_aligned.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "readout_aligned_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("glrtheory.kernels.scan.readout_aligned_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.chunked_aligned


def runner(spec: str, passes: str, version: str, before, batch, heads, d_k, d_v, T):
    """One ``glr_readout`` call (and backward) on fresh random inputs; its own tables (the versions memoize
    their index arrays under one key)."""
    import torch

    from glrtheory import Pattern
    from glrtheory.kernels.scan import readout

    torch.manual_seed(0)
    tables = Pattern.from_spec(spec).tables(T)
    q, k = torch.randn(2, batch, T, heads, d_k)
    v = torch.randn(batch, T, heads, d_v)
    a = torch.rand(batch, T, heads, tables.a_idx.shape[1]) + 0.5
    b = (torch.rand(batch, T, heads, tables.b_idx.shape[1]) * 2 - 1) / tables.b_idx.shape[1]
    dtype = torch.bfloat16 if version == "bf16" else torch.float32
    leaves = [x.to(dtype).requires_grad_(passes != "forward") for x in (q, k, v, a, b)]
    own = readout.chunked_aligned

    def run():
        readout.chunked_aligned = before if version == "before" else own
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=version == "autocast"):
                out = readout.glr_readout(*leaves, tables, algorithm="chunked_aligned")
            if passes != "forward":
                out.float().square().mean().backward()
        finally:
            readout.chunked_aligned = own

    return run


def main() -> None:
    import torch

    extra = "--before" in sys.argv and sys.argv.index("--before")
    before_commit = sys.argv[extra + 1] if extra else BEFORE
    argv = [x for i, x in enumerate(sys.argv[1:], 1) if not extra or i not in (extra, extra + 1)]
    args = arguments(__doc__.splitlines()[0], argv)
    shape, repeats = (dict(SHAPE, d_k=8, d_v=8, T=256), 2) if args.quick else (SHAPE, 9)
    header = machine()                   # before timing: reading numba's threads resets torch's to all cores
    torch.set_num_threads(1)
    before = load_before(before_commit)
    rows = []
    for spec in SPECS:
        for passes in ("forward", "forward+backward"):
            runs = {v: runner(spec, passes, v, before, **shape) for v in ("before", "float32", "bf16", "autocast")}
            best = best_of_each(runs, repeats)
            rows.append({"spec": spec, "passes": passes, **{f"ms_{v}": round(s * 1e3, 2) for v, s in best.items()},
                         "float32_speedup": round(best["before"] / best["float32"], 2)})
            print(rows[-1], flush=True)
    write({"machine": header, "timed_with_torch_threads": torch.get_num_threads(), "shape": shape,
           "repeats": repeats, "before_commit": before_commit,
           "versions": {"before": f"float32, chunked_aligned of {before_commit}", "float32": "float32, this commit",
                        "bf16": "bfloat16 inputs, this commit", "autocast": "float32 inputs, autocast(bfloat16)"},
           "command": "python benchmarks/bench_readout_aligned.py", "rows": rows}, args, "readout_aligned")


if __name__ == "__main__":
    main()
