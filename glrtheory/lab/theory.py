"""What the analysis predicts for a mixer on a task, and the verdict against the measured accuracies.

State numbers. Every number a model carries from positions ``<= t`` to positions ``> t`` crosses the cut
at t inside a mixer (the MLPs act per token). Per layer that is the live set after step t (docs/quantities.md),
each member with what scores it later, plus the ``conv - 1`` inputs of the short convolution:

    numbers = n_layers * (max_t (inputs(t) * d_input + states(t) * d_state) + (conv - 1) * d_model),

``inputs(t)``, ``states(t)`` the live inputs and states (``live_sides``); ``d_state = H d_head`` (vector state) or
``H d_key d_head`` (matrix state); ``d_input = H d_head`` or ``H (d_key + d_head)`` (``u_s = k_s v_s^T`` kept as
its two factors); each plus its key, ``H d_key`` (query-key scores ``q_t . k_s``) or ``H`` (source scores: one
number a head and side). H heads.

Bounds (necessary at this n: a level they rule out cannot be solved by any weights):

* ``recall``: the mark at distance D must reach the last position through the stacked layers
  (residual, short convolution, mixer reach ``(I - B)^{-1} A``) -> D_max = the largest reached distance
* ``copy``: every token travels ``T - L`` positions (from s_i at i to the output at ``T - L + i`` that predicts
  it), within reach
* ``mqar``: a query whose value lies farther back than the reach can only be guessed (1 / #values), so K is
  feasible only where ``answerable + (1 - answerable) / #values >= 0.9`` (``answerable``: the share of queries
  whose value lies within reach, over ``MQAR_SAMPLE`` sequences of that K)

Scales (``capacity``; reported beside the levels, never a verdict's ground):

* ``copy``, ``mqar``: the levels the state holds at one bit per stored number, ``L log2(vocab - 2)`` and
  ``K log2(#values) <= numbers``: a float32 number can hold up to 32 bits, so this is a scale, not a bound
* ``modcount``: positive convex gates cannot track a cyclic state as n grows (capacity 1): an asymptotic rule;
  at a finite n a wide enough MLP could read the count mod k off an average, so no level is ruled out

``feasible`` is False at the levels a bound rules out; where it is True, training may still fall short. Hence
the verdict (threshold 0.9 on the mean accuracy over seeds):

* refuted: some level a bound rules out reaches 0.9;
* confirmed: every tested level a bound rules out fails and some feasible level reaches 0.9 (where no
  tested level is feasible: every level fails while the same mixer reaches 0.9 on another task and some mixer of
  the sweep reaches it on this task, so training works for both);
* inconclusive: otherwise (no bound was tested, or nothing reached 0.9).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from glrtheory.analysis import analyze, live_sides
from glrtheory.patterns import Pattern
from glrtheory.tasks import IGNORE

THRESHOLD = 0.9
#: Sequences sampled (seed 0) to measure the share of MQAR queries whose value lies within reach.
MQAR_SAMPLE = 512


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


def reach(spec: str, n: int, n_layers: int, conv: int) -> int:
    """Largest D such that input position ``n - 1 - D`` reaches the output at ``n - 1`` through
    ``n_layers`` blocks (residual path, causal conv of width ``conv``, mixer support ``(I - B)^{-1} A``)."""
    a_idx, b_idx = Pattern.from_spec(spec).tables(n)
    seen = np.zeros(n, dtype=bool)
    seen[n - 1] = True
    for _ in range(n_layers):
        states = seen.copy()
        for t in range(n - 1, -1, -1):          # B edges point backwards: one descending pass closes them
            if states[t] and b_idx.shape[1]:
                row = b_idx[t]
                states[row[row >= 0]] = True
        mixed = np.zeros(n, dtype=bool)
        rows = a_idx[states]
        mixed[rows[rows >= 0]] = True
        seen = seen | mixed                      # residual path and mixer inputs
        for j in range(1, max(conv, 1)):        # the convolution before the mixer widens its inputs
            seen[:-j] |= mixed[j:]
    return int(n - 1 - np.flatnonzero(seen)[0])


def mqar_within_reach(task, reach_: int) -> float:
    """The share of ``task``'s queries (an MQAR task) whose value lies at most ``reach_`` positions before the query:
    the pair of key ``k_i`` sits at positions 2i, 2i + 1 (module ``glrtheory.tasks.mqar``)."""
    x, y = task.sample(MQAR_SAMPLE, seed=0)
    rows, pos = np.nonzero(y != IGNORE)
    keys = x[:, 0:2 * task.K:2]
    pair = np.argmax(keys[rows] == x[rows, pos][:, None], axis=1)
    return float(np.mean(pos - (2 * pair + 1) <= reach_))


def prediction(task, mixer_model: dict, levels=()) -> dict:
    """Predicted capacity of one mixer (its full model options) on ``task``, with the numbers used; for MQAR the
    best accuracy reach allows at each of ``levels`` (``answerable``)."""
    n, spec = task.seq_len, mixer_model["pattern"]
    report = analyze(Pattern.from_spec(spec), n)
    numbers = state_numbers(spec, n, mixer_model)
    out = {"n": n, "cache_peak": report["cache_peak"], "decode_cost_mean": report["decode_cost_mean"],
           "hop_diameter": report["hop_diameter"], "state_numbers": numbers}
    out["reach"] = reach(spec, n, mixer_model["n_layers"], mixer_model.get("conv", 0))
    if task.name == "mqar":
        values = task.vocab - 1 - task.n_keys
        share = {K: mqar_within_reach(dataclasses.replace(task, K=K), out["reach"]) for K in levels}
        out.update(capacity=numbers / math.log2(values), answerable={K: f + (1 - f) / values for K, f in share.items()},
                   rule=f"the values within reach {out['reach']}; scale K*log2({values}) <= {numbers}")
    elif task.name == "copy":
        out.update(capacity=numbers / math.log2(task.vocab - 2),
                   rule=f"{n} - L <= reach {out['reach']}; scale L*log2({task.vocab - 2}) <= {numbers}")
    elif task.name == "recall":
        out.update(capacity=out["reach"], rule=f"D <= reach {out['reach']}")
    else:
        out.update(capacity=1, rule="no bound at finite n; scale: positive gates cannot count mod k as n grows")
    return out


def feasible(task_name: str, level: int, pred: dict) -> bool:
    """Whether the bounds of ``pred`` (of ``prediction``) allow solving the task at ``level``."""
    if task_name == "copy":
        return pred["n"] - level <= pred["reach"]
    if task_name == "mqar":
        return pred["answerable"][level] >= THRESHOLD       # prediction(..., levels) gives every level its share
    if task_name == "recall":
        return level <= pred["reach"]
    return True


def within_scale(task_name: str, level: int, pred: dict) -> bool:
    """Whether ``level`` lies within the scale of ``pred`` (``capacity``; recall has none but its bound)."""
    return task_name == "recall" or level <= pred["capacity"]


def verdict(task_name: str, levels: list, accuracy: list, allowed: list, trains: bool) -> tuple[str, str]:
    """``(verdict, reason)`` for mean accuracies at ascending ``levels``, with ``allowed[i]`` whether the
    prediction allows level i (``feasible``); ``trains`` says whether training works here: the same mixer
    reached the threshold on some other task and some mixer of the sweep reached it on this one."""
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
