"""What the lag bias learned: for each run with ``model.lag_bias`` under RUNS (its ``checkpoint.pt`` and
``result.json``), every layer's and head's bias of B's lag buckets, and the share of a row's B weight that goes to
h[t - 1] when the source scores are equal (the softmax of the biases over the row's sources), averaged over the rows
of length T that read at least two states. Written to OUT as JSON:

    python benchmarks/results/lm/lag_bias_learned.py runs/lm/cpu_seeds_lagbias/lr3e-2 \
        --out benchmarks/results/lm/lag_bias_learned.json
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from glrtheory import Pattern
from glrtheory.kernels.layers import lag_buckets


def lag_one_share(bias_b: np.ndarray, b_idx: np.ndarray) -> float:
    """Mean over the rows t of ``b_idx`` with at least two sources of ``softmax(bias_b[bucket(t - s)])`` at
    s = t - 1."""
    shares = []
    for t, row in enumerate(b_idx):
        sources = row[row >= 0]
        if len(sources) > 1:
            z = bias_b[lag_buckets(t - sources)]
            w = np.exp(z - z.max())
            shares.append(w[sources == t - 1].sum() / w.sum())
    return float(np.mean(shares))


def learned(run: Path, config: dict, b_idx: np.ndarray) -> dict:
    """The run's B-side biases (buckets 1 .. that of the lag T - 1) and lag-1 shares, layer by layer."""
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    top = int(lag_buckets(len(b_idx) - 1))
    layers = []
    for name in sorted(k for k in state if k.endswith("mixer.lag_bias")):
        bias_b = state[name][1].double().numpy()                       # [heads, buckets]: B's side
        layers.append({"parameter": name, "b_buckets_1_to_top": bias_b[:, 1:top + 1].round(3).tolist(),
                       "lag_one_share": [lag_one_share(b, b_idx) for b in bias_b]})
    return {"run": str(run), "pattern": config["model"]["pattern"], "seed": config["train"]["seed"],
            "lr": config["train"]["lr"], "T": len(b_idx), "layers": layers}


def rows(folder: Path) -> list:
    """``learned`` of every run under folder that has a lag bias and whose tables at length T read two states or
    more in some row."""
    out = []
    for run in sorted(p.parent for p in folder.rglob("checkpoint.pt")):
        config = json.loads((run / "result.json").read_text())["config"]
        b_idx = Pattern.from_spec(config["model"]["pattern"]).tables(config["train"]["seq_len"]).b_idx
        if config["model"].get("lag_bias") and b_idx.shape[1] > 1:
            out.append(learned(run, config, b_idx))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="a folder searched for runs with a checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    found = rows(args.runs)
    args.out.write_text(json.dumps({"checkpoints": found}, indent=1) + "\n")
    for r in found:
        shares = [s for layer in r["layers"] for s in layer["lag_one_share"]]
        print(f"{r['pattern']:8s} seed {r['seed']} lr {r['lr']}: lag-1 share {min(shares):.3f}-{max(shares):.3f}")


if __name__ == "__main__":
    main()
