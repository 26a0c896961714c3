"""glrtheory.lm without training: corpus, split, batches, config, checkpoints, schedule, errors."""
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from glrtheory.cli import main as glr_main
from glrtheory.errors import GLRError
from glrtheory.lm import checkpoint
from glrtheory.lm.__main__ import main as lm_main
from glrtheory.lm.config import TrainConfig, apply_overrides, load_config, parse_config, select
from glrtheory.lm.data import (Corpus, batch_offsets, corpus_files, default_cache_dir, eval_offsets, in_training,
                               is_validation, load_corpus, seen_in_training, stdlib_root, windows)
from glrtheory.lm.distributed import distributed
from glrtheory.lm.evaluate import bucket_means
from glrtheory.lm.report import tables
from glrtheory.lm.train import learning_rate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_corpus(tmp_path, rng):
    """A folder of 12 random .py files (and things the corpus must skip)."""
    root = tmp_path / "lib"
    for i in range(12):
        sub = root / f"pkg{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"m{i}.py").write_bytes(
            rng.integers(0, 256, size=int(rng.integers(100, 400))).astype(np.uint8).tobytes())
    (root / "site-packages" / "x").mkdir(parents=True)
    (root / "site-packages" / "x" / "skip.py").write_bytes(b"skip")
    (root / "pkg0" / "notes.txt").write_bytes(b"not python")
    return root


def test_corpus_is_the_sorted_concatenation_split_by_path_hash(small_corpus, tmp_path):
    corpus = load_corpus(small_corpus, tmp_path / "cache", val_percent=40)
    files = sorted((p for p in small_corpus.rglob("*.py") if "site-packages" not in str(p)),
                   key=lambda p: str(p.relative_to(small_corpus)))
    val = [p for p in files
           if int(hashlib.sha256(p.relative_to(small_corpus).as_posix().encode()).hexdigest()[:8], 16) % 100 < 40]
    train = [p for p in files if p not in val]
    assert len(files) == 12 and 0 < len(val) < 12
    assert corpus.train.dtype == np.uint8 and isinstance(corpus.train, np.memmap)
    assert corpus.train.tobytes() == b"".join(p.read_bytes() for p in train)
    assert corpus.val.tobytes() == b"".join(p.read_bytes() for p in val)
    assert corpus.info["files"] == 12 and corpus.info["val_files"] == len(val)
    assert corpus.info["sha256"] == hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def test_corpus_cache_is_reused_and_follows_file_changes(small_corpus, tmp_path):
    load_corpus(small_corpus, tmp_path / "cache", val_percent=40)
    (info,) = (tmp_path / "cache").glob("*/info.json")
    before = info.stat().st_mtime_ns
    load_corpus(small_corpus, tmp_path / "cache", val_percent=40)
    assert info.stat().st_mtime_ns == before and len(list((tmp_path / "cache").iterdir())) == 1
    (small_corpus / "pkg1" / "new.py").write_bytes(b"x = 1\n")
    again = load_corpus(small_corpus, tmp_path / "cache", val_percent=40)
    assert again.info["files"] == 13 and len(list((tmp_path / "cache").iterdir())) == 2
    assert not list((tmp_path / "cache").glob("*.*"))  # no temporary build folder left


def test_stdlib_is_the_default_root():
    assert (stdlib_root() / "os.py").is_file()


def test_missing_or_empty_corpus_is_an_error(tmp_path):
    with pytest.raises(GLRError, match="does not exist"):
        load_corpus(tmp_path / "nowhere", tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GLRError, match="no .py files"):
        load_corpus(tmp_path / "empty", tmp_path / "cache")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.py").write_text("a = 1\n")
    with pytest.raises(GLRError, match="split .* is empty"):
        load_corpus(tmp_path / "one", tmp_path / "cache", val_percent=1)


def test_batches_are_windows_at_seeded_offsets(rng):
    data = rng.integers(0, 256, size=1000).astype(np.uint8)
    off = batch_offsets(len(data), 63, seed=3, step=5, rows=200)
    assert np.array_equal(off, batch_offsets(len(data), 63, seed=3, step=5, rows=200))
    assert not np.array_equal(off, batch_offsets(len(data), 63, seed=3, step=6, rows=200))
    assert off.min() >= 0 and off.max() <= len(data) - 64
    w = windows(data, off[:3], 63)
    for row, o in zip(w, off[:3]):
        assert row.tolist() == data[o:o + 64].tolist()
    assert eval_offsets(1000, 63, 5).tolist() == [0, 234, 468, 702, 936]
    assert eval_offsets(1000, 63, 5, "test").tolist() == [117, 351, 585, 819]


def test_test_windows_share_no_byte_with_validation_windows():
    """The test windows (halfway between the validation windows) and the validation windows, each seq_len + 1
    bytes, share no byte; where the gap is under two windows it is an error, and exactly two windows is enough."""
    for n_bytes, seq_len, count in ((1000, 63, 5), (154697, 256, 32), (154697, 1024, 64), (576, 63, 5)):
        val, test = (eval_offsets(n_bytes, seq_len, count, s) for s in ("validation", "test"))
        covered = [set(range(o, o + seq_len + 1)) for o in (*val, *test)]
        assert len(test) == count - 1 and len(set().union(*covered)) == sum(map(len, covered))
        assert max(test) + seq_len + 1 <= n_bytes
    with pytest.raises(GLRError, match="no room between them"):
        eval_offsets(575, 63, 5, "test")
    with pytest.raises(GLRError, match="unknown split"):
        eval_offsets(1000, 63, 5, "train")
    assert len(eval_offsets(1000, 63, 15)) == 15                     # 15 x 64 = 960 bytes fit in 1000, 16 do not
    for count in (16, 0, 10**8):
        with pytest.raises(GLRError, match="a split of 1000 bytes holds 1 to 15 without overlap"):
            eval_offsets(1000, 63, count)
    with pytest.raises(GLRError, match="shorter"):
        batch_offsets(10, 10, 0, 0, 1)


def test_bucket_means():
    bits = np.arange(1024, dtype=float)
    assert bucket_means(bits) == {"0-63": 31.5, "64-255": 159.5, "256-1023": 639.5}
    assert bucket_means(bits[:100]) == {"0-63": 31.5, "64-99": 81.5}


def test_learning_rate_warmup_then_cosine():
    t = TrainConfig(lr=1.0, min_lr=0.1, warmup=10, steps=110)
    assert learning_rate(0, t) == pytest.approx(0.1) and learning_rate(9, t) == pytest.approx(1.0)
    assert learning_rate(10, t) == pytest.approx(1.0)
    assert learning_rate(60, t) == pytest.approx(0.55)          # half-way: (1 + 0.1) / 2
    assert learning_rate(110, t) == pytest.approx(0.1)
    assert learning_rate(35, t) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)


def test_configs_in_the_repository_parse():
    tiny = load_config(ROOT / "configs/lm/tiny.toml")
    big = load_config(ROOT / "configs/lm/h200x2.toml")
    assert [r.model["pattern"] for r in big] == ["ssm", "power2", "fenwick", "blocks", "window:128", "attention"]
    assert big[0].train.seq_len == 1024 and tiny[0].train.device == "cpu"
    assert select(big, "window:128")[0].name == "window-128"


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(GLRError, match="unknown key.*lr_max.*\\[train\\]"):
        parse_config({"model": {"pattern": "ssm"}, "train": {"lr_max": 1.0}})
    with pytest.raises(GLRError, match="unknown key.*bogus.*top"):
        parse_config({"model": {"pattern": "ssm"}, "bogus": 1})
    with pytest.raises(GLRError, match="steps must be int"):
        parse_config({"model": {"pattern": "ssm"}, "train": {"steps": 1.5}})
    with pytest.raises(GLRError, match="multiple of micro_batch"):
        parse_config({"model": {"pattern": "ssm"}, "train": {"batch": 6, "micro_batch": 4}})
    with pytest.raises(GLRError, match="not in patterns"):
        parse_config({"patterns": ["ssm"], "overrides": {"power2": {"d_model": 8}}})
    with pytest.raises(GLRError, match="does not exist"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(GLRError, match="not in the config"):
        select(parse_config({"model": {"pattern": "ssm"}}), "fenwick")


def test_set_overrides_values_and_keeps_checking_keys():
    raw = {"model": {"pattern": "ssm"}}
    (run,) = parse_config(apply_overrides(raw, ["train.steps=7", "train.warmup=2", "model.pattern=fenwick",
                                                'log.out_dir="x/y"']))
    assert run.train.steps == 7 and run.model["pattern"] == "fenwick" and run.log.out_dir == "x/y"
    assert raw == {"model": {"pattern": "ssm"}}
    with pytest.raises(GLRError, match="unknown key.*stepz"):
        parse_config(apply_overrides(raw, ["train.stepz=7"]))
    with pytest.raises(GLRError, match="section.key=value"):
        apply_overrides(raw, ["train.steps"])


def test_tables_report_efficiency_against_one_process():
    line = {"pattern": "ssm", "step": 4, "tokens": 4096, "params": 10, "forward_flops_per_token": 5.0,
            "tokens_per_s": 100.0, "val_bpb": 3.0, "val_bpb_by_position": {"0-63": 3.5}}
    bundle = {"runs": {"ssm": {"log": [line]}}, "scaling": [
        {"run": "ssm", "world": 1, "tokens_per_s": 1000.0}, {"run": "ssm", "world": 2, "tokens_per_s": 1500.0}]}
    text = tables(bundle)
    assert "| ssm | 4 (stopped) | 4,096 |" in text and "| 3.000 | - | 0-63: 3.500 |" in text
    assert "| ssm | 2 | 1,500 | 0.75 |" in text
    bundle["runs"]["ssm"]["log"][0].update(val_bpb_unseen=3.25, val_windows_unseen=43)     # logged since 2026-12-05
    assert "| 3.000 | 3.250 (43) | 0-63: 3.500 |" in tables(bundle)



def test_the_committed_tables_are_the_bundles():
    """``benchmarks/results/lm/tables.md`` is what ``glr lm report`` writes from the committed bundle today (it was
    left without the unseen column when ``tables`` gained it)."""
    bundle = json.loads((ROOT / "benchmarks/results/lm/lm_h200x2.json").read_text())
    assert (ROOT / "benchmarks/results/lm/tables.md").read_text() == tables(bundle)

def test_fingerprint_covers_model_data_and_optimization_only():
    base = {"patterns": ["ssm", "power2"], "overrides": {"power2": {"d_model": 8}}, "model": {"d_model": 16}}
    ssm, power2 = parse_config(base)
    assert power2.model == {"d_model": 8, "pattern": "power2"} and ssm.model["d_model"] == 16
    other = parse_config({**base, "log": {"out_dir": "elsewhere"}, "eval": {"every": 3}})[0]
    assert other.fingerprint() == ssm.fingerprint() != power2.fingerprint()
    assert parse_config({**base, "train": {"lr": 0.5}})[0].fingerprint() != ssm.fingerprint()


def test_checkpoint_is_atomic_and_refuses_another_config(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    path = tmp_path / "ckpt.pt"
    checkpoint.save(path, model=model, optimizer=opt, step=7, fingerprint="aaa", config={})
    assert checkpoint.read(path, "aaa")["step"] == 7
    with pytest.raises(GLRError, match="another config"):
        checkpoint.read(path, "bbb")

    def broken(obj, f):
        f.write(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        checkpoint.save(path, model=model, optimizer=opt, step=8, fingerprint="aaa", config={})
    monkeypatch.undo()
    assert checkpoint.read(path, "aaa")["step"] == 7 and sorted(os.listdir(tmp_path)) == ["ckpt.pt"]
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(GLRError, match="cannot be read"):
        checkpoint.read(tmp_path / "junk.pt")


def test_rng_states_round_trip():
    states = checkpoint.rng_states()
    a = (np.random.rand(), torch.rand(3))
    checkpoint.set_rng_states(states)
    b = (np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_more_processes_than_devices_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "64")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with pytest.raises(GLRError, match="64 processes per node but only 2 CPU"):
        with distributed("cpu"):
            pass
    if not torch.cuda.is_available():
        with pytest.raises(GLRError, match=r"device .cuda. is not available \(this machine has 0 CUDA device"):
            with distributed("cuda"):
                pass


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[model]\npattern = "ssm"\n[log]\nout_dir = "{tmp_path / "out"}"\n[train]\nwarmpu = 3\n')
    assert glr_main(["lm", "train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warmpu" in err, err
    assert lm_main(["train", "--config", str(tmp_path / "no.toml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    nowhere = tmp_path / "nowhere"
    bad.write_text(f'[model]\npattern = "ssm"\n[log]\nout_dir = "{tmp_path / "out"}"\n[data]\nroot = "{nowhere}"\n')
    assert lm_main(["train", "--config", str(bad)]) == 2
    assert "corpus folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_resume_drops_log_lines_after_the_checkpoint_and_cut_lines(tmp_path):
    from glrtheory.lm.train import _keep_log_until

    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 2}\n{"step": 4}\n{"step": 6, "val')
    _keep_log_until(log, 4)
    assert log.read_text() == '{"step": 2}\n{"step": 4}\n'


# Mutation run 9 (docs/mutation.md): the configuration and the corpus against hand-worked values and committed results.

def refused(raw: dict, *source: str) -> str:
    """The message of the GLRError that parse_config raises on ``raw`` (and ``source``, if given)."""
    with pytest.raises(GLRError) as info:
        parse_config(raw, *source)
    return str(info.value)


@pytest.mark.parametrize("lr, seed, sets, tag", [("1e-3", 0, [], ""), ("3e-2", 2, ["model.lag_bias=true"], "_lagbias"),
                                                 ("1e-2", 1, ["model.timescales=[4,256]"], "_ts4-256")])
def test_committed_cpu_results_are_reproduced_by_their_config_and_sets(lr, seed, sets, tag):
    """configs/lm/cpu_seeds.toml with the ``--set`` values of cpu_seeds.sh (unquoted strings, min_lr as Python prints
    lr / 10) gives, for every pattern, the config and the fingerprint recorded in the committed bundle: defaults left
    out of the file (betas, weight_decay, clip, data root) included."""
    bundle = json.loads((ROOT / f"benchmarks/results/lm/lm_cpu{tag}_lr{lr}_seed{seed}.json").read_text())
    runs = load_config(ROOT / "configs/lm/cpu_seeds.toml", [
        f"train.lr={lr}", f"train.min_lr={float(lr) / 10}", f"train.seed={seed}",
        f"log.out_dir=runs/lm/cpu_seeds{tag}/lr{lr}/seed{seed}", *sets, "log.progress=false"])
    assert [r.name for r in runs] == ["ssm", "power2", "fenwick"]
    for run in runs:
        result = bundle["runs"][run.name]["result"]
        assert run.to_dict() == result["config"] and run.fingerprint() == result["fingerprint"]


def test_fingerprint_ignores_key_order_and_the_cache_folder():
    """Two [model] tables with the same keys in another order, or another cache_dir, give one fingerprint (a 16-digit
    hex string); another data root or seed gives another."""
    a = parse_config({"model": {"pattern": "ssm", "d_model": 8, "n_layers": 2}, "data": {"cache_dir": "x"}})[0]
    b = parse_config({"model": {"n_layers": 2, "d_model": 8, "pattern": "ssm"}, "train": {"betas": [0.9, 0.95]}})[0]
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16 and int(a.fingerprint(), 16) >= 0
    assert a.identity() == {"model": {"pattern": "ssm", "d_model": 8, "n_layers": 2},
                            "data": {"root": "", "val_percent": 2.0}, "train": a.to_dict()["train"]}
    for other in ({"data": {"root": "lib"}}, {"train": {"seed": 1}}):
        assert parse_config({"model": {"pattern": "ssm"}, **other})[0].fingerprint() != \
            parse_config({"model": {"pattern": "ssm"}})[0].fingerprint()


def test_config_defaults():
    """A config with only a pattern: the defaults of the dataclasses' comments, in ``to_dict``, and its folder."""
    (run,) = parse_config({"model": {"pattern": "ssm"}})
    assert run.to_dict() == {
        "name": "ssm", "model": {"pattern": "ssm"},
        "data": {"root": "", "cache_dir": "", "val_percent": 2.0},
        "train": {"seq_len": 256, "batch": 16, "micro_batch": 16, "steps": 100, "lr": 1e-3, "min_lr": 1e-4,
                  "warmup": 10, "weight_decay": 0.1, "betas": [0.9, 0.95], "clip": 1.0, "seed": 0, "device": "auto"},
        "eval": {"every": 50, "windows": 32, "batch": 16},
        "log": {"out_dir": "runs/lm", "checkpoint_every": 50, "progress": True}}
    assert run.run_dir == Path("runs/lm/ssm")


def test_config_values_at_their_bounds_are_accepted():
    """Each bound that _check documents, met exactly, passes: sizes of 1, warmup 0 and = steps, min_lr 0 and = lr,
    a forward of exactly 2^20 bytes and a step of 2^26, seed 0, weight decay 0, clip inf; an int where a float is
    wanted becomes one."""
    ok = [{"train": {"seq_len": 1, "batch": 1, "micro_batch": 1, "steps": 1, "warmup": 1, "min_lr": 1e-3},
           "eval": {"every": 1, "windows": 1, "batch": 1}, "log": {"checkpoint_every": 1, "progress": False}},
          {"train": {"warmup": 0, "min_lr": 0.0, "seed": 0, "weight_decay": 0.0, "clip": math.inf, "betas": [0, 0.5]}},
          {"train": {"seq_len": 2 ** 16, "micro_batch": 16, "batch": 32, "device": "cuda"}, "eval": {"batch": 16}},
          {"train": {"seq_len": 2 ** 20, "micro_batch": 1, "device": "cpu"}, "eval": {"batch": 1}},
          {"train": {"seq_len": 2 ** 10, "micro_batch": 2 ** 10, "batch": 2 ** 16}, "eval": {"batch": 1}}]
    for table in ok:
        (run,) = parse_config({"model": {"pattern": "ssm"}, **table})
        for section, values in table.items():
            assert {k: getattr(getattr(run, section), k) for k in values} == values
    (run,) = parse_config({"model": {"pattern": "ssm"}, "train": {"lr": 1, "clip": 2}, "data": {"val_percent": 5}})
    assert (run.train.lr, run.train.clip, run.data.val_percent) == (1.0, 2.0, 5.0)
    assert type(run.train.lr) is type(run.train.clip) is type(run.data.val_percent) is float


@pytest.mark.parametrize("table, message", [
    ({"train": 3}, "config [train] must be a table, got 3"),
    ({"train": {"steps": True}}, "config [train] steps must be int, got True"),
    ({"train": {"lr": True}}, "config [train] lr must be float, got True"),
    ({"log": {"progress": 1}}, "config [log] progress must be bool, got 1"),
    ({"train": {"seq_len": 0}}, "config [train] seq_len must be >= 1, got 0"),
    ({"train": {"steps": -2}}, "config [train] steps must be >= 1, got -2"),
    ({"train": {"seq_len": 2 ** 10, "micro_batch": 2 ** 10, "batch": 2 ** 16 + 2 ** 10}, "eval": {"batch": 1}},
     "config [train] batch x seq_len = 66560 x 1024 bytes a step is over the limit 67108864"),
    ({"train": {"seq_len": 2 ** 16 + 1, "micro_batch": 16, "batch": 16}, "eval": {"batch": 1}},
     "config [train] micro_batch x [train] seq_len = 16 x 65537 bytes in one forward is over the limit 1048576"),
    ({"train": {"seq_len": 2 ** 19, "micro_batch": 1}, "eval": {"batch": 3}},
     "config [eval] batch x [train] seq_len = 3 x 524288 bytes in one forward is over the limit 1048576"),
    ({"train": {"warmup": 101}}, "config [train] needs 0 <= warmup <= steps and 0 <= min_lr <= lr, lr > 0 finite"),
    ({"train": {"warmup": -1}}, "config [train] needs 0 <= warmup <= steps and 0 <= min_lr <= lr, lr > 0 finite"),
    ({"train": {"lr": 0.0, "min_lr": 0.0}}, "config [train] needs 0 <= warmup"),
    ({"train": {"lr": math.inf}}, "config [train] needs 0 <= warmup"),
    ({"train": {"lr": math.nan}}, "config [train] needs 0 <= warmup"),
    ({"train": {"min_lr": 2e-3}}, "config [train] needs 0 <= warmup"),
    ({"train": {"min_lr": -1e-4}}, "config [train] needs 0 <= warmup"),
    ({"train": {"seed": -1}}, "config [train] seed must be >= 0, got -1"),
    ({"train": {"weight_decay": -0.1}}, "config [train] weight_decay must be finite and >= 0, got -0.1"),
    ({"train": {"weight_decay": math.nan}}, "config [train] weight_decay must be finite and >= 0, got nan"),
    ({"train": {"weight_decay": math.inf}}, "config [train] weight_decay must be finite and >= 0, got inf"),
    ({"train": {"clip": 0.0}}, "config [train] clip must be > 0 (inf: no clipping), got 0.0"),
    ({"train": {"clip": math.nan}}, "config [train] clip must be > 0 (inf: no clipping), got nan"),
    ({"train": {"betas": [0.9]}}, "config [train] betas must be two numbers in [0, 1), got [0.9]"),
    ({"train": {"betas": [1.0, 0.9]}}, "config [train] betas must be two numbers in [0, 1), got [1.0, 0.9]"),
    ({"train": {"betas": ["a", "b"]}}, "config [train] betas must be two numbers in [0, 1), got ['a', 'b']"),
    ({"train": {"device": "CUDA"}}, "config [train] device must be auto, cpu or cuda, got 'CUDA'"),
    ({"eval": {"every": 0}}, "config [eval] every, windows, batch and [log] checkpoint_every must be >= 1"),
    ({"eval": {"windows": 0}}, "config [eval] every, windows, batch and [log] checkpoint_every must be >= 1"),
    ({"eval": {"batch": 0}}, "config [eval] every, windows, batch and [log] checkpoint_every must be >= 1"),
    ({"log": {"checkpoint_every": 0}}, "config [eval] every, windows, batch and [log] checkpoint_every must be >= 1"),
])
def test_config_values_out_of_bounds_are_refused_by_name(table, message):
    """Each value just past a bound (or of the wrong type), alone in an otherwise valid config: the whole message."""
    assert refused({"model": {"pattern": "ssm"}, **table}).startswith(message)


def test_config_structure_errors_name_the_source_and_the_problem(tmp_path):
    """Tables that are not tables, patterns that are not a list of strings, overrides that set the pattern, two
    patterns with one run name, unknown keys (all listed, with the known ones): refused with the source named."""
    assert refused({"model": 3}) == refused({"patterns": ["ssm"], "overrides": 3}) == refused(
        {"patterns": ["ssm"], "overrides": {"ssm": 3}}) == refused(
        {"patterns": ["ssm"], "overrides": {"ssm": {"pattern": "fenwick"}}}) == (
        "config: [model] and each [overrides.<pattern>] must be tables (the latter without pattern)")
    assert refused({"patterns": []}, "c.toml") == refused({"patterns": "ssm"}, "c.toml") == (
        "c.toml: patterns must be a non-empty list")
    assert refused({"patterns": [["ssm"]]}) == (
        "config: [model] needs a pattern (or list patterns = [...] at the top); each a string, got ['ssm']")
    assert refused({"model": {"d_model": 8}}).endswith("each a string, got None")
    assert refused({"patterns": ["ssm", 1]}).endswith("each a string, got 'ssm', 1")
    assert refused({"patterns": ["window:128", "window/128"]}) == (
        "config: patterns 'window:128' and 'window/128' both give the run name 'window-128'")
    assert refused({"patterns": ["ssm", "ssm"]}).endswith("both give the run name 'ssm'")
    assert refused({"patterns": ["ssm", "power2"], "model": {"pattern": "fenwick"}}) == (
        "config: [model] sets pattern 'fenwick' and the top lists patterns = ['ssm', 'power2']: give one (--pattern "
        "picks one of the list)")
    assert refused({"patterns": ["ssm"], "overrides": {"power2": {}, "attention": {}}}) == (
        "config: [overrides] for pattern(s) not in patterns: attention, power2")
    assert refused({"model": {"pattern": "ssm"}, "bogus": 1, "alpha": 2}) == (
        "unknown key(s) alpha, bogus at the top of config; known: data, eval, log, model, overrides, patterns, train")
    assert refused({"model": {"pattern": "ssm"}, "eval": {"zeta": 1, "alpha": 2}}) == (
        "unknown key(s) alpha, zeta in config [eval]; known: every, windows, batch")
    path = tmp_path / "c.toml"
    path.write_text("patterns = []\n")
    with pytest.raises(GLRError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: patterns must be a non-empty list"
    runs = parse_config({"patterns": ["ssm", "power2"]})
    with pytest.raises(GLRError) as info:
        select(runs, "fenwick")
    assert str(info.value) == "pattern 'fenwick' is not in the config; it has ssm, power2"


def test_runs_are_named_after_their_pattern_and_do_not_share_sections():
    """A rule file spec ``dir/file.py:name`` gives the run name ``dir-file.py-name``; changing one run's sections
    leaves the other's alone; select finds a run by spec or by name."""
    spec = "rules/mine.py:pattern"
    runs = parse_config({"patterns": ["ssm", spec], "overrides": {spec: {"d_model": 8}}})
    assert [r.name for r in runs] == ["ssm", "rules-mine.py-pattern"] and runs[1].model["d_model"] == 8
    runs[0].train.steps, runs[0].train.betas[0], runs[0].data.root = 7, 0.5, "x"
    assert (runs[1].train.steps, runs[1].train.betas, runs[1].data.root) == (100, [0.9, 0.95], "")
    assert select(runs, spec) == select(runs, "rules-mine.py-pattern") == [runs[1]] and select(runs, None) == runs


def test_set_reaches_nested_tables_and_splits_at_the_first_equals_sign():
    """``--set`` with three keys sets an [overrides.<pattern>] value; a value holding ``=`` (quoted or not) is kept
    whole; a key under a value that is not a table is refused by name; the input is not changed."""
    raw = {"patterns": ["ssm", "power2"], "overrides": {"power2": {"d_model": 8}}}
    out = apply_overrides(raw, ["overrides.power2.d_model=16", 'log.out_dir="a=b"', "data.root=x=y"])
    assert out["overrides"] == {"power2": {"d_model": 16}} and out["log"] == {"out_dir": "a=b"}
    assert out["data"] == {"root": "x=y"} and raw["overrides"] == {"power2": {"d_model": 8}} and "log" not in raw
    assert [r.model for r in parse_config(out)] == [{"pattern": "ssm"}, {"pattern": "power2", "d_model": 16}]
    with pytest.raises(GLRError) as info:
        apply_overrides({"train": {"steps": 3}}, ["train.steps.x=1"])
    assert str(info.value) == "--set 'train.steps.x=1': steps is not a table"


def test_corpus_files_are_sorted_by_relative_path_without_installed_packages(tmp_path):
    """The order is that of the relative path strings ('a-b.py' before 'a/c.py', though the folder 'a' sorts before
    'a-b.py' part by part); site-packages, dist-packages and __pycache__ are left out; the errors name the folder."""
    root = tmp_path / "lib"
    for rel in ("a/c.py", "a-b.py", "a/b/d.py", "dist-packages/x.py", "site-packages/y.py", "a/__pycache__/z.py",
                "a/notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    assert [p.relative_to(root).as_posix() for p in corpus_files(root)] == ["a-b.py", "a/b/d.py", "a/c.py"]
    (tmp_path / "empty").mkdir()
    for path, says in ((tmp_path / "none", "does not exist"), (root / "a-b.py", "is not a folder"),
                       (tmp_path / "empty", "holds no .py files")):
        with pytest.raises(GLRError) as info:
            corpus_files(path)
        assert str(info.value) == f"corpus folder {str(path)!r} {says}"


def test_the_split_rule_at_its_boundary():
    """sha256(b"m42.py") begins 82c38ebc = 2193854140, 40 modulo 100: validation for val_percent above 40 only."""
    assert hashlib.sha256(b"m42.py").hexdigest()[:8] == "82c38ebc" and 0x82c38ebc == 2193854140
    assert [is_validation("m42.py", v) for v in (39, 40, 40.5, 41)] == [False, False, True, True]


def test_corpus_info_cache_and_arguments(small_corpus, tmp_path, monkeypatch):
    """``info`` counted by hand from the files; the cache is made with its parents, read back without building
    (``build=False``) and kept apart per val_percent and per file list (``files``); the arrays are read-only; the
    defaults are val_percent 2 and the stdlib; bad val_percent, a missing cache and an empty split are refused by
    name."""
    files = sorted(small_corpus.rglob("pkg*/*.py"), key=lambda p: p.relative_to(small_corpus).as_posix())
    cache = tmp_path / "deep" / "cache"
    for percent, listed in ((40, files), (60, files), (40, files[:6])):
        val = [p for p in listed if is_validation(p.relative_to(small_corpus).as_posix(), percent)]
        train = [p for p in listed if p not in val]
        sizes = {s: sum(p.stat().st_size for p in split) for s, split in (("train", train), ("val", val))}
        for build in (True, False):
            corpus = load_corpus(small_corpus, cache, val_percent=percent, build=build, files=listed)
            assert corpus.info == {
                "root": str(small_corpus), "files": len(listed), "bytes": sizes["train"] + sizes["val"],
                "sha256": hashlib.sha256(b"".join(p.read_bytes() for p in listed)).hexdigest(),
                "val_percent": percent, "train_files": len(train), "train_bytes": sizes["train"],
                "val_files": len(val), "val_bytes": sizes["val"]}
            assert corpus.val.tobytes() == b"".join(p.read_bytes() for p in val)
            assert not corpus.train.flags.writeable and not corpus.val.flags.writeable
    assert len(list(cache.iterdir())) == 3
    with pytest.raises(GLRError) as info:
        load_corpus(small_corpus, tmp_path / "other", val_percent=40, build=False)
    load_corpus(small_corpus, tmp_path / "other", val_percent=40)
    (folder,) = (tmp_path / "other").iterdir()
    assert str(info.value) == f"corpus cache {str(folder)!r} is missing"
    for percent in (0, 100, -1, math.nan):
        with pytest.raises(GLRError) as info:
            load_corpus(small_corpus, cache, val_percent=percent)
        assert str(info.value) == f"val_percent must lie in (0, 100), got {percent!r}"
    monkeypatch.setattr("glrtheory.lm.data.stdlib_root", lambda: small_corpus)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for root in (None, ""):         # no file of the 12 goes to validation at 2%
        with pytest.raises(GLRError) as info:
            load_corpus(root, cache)
        assert str(info.value) == f"the val split of {str(small_corpus)!r} is empty (val_percent=2.0)"


def test_the_default_cache_folder(small_corpus, tmp_path, monkeypatch):
    """$XDG_CACHE_HOME/glrtheory/lm, else ~/.cache/glrtheory/lm; load_corpus builds there when no cache_dir is given."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "glrtheory" / "lm"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "glrtheory" / "lm"
    load_corpus(small_corpus, val_percent=40)
    built = sorted(p.name for p in (tmp_path / "xdg" / "glrtheory" / "lm").glob("*/*"))
    assert built == ["info.json", "train.bin", "val.bin"]


def test_a_cache_built_by_another_process_first_is_kept(small_corpus, tmp_path, monkeypatch):
    """The build renames a temporary folder beside the cache folder (so the rename is atomic); when another process
    has put the folder there first, the rename fails, that copy is read and the temporary folder is removed."""
    calls = []

    def other_process_first(src, dst):
        calls.append(Path(src).parent == Path(dst).parent)
        Path(dst).mkdir()
        for name in ("train.bin", "val.bin", "info.json"):
            (Path(dst) / name).write_bytes((Path(src) / name).read_bytes())
        raise OSError("Directory not empty")
    monkeypatch.setattr(os, "rename", other_process_first)
    corpus = load_corpus(small_corpus, tmp_path / "cache", val_percent=40)
    monkeypatch.undo()
    assert calls == [True] and len(list((tmp_path / "cache").iterdir())) == 1
    assert corpus.info == load_corpus(small_corpus, tmp_path / "fresh", val_percent=40).info


def test_batch_offsets_reach_both_ends_of_their_range():
    """Offsets lie in [0, n_bytes - seq_len - 1], both ends included: with one possible offset all are 0, with three
    300 draws give each; one byte less than seq_len + 1 is refused with both numbers."""
    assert batch_offsets(11, 10, seed=0, step=0, rows=5).tolist() == [0] * 5
    assert set(batch_offsets(13, 10, seed=1, step=2, rows=300).tolist()) == {0, 1, 2}
    with pytest.raises(GLRError) as info:
        batch_offsets(10, 10, 0, 0, 1)
    assert str(info.value) == "a split of 10 bytes is shorter than seq_len + 1 = 11"


def test_eval_offsets_at_their_limits():
    """Worked by hand: one window of 64 bytes in 64 bytes at 0; ten in 640 at multiples of 64, an eleventh refused;
    two validation windows of 2 bytes in 11 at 0 and 9 leave one test window at floor(4.5) = 4, in 6 bytes at 0 and 4
    one at 2 (the three fill the split), in 5 bytes none; one validation window leaves none."""
    assert eval_offsets(64, 63, 1).tolist() == [0]
    assert eval_offsets(640, 63, 10).tolist() == list(range(0, 640, 64))
    assert eval_offsets(11, 1, 2).tolist() == [0, 9] and eval_offsets(11, 1, 2, "test").tolist() == [4]
    assert eval_offsets(6, 1, 2).tolist() == [0, 4] and eval_offsets(6, 1, 2, "test").tolist() == [2]   # 6 bytes fit
    for args, message in (
            ((63, 63, 1), "a split of 63 bytes is shorter than seq_len + 1 = 64"),
            ((640, 63, 11), "11 evaluation windows of 64 bytes: a split of 640 bytes holds 1 to 10 without overlap"),
            ((11, 1, 1, "test"), "1 validation windows of 2 bytes leave no room between them for test windows in a "
                                 "split of 11 bytes"),
            ((5, 1, 2, "test"), "2 validation windows of 2 bytes leave no room between them for test windows in a "
                                "split of 5 bytes"),
            ((11, 1, 2, "val"), "unknown split 'val'; use validation or test")):
        with pytest.raises(GLRError) as info:
            eval_offsets(*args)
        assert str(info.value) == message


def test_windows_are_int64_and_the_training_mask_is_bool(small_corpus, tmp_path):
    """``windows`` of a uint8 memory map are int64, as documented; ``in_training`` of no offsets is an empty bool."""
    corpus = load_corpus(small_corpus, tmp_path / "cache", val_percent=40)
    w = windows(corpus.train, np.array([0, 5], dtype=np.int32), 3)
    assert w.dtype == np.int64 and w.tolist() == [corpus.train[0:4].tolist(), corpus.train[5:9].tolist()]
    mask = in_training(corpus.train, corpus.val, np.array([], dtype=np.int64), 3)
    assert mask.dtype == bool and mask.shape == (0,)


def test_seen_in_training_marks_the_evaluation_windows_found_in_train(rng):
    """200 held-out bytes, windows of 10: validation at 0, 63, 126, 190 and test at 31, 95, 158 (worked by hand);
    the training split holds copies of the windows at 63 and 190 and of the test window at 95, nothing else."""
    val = rng.integers(0, 256, size=200).astype(np.uint8)
    train = np.concatenate([np.full(5, 7), val[63:73], np.full(5, 7), val[190:200], val[95:105]]).astype(np.uint8)
    corpus = Corpus(train, val, {})
    assert seen_in_training(corpus, 9, 4).tolist() == [False, True, False, True]
    assert seen_in_training(corpus, 9, 4, "test").tolist() == [False, True, False]
