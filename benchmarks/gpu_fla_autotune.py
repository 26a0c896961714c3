"""Why fla's ``chunk_simple_gla`` forward takes 0.43 ms in one process and 0.60 in the next (B2 T16384 H16 D128 bf16,
the anchor of the readout's target): each of several fresh processes runs it once (fla's kernels autotune then),
times it, and records the configuration each of fla's autotuned kernels chose.

    python benchmarks/gpu_fla_autotune.py [--processes 6] [--shape 2,16384,16,128] [--out PATH]

The JSON has one row per process: the forward's ms and, per autotuned kernel that ran, its chosen configuration.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import bench, error, parser, saver  # noqa: E402


def chosen_configs() -> dict:
    """Each autotuned Triton kernel of fla's loaded modules that has run: its key -> chosen configuration."""
    from triton.runtime.autotuner import Autotuner
    out = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("fla.") or module is None:
            continue
        for attr, value in vars(module).items():
            for _ in range(4):                       # under @triton.heuristics and the like, through .fn
                if isinstance(value, Autotuner) and value.cache:
                    out[f"{name}.{attr}"] = {str(key): str(config) for key, config in value.cache.items()}
                value = getattr(value, "fn", None)
    return out


def one_process(shape) -> dict:
    """This process's row: fla's forward ms at shape and the configurations its kernels chose."""
    import torch
    from gpu_fla import fla_inputs
    from fla.ops.simple_gla import chunk_simple_gla
    args = fla_inputs("chunk_simple_gla", *shape, device="cuda")
    with torch.no_grad():
        chunk_simple_gla(*args)                                     # autotunes
        ms = bench(lambda: chunk_simple_gla(*args), device="cuda")
    return dict(ms=ms, configs=chosen_configs())


def main(argv=None) -> int:
    ap = parser(__doc__, "fla_autotune", [])
    ap.add_argument("--processes", type=int, default=6)
    ap.add_argument("--shape", default="2,16384,16,128")
    ap.add_argument("--child", action="store_true", help="measure in this process, print its row as JSON")
    args = ap.parse_args(argv)
    shape = tuple(map(int, args.shape.split(",")))
    if args.child:
        print(json.dumps(one_process(shape)))
        return 0
    save = saver(args.out, "gpu_fla_autotune.py")
    rows = []
    for i in range(args.processes):
        done = subprocess.run([sys.executable, __file__, "--child", "--shape", args.shape], capture_output=True,
                              text=True, timeout=300)
        try:
            rows.append(dict(process=i, **json.loads(done.stdout.strip().splitlines()[-1])))
        except (ValueError, IndexError) as e:
            rows.append(dict(process=i, error=error(e), stderr=done.stderr[-2000:]))
        print({k: v for k, v in rows[-1].items() if k != "configs"}, flush=True)
        save(dict(shape=shape, rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
