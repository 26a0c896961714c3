"""Mutation run 13 (docs/mutation.md): the lab's training (``lab/train.py``) and runner (``lab/runner.py``), each test
against hand-worked numbers, the task's own samples counted with numpy, tqdm's and the platform's own output, or
stand-ins that record what they are given (the training's losses pinned to hand values, a stand-in ``train`` for the
runner, a stand-in capture for the CUDA graphs). Small sizes throughout: a model of one layer of width 8."""
import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import time
import types

import numpy as np
import pytest
import torch
from tqdm import tqdm

from glrtheory import GLRError
from glrtheory.lab import run_sweep, sweep_from_dict, train
from glrtheory.lab.runner import ROW_KEYS, _finite, failures, finished, machine, run_cell
from glrtheory.lab.train import _batch, _read, accuracy, graphed, lr_at
from glrtheory.models import ModelConfig
from glrtheory.tasks import IGNORE, make_task

T = importlib.import_module("glrtheory.lab.train")
R = importlib.import_module("glrtheory.lab.runner")
TASK = make_task("copy", L=2, length=6, vocab=5)
CONFIG = ModelConfig(vocab_size=5, d_model=8, n_heads=2, n_layers=1, pattern="window:2")
KW = dict(lr=1e-3, seed=0, batch=2, eval_size=4, progress=False)
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """No tqdm monitor thread (it only tunes the refresh of slow bars, and a process forked while one runs, as mutmut
    forks one a mutant, hung on a bar left open by a failed test)."""
    monkeypatch.setattr(tqdm, "monitor_interval", 0)


# --- train.py --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step, steps, lr, warmup, expected", [
    (0, 10, 2.0, 0.2, 1.0), (1, 10, 2.0, 0.2, 2.0),      # w = 2 warm-up steps: lr (step + 1) / 2
    (2, 10, 2.0, 0.2, 2.0),                               # the cosine's top: lr (1 + cos 0) / 2
    (6, 10, 2.0, 0.2, 1.0),                               # (6 - 2) / (10 - 2) = 1/2 of the way: cos(pi/2) = 0
    (9, 10, 2.0, 0.2, 0.07612046748871326),               # 1 + cos(7 pi / 8) = 1 - cos(pi / 8)
    (0, 4, 3.0, 0.0, 3.0), (1, 4, 3.0, 0.0, 3.0),         # no warm-up: still w = 1, the first step at lr
    (2, 4, 3.0, 0.0, 2.25), (3, 4, 3.0, 0.0, 0.75),       # cos(pi/3) = 1/2, cos(2 pi/3) = -1/2
    (0, 10, 1.0, 0.15, 1.0),                              # int(1.5) = 1 warm-up step
    (4, 10, 1.0, 0.5, 1.0), (3, 10, 1.0, 0.5, 0.8)])      # w = 5: 4/5 at step 3, lr at step 4
def test_the_schedule_worked_by_hand(step, steps, lr, warmup, expected):
    assert lr_at(step, steps, lr, warmup) == pytest.approx(expected, rel=1e-12)


class _Recording(torch.optim.AdamW):
    """AdamW that records its learning rate and weight decay at every step."""
    seen: list = []

    def step(self, closure=None):
        group = self.param_groups[0]
        _Recording.seen.append((group["lr"], group["weight_decay"]))
        return super().step(closure)


def test_every_step_runs_at_the_scheduled_rate_with_the_weight_decay_and_the_clip_given(monkeypatch):
    """5 steps with warm-up 0.4 (w = 2): rates lr x [1/2, 1, 1, 3/4, 1/4]; with the default warm-up 0.1 (w = 1):
    lr x [1, 1, (2 + sqrt 2)/4, 1/2, (2 - sqrt 2)/4]; weight decay 0 by default, else as given; gradients clipped to
    norm 1 at every step."""
    clips = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.optim, "AdamW", _Recording)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, max_norm: (clips.append(max_norm),
                                                                                clip(p, max_norm))[1])
    _Recording.seen = []
    train(TASK, CONFIG, steps=5, warmup=0.4, weight_decay=0.25, **{**KW, "lr": 2e-3})
    assert [lr for lr, _ in _Recording.seen] == pytest.approx([1e-3, 2e-3, 2e-3, 1.5e-3, 0.5e-3], rel=1e-12)
    assert [wd for _, wd in _Recording.seen] == [0.25] * 5 and clips == [1.0] * 5
    _Recording.seen = []
    train(TASK, CONFIG, steps=5, **KW)
    assert [lr for lr, _ in _Recording.seen] == pytest.approx(
        [1e-3, 1e-3, 0.8535533905932737e-3, 0.5e-3, 0.14644660940672624e-3], rel=1e-12)
    assert [wd for _, wd in _Recording.seen] == [0.0] * 5


def _pinned(monkeypatch, values):
    """The training's loss at its k-th step pinned to ``values[k]`` (its gradient the real cross-entropy's, so that
    the weights stay finite even where the value is not); returns the list of steps' keyword arguments."""
    calls = []

    def cross_entropy(logits, target, **kw):
        loss = torch.nn.functional.cross_entropy(logits, target, **kw)
        value = values[len(calls)]
        calls.append(kw)
        return loss - loss.detach() + value
    monkeypatch.setattr(T, "F", types.SimpleNamespace(cross_entropy=cross_entropy))
    return calls


def _saves(monkeypatch):
    """Record every checkpoint written: (step, losses, wall_s), and write it."""
    saved = []
    real = T._save
    monkeypatch.setattr(T, "_save", lambda path, state: (saved.append((state["step"], list(state["losses"]),
                                                                        state["wall_s"])), real(path, state))[1])
    return saved


def test_first_and_last_loss_from_pinned_losses(monkeypatch):
    """loss_first is the first step's loss; loss_last the mean over the last tenth of the steps (at least one):
    losses 1..20 give (19 + 20) / 2, losses 1..10 give 10; steps counts them."""
    for steps, last in ((20, 19.5), (10, 10.0), (3, 3.0)):
        calls = _pinned(monkeypatch, [float(k) for k in range(1, steps + 1)])
        r = train(TASK, CONFIG, steps=steps, **KW)
        assert (r["loss_first"], r["loss_last"], r["steps"], len(calls)) == (1.0, last, steps, steps)
        assert all(kw == {"ignore_index": IGNORE} for kw in calls)


def test_a_non_finite_loss_ends_the_run_at_the_next_read_and_scores_zero(monkeypatch):
    """Losses 1, 2, 3, inf, 5, ... read every 3 steps: the read after step 6 finds the inf, so training ends there
    (6 steps run, none more), the losses kept are 1, 2, 3, NaN, and accuracy is 0 on both sets (the weights are
    finite: the pinned inf carries the real gradient, so a model evaluated anyway would score)."""
    calls = _pinned(monkeypatch, [1.0, 2.0, 3.0, math.inf, 5.0, 6.0, 7.0])
    saved = _saves(monkeypatch)
    r = train(TASK, CONFIG, steps=7, checkpoint_every=3, **{**KW, "eval_size": 64})
    assert len(calls) == 6 and r["steps"] == 4 and r["loss_first"] == 1.0 and math.isnan(r["loss_last"])
    assert r["val_accuracy"] == r["test_accuracy"] == 0.0 and saved == []


def test_no_checkpoint_is_written_after_a_non_finite_loss(monkeypatch, tmp_path):
    """As above with a checkpoint: the one written at step 3 is the last (the read at step 6 ends the run first),
    and it is removed at the end."""
    calls = _pinned(monkeypatch, [1.0, 2.0, 3.0, math.inf, 5.0, 6.0, 7.0])
    saved = _saves(monkeypatch)
    r = train(TASK, CONFIG, steps=7, checkpoint_every=3, checkpoint=tmp_path / "c.pt", **KW)
    assert len(calls) == 6 and r["steps"] == 4 and [s[:2] for s in saved] == [(3, [1.0, 2.0, 3.0])]
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("steps, written", [(7, [3, 6]), (6, [3])])
def test_checkpoints_every_checkpoint_every_steps_before_the_last(monkeypatch, tmp_path, steps, written):
    """Every 3 steps a checkpoint holding the step, the losses so far and the time spent (at most what the call
    took), never at the last step; it is removed at the end."""
    _pinned(monkeypatch, [float(k) for k in range(1, 8)])
    saved = _saves(monkeypatch)
    start = time.perf_counter()
    r = train(TASK, CONFIG, steps=steps, checkpoint_every=3, checkpoint=tmp_path / "c.pt", **KW)
    took = time.perf_counter() - start
    assert [s[0] for s in saved] == written and r["steps"] == steps
    assert all(losses == [float(k) for k in range(1, step + 1)] and 0 < wall <= took for step, losses, wall in saved)
    assert not (tmp_path / "c.pt").exists() and 0 < r["wall_s"] <= took


def test_checkpoints_every_100_steps_by_default(monkeypatch, tmp_path):
    """101 steps with a checkpoint and the default checkpoint_every (100, the lab's [run] default): one checkpoint,
    at step 100, holding the 100 losses read there."""
    saved = _saves(monkeypatch)
    r = train(TASK, CONFIG, steps=101, checkpoint=tmp_path / "c.pt", **KW)
    assert [(step, len(losses)) for step, losses, _ in saved] == [(100, 100)] and r["steps"] == 101


def test_stop_at_writes_the_checkpoint_there_and_a_resumed_run_goes_on_from_it(monkeypatch, tmp_path):
    """stop_at=4 (checkpoints every 3): written at 3 and at 4, then None; the file holds step 4 and losses 1..4.
    The resumed run captures its sample batch at step 4 (seed 0's batch 4: ``TASK.sample(2, 4)``), counts its
    time from the checkpoint's (set to 1000 s here), and, on the device asked for, loads the checkpoint there."""
    ckpt = tmp_path / "c.pt"
    _pinned(monkeypatch, [float(k) for k in range(1, 11)])
    saved = _saves(monkeypatch)
    assert train(TASK, CONFIG, steps=10, checkpoint_every=3, checkpoint=ckpt, stop_at=4, **KW) is None
    assert [s[:2] for s in saved] == [(3, [1.0, 2.0, 3.0]), (4, [1.0, 2.0, 3.0, 4.0])]
    state = torch.load(ckpt, weights_only=False)
    assert (state["step"], state["losses"]) == (4, [1.0, 2.0, 3.0, 4.0]) and 0 < state["wall_s"] == saved[1][2]
    state["wall_s"] = spent = 1000.0                     # as if the first 4 steps had taken 1000 s
    torch.save(state, ckpt)

    samples, loads, batches = [], [], []
    monkeypatch.setattr(T, "graphed", lambda model, x: (samples.append(x), (model, None))[1])
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: (loads.append(kw.get("map_location", "none given")),
                                                         load(*a, **kw))[1])
    real = T._batch
    monkeypatch.setattr(T, "_batch", lambda task, n, seed, device: (batches.append((seed, device)),
                                                                    real(task, n, seed, device))[1])
    _pinned(monkeypatch, [float(k) for k in range(5, 11)])
    start = time.perf_counter()
    r = train(TASK, CONFIG, steps=10, checkpoint_every=3, checkpoint=ckpt, device=CPU, **KW)
    took = time.perf_counter() - start
    assert r["graphed"] is True and r["steps"] == 10 and r["loss_first"] == 1.0
    assert len(samples) == 1 and torch.equal(samples[0], torch.from_numpy(TASK.sample(2, 4)[0]))
    assert loads == [CPU] and spent <= r["wall_s"] <= spent + took
    assert [s for s, _ in batches] == [4, 4, 5, 6, 7, 8, 9, 10**12, 2 * 10**12]
    assert all(device == CPU for _, device in batches)


def test_a_stop_at_at_or_before_a_resumed_checkpoint_trains_no_step(monkeypatch, tmp_path):
    """Resumed from the checkpoint of step 4 with stop_at 4 or 2, train() used to train step 4 (one step) and
    write the checkpoint of step 5; it now leaves at once: None, no batch drawn, the checkpoint as it was."""
    ckpt = tmp_path / "c.pt"
    assert train(TASK, CONFIG, steps=10, checkpoint=ckpt, stop_at=4, **KW) is None
    written = ckpt.read_bytes()
    batches = []
    monkeypatch.setattr(T, "_batch", lambda *a: batches.append(a))
    for stop_at in (4, 2):
        assert train(TASK, CONFIG, steps=10, checkpoint=ckpt, stop_at=stop_at, **KW) is None
    assert batches == [] and ckpt.read_bytes() == written


def test_a_stop_at_or_past_the_last_step_ends_the_run_with_its_result(monkeypatch, tmp_path):
    """stop_at=steps used to stop at the last step without a checkpoint (none is written there) and return None:
    the finished run was lost. It now ends as usual."""
    for stop_at in (4, 9):
        saved = _saves(monkeypatch)
        r = train(TASK, CONFIG, steps=4, checkpoint=tmp_path / "c.pt", stop_at=stop_at, **KW)
        assert r is not None and r["steps"] == 4 and saved == [] and not (tmp_path / "c.pt").exists()


def test_a_checkpoint_of_a_longer_run_is_refused(tmp_path):
    """A checkpoint at step 4 resumed with steps 4 or 3 was taken as it stood: no training, and the result claimed
    4 steps."""
    ckpt = tmp_path / "c.pt"
    assert train(TASK, CONFIG, steps=10, checkpoint=ckpt, stop_at=4, **KW) is None
    for steps in (4, 3):
        with pytest.raises(GLRError) as e:
            train(TASK, CONFIG, steps=steps, checkpoint=ckpt, **KW)
        assert str(e.value) == (f"checkpoint {str(ckpt)!r} is at step 4, not before steps = {steps}: a longer run "
                                "wrote it; remove it or train that run's steps")
    assert ckpt.exists()


@pytest.mark.parametrize("change, other", [
    ({"lr": 2e-3}, "lr"), ({"seed": 1}, "seed"), ({"batch": 3}, "batch"), ({"warmup": 0.2}, "warmup"),
    ({"weight_decay": 0.1}, "weight_decay"), ({"steps": 11}, "steps"),
    ({"task": make_task("copy", L=2, length=7, vocab=5)}, "task"),
    ({"config": dataclasses.replace(CONFIG, pattern="window:3")}, "model"),
    ({"config": dataclasses.replace(CONFIG, d_model=12), "lr": 2e-3}, "model, lr")])
def test_a_checkpoint_of_another_run_is_refused(tmp_path, change, other):
    """A checkpoint resumed by a run with another task, model, lr, seed, steps, batch, warmup or weight_decay went
    on silently with the other run's weights and optimizer state (a wider model failed in load_state_dict)."""
    ckpt = tmp_path / "c.pt"
    base = {"task": TASK, "config": CONFIG, "steps": 10, **KW}
    assert train(base.pop("task"), base.pop("config"), checkpoint=ckpt, stop_at=4, **base) is None
    run = {"task": TASK, "config": CONFIG, "steps": 10, **KW, **change}
    with pytest.raises(GLRError) as e:
        train(run.pop("task"), run.pop("config"), checkpoint=ckpt, **run)
    assert str(e.value) == (f"checkpoint {str(ckpt)!r} was written by a run with another {other}: remove it or "
                            "train with that run's settings")
    assert ckpt.exists()


def test_a_checkpoint_without_settings_is_refused(tmp_path):
    """A checkpoint that records no settings (as glrtheory wrote them before) names every setting."""
    ckpt = tmp_path / "c.pt"
    assert train(TASK, CONFIG, steps=10, checkpoint=ckpt, stop_at=4, **KW) is None
    state = torch.load(ckpt, weights_only=False)
    del state["settings"]
    torch.save(state, ckpt)
    with pytest.raises(GLRError, match="another task, model, lr, seed, steps, batch, warmup, weight_decay: "):
        train(TASK, CONFIG, steps=10, checkpoint=ckpt, **KW)


@pytest.mark.parametrize("change, message", [
    ({"steps": 0}, "steps must be >= 1, got 0"), ({"steps": 2.5}, "steps must be an integer, got 2.5"),
    ({"steps": True}, "steps must be an integer, got True"),
    ({"steps": 10**7 + 1, "stop_at": 1}, "steps 10000001 exceeds the limit 10000000"),   # stop_at: leave if taken
    ({"batch": 0}, "batch must be >= 1, got 0"), ({"eval_size": 0}, "eval_size must be >= 1, got 0"),
    ({"checkpoint_every": 0}, "checkpoint_every must be >= 1, got 0"), ({"stop_at": 0}, "stop_at must be >= 1, got 0"),
    ({"lr": 0}, "lr must lie in (0, inf], got 0"), ({"lr": -1e-3}, "lr must lie in (0, inf], got -0.001"),
    ({"lr": math.inf}, "lr must be a finite number, got inf"),
    ({"lr": "1e-3"}, "lr must be a finite number, got '1e-3'"),
    ({"warmup": 1.5}, "warmup must lie in [0, 1], got 1.5"), ({"warmup": -0.1}, "warmup must lie in [0, 1], got -0.1"),
    ({"weight_decay": -1.0}, "weight_decay must lie in [0, inf], got -1.0")])
def test_bad_arguments_are_refused_by_name(change, message):
    """Each crashed (IndexError, ZeroDivisionError, TypeError), was refused by torch or the task under another name
    ("n must be >= 1"), or was taken (stop_at 0 trained a step)."""
    with pytest.raises(GLRError) as e:
        train(TASK, CONFIG, **{**KW, "steps": 3, **change})
    assert str(e.value) == message


def test_the_wall_time_is_the_calls_own():
    start = time.perf_counter()
    r = train(TASK, CONFIG, steps=1, **KW)
    took = time.perf_counter() - start
    assert 0 <= r["capture_s"] < r["wall_s"] <= took


def test_the_model_and_every_batch_go_to_the_device_asked_for(monkeypatch):
    made, batches = [], []
    real_model, real_batch = T.SequenceModel, T._batch

    def model(config, **kw):
        made.append(kw.get("device", "none given"))
        return real_model(config, **kw)
    monkeypatch.setattr(T, "SequenceModel", model)
    monkeypatch.setattr(T, "_batch", lambda task, n, seed, device: (batches.append((n, seed, device)),
                                                                    real_batch(task, n, seed, device))[1])
    train(TASK, CONFIG, steps=2, device=CPU, **{**KW, "seed": 3})
    s = 3 * 10**7
    assert made == [CPU] and batches == [(2, s, CPU), (2, s, CPU), (2, s + 1, CPU), (4, 10**12 + 3, CPU),
                                         (4, 2 * 10**12 + 3, CPU)]


def test_batches_are_the_tasks_samples_on_the_device():
    x, y = _batch(TASK, 3, 5, "cpu")
    want = TASK.sample(3, 5)
    assert np.array_equal(x.numpy(), want[0]) and np.array_equal(y.numpy(), want[1])
    x, y = _batch(TASK, 3, 5, "meta")
    assert x.device.type == y.device.type == "meta" and x.shape == y.shape == want[0].shape


class _Echo(torch.nn.Module):
    """Predicts every input token as its own target (the argmax of its one-hot); records its mode at each call."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.modes, self.sizes = vocab, [], []

    def forward(self, x):
        self.modes.append(self.training)
        self.sizes.append(len(x))
        return torch.nn.functional.one_hot(x, self.vocab).float()


def _echo_accuracy(task, n: int, seed: int) -> float:
    x, y = task.sample(n, seed)
    scored = y != IGNORE
    right, total = int(((x == y) & scored).sum()), int(scored.sum())
    assert 0 < right < total                     # otherwise the test could not tell a count from another
    return right / total


def test_accuracy_counts_the_scored_positions_of_the_held_out_sets(monkeypatch):
    """The echo model's accuracy on 7 sequences in batches of 3, counted with numpy on the task's own samples of
    seeds 10^12 + 3 (validation, the default) and 2 x 10^12 + 3 (test); evaluated in eval mode, left in training
    mode; the held-out batch drawn on the device given."""
    task = make_task("copy", L=3, length=8, vocab=3)
    devices = []
    real = T._batch
    monkeypatch.setattr(T, "_batch", lambda task, n, seed, device: (devices.append(device),
                                                                    real(task, n, seed, device))[1])
    model = _Echo(task.vocab_size)
    model.train()
    assert accuracy(model, task, 7, 3, CPU, batch=3) == _echo_accuracy(task, 7, 10**12 + 3)
    assert model.sizes == [3, 3, 1] and model.modes == [False] * 3 and model.training
    assert accuracy(model, task, 7, 3, CPU, "test", batch=3) == _echo_accuracy(task, 7, 2 * 10**12 + 3)
    assert accuracy(model, task, 7, 3, CPU) == _echo_accuracy(task, 7, 10**12 + 3)
    assert devices == [CPU] * 3


def test_read_moves_losses_up_to_the_first_non_finite_one():
    losses = [0.5]
    assert _read([], losses) is True and losses == [0.5]
    pending = [torch.tensor(1.0), torch.tensor(2.5)]
    assert _read(pending, losses) is True and losses == [0.5, 1.0, 2.5] and pending == []
    pending = [torch.tensor(1.0), torch.tensor(math.inf), torch.tensor(3.0)]
    assert _read(pending, losses) is False and pending == []
    assert losses[:4] == [0.5, 1.0, 2.5, 1.0] and len(losses) == 5 and math.isnan(losses[4])


@pytest.mark.parametrize("fails", [None, RuntimeError, AssertionError])
def test_the_capture_is_given_the_model_and_its_batch_and_a_failure_is_told_in_200_characters(monkeypatch, fails):
    """A stand-in capture (no CUDA needed) receives the model and the batch, as the one sample, with a positive
    count of warm-up iterations; a failed one is ended on the batch's device and told as 'capture failed: <type>:
    ' and the message's first 200 characters."""
    seen, ended = [], []
    message = "".join(chr(ord("a") + i % 26) for i in range(300))

    def capture(model, args, num_warmup_iters, allow_unused_input):
        seen.append((model, args, num_warmup_iters, allow_unused_input))
        if fails:
            raise fails(message)
        return "captured"
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", capture)
    monkeypatch.setattr(T, "_end_failed_capture", ended.append)
    x = types.SimpleNamespace(device=torch.device("cuda", 0))
    forward, why = graphed("model", x)
    (model, args, warmup, unused), = seen
    assert model == "model" and args == (x,) and isinstance(warmup, int) and warmup >= 1 and unused is True
    if fails:
        assert forward == "model" and ended == [torch.device("cuda", 0)]
        assert why == f"capture failed: {fails.__name__}: " + message[:200]
        assert len(why) == len(f"capture failed: {fails.__name__}: ") + 200
    else:
        assert (forward, why, ended) == ("captured", None, [])


def test_the_progress_bar_counts_a_resumed_runs_steps_and_is_cleared(capsys, tmp_path):
    """With progress, tqdm's bar names the pattern, the task and the rate, starts a run resumed at step 2 of 5 at
    2/5 and is cleared at the end (tqdm's ``leave=False`` ends with a carriage return, not a newline); progress is
    the default; without it, nothing is written."""
    ckpt = tmp_path / "c.pt"
    assert train(TASK, CONFIG, steps=5, checkpoint=ckpt, stop_at=2, **KW) is None
    assert capsys.readouterr() == ("", "")
    train(TASK, CONFIG, steps=5, checkpoint=ckpt, **{**KW, "progress": True})
    err = capsys.readouterr().err
    assert err.startswith("\rwindow:2 copy lr=0.001:  40%|") and "| 2/5 [" in err
    assert err.endswith("\r") and "\n" not in err
    assert train(TASK, CONFIG, steps=1, **{k: v for k, v in KW.items() if k != "progress"})["steps"] == 1
    assert "| 0/1 [" in capsys.readouterr().err


# --- runner.py -------------------------------------------------------------------------------------------------


def test_machine_records_where_the_run_happens(monkeypatch):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    m = machine(CPU)
    after = datetime.datetime.now(datetime.timezone.utc)
    assert set(m) == {"device", "name", "cpus", "torch", "platform", "date", "load_average"}
    assert (m["device"], m["name"], m["cpus"], m["torch"], m["platform"]) == (
        "cpu", platform.machine(), os.cpu_count(), torch.__version__, platform.platform())
    date = datetime.datetime.fromisoformat(m["date"])
    assert m["date"].endswith("+00:00") and len(m["date"]) == 25 and before <= date <= after
    assert isinstance(m["load_average"], tuple) and len(m["load_average"]) == 3
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: (asked.append(device), "Stand-in H100")[1])
    m = machine(torch.device("cuda", 1))
    assert (m["device"], m["name"], asked) == ("cuda:1", "Stand-in H100", [torch.device("cuda", 1)])


def test_finished_reads_every_cells_file_and_skips_bad_lines(tmp_path):
    """Rows of ``cells*.jsonl`` only, files in name order (``cells-1of2.jsonl`` before ``cells.jsonl``, whose row
    of a key read twice wins), a line that is not JSON skipped (the rows after it still read), a truncated last
    line ignored; JSON that is no cell's row (not an object, a key that is no string, any one of ``ROW_KEYS``
    missing, non-UTF-8 bytes) skipped too, where ``glr lab report`` raised on it."""
    def row(key, v, drop=None):
        return json.dumps({k: (key if k == "key" else v) for k in ROW_KEYS if k != drop}) + "\n"
    odd = ['{"a": 1}\n', "[1, 2]\n", "5\n", "null\n", row(7, 9)] + [row("x", 9, drop=k) for k in ROW_KEYS]
    (tmp_path / "cells.jsonl").write_text(row("a", 1) + "{not json\n" + "".join(odd) + row("b", 2) + '{"key": "c", "v')
    (tmp_path / "cells-1of2.jsonl").write_bytes((row("a", 0) + row("d", 3)).encode() + b"\xff\xfe{\n")
    (tmp_path / "errors.jsonl").write_text('{"key": "e", "error": "x"}\n')
    assert finished(tmp_path) == {k: json.loads(row(k, v)) for k, v in (("a", 1), ("b", 2), ("d", 3))}
    assert finished(tmp_path / "none") == {}


def test_failures_are_the_error_rows_oldest_first(tmp_path):
    assert failures(tmp_path) == []
    (tmp_path / "errors.jsonl").write_text('{"key": "b"}\n\n  \n{"key": "a"}\n')
    assert failures(tmp_path) == [{"key": "b"}, {"key": "a"}]


@pytest.mark.parametrize("value, kept", [(3, 3), ("x", "x"), (0.25, 0.25), (True, True), (math.nan, None),
                                         (math.inf, None), (-math.inf, None), (None, None), ([1.0], None)])
def test_finite_keeps_what_json_writes_as_a_number_or_text(value, kept):
    assert _finite(value) is kept or _finite(value) == kept and type(_finite(value)) is type(kept)


SWEEP = {"run": {"steps": 7, "batch": 3, "eval_size": 5, "warmup": 0.25, "weight_decay": 0.5, "checkpoint_every": 4,
                 "cuda_graphs": False, "lrs": [1e-3, 3e-3], "seeds": [0, 1], "device": "cpu", "threads": 1},
         "model": {"d_model": 8, "n_layers": 1, "n_heads": 2, "conv": 0},
         "mixers": ["ssm"], "tasks": {"copy": {"L": [2, 3, 4], "length": 8, "vocab": 6}}}


def _stand_in(monkeypatch, fail=None):
    """A stand-in ``train`` for the runner: records its arguments, raises ``fail[level]`` where given, else returns
    hand values (validation accuracy 0.5 at both rates: the first rate listed is kept)."""
    calls = []

    def fake(task, config, **kw):
        calls.append({"level": task.level, "pattern": config.pattern, **kw})
        if fail and task.level in fail:
            raise fail[task.level]
        fast = kw["lr"] == 1e-3
        return {"val_accuracy": 0.5, "test_accuracy": 0.75 if fast else 0.25, "loss_first": 2.0,
                "loss_last": 1.0 if fast else math.nan, "steps": 7, "wall_s": 1.5 if fast else 2.25,
                "parameters": 11 if fast else 12, "graphed": "stand-in", "capture_s": 0.0}
    monkeypatch.setattr(R, "train", fake)
    return calls


def test_run_cell_trains_every_rate_with_the_sweeps_settings_and_keeps_the_first_best(monkeypatch, tmp_path):
    calls = _stand_in(monkeypatch)
    sweep = sweep_from_dict(SWEEP)
    cell = sweep.cells()[1]
    out = tmp_path / "a" / "b"
    row = run_cell(cell, sweep, CPU, out, progress=False)
    assert (out / "checkpoints").is_dir()
    for call, lr in zip(calls, (1e-3, 3e-3)):
        assert call == {"level": 2, "pattern": "ssm", "lr": lr, "seed": 1, "steps": 7, "batch": 3, "eval_size": 5,
                        "warmup": 0.25, "weight_decay": 0.5, "device": CPU, "checkpoint_every": 4,
                        "checkpoint": out / "checkpoints" / f"{cell.key}-lr{'0.001' if lr == 1e-3 else '0.003'}.pt",
                        "progress": False, "cuda_graphs": False}
        assert call["progress"] is False and call["cuda_graphs"] is False
    common = {"val_accuracy": 0.5, "loss_first": 2.0, "steps": 7, "graphed": "stand-in", "capture_s": 0.0}
    model = row.pop("model")
    assert (model["pattern"], model["d_model"], model["vocab_size"], model["conv"]) == ("ssm", 8, 6, 0)
    assert row == {"key": cell.key, "task": "copy", "params": {"L": 2, "length": 8, "vocab": 6}, "level": 2,
                   "difficulty": "L", "seq_len": 8, "mixer": "ssm", "options": {"pattern": "ssm"}, "seed": 1,
                   "accuracy": 0.75, "val_accuracy": 0.5, "best_lr": 1e-3, "steps": 7, "parameters": 11,
                   "wall_s": 3.75, "device": "cpu",
                   "lr_sweep": [{"lr": 1e-3, **common, "test_accuracy": 0.75, "loss_last": 1.0, "wall_s": 1.5,
                                 "parameters": 11},
                                {"lr": 3e-3, **common, "test_accuracy": 0.25, "loss_last": None, "wall_s": 2.25,
                                 "parameters": 12}]}
    calls.clear()
    run_cell(cell, sweep, CPU, out)
    assert [c["progress"] for c in calls] == [True, True]


def test_run_sweep_writes_rows_sets_threads_and_shards(monkeypatch, tmp_path):
    """Six cells (L = 2, 3, 4 x seeds 0, 1): into ``cells.jsonl`` of a new nested folder, on the sweep's threads;
    shard (1, 4) trains cells 1 and 5 only, into ``cells-1of4.jsonl``; max_cells=1 one cell."""
    calls = _stand_in(monkeypatch)
    sweep = sweep_from_dict({**SWEEP, "run": {**SWEEP["run"], "threads": 3, "lrs": [1e-3]}})
    keys = [c.key for c in sweep.cells()]
    out = tmp_path / "a" / "b"
    rows = run_sweep(sweep, out, progress=False, shard=(1, 4))
    assert torch.get_num_threads() == 3
    assert [(c["level"], c["seed"]) for c in calls] == [(2, 1), (4, 1)] and [r["key"] for r in rows] == [keys[1],
                                                                                                          keys[5]]
    assert sorted(p.name for p in out.iterdir()) == ["cells-1of4.jsonl", "checkpoints"]
    assert all(c["device"] == CPU and c["progress"] is False for c in calls) and rows[0]["device"] == "cpu"
    calls.clear()
    rows = run_sweep(sweep, out, progress=False, max_cells=1)
    assert [(c["level"], c["seed"]) for c in calls] == [(2, 0)] and [r["key"] for r in rows] == [keys[0], keys[1],
                                                                                                  keys[5]]
    assert json.loads((out / "cells.jsonl").read_text())["key"] == keys[0]


def test_run_sweep_starts_no_cell_past_its_time_limit(monkeypatch, tmp_path, capsys):
    """A stand-in clock ticking 10 s a reading: limit 10 s, the first cell starts (10 s is not past it), the second
    does not (20 s); the closing line says 30.0 s and 1/6 cells; the bar says 'lab cells'."""
    calls = _stand_in(monkeypatch)
    ticks = iter(range(100, 200, 10))
    monkeypatch.setattr(R, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    sweep = sweep_from_dict({**SWEEP, "run": {**SWEEP["run"], "lrs": [1e-3]}})
    rows = run_sweep(sweep, tmp_path, progress=True, time_limit=10)
    assert len(calls) == len(rows) == 1 and calls[0]["progress"] is True
    out, err = capsys.readouterr()
    assert out == "30.0 s; 1/6 cells done\n" and err.startswith("\rlab cells:   0%|")


def test_run_sweep_is_quiet_without_progress_and_says_its_time_by_default(monkeypatch, tmp_path, capsys):
    _stand_in(monkeypatch)
    sweep = sweep_from_dict({**SWEEP, "run": {**SWEEP["run"], "lrs": [1e-3]}})
    run_sweep(sweep, tmp_path / "quiet", progress=False, max_cells=1)
    assert capsys.readouterr() == ("", "")
    run_sweep(sweep, tmp_path / "default", max_cells=1)
    out, err = capsys.readouterr()
    assert out.endswith(" s; 1/6 cells done\n") and "lab cells" in err


def test_a_cell_that_raises_is_recorded_and_the_rest_go_on(monkeypatch, tmp_path, capsys):
    """Levels 2 and 3 fail (a RuntimeError of two lines, a GLRError of 600 characters, an empty RuntimeError): each
    failure is a JSON line of errors.jsonl (its error cut at 500 characters) and a line on stdout (the message's first
    line, whole); level 4 still trains."""
    long = "y" * 600
    errors = {2: RuntimeError("boom\nsecond line"), 3: GLRError(long)}
    calls = _stand_in(monkeypatch, errors)
    sweep = sweep_from_dict({**SWEEP, "run": {**SWEEP["run"], "lrs": [1e-3], "seeds": [0]}})
    rows = run_sweep(sweep, tmp_path, progress=False)
    assert [c["level"] for c in calls] == [2, 3, 4] and [r["level"] for r in rows] == [4]
    cells = sweep.cells()

    def line(i, error):
        return {"key": cells[i].key, "task": "copy", "params": {"L": i + 2, "length": 8, "vocab": 6}, "mixer": "ssm",
                "error": error}
    assert failures(tmp_path) == [line(0, "RuntimeError: boom\nsecond line"), line(1, "GLRError: " + "y" * 490)]
    params = "{'L': %d, 'length': 8, 'vocab': 6}"
    assert capsys.readouterr().out == (f"cell copy {params % 2} ssm failed: RuntimeError: boom\n"
                                       f"cell copy {params % 3} ssm failed: GLRError: {long}\n")
    errors[4] = RuntimeError("")
    errors[2] = RuntimeError(" \n first line after a blank one\n")
    (tmp_path / "cells.jsonl").unlink()
    assert run_sweep(sweep, tmp_path, progress=False) == []
    assert capsys.readouterr().out == (f"cell copy {params % 2} ssm failed: RuntimeError: first line after a blank "
                                       f"one\ncell copy {params % 3} ssm failed: GLRError: {long}\n"
                                       f"cell copy {params % 4} ssm failed: RuntimeError: \n")
    assert [f["error"] for f in failures(tmp_path)[2:]] == ["RuntimeError:  \n first line after a blank one\n",
                                                           "GLRError: " + "y" * 490, "RuntimeError: "]


@pytest.mark.parametrize("kw, message", [
    ({"shard": (2, 2)}, "shard must be (i, N) with integers 0 <= i < N, got (2, 2)"),
    ({"shard": (0, 0)}, "shard must be (i, N) with integers 0 <= i < N, got (0, 0)"),
    ({"shard": (-1, 2)}, "shard must be (i, N) with integers 0 <= i < N, got (-1, 2)"),
    ({"shard": (True, 2)}, "shard must be (i, N) with integers 0 <= i < N, got (True, 2)"),
    ({"shard": (0.0, 2)}, "shard must be (i, N) with integers 0 <= i < N, got (0.0, 2)"),
    ({"shard": (0, 1, 2)}, "shard must be (i, N) with integers 0 <= i < N, got (0, 1, 2)"),
    ({"shard": "0/2"}, "shard must be (i, N) with integers 0 <= i < N, got '0/2'"),
    ({"max_cells": 0}, "max_cells must be >= 1, got 0"), ({"max_cells": -1}, "max_cells must be >= 1, got -1"),
    ({"max_cells": 1.5}, "max_cells must be an integer, got 1.5")])
def test_run_sweep_refuses_a_bad_shard_or_cell_count(monkeypatch, tmp_path, kw, message):
    """Before: shard (2, 2) trained nothing and said so nowhere, (0, 0) divided by zero, max_cells=-1 left out the
    last cell and 0 every cell."""
    calls = _stand_in(monkeypatch)
    with pytest.raises(GLRError) as e:
        run_sweep(sweep_from_dict(SWEEP), tmp_path / "out", progress=False, **kw)
    assert str(e.value) == message and calls == [] and not (tmp_path / "out").exists()
    assert run_sweep(sweep_from_dict(SWEEP), tmp_path / "out", progress=False, shard=[1, 2], max_cells=1)


def test_accuracy_refuses_an_unknown_split():
    with pytest.raises(GLRError, match=r"^split must be one of \['test', 'validation'\], got 'train'$"):
        accuracy(None, None, 4, 0, CPU, split="train")
