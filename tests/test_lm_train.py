"""glrtheory.lm training on the CPU with configs/lm/tiny.toml: the loss falls, stop + resume is exact,
torchrun (gloo, 2 processes) matches one process with the same global batch, and cached generation
equals greedy decoding with the full forward."""
import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glrtheory.errors import GLRError
from glrtheory.lm.__main__ import main as lm_main
from glrtheory.lm.build import build_model, forward_flops_per_token
from glrtheory.lm.commands import trained
from glrtheory.lm.config import TrainConfig, load_config, select
from glrtheory.lm.data import eval_offsets, in_training, load_corpus
from glrtheory.lm.distributed import Dist
from glrtheory.lm.evaluate import evaluate
from glrtheory.lm.generate import cache_contents, decode_profile, generate
from glrtheory.lm.train import make_optimizer, train

ROOT = Path(__file__).resolve().parents[1]
CPU = Dist(0, 1, torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


def tiny(tmp_path, cache_dir, steps=6, pattern="ssm", **train_keys):
    """The ``pattern`` run of configs/lm/tiny.toml, output in tmp_path, corpus cache shared in this module."""
    (run,) = select(load_config(ROOT / "configs/lm/tiny.toml"), pattern)
    run.data.cache_dir, run.log.out_dir, run.log.progress = str(cache_dir), str(tmp_path), False
    run.train.steps = steps
    run.eval.every = run.log.checkpoint_every = steps
    for k, v in train_keys.items():
        setattr(run.train, k, v)
    return run


def test_tiny_trains_and_the_loss_falls(tmp_path, cache_dir):
    run = tiny(tmp_path, cache_dir, steps=12)
    torch.manual_seed(run.train.seed)
    corpus = load_corpus(None, cache_dir)
    before = evaluate(build_model(run.model), corpus.val, run.train.seq_len, 8, 8, CPU)["bpb"]
    out = train(run, CPU)
    losses, final = out["losses"], out["result"]["final"]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    assert final["val_bpb"] < before - 0.3 and before > 7.5      # 8 bits/byte is the uniform guess
    log = [json.loads(ln) for ln in (run.run_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 12 and log[-1]["corpus"]["files"] > 100 and log[-1]["forward_flops_per_token"] > 0
    assert set(log[-1]["val_bpb_by_position"]) == {"0-63"}
    seen = in_training(corpus.train, corpus.val, eval_offsets(len(corpus.val), run.train.seq_len, run.eval.windows),
                       run.train.seq_len)
    assert log[-1]["val_windows_unseen"] == int((~seen).sum())
    again = evaluate(trained(run, CPU)[0], corpus.val, run.train.seq_len, run.eval.windows, run.eval.batch, CPU,
                     seen=seen)
    assert log[-1]["val_bpb_unseen"] == pytest.approx(again["bpb_unseen"])


def test_stop_and_resume_reproduces_the_uninterrupted_run(tmp_path, cache_dir):
    whole = train(tiny(tmp_path / "a", cache_dir, pattern="power2"), CPU)
    run = tiny(tmp_path / "b", cache_dir, pattern="power2")
    first = train(run, CPU, stop_at=3)
    assert first["result"] is None and (run.run_dir / "checkpoint.pt").exists()
    torch.manual_seed(1234)  # the resumed run must not depend on the state it starts in
    second = train(run, CPU)
    assert first["losses"] + second["losses"] == whole["losses"]
    a = torch.load(tmp_path / "a" / run.name / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_from_another_config_is_refused_and_kept(tmp_path, cache_dir):
    run = tiny(tmp_path, cache_dir)
    train(run, CPU, stop_at=1)
    ckpt = run.run_dir / "checkpoint.pt"
    saved = ckpt.read_bytes()
    other = copy.deepcopy(run)
    other.model["d_model"] = 16
    with pytest.raises(GLRError, match="another config"):
        train(other, CPU)
    assert ckpt.read_bytes() == saved


def _config(path: Path, out: Path, cache_dir) -> Path:
    """tiny.toml for ssm, 4 steps of a global batch of 8 in micro-batches of 4, a log line per step."""
    text = (ROOT / "configs/lm/tiny.toml").read_text()
    text = text.replace('patterns = ["ssm", "power2"]', 'patterns = ["ssm"]').replace("steps = 20", "steps = 4")
    text = text.replace("micro_batch = 8", "micro_batch = 4").replace("every = 10", "every = 1")
    text = text.replace('out_dir = "runs/lm/tiny"', f'out_dir = "{out}"\nprogress = false')
    path.write_text(text.replace("val_percent = 2.0", f'val_percent = 2.0\ncache_dir = "{cache_dir}"'))
    return path


def _torchrun(config: Path, log_dir: Path) -> subprocess.CompletedProcess:
    """``glrtheory.lm train --config config`` under torchrun, 2 processes whose stderr go to files in log_dir."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--log-dir", str(log_dir), "--redirects", "2", "-m", "glrtheory.lm", "train", "--config", str(config)]
    return subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          cwd=ROOT, timeout=180)


def _ranks_stderr(log_dir: Path) -> str:
    """The end of each torchrun process' own stderr (torchrun's --redirects files), for a failure message."""
    return "".join(f"--- {f.relative_to(log_dir)}\n{f.read_text()[-3000:]}\n"
                   for f in sorted(log_dir.rglob("stderr.log")))


def _one_and_two_processes(tmp_path, cache_dir, model: str = "") -> list:
    """The logs of ``_config`` (plus ``model``, lines for its [model] table) trained in one process and under
    torchrun in 2 gloo processes x 1 micro-batch of 4 = 1 process x 2 micro-batches of 4 (the same global batch),
    after checking that they agree."""
    configs = [_config(tmp_path / f"{d}.toml", tmp_path / d, cache_dir) for d in ("one", "two")]
    for path in configs:
        path.write_text(path.read_text().replace("[model]\n", "[model]\n" + model))
    assert lm_main(["train", "--config", str(configs[0])]) == 0
    proc = _torchrun(configs[1], tmp_path / "ranks")
    assert proc.returncode == 0, _ranks_stderr(tmp_path / "ranks") + proc.stderr[-1500:]
    logs = [[json.loads(ln) for ln in (tmp_path / d / "ssm" / "log.jsonl").read_text().splitlines()]
            for d in ("one", "two")]
    assert [ln["world"] for ln in logs[0] + logs[1]] == [1] * 4 + [2] * 4
    for key in ("train_loss", "val_bpb"):
        assert [ln[key] for ln in logs[1]] == pytest.approx([ln[key] for ln in logs[0]], rel=1e-5)
    return logs


@pytest.mark.parametrize("pattern, lag_bias, unused", [("ssm", True, True), ("ssm", False, False),
                                                       ("power2", True, False), ("fenwick", True, False)])
def test_ddp_expects_unused_parameters_only_where_there_are(pattern, lag_bias, unused):
    """``unused_parameters``: ssm's lag bias (one-slot tables, never read) and nothing else, even where the model's
    own gradients are set; every other parameter gets one."""
    from glrtheory.lm.build import unused_parameters
    from glrtheory.models import ModelConfig, SequenceModel

    model = SequenceModel(ModelConfig(vocab_size=256, d_model=16, n_layers=2, n_heads=2, pattern=pattern,
                                      lag_bias=lag_bias))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    expected = ["blocks.0.mixer.lag_bias", "blocks.1.mixer.lag_bias"] if unused else []
    assert unused_parameters(model, 40) == expected


def test_torchrun_with_a_lag_bias_no_table_reads(tmp_path, cache_dir):
    """ssm's one-slot tables never read the lag bias, so it takes no part in the loss; DDP trains on regardless."""
    from glrtheory.kernels.layers import LAG_BUCKETS
    from glrtheory.models import ModelConfig, SequenceModel

    logs = _one_and_two_processes(tmp_path, cache_dir, "lag_bias = true\n")
    plain = SequenceModel(ModelConfig(vocab_size=256, d_model=32, n_layers=2, n_heads=2, pattern="ssm"))
    assert logs[0][0]["params"] == sum(p.numel() for p in plain.parameters()) + 2 * 2 * 2 * LAG_BUCKETS


def test_torchrun_two_processes_match_one_process(tmp_path, cache_dir):
    """2 gloo processes x 1 micro-batch of 4 = 1 process x 2 micro-batches of 4: the same global batch."""
    logs = _one_and_two_processes(tmp_path, cache_dir)
    # eval from the checkpoint scores the same windows as the last evaluation in training
    assert lm_main(["eval", "--config", str(tmp_path / "one.toml")]) == 0
    scored = json.loads((tmp_path / "one" / "ssm" / "eval.json").read_text())
    assert scored["bpb"] == pytest.approx(logs[0][-1]["val_bpb"], rel=1e-6) and scored["step"] == 4
    assert lm_main(["eval", "--config", str(tmp_path / "one.toml"), "--split", "test"]) == 0
    test = json.loads((tmp_path / "one" / "ssm" / "eval_test.json").read_text())
    assert (test["split"], test["windows"]) == ("test", scored["windows"] - 1) and test["bpb"] != scored["bpb"]
    # the checkpoint decodes (CLI), and the runs gather into a bundle with the scaling rows and a report
    assert lm_main(["generate", "--config", str(tmp_path / "one.toml"), "--contexts", "40", "--tokens", "3"]) == 0
    row = json.loads((tmp_path / "one" / "ssm" / "generate.json").read_text())["decode"][0]
    assert row["context"] == 40 and row["held_peak"] == row["cache_peak"] == 1
    bundle = tmp_path / "bundle.json"
    assert lm_main(["collect", "--runs", str(tmp_path / "one"), "--scaling", str(tmp_path / "one"),
                    str(tmp_path / "two"), "--out", str(bundle)]) == 0
    assert [s["world"] for s in json.loads(bundle.read_text())["scaling"]] == [1, 2]
    assert lm_main(["report", "--bundle", str(bundle), "--dest", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "val_bpb.png").stat().st_size > 0


@pytest.mark.parametrize("world, teardown", [("1", True), ("2", False)])
def test_a_torchrun_process_exits_without_teardown(world, teardown):
    """Under torchrun (WORLD_SIZE > 1) ``exit_now`` leaves with the code after flushing its output, skipping the
    teardown (here an atexit handler) where a C++ thread once aborted finished processes; alone, it exits normally."""
    code = ("import atexit; from glrtheory.lm.__main__ import exit_now; atexit.register(print, 'teardown'); "
            "print('done', end=''); exit_now(3)")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "WORLD_SIZE": world}, capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (3, "done" + ("teardown\n" if teardown else ""))


def test_forward_flops_count_the_scan():
    """Two models that differ only in the pattern differ in FLOPs/token by the scan's
    2 * d_model * (nnz_a + nnz_b) / T per layer (docs/quantities.md), read off the pattern's tables."""
    from glrtheory import Pattern

    table = {"d_model": 16, "n_layers": 2, "n_heads": 2}
    T, flops, nnz = 40, {}, {}
    for spec in ("ssm", "power2"):
        torch.manual_seed(0)
        flops[spec] = forward_flops_per_token(build_model({**table, "pattern": spec}), T)
        nnz[spec] = sum(int((idx >= 0).sum()) for idx in Pattern.from_spec(spec).tables(T))
    assert flops["power2"] - flops["ssm"] == pytest.approx(2 * 16 * 2 * (nnz["power2"] - nnz["ssm"]) / T)


@pytest.mark.parametrize("pattern", ["power2", "fenwick"])
def test_generation_with_the_cache_equals_greedy_full_forward(pattern, rng):
    torch.manual_seed(int(rng.integers(1 << 31)))
    model = build_model({"pattern": pattern, "d_model": 16, "n_layers": 2, "n_heads": 2}).double().eval()
    prompt = torch.as_tensor(rng.integers(0, 256, size=(2, 5)))
    tokens = prompt
    with torch.no_grad():
        for _ in range(19):  # reference: argmax of the full forward over everything so far
            tokens = torch.cat([tokens, model(tokens)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(generate(model, prompt, 19, temperature=0.0), tokens)
    row = decode_profile(model, pattern, 40, torch.device("cpu"), last=8)
    assert row["held_peak"] == row["cache_peak"] > 0
    cache, x, most = model.init_cache(1, 40), torch.zeros(1, dtype=torch.long), 0
    with torch.no_grad():
        for _ in range(40):  # the reference: every tensor of the cache, walked after every step
            x = model.step(x, cache).argmax(-1)
            most = max(most, cache_contents(cache)[0])
    assert row["cache_bytes_peak"] == most


@pytest.mark.parametrize("args, kw, message", [
    ((torch.zeros(2, 3, dtype=torch.long), 4), {"temperature": float("nan")},
     "temperature must be a number >= 0, got nan"),
    ((torch.zeros(2, 3, dtype=torch.long), 4), {"temperature": -0.5}, "temperature must be a number >= 0, got -0.5"),
    ((torch.zeros(2, 3, dtype=torch.long), -1), {}, "n_new must be >= 0, got -1"),
    ((torch.zeros(2, 3, dtype=torch.long), 2.0), {}, "n_new must be an integer, got 2.0"),
    ((torch.zeros(2, 3), 4), {}, "prompt must be integer tokens of shape [batch, P] with P >= 1, got torch.float32 "
     "of shape (2, 3)"),
    ((torch.zeros(3, dtype=torch.long), 4), {}, "prompt must be integer tokens of shape [batch, P] with P >= 1, got "
     "torch.int64 of shape (3,)"),
    ((torch.zeros(2, 0, dtype=torch.long), 4), {}, "prompt must be integer tokens of shape [batch, P] with P >= 1, "
     "got torch.int64 of shape (2, 0)")])
def test_generate_refuses_bad_input_by_name(args, kw, message):
    """NaN temperature reached torch.multinomial (a RuntimeError), a negative n_new returned the prompt, float
    tokens failed in the embedding."""
    model = build_model({"pattern": "ssm", "d_model": 8, "n_layers": 1, "n_heads": 2})
    with pytest.raises(GLRError) as e:
        generate(model, *args, **kw)
    assert str(e.value) == message


def test_generate_at_temperature_0_with_no_new_tokens_returns_the_prompt():
    """n_new = 0 is the edge the check allows: the prompt back, unchanged."""
    model = build_model({"pattern": "ssm", "d_model": 8, "n_layers": 1, "n_heads": 2})
    prompt = torch.tensor([[3, 1, 4], [1, 5, 9]])
    assert torch.equal(generate(model, prompt, 0), prompt)


@pytest.mark.parametrize("split", ["validation", "test"])
def test_evaluate_is_the_next_byte_cross_entropy_in_bits(rng, split):
    """bpb against a reference written out here: the model reads bytes o..o+T-1 of each window and is scored on
    o+1..o+T, in bits, the mean over the split's windows (4 test windows for 5 validation windows)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model({"pattern": "power2", "d_model": 16, "n_layers": 1, "n_heads": 2})
    data = rng.integers(0, 256, size=500).astype(np.uint8)
    T, n = 20, 5
    out = evaluate(model, data, T, n, 2, CPU, split)
    ref = []
    with torch.no_grad():
        for o in eval_offsets(len(data), T, n, split):
            w = torch.as_tensor(data[o:o + T + 1].astype(np.int64))
            logp = torch.log_softmax(model(w[None, :T])[0], -1)
            ref.append(-logp[torch.arange(T), w[1:]] / math.log(2))
    assert out["bpb"] == pytest.approx(float(torch.stack(ref).mean()), rel=1e-5)
    assert out["windows"] == len(ref) == {"validation": 5, "test": 4}[split]
    seen = np.arange(len(ref)) % 2 == 1                 # the unseen windows' mean alone, and a mask of another size
    part = evaluate(model, data, T, n, 2, CPU, split, seen)
    assert part["bpb"] == out["bpb"] and part["windows_unseen"] == int((~seen).sum())
    assert part["bpb_unseen"] == pytest.approx(float(torch.stack(ref)[torch.from_numpy(~seen)].mean()), rel=1e-5)
    assert evaluate(model, data, T, n, 2, CPU, split, np.ones(len(ref), bool))["bpb_unseen"] is None
    with pytest.raises(GLRError, match=f"seen marks 9 windows, the split's evaluation has {len(ref)}"):
        evaluate(model, data, T, n, 2, CPU, split, np.zeros(9, bool))


def test_in_training_finds_windows_that_occur_verbatim_in_the_training_split(rng):
    """Against a naive search: a window copied into training is found wherever it lies (at the start, the end,
    right after a copy of its first T bytes); one that differs in its last byte, or absent, is not."""
    T = 7
    val = rng.integers(0, 256, size=80).astype(np.uint8)
    offsets = np.array([0, 10, 20, 30, 40, 72])
    train = np.concatenate([val[10:18], rng.integers(0, 256, 50).astype(np.uint8), val[30:37],
                            [(int(val[37]) + 1) % 256], val[40:48][:-1], val[40:48], val[72:80]]).astype(np.uint8)
    hay = train.tobytes()
    naive = [any(hay[i:i + T + 1] == val[o:o + T + 1].tobytes() for i in range(len(hay) - T)) for o in offsets]
    assert in_training(train, val, offsets, T).tolist() == naive == [False, True, False, False, True, True]


@pytest.mark.parametrize("lag_bias", [False, True])
def test_weight_decay_on_matrices_only(lag_bias):
    """Decayed: the weights of two or more dimensions; not: 1-d weights and every bias, the 3-d lag bias included."""
    model = build_model({"pattern": "power2", "d_model": 16, "n_layers": 2, "n_heads": 2, "lag_bias": lag_bias})
    decayed, plain = make_optimizer(model, TrainConfig(weight_decay=0.1)).param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    name = {id(p): n for n, p in model.named_parameters()}
    assert all(name[id(p)].endswith(".weight") and p.ndim >= 2 for p in decayed["params"])
    lag = {f"blocks.{i}.mixer.lag_bias" for i in (0, 1)} if lag_bias else set()
    assert {name[id(p)] for p in plain["params"]} >= lag
    assert all(p.ndim < 2 or not name[id(p)].endswith(".weight") for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_sampling_divides_the_logits_by_the_temperature():
    """At temperature 0.5 the sampled bytes follow softmax(logits / 0.5) (a stand-in model with fixed logits)."""
    class Fixed(torch.nn.Module):
        logits = torch.tensor([0.0, 1.0, 2.0, 3.0])

        def init_cache(self, batch, max_length):
            return None

        def step(self, x, cache):
            return self.logits.expand(x.shape[0], 4)
    out = generate(Fixed(), torch.zeros(4000, 1, dtype=torch.long), 1, temperature=0.5, seed=0)
    freq = torch.bincount(out[:, 1], minlength=4).double() / 4000
    assert torch.allclose(freq, torch.softmax(Fixed.logits.double() / 0.5, -1), atol=0.03)


def test_training_reads_the_train_split_only(tmp_path, cache_dir, monkeypatch):
    """Every training batch is cut from train.bin (the validation split is for evaluate only)."""
    import glrtheory.lm.train as lm_train

    seen = []
    real = lm_train.windows
    monkeypatch.setattr(lm_train, "windows", lambda data, offsets, seq_len: (seen.append(data),
                                                                           real(data, offsets, seq_len))[1])
    torch.set_num_threads(1)
    train(tiny(tmp_path, cache_dir, steps=2), CPU)
    corpus = load_corpus(None, cache_dir)
    assert seen and all(Path(d.filename).name == "train.bin" and len(d) == len(corpus.train) for d in seen)


def test_first_training_loss_is_the_next_byte_cross_entropy_on_the_train_split(tmp_path, cache_dir):
    """The loss of step 0 is the fresh model's mean cross-entropy of byte i+1 given bytes ..i, over the windows of
    the train split at batch_offsets(seed, step 0), recomputed here with one forward over the whole batch."""
    from glrtheory.lm.data import batch_offsets, windows

    torch.set_num_threads(1)
    run = tiny(tmp_path, cache_dir, steps=1)
    t = run.train
    t.micro_batch = t.batch // 2              # two micro-batches: their mean is the batch's mean
    loss = train(run, CPU)["losses"][0]
    corpus = load_corpus(None, cache_dir)
    offsets = batch_offsets(len(corpus.train), t.seq_len, t.seed, 0, t.batch)
    xy = torch.from_numpy(windows(corpus.train, offsets, t.seq_len))
    torch.manual_seed(t.seed)
    model = build_model(run.model)
    with torch.no_grad():
        ref = torch.nn.functional.cross_entropy(model(xy[:, :-1]).flatten(0, 1), xy[:, 1:].flatten())
    assert loss == pytest.approx(float(ref), rel=1e-5)


def test_lag_bias_learned_reads_the_trained_biases(tmp_path, cache_dir):
    """``benchmarks/results/lm/lag_bias_learned.py`` on two tiny runs with the lag bias, power2 and ssm: ssm, whose
    tables never read the bias, is left out; power2's B buckets are the checkpoint's, and its shares lie in (0, 1)."""
    from benchmarks.results.lm import lag_bias_learned

    for pattern in ("power2", "ssm"):
        run = tiny(tmp_path, cache_dir, steps=3, pattern=pattern)
        run.model["lag_bias"] = True
        train(run, CPU)
    lag_bias_learned.main([str(tmp_path), "--out", str(tmp_path / "learned.json")])
    (row,) = json.loads((tmp_path / "learned.json").read_text())["checkpoints"]
    state = torch.load(tmp_path / "power2" / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    assert row["pattern"] == "power2" and len(row["layers"]) == 2
    for layer in row["layers"]:
        bias = state[layer["parameter"]][1, :, 1:7].double()          # T = 64: lags up to 63, buckets 1 .. 6
        assert np.allclose(layer["b_buckets_1_to_top"], bias.numpy(), atol=5e-4)
        assert bias.abs().sum() > 0 and all(0 < s < 1 for s in layer["lag_one_share"])
