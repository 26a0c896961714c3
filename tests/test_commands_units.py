"""The LM's verbs (glrtheory/lm/commands.py, ``python -m glrtheory.lm`` and ``glr lm``) and ``glr lab``
(glrtheory/cli/lab.py) as plumbing: what each verb passes to the library, prints and writes, checked against values
written out here. The heavy parts (training, evaluation, sampling, a sweep) are replaced by recorders, so every case
runs in well under a second; ``trained`` loads a real checkpoint of a tiny model."""
import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
import torch

import glrtheory.lm.commands as commands
from glrtheory.cli.lab import _csv, _shard, _sweep_data
from glrtheory.checks import parse_integer, parse_real
from glrtheory.errors import GLRError
from glrtheory.lm.__main__ import main as lm_main
from glrtheory.lm.distributed import Dist
from helpers import one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = """patterns = ["ssm", "power2"]
[model]
d_model = 8
n_layers = 1
n_heads = 1
[train]
seq_len = 16
batch = 2
micro_batch = 2
steps = 5
warmup = 1
device = "cpu"
[eval]
windows = 3
batch = 2
[log]
out_dir = "{out}"
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(out=tmp_path / "runs"))
    return path


def cases(names: str, values: list):
    """``pytest.mark.parametrize`` with ids ``case0``, ``case1``, ...: ids without spaces, which mutmut can pass on."""
    return pytest.mark.parametrize(names, values, ids=[f"case{i}" for i in range(len(values))])


def fake_distributed(monkeypatch, rank=0, world=1, device="cpu"):
    """``distributed`` replaced: it records the kind asked for and yields ``Dist(rank, world, device)``."""
    kinds = []

    @contextlib.contextmanager
    def fake(kind="auto"):
        kinds.append(kind)
        yield Dist(rank, world, torch.device(device))

    monkeypatch.setattr("glrtheory.lm.distributed.distributed", fake)
    return kinds


def lm_error(capsys, *argv) -> str:
    assert lm_main(list(argv)) == 2
    return one_line_error(capsys.readouterr().err, "glrtheory.lm")


# --- the parser ----------------------------------------------------------------------------------------------------

def test_the_lm_parser_s_defaults_and_name():
    parser = commands.build_parser()
    assert parser.prog == "python -m glrtheory.lm"
    assert commands.build_parser("glr lm").prog == "glr lm"
    g = vars(parser.parse_args(["generate", "--config", "c"]))
    assert {k: v for k, v in g.items() if k != "run"} == {
        "command": "generate", "config": "c", "pattern": None, "set": None, "prompt": "import ", "tokens": 200,
        "temperature": 0.8, "seed": 0, "contexts": "1024,4096,16384", "random_weights": False, "skip_missing": False}
    assert g["run"] is commands.run_generate
    e = vars(parser.parse_args(["eval", "--config", "c", "--set", "a.b=1", "--set", "c.d=2", "--windows", "1"]))
    assert {k: v for k, v in e.items() if k != "run"} == {
        "command": "eval", "config": "c", "pattern": None, "set": ["a.b=1", "c.d=2"], "windows": 1,
        "split": "validation"}
    assert e["run"] is commands.run_eval
    t = vars(parser.parse_args(["train", "--config", "c", "--pattern", "ssm", "--stop-at", "1", "--no-progress"]))
    assert {k: v for k, v in t.items() if k != "run"} == {
        "command": "train", "config": "c", "pattern": "ssm", "set": None, "stop_at": 1, "no_progress": True}
    assert t["run"] is commands.run_train
    c = vars(parser.parse_args(["collect", "--runs", "r", "--out", "o", "--scaling", "a", "b"]))
    assert (c["runs"], c["scaling"], c["out"], c["run"]) == ("r", ["a", "b"], "o", commands.run_collect)
    r = vars(parser.parse_args(["report", "--bundle", "b", "--dest", "d"]))
    assert (r["bundle"], r["dest"], r["run"]) == ("b", "d", commands.run_report)
    assert parser.parse_args(["generate", "--config", "c", "--tokens", "0"]).tokens == 0


@cases("argv, message", [
    ([], "the following arguments are required: COMMAND"),
    (["eval", "--config", "c", "--split", "train"],
     "argument --split: invalid choice: 'train' (choose from 'validation', 'test')"),
    (["eval", "--config", "c", "--windows", "0"], "argument --windows: expected a positive integer, got 0"),
    (["train"], "the following arguments are required: --config"),
    (["collect", "--runs", "r"], "the following arguments are required: --out"),
    (["collect", "--out", "o"], "the following arguments are required: --runs"),
    (["report", "--dest", "d"], "the following arguments are required: --bundle"),
    (["report", "--bundle", "b"], "the following arguments are required: --dest"),
])
def test_lm_argument_refusals_in_full(capsys, argv, message):
    assert lm_error(capsys, *argv) == f"glrtheory.lm: error: {message}"


def test_glr_lm_needs_a_command_and_runs_the_verbs(capsys, monkeypatch, config):
    code, _, err = run_cli(capsys, "lm")
    assert code == 2 and one_line_error(err) == "glr: error: the following arguments are required: COMMAND"
    code, _, err = run_cli(capsys, "lm", "eval", "--config", "c", "--split", "x")
    assert code == 2 and one_line_error(err) == (
        "glr: error: argument --split: invalid choice: 'x' (choose from 'validation', 'test')")
    seen = []
    monkeypatch.setattr("glrtheory.lm.train.train", lambda run, d, stop_at=None: seen.append(run.name) or
                        {"result": None})
    fake_distributed(monkeypatch)
    assert run_cli(capsys, "lm", "train", "--config", str(config))[0] == 0
    assert seen == ["ssm", "power2"]


# --- train ---------------------------------------------------------------------------------------------------------

def test_train_passes_each_run_and_prints_its_result(monkeypatch, config, capsys):
    calls = []

    def fake_train(run, d, stop_at=None):
        calls.append((run.name, run.train.steps, run.log.progress, d, stop_at))
        final = {"step": 5, "val_bpb": 7.25, "tokens_per_s": 100.5, "other": 1}
        return {"result": {"final": final} if run.name == "ssm" else None}

    monkeypatch.setattr("glrtheory.lm.train.train", fake_train)
    kinds = fake_distributed(monkeypatch)
    assert lm_main(["train", "--config", str(config)]) == 0
    cpu = Dist(0, 1, torch.device("cpu"))
    assert calls == [("ssm", 5, True, cpu, None), ("power2", 5, True, cpu, None)] and kinds == ["cpu"]
    assert capsys.readouterr().out == '{"run": "ssm", "step": 5, "val_bpb": 7.25, "tokens_per_s": 100.5}\n'
    calls.clear()
    assert lm_main(["train", "--config", str(config), "--pattern", "power2", "--set", "train.steps=3",
                    "--set", "train.device=auto", "--stop-at", "2", "--no-progress"]) == 0
    assert calls == [("power2", 3, False, cpu, 2)] and kinds == ["cpu", "auto"]
    assert capsys.readouterr().out == ""


def test_train_prints_on_the_first_process_only(monkeypatch, config, capsys):
    monkeypatch.setattr("glrtheory.lm.train.train", lambda run, d, stop_at=None: {
        "result": {"final": {"step": 5, "val_bpb": 1.0, "tokens_per_s": 2.0}}})
    fake_distributed(monkeypatch, rank=1, world=2)
    assert lm_main(["train", "--config", str(config)]) == 0
    assert capsys.readouterr().out == ""


# --- trained -------------------------------------------------------------------------------------------------------

def test_trained_loads_the_checkpoint_in_eval_mode(config):
    from glrtheory.lm import checkpoint
    from glrtheory.lm.build import build_model
    from glrtheory.lm.config import load_config

    run = load_config(config)[0]
    torch.manual_seed(3)
    saved = build_model(run.model)
    run.run_dir.mkdir(parents=True)
    checkpoint.save(run.run_dir / "checkpoint.pt", model=saved, optimizer=torch.optim.SGD(saved.parameters(), 0.1),
                    step=4, fingerprint=run.fingerprint(), config=run.to_dict())
    torch.manual_seed(4)
    model, ckpt = commands.trained(run, Dist(0, 1, torch.device("cpu")))
    assert ckpt["step"] == 4 and not model.training and type(model) is type(saved)
    got, want = model.state_dict(), saved.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    with pytest.warns(UserWarning, match="to a meta parameter"):              # moved to the process' device
        model, _ = commands.trained(run, Dist(0, 1, torch.device("meta")))
    assert {p.device.type for p in model.parameters()} == {"meta"}
    other = load_config(config, ["train.lr=0.5"])[0]
    with pytest.raises(GLRError, match="comes from another config"):
        commands.trained(other, Dist(0, 1, torch.device("cpu")))


# --- eval ----------------------------------------------------------------------------------------------------------

class FakeCorpus:
    val = "the validation bytes"
    info = {"files": 2}


def fake_eval_parts(monkeypatch, calls, step=7):
    monkeypatch.setattr(commands, "trained", lambda run, d: calls.append(("trained", d.rank)) or
                        (f"model of {run.name}", {"step": step}))
    monkeypatch.setattr("glrtheory.lm.runs.open_corpus", lambda data, d: calls.append(
        ("corpus", data.val_percent, d.rank)) or FakeCorpus())
    monkeypatch.setattr("glrtheory.lm.data.seen_in_training", lambda corpus, T, windows, split: calls.append(
        ("seen", type(corpus).__name__, T, windows, split)) or "seen mask")

    def fake_evaluate(model, val, T, windows, batch, d, split, seen):
        calls.append(("evaluate", model, val, T, windows, batch, d.rank, split, seen))
        return {"bpb": 6.5, "windows": windows}

    monkeypatch.setattr("glrtheory.lm.evaluate.evaluate", fake_evaluate)


def test_eval_scores_each_run_and_writes_its_file(monkeypatch, config, capsys, tmp_path):
    calls = []
    fake_eval_parts(monkeypatch, calls)
    kinds = fake_distributed(monkeypatch)
    assert lm_main(["eval", "--config", str(config), "--pattern", "power2"]) == 0
    assert kinds == ["cpu"]
    assert calls == [("trained", 0), ("corpus", 2.0, 0), ("seen", "FakeCorpus", 16, 3, "validation"),
                     ("evaluate", "model of power2", "the validation bytes", 16, 3, 2, 0, "validation", "seen mask")]
    want = {"run": "power2", "pattern": "power2", "step": 7, "split": "validation", "bpb": 6.5, "windows": 3,
            "corpus": {"files": 2}}
    assert json.loads(capsys.readouterr().out) == want
    assert json.loads((tmp_path / "runs" / "power2" / "eval.json").read_text()) == want
    assert not (tmp_path / "runs" / "power2" / "eval_test.json").exists()
    calls.clear()
    assert lm_main(["eval", "--config", str(config), "--split", "test", "--windows", "5"]) == 0
    assert [c for c in calls if c[0] == "seen"] == [("seen", "FakeCorpus", 16, 5, "test")] * 2
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(ln)["run"] for ln in lines] == ["ssm", "power2"]
    test = json.loads((tmp_path / "runs" / "ssm" / "eval_test.json").read_text())
    assert test == {**want, "run": "ssm", "pattern": "ssm", "split": "test", "windows": 5}
    assert lines[0] == json.dumps(test)


def test_eval_writes_and_prints_on_the_first_process_only(monkeypatch, config, capsys, tmp_path):
    calls = []
    fake_eval_parts(monkeypatch, calls)
    fake_distributed(monkeypatch, rank=1, world=2)
    assert lm_main(["eval", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "" and not list((tmp_path / "runs").glob("*/eval*.json"))
    rank = {"trained": 1, "corpus": 2, "evaluate": 6}       # where each call records the process' rank
    assert [c[rank[c[0]]] for c in calls if c[0] in rank] == [1] * 6


# --- generate ------------------------------------------------------------------------------------------------------

def fake_generate_parts(monkeypatch, calls):
    """``generate`` and ``decode_profile`` replaced by recorders; ``decode_profile`` checks it gets the model that
    ``generate`` got."""
    models, prompts = [], []

    def fake_generate(model, prompt, n, temperature, seed):
        known = None if prompt.device.type == "meta" else prompt.tolist()     # a meta tensor holds no values
        calls.append(("generate", model.training, known, prompt.dtype, n, temperature, seed))
        models.append(model)
        prompts.append(prompt)
        return torch.tensor([(known or [[97]])[0] + [0xC3, 0xA9, 0xFF, 33]])   # "é", a bad byte, "!"

    def fake_profile(model, pattern, c, device):
        calls.append(("profile", pattern, c, device.type))
        assert model is models[-1]
        return {"context": c}

    monkeypatch.setattr("glrtheory.lm.generate.generate", fake_generate)
    monkeypatch.setattr("glrtheory.lm.generate.decode_profile", fake_profile)
    return models, prompts


def test_generate_with_random_weights(monkeypatch, config, capsys, tmp_path):
    from glrtheory.lm.build import build_model

    calls, models = [], []
    fake_generate_parts(monkeypatch, calls)
    monkeypatch.setattr("glrtheory.lm.build.build_model", lambda table: models.append(build_model(table))
                        or models[-1])
    fake_distributed(monkeypatch)
    assert lm_main(["generate", "--config", str(config), "--pattern", "ssm", "--random-weights", "--seed", "5",
                    "--prompt", "hé", "--tokens", "4", "--temperature", "0.5", "--contexts", " 3, ,9 "]) == 0
    assert calls == [("generate", False, [[104, 195, 169]], torch.long, 4, 0.5, 5), ("profile", "ssm", 3, "cpu"),
                     ("profile", "ssm", 9, "cpu")]
    torch.manual_seed(5)
    reference = build_model({"pattern": "ssm", "d_model": 8, "n_layers": 1, "n_heads": 1}).state_dict()
    got = models[0].state_dict()
    assert all(torch.equal(got[k], reference[k]) for k in reference)
    want = {"run": "ssm", "pattern": "ssm", "step": 0, "weights": "random (seed 5)", "prompt": "hé",
            "sample": "héé\ufffd!", "decode": [{"context": 3}, {"context": 9}], "device": "cpu", "torch_threads": 1}
    assert json.loads(capsys.readouterr().out) == want
    assert json.loads((tmp_path / "runs" / "ssm" / "generate.json").read_text()) == want


def test_generate_draws_its_decode_bar_on_a_terminal_only(monkeypatch, config, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    fake_generate_parts(monkeypatch, [])
    fake_distributed(monkeypatch)
    argv = ["generate", "--config", str(config), "--pattern", "ssm", "--random-weights", "--contexts", "3,9"]
    assert lm_main(argv) == 0 and capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr", Terminal())
    assert lm_main(argv) == 0
    assert "ssm: decode profile:   0%|          | 0/2" in sys.stderr.getvalue()


def test_generate_from_checkpoints_and_skipping_missing_ones(monkeypatch, config, capsys, tmp_path):
    from glrtheory.lm.build import build_model

    calls = []
    fake_generate_parts(monkeypatch, calls)
    kinds = fake_distributed(monkeypatch)
    model = build_model({"pattern": "ssm", "d_model": 8, "n_layers": 1, "n_heads": 1}).eval()
    monkeypatch.setattr(commands, "trained", lambda run, d: calls.append(("trained", run.name, d.rank))
                        or (model, {"step": 11}))
    (tmp_path / "runs" / "power2").mkdir(parents=True)
    (tmp_path / "runs" / "power2" / "checkpoint.pt").write_text("")
    assert lm_main(["generate", "--config", str(config), "--skip-missing", "--contexts", ""]) == 0
    out, err = capsys.readouterr()
    assert err == "glrtheory.lm: warning: ssm has no checkpoint; skipped\n"
    assert json.loads(out) == {"run": "power2", "pattern": "power2", "step": 11, "weights": "checkpoint",
                               "prompt": "import ", "sample": "import é\ufffd!", "decode": [], "device": "cpu",
                               "torch_threads": 1}
    assert calls == [("trained", "power2", 0), ("generate", False, [list(b"import ")], torch.long, 200, 0.8, 0)]
    assert kinds == ["cpu"]
    assert not (tmp_path / "runs" / "ssm").exists()
    calls.clear()
    assert lm_main(["generate", "--config", str(config), "--contexts", "1"]) == 0      # no skipping: both run
    assert [json.loads(ln)["run"] for ln in capsys.readouterr().out.splitlines()] == ["ssm", "power2"]


@cases("argv, message", [
    (["--contexts", "0"], "--contexts must be comma-separated positive integers, got '0'"),
    (["--contexts", "4,-1"], "--contexts must be comma-separated positive integers, got '4,-1'"),
    (["--contexts", "4,x"], "--contexts must be comma-separated positive integers, got '4,x'"),
    (["--contexts", "2.5"], "--contexts must be comma-separated positive integers, got '2.5'"),
    (["--tokens", "1048577", "--contexts", "1048577"], "--tokens 1048577 is over the limit of 1048576 decoded bytes"),
    (["--contexts", "1048576,1048577,1048578"], "--contexts 1048577 is over the limit of 1048576 decoded bytes"),
    (["--temperature", "-0.5"], "--temperature must be a number >= 0, got -0.5"),
    (["--temperature", "nan"], "argument --temperature: expected a finite number, got 'nan'"),
    (["--temperature", "inf"], "argument --temperature: expected a finite number, got 'inf'"),
    (["--prompt", ""], "--prompt must hold at least one character"),
])
def test_generate_refusals_in_full(capsys, monkeypatch, config, argv, message):
    calls = []
    fake_generate_parts(monkeypatch, calls)
    fake_distributed(monkeypatch)
    assert lm_error(capsys, "generate", "--config", str(config), "--random-weights", *argv) == (
        f"glrtheory.lm: error: {message}")
    assert calls == []


def test_generate_on_the_process_device_and_greedy(monkeypatch, config, capsys):
    """On the ``meta`` device the fresh model and the prompt are put there; temperature 0 (greedy) is allowed."""
    calls = []
    models, prompts = fake_generate_parts(monkeypatch, calls)
    fake_distributed(monkeypatch, device="meta")
    assert lm_main(["generate", "--config", str(config), "--pattern", "ssm", "--random-weights", "--temperature",
                    "0", "--prompt", "a", "--tokens", "1", "--contexts", "2"]) == 0
    assert calls == [("generate", False, None, torch.long, 1, 0.0, 0), ("profile", "ssm", 2, "meta")]
    assert {p.device.type for p in models[0].parameters()} == {"meta"} and prompts[0].device.type == "meta"
    assert json.loads(capsys.readouterr().out)["sample"] == "a\u00e9\ufffd!"


def test_generate_at_the_decode_limit_and_in_one_process_only(capsys, monkeypatch, config):
    calls = []
    fake_generate_parts(monkeypatch, calls)
    fake_distributed(monkeypatch)
    assert lm_main(["generate", "--config", str(config), "--pattern", "ssm", "--random-weights", "--tokens",
                    "1048576", "--contexts", "1048576"]) == 0
    assert [c[4] for c in calls if c[0] == "generate"] == [1048576]
    assert [c[2] for c in calls if c[0] == "profile"] == [1048576]
    capsys.readouterr()
    fake_distributed(monkeypatch, world=2)
    assert lm_error(capsys, "generate", "--config", str(config), "--random-weights") == (
        "glrtheory.lm: error: generate runs in one process; start it without torchrun")


# --- collect and report --------------------------------------------------------------------------------------------

def test_collect_writes_the_bundle(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("glrtheory.lm.report.collect", lambda runs, scaling: calls.append((runs, scaling))
                        or {"runs": {}, "n": len(calls)})
    assert lm_main(["collect", "--runs", "r", "--out", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text()) == {"runs": {}, "n": 1}
    assert lm_main(["collect", "--runs", "r", "--scaling", "one", "two", "--out", str(tmp_path / "b.json")]) == 0
    assert calls == [("r", []), ("r", ["one", "two"])]
    assert json.loads((tmp_path / "b.json").read_text()) == {"runs": {}, "n": 2}


def test_report_renders_a_bundle_and_refuses_what_is_not_one(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr("glrtheory.lm.report.render", lambda bundle, dest: calls.append((bundle, dest))
                        or [Path(dest) / "val_bpb.png", Path(dest) / "tables.md"])
    good = tmp_path / "good.json"
    good.write_text('{"runs": {"ssm": 1}}')
    assert lm_main(["report", "--bundle", str(good), "--dest", "d"]) == 0
    assert calls == [({"runs": {"ssm": 1}}, "d")]
    assert capsys.readouterr().out == "d/val_bpb.png\nd/tables.md\n"
    bad = {"list.json": "[1]", "no_runs.json": '{"run": {}}', "runs_list.json": '{"runs": []}',
           "broken.json": '{"runs":\n {"ssm": }', "folder": None}
    for name, text in bad.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    (tmp_path / "folder").mkdir()
    for name, says in [("list.json", "holds a JSON list, not an object"),
                       ("no_runs.json", "has no 'runs': not a bundle of glrtheory.lm collect"),
                       ("runs_list.json", "has no 'runs': not a bundle of glrtheory.lm collect"),
                       ("broken.json", "is not JSON (Expecting value at line 2)"),
                       ("folder", "is a folder, not a JSON file"), ("missing.json", "does not exist")]:
        path = str(tmp_path / name)
        assert lm_error(capsys, "report", "--bundle", path, "--dest", "d") == (
            f"glrtheory.lm: error: bundle {path!r} {says}")
    assert len(calls) == 1


# --- glr lab: argument types and the parser ------------------------------------------------------------------------

def test_csv_lists():
    """Items stripped; an empty item anywhere (a stray comma, as ``ssm,,power2``) refused, not skipped."""
    ints, reals = _csv(parse_integer, "integers"), _csv(parse_real, "numbers")
    assert ints("1,2, 3") == [1, 2, 3] and ints(" 4 ") == [4] and ints("-2,+3") == [-2, 3]
    assert reals("0.5,1e-3, 2") == [0.5, 0.001, 2.0] and _csv(str, "specs")("ssm, power2") == ["ssm", "power2"]
    for parse, what, text in [(ints, "integers", ""), (ints, "integers", " , "), (ints, "integers", "1,x"),
                              (reals, "numbers", "a"), (ints, "integers", ",4,,"), (ints, "integers", "1_0"),
                              (ints, "integers", "\u0663"), (reals, "numbers", "nan"), (reals, "numbers", "1,inf"),
                              (reals, "numbers", "1e999")]:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            parse(text)
        assert str(info.value) == f"expected a comma-separated list of {what} with no empty item, got {text!r}"
    for text in [",", "ssm,,power2", "ssm,", " ,ssm"]:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            _csv(str, "pattern specs")(text)
        assert str(info.value) == f"expected a comma-separated list of pattern specs with no empty item, got {text!r}"


def test_shards():
    assert _shard("0/1") == (0, 1) and _shard("1/2") == (1, 2) and _shard("2/3") == (2, 3)
    for text in ["1/1", "2/2", "-1/2", "0/0", "1/0", "1", "1/2/3", "a/b", ""]:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            _shard(text)
        assert str(info.value) == f"expected I/N with 0 <= I < N, got {text!r}"


def lab_args(*argv):
    from glrtheory.cli import build_parser

    return build_parser().parse_args(["lab", *argv])


def test_the_lab_parser_s_defaults():
    a = vars(lab_args("run"))
    assert {k: v for k, v in a.items() if k != "run"} == {
        "verb": "lab", "lab_verb": "run", "config": None, "out": None, "device": None, "patterns": None,
        "scores": None, "task": None, "levels": None, "length": None, "vocab": None, "steps": None, "seeds": None,
        "lrs": None, "max_cells": None, "time_limit": None, "shard": (0, 1), "quiet": False, "no_report": False}
    a = vars(lab_args("run", "c.toml", "--patterns", "ssm,power2", "--scores", "query_key", "--levels", "2,3",
                      "--length", "8", "--vocab", "5", "--steps", "4", "--seeds", "0,1", "--lrs", "0.1,1e-2",
                      "--max-cells", "3", "--time-limit", "2.5", "--shard", "1/3", "--quiet", "--no-report",
                      "--device", "cpu", "--out", "o", "--task", "copy"))
    assert {k: v for k, v in a.items() if k != "run"} == {
        "verb": "lab", "lab_verb": "run", "config": "c.toml", "out": "o", "device": "cpu",
        "patterns": ["ssm", "power2"], "scores": "query_key", "task": "copy", "levels": [2, 3], "length": 8,
        "vocab": 5, "steps": 4, "seeds": [0, 1], "lrs": [0.1, 0.01], "max_cells": 3, "time_limit": 2.5,
        "shard": (1, 3), "quiet": True, "no_report": True}
    r = vars(lab_args("report", "f", "--command", "glr lab run x"))
    assert (r["folder"], r["command"]) == ("f", "glr lab run x")
    assert vars(lab_args("tasks"))["lab_verb"] == "tasks"


@cases("argv, message", [
    ([], "the following arguments are required: ACTION"),
    (["walk"], "argument ACTION: invalid choice: 'walk' (choose from 'run', 'report', 'tasks')"),
    (["run", "--scores", "key"], "argument --scores: invalid choice: 'key' (choose from 'source', 'query_key')"),
    (["run", "--shard", "1/1"], "argument --shard: expected I/N with 0 <= I < N, got '1/1'"),
    (["run", "--levels", "x"], "argument --levels: "
     "expected a comma-separated list of integers with no empty item, got 'x'"),
    (["run", "--seeds", "1.5"], "argument --seeds: "
     "expected a comma-separated list of integers with no empty item, got '1.5'"),
    (["run", "--lrs", "fast"], "argument --lrs: "
     "expected a comma-separated list of numbers with no empty item, got 'fast'"),
    (["run", "--patterns", ","], "argument --patterns: "
     "expected a comma-separated list of pattern specs with no empty item, got ','"),
    (["run", "--length", "0"], "argument --length: expected a positive integer, got 0"),
    (["run", "--vocab", "0"], "argument --vocab: expected a positive integer, got 0"),
    (["run", "--steps", "0"], "argument --steps: expected a positive integer, got 0"),
    (["run", "--max-cells", "0"], "argument --max-cells: expected a positive integer, got 0"),
    (["run", "--time-limit", "soon"], "argument --time-limit: expected a positive number, got 'soon'"),
    (["run", "--time-limit", "nan"], "argument --time-limit: expected a positive number, got 'nan'"),
    (["run", "--time-limit", "inf"], "argument --time-limit: expected a positive number, got 'inf'"),
    (["run", "--time-limit", "0"], "argument --time-limit: expected a positive number, got '0'"),
    (["report"], "the following arguments are required: folder"),
])
def test_lab_argument_refusals_in_full(capsys, argv, message):
    code, _, err = run_cli(capsys, "lab", *argv)
    assert code == 2 and one_line_error(err) == f"glr: error: {message}"


# --- glr lab run: the sweep it builds ------------------------------------------------------------------------------

def test_the_sweep_of_a_config_and_the_flags(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('mixers = ["ssm"]\n[run]\nsteps = 9\nbatch = 4\n[tasks.copy]\nL = [2]\n')
    assert _sweep_data(lab_args("run", str(path))) == {"mixers": ["ssm"], "run": {"steps": 9, "batch": 4},
                                                       "tasks": {"copy": {"L": [2]}}}
    got = _sweep_data(lab_args("run", str(path), "--device", "cpu", "--steps", "3", "--seeds", "1,2", "--lrs", "0.5",
                               "--patterns", "power2,window:2"))
    assert got == {"mixers": [{"pattern": "power2"}, {"pattern": "window:2"}],
                   "run": {"steps": 3, "batch": 4, "device": "cpu", "seeds": [1, 2], "lrs": [0.5]},
                   "tasks": {"copy": {"L": [2]}}}
    got = _sweep_data(lab_args("run", "--task", "recall", "--levels", "4,8", "--patterns", "ssm", "--scores",
                               "query_key", "--vocab", "6"))
    assert got == {"run": {}, "mixers": [{"pattern": "ssm", "scores": "query_key"}], "tasks": {"recall": {"D": [4, 8],
                                                                                                          "vocab": 6}}}
    got = _sweep_data(lab_args("run", str(path), "--task", "modcount", "--levels", "2", "--length", "5"))
    assert got["tasks"] == {"modcount": {"k": [2], "length": 5}} and got["mixers"] == ["ssm"]
    path.write_text('mixers = ["ssm"]\nrun = 3\n[tasks.copy]\nL = [2]\n')
    assert _sweep_data(lab_args("run", str(path), "--steps", "3"))["run"] == 3       # refused later, by name


@cases("argv, message", [
    (["--task", "sort", "--levels", "2"], "unknown task 'sort'; known: mqar, copy, recall, modcount"),
    (["--task", "copy"], "--task needs --levels (values of L)"),
    (["--task", "mqar", "--length", "9"], "--task needs --levels (values of K)"),
    (["--patterns", "ssm"], "give a sweep config file, or --task with --levels and --patterns"),
    (["CONFIG", "--vocab", "3"], "--vocab set the task of --task, which is not given"),
    (["CONFIG", "--levels", "3", "--vocab", "3"], "--levels, --vocab set the task of --task, which is not given"),
    (["CONFIG", "--scores", "source"], "--scores sets the score form of --patterns, which is not given"),
    (["--task", "copy", "--levels", "2", "--scores", "query_key"],
     "--scores sets the score form of --patterns, which is not given"),
])
def test_the_sweep_refusals_in_full(tmp_path, argv, message):
    path = tmp_path / "s.toml"
    path.write_text('mixers = ["ssm"]\n[tasks.copy]\nL = [2]\n')
    with pytest.raises(GLRError) as info:
        _sweep_data(lab_args("run", *[str(path) if a == "CONFIG" else a for a in argv]))
    assert str(info.value) == message


# --- glr lab run: what it runs, writes and prints ------------------------------------------------------------------

SWEEP = ["--task", "modcount", "--levels", "2,3", "--length", "4", "--patterns", "ssm,window:2", "--steps", "1",
         "--device", "cpu"]


def fake_sweep(monkeypatch, rows=None, fail=0):
    """``run_sweep`` replaced: records its arguments, appends ``fail`` failures to errors.jsonl and returns
    ``rows`` (every cell by default); ``write_results`` records its arguments."""
    calls = []

    def run_sweep(sweep, out, device, progress, max_cells, shard, time_limit):
        calls.append(("run_sweep", out, device, progress, max_cells, shard, time_limit))
        with open(Path(out) / "errors.jsonl", "a") as f:
            for i in range(fail):
                f.write(json.dumps({"key": f"cell {i}", "error": f"reason {i}"}) + "\n")
        return [{"key": c.key} for c in sweep.cells()] if rows is None else rows

    def write_results(sweep, rows, out, command, machine):
        assert len(sweep.cells()) == len(rows)
        calls.append(("write_results", len(rows), out, command, sorted(machine)))

    monkeypatch.setattr("glrtheory.lab.run_sweep", run_sweep)
    monkeypatch.setattr("glrtheory.lab.write_results", write_results)
    return calls


def test_lab_run_writes_the_sweep_and_reports(monkeypatch, tmp_path, capsys):
    calls = fake_sweep(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["glr", "lab", "run", *SWEEP, "--out", "a b"])
    code, out, err = run_cli(capsys, "lab", "run", *SWEEP)
    assert (code, err) == (0, "")
    folder = Path("lab_results/modcount")
    assert out == f"4/4 cells; wrote {folder / 'results.json'}, table.md, accuracy.png, cost.png\n"
    keys = ["cpus", "date", "device", "load_average", "name", "platform", "torch"]
    assert calls == [("run_sweep", folder, "cpu", True, None, (0, 1), None),
                     ("write_results", 4, folder, "glr lab run " + " ".join(SWEEP) + " --out 'a b'", keys)]
    assert json.loads((folder / "sweep.json").read_text()) == {
        "run": {"device": "cpu", "steps": 1}, "mixers": [{"pattern": "ssm"}, {"pattern": "window:2"}],
        "tasks": {"modcount": {"k": [2, 3], "length": 4}}}
    machine = json.loads((folder / "machine.json").read_text())
    assert sorted(machine) == keys and machine["device"] == "cpu"
    calls.clear()
    monkeypatch.setattr(sys, "argv", ["python", "run", "x"])         # glr not called as ``glr lab``
    config = tmp_path / "conf.toml"
    config.write_text('mixers = ["ssm"]\n[run]\nsteps = 1\ndevice = "cpu"\n[tasks.modcount]\nk = [2]\nlength = 4\n')
    assert run_cli(capsys, "lab", "run", str(config), "--quiet", "--max-cells", "2", "--shard", "1/2",
                   "--time-limit", "30")[0] == 0
    assert calls == [("run_sweep", Path("lab_results/conf"), "cpu", False, 2, (1, 2), 30.0),
                     ("write_results", 1, Path("lab_results/conf"), "glr lab run x", keys)]


@cases("fail, warning", [(1, "1 cell failed"), (2, "2 cells failed")])
def test_lab_run_warns_of_cells_that_failed_and_can_skip_the_report(monkeypatch, tmp_path, capsys, fail, warning):
    calls = fake_sweep(monkeypatch, fail=fail)
    out = tmp_path / "o"
    out.mkdir()
    (out / "errors.jsonl").write_text('{"key": "old", "error": "before"}\n')
    code, text, err = run_cli(capsys, "lab", "run", *SWEEP, "--out", str(out), "--no-report")
    assert code == 0 and text == f"4/4 cells done in {out}\n"
    assert err == f"glr: warning: {warning} in this run; the reasons are in {str(out / 'errors.jsonl')!r}\n"
    assert [c[0] for c in calls] == ["run_sweep"]


def test_lab_run_with_no_finished_cell(monkeypatch, tmp_path, capsys):
    fake_sweep(monkeypatch, rows=[], fail=2)
    out = tmp_path / "o"
    code, _, err = run_cli(capsys, "lab", "run", *SWEEP, "--out", str(out))
    assert code == 2 and err == (f"glr: error: no cell of {str(out)!r} has finished, so there is nothing to report "
                                 "(the last failure: reason 1)\n")
    fake_sweep(monkeypatch, rows=[])
    (out / "errors.jsonl").unlink()
    code, _, err = run_cli(capsys, "lab", "run", *SWEEP, "--out", str(out))
    assert code == 2 and err == f"glr: error: no cell of {str(out)!r} has finished, so there is nothing to report\n"
    code, text, err = run_cli(capsys, "lab", "run", *SWEEP, "--out", str(out), "--no-report")
    assert (code, text, err) == (0, f"0/4 cells done in {out}\n", "")


def test_lab_run_into_a_folder_of_another_sweep(monkeypatch, tmp_path, capsys):
    calls = fake_sweep(monkeypatch)
    out = tmp_path / "o"
    assert run_cli(capsys, "lab", "run", *SWEEP, "--out", str(out))[0] == 0
    assert run_cli(capsys, "lab", "run", *SWEEP, "--steps", "1", "--seeds", "3", "--out", str(out))[0] == 0
    code, _, err = run_cli(capsys, "lab", "run", *SWEEP, "--steps", "2", "--out", str(out))
    assert code == 2 and err == (f"glr: error: {str(out)!r} holds cells trained otherwise (run.steps: 1 -> 2), which "
                                 "this sweep would take for its own: give another --out\n")
    code, _, err = run_cli(capsys, "lab", "run", *SWEEP, "--steps", "2", "--lrs", "0.5", "--out", str(out))
    assert code == 2 and err == (f"glr: error: {str(out)!r} holds cells trained otherwise (run.steps: 1 -> 2; "
                                 "run.lrs: [0.001, 0.003] -> [0.5]), which this sweep would take for its own: give "
                                 "another --out\n")
    assert [c[0] for c in calls] == ["run_sweep", "write_results"] * 2


# --- glr lab report and tasks --------------------------------------------------------------------------------------

def test_lab_report_rebuilds_from_the_folder(monkeypatch, tmp_path, capsys):
    calls = []

    def write_results(sweep, rows, out, command, machine):
        calls.append(([r["key"] for r in rows], out, command, machine))
        (Path(out) / "table.md").write_text("| the table |\n")

    monkeypatch.setattr("glrtheory.lab.write_results", write_results)
    from glrtheory.lab import sweep_from_dict
    from glrtheory.lab.runner import ROW_KEYS

    data = {"run": {"device": "cpu", "seeds": [0]}, "mixers": ["ssm"], "tasks": {"modcount": {"k": [2, 3]}}}
    keys = [c.key for c in sweep_from_dict(data).cells()]
    (tmp_path / "sweep.json").write_text(json.dumps(data))
    code, _, err = run_cli(capsys, "lab", "report", str(tmp_path))
    assert code == 2 and err == f"glr: error: {str(tmp_path)!r} holds no finished cells\n"
    def row(key):       # a finished cell's row holds ROW_KEYS (write_results, replaced here, reads no value)
        return json.dumps({k: key if k == "key" else 0 for k in ROW_KEYS}) + "\n"

    (tmp_path / "cells.jsonl").write_text(row(keys[1]) + row("not of this sweep"))
    assert run_cli(capsys, "lab", "report", str(tmp_path)) == (0, "| the table |\n", "")
    assert calls == [([keys[1]], tmp_path, "", None)]
    (tmp_path / "cells-1of2.jsonl").write_text(row(keys[0]))
    (tmp_path / "results.json").write_text('{"command": "glr lab run old", "machine": {"old": 1}}')
    assert run_cli(capsys, "lab", "report", str(tmp_path))[0] == 0
    (tmp_path / "machine.json").write_text('{"new": 2}')
    assert run_cli(capsys, "lab", "report", str(tmp_path), "--command", "mine")[0] == 0
    assert calls[1:] == [(keys, tmp_path, "glr lab run old", {"old": 1}), (keys, tmp_path, "mine", {"new": 2})]
    code, _, err = run_cli(capsys, "lab", "report", str(tmp_path / "none"))
    assert code == 2 and err == f"glr: error: {str(tmp_path / 'none')!r} is not a lab output folder (no sweep.json)\n"


def test_lab_tasks_lists_every_task(capsys):
    assert run_cli(capsys, "lab", "tasks") == (0, (
        "mqar      swept: K  Multi-query associative recall (MQAR), as in zoology (Arora et al., 2023).\n"
        "copy      swept: L  Copy: reproduce a random string after a delay.\n"
        "recall    swept: D  Long-range recall at distance D: bring back one marked token after D steps of noise.\n"
        "modcount  swept: k  Counting mod k (parity for k = 2): a state-tracking task, the negative control.\n"), "")


# --- python -m glrtheory.lm's exit ---------------------------------------------------------------------------------

class Stream:
    def __init__(self, flushed, name):
        self.flushed, self.name = flushed, name

    def write(self, text):
        return len(text)

    def flush(self):
        self.flushed.append(self.name)


@pytest.mark.parametrize("world, skips", [(None, False), ("1", False), ("2", True), ("3", True)])
def test_exit_now_skips_the_teardown_under_torchrun_only(monkeypatch, world, skips):
    import glrtheory.lm.__main__ as entry

    events = []
    monkeypatch.setattr(entry.os, "_exit", lambda code: events.append(("_exit", code)))
    monkeypatch.setattr(entry.sys, "stdout", Stream(events, "stdout"))
    monkeypatch.setattr(entry.sys, "stderr", Stream(events, "stderr"))
    if world is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(SystemExit) as info:       # after the fake os._exit, the code goes on to sys.exit
        entry.exit_now(3)
    assert info.value.code == 3 and events == (["stdout", "stderr", ("_exit", 3)] if skips else [])
