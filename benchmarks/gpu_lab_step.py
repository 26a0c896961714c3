"""Milliseconds a training step of the lab's models (``glr lab``) takes, per mixer, through ``lab.train.train``.

    python benchmarks/gpu_lab_step.py [--config configs/lab/h200_short.toml] [--task mqar] [--steps 60] [--out PATH]

The lab's models are small (d_model 16 to 64), so that a step's kernels take microseconds and the host sets the
pace. Per mixer of the config (each state it lists), at the first level of ``--task``: ``train`` runs ``--steps``
steps in three ways, in turn, twice each after one warm-up run: eagerly with ``glr_scan``'s ops through the
dispatcher (``eager.DIRECT`` off, as before), eagerly past it, and with its steps replayed as CUDA graphs
(``train``'s ``cuda_graphs``); the row records each run's ms per step (``wall_s`` over the steps, the capture
included) and the best of each way, with and without the capture (``capture_s``).
``--profile``: the Python functions that take most of the host's time in one run (cProfile, by own time).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import error, parser, python_functions, saver  # noqa: E402

from glrtheory.kernels.scan import eager  # noqa: E402
from glrtheory.lab.config import load_sweep  # noqa: E402
from glrtheory.checks import check_device  # noqa: E402
from glrtheory.lab.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "configs/lab/h200_short.toml"


#: name -> (``eager.DIRECT``, ``cuda_graphs``).
WAYS = {"dispatcher": (False, False), "direct": (True, False), "graphed": (True, True)}


def _run(cell, sweep, steps: int, device, way: str) -> dict:
    """ms per step of ``steps`` training steps of the cell's model the given way (``WAYS``), and whether its steps
    were captured."""
    eager.DIRECT, graphs = WAYS[way]
    try:
        r = train(cell.make_task(), cell.model_config(sweep.model), lr=sweep.run["lrs"][0], seed=cell.seed,
                  steps=steps, batch=sweep.run["batch"], eval_size=sweep.run["batch"], device=device, progress=False,
                  cuda_graphs=graphs)
    finally:
        eager.DIRECT = True
    return dict(ms=1e3 * r["wall_s"] / r["steps"], ms_after_capture=1e3 * (r["wall_s"] - r["capture_s"]) / r["steps"],
                graphed=r["graphed"], loss_last=r["loss_last"])


def row(cell, sweep, steps: int, device, with_profile: bool) -> dict:
    out = dict(mixer=cell.mixer.name, task=cell.task, params=cell.params, steps=steps)
    try:
        _run(cell, sweep, steps, device, "direct")                              # warm-up: compiles, builds
        runs = {way: [] for way in WAYS}
        for way in list(WAYS) * 2:
            runs[way].append(_run(cell, sweep, steps, device, way))
        for way, got in runs.items():
            out[f"ms_per_step_{way}"] = [r["ms"] for r in got]
            out[f"best_{way}"] = min(r["ms"] for r in got)
            out[f"best_{way}_after_capture"] = min(r["ms_after_capture"] for r in got)
        out["graphed"] = runs["graphed"][0]["graphed"]
        out["loss_last"] = {way: got[0]["loss_last"] for way, got in runs.items()}
        if with_profile:
            out["host_functions"] = python_functions(lambda: _run(cell, sweep, steps, device, "graphed"), device,
                                                     top=25)
    except Exception as e:                  # noqa: BLE001 - recorded in the row
        out["error"] = error(e)
    return out


def main(argv=None) -> int:
    ap = parser(__doc__, "lab_step", ())
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--task", default="mqar")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--profile", action="store_true", help="the top Python functions of one run in each row")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error(f"--steps takes a positive integer, got {args.steps}")
    config = Path(args.config)
    sweep = load_sweep(config if config.is_absolute() or config.exists() else ROOT / config)
    cells = [c for c in sweep.cells() if c.task == args.task]
    if not cells:
        ap.error(f"--task {args.task!r} is not in {args.config} (its tasks: {sorted(sweep.tasks)})")
    first = {}
    for c in cells:                                 # the first level's cell of each mixer, one seed
        first.setdefault(c.mixer.name, c)
    names = [s for s in args.specs.split(",") if s]
    save = saver(args.out, "gpu_lab_step.py")
    device = check_device(args.device)
    rows = []
    for name, cell in first.items():
        if names and cell.mixer.options["pattern"] not in names:
            continue
        rows.append(row(cell, sweep, args.steps, device, args.profile))
        print({k: v for k, v in rows[-1].items() if k != "host_functions"}, flush=True)
        save(dict(config=str(args.config), rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
