"""The verbs ``train``, ``eval`` and ``generate``: their arguments and what they run.

``add_commands(subparsers)`` adds them to any argparse parser: ``python -m glrtheory.lm`` and
``glr lm`` share them. Each verb runs every run of the config (or the one named by ``--pattern``).
torch is imported when a verb runs, not when the parser is built (``glr --help`` stays fast).
"""
from __future__ import annotations

import argparse
import json

from glrtheory.errors import GLRError

from .config import load_config, select


def _runs(args):
    runs = select(load_config(args.config), args.pattern)
    for run in runs:
        if getattr(args, "out_dir", None):
            run.log.out_dir = args.out_dir
    return runs


def _trained(run, d):
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
    from .distributed import distributed
    from .evaluate import evaluate
    from .runs import open_corpus, write_json

    runs = _runs(args)
    with distributed(runs[0].train.device) as d:
        for run in runs:
            model, ckpt = _trained(run, d)
            corpus = open_corpus(run.data, d)
            windows = args.windows or run.eval.windows
            result = {"run": run.name, "pattern": run.model["pattern"], "step": ckpt["step"],
                      **evaluate(model, corpus.val, run.train.seq_len, windows, run.eval.batch, d),
                      "corpus": corpus.info}
            if d.main:
                write_json(run.run_dir / "eval.json", result)
                print(json.dumps(result))


def run_generate(args) -> None:
    import torch

    from .distributed import distributed
    from .generate import decode_profile, generate
    from .runs import write_json

    contexts = [int(c) for c in args.contexts.split(",") if c] if args.contexts else []
    if any(c < 1 for c in contexts):
        raise GLRError(f"--contexts must be positive integers, got {args.contexts!r}")
    runs = _runs(args)
    with distributed(runs[0].train.device) as d:
        if d.world > 1:
            raise GLRError("generate runs in one process; start it without torchrun")
        for run in runs:
            model, ckpt = _trained(run, d)
            prompt = torch.tensor([list(args.prompt.encode())], dtype=torch.long, device=d.device)
            out = generate(model, prompt, args.tokens, temperature=args.temperature, seed=args.seed)
            text = bytes(out[0].tolist()).decode("utf-8", errors="replace")
            rows = [decode_profile(model, run.model["pattern"], c, d.device) for c in contexts]
            result = {"run": run.name, "pattern": run.model["pattern"], "step": ckpt["step"],
                      "prompt": args.prompt, "sample": text, "decode": rows, "device": str(d.device)}
            write_json(run.run_dir / "generate.json", result)
            print(json.dumps(result))


def add_commands(sub) -> None:
    """Add ``train``, ``eval`` and ``generate`` to an argparse subparsers object."""
    def common(p):
        p.add_argument("--config", required=True, help="TOML config (configs/lm/*.toml)")
        p.add_argument("--pattern", help="run only this pattern of the config")
        p.add_argument("--out-dir", help="override log.out_dir")

    p = sub.add_parser("train", help="train (resumes from the run's checkpoint if there is one)")
    common(p)
    p.add_argument("--stop-at", type=int, help="stop (and checkpoint) after this many steps")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.set_defaults(run=run_train)

    p = sub.add_parser("eval", help="validation bits per byte, overall and by position")
    common(p)
    p.add_argument("--windows", type=int, help="validation windows (default eval.windows)")
    p.set_defaults(run=run_eval)

    p = sub.add_parser("generate", help="sample with the decode cache; measure decode speed and cache")
    common(p)
    p.add_argument("--prompt", default="import ", help="text to start from")
    p.add_argument("--tokens", type=int, default=200, help="bytes to generate")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contexts", default="1024,4096,16384",
                   help="comma-separated decode lengths to measure ('' for none)")
    p.set_defaults(run=run_generate)


def build_parser(prog: str = "python -m glrtheory.lm") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Byte-level language models per pattern.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_commands(sub)
    return parser
