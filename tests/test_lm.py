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
from glrtheory.lm.data import batch_offsets, eval_offsets, load_corpus, stdlib_root, windows
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
