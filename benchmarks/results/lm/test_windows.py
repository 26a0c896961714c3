"""Claim 7's learning-rate pick read on a second held-out set: every run under the given folders (its
``checkpoint.pt``, the last step's, and ``result.json``) scored on the validation windows (which must give the logged
final ``val_bpb``, so the checkpoint is the run's end) and on the test windows halfway between them
(``glrtheory.lm.data.eval_offsets``). Per folder and pattern, the learning rate of the best validation mean over the
seeds (the pick the ledger reports) and its test bits per byte; then each pattern against ``ssm`` on the test windows
at those rates, beyond the seed spread (the larger max - min of the two) or within it. ``unseen``: the same over the
windows that do not occur verbatim in the training split (``data.seen_in_training``: the split is by file, and
near-copies of the generated codec tables lie on both sides), the rate picked on the unseen validation windows.
Written to OUT as JSON:

    python benchmarks/results/lm/test_windows.py runs/lm/cpu_seeds runs/lm/cpu_seeds_lagbias \
        --out benchmarks/results/lm/lm_cpu_test_windows.json
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from glrtheory.lm.commands import trained
from glrtheory.lm.config import parse_config
from glrtheory.lm.data import seen_in_training
from glrtheory.lm.distributed import Dist
from glrtheory.lm.evaluate import evaluate
from glrtheory.lm.runs import open_corpus
from glrtheory.verdicts import against

CPU = Dist(0, 1, torch.device("cpu"))


def run_of(run_dir: Path):
    """``(run, result)``: the run's config as ``result.json`` records it, its folder where it was found."""
    result = json.loads((run_dir / "result.json").read_text())
    config = {k: v for k, v in result["config"].items() if k != "name"}     # the name comes from the pattern
    (run,) = parse_config({**config, "log": {**config["log"], "out_dir": str(run_dir.parent)}}, str(run_dir))
    return run, result


#: ``seen``'s masks by (split, length, count): one corpus a process.
_SEEN = {}


def seen(corpus, split: str, seq_len: int, count: int) -> np.ndarray:
    """``data.seen_in_training`` of the split's evaluation windows, once per split, length and count."""
    key = (split, seq_len, count)
    if key not in _SEEN:
        _SEEN[key] = seen_in_training(corpus, seq_len, count, split)
    return _SEEN[key]


def scored(run_dir: Path, corpus) -> dict:
    """The run's validation and test bits per byte from its checkpoint, beside the logged final validation, each
    also over the windows not in the training split."""
    run, raw = run_of(run_dir)
    model, _ = trained(run, CPU)
    T, n = run.train.seq_len, run.eval.windows
    bpb = {split: evaluate(model, corpus.val, T, n, run.eval.batch, CPU, split, seen(corpus, split, T, n))
           for split in ("validation", "test")}
    logged = raw["final"]["val_bpb"]
    if abs(bpb["validation"]["bpb"] - logged) > 1e-6 * logged:
        raise SystemExit(f"{run_dir}: validation {bpb['validation']['bpb']} is not the logged {logged}: not the last "
                         "step")
    return {"run": str(run_dir), "pattern": run.model["pattern"], "lr": run.train.lr, "seed": run.train.seed,
            "val_bpb": bpb["validation"]["bpb"], "test_bpb": bpb["test"]["bpb"],
            "val_unseen_bpb": bpb["validation"]["bpb_unseen"], "test_unseen_bpb": bpb["test"]["bpb_unseen"],
            "windows_unseen": {s: (bpb[s]["windows_unseen"], bpb[s]["windows"]) for s in bpb}}


def picks(rows: list, val: str = "val_bpb", test: str = "test_bpb") -> dict:
    """Per pattern: the learning rate of the best (lowest) validation mean (``val``) over the seeds, its seeds'
    validation and test (``test``) values, and the rate the test mean would pick."""
    out = {}
    for p in sorted({r["pattern"] for r in rows}):
        by_lr = {}
        for r in rows:
            if r["pattern"] == p:
                by_lr.setdefault(r["lr"], []).append(r)
        best = min(by_lr, key=lambda lr: np.mean([r[val] for r in by_lr[lr]]))
        seeds = sorted(by_lr[best], key=lambda r: r["seed"])
        out[p] = {"lr": best, "seeds": [r["seed"] for r in seeds], val: [r[val] for r in seeds],
                  test: [r[test] for r in seeds],
                  "lr_by_test": min(by_lr, key=lambda lr: np.mean([r[test] for r in by_lr[lr]]))}
    return out


def against_ssm(picked: dict, key: str) -> dict:
    """Each pattern minus ssm in mean bits per byte (negative: better), judged beyond the seed spread as claim 7 is."""
    return {p: against(v[key], picked["ssm"][key], higher_is_better=False) for p, v in picked.items() if p != "ssm"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders searched for runs with a checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    corpus, result = None, {}
    for folder in args.folders:
        runs = sorted(p.parent for p in folder.rglob("checkpoint.pt"))
        if corpus is None:
            corpus = open_corpus(run_of(runs[0])[0].data, CPU)
        rows = [scored(r, corpus) for r in runs]
        picked, unseen = picks(rows), picks(rows, "val_unseen_bpb", "test_unseen_bpb")
        result[str(folder)] = {"runs": rows, "picked": picked, "validation": against_ssm(picked, "val_bpb"),
                               "test": against_ssm(picked, "test_bpb"),
                               "unseen": {"windows": rows[0]["windows_unseen"], "picked": unseen,
                                          "validation": against_ssm(unseen, "val_unseen_bpb"),
                                          "test": against_ssm(unseen, "test_unseen_bpb")}}
        for p, v in picked.items():
            print(f"{folder}: {p:8s} lr {v['lr']:g} (test would pick {v['lr_by_test']:g}): validation "
                  f"{np.mean(v['val_bpb']):.3f}, test {np.mean(v['test_bpb']):.3f}")
        for name, verdicts in (("test", result[str(folder)]["test"]),
                               ("unseen test", result[str(folder)]["unseen"]["test"])):
            for p, v in verdicts.items():
                spread = "one seed" if v["spread"] is None else f"spread {v['spread']:.3f}"
                print(f"{folder}: {p} minus ssm on {name} {v['difference']:+.3f} ({spread}): {v['verdict']}")
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
