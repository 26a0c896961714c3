"""Task generators: shapes, seeds, answers recomputed from the inputs by naive loops, no label leak, errors."""
import numpy as np
import pytest

from glrtheory import GLRError
from glrtheory.tasks import IGNORE, TASKS, make_task
from glrtheory.tasks.copy import SEP
from glrtheory.tasks.recall import MARK, QUERY

TASK_CASES = [("mqar", dict(K=5, length=40, vocab=32)), ("mqar", dict(K=4, length=12, vocab=9)),
              ("copy", dict(L=6, length=17, vocab=10)), ("copy", dict(L=1, length=2, vocab=3)),
              ("recall", dict(D=7, length=20, vocab=12)), ("recall", dict(D=1, length=3, vocab=6)),
              ("modcount", dict(k=2, length=9)), ("modcount", dict(k=5, length=1))]


def _answers(task, x):
    """Targets recomputed from one input row, reading only inputs[: t + 1] for the target at t."""
    T = len(x)
    y = [IGNORE] * T
    if task.name == "mqar":
        K = task.K
        pairs = {int(x[2 * i]): int(x[2 * i + 1]) for i in range(K)}
        for t in range(2 * K, T):
            if x[t] != 0:
                y[t] = pairs[int(x[t])]
    elif task.name == "copy":
        sep = [t for t in range(T) if x[t] == SEP and t >= task.L]
        assert sep == [T - task.L]
        for i in range(task.L):
            y[T - task.L + i] = int(x[i])
    elif task.name == "recall":
        assert x[T - 1] == QUERY
        marks = [t for t in range(T - 1) if x[t] == MARK]
        assert marks == [T - 2 - task.D]
        y[T - 1] = int(x[marks[0] + 1])
    else:
        for t in range(T):
            y[t] = int(sum(x[: t + 1])) % task.k
    return y


@pytest.mark.parametrize("name, params", TASK_CASES)
def test_shapes_seeds_and_answers(name, params):
    task = make_task(name, **params)
    x, y = task.sample(64, seed=3)
    assert x.shape == y.shape == (64, task.seq_len) and x.dtype == y.dtype == np.int64
    assert x.min() >= 0 and x.max() < task.vocab_size
    scored = y != IGNORE
    assert scored.any() and y[scored].min() >= 0 and y[scored].max() < task.vocab_size
    x2, y2 = task.sample(64, seed=3)
    assert (x == x2).all() and (y == y2).all()
    if task.seq_len > 2:
        assert not (task.sample(64, seed=4)[0] == x).all()
    for row_x, row_y in zip(x, y):
        assert list(row_y) == _answers(task, row_x)
    assert task.level == params[task.difficulty]
    assert task.describe()["seq_len"] == task.seq_len


@pytest.mark.parametrize("name, params", [c for c in TASK_CASES if c[1].get("length", 0) > 3])
def test_no_label_leak(name, params):
    """The input at a scored position does not give its label away: reading the label off the input
    there is right no more often than chance (1 / number of labels, +- sampling error)."""
    task = make_task(name, **params)
    x, y = task.sample(4000, seed=11)
    x, y = x[:, 1:], y[:, 1:]          # at t = 0 a running count is its input by definition
    scored = y != IGNORE
    labels = np.unique(y[scored]).size
    assert (x[scored] == y[scored]).mean() < 1.0 / labels + 0.05
    if name == "mqar":   # no value ever reappears after the key-value section
        assert (x[:, 2 * task.K - 1:] <= task.n_keys).all()


def test_mqar_keys_distinct_and_power_law():
    task = make_task("mqar", K=8, length=256, vocab=64)
    x, y = task.sample(500, seed=0)
    keys = x[:, 0:16:2]
    assert all(len(set(r)) == 8 for r in keys)
    offsets = np.nonzero(y != IGNORE)[1] - 16
    assert (offsets < 60).mean() > (offsets >= 180).mean() * 2   # short gaps more common than long ones


def test_mqar_query_order_is_the_documented_one():
    """The offsets go to the keys from the last drawn to the first: the last pair is asked first in about 21% of
    sequences at K = 8, T = 64 (uniform order: 12.5%, 0.5% a standard error at this size), and the first key's
    query lies further into the region than the last key's on average."""
    x, y = make_task("mqar", K=8, length=64, vocab=64).sample(4000, seed=1)
    region = x[:, 16:]
    order = [row[row != 0] for row in region]                       # the keys in the order they are asked
    assert 0.17 < np.mean([o[0] == k for o, k in zip(order, x[:, 14])]) < 0.25
    offset = {i: np.mean([np.flatnonzero(r == k)[0] for r, k in zip(region, x[:, 2 * i])]) for i in (0, 7)}
    assert offset[0] > offset[7] + 2                 # 15.9 and 11.5 (uniform order: equal within 0.3)


@pytest.mark.parametrize("name, params, match", [
    ("mqar", dict(K=10, length=20), "does not fit"), ("mqar", dict(K=40, vocab=16, length=200), "distinct keys"),
    ("copy", dict(L=9, length=17), "does not fit"), ("recall", dict(D=19, length=20), "does not fit"),
    ("modcount", dict(k=1), "k must be"), ("sorting", {}, "unknown task"), ("copy", dict(K=3), "unknown parameter")])
def test_bad_parameters(name, params, match):
    with pytest.raises(GLRError, match=match):
        make_task(name, **params)


def test_sample_limits():
    task = TASKS["copy"]()
    with pytest.raises(GLRError, match="seed"):
        task.sample(4, seed=-1)
    with pytest.raises(GLRError, match="over the limit"):
        task.sample(2**30, seed=0)


def test_parameters_are_keywords_and_alpha_is_checked():
    """Positional parameters are refused (their order is not part of the contract); a non-number alpha is
    a GLRError, not a TypeError from the comparison."""
    with pytest.raises(TypeError):
        make_task("copy").__class__(4, 32)
    with pytest.raises(GLRError, match=r"alpha must be a finite number"):
        make_task("mqar", alpha="x")
    with pytest.raises(GLRError, match=r"alpha must lie in \(0, 1\]"):
        make_task("mqar", alpha=0)


@pytest.mark.parametrize("K, length, vocab", [(1, 3, 3), (5, 40, 32), (15, 45, 31), (8, 512, 8192)])
def test_mqar_sample_is_the_one_full_sorts_give(K, length, vocab):
    """``mqar.smallest`` picks keys and query offsets exactly as sorting whole rows did (the formulas written out
    here with ``np.argsort``), so a seed gives the same sequences as before, down to K = every key (15 of 31) and a
    query region of exactly K positions."""
    from glrtheory.tasks.mqar import smallest

    task = make_task("mqar", K=K, length=length, vocab=vocab)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        keys = np.argsort(rng.random((7, task.n_keys)), axis=1)[:, :K] + 1
        values = rng.integers(task.n_keys + 1, vocab, size=(7, K))
        Q = length - 2 * K
        g = np.log((np.arange(Q) + 1.0) ** (task.alpha - 1)) - np.log(-np.log(rng.random((7, Q))))
        pos = 2 * K + np.argsort(g, axis=1)[:, -K:]
        inputs, targets = task.sample(7, seed)
        rows = np.arange(7)[:, None]
        assert (inputs[:, 0:2 * K:2] == keys).all() and (inputs[:, 1:2 * K:2] == values).all()
        assert (inputs[rows, pos] == keys).all() and (targets[rows, pos] == values).all()
        assert (targets != IGNORE).sum() == 7 * K
    x = np.random.default_rng(9).random((4, 50))
    for k in (1, 2, 49, 50):
        assert (smallest(x, k) == np.argsort(x, axis=1)[:, :k]).all()


def test_mqar_splits_the_vocabulary_as_documented():
    """Keys are 1..V_k and values V_k+1..V-1 with V_k = (V - 1) // 2, for an even and an odd vocabulary: every key
    and every value of those ranges occurs, and nothing else."""
    for vocab, n_keys in ((64, 31), (65, 32)):
        task = make_task("mqar", K=8, length=64, vocab=vocab)
        assert task.n_keys == n_keys
        x, y = task.sample(400, seed=0)
        keys, values = x[:, 0:16:2], x[:, 1:16:2]
        assert set(np.unique(keys)) == set(range(1, n_keys + 1))
        assert set(np.unique(values)) == set(range(n_keys + 1, vocab)) == set(np.unique(y[y != IGNORE]))
