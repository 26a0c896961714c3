"""The expressivity lab: train small models with any pattern on the synthetic tasks and hold the
measured accuracies against what the analysis predicts.

>>> sweep = load_sweep("configs/lab/smoke.toml")                      # doctest: +SKIP
>>> rows = run_sweep(sweep, "out/smoke")                             # resumable: a JSON line per cell
>>> write_results(sweep, rows, "out/smoke", command="...")           # results.json, table.md, figures

From the shell: ``glr lab run configs/lab/smoke.toml --out out/smoke`` or ``python -m glrtheory.lab run ...``.
"""
from .config import Cell, Mixer, Sweep, load_sweep, sweep_from_dict
from .report import summarize, table, write_results
from .runner import run_sweep
from .theory import prediction, verdict
from .train import train

__all__ = ["Cell", "Mixer", "Sweep", "load_sweep", "prediction", "run_sweep", "summarize",
           "sweep_from_dict", "table", "train", "verdict", "write_results"]
