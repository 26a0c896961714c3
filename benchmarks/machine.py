"""Shared by the CPU benchmark scripts: the machine header, a best-of timer, arguments and JSON output."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_family_model() -> str | None:
    """``family.model`` of the CPU from /proc/cpuinfo (tells hosts apart that share a model name)."""
    try:
        fields = {key.strip(): value.strip() for key, _, value in
                  (line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines())}
        return f"{fields['cpu family']}.{fields['model']}"
    except (OSError, KeyError):
        return None


def cpu_ticks(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot: steal is time the hypervisor ran something else
    while this virtual machine wanted the CPU; total sums user ... steal (guest time is inside user)."""
    try:
        ticks = [int(x) for x in stat.read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    return (ticks[7] if len(ticks) == 8 else 0), sum(ticks)


_TICKS_AT_START = cpu_ticks()


def steal_fraction(start=None, now=None) -> float | None:
    """The share of all CPU time between ``start`` (default: when this process imported the module) and
    ``now`` (default: now) that the hypervisor stole; None where /proc/stat is missing or no tick passed."""
    start, now = start or _TICKS_AT_START, now or cpu_ticks()
    if start is None or now is None or now[1] <= start[1]:
        return None
    return (now[0] - start[0]) / (now[1] - start[1])


def commit() -> str | None:
    """The checkout's git commit, with ``+changes`` when the tracked files differ from it; None outside git
    (the device machine gets a copy of the working tree without its history)."""
    here = Path(__file__).resolve().parent
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=here, capture_output=True, text=True, check=True)  # noqa: E731
        head = run("rev-parse", "HEAD").stdout.strip()
        return head + ("+changes" if run("status", "--porcelain", "--untracked-files=no").stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    """Platform, CPU model (and family.model), cores, library versions, date (UTC), the load average when the
    record is made, the share of CPU time stolen by the hypervisor during the run and the git commit of the
    code measured."""
    import numba
    import numpy
    import scipy

    info = {"platform": platform.platform(), "cpu": cpu_model(), "cpu_family_model": cpu_family_model(),
            "cores": os.cpu_count(),
            "numba_threads": numba.get_num_threads(), "python": sys.version.split()[0],
            "numpy": numpy.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average": os.getloadavg(), "steal_fraction": steal_fraction(), "commit": commit()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info


def best_of(fn, repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls (after one warm-up call), in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_of_each(fns: dict, repeats: int) -> dict:
    """``best_of`` for several functions whose calls alternate, so that a neighbour's burst of work hits
    them all alike: name -> minimum wall time in seconds."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def arguments(description: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON result path (default: benchmarks/results/<script>.json; none with --quick)")
    return parser.parse_args(argv)


def plan(doc: str, argv, sizes: list, quick_sizes: list, repeats: int):
    """The parsed arguments, the sizes and repeats to run (``--quick``: ``quick_sizes``, 2 repeats) and
    the seeded generator (seed 0) of a benchmark whose description is the first line of ``doc``."""
    import numpy as np

    args = arguments(doc.splitlines()[0], argv)
    if args.quick:
        sizes, repeats = quick_sizes, 2
    return args, sizes, repeats, np.random.default_rng(0)


def write(result: dict, args: argparse.Namespace, name: str) -> Path | None:
    """Write the JSON result (with the machine header) to --out or ``results/<name>.json``."""
    path = args.out if args.out is not None else (None if args.quick else RESULTS / f"{name}.json")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
    return path
