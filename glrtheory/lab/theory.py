"""What the analysis predicts for a mixer on a task, and the verdict against the measured accuracies.

State numbers. Every number a model carries from positions ``<= t`` to positions ``> t`` crosses the cut
at t inside a mixer (the MLPs act per token). Per layer that is the live set after step t (docs/quantities.md),
each member with what scores it later, plus the ``conv - 1`` inputs of the short convolution:

    numbers = n_layers * (max_t (inputs(t) * d_input + states(t) * d_state) + (conv - 1) * d_model),

``inputs(t)``, ``states(t)`` the live inputs and states (``live_sides``); ``d_state = H d_head`` (vector state) or
``H d_key d_head`` (matrix state); ``d_input = H d_head`` or ``H (d_key + d_head)`` (``u_s = k_s v_s^T`` kept as
its two factors); each plus its key, ``H d_key`` (query-key scores ``q_t . k_s``) or ``H`` (source scores: one
number a head and side). H heads.

Bounds (necessary at this n: no weights beat them). Each reads ``dependence``, which inputs each output depends
on through the stacked layers (residual, short convolution, mixer support ``(I - B)^{-1} A``); ``reach`` is the
farthest input the last output reads, with gaps below it where a mixer skips lags (``lags:2`` reads even distances
only). An answer whose output does not read it can only be guessed, so each level has a ``ceiling``, the best
accuracy reach allows:

* ``recall``: 1 where the output at n - 1 reads the mark's token D back, else a guess, 1 / (vocab - 3)
* ``copy``: output ``T - L + i`` must read s_i, the input at i (each token travels ``T - L`` positions); the share
  that do, plus the others' guesses, 1 / (vocab - 2)
* ``mqar``: the share of queries whose output reads the value they ask (``MQAR_SAMPLE`` sequences of that K), plus
  the others' guesses, 1 / #values

Scales (``capacity``; reported beside the levels, never a verdict's ground):

* ``copy``, ``mqar``: the levels the state holds at one bit per stored number, ``L log2(vocab - 2)`` and
  ``K log2(#values) <= numbers``: a float32 number can hold up to 32 bits, so this is a scale, not a bound
* ``modcount``: positive convex gates cannot track a cyclic state as n grows (capacity 1): an asymptotic rule;
  at a finite n a wide enough MLP could read the count mod k off an average, so no level is ruled out

``feasible`` is False where the ceiling is below 0.9; where it is True, training may still fall short. Hence
the verdict (threshold 0.9 on the mean accuracy over seeds):

* refuted: some level's accuracy passes its ceiling by more than chance (``noise``: the binomial tail of guesses
  over the test answers at ``ALPHA`` = 0.00135 for the task's levels together), or a level a bound rules out
  reaches 0.9;
* confirmed: every tested level a bound rules out fails and some feasible level reaches 0.9 (where no
  tested level is feasible: every level fails while the same mixer reaches 0.9 on another task and some mixer of
  the sweep reaches it on this task, so training works for both);
* inconclusive: otherwise (no bound was tested, or nothing reached 0.9).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from glrtheory.analysis import analyze, live_sides
from glrtheory.errors import GLRError
from glrtheory.patterns import Pattern
from glrtheory.tasks import IGNORE

THRESHOLD = 0.9
#: Sequences sampled (seed 0) to measure the share of MQAR queries whose value lies within reach.
MQAR_SAMPLE = 512
#: Longest sequence whose dependence the lab computes (an n x n relation, float32 products: about a second at 2^11).
DEPENDENCE_MAX_N = 2**12


def _head(model: dict) -> tuple[int, int]:
    """Heads H and the size of a head (its values, and its keys: the model's d_key is d_head)."""
    return model["n_heads"], model.get("d_head") or model["d_model"] // model["n_heads"]


def d_state(model: dict) -> int:
    """Numbers per state of one mixer layer (all heads)."""
    H, d = _head(model)
    return H * d * (d if model.get("readout") else 1)


def entry_numbers(model: dict) -> tuple[int, int]:
    """Numbers a live input and a live state of one mixer layer carry across a cut, each with its key."""
    H, d = _head(model)
    key = H * d if model.get("scores") == "query_key" else H
    return H * d * (2 if model.get("readout") else 1) + key, d_state(model) + key


def state_numbers(spec: str, n: int, model: dict) -> int:
    """The numbers crossing the busiest cut of a length-n model (module docstring)."""
    per_entry = np.array(entry_numbers(model), dtype=np.int64)
    layer = int((per_entry @ live_sides(Pattern.from_spec(spec), n)).max())
    conv = model.get("conv") or 1
    return model["n_layers"] * (layer + (conv - 1) * model["d_model"])


@functools.lru_cache(maxsize=8)        # a sweep's tasks of one length share it; n x n booleans (16 MiB at 2^12)
def dependence(spec: str, n: int, n_layers: int, conv: int) -> np.ndarray:
    """``R[t, s]``: whether the output at t depends on input s through ``n_layers`` blocks, for generic weights
    (read-only, n x n). A block's output at t reads its input at t (residual) and, through the mixer's support
    ``(I - B)^{-1} A`` (state t reads the inputs of A(t) and the states of B(t)), the convolution's outputs, each
    reading ``conv`` inputs up to its own position; the MLPs act per position."""
    if n > DEPENDENCE_MAX_N:
        raise GLRError(f"the lab's reach is computed for sequences of n <= {DEPENDENCE_MAX_N}, got n = {n}")
    a_idx, b_idx = Pattern.from_spec(spec).tables(n)
    mixer = np.zeros((n, n), dtype=bool)
    for t in range(n):
        a, b = a_idx[t], b_idx[t]
        mixer[t, a[a >= 0]] = True
        if (b >= 0).any():
            mixer[t] |= mixer[b[b >= 0]].any(axis=0)
    t = np.arange(n)
    band = (t[None, :] <= t[:, None]) & (t[None, :] > t[:, None] - max(conv, 1))     # conv output s reads inputs
    block = np.eye(n, dtype=np.float32) + (mixer.astype(np.float32) @ band.astype(np.float32) > 0)
    out = np.eye(n, dtype=np.float32)
    for _ in range(n_layers):
        out = (block @ out > 0).astype(np.float32)
    out = out > 0
    out.flags.writeable = False
    return out


def reach(spec: str, n: int, n_layers: int, conv: int) -> int:
    """Largest D such that the output at ``n - 1`` depends on input ``n - 1 - D`` (``dependence``); nearer inputs
    may still be out of reach where the mixer skips lags (``lags:2``)."""
    return _farthest(dependence(spec, n, n_layers, conv))


def _farthest(reached: np.ndarray) -> int:
    """The last output's reach in a relation of ``dependence``."""
    return int(len(reached) - 1 - np.flatnonzero(reached[-1])[0])


def mqar_within_reach(task, reached: np.ndarray) -> float:
    """The share of ``task``'s queries (an MQAR task) whose output depends on the value they ask (``reached``, of
    ``dependence``): the pair of key ``k_i`` sits at positions 2i, 2i + 1 (module ``glrtheory.tasks.mqar``)."""
    x, y = task.sample(MQAR_SAMPLE, seed=0)
    rows, pos = np.nonzero(y != IGNORE)
    keys = x[:, 0:2 * task.K:2]
    pair = np.argmax(keys[rows] == x[rows, pos][:, None], axis=1)
    return float(np.mean(reached[pos, 2 * pair + 1]))


def prediction(task, mixer_model: dict, levels=()) -> dict:
    """Predicted capacity of one mixer (its full model options) on ``task``, with the numbers used; at each of
    ``levels`` the best accuracy its reach allows (``ceiling``): answers whose output does not read them are
    guessed (copy: 1 / (vocab - 2); recall: 1 / (vocab - 3); MQAR: 1 / #values), the rest may be right."""
    for level in levels:            # each level as the task would take it: a GLRError names one it refuses
        dataclasses.replace(task, **{task.difficulty: level})
    n, spec = task.seq_len, mixer_model["pattern"]
    report = analyze(Pattern.from_spec(spec), n)
    numbers = state_numbers(spec, n, mixer_model)
    out = {"n": n, "cache_peak": report["cache_peak"], "decode_cost_mean": report["decode_cost_mean"],
           "hop_diameter": report["hop_diameter"], "state_numbers": numbers}
    reached = dependence(spec, n, mixer_model["n_layers"], mixer_model.get("conv", 0))
    out["reach"] = _farthest(reached)
    if task.name == "mqar":
        values = task.vocab - 1 - task.n_keys
        share = {K: mqar_within_reach(dataclasses.replace(task, K=K), reached) for K in levels}
        out.update(capacity=numbers / math.log2(values), ceiling={K: f + (1 - f) / values for K, f in share.items()},
                   rule=f"the values within reach (up to {out['reach']}); scale K*log2({values}) <= {numbers}")
    elif task.name == "copy":                     # s_i at input i predicted by the output at n - L + i
        share = {L: float(reached[n - L + np.arange(L), np.arange(L)].mean()) for L in levels}
        out.update(capacity=numbers / math.log2(task.vocab - 2),
                   ceiling={L: f + (1 - f) / (task.vocab - 2) for L, f in share.items()},
                   rule=f"each s_i within reach of output {n} - L + i (up to {out['reach']}); "
                        f"scale L*log2({task.vocab - 2}) <= {numbers}")
    elif task.name == "recall":
        out.update(capacity=out["reach"], ceiling={D: 1.0 if reached[n - 1, n - 1 - D] else 1 / (task.vocab - 3)
                                                   for D in levels},
                   rule=f"input {n - 1} - D within reach of output {n - 1} (up to {out['reach']})")
    else:
        out.update(capacity=1, ceiling=dict.fromkeys(levels, 1.0),
                   rule="no bound at finite n; scale: positive gates cannot count mod k as n grows")
    return out


def feasible(level: int, pred: dict) -> bool:
    """Whether the bounds of ``pred`` (of ``prediction``, given ``level``) allow the threshold at ``level``."""
    return pred["ceiling"][level] >= THRESHOLD


#: The chance that a task's verdict finds some level past its ceiling where every answer was a guess right with
#: probability ``ceiling``: 0.00135, a normal distribution's tail beyond three standard deviations.
ALPHA = 0.00135


def noise(ceiling: float, answers: int, levels: int = 1) -> float:
    """How far a mean accuracy over ``answers`` scored answers may pass ``ceiling`` by chance: with ``k`` the least
    count that ``Binomial(answers, ceiling)`` exceeds with probability at most ``ALPHA / levels`` (Bonferroni over
    the ``levels`` a verdict tests), ``(k + 1/2) / answers - ceiling``, halfway to the next count, so that an
    accuracy of ``j / answers`` passes exactly when ``j > k``. Exact where three standard errors are not: near a
    ceiling of 0 or 1 the tail is heavier (past them 0.21% of the time at 4096 answers and ceiling 0.005, 7.7% at
    16 answers)."""
    from scipy.stats import binom

    return (float(binom.isf(ALPHA / levels, answers, ceiling)) + 0.5) / answers - ceiling


def within_scale(task_name: str, level: int, pred: dict) -> bool:
    """Whether ``level`` lies within the scale of ``pred`` (``capacity``; recall has none but its bound)."""
    return task_name == "recall" or level <= pred["capacity"]


def verdict(levels: list, accuracy: list, allowed: list, trains: bool, over: list = ()) -> tuple[str, str]:
    """``(verdict, reason)`` for mean accuracies at ascending ``levels``, with ``allowed[i]`` whether the
    prediction allows level i (``feasible``); ``trains`` says whether training works here: the same mixer
    reached the threshold on some other task and some mixer of the sweep reached it on this one; ``over`` lists
    ``(level, accuracy, ceiling, noise)`` where an accuracy passed its ceiling by more than ``noise``."""
    if over:
        lv, a, c, m = over[-1]
        return "refuted", f"accuracy {a:.3f} at level {lv} passes what reach allows, {c:.3f} (+ {m:.3f} by chance)"
    above = [(lv, a) for lv, a, ok in zip(levels, accuracy, allowed) if not ok]
    below = [(lv, a) for lv, a, ok in zip(levels, accuracy, allowed) if ok]
    passed_above = [(lv, a) for lv, a in above if a >= THRESHOLD]
    if passed_above:
        lv, a = passed_above[-1]
        return "refuted", f"accuracy {a:.3f} >= {THRESHOLD} at level {lv}, predicted infeasible"
    if not above:
        return "inconclusive", "every tested level is predicted feasible (the bound is not tested)"
    worst = max(a for _, a in above)
    ok = [(lv, a) for lv, a in below if a >= THRESHOLD]
    if ok:
        return "confirmed", (f"fails where predicted (levels {[lv for lv, _ in above]}, max {worst:.3f}); "
                             f"solves level {ok[-1][0]} ({ok[-1][1]:.3f})")
    if not below and trains:
        return "confirmed", (f"every level fails as predicted (max {worst:.3f}) while this mixer reaches {THRESHOLD} "
                             "elsewhere and another mixer on this task")
    return "inconclusive", (f"fails where predicted (max {worst:.3f}) but no level reached {THRESHOLD} "
                            f"(max {max(accuracy):.3f}): training may fall short")
