"""SequenceModel: shapes, decoding token by token equals the full forward, prefill, parameter count, errors."""
from pathlib import Path

import pytest
import torch

from glrtheory import GLRError
from glrtheory.models import ModelConfig, SequenceModel
from glrtheory.models.blocks import ShortConv


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=11, d_model=16, n_layers=2, n_heads=2) | kw
    return SequenceModel(ModelConfig(**cfg), dtype=torch.float64)


def _rel(x, ref):
    return float((x - ref).detach().norm() / ref.detach().norm())


@pytest.mark.parametrize("kw", [dict(pattern="ssm"), dict(pattern="power2", conv=4),
                                dict(pattern="fenwick", readout=True), dict(pattern="attention", scores="query_key"),
                                dict(pattern="window:4", scores="query_key", readout=True, conv=3),
                                dict(pattern="window:3", mlp_mult=0, conv=2, tie_embeddings=True)])
@pytest.mark.parametrize("T", [1, 2, 13])
def test_step_equals_forward(kw, T):
    m = _model(**kw)
    tokens = torch.randint(0, 11, (3, T), generator=torch.Generator().manual_seed(T))
    ref = m(tokens)
    assert ref.shape == (3, T, 11)
    cache = m.init_cache(3, T + 2)
    out = torch.full_like(ref, float("nan"))
    for t in range(T):
        out[:, t] = m.step(tokens[:, t], cache)
    assert _rel(out, ref) < 1e-12
    prefilled = m.init_cache(3, T + 2)
    assert _rel(m(tokens, cache=prefilled), ref) < 1e-12
    nxt = torch.randint(0, 11, (3, 2))   # continuing after a prefill (by step, then by a second forward)
    longer = m(torch.cat([tokens, nxt], 1))
    assert _rel(m.step(nxt[:, 0], prefilled), longer[:, T]) < 1e-12
    assert _rel(m(nxt[:, 1:], cache=prefilled), longer[:, T + 1:]) < 1e-12
    assert prefilled.t == T + 2


def test_short_conv_against_loop():
    torch.manual_seed(1)
    conv = ShortConv(5, 3).double()
    x = torch.randn(2, 7, 5, dtype=torch.float64)
    w = conv.conv.weight[:, 0]                                  # [d, W]; w[:, W-1] multiplies x_t
    ref = torch.zeros_like(x)
    for t in range(7):
        for j in range(3):
            if t - j >= 0:
                ref[:, t] += w[:, 2 - j] * x[:, t - j]
    assert _rel(conv(x), ref) < 1e-12


def test_parameter_count():
    m = _model(pattern="ssm", tie_embeddings=True)
    d, V = 16, 11
    assert m.num_parameters() == sum(p.numel() for p in m.parameters())  # tied weight counted once
    assert m.num_parameters(embeddings=False) == m.num_parameters() - V * d
    mixer = m.blocks[0].mixer
    per_block = sum(p.numel() for p in mixer.parameters()) + 2 * d + 3 * 2 * d * d  # norms + SwiGLU
    assert m.num_parameters() == V * d + 2 * per_block + d


@pytest.mark.parametrize("kw", [dict(pattern="ssm", n_layers=1), dict(pattern="fenwick", readout=True, n_layers=3),
                                dict(pattern="window:3", mlp_mult=0, conv=2, tie_embeddings=True, n_layers=4),
                                dict(pattern="attention", scores="query_key", timescales=(2.0, 8.0), n_layers=5)])
def test_models_over_the_parameter_limit_are_refused_before_allocating(monkeypatch, kw):
    """``parameter_count`` (meta models of one and two blocks) is the built model's count; a model of exactly
    ``MAX_PARAMETERS`` is built, one parameter more is refused naming its count, and a model of 8 * 10^13
    parameters is refused at once (it could not be allocated)."""
    from glrtheory.models import sequence

    config = ModelConfig(**(dict(vocab_size=11, d_model=16, n_heads=2) | kw))
    count = SequenceModel(config).num_parameters()
    assert sequence.parameter_count(config) == count
    monkeypatch.setattr(sequence, "MAX_PARAMETERS", count)
    assert SequenceModel(config).num_parameters() == count
    monkeypatch.setattr(sequence, "MAX_PARAMETERS", count - 1)
    with pytest.raises(GLRError, match=f"the model has {count:,} parameters .* over the limit MAX_PARAMETERS = "
                                       f"{count - 1:,}$"):
        SequenceModel(config)
    monkeypatch.undo()
    with pytest.raises(GLRError, match="the model has 80,000,851,306,000 parameters"):
        SequenceModel(ModelConfig(vocab_size=256, d_model=100000, n_layers=1000))


@pytest.mark.parametrize("hidden", [1, 5, 40])
def test_mlp_hidden_sets_the_swiglu_width(hidden):
    """``mlp_hidden`` replaces ``mlp_mult * d_model``: gate and up ``2 h x d``, down ``d x h``, so the count is the
    default model's with ``3 d (h - 2 d)`` more a block (mlp_mult = 2, d = 16, two blocks)."""
    base, wide = _model(pattern="ssm"), _model(pattern="ssm", mlp_hidden=hidden)
    assert wide.blocks[0].mlp.down.weight.shape == (16, hidden)
    assert wide.num_parameters() - base.num_parameters() == 2 * 3 * 16 * (hidden - 2 * 16)


def test_lm_configs_give_every_pattern_the_same_size():
    """Claim 7's runs compare patterns at one size: every ``configs/lm`` file's models (their ``[overrides]``
    included: query-key attention's narrower MLP) are within 0.01% of each other's parameter count."""
    from glrtheory.lm.build import build_model, parameter_count
    from glrtheory.lm.config import load_config

    for path in sorted(Path(__file__).parents[1].glob("configs/lm/*.toml")):
        with torch.device("meta"):
            counts = {run.name: parameter_count(build_model(run.model)) for run in load_config(path)}
        assert max(counts.values()) - min(counts.values()) <= 1e-4 * min(counts.values()), (path.name, counts)


def test_dtype_and_gradients():
    m = SequenceModel(ModelConfig(vocab_size=7, d_model=8, n_heads=2, pattern="blocks"))
    logits = m(torch.randint(0, 7, (2, 6)))
    assert logits.dtype == torch.float32
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("kw, match", [(dict(vocab_size=0), "vocab_size"), (dict(d_model=10, n_heads=3), "divisible"),
                                      (dict(pattern="nonsense"), "unknown pattern"), (dict(scores="keys"), "scores"),
                                      (dict(conv=-1), "conv"), (dict(timescales=[1, 8]), "timescale"),
                                      (dict(timescales=[8]), "a pair"), (dict(mlp_hidden=0), "mlp_hidden"),
                                      (dict(mlp_hidden=8, mlp_mult=0), "mlp_mult=0 drops")])
def test_bad_config(kw, match):
    with pytest.raises(GLRError, match=match):
        ModelConfig(**(dict(vocab_size=5) | kw))


def test_timescales_reach_every_mixer():
    """``timescales`` from a dict (as TOML gives it, a list) starts every block's gates: at input 0 an ssm head's
    gate is ``sigmoid(bias) = 1 - 1 / tau`` with tau = 4 and 64 for two heads; the config round-trips and hashes."""
    c = ModelConfig.from_dict(dict(vocab_size=5, d_model=8, n_heads=2, pattern="ssm", timescales=[4, 64]))
    assert c.timescales == (4, 64) and ModelConfig.from_dict(c.to_dict()) == c and hash(c) == hash(c)
    for block in SequenceModel(c).blocks:
        assert torch.allclose(torch.sigmoid(block.mixer.score_bias[:2]), torch.tensor([3 / 4, 63 / 64]))


def test_bad_tokens_and_cache():
    m = _model(pattern="ssm")
    with pytest.raises(GLRError, match="long tensor"):
        m(torch.zeros(2, 3))
    with pytest.raises(GLRError, match="token ids"):
        m(torch.full((2, 3), 11))
    cache = m.init_cache(2, 1)
    m.step(torch.zeros(2, dtype=torch.long), cache)
    with pytest.raises(GLRError, match="past it"):
        m.step(torch.zeros(2, dtype=torch.long), cache)
    with pytest.raises(GLRError, match="batch 3"):
        m.step(torch.zeros(3, dtype=torch.long), m.init_cache(2, 4))
    with pytest.raises(GLRError, match="unknown model option"):
        ModelConfig.from_dict({"vocab_size": 5, "layers": 2})


def test_bfloat16_model_follows_float64():
    m64 = _model(pattern="power2", conv=2)
    m64.load_state_dict({k: v.to(torch.bfloat16).double() for k, v in m64.state_dict().items()})  # same weights
    m16 = SequenceModel(m64.config, dtype=torch.bfloat16)
    m16.load_state_dict({k: v.to(torch.bfloat16) for k, v in m64.state_dict().items()})
    tokens = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(5))
    out = m16(tokens)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert _rel(out.double(), m64(tokens)) < 1e-2
