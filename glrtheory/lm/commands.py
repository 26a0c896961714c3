"""The verbs ``train``, ``eval``, ``generate``, ``collect`` and ``report``: their arguments and what they run.

``add_commands(subparsers)`` adds them to any argparse parser: ``python -m glrtheory.lm`` and
``glr lm`` share them. Each verb runs every run of the config (or the one named by ``--pattern``).
torch is imported when a verb runs, not when the parser is built (``glr --help`` stays fast).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from glrtheory.checks import parse_integer
from glrtheory.cli.common import finite_real, non_negative_int, path_arg, positive_int, random_seed
from glrtheory.errors import GLRError
from glrtheory.json_file import read_json

from .config import load_config, select

#: Most bytes one ``generate`` decodes (its ``--tokens``, and each of its ``--contexts``): 2^20.
MAX_DECODE = 2 ** 20


def _runs(args):
    return select(load_config(args.config, args.set or []), args.pattern)


def trained(run, d):
    """The model of a run with the weights of its checkpoint."""
    from . import checkpoint
    from .build import build_model

    ckpt = checkpoint.read(run.run_dir / "checkpoint.pt", run.fingerprint())
    model = build_model(run.model).to(d.device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def run_train(args) -> None:
    from .distributed import distributed
    from .train import train

    runs = _runs(args)
    with distributed(runs[0].train.device) as d:
        for run in runs:
            if args.no_progress:
                run.log.progress = False
            out = train(run, d, stop_at=args.stop_at)
            if d.main and out["result"]:
                print(json.dumps({"run": run.name, **{k: out["result"]["final"][k] for k in
                                  ("step", "val_bpb", "tokens_per_s")}}))


def run_eval(args) -> None:
    from .data import seen_in_training
    from .distributed import distributed
    from .evaluate import evaluate
    from ..atomic import write_json
    from .runs import open_corpus

    runs = _runs(args)
    with distributed(runs[0].train.device) as d:
        for run in runs:
            model, ckpt = trained(run, d)
            corpus = open_corpus(run.data, d)
            windows, T = args.windows or run.eval.windows, run.train.seq_len
            seen = seen_in_training(corpus, T, windows, args.split)
            result = {"run": run.name, "pattern": run.model["pattern"], "step": ckpt["step"], "split": args.split,
                      **evaluate(model, corpus.val, T, windows, run.eval.batch, d, args.split, seen),
                      "corpus": corpus.info}
            if d.main:
                write_json(run.run_dir / ("eval.json" if args.split == "validation" else "eval_test.json"), result)
                print(json.dumps(result))


def run_generate(args) -> None:
    import sys

    import torch
    from tqdm import tqdm

    from .build import build_model
    from .distributed import distributed
    from .generate import check_temperature, decode_profile, generate
    from ..atomic import write_json

    check_temperature(args.temperature, "--temperature")          # before any model loads
    if not args.prompt:
        raise GLRError("--prompt must hold at least one character")
    try:
        contexts = [parse_integer(c) for c in args.contexts.split(",") if c.strip()]
    except ValueError:
        contexts = [0]
    if any(c < 1 for c in contexts):
        raise GLRError(f"--contexts must be comma-separated positive integers, got {args.contexts!r}")
    for name, n in [("--tokens", args.tokens)] + [("--contexts", c) for c in contexts]:
        if n > MAX_DECODE:
            raise GLRError(f"{name} {n} is over the limit of {MAX_DECODE} decoded bytes")
    runs = _runs(args)
    with distributed(runs[0].train.device) as d:
        if d.world > 1:
            raise GLRError("generate runs in one process; start it without torchrun")
        for run in runs:
            if args.random_weights:
                torch.manual_seed(args.seed)
                model, step = build_model(run.model).to(d.device).eval(), 0
            elif args.skip_missing and not (run.run_dir / "checkpoint.pt").exists():
                print(f"glrtheory.lm: warning: {run.name} has no checkpoint; skipped", file=sys.stderr)
                continue
            else:
                model, ckpt = trained(run, d)
                step = ckpt["step"]
            prompt = torch.tensor([list(args.prompt.encode())], dtype=torch.long, device=d.device)
            out = generate(model, prompt, args.tokens, temperature=args.temperature, seed=args.seed)
            text = bytes(out[0].tolist()).decode("utf-8", errors="replace")
            rows = [decode_profile(model, run.model["pattern"], c, d.device)       # a bar on a terminal only
                    for c in tqdm(contexts, desc=f"{run.name}: decode profile", unit="context", disable=None)]
            device = torch.cuda.get_device_name(d.device) if d.device.type == "cuda" else "cpu"
            result = {"run": run.name, "pattern": run.model["pattern"], "step": step,
                      "weights": f"random (seed {args.seed})" if args.random_weights else "checkpoint",
                      "prompt": args.prompt, "sample": text, "decode": rows, "device": device,
                      "torch_threads": torch.get_num_threads()}
            write_json(run.run_dir / "generate.json", result)
            print(json.dumps(result))


def run_collect(args) -> None:
    from .report import collect
    from ..atomic import write_json

    write_json(args.out, collect(args.runs, args.scaling or []))


def run_report(args) -> None:
    from .report import render

    path = Path(args.bundle)
    bundle = read_json(path, "bundle")
    if not isinstance(bundle.get("runs"), dict) or not bundle["runs"]:
        raise GLRError(f"bundle {str(path)!r} has no 'runs': not a bundle of glrtheory.lm collect")
    try:
        written = render(bundle, args.dest)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:    # a field missing or of another kind
        raise GLRError(f"bundle {str(path)!r} is not a bundle of glrtheory.lm collect "
                       f"({type(exc).__name__}: {exc})") from None
    print("\n".join(map(str, written)))


def add_commands(sub) -> None:
    """Add the verbs to an argparse subparsers object."""
    def common(p):
        p.add_argument("--config", required=True, type=path_arg, help="TOML config (configs/lm/*.toml)")
        p.add_argument("--pattern", help="run only this pattern of the config")
        p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override a config value (repeatable), e.g. --set train.steps=200")

    p = sub.add_parser("train", help="train (resumes from the run's checkpoint if there is one)")
    common(p)
    p.add_argument("--stop-at", type=positive_int, help="stop (and checkpoint) after this many steps")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.set_defaults(run=run_train)

    p = sub.add_parser("eval", help="validation bits per byte, overall, by position, and over the windows that do "
                                    "not occur verbatim in the training split (bpb_unseen)")
    common(p)
    p.add_argument("--windows", type=positive_int, help="validation windows (default eval.windows)")
    p.add_argument("--split", choices=("validation", "test"), default="validation",
                   help="the validation windows, or the test windows halfway between them (eval_test.json)")
    p.set_defaults(run=run_eval)

    p = sub.add_parser("generate", help="sample with the decode cache; measure decode speed and cache")
    common(p)
    p.add_argument("--prompt", default="import ", help="text to start from")
    p.add_argument("--tokens", type=non_negative_int, default=200,
                   help=f"bytes to generate (at most {MAX_DECODE}, as each of --contexts)")
    p.add_argument("--temperature", type=finite_real, default=0.8)
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--contexts", default="1024,4096,16384",
                   help="comma-separated decode lengths to measure ('' for none)")
    p.add_argument("--random-weights", action="store_true",
                   help="no checkpoint: freshly initialized weights (speed and cache do not depend on them)")
    p.add_argument("--skip-missing", action="store_true", help="skip runs that have no checkpoint")
    p.set_defaults(run=run_generate)

    p = sub.add_parser("collect", help="gather the logs of runs (and scaling runs) into one JSON bundle")
    p.add_argument("--runs", required=True, type=path_arg, help="a log.out_dir holding one folder per run")
    p.add_argument("--scaling", nargs="*", help="out_dirs of the same run on 1 and on N processes")
    p.add_argument("--out", required=True, type=path_arg, help="bundle JSON to write")
    p.set_defaults(run=run_collect)

    p = sub.add_parser("report", help="figures and tables from a bundle")
    p.add_argument("--bundle", required=True)
    p.add_argument("--dest", required=True, help="folder for val_bpb.png and tables.md")
    p.set_defaults(run=run_report)


def build_parser(prog: str = "python -m glrtheory.lm") -> argparse.ArgumentParser:
    from glrtheory.cli import OneLineParser

    parser = OneLineParser(prog=prog, description="Byte-level language models per pattern.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser)
    add_commands(sub)
    return parser
