"""``GLRMixer(lag_bias=True)``: a learned score bias per head, side and bucket of lags ``[2^(k-1), 2^k)``.

Checked against loops over the index tables with Python's ``int.bit_length`` (not the layer's numpy buckets), and at
the boundaries: a zero bias is today's mixer, and only the buckets some slot reads get a gradient. Decoding with a
random bias equals forward in ``test_kernels_torch.py`` (``test_mixer_step_equals_forward``, the prefill test).
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError  # noqa: E402
from glrtheory.kernels.layers import LAG_BUCKETS, lag_buckets  # noqa: E402
from glrtheory.kernels.torch import GLRMixer  # noqa: E402
from glrtheory.models import ModelConfig, SequenceModel  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN


def _bucket(lag: int) -> int:
    return min(lag.bit_length(), LAG_BUCKETS - 1)


def test_lag_buckets_are_bit_lengths_up_to_the_last():
    lags = list(range(5000)) + [2 ** 22 - 1, 2 ** 22, 2 ** 23 - 1, 2 ** 23, 2 ** 40]
    assert lag_buckets(np.array(lags)).tolist() == [_bucket(lag) for lag in lags]
    assert lag_buckets(np.array([0, 1, 2, 3, 4, 2 ** 22, 2 ** 23])).tolist() == [0, 1, 2, 2, 3, 23, 23]


@pytest.mark.parametrize("spec", ["power2", "fenwick", "window:3+power2", "attention"])
@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_coefficients_equal_loops_over_the_tables(spec, scores):
    """``b[t, j] = gamma_t softmax_j(score(t, s_j) + beta_B[h, bucket(t - s_j)])`` over the row's sources (and a
    likewise with ``1 - gamma_t`` and beta_A), by loops over the tables with ``int.bit_length``."""
    torch.manual_seed(0)
    mixer = GLRMixer(spec, 8, 2, scores=scores, lag_bias=True, dtype=torch.float64)
    with torch.no_grad():
        mixer.lag_bias.normal_(0, 2)
    B, T, H = 2, 19, 2
    x = torch.randn(B, T, 8, dtype=torch.float64)
    with torch.no_grad():
        _, a, b, _ = mixer.coefficients(x)
        proj = mixer._projections(x)
        if scores == "source":
            g, e, c = proj["scores"].view(B, T, 3, H).unbind(2)
            score = [lambda i, t, s, h, f=f: f[i, s, h].item() for f in (e, c)]
        else:
            g = proj["scores"]
            q = proj["score_queries"].view(B, T, H, -1) * mixer.d_key ** -0.5
            k = proj["score_keys"].view(B, T, H, -1)
            score = [lambda i, t, s, h: (q[i, t, h] @ k[i, s, h]).item()] * 2
        gamma = torch.sigmoid(g).numpy()
        beta = mixer.lag_bias.detach().numpy()
    tables = mixer.tables(T)
    for side, (idx, got) in enumerate(zip(tables, (a, b))):
        for i in range(B):
            for t in range(T):
                row = [int(s) for s in idx[t] if s >= 0]
                if not row:
                    continue
                gate = gamma[i, t] * (tables.b_idx[t] >= 0).any()
                share = gate if side else 1 - gate
                for h in range(H):
                    z = [score[side](i, t, s, h) + (beta[side, h, _bucket(t - s)] if len(row) > 1 else 0)
                         for s in row]
                    w = [math.exp(v - max(z)) for v in z]
                    want = [share[h] * v / sum(w) for v in w]
                    assert np.allclose(got[i, t, h, :len(row)].numpy(), want, rtol=1e-12, atol=1e-15), (side, t)


@pytest.mark.parametrize("readout", [False, True])
def test_zero_bias_is_todays_mixer_and_only_read_buckets_learn(readout):
    """At the start (zero bias) the output equals the mixer without the option, whose other parameters the same seed
    draws alike; the option adds ``2 H LAG_BUCKETS`` parameters. power2 at T = 37 reads lags 1 .. 32 on B's side
    (buckets 1 .. 6) and its A side is one slot: exactly B's buckets 1 .. 6 get a gradient; ssm's none."""
    x = torch.randn(2, 37, 8, dtype=torch.float64)
    for spec, read in (("power2", range(1, 7)), ("ssm", ())):
        torch.manual_seed(3)
        with_bias = GLRMixer(spec, 8, 2, readout=readout, lag_bias=True, dtype=torch.float64)
        torch.manual_seed(3)
        plain = GLRMixer(spec, 8, 2, readout=readout, dtype=torch.float64)
        assert sum(p.numel() for p in with_bias.parameters()) - sum(p.numel() for p in plain.parameters()) == \
            2 * 2 * LAG_BUCKETS
        y = with_bias(x)
        assert torch.equal(y, plain(x))
        y.square().sum().backward()
        grad = with_bias.lag_bias.grad            # None where no slot reads the bias (ssm)
        grad = torch.zeros_like(with_bias.lag_bias) if grad is None else grad
        used = torch.zeros_like(grad, dtype=torch.bool)
        used[1, :, list(read)] = True
        assert (grad[used] != 0).all() and (grad[~used] == 0).all(), spec


def test_model_config_takes_lag_bias():
    c = ModelConfig.from_dict(dict(vocab_size=5, d_model=8, n_layers=2, n_heads=2, pattern="fenwick", lag_bias=True))
    assert ModelConfig.from_dict(c.to_dict()) == c
    model = SequenceModel(c)
    assert [b.mixer.lag_bias.shape for b in model.blocks] == [(2, 2, LAG_BUCKETS)] * 2
    assert all(b.mixer.lag_bias is None for b in SequenceModel(ModelConfig(vocab_size=5)).blocks)
    with pytest.raises(GLRError, match="lag_bias must be true or false"):
        ModelConfig(vocab_size=5, lag_bias="yes")


@pytest.mark.parametrize("readout", [False, True])
@pytest.mark.parametrize("scores", ["source", "query_key"])
def test_power2_with_a_large_lag_one_bias_runs_as_ssm(readout, scores):
    """What source scores alone cannot express: with B's bucket 1 (the lag 1) biased by 60, power2's softmax puts all
    but ``e^-50`` of its weight on h[t - 1], and the layer gives ssm's output with the same parameters."""
    torch.manual_seed(2)
    ssm = GLRMixer("ssm", 8, 2, readout=readout, scores=scores, lag_bias=True, dtype=torch.float64)
    power2 = GLRMixer("power2", 8, 2, readout=readout, scores=scores, lag_bias=True, dtype=torch.float64)
    power2.load_state_dict(ssm.state_dict())
    x = torch.randn(2, 37, 8, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(power2(x), ssm(x), rtol=0, atol=1e-3)
        power2.lag_bias[1, :, 1] = 60
        assert torch.allclose(power2(x), ssm(x), rtol=0, atol=1e-15)


def test_lag_one_share_closed_forms():
    """``benchmarks/results/lm/lag_bias_learned.py``'s share of h[t - 1] at equal source scores, power2 at T = 5 (rows
    2, 3, 4 read {0, 1}, {1, 2}, {0, 2, 3}): zero bias gives (1/2 + 1/2 + 1/3) / 3 = 4/9; a bias of log 3 on bucket 1
    alone gives (3/4 + 3/4 + 3/5) / 3 = 0.7."""
    from benchmarks.results.lm.lag_bias_learned import lag_one_share
    from glrtheory import Pattern

    b_idx = Pattern.from_spec("power2").tables(5).b_idx
    bias = np.zeros(LAG_BUCKETS)
    assert lag_one_share(bias, b_idx) == pytest.approx(4 / 9, rel=1e-12)
    bias[1] = math.log(3)
    assert lag_one_share(bias, b_idx) == pytest.approx(0.7, rel=1e-12)
