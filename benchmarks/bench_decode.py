"""Per-token decode latency against the context length L = 2^10 ... 2^20 (4 heads, d = 64, float32):
``fenwick`` (O(log n) live states; target: latency(2^20) / latency(2^10) <= 1.3), ``power2`` (O(log n)
work per token, but an O(n) cache) and ``attention`` (the KV-cache decode, O(n) work) for contrast, with
``ssm`` (two terms per token) as the baseline: ``latency - latency(ssm)`` removes the fixed per-step
overhead (about 20 us of Python), and for power2 it should grow like log L (its extra terms, log2 L).

The cache (horizon 2L: decoding continues to twice the context) is prefilled to the live set after
step L - 1 (``DecodeCache.prefill``), then a few tokens are decoded one by one; the latency of a token is the median
over them (the minimum is recorded too).
Each row also records the theory for those steps: |A(t)| + |B(t)| and the live-set size.

    python benchmarks/bench_decode.py [--quick] [--out PATH]      (chart: results/decode.png)
"""
from __future__ import annotations

import time

import numpy as np

from machine import RESULTS, arguments, machine, write

from glrtheory import Pattern
from glrtheory.analysis import decode_costs, live_profile
from glrtheory.kernels.decode import DecodeCache

SPECS, HEADS, D, DTYPE = ("ssm", "fenwick", "power2", "attention"), 4, 64, np.float32


def latency(spec: str, L: int, steps: int, rng) -> dict:
    n = 2 * L                                                 # the decoder goes on to 2L: keep what that needs
    p = Pattern.from_spec(spec)
    cache = DecodeCache(p, n, d=D, batch=(HEADS,), dtype=DTYPE)
    # prefill values do not change the work; a broadcast view avoids materializing L states
    state = np.broadcast_to(rng.standard_normal((HEADS, 1, D)).astype(DTYPE), (HEADS, L, D))
    cache.prefill(state, state * DTYPE(0.5))
    u = rng.standard_normal((steps, HEADS, D)).astype(DTYPE)
    a = rng.uniform(0.5, 1.5, (steps, HEADS, cache.a.width)).astype(DTYPE)
    b = (rng.uniform(-1, 1, (steps, HEADS, cache.b.width)) / max(cache.b.width, 1)).astype(DTYPE)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        cache.step(u[i], a[i], b[i])
        times.append(time.perf_counter() - t0)
    times = np.array(times[1:])                               # the first step may page memory in
    costs = decode_costs(p, n)[L: L + steps]
    return {"spec": spec, "L": L, "seconds": float(np.median(times)), "min_seconds": float(times.min()),
            "steps": steps, "decode_cost_mean": float(costs.mean()),
            "live_set": int(live_profile(p, n)[L - 1]), "cache_bytes": cache.nbytes}


def chart(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for spec in SPECS:
        r = [x for x in rows if x["spec"] == spec]
        ax.loglog([x["L"] for x in r], [x["seconds"] * 1e6 for x in r], "o-", base=2, label=spec)
    ax.set_xlabel("context length L")
    ax.set_ylabel("per-token latency (us, median)")
    ax.set_title(f"decode step, {HEADS} heads x d={D}, float32")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv=None) -> int:
    args = arguments(__doc__.splitlines()[0], argv)
    exps = range(6, 10) if args.quick else range(10, 21)
    rng = np.random.default_rng(0)
    rows = []
    for spec in SPECS:
        for e in exps:
            steps = 8 if args.quick else (16 if spec == "attention" and e >= 17 else 64)
            rows.append(latency(spec, 2**e, steps, rng))
            r = rows[-1]
            print(f"{spec:10s} L=2^{e:2d} {r['seconds'] * 1e6:10.1f} us/token  cost {r['decode_cost_mean']:9.1f}"
                  f"  live {r['live_set']}", flush=True)
    lat = {(r["spec"], r["L"]): r["seconds"] for r in rows}
    lo, hi = 2 ** exps[0], 2 ** exps[-1]
    ratios = {spec: lat[spec, hi] / lat[spec, lo] for spec in SPECS}
    print("latency ratio L_max / L_min:", {k: round(v, 3) for k, v in ratios.items()})
    excess = {spec: [lat[spec, 2**e] - lat["ssm", 2**e] for e in exps] for spec in ("fenwick", "power2")}
    slope = {spec: float(np.polyfit(list(exps), excess[spec], 1)[0]) for spec in excess}
    print("excess over ssm (us):", {k: [round(x * 1e6, 2) for x in v] for k, v in excess.items()})
    result = {"benchmark": "decode", "heads": HEADS, "d": D, "dtype": "float32", "machine": machine(),
              "timing": "median per-token latency over the decoded steps after prefill (first step dropped)",
              "rows": rows, "latency_ratio_max_over_min_L": ratios,
              "excess_over_ssm_seconds": {"log2_L": list(exps), **excess},
              "excess_slope_seconds_per_doubling": slope,
              "fenwick_target": {"max_ratio": 1.3, "met": bool(ratios["fenwick"] <= 1.3)}}
    path = write(result, args, "decode")
    if path is not None:
        chart(rows, path.with_suffix(".png") if args.out is not None else RESULTS / "decode.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
