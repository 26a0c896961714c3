"""Per-token decode latency of ``GLRMixer.step`` against the context length, on the GPU (issue 12 item 3:
fenwick flat, ratio of the largest to the smallest context at most 1.3; power2 growing like log L).

    python benchmarks/gpu_decode.py [--specs fenwick,power2,ssm] [--contexts 10,14,17,20] [--out PATH]

Small model: d_model 256, 4 heads (d_head 64, vector state, source scores), batch 1, float32, no grad. For a
context L the cache (``init_cache``, horizon 2L: decoding goes on to twice the context) holds the live set after
an L-token prompt (``GLRCache.prefill``); a step's work does not depend on the values, so the prompt is one real
token's input, key and state broadcast over the L positions (no ``L x d`` tensors). Then ``steps + 1`` tokens
are decoded; each step is timed by the wall clock between two ``torch.cuda.synchronize()``, the first dropped,
the median kept. Each row also records the cache: entries held (``cache.size``), the live set the analysis
gives for that step (``live_profile``), ``cache_peak`` at the horizon and the bytes of every tensor held.
``check``: at the smallest context the prompt goes through ``forward(x, cache)`` instead, and the decoded
outputs are compared with ``forward`` over the whole sequence (float32 tolerance 1e-5).
No CUDA graph: ``GLRCache`` keeps the live set in Python dicts keyed by position, and ``step`` stacks a list of
sources chosen in Python for each t (new tensors every step), so a captured graph would replay one step's sources.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import error, free, parser, saver, sync  # noqa: E402

from glrtheory import Pattern  # noqa: E402
from glrtheory.analysis import cache_peak, live_profile  # noqa: E402
from glrtheory.kernels.layers import GLRMixer, _keys  # noqa: E402
from glrtheory.lm.generate import cache_contents  # noqa: E402

SPECS = ("fenwick", "ssm", "power2")          # power2 last: its O(L) cache makes the slowest setup
CONTEXTS = (2**10, 2**14, 2**17, 2**20)
MODEL = dict(d_model=256, heads=4)
#: Largest / smallest context latency allowed for a flat step (fenwick), and the slack power2's latency
#: ratio gets over the ratio of its step's terms |A(t)| + |B(t)| (which grow like log L).
FLAT_RATIO = 1.3
NOTE = ("eager steps; no CUDA graph: GLRCache keeps the live set in Python dicts keyed by position and step() stacks "
        "a per-t list of sources chosen in Python (new tensors every step), so a graph would replay one step's sources")


def _mixer(spec, device, dtype, d_model, heads, seed):
    torch.manual_seed(seed)
    return GLRMixer(spec, d_model, heads, device=device, dtype=dtype).eval()


@torch.no_grad()
def decode_row(spec, L, device="cuda", steps=50, dtype=torch.float32, seed=0, **model) -> dict:
    """Median step latency at context L (module docstring) and the cache against the analysis."""
    model = dict(MODEL, **model)
    p, horizon = Pattern.from_spec(spec), max(2 * L, L + steps + 1)
    t0 = time.perf_counter()
    mixer = _mixer(p, device, dtype, model["d_model"], model["heads"], seed)
    cache = mixer.init_cache(horizon)
    u, _, _, _, feats = mixer._coefficients(torch.randn(1, 1, model["d_model"], device=device, dtype=dtype))
    keys = _keys(*feats)
    wide = [y.expand(1, L, *y.shape[2:]) for y in (u, keys, u)]      # input, key, state of one token
    cache.prefill(*wide)
    xs = torch.randn(steps + 1, 1, model["d_model"], device=device, dtype=dtype)
    sync(device)
    setup = time.perf_counter() - t0
    times, terms = [], []
    for x in xs:
        terms.append(sum(map(len, cache.sources(cache.t))))
        sync(device)
        t1 = time.perf_counter()
        mixer.step(x, cache)
        sync(device)
        times.append(time.perf_counter() - t1)
    t_last = cache.t - 1
    nbytes = cache_contents(cache)[0]
    per_entry = nbytes / cache.size if cache.size else 0.0
    peak, live = cache_peak(p, horizon), int(live_profile(p, horizon)[t_last])
    return dict(spec=spec, context=L, horizon=horizon, steps=steps, positions=[L, t_last], dtype=str(dtype)[6:],
                ms_step=1e3 * float(np.median(times[1:])), ms_step_min=1e3 * float(np.min(times[1:])),
                terms_mean=float(np.mean(terms[1:])), setup_s=setup, row_s=time.perf_counter() - t0,
                prefill="one token broadcast over L", cache_entries=cache.size, live_set=live, cache_peak=peak,
                cache_bytes=nbytes, bytes_per_entry=per_entry, cache_peak_bytes=peak * per_entry, **model)


@torch.no_grad()
def step_check(spec, L, device="cuda", steps=8, dtype=torch.float32, seed=0, **model) -> dict:
    """Prompt of L tokens through ``forward(x, cache)``, ``steps`` decoded tokens, against ``forward`` over all
    L + steps tokens: ``||step - forward|| / ||forward||``."""
    model = dict(MODEL, **model)
    mixer = _mixer(spec, device, dtype, model["d_model"], model["heads"], seed)
    x = torch.randn(1, L + steps, model["d_model"], device=device, dtype=dtype)
    cache = mixer.init_cache(L + steps)
    mixer(x[:, :L], cache=cache)
    out = torch.stack([mixer.step(x[:, L + i], cache) for i in range(steps)], 1)
    ref = mixer(x)[:, L:]
    err = float((out - ref).double().norm() / ref.double().norm())
    return dict(spec=spec, context=L, steps=steps, rel_err=err, tolerance=1e-5, passed=err <= 1e-5)


def summary(rows: list[dict], flat: float = FLAT_RATIO) -> list[dict]:
    """Per spec: latency and terms of the largest over the smallest context measured, and the targets:
    fenwick's ratio at most ``flat``; power2's at most ``flat`` times its terms' ratio (log-like growth). A
    target is judged (True / False) only when the contexts measured span ``CONTEXTS[0]`` to ``CONTEXTS[-1]``
    (the issue's 2^10 and 2^20); otherwise ``target_met`` is None and ``why`` says what is missing."""
    out = []
    for spec in dict.fromkeys(r["spec"] for r in rows if "ms_step" in r):
        mine = sorted((r for r in rows if r["spec"] == spec and "ms_step" in r), key=lambda r: r["context"])
        lo, hi = mine[0], mine[-1]
        s = dict(spec=spec, contexts=[lo["context"], hi["context"]], ratio=hi["ms_step"] / lo["ms_step"],
                 terms_ratio=hi["terms_mean"] / lo["terms_mean"],
                 log_ratio=np.log2(hi["context"]) / np.log2(lo["context"]),
                 cache_matches_live_set=all(r["cache_entries"] == r["live_set"] for r in mine))
        bound = {"fenwick": 1.0, "power2": s["terms_ratio"]}.get(spec)
        if bound is not None:
            s.update(target=f"ratio <= {flat}" + (" * terms_ratio" if spec == "power2" else ""),
                     target_met=s["ratio"] <= flat * bound)
            if lo["context"] > CONTEXTS[0] or hi["context"] < CONTEXTS[-1]:
                s.update(target_met=None, why=f"measured {lo['context']} to {hi['context']}; the target compares "
                                              f"{CONTEXTS[0]} with {CONTEXTS[-1]}")
        out.append(s)
    return out


def run(specs=SPECS, contexts=CONTEXTS, device="cuda", steps=50, budget_s=None, save=None, **model) -> dict:
    """Rows by increasing context (each spec), the check at the smallest, the summary; a row whose host time
    (setup, cache walk, analysis), predicted from the spec's last row (linear in L), would end past ``budget_s``
    is skipped and says so."""
    t0 = time.perf_counter()
    result = dict(model=dict(MODEL, **model), note=NOTE, rows=[], skipped=[], checks=[], summary=[])
    last = {}

    def add(key, row):
        result[key].append(row)
        result["summary"] = summary(result["rows"])
        print(row, flush=True)
        if save is not None:
            save(result)

    for spec in specs:
        try:
            add("checks", step_check(spec, min(contexts), device, **model))
        except Exception as e:
            add("checks", dict(spec=spec, error=error(e)))
    for L in sorted(contexts):
        for spec in specs:
            if budget_s is not None and spec in last:
                predicted = last[spec]["row_s"] * L / last[spec]["context"]
                if time.perf_counter() - t0 + predicted > budget_s:
                    add("skipped", dict(spec=spec, context=L, why=f"predicted {predicted:.1f} s, past the budget"))
                    continue
            try:
                last[spec] = decode_row(spec, L, device, steps, **model)
                add("rows", last[spec])
            except Exception as e:
                add("rows", dict(spec=spec, context=L, error=error(e)))
            free(device)
    return result


def main(argv=None) -> int:
    ap = parser(__doc__, "decode", SPECS)
    ap.add_argument("--contexts", default="10,14,17,20", help="log2 of the contexts")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--budget", type=float, default=None, help="seconds; later rows predicted past it are skipped")
    args = ap.parse_args(argv)
    run(args.specs.split(","), [2**int(k) for k in args.contexts.split(",")], args.device, args.steps, args.budget,
        saver(args.out, "gpu_decode.py"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
