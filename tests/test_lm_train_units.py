"""glrtheory.lm's training loop and evaluation (train.py, evaluate.py, build.py) against references written out here
(mutation run 12, docs/mutation.md): a two-matrix bigram model trained for a few steps on a four-file corpus,
checked step by step against the same training done by hand in NumPy float64 (closed-form gradients, clipping,
AdamW, the warmup + cosine schedule), and every field of the log, checkpoint and result against values worked out
from the config and a fake clock."""
import hashlib
import json
import math
import types

import numpy as np
import pytest
import torch
import tqdm.std

import glrtheory.lm.evaluate as lm_evaluate
import glrtheory.lm.train as lm_train
from glrtheory.errors import GLRError
from glrtheory.lm import checkpoint
from glrtheory.lm.build import build_model, forward_flops_per_token, parameter_count, unused_parameters
from glrtheory.lm.config import TrainConfig, parse_config
from glrtheory.lm.data import batch_offsets, is_validation
from glrtheory.lm.distributed import Dist
from glrtheory.lm.evaluate import autocast, bucket_means, evaluate
from glrtheory.lm.train import _check_world, _device_name, _keep_log_until, _micro_batches, learning_rate, train

CPU = Dist(0, 1, torch.device("cpu"))
T, B, MICRO, STEPS, D = 8, 4, 2, 5, 4
LR, MIN_LR, WARMUP, WD, BETAS, SEED = 0.05, 0.005, 2, 0.1, (0.9, 0.99), 3
FILES = {"m0.py": 200, "m1.py": 120, "m4.py": 200, "m6.py": 200}       # m1.py alone is validation at 50%
EVAL_WINDOWS, EVAL_BATCH = 4, 3
PARAMS = 256 * D + 256 * D + 256                                       # embedding, output matrix, output bias
FLOPS_PER_TOKEN = 2 * D * 256                                           # the output matmul; a lookup is no FLOP


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Bigram(torch.nn.Module):
    """logits = E[x] W^T + b: E and W decayed (matrices), b not; ``modes`` records model.training at each forward."""

    def __init__(self, table=None):
        super().__init__()
        self.emb = torch.nn.Embedding(256, D)
        self.out = torch.nn.Linear(D, 256)
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.out(self.emb(x))


def params(model) -> dict:
    return {"E": model.emb.weight.detach().double().numpy().copy(), "W": model.out.weight.detach().double().numpy()
            .copy(), "b": model.out.bias.detach().double().numpy().copy()}


def corpus_bytes():
    """The four files' bytes: m1.py (validation) starts with bytes 50..58 of m4.py, so that its first evaluation
    window (offset 0, T + 1 bytes) occurs verbatim in the training split and the other three do not."""
    gen = np.random.default_rng(7)
    data = {name: gen.integers(0, 256, size=n).astype(np.uint8).tobytes() for name, n in FILES.items()}
    data["m1.py"] = data["m4.py"][50:59] + data["m1.py"][9:]
    return data


@pytest.fixture
def run_of(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    for name, content in corpus_bytes().items():
        (root / name).write_bytes(content)

    def make(out="out", steps=STEPS, every=2, checkpoint_every=2, progress=False, **train):
        raw = {"model": {"pattern": "ssm"},
               "data": {"root": str(root), "cache_dir": str(tmp_path / "cache"), "val_percent": 50},
               "train": {"seq_len": T, "batch": B, "micro_batch": MICRO, "steps": steps, "lr": LR, "min_lr": MIN_LR,
                         "warmup": WARMUP, "weight_decay": WD, "betas": list(BETAS), "clip": 0.42, "seed": SEED,
                         "device": "cpu", **train},
               "eval": {"every": every, "windows": EVAL_WINDOWS, "batch": EVAL_BATCH},
               "log": {"out_dir": str(tmp_path / out), "checkpoint_every": checkpoint_every, "progress": progress}}
        (run,) = parse_config(raw)
        return run
    return make


def splits():
    data = corpus_bytes()
    assert [is_validation(n, 50) for n in sorted(data)] == [False, True, False, False]
    train = np.frombuffer(data["m0.py"] + data["m4.py"] + data["m6.py"], np.uint8)
    return train, np.frombuffer(data["m1.py"], np.uint8)


def nll_bits(p, w):
    """-log2 p(w[:, i+1] | w[:, i]) of the bigram with parameters p, float64: [rows, T]."""
    logits = p["E"][w[:, :-1]] @ p["W"].T + p["b"]
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, w[:, 1:, None], -1)[..., 0] / math.log(2)


def by_hand(steps, clip=0.42):
    """The training of the module docstring done in NumPy float64 on the whole batch at once: per step the loss,
    the gradient norm before clipping, and the parameters after the step."""
    train_split, _ = splits()
    torch.manual_seed(SEED)
    p = params(Bigram())
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    out = []
    for s in range(steps):
        w = np.stack([train_split[o:o + T + 1] for o in batch_offsets(len(train_split), T, SEED, s, B)]).astype(int)
        x, y = w[:, :-1], w[:, 1:]
        h = p["E"][x]
        logits = h @ p["W"].T + p["b"]
        prob = np.exp(logits - logits.max(-1, keepdims=True))
        prob /= prob.sum(-1, keepdims=True)
        loss = -np.log(np.take_along_axis(prob, y[..., None], -1)).mean()
        dlog = prob.copy()
        np.put_along_axis(dlog, y[..., None], np.take_along_axis(dlog, y[..., None], -1) - 1, -1)
        dlog /= B * T
        g = {"W": dlog.reshape(-1, 256).T @ h.reshape(-1, D), "b": dlog.sum((0, 1)), "E": np.zeros_like(p["E"])}
        np.add.at(g["E"], x, dlog @ p["W"])
        norm = math.sqrt(sum((gk ** 2).sum() for gk in g.values()))
        scale = min(1.0, clip / (norm + 1e-6))                    # torch's clip_grad_norm_
        lr = LR * (s + 1) / WARMUP if s < WARMUP else \
            MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * (s - WARMUP) / (STEPS - WARMUP))) / 2
        for k in p:
            gk = g[k] * scale
            if k != "b":
                p[k] *= 1 - lr * WD
            m[k] = BETAS[0] * m[k] + (1 - BETAS[0]) * gk
            v[k] = BETAS[1] * v[k] + (1 - BETAS[1]) * gk ** 2
            p[k] -= lr / (1 - BETAS[0] ** (s + 1)) * m[k] / (np.sqrt(v[k] / (1 - BETAS[1] ** (s + 1))) + 1e-8)
        out.append({"loss": loss, "norm": norm, "lr": lr, "params": {k: x.copy() for k, x in p.items()}})
    return out


def val_bits(p):
    """Bits per byte of each validation window (by hand), and the windows seen in training (the first only)."""
    _, val = splits()
    offsets = np.linspace(0, len(val) - T - 1, EVAL_WINDOWS).astype(int)
    assert offsets.tolist() == [0, 37, 74, 111]
    return nll_bits(p, np.stack([val[o:o + T + 1] for o in offsets]).astype(int)).mean(1), \
        np.array([True, False, False, False])


def clock(monkeypatch, *ticks):
    """train's time.perf_counter returns ``ticks`` in turn."""
    it = iter(ticks)
    monkeypatch.setattr(lm_train, "time", types.SimpleNamespace(perf_counter=lambda: next(it)))


def lines(run):
    return [json.loads(ln) for ln in (run.run_dir / "log.jsonl").read_text().splitlines()]


def test_the_reference_clips_some_steps_and_not_others():
    """The gradient norms straddle clip = 0.42, so the clipping and the gradient's scale both count below."""
    norms = [s["norm"] for s in by_hand(STEPS)]
    assert min(norms) < 0.42 < max(norms), norms


def test_training_matches_the_training_by_hand_and_logs_every_field(run_of, monkeypatch):
    """Losses, the parameters of each checkpoint and every log field against the NumPy training; the clock is fake:
    it reads 100 at the start, then (span end, restart, checkpoint) 103, 104, 104 / 109, 110, 110 / 112, 113, 113 at
    the evaluations and checkpoints after steps 2, 4, 5, so spans are 3, 5, 2 s."""
    run = run_of()
    saved = []
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda path, **kw: (saved.append(
        (kw["step"], params(kw["model"]), dict(kw["extra"]))), real_save(path, **kw))[1])
    clock(monkeypatch, 100.0, 103.0, 104.0, 104.0, 109.0, 110.0, 110.0, 112.0, 113.0, 113.0)
    out = train(run, CPU, model_factory=Bigram)
    ref = by_hand(STEPS)
    assert out["step"] == STEPS and len(out["losses"]) == STEPS
    assert out["losses"] == pytest.approx([s["loss"] for s in ref], rel=1e-5)
    assert [s for s, _, _ in saved] == [2, 4, 5]
    assert [extra for _, _, extra in saved] == [{"elapsed_s": 3.0}, {"elapsed_s": 8.0}, {"elapsed_s": 10.0}]
    for step, p, _ in saved:
        for k in p:
            assert np.allclose(p[k], ref[step - 1]["params"][k], rtol=1e-4, atol=1e-6), (step, k)
    train_split, val = splits()
    info = {"root": run.data.root, "files": 4, "bytes": 720,
            "sha256": hashlib.sha256(b"".join(corpus_bytes()[n] for n in sorted(FILES))).hexdigest(),
            "val_percent": 50.0, "train_files": 3, "train_bytes": 600, "val_files": 1, "val_bytes": 120}
    header = {"run": "ssm", "pattern": "ssm", "params": PARAMS, "forward_flops_per_token": FLOPS_PER_TOKEN,
              "world": 1, "device": "1 x cpu", "corpus": info, "fingerprint": run.fingerprint()}
    log = lines(run)
    assert [ln["step"] for ln in log] == [2, 4, 5]
    for ln, span, elapsed, steps_in_span in zip(log, (3, 5, 2), (3, 8, 10), (2, 2, 1)):
        done = ln["step"]
        bits, seen = val_bits(ref[done - 1]["params"])
        tokens = done * B * T
        assert set(ln) == set(header) | {"step", "tokens", "lr", "train_loss", "train_bpb", "val_bpb",
                                         "val_bpb_by_position", "val_bytes", "val_bpb_unseen", "val_windows_unseen",
                                         "train_flops", "tokens_per_s", "train_time_s"}
        assert {k: ln[k] for k in header} == header
        assert ln["tokens"] == tokens and ln["train_flops"] == 3 * FLOPS_PER_TOKEN * tokens
        assert ln["lr"] == pytest.approx(ref[done - 1]["lr"], rel=1e-12)
        assert ln["train_loss"] == out["losses"][done - 1]
        assert ln["train_bpb"] == pytest.approx(ref[done - 1]["loss"] / math.log(2), rel=1e-5)
        assert ln["val_bpb"] == pytest.approx(bits.mean(), rel=1e-5)
        assert ln["val_bpb_by_position"] == {"0-7": pytest.approx(bits.mean(), rel=1e-5)}
        assert ln["val_bytes"] == EVAL_WINDOWS * T and ln["val_windows_unseen"] == 3
        assert ln["val_bpb_unseen"] == pytest.approx(bits[~seen].mean(), rel=1e-5)
        assert ln["tokens_per_s"] == steps_in_span * B * T / span and ln["train_time_s"] == elapsed
    result = json.loads((run.run_dir / "result.json").read_text())
    assert result == out["result"] and result["final"] == log[-1] and result["log"] == log
    assert result == {**header, "config": run.to_dict(), "final": log[-1], "log": log}
    ckpt = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    assert (ckpt["step"], ckpt["fingerprint"], ckpt["config"], ckpt["extra"]) == \
        (5, run.fingerprint(), run.to_dict(), {"elapsed_s": 10.0})


def test_the_gradient_is_the_whole_batch_mean_and_the_clip_is_the_config_s(run_of, monkeypatch):
    """What reaches clip_grad_norm_ after the two micro-batches: the gradient of the whole batch's mean cross-entropy
    (its norm, by hand), with max_norm = train.clip."""
    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def record(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        seen.append((math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in parameters)), max_norm))
        return real(parameters, max_norm, *args, **kwargs)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", record)
    train(run_of(), CPU, model_factory=Bigram)
    ref = by_hand(STEPS)
    assert [c for _, c in seen] == [0.42] * STEPS
    assert [n for n, _ in seen] == pytest.approx([s["norm"] for s in ref], rel=1e-4)


def test_stop_resume_and_restart(run_of, monkeypatch):
    """Stopped after 3 steps (checkpoints after 2 and 3, a log line after 2), with a line of step 4 and a cut line
    appended as a crash would leave them; the rerun resumes at 3, drops both lines, carries the elapsed time on
    (3 s to step 2, 2 s more to the checkpoint of step 3, then its own spans of 6 and 2 s) and ends as the whole run
    by hand. ``resume=False`` starts again from step 0."""
    run = run_of()
    saved = []
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda path, **kw: (saved.append(kw["step"]), real_save(path, **kw))[1])
    clock(monkeypatch, 100.0, 103.0, 104.0, 104.0, 106.0)
    first = train(run, CPU, stop_at=3, model_factory=Bigram)
    ref = by_hand(STEPS)
    assert (first["step"], first["result"], saved) == (3, None, [2, 3])
    assert first["losses"] == pytest.approx([s["loss"] for s in ref[:3]], rel=1e-5)
    assert not (run.run_dir / "result.json").exists()
    with open(run.run_dir / "log.jsonl", "a") as f:
        f.write(json.dumps({**lines(run)[0], "step": 4}) + '\n{"step": 5, "val_')
    clock(monkeypatch, 200.0, 206.0, 207.0, 207.0, 209.0, 210.0, 210.0)
    second = train(run, CPU, model_factory=Bigram)
    assert second["step"] == STEPS and saved == [2, 3, 4, 5]
    assert second["losses"] == pytest.approx([s["loss"] for s in ref[3:]], rel=1e-5)
    log = lines(run)
    assert [ln["step"] for ln in log] == [2, 4, 5] and second["result"]["log"] == log
    assert [ln["train_time_s"] for ln in log] == [3.0, 11.0, 13.0]
    assert [ln["tokens_per_s"] for ln in log] == [2 * B * T / 3, B * T / 6, B * T / 2]
    clock(monkeypatch, *range(300, 310))
    again = train(run, CPU, stop_at=1, model_factory=Bigram, resume=False)
    assert again["losses"] == pytest.approx([ref[0]["loss"]], rel=1e-5)
    assert not (run.run_dir / "log.jsonl").exists()                  # the old log is gone; no evaluation yet
    ckpt = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    assert (ckpt["step"], ckpt["extra"]) == (1, {"elapsed_s": 1.0})
    del ckpt["extra"]["elapsed_s"]               # a checkpoint without the time (as written before it was kept)
    torch.save(ckpt, run.run_dir / "checkpoint.pt")
    clock(monkeypatch, 400.0, 404.0, 405.0, 405.0)
    train(run, CPU, stop_at=2, model_factory=Bigram)
    assert [ln["train_time_s"] for ln in lines(run)] == [4.0]             # goes on from 0 s


def test_a_stop_at_before_a_resumed_checkpoint_trains_no_step(run_of):
    """Resumed from the checkpoint of step 3 with stop_at 2, train() trained nothing but answered step 2; it now
    answers the checkpoint's step 3, with no losses, and leaves the checkpoint as it was. A finished run's
    checkpoint (at train.steps) gives its result even with an earlier stop_at."""
    run = run_of()
    train(run, CPU, stop_at=3, model_factory=Bigram)
    written = (run.run_dir / "checkpoint.pt").read_bytes()
    out = train(run, CPU, stop_at=2, model_factory=Bigram)
    assert (out["step"], out["losses"], out["result"]) == (3, [], None)
    assert (run.run_dir / "checkpoint.pt").read_bytes() == written
    whole = train(run, CPU, model_factory=Bigram)["result"]
    again = train(run, CPU, stop_at=1, model_factory=Bigram)
    assert (again["step"], again["losses"], again["result"]["log"]) == (STEPS, [], whole["log"])


def test_the_first_span_does_not_time_the_search_for_windows_seen_in_training(monkeypatch, run_of):
    """The clock ticks 1 s a reading and the search for evaluation windows seen in training takes 1000 s: the first
    evaluation's train_time_s and tokens_per_s counted it; they now span the two steps alone (one tick)."""
    now = [0.0]

    def tick():
        now[0] += 1.0
        return now[0]
    monkeypatch.setattr(lm_train, "time", types.SimpleNamespace(perf_counter=tick))
    real = lm_train.seen_in_training
    monkeypatch.setattr(lm_train, "seen_in_training", lambda *a: (now.__setitem__(0, now[0] + 1000.0), real(*a))[1])
    run = run_of()
    train(run, CPU, stop_at=2, model_factory=Bigram)
    (line,) = lines(run)
    assert (line["step"], line["train_time_s"], line["tokens_per_s"]) == (2, 1.0, 2 * B * T)


def test_stop_at_past_the_end_and_the_last_step(run_of):
    """stop_at beyond train.steps runs to the end (with the result); stop_at = steps is the whole run."""
    out = train(run_of(out="a"), CPU, stop_at=STEPS + 3, model_factory=Bigram)
    assert out["step"] == STEPS and len(out["losses"]) == STEPS and out["result"]["final"]["step"] == STEPS
    out = train(run_of(out="b", steps=3, every=10, checkpoint_every=10), CPU, stop_at=3, model_factory=Bigram)
    assert [ln["step"] for ln in out["result"]["log"]] == [3]


def test_a_finished_run_without_its_log_is_refused_by_name(run_of):
    """Trained again with its checkpoint at the last step but log.jsonl deleted: a GLRError naming both files."""
    run = run_of()
    train(run, CPU, model_factory=Bigram)
    (run.run_dir / "log.jsonl").unlink()
    with pytest.raises(GLRError, match=rf"log.jsonl holds no log line, though the checkpoint is at step {STEPS}: "
                                       r"delete .*checkpoint.pt to train the run again"):
        train(run, CPU, model_factory=Bigram)


@pytest.mark.parametrize("rank, world", [(1, 1), (-1, 2), (2, 2), (0, 0)])
def test_a_rank_outside_the_world_is_refused(rank, world):
    with pytest.raises(GLRError, match=rf"^rank {rank} of {world} processes: a rank must be in 0 .. world - 1"):
        Dist(rank, world, torch.device("cpu"))


class NotMain(Dist):
    """One process that is not the main one (a rank above 0 sees the whole batch only here)."""
    main = False


def test_a_process_other_than_the_first_writes_nothing(run_of):
    """A process other than the main one trains the same steps but writes no log, checkpoint or result (the corpus
    cache is built by the main process first)."""
    train(run_of(out="main"), CPU, stop_at=1, model_factory=Bigram)
    run = run_of(out="other")
    out = train(run, NotMain(0, 1, torch.device("cpu")), model_factory=Bigram)
    assert out["result"] is None and out["step"] == STEPS
    assert out["losses"] == pytest.approx([s["loss"] for s in by_hand(STEPS)], rel=1e-5)
    assert not run.run_dir.exists()


def test_the_progress_bar(run_of, capsys, monkeypatch):
    """With log.progress the bar (on stderr) is named after the run, counts to train.steps from where it starts,
    and shows the last loss to 3 decimals; without it, or on another rank, nothing is written. (No tqdm monitor
    thread: under mutmut a process forked while it ran hung on tqdm's lock.)"""
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    run = run_of(progress=True)
    train(run, CPU, stop_at=2, model_factory=Bigram)
    capsys.readouterr()
    out = train(run, CPU, model_factory=Bigram)
    err = capsys.readouterr().err
    assert err.startswith("\rssm:") and "5/5" in err and f"loss={out['losses'][-1]:.3f}" in err, err
    assert err.startswith("\rssm:  40%|") and "2/5" in err and "0/5" not in err and "/3" not in err
    train(run_of(out="quiet"), CPU, stop_at=1, model_factory=Bigram)
    train(run_of(out="other", progress=True), NotMain(0, 1, torch.device("cpu")), stop_at=1, model_factory=Bigram)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("batch, world, micro, ok", [(8, 1, 4, True), (12, 2, 3, True), (12, 2, 4, False),
                                                      (8, 2, 3, False), (4, 2, 4, False), (6, 1, 4, False)])
def test_the_batch_must_split_over_processes_and_micro_batches(batch, world, micro, ok):
    run = types.SimpleNamespace(train=TrainConfig(batch=batch, micro_batch=micro))
    d = Dist(0, world, torch.device("cpu"))
    if ok:
        _check_world(run, d)
    else:
        with pytest.raises(GLRError) as err:
            _check_world(run, d)
        assert str(err.value) == f"train.batch={batch} is not a multiple of world ({world}) x micro_batch ({micro})"


@pytest.mark.parametrize("rank, world", [(0, 1), (0, 2), (1, 2), (2, 4)])
def test_each_process_takes_its_rows_of_the_global_batch_in_micro_batches(rank, world):
    """Global batch of 8 at step 6: process r of w takes rows r*8/w .. (r+1)*8/w - 1, in micro-batches of 2, each
    the int64 windows data[o .. o + T] cut here by hand."""
    data = np.random.default_rng(1).integers(0, 256, size=300).astype(np.uint8)
    run = types.SimpleNamespace(train=TrainConfig(seq_len=T, batch=8, micro_batch=2, seed=5))
    offsets = batch_offsets(300, T, 5, 6, 8)
    mine = offsets[rank * 8 // world:(rank + 1) * 8 // world]
    got = list(_micro_batches(data, run, 6, Dist(rank, world, torch.device("cpu"))))
    assert len(got) == len(mine) // 2
    for i, xy in enumerate(got):
        assert xy.dtype == torch.int64 and xy.device.type == "cpu"
        assert xy.tolist() == [data[o:o + T + 1].tolist() for o in mine[2 * i:2 * i + 2]]
    meta = list(_micro_batches(data, run, 6, Dist(rank, world, torch.device("meta"))))   # a device other than the
    assert [xy.device.type for xy in meta] == ["meta"] * len(got)                      # CPU: the batches go there


def test_the_model_is_moved_to_the_process_device(run_of):
    moved = []

    class Moved(Bigram):
        def to(self, *args, **kwargs):
            moved.append((args, kwargs))
            return super().to(*args, **kwargs)
    train(run_of(), CPU, stop_at=1, model_factory=Moved)
    assert moved[0] == ((torch.device("cpu"),), {})


def test_the_schedule_at_its_ends():
    """lr(s) = lr (s + 1) / warmup below warmup, then the cosine from lr at warmup to min_lr at steps, held there
    after; with warmup = steps, lr after the last step; with no warmup, lr at step 0."""
    t = TrainConfig(lr=2.0, min_lr=0.5, warmup=4, steps=5)
    assert [learning_rate(s, t) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]
    assert learning_rate(4, t) == 2.0 and learning_rate(5, t) == 0.5 and learning_rate(9, t) == 0.5
    assert learning_rate(4, TrainConfig(lr=2.0, min_lr=0.5, warmup=4, steps=4)) == 2.0
    t = TrainConfig(lr=2.0, min_lr=0.5, warmup=0, steps=4)
    assert [learning_rate(s, t) for s in range(5)] == pytest.approx(
        [2.0, 0.5 + 1.5 * (1 + math.sqrt(0.5)) / 2, 1.25, 0.5 + 1.5 * (1 - math.sqrt(0.5)) / 2, 0.5], rel=1e-15)


def test_log_lines_kept_on_resume(tmp_path):
    """Kept: the lines of steps up to the checkpoint's, in order; dropped: later steps, cut lines, blank lines,
    lines without a step, lines that are not objects and steps that are not numbers. No log: none is made."""
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1}\n[1]\n{"x": 1}\n\n"3"\n{"step": null}\n{"step": 3, "a": [1]}\n{"step": 4}\n'
                   '{"step": 2}\n{"step": 5, "v')
    _keep_log_until(log, 3)
    assert log.read_text() == '{"step": 1}\n{"step": 3, "a": [1]}\n{"step": 2}\n'
    _keep_log_until(tmp_path / "none.jsonl", 3)
    assert not (tmp_path / "none.jsonl").exists()


def test_device_names_and_autocast(monkeypatch):
    """'<world> x <card>' on CUDA (the card of this process' device), '<world> x cpu' on the CPU; bf16 autocast on
    CUDA only."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"card {device.index}")
    assert _device_name(Dist(1, 2, torch.device("cuda", 1))) == "2 x card 1"
    assert _device_name(Dist(0, 3, torch.device("cpu"))) == "3 x cpu"
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else _nothing():
        cast = autocast(torch.device("cuda", 0))
    assert isinstance(cast, torch.autocast) and (cast.device, cast.fast_dtype) == ("cuda", torch.bfloat16)
    assert not isinstance(autocast(torch.device("cpu")), torch.autocast)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def eval_case():
    torch.manual_seed(2)
    model = Bigram()
    data = np.random.default_rng(4).integers(0, 256, size=200).astype(np.uint8)
    offsets = np.linspace(0, 200 - T - 1, 7).astype(int)
    bits = nll_bits(params(model), np.stack([data[o:o + T + 1] for o in offsets]).astype(int))
    return model, data, bits


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_the_mode(eval_case, training):
    model, data, bits = eval_case
    model.train(training)
    out = evaluate(model, data, T, 7, 3, CPU)
    assert set(model.modes) == {False} and len(model.modes) == 3 and model.training is training
    assert out == {"bpb": pytest.approx(bits.mean(), rel=1e-6), "bpb_by_position": {"0-7": pytest.approx(
        bits.mean(), rel=1e-6)}, "windows": 7, "bytes": 7 * T}


def test_evaluate_splits_windows_over_processes(eval_case, monkeypatch):
    """Process r of 3 scores windows r, r + 3, ...; with the sum over processes made the identity here, each process'
    bpb is the sum of its windows' bits over all 7 windows' bytes, and the three add up to the whole."""
    model, data, bits = eval_case
    seen = np.array([False, True, False, False, True, False, True])
    monkeypatch.setattr(lm_evaluate, "all_sum", lambda x, d: x)
    parts = [evaluate(model, data, T, 7, 2, Dist(r, 3, torch.device("cpu")), seen=seen) for r in range(3)]
    for r, part in enumerate(parts):
        rows = np.arange(7)[r::3]
        assert part["bpb"] == pytest.approx(bits[rows].sum() / (7 * T), rel=1e-6)
        assert part["bpb_unseen"] == pytest.approx(bits[rows][~seen[rows]].sum() / (4 * T), rel=1e-6)
        assert (part["windows"], part["windows_unseen"], part["bytes"]) == (7, 4, 7 * T)
    assert sum(p["bpb_unseen"] for p in parts) == pytest.approx(bits[~seen].mean(), rel=1e-6)


def test_evaluate_works_on_the_process_device(eval_case, monkeypatch):
    """On a device other than the CPU (meta here: shapes without values) the windows, the mask and both sums are
    there; the sum over processes (recorded, then zeros on the CPU) is the one place they leave it."""
    model, data, _ = eval_case
    inputs, summed = [], []
    forward = Bigram.forward
    monkeypatch.setattr(Bigram, "forward", lambda self, x: (inputs.append(x.device.type), forward(self, x))[1])
    monkeypatch.setattr(lm_evaluate, "all_sum", lambda x, d: (summed.append(x.device.type),
                                                              torch.zeros_like(x, device="cpu"))[1])
    out = evaluate(model.to("meta"), data, T, 7, 3, Dist(0, 1, torch.device("meta")), seen=np.zeros(7, bool))
    assert inputs == ["meta"] * 3 and summed == ["meta"] * 2 and out["bpb"] == 0.0 and out["bpb_unseen"] == 0.0


def test_evaluate_sums_in_float64():
    """A model that gives the next byte and the one after it equal logits (0) and every other byte -inf, on bytes
    that each step up by 0 or 1: every prediction costs float32's ln 2 nats, so the bits per byte are exactly
    fl32(ln 2) / ln 2 = 1 + 2.7e-9 (a float32 sum would round each term to 1)."""
    class TwoWay(torch.nn.Module):
        def forward(self, x):
            logits = torch.full((*x.shape, 256), -math.inf)
            logits.scatter_(-1, x[..., None], 0.0)
            return logits.scatter(-1, (x[..., None] + 1) % 256, 0.0)
    data = (np.cumsum(np.random.default_rng(3).integers(0, 2, size=300)) % 256).astype(np.uint8)
    out = evaluate(TwoWay(), data, T, 9, 4, CPU, seen=np.zeros(9, bool))
    want = float(np.float32(math.log(2))) / math.log(2)
    assert want != 1.0 and out["bpb"] == pytest.approx(want, rel=1e-13) == out["bpb_unseen"]
    assert out["bpb_by_position"] == {"0-7": pytest.approx(want, rel=1e-13)}


def test_bucket_means_of_windows_at_the_bucket_edges():
    bits = np.arange(257, dtype=float)
    assert bucket_means(bits[:64]) == {"0-63": 31.5}
    assert bucket_means(bits[:65]) == {"0-63": 31.5, "64-64": 64.0}
    assert bucket_means(bits) == {"0-63": 31.5, "64-255": 159.5, "256-256": 256.0}
    assert bucket_means(bits[:1]) == {"0-0": 0.0}
    assert bucket_means(np.arange(2048.0)) == {"0-63": 31.5, "64-255": 159.5, "256-1023": 639.5}   # none past 1023


def test_model_counts_and_refusals():
    """build_model: the 256-byte vocabulary, vocab_size refused; parameter_count against the sizes by hand;
    forward FLOPs per token of a model without a scan: the output matmul, 2 x d x 256."""
    with pytest.raises(GLRError) as err:
        build_model({"pattern": "ssm", "vocab_size": 300})
    assert str(err.value) == "config [model] must not set vocab_size: the corpus is bytes (256)"
    model = build_model({"pattern": "ssm", "d_model": 8, "n_layers": 1, "n_heads": 2})
    assert model.config.vocab_size == 256
    torch.manual_seed(0)
    bigram = Bigram()
    assert parameter_count(bigram) == PARAMS
    assert forward_flops_per_token(bigram, T) == FLOPS_PER_TOKEN
    assert forward_flops_per_token(bigram.double(), 3) == FLOPS_PER_TOKEN
    assert unused_parameters(bigram, T) == []
    assert {p.dtype for p in bigram.parameters()} == {torch.float64}        # both counted on a copy
    bigram.extra = torch.nn.Parameter(torch.zeros(3))
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    bigram.frozen = frozen
    assert unused_parameters(bigram, T) == ["extra"]
