"""``glr lab``: run an expressivity sweep (TOML config or flags), rebuild its report, list the tasks."""
from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path

from ..checks import parse_integer, parse_real
from ..errors import GLRError
from ..json_file import read_json
from .common import path_arg, positive_int, positive_real


def _csv(kind, what: str):
    """argparse type: comma-separated items, each read by ``kind`` (ValueError: refused) and named ``what``."""
    def parse(text: str) -> list:
        items = [x.strip() for x in text.split(",")]
        try:
            values = [kind(x) for x in items] if all(items) else []
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what} with no empty item, "
                                             f"got {text!r}")
        return values
    return parse


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (parse_integer(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return i, n


def register(sub) -> None:
    lab = sub.add_parser("lab", help="expressivity lab: train every pattern on synthetic tasks, theory vs measurement")
    verbs = lab.add_subparsers(dest="lab_verb", metavar="ACTION", parser_class=sub._parser_class)
    verbs.required = True
    p = verbs.add_parser("run", help="run a sweep (resumable) and write results.json, table.md and figures")
    p.add_argument("config", nargs="?", type=path_arg, help="sweep TOML file (e.g. configs/lab/smoke.toml)")
    p.add_argument("--out", type=path_arg, help="output folder (default lab_results/<config name>)")
    p.add_argument("--device", help="auto (CUDA when present), cpu, cuda or cuda:i")
    p.add_argument("--patterns", type=_csv(str, "pattern specs"),
                   help="comma-separated pattern specs (replaces the config's mixers)")
    p.add_argument("--scores", choices=("source", "query_key"), help="score form for --patterns")
    p.add_argument("--task", help="a single task (mqar, copy, recall, modcount) instead of the config's tasks")
    p.add_argument("--levels", type=_csv(parse_integer, "integers"),
                   help="levels of --task's swept parameter (K, L, D or k)")
    p.add_argument("--length", type=positive_int, help="sequence length for --task")
    p.add_argument("--vocab", type=positive_int, help="vocabulary size for --task")
    p.add_argument("--steps", type=positive_int, help="training steps per run")
    p.add_argument("--seeds", type=_csv(parse_integer, "integers"), help="comma-separated seeds")
    p.add_argument("--lrs", type=_csv(parse_real, "numbers"),
                   help="comma-separated learning rates (best per cell is kept)")
    p.add_argument("--max-cells", type=positive_int, help="stop after this many new cells (resume later)")
    p.add_argument("--time-limit", type=positive_real, metavar="SECONDS", help="start no new cell after this time")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                   help="run the cells i mod N only (N processes or calls share a sweep; report merges)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-report", action="store_true",
                   help="only train (shards running at once): write the report later with glr lab report")
    p.set_defaults(run=run_lab)
    p = verbs.add_parser("report", help="rebuild results.json, table.md and figures from a sweep folder")
    p.add_argument("folder", type=path_arg, help="output folder of glr lab run")
    p.add_argument("--command", help="record this as the command that produced the folder")
    p.set_defaults(run=run_report)
    p = verbs.add_parser("tasks", help="list the tasks, their swept parameter and what they probe")
    p.set_defaults(run=run_tasks)


def _sweep_data(args) -> dict:
    from glrtheory.toml_file import read_toml

    data = read_toml(args.config) if args.config else {}
    run = data.get("run", {})
    if isinstance(run, dict):       # anything else is refused by sweep_from_dict, by name
        data["run"] = {**run, **{key: getattr(args, key) for key in ("device", "steps", "seeds", "lrs")
                                 if getattr(args, key) is not None}}
    if args.scores and not args.patterns:
        raise GLRError("--scores sets the score form of --patterns, which is not given")
    if args.patterns:
        data["mixers"] = [{"pattern": p, **({"scores": args.scores} if args.scores else {})} for p in args.patterns]
    if args.task:
        from ..tasks import TASKS

        if args.task not in TASKS:
            raise GLRError(f"unknown task {args.task!r}; known: {', '.join(TASKS)}")
        if not args.levels:
            raise GLRError(f"--task needs --levels (values of {TASKS[args.task].difficulty})")
        params = {TASKS[args.task].difficulty: args.levels}
        params.update({k: getattr(args, k) for k in ("length", "vocab") if getattr(args, k) is not None})
        data["tasks"] = {args.task: params}
    elif not args.config:
        raise GLRError("give a sweep config file, or --task with --levels and --patterns")
    else:
        alone = [f"--{k}" for k in ("levels", "length", "vocab") if getattr(args, k) is not None]
        if alone:
            raise GLRError(f"{', '.join(alone)} set the task of --task, which is not given")
    return data


def run_lab(args) -> None:
    from ..atomic import write_json
    from ..checks import check_device
    from ..lab import run_sweep, sweep_from_dict, write_results
    from ..lab.runner import ERRORS, failures, machine

    data = _sweep_data(args)
    sweep = sweep_from_dict(data)
    out = Path(args.out or Path("lab_results") / (Path(args.config).stem if args.config else args.task))
    device = check_device(sweep.run["device"])
    if (out / "sweep.json").is_file():
        unlike = sweep.trained_unlike(sweep_from_dict(read_json(out / "sweep.json")))
        if unlike:
            raise GLRError(f"{str(out)!r} holds cells trained otherwise ({'; '.join(unlike)}), which this sweep "
                           "would take for its own: give another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", data)   # atomic: shards started at once write it together
    write_json(out / "machine.json", machine(device))
    before = len(failures(out))
    rows = run_sweep(sweep, out, str(device), progress=not args.quiet, max_cells=args.max_cells,
                     shard=args.shard, time_limit=args.time_limit)
    after = failures(out)
    failed = len(after) - before
    if failed and rows:                   # with none finished, the error below names the last failure
        warnings.warn(f"{failed} cell{'s' * (failed > 1)} failed in this run; the reasons are in "
                      f"{str(out / ERRORS)!r}")
    if args.no_report:
        print(f"{len(rows)}/{len(sweep.cells())} cells done in {out}")
        return
    if not rows:
        last = after[-1]["error"] if after else None
        raise GLRError(f"no cell of {str(out)!r} has finished, so there is nothing to report"
                       + (f" (the last failure: {last})" if last else ""))
    command = "glr lab " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["lab"] else sys.argv[1:])
    write_results(sweep, rows, out, command, machine(device))
    print(f"{len(rows)}/{len(sweep.cells())} cells; wrote {out / 'results.json'}, table.md, accuracy.png, cost.png")


def run_report(args) -> None:
    from ..lab import sweep_from_dict, write_results
    from ..lab.runner import finished

    out = Path(args.folder)
    if not (out / "sweep.json").is_file():
        raise GLRError(f"{args.folder!r} is not a lab output folder (no sweep.json)")
    sweep = sweep_from_dict(read_json(out / "sweep.json"))
    done = finished(out)
    rows = [done[c.key] for c in sweep.cells() if c.key in done]
    if not rows:
        raise GLRError(f"{args.folder!r} holds no finished cells")
    old = read_json(out / "results.json") if (out / "results.json").is_file() else {}
    machine = read_json(out / "machine.json") if (out / "machine.json").is_file() else None
    write_results(sweep, rows, out, args.command or old.get("command", ""), machine or old.get("machine"))
    print((out / "table.md").read_text(), end="")


def run_tasks(args) -> None:
    from ..tasks import TASKS

    for name, cls in TASKS.items():
        summary = (cls.__module__ and sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        print(f"{name:<9} swept: {cls.difficulty:<2} {summary}")
