"""glrtheory.lm training on the CPU: the loss falls, stop + resume is exact, torchrun (gloo, 2 processes)
matches one process with the same global batch, cached generation equals greedy full-forward decoding."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from glrtheory.errors import GLRError
from glrtheory.lm.config import load_config
from glrtheory.lm.data import load_corpus
from glrtheory.lm.distributed import Dist
from glrtheory.lm.evaluate import evaluate
from glrtheory.lm.train import train

ROOT = Path(__file__).resolve().parents[1]
CPU = Dist(0, 1, torch.device("cpu"))


class StandIn(nn.Module):
    """Causal toy model: ``logits_t = W [e_t, mean_{s <= t} e_s]``."""

    def __init__(self, table):
        super().__init__()
        d = table.get("d_model", 16)
        self.embed = nn.Embedding(256, d)
        self.head = nn.Linear(2 * d, 256)

    def forward(self, tokens):
        e = self.embed(tokens)
        mean = e.cumsum(1) / torch.arange(1, e.shape[1] + 1)[:, None]
        return self.head(torch.cat([e, mean], -1))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


def tiny(tmp_path, cache_dir, steps=6, **train):
    """configs/lm/tiny.toml with its output in tmp_path, the corpus cache shared by this module's tests."""
    (run,) = load_config(ROOT / "configs/lm/tiny.toml")
    run.data.cache_dir, run.log.out_dir, run.log.progress = str(cache_dir), str(tmp_path), False
    run.train.steps = steps
    run.eval.every = run.log.checkpoint_every = steps
    for k, v in train.items():
        setattr(run.train, k, v)
    return run


def test_tiny_trains_and_the_loss_falls(tmp_path, cache_dir):
    run = tiny(tmp_path, cache_dir, steps=12)
    torch.manual_seed(run.train.seed)
    corpus = load_corpus(None, cache_dir)
    before = evaluate(StandIn(run.model), corpus.val, run.train.seq_len, 8, 8, CPU)["bpb"]
    out = train(run, CPU, model_factory=StandIn)
    losses, final = out["losses"], out["result"]["final"]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    assert final["val_bpb"] < before - 0.3 and before > 7.5      # 8 bits/byte is the uniform guess
    log = [json.loads(ln) for ln in (run.run_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 12 and log[-1]["corpus"]["files"] > 100 and log[-1]["forward_flops_per_token"] > 0
    assert set(log[-1]["val_bpb_by_position"]) == {"0-63"}


def test_stop_and_resume_reproduces_the_uninterrupted_run(tmp_path, cache_dir):
    whole = train(tiny(tmp_path / "a", cache_dir), CPU, model_factory=StandIn)
    run = tiny(tmp_path / "b", cache_dir)
    first = train(run, CPU, model_factory=StandIn, stop_at=3)
    assert first["result"] is None and (run.run_dir / "checkpoint.pt").exists()
    torch.manual_seed(1234)  # the resumed run must not depend on the state it starts in
    second = train(run, CPU, model_factory=StandIn)
    assert first["losses"] + second["losses"] == whole["losses"]
    a = torch.load(tmp_path / "a" / run.name / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_from_another_config_is_refused_and_kept(tmp_path, cache_dir):
    run = tiny(tmp_path, cache_dir)
    train(run, CPU, model_factory=StandIn, stop_at=2)
    ckpt = run.run_dir / "checkpoint.pt"
    saved = ckpt.read_bytes()
    other = copy.deepcopy(run)
    other.train.lr *= 2
    with pytest.raises(GLRError, match="another config"):
        train(other, CPU, model_factory=StandIn)
    assert ckpt.read_bytes() == saved


def test_torchrun_two_processes_match_one_process(tmp_path, cache_dir):
    """2 gloo processes x micro_batch 4 = 1 process x 2 micro-batches of 4: the same global batch."""
    one = train(tiny(tmp_path / "one", cache_dir, steps=4, micro_batch=4), CPU, model_factory=StandIn)
    env = {**os.environ, "LM_TEST_OUT": str(tmp_path / "two"), "LM_TEST_CACHE": str(cache_dir),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           __file__]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = json.loads((tmp_path / "two" / "losses.json").read_text())
    assert two == pytest.approx(one["losses"], rel=1e-5)


if __name__ == "__main__":  # the torchrun worker of test_torchrun_two_processes_match_one_process
    from glrtheory.lm.distributed import distributed

    out = Path(os.environ["LM_TEST_OUT"])
    with distributed("cpu") as d:
        result = train(tiny(out, Path(os.environ["LM_TEST_CACHE"]), steps=4, micro_batch=4), d,
                       model_factory=StandIn)
        if d.main:
            (out / "losses.json").write_text(json.dumps(result["losses"]))
