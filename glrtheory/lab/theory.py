"""What the analysis predicts for a mixer on a task, and the verdict against the measured accuracies.

State numbers. Every number a model carries from positions ``<= t`` to positions ``> t`` crosses the cut
at t inside a mixer (the MLPs act per token). Per layer that is the live set (``cache_peak`` states or
inputs, DESIGN.md section 2) of ``d_state`` numbers each, plus the ``conv - 1`` inputs of the short
convolution:

    numbers = n_layers * (cache_peak * d_state + (conv - 1) * d_model),
    d_state = n_heads * d_head (vector state) or n_heads * d_key * d_head (matrix state).

Predicted capacity (the largest level the state can hold, at one bit per stored number):

* ``mqar``: K * log2(#values) <= numbers  ->  K_max = numbers / log2(#values)
* ``copy``: L * log2(vocab - 2) <= numbers ->  L_max = numbers / log2(vocab - 2)
* ``recall``: the mark at distance D must reach the last position through the stacked layers
  (residual, short convolution, mixer reach ``(I - B)^{-1} A``) -> D_max = the largest reached distance
* ``modcount``: positive convex gates cannot track a cyclic state -> every k >= 2 fails (capacity 1)

Each is a bound: above it the model must fail; below it training may still fall short. Hence the
verdict (threshold 0.9 on the mean accuracy over seeds):

* refuted: some level above the prediction reaches 0.9;
* confirmed: every tested level above it fails and some level at or below it reaches 0.9 (for
  ``modcount``, which has no level below: every level fails while the same mixer reaches 0.9 on
  another task, so training works);
* inconclusive: otherwise (no level above the prediction was tested, or nothing reached 0.9).
"""
from __future__ import annotations

import math

import numpy as np

from glrtheory.analysis import analyze
from glrtheory.patterns import Pattern

THRESHOLD = 0.9


def d_state(model: dict) -> int:
    """Numbers per state of one mixer layer (all heads)."""
    d_head = model.get("d_head") or model["d_model"] // model["n_heads"]
    return model["n_heads"] * d_head * (d_head if model.get("readout") else 1)


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


def prediction(task, mixer_model: dict) -> dict:
    """Predicted capacity of one mixer (its full model options) on ``task``, with the numbers used."""
    n, spec = task.seq_len, mixer_model["pattern"]
    report = analyze(Pattern.from_spec(spec), n)
    numbers = mixer_model["n_layers"] * (report["cache_peak"] * d_state(mixer_model)
                                         + (mixer_model.get("conv", 0) - 1 if mixer_model.get("conv") else 0)
                                         * mixer_model["d_model"])
    out = {"n": n, "cache_peak": report["cache_peak"], "decode_cost_mean": report["decode_cost_mean"],
           "hop_diameter": report["hop_diameter"], "state_numbers": numbers}
    if task.name == "mqar":
        bits = math.log2(task.vocab - 1 - task.n_keys)
        out.update(capacity=numbers / bits, rule=f"K*log2({task.vocab - 1 - task.n_keys}) <= {numbers}")
    elif task.name == "copy":
        bits = math.log2(task.vocab - 2)
        out.update(capacity=numbers / bits, rule=f"L*log2({task.vocab - 2}) <= {numbers}")
    elif task.name == "recall":
        out.update(capacity=reach(spec, n, mixer_model["n_layers"], mixer_model.get("conv", 0)),
                   rule="D <= reach of the stacked layers")
    else:
        out.update(capacity=1, rule="positive gates cannot count mod k")
    return out


def verdict(task_name: str, levels: list, accuracy: list, capacity: float, trains: bool) -> tuple[str, str]:
    """``(verdict, reason)`` for mean accuracies at ascending ``levels`` against the predicted capacity;
    ``trains`` says whether the same mixer reached the threshold on some other task."""
    above = [(lv, a) for lv, a in zip(levels, accuracy) if lv > capacity]
    below = [(lv, a) for lv, a in zip(levels, accuracy) if lv <= capacity]
    passed_above = [(lv, a) for lv, a in above if a >= THRESHOLD]
    if passed_above:
        lv, a = passed_above[-1]
        return "refuted", f"accuracy {a:.3f} >= {THRESHOLD} at level {lv} > predicted {capacity:.4g}"
    if not above:
        return "inconclusive", f"no tested level exceeds the predicted {capacity:.4g}"
    ok = [(lv, a) for lv, a in below if a >= THRESHOLD]
    if ok:
        return "confirmed", (f"fails above {capacity:.4g} (max {max(a for _, a in above):.3f}); "
                             f"solves level {ok[-1][0]} ({ok[-1][1]:.3f})")
    if task_name == "modcount" and trains:
        return "confirmed", f"every k fails (max {max(a for _, a in above):.3f}) while this mixer trains elsewhere"
    return "inconclusive", f"no level reached {THRESHOLD} (max {max(accuracy):.3f}); training may fall short"
