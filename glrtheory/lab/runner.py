"""Run a sweep cell by cell: a JSON line per finished cell (``cells*.jsonl``), so a rerun skips them.

``shard=(i, N)`` runs the cells whose index is i mod N and writes ``cells-<i>of<N>.jsonl``, so that N
processes (or N separate calls) share a sweep; every reader merges all ``cells*.jsonl`` of the folder.
``time_limit`` (seconds) starts no new cell after that time; the rest waits for a rerun.

For each cell, one model per learning rate of the grid; the cell keeps the learning rate of the best accuracy on
the validation set and reports that model's accuracy on the test set (``accuracy``; ``val_accuracy`` beside it), and
records every LR's result. Rows written before the test set existed have no ``val_accuracy``: their ``accuracy`` is
the best over the learning rates on the one held-out set (MAD / zoology protocol), an optimistic pick.
Checkpoints of the run in progress live under ``checkpoints/`` and are removed once its cell is written.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time
from pathlib import Path

import torch
from tqdm import tqdm

from glrtheory.checks import check_device, check_integer
from glrtheory.errors import GLRError
from glrtheory.json_file import read_json_lines

from .config import Cell, Sweep
from .train import train

CELLS = "cells.jsonl"
#: Cells that raised (one JSON line each); they are not finished, so a rerun tries them again.
ERRORS = "errors.jsonl"


def machine(device: torch.device) -> dict:
    """Where the run happens: device and its name, CPU count, torch version, date (UTC), load average."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    return {"device": str(device), "name": name, "cpus": os.cpu_count(),
            "torch": torch.__version__, "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average": os.getloadavg()}


#: What a finished cell's row holds at least (``run_cell`` writes more); ``glr lab report`` reads them all.
ROW_KEYS = ("key", "task", "level", "mixer", "accuracy", "wall_s")


def finished(out: Path) -> dict:
    """Finished cells by key, from every ``out/cells*.jsonl``. A line that is no cell's row (not JSON, as a line cut
    short by a stopped shard, or not an object holding ``ROW_KEYS``) is skipped: its cell counts as not run."""
    done = {}
    for path in sorted(Path(out).glob("cells*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and all(k in row for k in ROW_KEYS) and isinstance(row["key"], str):
                done[row["key"]] = row
    return done


def failures(out: Path) -> list[dict]:
    """The cells that raised, one row each time, from ``out/errors.jsonl`` (oldest first)."""
    path = Path(out) / ERRORS
    return read_json_lines(path) if path.exists() else []


def _finite(x):
    return x if isinstance(x, (int, str)) or (isinstance(x, float) and math.isfinite(x)) else None


def run_cell(cell: Cell, sweep: Sweep, device, out: Path, progress: bool = True) -> dict:
    """Train the cell at every learning rate; the row of ``cells.jsonl``."""
    task, run = cell.make_task(), sweep.run
    config = cell.model_config(sweep.model)
    per_lr = []
    for lr in run["lrs"]:
        ckpt = out / "checkpoints" / f"{cell.key}-lr{lr:g}.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        r = train(task, config, lr=lr, seed=cell.seed, steps=run["steps"], batch=run["batch"],
                  eval_size=run["eval_size"], warmup=run["warmup"], weight_decay=run["weight_decay"],
                  device=device, checkpoint=ckpt, checkpoint_every=run["checkpoint_every"], progress=progress,
                  cuda_graphs=run["cuda_graphs"])
        per_lr.append({"lr": lr, **{k: _finite(v) for k, v in r.items()}})
    best = max(per_lr, key=lambda r: r["val_accuracy"])           # ties: the first rate listed
    return {"key": cell.key, "task": cell.task, "params": cell.params, "level": task.level,
            "difficulty": task.difficulty, "seq_len": task.seq_len, "mixer": cell.mixer.name,
            "options": cell.mixer.options, "model": config.to_dict(), "seed": cell.seed,
            "accuracy": best["test_accuracy"], "val_accuracy": best["val_accuracy"], "best_lr": best["lr"],
            "steps": best["steps"], "parameters": best["parameters"], "wall_s": sum(r["wall_s"] for r in per_lr),
            "device": str(device), "lr_sweep": per_lr}


def run_sweep(sweep: Sweep, out, device: str | None = None, progress: bool = True,
              max_cells: int | None = None, shard: tuple[int, int] = (0, 1),
              time_limit: float | None = None) -> list[dict]:
    """Run every unfinished cell of ``sweep`` (of this shard) into ``out`` (resumable); returns all
    finished rows of the folder, in sweep order."""
    out = Path(out)
    if not (isinstance(shard, (tuple, list)) and len(shard) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in shard) and 0 <= shard[0] < shard[1]):
        raise GLRError(f"shard must be (i, N) with integers 0 <= i < N, got {shard!r}")
    if max_cells is not None:
        check_integer(max_cells, "max_cells", 1)
    index, count = shard
    name = CELLS if count == 1 else f"cells-{index}of{count}.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    dev = check_device(device or sweep.run["device"])
    if dev.type == "cpu":
        torch.set_num_threads(sweep.run["threads"])
    done = finished(out)
    todo = [c for i, c in enumerate(sweep.cells()) if c.key not in done and i % count == index]
    if max_cells is not None:
        todo = todo[:max_cells]
    start = time.perf_counter()
    for cell in tqdm(todo, desc="lab cells", disable=not progress):
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
        try:
            row = run_cell(cell, sweep, dev, out, progress)
        except (RuntimeError, GLRError) as exc:   # one failing cell must not stop the sweep
            with open(out / ERRORS, "a") as f:
                f.write(json.dumps({"key": cell.key, "task": cell.task, "params": cell.params,
                                    "mixer": cell.mixer.name, "error": f"{type(exc).__name__}: {exc}"[:500]}) + "\n")
            reason = (str(exc).strip().splitlines() or [""])[0]
            tqdm.write(f"cell {cell.task} {cell.params} {cell.mixer.name} failed: {type(exc).__name__}: {reason}")
            continue
        with open(out / name, "a") as f:
            f.write(json.dumps(row) + "\n")
        done[cell.key] = row
    keys = [c.key for c in sweep.cells()]
    rows = [done[k] for k in keys if k in done]
    if progress and todo:
        tqdm.write(f"{time.perf_counter() - start:.1f} s; {len(rows)}/{len(keys)} cells done")
    return rows
