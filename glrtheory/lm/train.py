"""Training a byte-level LM, in one process or data-parallel under ``torchrun`` (DDP).

Per optimizer step s: the global batch is ``train.batch`` windows at offsets drawn by
``data.batch_offsets(seed, s)``; process r takes its ``batch / world`` rows in ``accum`` micro-batches of
``micro_batch`` and back-propagates ``mean cross-entropy / accum`` (DDP averages over processes, so the
gradient is the global mean whatever ``world`` is). Then gradient clipping and AdamW (weight decay on weight
matrices only) at

    lr(s) = lr (s + 1) / warmup                                               s < warmup
    lr(s) = min_lr + (lr - min_lr) (1 + cos(pi (s - warmup) / (steps - warmup))) / 2     otherwise

bf16 autocast on CUDA. Every ``eval.every`` steps (and at the end) the validation bits per byte (and ``val_bpb_unseen``,
without the windows that occur verbatim in the training split) go into
``log.jsonl`` as one JSON line; checkpoints go to ``checkpoint.pt`` atomically and a rerun resumes from it
exactly (data depend only on (seed, step); model, optimizer and RNG states are restored).
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from glrtheory.errors import GLRError

from ..atomic import write_json
from . import checkpoint
from .build import ModelFactory, build_model, forward_flops_per_token, parameter_count, unused_parameters
from .config import RunConfig
from .data import batch_offsets, seen_in_training, windows
from .distributed import Dist, all_sum
from .evaluate import autocast, evaluate
from .runs import open_corpus

#: Training FLOPs per token are taken as 3x the forward (the backward costs about twice the forward).
TRAIN_FLOPS_PER_FORWARD = 3


def learning_rate(step: int, t) -> float:
    """The warmup + cosine schedule of the module docstring (``t`` a TrainConfig)."""
    if step < t.warmup:
        return t.lr * (step + 1) / t.warmup
    frac = (step - t.warmup) / max(1, t.steps - t.warmup)
    return t.min_lr + (t.lr - t.min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def make_optimizer(model: torch.nn.Module, t) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only: parameters of two or more dimensions other than biases
    (the mixers' lag bias ``[2, H, buckets]`` is a bias, not decayed)."""
    decayed, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decayed if p.ndim >= 2 and not name.endswith("bias") else plain).append(p)
    groups = [{"params": decayed, "weight_decay": t.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=t.lr, betas=tuple(t.betas), fused=False)


def _micro_batches(data, run: RunConfig, step: int, d: Dist):
    """This process' micro-batches ``int64[micro_batch, seq_len + 1]`` of global step ``step``."""
    t = run.train
    per_rank = t.batch // d.world
    offsets = batch_offsets(len(data), t.seq_len, t.seed, step, t.batch)[d.rank * per_rank:(d.rank + 1) * per_rank]
    for i in range(0, per_rank, t.micro_batch):
        yield torch.from_numpy(windows(data, offsets[i:i + t.micro_batch], t.seq_len)).to(d.device)


def _check_world(run: RunConfig, d: Dist) -> None:
    t = run.train
    if t.batch % (d.world * t.micro_batch):
        raise GLRError(f"train.batch={t.batch} is not a multiple of world ({d.world}) x "
                       f"micro_batch ({t.micro_batch})")


def _keep_log_until(path: Path, step: int) -> None:
    """Drop log lines written after ``step`` (by a run that stopped before its next checkpoint), and any
    line cut short by a crash."""
    if path.exists():
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        write_json(path, kept, lines=True)


def train(run: RunConfig, d: Dist, *, stop_at: int | None = None, model_factory: ModelFactory = build_model,
          resume: bool = True) -> dict:
    """Train ``run`` up to ``train.steps`` (or stop after ``stop_at`` steps, checkpointing there; a checkpoint at or
    past ``stop_at`` trains no step).

    Returns ``{"losses": [train loss of each step run here], "step": last step, "result": the final
    result dict (or None if stopped early)}``.

    Raises
    ------
    GLRError
        Missing corpus, a batch that does not split over the processes, a checkpoint from another config.
    """
    t = run.train
    _check_world(run, d)
    corpus = open_corpus(run.data, d)
    torch.manual_seed(t.seed)
    model = model_factory(run.model).to(d.device)
    optimizer = make_optimizer(model, t)
    ckpt_path, log_path = run.run_dir / "checkpoint.pt", run.run_dir / "log.jsonl"
    start, elapsed = 0, 0.0
    if resume and ckpt_path.exists():
        ckpt = checkpoint.read(ckpt_path, run.fingerprint())
        start = checkpoint.restore(ckpt, model=model, optimizer=optimizer)
        elapsed = ckpt["extra"].get("elapsed_s", 0.0)
    fwd_flops = forward_flops_per_token(model, t.seq_len)
    header = {"run": run.name, "pattern": run.model["pattern"], "params": parameter_count(model),
              "forward_flops_per_token": fwd_flops, "world": d.world, "device": _device_name(d),
              "corpus": corpus.info, "fingerprint": run.fingerprint()}
    if d.main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        if start:
            _keep_log_until(log_path, start)
        else:
            log_path.unlink(missing_ok=True)
    net = DistributedDataParallel(model, find_unused_parameters=bool(unused_parameters(model, t.seq_len))) \
        if d.world > 1 else model
    accum = t.batch // (d.world * t.micro_batch)
    stop = max(start, min(t.steps, stop_at if stop_at is not None else t.steps))   # a checkpoint past stop_at: none
    seen = seen_in_training(corpus, t.seq_len, run.eval.windows)
    losses, since, tokens_since = [], time.perf_counter(), 0        # the search above is not training time
    bar = tqdm(range(start, stop), initial=start, total=t.steps, disable=not (d.main and run.log.progress),
               desc=run.name, dynamic_ncols=True)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, t)
        total = torch.zeros((), device=d.device)
        for i, xy in enumerate(_micro_batches(corpus.train, run, step, d)):
            sync = d.world == 1 or i == accum - 1
            with (contextlib.nullcontext() if sync else net.no_sync()):
                with autocast(d.device):
                    logits = net(xy[:, :-1])
                loss = F.cross_entropy(logits.float().flatten(0, 1), xy[:, 1:].flatten())
                (loss / accum).backward()
            total += loss.detach() / accum
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(all_sum(total, d)) / d.world
        losses.append(loss_value)
        tokens_since += t.batch * t.seq_len
        bar.set_postfix(loss=f"{loss_value:.3f}")
        done = step + 1
        if done % run.eval.every == 0 or done == t.steps:
            if d.device.type == "cuda":
                torch.cuda.synchronize()
            span = time.perf_counter() - since
            elapsed += span
            val = evaluate(model, corpus.val, t.seq_len, run.eval.windows, run.eval.batch, d, seen=seen)
            tokens = done * t.batch * t.seq_len
            line = {**header, "step": done, "tokens": tokens, "lr": learning_rate(step, t),
                    "train_loss": loss_value, "train_bpb": loss_value / math.log(2), "val_bpb": val["bpb"],
                    "val_bpb_by_position": val["bpb_by_position"], "val_bytes": val["bytes"],
                    "val_bpb_unseen": val["bpb_unseen"], "val_windows_unseen": val["windows_unseen"],
                    "train_flops": TRAIN_FLOPS_PER_FORWARD * fwd_flops * tokens,
                    "tokens_per_s": tokens_since / span, "train_time_s": elapsed}
            if d.main:
                with open(log_path, "a") as f:
                    f.write(json.dumps(line) + "\n")
            since, tokens_since = time.perf_counter(), 0
        if d.main and (done % run.log.checkpoint_every == 0 or done == stop):
            # the steps since the last evaluation count too: a run resumed from here goes on from this time
            checkpoint.save(ckpt_path, model=model, optimizer=optimizer, step=done, fingerprint=run.fingerprint(),
                            config=run.to_dict(), extra={"elapsed_s": elapsed + time.perf_counter() - since})
    bar.close()
    result = None
    if stop == t.steps and d.main:
        lines = [json.loads(ln) for ln in log_path.read_text().splitlines()] if log_path.exists() else []
        if not lines:
            raise GLRError(f"{log_path} holds no log line, though the checkpoint is at step {start}: delete "
                           f"{ckpt_path} to train the run again")
        result = {**header, "config": run.to_dict(), "final": lines[-1], "log": lines}
        write_json(run.run_dir / "result.json", result)
    return {"losses": losses, "step": stop, "result": result}


def _device_name(d: Dist) -> str:
    if d.device.type == "cuda":
        return f"{d.world} x {torch.cuda.get_device_name(d.device)}"
    return f"{d.world} x cpu"
