"""Train one model on one task at one learning rate, with checkpoints, and measure held-out accuracy.

Schedule: AdamW, linear warm-up over ``warmup * steps`` steps, then cosine decay to 0. The batch at
step i is ``task.sample(batch, seed=train_seed(seed, i))``, so a run resumed from a checkpoint sees the
same data as an uninterrupted one. Accuracy is the fraction of scored positions whose argmax is the
target, on two held-out sets of ``eval_size`` sequences each, from seeds no training step uses: *validation*, on
which the runner picks a cell's learning rate, and *test*, which it reports (so the pick does not flatter it).

On CUDA the model's forward and backward are captured as CUDA graphs once a run (``graphed``), and the losses
are read from the device every ``checkpoint_every`` steps, not every step: the lab's models are small, so that
eagerly the host set the pace (a step of ``configs/lab/h200_short.toml``'s took about 7 ms on an H200, its
kernels microseconds).
"""
from __future__ import annotations

import gc
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from glrtheory.atomic import atomic_file
from glrtheory.checks import check_integer, check_real
from glrtheory.errors import GLRError
from glrtheory.models import ModelConfig, SequenceModel
from glrtheory.tasks import IGNORE, Task

#: Training batches use seeds ``seed * SEED_STRIDE + step``; the held-out sets ``HELD_OUT[split] + seed``.
SEED_STRIDE = 10**7
HELD_OUT = {"validation": 10**12, "test": 2 * 10**12}


def _batch(task: Task, n: int, seed: int, device):
    x, y = task.sample(n, seed)
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def lr_at(step: int, steps: int, lr: float, warmup: float) -> float:
    w = max(1, int(warmup * steps))
    if step < w:
        return lr * (step + 1) / w
    return 0.5 * lr * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


@torch.no_grad()
def accuracy(model: SequenceModel, task: Task, n: int, seed: int, device, split: str = "validation",
             batch: int = 256) -> float:
    """Fraction of scored positions predicted right (argmax) on ``n`` sequences of the held-out ``split``."""
    if split not in HELD_OUT:
        raise GLRError(f"split must be one of {sorted(HELD_OUT)}, got {split!r}")
    x, y = _batch(task, n, HELD_OUT[split] + seed, device)
    model.eval()
    right = total = 0
    for i in range(0, n, batch):
        pred = model(x[i:i + batch]).argmax(-1)
        scored = y[i:i + batch] != IGNORE
        right += int((pred == y[i:i + batch])[scored].sum())
        total += int(scored.sum())
    model.train()
    return right / total


def graphed(model: SequenceModel, x: torch.Tensor) -> tuple:
    """``(forward, why_not)``: the model's training forward and backward captured as CUDA graphs for batches shaped
    as x (``torch.cuda.make_graphed_callables``; evaluation, in eval mode, runs eagerly) and None; or the model
    itself and why not: not on CUDA, or a capture that failed (the run then goes on eagerly). Python's garbage
    collector runs before the capture and not during it: an earlier run's graphs, freed by a collection in the
    middle of a capture, would free device memory there, which ends the capture with an error (torch no longer
    collects before a capture: ``torch.compiler.config.force_cudagraph_gc``)."""
    if x.device.type != "cuda":
        return model, "not on CUDA"
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        return torch.cuda.make_graphed_callables(model, (x,), num_warmup_iters=3,    # a lag bias no table reads
                                                 allow_unused_input=True), None   # (ssm's) gets no gradient
    except Exception as e:                  # noqa: BLE001 - whatever failed, the capture state must end
        _end_failed_capture(x.device)
        if not isinstance(e, (RuntimeError, AssertionError)):
            raise
        return model, f"capture failed: {type(e).__name__}: {str(e)[:200]}"
    finally:
        if collecting:
            gc.enable()


def _end_failed_capture(device: torch.device) -> None:
    """A capture that failed leaves the device's random generator mid-capture (torch ends that state only when a
    capture ends without error), so that every later random draw on the device raised (gpu_calls/call173, call177);
    a capture that succeeds, of one small fill, ends it."""
    with torch.cuda.device(device):
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            torch.zeros(1, device=device)
        torch.cuda.synchronize()


def _read(pending: list, losses: list) -> bool:
    """Move the device's losses in ``pending`` to ``losses`` as floats, up to the first that is not finite (kept as
    NaN); False if there was one."""
    values = torch.stack(pending).tolist() if pending else []
    pending.clear()
    for v in values:
        losses.append(v if math.isfinite(v) else float("nan"))
        if not math.isfinite(v):
            return False
    return True


def _save(path: Path, state: dict) -> None:
    with atomic_file(path, binary=True) as f:
        torch.save(state, f)


def _settings(task: Task, config: ModelConfig, **numbers) -> dict:
    """What decides a run's steps, as its checkpoint records them: the task (``describe()``), the model's
    config, and ``numbers`` (lr, seed, steps, batch, warmup, weight_decay)."""
    return {"task": task.describe(), "model": config.to_dict(), **numbers}


def _resume(path: Path, device, settings: dict) -> dict:
    """The checkpoint at ``path``, refused where it is at or past ``settings["steps"]`` (a longer run wrote it)
    or was written with other settings (a resume would go on with another run's model, data or schedule)."""
    state = torch.load(path, map_location=device, weights_only=False)
    steps = settings["steps"]
    if state["step"] >= steps:
        raise GLRError(f"checkpoint {str(path)!r} is at step {state['step']}, not before steps = {steps}: a longer "
                       "run wrote it; remove it or train that run's steps")
    theirs = state.get("settings", {})
    other = [k for k in settings if theirs.get(k) != settings[k]]
    if other:
        raise GLRError(f"checkpoint {str(path)!r} was written by a run with another {', '.join(other)}: remove it "
                       "or train with that run's settings")
    return state


def train(task: Task, config: ModelConfig, *, lr: float, seed: int, steps: int, batch: int, eval_size: int,
          warmup: float = 0.1, weight_decay: float = 0.0, device="cpu", checkpoint: Path | None = None,
          checkpoint_every: int = 100, progress: bool = True, stop_at: int | None = None,
          cuda_graphs: bool = True) -> dict | None:
    """Train ``SequenceModel(config)`` on ``task`` for ``steps`` steps and return ``{"val_accuracy",
    "test_accuracy", "loss_first", "loss_last", "steps", "wall_s", "parameters", "graphed", "capture_s"}``
    (``wall_s`` includes the capture's ``capture_s``); resumes from ``checkpoint`` when it exists, and writes it
    (atomically) every ``checkpoint_every`` steps. ``stop_at``: leave after that many steps, with the checkpoint
    written, and return None (an interrupted run, as a test or a time-boxed job makes it; at once where a resumed
    checkpoint is at or past it); at or past ``steps`` the run ends as usual, with its result. A checkpoint at or
    past ``steps`` (written by a longer run), or written with another task, model, lr, seed, steps, batch, warmup or
    weight_decay, is refused. ``cuda_graphs``: on CUDA, run the steps' forward and backward as CUDA graphs
    (``graphed``); ``graphed`` in the result says whether they ran so, or why not. The losses are those of every
    step up to the first that is not finite (NaN); training stops when the losses are next read (every
    ``checkpoint_every`` steps), before any checkpoint is written after it. Bad arguments (steps, batch, eval_size,
    checkpoint_every or stop_at not a positive integer, steps past ``SEED_STRIDE``, lr not positive and finite,
    warmup outside [0, 1], weight_decay negative) raise a GLRError."""
    steps = check_integer(steps, "steps", 1, SEED_STRIDE)            # more would reach the next seed's batches
    for value, what in ((batch, "batch"), (eval_size, "eval_size"), (checkpoint_every, "checkpoint_every")):
        check_integer(value, what, 1)
    if stop_at is not None:
        check_integer(stop_at, "stop_at", 1)
    check_real(lr, "lr", 0, open_low=True)
    check_real(warmup, "warmup", 0, 1)                               # a share of the steps
    check_real(weight_decay, "weight_decay", 0)
    torch.manual_seed(seed)
    model = SequenceModel(config, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    settings = _settings(task, config, lr=lr, seed=seed, steps=steps, batch=batch, warmup=warmup,
                         weight_decay=weight_decay)
    start, losses, wall = 0, [], 0.0
    if checkpoint is not None and checkpoint.exists():
        state = _resume(checkpoint, device, settings)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, losses, wall = state["step"], state["losses"], state["wall_s"]
    if stop_at is not None and stop_at <= start:                    # it stopped there already: no step more
        return None
    t0 = time.perf_counter() - wall
    forward, why_not, captured = model, "cuda_graphs off", time.perf_counter()
    if cuda_graphs and start < steps:
        forward, why_not = graphed(model, _batch(task, batch, seed * SEED_STRIDE + start, device)[0])
    capture_s = time.perf_counter() - captured
    bar = tqdm(range(start, steps), desc=f"{config.pattern} {task.name} lr={lr:g}", leave=False,
               disable=not progress, initial=start, total=steps)
    pending = []
    for step in bar:
        x, y = _batch(task, batch, seed * SEED_STRIDE + step, device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        loss = F.cross_entropy(forward(x).flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pending.append(loss.detach())
        stop = stop_at is not None and stop_at <= step + 1 < steps     # the last step ends the run as usual
        if ((step + 1) % checkpoint_every == 0 or stop or step + 1 == steps) and not _read(pending, losses):
            break
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or stop) and step + 1 < steps:
            _save(checkpoint, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                               "losses": losses, "wall_s": time.perf_counter() - t0, "settings": settings})
        if stop:
            return None
    diverged = not (losses and math.isfinite(losses[-1]))
    acc = {split: 0.0 if diverged else accuracy(model, task, eval_size, seed, device, split) for split in HELD_OUT}
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    tail = losses[-max(1, len(losses) // 10):]
    return {"val_accuracy": acc["validation"], "test_accuracy": acc["test"], "loss_first": losses[0],
            "loss_last": sum(tail) / len(tail), "steps": len(losses), "wall_s": time.perf_counter() - t0,
            "parameters": model.num_parameters(), "graphed": True if why_not is None else why_not,
            "capture_s": capture_s}
