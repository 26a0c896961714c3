"""Draw the GPU length sweep of ``gpu_bench.py``: time against T on log-log axes, with the theory's slopes.

    python benchmarks/gpu_plot.py [benchmarks/results/gpu_triton.json] [--out benchmarks/results/gpu_triton_sweep.png]

The JSON is ``gpu_bench.py``'s, or a ``gpu_session.sh`` run's (its scan part).

Each measured series (ours forward per pattern, causal SDPA) is drawn with markers; beside it a dashed line
of the exact operation count's shape (``total_cost_bound(T)``, ``T^2`` for SDPA), scaled to meet the series at
its largest T. The legend gives the fitted exponent over T >= 2^14 and the symbolic class.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from glrtheory import Pattern
from glrtheory.symbolic.costs import evaluate, total_cost_bound

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="?", default=str(RESULTS / "gpu_triton.json"))
    ap.add_argument("--out", default=str(RESULTS / "gpu_triton_sweep.png"))
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads(Path(args.json).read_text())
    result = result["parts"]["scan"]["result"] if "parts" in result else result     # a gpu_session.sh run
    sweep = result["sweep"]
    fits = {f["op"]: f for f in sweep["fits"]}
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, op in enumerate(dict.fromkeys(r["op"] for r in sweep["rows"])):
        rows = sorted((r["T"], r["ms"]) for r in sweep["rows"] if r["op"] == op)
        T, ms = (np.array(x, float) for x in zip(*rows))
        f = fits.get(op, {})
        label = f"{op}: fitted {f.get('fitted_exponent', float('nan')):.2f}, theory {f.get('theta_total', '?')}"
        color = f"C{i}"
        ax.loglog(T, ms, "o-", color=color, label=label)
        work = T**2 if op == "sdpa" else evaluate(total_cost_bound(Pattern.from_spec(op)), T.astype(np.int64))
        ax.loglog(T, work * ms[-1] / work[-1], "--", color=color, alpha=0.6)
    ax.set_xlabel("T (sequence length)")
    ax.set_ylabel("forward time (ms)")
    gpu = result["machine"].get("gpu", "GPU")
    ax.set_title(f"{gpu}, {sweep['shape']}\nmarkers: measured; dashed: exact operation count, scaled")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
