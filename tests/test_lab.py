"""The lab: a cut-down smoke sweep (loss falls; query-key attention solves trivial MQAR), resumable
cells and checkpoints, predictions against independent references, verdicts, CLI errors."""
import importlib
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glrtheory import GLRError, Pattern
from glrtheory.cli import main
from glrtheory.lab import load_sweep, run_sweep, summarize, sweep_from_dict, train, verdict, write_results
from glrtheory.lab.report import held_out, reported
from glrtheory.lab.theory import ALPHA, d_state, feasible, noise, prediction, reach, within_scale
from glrtheory.models import ModelConfig, SequenceModel
from glrtheory.tasks import IGNORE, make_task

SMOKE = {"run": {"steps": 60, "batch": 32, "lrs": [1e-2], "seeds": [0], "eval_size": 128, "device": "cpu"},
         "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "conv": 2},
         "mixers": [{"pattern": "ssm"}, {"pattern": "attention", "scores": "query_key", "name": "attention qk"}],
         "tasks": {"mqar": {"K": [2], "length": 8, "vocab": 16}, "copy": {"L": [2], "length": 8, "vocab": 6}}}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("smoke")
    sweep = sweep_from_dict(SMOKE)
    rows = run_sweep(sweep, out, progress=False)
    return sweep, rows, out


def test_smoke_sweep_learns(smoke):
    sweep, rows, out = smoke
    assert len(rows) == len(sweep.cells()) == 4
    for r in rows:
        assert r["lr_sweep"][0]["loss_last"] < 0.7 * r["lr_sweep"][0]["loss_first"], r
        assert r["steps"] == 60 and r["device"] == "cpu"
    attention = [r for r in rows if r["task"] == "mqar" and r["mixer"] == "attention qk"]
    assert attention[0]["accuracy"] >= 0.9
    lines = (out / "cells.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [r["key"] for r in rows]


def test_results_and_rerun_skips(smoke):
    sweep, rows, out = smoke
    results = write_results(sweep, rows, out, command="test")
    saved = json.loads((out / "results.json").read_text())
    assert saved["cells_done"] == saved["cells_total"] == 4 and len(saved["summary"]) == 4
    assert {s["verdict"] for s in saved["summary"]} <= {"confirmed", "refuted", "inconclusive"}
    assert results["summary"][0]["n"] == 8
    assert (out / "accuracy.png").stat().st_size > 0 and (out / "cost.png").stat().st_size > 0
    assert "| mqar (K) | ssm |" in (out / "table.md").read_text()
    picked = "test-set accuracy at the learning rate picked on the validation set"
    assert saved["accuracies"] == picked and f"Accuracies: {picked}." in (out / "table.md").read_text()
    before = (out / "cells.jsonl").read_text()
    assert run_sweep(sweep, out, progress=False) == rows     # nothing left to train
    assert (out / "cells.jsonl").read_text() == before


def test_checkpoint_resume_is_exact(tmp_path):
    torch.set_num_threads(1)
    task = make_task("copy", L=2, length=6, vocab=5)
    config = ModelConfig(vocab_size=5, d_model=8, n_heads=2, pattern="power2")
    kw = dict(lr=3e-3, seed=1, steps=12, batch=8, eval_size=32, progress=False)
    whole = train(task, config, **kw)
    ckpt = tmp_path / "c.pt"
    assert train(task, config, checkpoint=ckpt, stop_at=5, **kw) is None and ckpt.exists()
    resumed = train(task, config, checkpoint=ckpt, **kw)
    assert not ckpt.exists()
    for key in ("val_accuracy", "test_accuracy", "loss_first", "loss_last", "steps"):
        assert resumed[key] == whole[key]


def test_non_finite_loss_stops_where_it_first_appears():
    """Losses read every 5 steps end where those read every step do: at the first non-finite loss (an lr of 1e9
    blows the weights up), kept as NaN, with the steps counted to it and accuracy 0."""
    torch.set_num_threads(1)
    task = make_task("copy", L=2, length=6, vocab=5)
    config = ModelConfig(vocab_size=5, d_model=8, n_heads=2, pattern="ssm")
    kw = dict(lr=1e9, seed=0, steps=30, batch=8, eval_size=16, warmup=0.0, progress=False)
    every_step = train(task, config, checkpoint_every=1, **kw)
    every_fifth = train(task, config, checkpoint_every=5, **kw)
    assert 1 < every_step["steps"] < 30 and every_step["val_accuracy"] == every_step["test_accuracy"] == 0.0
    for key in ("steps", "val_accuracy", "test_accuracy", "loss_first"):
        assert every_fifth[key] == every_step[key]
    assert np.isnan(every_fifth["loss_last"]) and np.isnan(every_step["loss_last"])


def test_cuda_graphs_say_why_not_on_the_cpu():
    task = make_task("copy", L=2, length=6, vocab=5)
    config = ModelConfig(vocab_size=5, d_model=8, n_heads=2, pattern="ssm")
    kw = dict(lr=1e-3, seed=0, steps=2, batch=4, eval_size=8, progress=False)
    on, off = train(task, config, **kw), train(task, config, cuda_graphs=False, **kw)
    assert on["graphed"] == "not on CUDA" and off["graphed"] == "cuda_graphs off"
    assert 0 <= on["capture_s"] < on["wall_s"] and 0 <= off["capture_s"] < off["wall_s"]
    with pytest.raises(GLRError, match="cuda_graphs must be true or false"):
        sweep_from_dict({**SMOKE, "run": {**SMOKE["run"], "cuda_graphs": "yes"}})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("pattern, readout, scores", [("ssm", False, "source"), ("power2", False, "source"),
                                                      ("fenwick", True, "source"), ("power2", True, "source"),
                                                      ("attention", False, "query_key")])
def test_graphed_training_matches_eager_on_cuda(pattern, readout, scores):
    """On CUDA the captured steps give the eager steps' losses and accuracy (float32, within 1e-4), and say so."""
    task = make_task("mqar", K=4, length=64, vocab=33)
    config = ModelConfig(vocab_size=33, d_model=32, n_heads=2, pattern=pattern, readout=readout, scores=scores)
    kw = dict(lr=3e-3, seed=0, steps=25, batch=16, eval_size=64, checkpoint_every=10, progress=False, device="cuda")
    eager, graphed = train(task, config, cuda_graphs=False, **kw), train(task, config, **kw)
    assert graphed["graphed"] is True and eager["graphed"] == "cuda_graphs off"
    assert 0 < graphed["capture_s"] < graphed["wall_s"] and eager["capture_s"] < graphed["capture_s"]
    assert graphed["steps"] == eager["steps"] == 25
    for key in ("loss_first", "loss_last"):
        assert graphed[key] == pytest.approx(eager[key], rel=1e-4), key
    for key in ("val_accuracy", "test_accuracy"):
        assert abs(graphed[key] - eager[key]) <= 0.02, key


@pytest.mark.parametrize("fails", [False, True])
@pytest.mark.parametrize("collecting", [True, False])
def test_no_garbage_collection_during_a_capture(monkeypatch, fails, collecting):
    """``graphed`` collects garbage before the capture (a dead reference cycle, made while the collector was off, is
    gone when it starts) and none during it (an earlier run's graphs freed mid-capture would free device memory
    there), then leaves the collector as it found it, on or off, whether the capture succeeds or fails (then it ends
    the failed capture and says why). The capture and its ending are stand-ins here: no CUDA needed."""
    import gc
    import importlib
    import types

    train_module = importlib.import_module("glrtheory.lab.train")
    seen = []

    class Cycle:
        def __del__(self):
            seen.append("collected")

    def capture(model, args, num_warmup_iters, allow_unused_input):
        assert allow_unused_input                          # ssm's lag bias is a parameter no table reads
        seen.append(("capture", gc.isenabled()))
        if fails:
            raise RuntimeError("operation failed due to a previous error during capture")
        return "captured"
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", capture)
    monkeypatch.setattr(train_module, "_end_failed_capture", lambda device: seen.append("ended"))
    was = gc.isenabled()
    gc.disable()
    try:
        cycle = Cycle()
        cycle.me = cycle
        del cycle
        if collecting:
            gc.enable()
        forward, why = train_module.graphed("model", types.SimpleNamespace(device=torch.device("cuda")))
        assert seen[:2] == ["collected", ("capture", False)] and gc.isenabled() == collecting
    finally:
        if was:
            gc.enable()
    if fails:
        assert (forward, seen[2:]) == ("model", ["ended"]) and why.startswith("capture failed: RuntimeError")
    else:
        assert (forward, why, seen[2:]) == ("captured", None, [])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_a_capture_that_fails_falls_back_to_eager_steps(monkeypatch):
    """A forward that reads the device cannot be captured: the run trains eagerly and says why, and the next run
    (its model initialized by the device's random generator) captures and trains as the eager one did."""
    from glrtheory.models import SequenceModel

    task = make_task("mqar", K=4, length=64, vocab=33)
    config = ModelConfig(vocab_size=33, d_model=32, n_heads=2, pattern="ssm")
    kw = dict(lr=3e-3, seed=0, steps=12, batch=16, eval_size=64, checkpoint_every=5, progress=False, device="cuda")
    check = SequenceModel._check_tokens

    def reads_the_device(self, tokens, ndim):
        check(self, tokens, ndim)
        int(tokens.max())                           # a host read: not allowed while capturing
    monkeypatch.setattr(SequenceModel, "_check_tokens", reads_the_device)
    failed = train(task, config, **kw)
    monkeypatch.undo()
    again = train(task, config, **kw)
    assert failed["graphed"].startswith("capture failed") and again["graphed"] is True
    assert failed["steps"] == again["steps"] == 12
    assert again["loss_last"] == pytest.approx(failed["loss_last"], rel=1e-4)


def _reach_dense(spec, n, layers, conv):
    """Reference: boolean closure of the dense mixing support, layer by layer (residual, conv, mixer)."""
    a_idx, b_idx = Pattern.from_spec(spec).tables(n)
    A = np.zeros((n, n), bool)
    B = np.zeros((n, n), bool)
    for t in range(n):
        A[t, a_idx[t][a_idx[t] >= 0]] = True
        if b_idx.shape[1]:
            B[t, b_idx[t][b_idx[t] >= 0]] = True
    M = A.copy()
    for _ in range(n):                                   # M = A + B M until it stops growing
        M = A | (B.astype(int) @ M.astype(int) > 0)
    C = np.zeros((n, n), bool)
    for j in range(max(conv, 1)):
        C |= np.eye(n, k=-j, dtype=bool)
    layer = np.eye(n, dtype=bool) | (M.astype(int) @ C.astype(int) > 0)
    R = np.eye(n, dtype=bool)
    for _ in range(layers):
        R = R.astype(int) @ layer.astype(int) > 0
    return n - 1 - int(np.flatnonzero(R[n - 1])[0])


@pytest.mark.parametrize("spec", ["ssm", "window:4", "window:3+lags:7", "fenwick", "blocks:3", "attention"])
@pytest.mark.parametrize("layers, conv", [(1, 0), (2, 2), (3, 4)])
def test_reach_against_dense(spec, layers, conv):
    assert reach(spec, 29, layers, conv) == _reach_dense(spec, 29, layers, conv)



@pytest.mark.parametrize("spec, layers, conv", [("lags:2", 1, 0), ("lags:3,5", 2, 0), ("lags:4", 2, 2),
                                                ("kron:1,11", 1, 2), ("window:3", 2, 2), ("fenwick", 2, 2)])
def test_dependence_is_what_a_model_reads(spec, layers, conv):
    """``dependence`` against a real model (float64, random weights): output t depends on input s exactly where a
    nonzero gradient of output t reaches the embedding at s. lags:2 and lags:3,5 leave gaps below their reach (odd
    distances, 1, 2, 4, 7), and kron:1,11's outputs reach unlike sets of inputs."""
    from glrtheory.lab.theory import dependence
    torch.manual_seed(0)
    n = 24
    model = SequenceModel(ModelConfig(vocab_size=5, d_model=8, n_layers=layers, n_heads=2, pattern=spec, conv=conv),
                          dtype=torch.float64)
    emb = model.embed(torch.randint(0, 5, (1, n))).detach().requires_grad_(True)
    x = emb
    for block in model.blocks:
        x = block(x)
    reads = np.zeros((n, n), dtype=bool)
    for t in range(n):
        (grad,) = torch.autograd.grad(x[0, t].sum(), emb, retain_graph=True)
        reads[t] = grad[0].abs().sum(-1).numpy() > 0
    assert np.array_equal(dependence(spec, n, layers, conv), reads)

def test_prediction_numbers():
    """Counted by hand: ssm keeps one state (2 heads of 16, plus a source score a head) and conv 2 one input of
    d_model 32 per layer; attention keeps the 31 inputs before the last, each with its scoring: a source score a
    head, or in query-key mode a key of 16 a head; a matrix state holds 16 x 16 a head."""
    model = {"pattern": "ssm", "d_model": 32, "n_heads": 2, "n_layers": 2, "conv": 2}
    assert d_state(model) == 32 and d_state({**model, "readout": True}) == 2 * 16 * 16
    p = prediction(make_task("copy", L=4, length=32, vocab=10), model)
    assert p["cache_peak"] == 1 and p["state_numbers"] == 2 * ((32 + 2) + 32)
    assert p["capacity"] == pytest.approx(132 / 3)
    assert prediction(make_task("copy", L=4, length=32, vocab=10), {**model, "readout": True})["state_numbers"] == (
        2 * ((512 + 2) + 32))
    task = make_task("mqar", K=2, length=32, vocab=21)
    p = prediction(task, {**model, "pattern": "attention"})
    assert p["cache_peak"] == 31 and p["capacity"] == pytest.approx(2 * (31 * (32 + 2) + 32) / np.log2(10))
    p = prediction(task, {**model, "pattern": "attention", "scores": "query_key"})
    assert p["state_numbers"] == 2 * (31 * (32 + 32) + 32)
    p = prediction(task, {**model, "pattern": "attention", "readout": True})      # u_s kept as k_s and v_s
    assert p["state_numbers"] == 2 * (31 * (2 * 32 + 2) + 32)


@pytest.mark.parametrize("spec, readout", [("attention", False), ("window:5", False), ("blocks:5+lags:3", False),
                                           ("attention+fenwick", False), ("fenwick", True), ("power2", True)])
def test_state_numbers_are_what_the_decode_cache_holds(spec, readout):
    """In query-key mode the decode cache of ``GLRMixer`` keeps each live input u_s and each live state h_s with its
    key: its largest size over 40 steps, in numbers a sequence, is the per-layer term of ``state_numbers``. (For a
    matrix state's live inputs the cache keeps k v^T, the count k and v: these patterns keep none.) attention+fenwick
    keeps most inputs at step 38 and most states earlier: the busiest cut is not the two peaks summed (43 entries
    against 45 at n = 40)."""
    from glrtheory.kernels.torch import GLRMixer
    from glrtheory.lab.theory import state_numbers
    n, H, d = 40, 2, 8
    mixer = GLRMixer(spec, H * d, H, readout=readout, scores="query_key")
    cache, held = mixer.init_cache(n), []
    with torch.no_grad():
        for _ in range(n):
            mixer.step(torch.randn(1, H * d), cache)
            held.append(sum(x.numel() for entry in (*cache.inputs.values(), *cache.states.values()) for x in entry))
    model = {"pattern": spec, "d_model": H * d, "n_heads": H, "n_layers": 1, "readout": readout,
             "scores": "query_key"}
    assert max(held) == state_numbers(spec, n, model) > 0


@pytest.mark.parametrize("task, acc, trains, expected", [
    ("copy", [1.0, 0.95, 0.2], True, "refuted"),        # 0.95 at level 8, predicted infeasible
    ("copy", [1.0, 0.5, 0.2], True, "confirmed"),
    ("copy", [0.5, 0.5, 0.2], True, "inconclusive"),    # nothing solved: training fell short
    ("modcount", [0.5, 0.5, 0.6], True, "confirmed"),
    ("modcount", [0.5, 0.5, 0.6], False, "inconclusive")])
def test_verdicts(task, acc, trains, expected):
    allowed = [True, False, False] if task == "copy" else [False] * 3
    assert verdict([4, 8, 16], acc, allowed, trains)[0] == expected
    assert verdict([2, 4], [1.0, 1.0], [True, True], True)[0] == "inconclusive"   # bound not tested
    assert verdict([2, 4], [0.3, 0.2], [False, False], True)[0] == "confirmed"    # none feasible, trains
    assert verdict([2, 4], [0.3, 0.2], [False, False], False)[0] == "inconclusive"


def test_copy_needs_reach():
    """Copy's s_i sits at input i and is the target of output ``T - L + i`` (read off a sample): every token
    travels T - L positions, so with a reach of 16 at T = 32 (two layers of window:8) L = 16 is feasible and
    L = 15 is not; lags:2 with no convolution reaches even distances only, so L = 16 is out of reach too."""
    model = {"pattern": "window:8", "d_model": 32, "n_heads": 2, "n_layers": 2, "conv": 2}
    pred = prediction(make_task("copy", L=4, length=32, vocab=10), model, levels=range(1, 17))
    assert pred["reach"] == 16 and pred["capacity"] > 16
    for L in range(1, 17):
        x, y = make_task("copy", L=L, length=32, vocab=1000).sample(8, seed=L)
        scored = np.flatnonzero(y[0] != IGNORE)
        assert np.array_equal(y[:, scored], x[:, :L]) and (scored - np.arange(L) == 32 - L).all()
        assert feasible(L, pred) == (L == 16)
    gaps = prediction(make_task("copy", L=4, length=32, vocab=10), {**model, "pattern": "lags:2", "conv": 0},
                      levels=[15, 16])
    assert gaps["reach"] == 30 and [feasible(L, gaps) for L in (15, 16)] == [False, True]
    # one layer of kron:1,11 with conv 2 at n = 16: L = 5 copies s_1 and s_2 to outputs 12 and 13, which do not
    # read them (12 = 1100 reads the states of its bit subsets 0, 4, 8, 12, so the inputs 0, 3, 4, 7, 8, 11, 12; 13
    # reads no 2), though s_0, s_3 and s_4 arrive and the last output reaches back 15
    kron = prediction(make_task("copy", L=5, length=16, vocab=10), {**model, "pattern": "kron:1,11", "n_layers": 1},
                      levels=[4, 5])
    assert kron["reach"] == 15 and [feasible(L, kron) for L in (4, 5)] == [True, False]


def test_mqar_needs_its_values_within_reach():
    """The share of MQAR queries whose value lies within reach, against a loop over the sampled sequences (each
    query's key found among the pairs, its value one position after the key); two layers of window:8 reach 16, so
    at K = 4, n = 128 about half the answers can only be guessed and no K is feasible, while attention's are."""
    from glrtheory.lab.theory import MQAR_SAMPLE, mqar_within_reach
    task = make_task("mqar", K=4, length=128, vocab=64)
    x, y = task.sample(MQAR_SAMPLE, seed=0)
    distances = []
    for row_x, row_y in zip(x, y):
        for pos in np.flatnonzero(row_y != IGNORE):
            (key_at,) = [i for i in range(0, 2 * task.K, 2) if row_x[i] == row_x[pos]]
            distances.append(pos - (key_at + 1))
    t = np.arange(128)
    for r in (0, 16, 60, 127):                    # the relation "within r positions back" as the dependence
        reached = (t[None, :] <= t[:, None]) & (t[:, None] - t[None, :] <= r)
        assert mqar_within_reach(task, reached) == np.mean(np.array(distances) <= r)
    model = {"pattern": "window:8", "d_model": 32, "n_heads": 2, "n_layers": 2, "conv": 2}
    pred = prediction(task, model, levels=[2, 4])
    assert pred["reach"] == 16 and pred["capacity"] > 4 and 0.3 < pred["ceiling"][4] < 0.9
    assert not feasible(4, pred) and not feasible(2, pred)
    assert feasible(4, prediction(task, {**model, "pattern": "attention"}, levels=[4]))


def test_configs_parse():
    """Every sweep in ``configs/lab/`` loads (each mixer's model is built) and has cells."""
    paths = sorted((Path(__file__).resolve().parents[1] / "configs" / "lab").glob("*.toml"))
    assert len(paths) >= 16
    for path in paths:
        assert load_sweep(str(path)).cells(), path


@pytest.mark.parametrize("argv, message", [
    (["lab", "run", "--task", "sorting", "--levels", "2", "--patterns", "ssm"], "unknown task"),
    (["lab", "run", "--task", "mqar", "--levels", "2", "--patterns", "nonsense"], "unknown pattern"),
    (["lab", "run", "--task", "mqar", "--levels", "8", "--length", "16", "--patterns", "ssm"], "does not fit"),
    (["lab", "run", "no/such.toml"], "does not exist"),
    (["lab", "run", "--task", "copy", "--levels", "2", "--patterns", "ssm", "--device", "cuda:7"],
     "not available"),
    (["lab", "run", "--task", "copy", "--levels", "2,x", "--patterns", "ssm"], "comma-separated"),
    (["lab", "run", "--task", "copy", "--levels", "2", "--patterns", "ssm", "--shard", "3/2"], "I/N"),
    (["lab", "report", "no/such/folder"], "not a lab output folder")])
def test_cli_errors(argv, message, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path)] if argv[1] == "run" else [])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glr: error:") and message in err[0], err


def test_a_folder_of_cells_trained_otherwise_is_refused(tmp_path, capsys):
    """A cell's key covers its task, mixer and seed, not [run] or [model]: a second run into the folder with other
    steps or another model is refused (its cells would be taken as this sweep's); another device, more seeds, or
    the same settings run on into it."""
    base = ["lab", "run", "--task", "modcount", "--levels", "2", "--length", "4", "--patterns", "window:2",
            "--lrs", "1e-3", "--out", str(tmp_path), "--quiet", "--no-report"]
    assert main(base + ["--steps", "1"]) == 0
    assert main(base + ["--steps", "1", "--seeds", "0,1", "--device", "cpu"]) == 0
    assert main(base + ["--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "run.steps: 1 -> 2" in err and "give another --out" in err
    data = json.loads((tmp_path / "sweep.json").read_text())
    old = sweep_from_dict(data)
    assert sweep_from_dict({**data, "model": {"d_model": 16}}).trained_unlike(old) == ["model.d_model: 32 -> 16"]
    assert sweep_from_dict({**data, "run": {**data["run"], "lrs": [1e-3, 3e-3]}}).trained_unlike(old) == [
        "run.lrs: [0.001] -> [0.001, 0.003]"]


@pytest.mark.parametrize("change, message", [
    ({"tasks": {"mqar": {"K": [4, 8, 4]}}}, r"lists a level of K twice: \[4, 8, 4\]"),
    ({"tasks": {"copy": {"L": [2], "length": 5000, "vocab": 6}}}, "has sequences of n = 5000; the lab's predictions "
     "take n <= 4096"),
    ({"tasks": {"mqar": {"length": 64}}}, r"needs K = \[levels...\]"),
    ({"tasks": {"sorting": {"n": [2]}}}, "unknown task 'sorting'"),
    ({"tasks": {}}, "lists no tasks"), ({"mixers": []}, "lists no mixers"),
    ({"extra": {}}, "unknown sweep section"), ({"run": {"step": 3}}, r"unknown \[run\] option"),
    ({"run": {"seeds": [-1]}}, "seeds must be"), ({"states": ["tensor"]}, "unknown state"),
    # a repeated seed trained its cells twice and counted them as two seeds; a seed of 100000 drew its first batch
    # from seed 0's validation set (10**12 = 100000 * 10**7); steps past 10**7 reach the next seed's batches
    ({"run": {"seeds": [0, 0, 1]}}, r"seeds lists a seed twice: \[0, 0, 1\]"),
    ({"run": {"seeds": [99999, 100000]}}, r"integers in \[0, 100000\), got \[99999, 100000\]"),
    ({"run": {"seeds": [True]}}, "seeds must be"),
    ({"run": {"steps": 10**7 + 1}}, "steps is limited to 10000000, got 10000001"),
    ({"mixers": [{"pattern": "ssm", "d_model": 64, "n_layers": 3}]}, "mixer 'ssm' sets d_model, n_layers: the model's "
     r"size is \[model\]'s"),
    ({"mixers": [{"pattern": "power2", "n_heads": 4, "d_head": 64, "conv": 8}]}, "mixer 'power2' sets n_heads, "
     "d_head, conv: the model's"),
    ({"mixers": [{"pattern": "ssm"}, {"pattern": "attention", "mlp_mult": 4}]}, "mixer 'attention' sets mlp_mult"),
    ({"mixers": [{"pattern": "attention", "mlp_hidden": 24}]}, "mixer 'attention' sets mlp_hidden")])
def test_bad_sweeps_are_refused(change, message):
    data = {"mixers": ["ssm"], "tasks": {"mqar": {"K": [4], "length": 64}}}
    with pytest.raises(GLRError, match=message):
        sweep_from_dict({**data, **change})


def test_the_largest_seed_and_steps_keep_training_apart_from_held_out_sets():
    """Seed 99999 at 10**7 steps is accepted, and its last batch's seed stays below the first held-out seed."""
    from glrtheory.lab.train import HELD_OUT, SEED_STRIDE
    sweep = sweep_from_dict({"mixers": ["ssm"], "tasks": {"mqar": {"K": [4], "length": 64}},
                             "run": {"seeds": [99999], "steps": 10**7}})
    (seed,), steps = sweep.run["seeds"], sweep.run["steps"]
    assert seed * SEED_STRIDE + steps - 1 == min(HELD_OUT.values()) - 1


def test_two_mixers_of_one_name_are_refused():
    """Mixers are told apart by name: two entries that would both be called "ssm" with other options are an error
    (before, the later one silently replaced the earlier); one that sets readout itself, listed for every state,
    is kept once."""
    data = {"mixers": ["ssm", {"pattern": "ssm", "timescales": [32, 256]}], "tasks": {"modcount": {"k": [2]}}}
    with pytest.raises(GLRError, match="two mixers are named 'ssm'"):
        sweep_from_dict(data)
    both = sweep_from_dict({**data, "mixers": ["ssm", {"pattern": "ssm", "timescales": [32, 256], "name": "slow"}]})
    assert [m.name for m in both.mixers] == ["ssm", "slow"]
    states = sweep_from_dict({**data, "mixers": [{"pattern": "ssm", "readout": True}], "states": ["vector", "matrix"]})
    assert [m.name for m in states.mixers] == ["ssm (matrix)"]


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "glrtheory.lab", "tasks"], capture_output=True, text=True)
    assert out.returncode == 0 and "mqar" in out.stdout and "modcount" in out.stdout


def test_shards_merge_and_time_limit(tmp_path, capsys):
    data = {"run": {"steps": 2, "batch": 4, "lrs": [1e-3], "eval_size": 8, "device": "cpu"},
            "model": {"d_model": 8, "n_layers": 1}, "mixers": ["attention", "window:2"],
            "tasks": {"modcount": {"k": [2, 3], "length": 4}}}
    sweep = sweep_from_dict(data)
    assert run_sweep(sweep, tmp_path, progress=False, time_limit=-1) == []
    run_sweep(sweep, tmp_path, progress=False, shard=(1, 2))
    rows = run_sweep(sweep, tmp_path, progress=False, shard=(0, 2))
    assert [r["key"] for r in rows] == [c.key for c in sweep.cells()]
    assert sorted(p.name for p in tmp_path.glob("cells*")) == ["cells-0of2.jsonl", "cells-1of2.jsonl"]
    (tmp_path / "sweep.json").write_text(json.dumps(data))
    assert main(["lab", "report", str(tmp_path)]) == 0
    assert "| modcount (k) | window:2 |" in capsys.readouterr().out


@pytest.mark.parametrize("folder, columns", [("smoke_cpu", ["ssm", "power2", "attention"]),
                                             ("cpu_recall", ["ssm", "fenwick", "window:4",
                                                             "sliding-window attention (4)"]),
                                             ("cpu_control", ["ssm", "fenwick", "attention"]),
                                             ("h200_short", ["ssm", "power2", "fenwick", "window:8", "attention",
                                                             "sliding-window attention (8)"]),
                                             ("h200_mqar", [f"{p} ({s})" for p in ("ssm", "power2", "fenwick")
                                                            for s in ("vector", "matrix")] + ["attention"]),
                                             ("h200_mqar_timescales", [f"{p} (matrix, tau 32-256)"
                                                                       for p in ("ssm", "power2", "fenwick")]),
                                             ("h200_mqar_wide", [f"{p} (matrix{s})" for s in (", tau 32-256", "")
                                                                 for p in ("ssm", "power2", "fenwick")]
                                              + ["attention"]),
                                             ("cpu_mqar", ["ssm (matrix)", "power2 (matrix)", "fenwick (matrix)",
                                                           "attention"]),
                                             ("cpu_mqar_timescales", [f"{p} (matrix, tau 32-256)" for p in
                                                                      ("ssm", "power2", "fenwick")]),
                                             ("cpu_mqar_seeds", [f"{p} (matrix, tau 32-256)" for p in
                                                                 ("ssm", "power2", "fenwick")]),
                                             ("cpu_mqar_lagbias", [f"{p} (matrix, tau 32-256, lag bias)" for p in
                                                                   ("ssm", "power2", "fenwick")]),
                                             ("cpu_mqar_long", ["ssm (matrix)", "power2 (matrix)", "fenwick (matrix)",
                                                                "ssm (matrix, tau 32-256)"])])
def test_readme_quotes_the_committed_lab_results(folder, columns):

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    results = json.loads((root / "benchmarks/results/lab" / folder / "results.json").read_text())
    gpu = folder.startswith("h200")
    assert results["machine"]["device"] == ("cuda" if gpu else "cpu")
    assert (results["cells_done"] == results["cells_total"]
            or f"{results['cells_done']} of {results['cells_total']} cells" in readme)
    command = f"--out benchmarks/results/lab/{folder} "
    assert command in readme
    table = readme[readme.index(command):].split("\n\n| task |")[1].split("\n\n")[0]    # the first table after it
    assert len(table.splitlines()[0].split("|")) == len(columns) + 1 and table.count("\n") > 1
    for s in results["summary"]:
        for level, acc, ok in zip(s["levels"], s["accuracy"], s["feasible"]):
            prefix = f"| {s['task']} {s['difficulty']} = {level}" + (f" (n = {s['n']}) |" if gpu else " |")
            row = next(x for x in ("| task |" + table).splitlines() if x.startswith(prefix))
            expected = f"{acc:.2f}" + ("" if ok or not gpu else "x")
            assert row.split("|")[2 + columns.index(s["mixer"])].strip() == expected


def test_evaluation_seeds_are_never_training_seeds(monkeypatch):
    """accuracy is measured on held-out data: the validation set and then the test set, each of eval_size
    sequences, from two different seeds, neither of them one that any training step of runs with seeds 0..9 (up to
    1000 steps) draws its batch from."""
    train_module = importlib.import_module("glrtheory.lab.train")
    seen = []
    real = train_module._batch
    monkeypatch.setattr(train_module, "_batch", lambda task, n, seed, device: (seen.append((n, seed)),
                                                                               real(task, n, seed, device))[1])
    task = make_task("copy", L=2, length=6, vocab=5)
    config = ModelConfig(vocab_size=5, d_model=8, n_heads=2, pattern="ssm")
    stride = train_module.SEED_STRIDE
    used = {s * stride + i for s in range(10) for i in range(1000)}
    for seed in (0, 1):
        seen.clear()
        train(task, config, lr=1e-3, seed=seed, steps=3, batch=4, eval_size=7, progress=False)
        steps = {s for n, s in seen if n == 4}
        validation, test = [s for n, s in seen if n == 7]
        assert steps == {seed * stride + i for i in range(3)}
        assert validation != test and validation not in used and test not in used


def test_first_loss_is_the_cross_entropy_at_the_scored_positions_only():
    """loss_first is the untrained model's mean cross-entropy over the positions with a target (the queries of
    MQAR), not over every token."""
    torch.set_num_threads(1)
    task = make_task("mqar", K=2, length=12, vocab=16)
    config = ModelConfig(vocab_size=16, d_model=8, n_heads=2, pattern="ssm")
    r = train(task, config, lr=1e-3, seed=3, steps=1, batch=4, eval_size=8, progress=False)
    torch.manual_seed(3)
    model = SequenceModel(config)
    stride = importlib.import_module("glrtheory.lab.train").SEED_STRIDE
    x, y = (torch.from_numpy(a) for a in task.sample(4, 3 * stride))      # step 0's batch of seed 3
    scored = y != IGNORE
    with torch.no_grad():
        ref = F.cross_entropy(model(x)[scored], y[scored])
    assert 0 < int(scored.sum()) < y.numel()
    assert r["loss_first"] == pytest.approx(float(ref), rel=1e-5)


def test_every_mixer_gets_the_same_lr_grid_and_steps_and_the_cell_keeps_the_best_lr(tmp_path, monkeypatch):
    """The cells' trainings (a stand-in whose accuracies depend on the LR only) are the same for every mixer: each LR
    of the grid once, with the sweep's steps and batch; the cell keeps the LR of the highest validation accuracy
    and reports that LR's test accuracy (the test set's best LR is another, and the test set's best value higher)."""
    runner = importlib.import_module("glrtheory.lab.runner")
    calls = []
    val = {1e-3: 0.5, 3e-3: 0.9, 1e-2: 0.1}
    test = {1e-3: 0.95, 3e-3: 0.8, 1e-2: 0.2}

    def fake(task, config, *, lr, seed, steps, batch, **kw):
        calls.append((config.pattern, task.name, seed, lr, steps, batch))
        return {"val_accuracy": val[lr], "test_accuracy": test[lr], "loss_first": 1.0, "loss_last": 0.5,
                "steps": steps, "wall_s": 0.0, "parameters": 1, "graphed": "stand-in", "capture_s": 0.0}
    monkeypatch.setattr(runner, "train", fake)
    data = {**SMOKE, "run": {**SMOKE["run"], "lrs": [1e-3, 3e-3, 1e-2], "seeds": [0, 1]}}
    rows = run_sweep(sweep_from_dict(data), tmp_path, progress=False)
    assert len(rows) == 8
    for r in rows:
        assert [x["lr"] for x in r["lr_sweep"]] == [1e-3, 3e-3, 1e-2]
        assert [x["steps"] for x in r["lr_sweep"]] == [60] * 3 and r["steps"] == 60
        assert (r["best_lr"], r["accuracy"], r["val_accuracy"]) == (3e-3, 0.8, 0.9)
    per_mixer = {}
    for pattern, *rest in calls:
        per_mixer.setdefault(pattern, []).append(tuple(rest))
    assert sorted(per_mixer) == ["attention", "ssm"] and per_mixer["ssm"] == per_mixer["attention"]
    assert {c[-2:] for c in calls} == {(60, 32)}


def test_a_sweep_reports_test_accuracies_only_where_every_cell_has_one():
    """A cell written before the test set existed has one held-out accuracy, the best over the LRs; a sweep holding
    such a cell reports every cell so (a newer cell's ``val_accuracy``), else every cell's test accuracy."""
    old = dict(task="copy", mixer="ssm", level=2, accuracy=0.7)
    new = [dict(task="copy", mixer="ssm", level=3, accuracy=0.4, val_accuracy=0.6),
           dict(task="copy", mixer="ssm", level=3, accuracy=0.2, val_accuracy=0.1)]
    assert not held_out([old, *new]) and reported([old, *new]) == [0.7, 0.6, 0.1]
    assert held_out(new) and reported(new) == [0.4, 0.2]
    sweep = sweep_from_dict({**SMOKE, "tasks": {"copy": {"L": [2, 3], "length": 8, "vocab": 6}}})
    (s,) = summarize(sweep, new)
    assert s["accuracy"] == pytest.approx([0.3])


def test_reaching_the_threshold_exactly_counts():
    """'reaches 0.9' is >= 0.9: an infeasible level at exactly 0.9 refutes, a feasible one at 0.9 confirms; a level
    whose ceiling is exactly 0.9 is feasible, and a level at exactly the scale (K log2(#values) = numbers) is within
    it; the scale never rules a level out, and modcount has no bound at finite n."""
    assert verdict([4, 8], [1.0, 0.9], [True, False], True)[0] == "refuted"
    assert verdict([4, 8], [0.9, 0.5], [True, False], True)[0] == "confirmed"
    reachable = {"capacity": 8.0, "ceiling": {8: 0.9, 9: 1.0}}
    assert feasible(8, reachable) and feasible(9, reachable)
    assert within_scale("mqar", 8, reachable) and not within_scale("mqar", 9, reachable)
    assert not feasible(8, {"capacity": 8.0, "ceiling": {8: 0.9 - 1e-12}})   # answers beyond reach
    assert not within_scale("modcount", 2, {"capacity": 1})
    copy = {"ceiling": {15: 0.25, 16: 1.0}, "capacity": 20.0}
    assert [feasible(L, copy) for L in (15, 16)] == [False, True]
    assert [within_scale("copy", L, copy) for L in (16, 20, 21)] == [True, True, False]


def _tail(n: int, p: Fraction, k: int) -> Fraction:
    """P(Binomial(n, p) > k), exactly."""
    return sum((math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k + 1, n + 1)), Fraction(0))


@pytest.mark.parametrize("n, p, levels", [(16, Fraction(1, 200), 1), (16, Fraction(1, 4), 1), (40, Fraction(1, 2), 3),
                                          (60, Fraction(9, 10), 2), (11, Fraction(1, 10), 1), (25, Fraction(1), 1),
                                          (25, Fraction(0), 1)])
def test_noise_is_the_exact_binomial_margin(n, p, levels):
    """An accuracy j / n passes ``ceiling + noise`` exactly for the counts j > k, k the least count that guesses right
    with probability p exceed with probability at most ALPHA / levels, by exact sums over the binomial terms (near a
    ceiling of 0 or 1 three standard errors would pass far more often: 7.7% at n = 16 and p = 1/200)."""
    margin = noise(float(p), n, levels)
    passing = [j for j in range(n + 1) if j / n > float(p) + margin]
    k = (passing[0] if passing else n + 1) - 1
    assert passing == list(range(k + 1, n + 1))
    assert _tail(n, p, k) <= Fraction(ALPHA) / levels
    assert k == 0 or _tail(n, p, k - 1) > Fraction(ALPHA) / levels
    if p in (0, 1):             # a ceiling of 1 is never passed, one of 0 by any right answer
        assert k == n * p
    if (n, p) == (16, Fraction(1, 200)):    # three standard errors (0.053) pass 1 right of 16, 7.7% of guessers
        assert 1 / 16 > p + 3 * math.sqrt(p * (1 - p) / n) and round(float(_tail(n, p, 0)), 3) == 0.077 and k == 2


def test_an_accuracy_past_what_reach_allows_refutes():
    """A guess right with probability 1/4 over 4096 answers passes 0.25 + 0.0206 only by chance (three standard
    errors give 0.0203 there), so 0.27 does not refute and 0.28 does, below 0.9 as both are. A level of window:2's
    copy at n = 32, its tokens out of reach (ceiling 1/4 with 6 symbols), copied at 0.6 over 128 test sequences of
    4 tokens (0.25 + 0.060 by chance) refutes the bound, where the threshold alone called it a failure; at 0.3 it
    does not (and this sweep shows no training of window:2 that works)."""
    assert 0.27 < 0.25 + noise(0.25, 4096) < 0.28
    sweep = sweep_from_dict({**SMOKE, "mixers": [{"pattern": "window:2"}, {"pattern": "attention"}],
                             "tasks": {"copy": {"L": [4], "length": 32, "vocab": 6}}})
    for acc, expected in ((0.3, "inconclusive"), (0.6, "refuted")):
        rows = [dict(task="copy", mixer="window:2", level=4, accuracy=acc),
                dict(task="copy", mixer="attention", level=4, accuracy=1.0)]
        s = next(s for s in summarize(sweep, rows) if s["mixer"] == "window:2")
        assert s["feasible"] == [False] and s["verdict"] == expected, s["reason"]
        assert bool(s["over"]) == (expected == "refuted")


def test_the_chance_margin_is_shared_by_a_tasks_levels():
    """0.31 at L = 4 (512 answers) passes the ceiling 1/4 beyond one level's margin, 0.0596, but not beyond the
    margin of two levels tested together, 0.0635 (the chance split between them): refuted when L = 4 is the only
    level, not when L = 8 (at 0.25) is tested beside it."""
    for levels, expected in (([4], ["refuted"]), ([4, 8], ["inconclusive"])):
        sweep = sweep_from_dict({**SMOKE, "mixers": [{"pattern": "window:2"}],
                                 "tasks": {"copy": {"L": levels, "length": 32, "vocab": 6}}})
        rows = [dict(task="copy", mixer="window:2", level=lv, accuracy=0.31 if lv == 4 else 0.25) for lv in levels]
        assert [s["verdict"] for s in summarize(sweep, rows)] == expected


@pytest.mark.parametrize("attention_copies, expected", [(1.0, "confirmed"), (0.3, "inconclusive")])
def test_a_mixer_failing_every_ruled_out_level_confirms_only_where_the_task_is_learned(attention_copies, expected):
    """window:2 in two layers with conv 2 reaches 4 positions back: copy at n = 32 is ruled out at every L. Its failure
    confirms the bound only where training works both for the mixer (it recalls at D = 2) and for the task (some
    mixer of the sweep copies); where no mixer copies, the failure says nothing."""
    sweep = sweep_from_dict({**SMOKE, "mixers": [{"pattern": "window:2"}, {"pattern": "attention"}],
                             "tasks": {"copy": {"L": [4, 8], "length": 32, "vocab": 6},
                                       "recall": {"D": [2], "length": 32, "vocab": 12}}})
    rows = [dict(task="recall", mixer="window:2", level=2, accuracy=1.0),
            dict(task="recall", mixer="attention", level=2, accuracy=1.0)]
    rows += [dict(task="copy", mixer="window:2", level=L, accuracy=0.2) for L in (4, 8)]
    rows += [dict(task="copy", mixer="attention", level=L, accuracy=attention_copies) for L in (4, 8)]
    verdicts = {(s["task"], s["mixer"]): (s["feasible"], s["verdict"]) for s in summarize(sweep, rows)}
    assert verdicts["copy", "window:2"] == ([False, False], expected)

def test_summary_averages_over_seeds_and_its_crossover_is_below_the_threshold():
    """The accuracy of a level is the mean over its seeds (not the best seed); the crossover is the first level
    whose mean is below 0.9 (a mean of exactly 0.9 is not)."""
    sweep = sweep_from_dict({**SMOKE, "run": {**SMOKE["run"], "seeds": [0, 1]},
                             "tasks": {"copy": {"L": [2, 3], "length": 8, "vocab": 6}}})
    rows = [dict(task="copy", mixer="ssm", level=lv, accuracy=a) for lv, a in ((2, 1.0), (2, 0.8), (3, 0.2), (3, 0.4))]
    (s,) = summarize(sweep, rows)
    assert s["accuracy"] == pytest.approx([0.9, 0.3]) and s["seeds"] == [2, 2]
    assert s["crossover"] == 3


# Mutation run 5 (docs/mutation.md): the lab's theory and the claims' rule, each test against hand-worked values.

def test_prediction_reports_the_analysis_at_n():
    """ssm at n = 32, counted by hand: one state in the cache, a decode cost |A(t)| + |B(t)| of 1 at t = 0 and 2
    after (mean 63/32), and 31 hops from input 0 to output 31; the results table reads n and the plots the cost."""
    model = {"pattern": "ssm", "d_model": 32, "n_heads": 2, "n_layers": 2, "conv": 2}
    p = prediction(make_task("copy", L=4, length=32, vocab=10), model, levels=[4])
    assert (p["n"], p["cache_peak"], p["decode_cost_mean"], p["hop_diameter"]) == (32, 1, 63 / 32, 31)


def test_recall_ceiling_reads_the_last_outputs_token_d_back():
    """One layer of lags:2 without convolution reads even distances only (0, 2, ..., 30 at n = 32), so recall at
    D = 2 and 30 is within reach and D = 1, 3 is a guess among the 9 answers of vocab 12 (read off a sample); its
    scale is the reach itself and never rules a level out. window:4 in one layer reaches 3: D = 5 is out of reach but
    still within the scale."""
    x, y = make_task("recall", D=2, length=32, vocab=12).sample(400, seed=0)
    assert set(y[y != IGNORE].tolist()) == set(range(3, 12))                            # 9 possible answers
    model = {"pattern": "lags:2", "d_model": 32, "n_heads": 2, "n_layers": 1, "conv": 0}
    p = prediction(make_task("recall", D=2, length=32, vocab=12), model, levels=[1, 2, 3, 30])
    assert p["reach"] == p["capacity"] == 30
    assert p["ceiling"] == {1: pytest.approx(1 / 9), 2: 1.0, 3: pytest.approx(1 / 9), 30: 1.0}
    assert [feasible(D, p) for D in (1, 2, 3, 30)] == [False, True, False, True]
    assert p["rule"] == "input 31 - D within reach of output 31 (up to 30)"
    window = prediction(make_task("recall", D=2, length=32, vocab=12), {**model, "pattern": "window:4"}, levels=[3, 5])
    assert window["reach"] == 3 and window["ceiling"] == {3: 1.0, 5: pytest.approx(1 / 9)}
    assert within_scale("recall", 5, window) and within_scale("recall", 3, window)


@pytest.mark.parametrize("task, levels, message", [
    ("recall", [2, 30, 31], "recall at distance D=31 does not fit in length=32"),
    ("copy", [2, 33], "copy of L=33 tokens does not fit in length=32"),
    ("mqar", [0], "K must be >= 1")])
def test_a_level_the_task_refuses_is_refused(task, levels, message):
    """A level the task itself would refuse is a GLRError: recall at D = 31 of n = 32 read the relation at a wrapped
    index (its ceiling came out 1.0 at D = 32) and copy past n raised an IndexError."""
    params = {"recall": dict(D=2), "copy": dict(L=2), "mqar": dict(K=2)}[task]
    model = {"pattern": "window:2", "d_model": 32, "n_heads": 2, "n_layers": 1, "conv": 0}
    with pytest.raises(GLRError, match=message):
        prediction(make_task(task, **params, length=32, vocab=64), model, levels=levels)


def test_copy_and_mqar_ceilings_are_the_share_within_reach_plus_guesses():
    """Copy: one layer of kron:1,11 with conv 2 at n = 16 (test_copy_needs_reach) brings s_0, s_3, s_4 of L = 5 to
    their outputs and not s_1, s_2, so its ceiling is 3/5 + (2/5) / 8, the 8 tokens 2..9 of vocab 10 (read off a
    sample). MQAR: two layers of window:8 with conv 2 read exactly the 16 positions back (the band, checked), so the
    share of queries within reach at each K is a loop over the sampled sequences of that K, and the rest guess one of
    the 32 values 32..63 of vocab 64 (read off the sample): at K = 2 and K = 4 the shares differ. The rules print the
    reach and the scales (ssm's 132 numbers, test_prediction_numbers; window:8 keeps 7 inputs of 32 + 2 numbers and
    the convolution's 32 a layer: 2 (7 * 34 + 32) = 540)."""
    from glrtheory.lab.theory import dependence
    x, _ = make_task("copy", L=5, length=16, vocab=10).sample(200, seed=0)
    assert set(x[:, :5].ravel().tolist()) == set(range(2, 10))
    model = {"pattern": "kron:1,11", "d_model": 32, "n_heads": 2, "n_layers": 1, "conv": 2}
    kron = prediction(make_task("copy", L=5, length=16, vocab=10), model, levels=[4, 5])
    assert kron["ceiling"] == {4: 1.0, 5: pytest.approx(3 / 5 + 2 / 5 / 8)}
    ssm = prediction(make_task("copy", L=4, length=32, vocab=10), {**model, "pattern": "ssm", "n_layers": 2}, [4])
    assert ssm["rule"] == "each s_i within reach of output 32 - L + i (up to 31); scale L*log2(8) <= 132"
    window = {"pattern": "window:8", "d_model": 32, "n_heads": 2, "n_layers": 2, "conv": 2}
    t = np.arange(128)
    band = (t[None, :] <= t[:, None]) & (t[:, None] - t[None, :] <= 16)
    assert np.array_equal(dependence("window:8", 128, 2, 2), band)
    expected = {}
    for K in (2, 4):
        x, y = make_task("mqar", K=K, length=128, vocab=64).sample(512, seed=0)
        assert set(y[y != IGNORE].tolist()) == set(range(32, 64))
        near = [pos - (next(i for i in range(0, 2 * K, 2) if row_x[i] == row_x[pos]) + 1) <= 16
                for row_x, row_y in zip(x, y) for pos in np.flatnonzero(row_y != IGNORE)]
        f = np.mean(near)
        expected[K] = f + (1 - f) / 32
    assert expected[2] != pytest.approx(expected[4])
    p = prediction(make_task("mqar", K=4, length=128, vocab=64), window, levels=[2, 4])
    assert p["ceiling"] == pytest.approx(expected, abs=1e-12)
    assert p["rule"] == "the values within reach (up to 16); scale K*log2(32) <= 540"


def test_modcount_has_no_bound_at_finite_n():
    """modcount: no level is ruled out at a finite n (ceiling 1, feasible), and its scale of 1 (positive gates cannot
    count mod k as n grows) puts every k >= 2 beyond it."""
    model = {"pattern": "window:8", "d_model": 32, "n_heads": 2, "n_layers": 2, "conv": 2}
    p = prediction(make_task("modcount", k=2, length=32), model, levels=[2, 3, 5])
    assert p["capacity"] == 1 and p["ceiling"] == {2: 1.0, 3: 1.0, 5: 1.0}
    assert all(feasible(k, p) for k in (2, 3, 5))
    assert not any(within_scale("modcount", k, p) for k in (2, 3))
    assert p["rule"] == "no bound at finite n; scale: positive gates cannot count mod k as n grows"


def test_a_model_without_conv_has_no_convolution():
    """Model options without ``conv`` mean no convolution, as conv 0 (and conv 1, one input: itself): one layer of
    window:4 then reaches 3 back."""
    model = {"pattern": "window:4", "d_model": 32, "n_heads": 2, "n_layers": 1}
    task = make_task("copy", L=2, length=16, vocab=10)
    p = prediction(task, model, levels=[2])
    assert p["reach"] == 3
    assert p == prediction(task, {**model, "conv": 0}, [2]) == prediction(task, {**model, "conv": 1}, [2])


@pytest.mark.parametrize("spec, readout", [("attention", False), ("power2", True)])
def test_state_numbers_use_d_head(spec, readout):
    """With d_head set (4, not d_model / heads = 16): by hand, ssm with source scores keeps one state of 2 heads x 4
    (x 4 for a matrix state) plus a score a head, and conv 2 one input of d_model 32: 42 and 66 numbers; and the
    decode cache of ``GLRMixer`` with that d_head (query-key mode) holds at most the per-layer term."""
    from glrtheory.kernels.torch import GLRMixer
    from glrtheory.lab.theory import state_numbers
    ssm = {"pattern": "ssm", "d_model": 32, "n_heads": 2, "d_head": 4, "n_layers": 1, "conv": 2}
    assert state_numbers("ssm", 16, ssm) == 2 * 4 + 2 + 32 and d_state(ssm) == 8
    assert state_numbers("ssm", 16, {**ssm, "readout": True}) == 2 * 4 * 4 + 2 + 32
    n = 24
    mixer = GLRMixer(spec, 32, 2, 4, readout=readout, scores="query_key")
    cache, held = mixer.init_cache(n), []
    with torch.no_grad():
        for _ in range(n):
            mixer.step(torch.randn(1, 32), cache)
            held.append(sum(x.numel() for entry in (*cache.inputs.values(), *cache.states.values()) for x in entry))
    model = {"pattern": spec, "d_model": 32, "n_heads": 2, "d_head": 4, "n_layers": 1, "readout": readout,
             "scores": "query_key"}
    assert max(held) == state_numbers(spec, n, model) > 0


def test_dependence_length_limit_and_read_only(monkeypatch):
    """The relation is computed up to ``DEPENDENCE_MAX_N`` included (here lowered to 16: n = 16 works, 17 is refused
    with the limit named), and the cached relation is read-only (a caller writing into it would change every later
    prediction of that pattern)."""
    from glrtheory.lab import theory
    monkeypatch.setattr(theory, "DEPENDENCE_MAX_N", 16)
    reached = theory.dependence("window:3+lags:5", 16, 3, 3)
    assert reached.shape == (16, 16)
    with pytest.raises(GLRError, match=r"n <= 16, got n = 17"):
        theory.dependence("window:3+lags:5", 17, 3, 3)
    with pytest.raises(ValueError):
        reached[0, 1] = True


def test_verdict_reasons():
    """The reason of each verdict, as the results table prints it: the level solved (not its accuracy), the maximum
    over the ruled-out levels, the accuracy past the ceiling."""
    assert verdict([4, 8, 16], [1.0, 0.5, 0.25], [True, False, False], True) == (
        "confirmed", "fails where predicted (levels [8, 16], max 0.500); solves level 4 (1.000)")
    assert verdict([2, 4], [1.0, 1.0], [True, True], True) == (
        "inconclusive", "every tested level is predicted feasible (the bound is not tested)")
    assert verdict([2, 4], [0.3, 0.2], [False, False], True) == (
        "confirmed", "every level fails as predicted (max 0.300) while this mixer reaches 0.9 elsewhere and another "
                     "mixer on this task")
    assert verdict([2, 4], [0.5, 0.2], [True, False], True) == (
        "inconclusive",
        "fails where predicted (max 0.200) but no level reached 0.9 (max 0.500): training may fall short")
    assert verdict([4, 8], [1.0, 0.95], [True, False], True) == (
        "refuted", "accuracy 0.950 >= 0.9 at level 8, predicted infeasible")
    assert verdict([4, 8], [1.0, 0.6], [True, False], True, over=[(8, 0.6, 0.25, 0.057)]) == (
        "refuted", "accuracy 0.600 at level 8 passes what reach allows, 0.250 (+ 0.057 by chance)")
