"""Time ``glrtheory.analysis.analyze`` (what ``glr analyze SPEC --n N --json`` computes) for every built-in
family at n = 2^10 ... 2^20; write benchmarks/results/analyze.json with the machine recorded.

    python benchmarks/bench_analyze.py [--max-log2 20] [--repeat 1] [--out benchmarks/results/analyze.json]

Each measurement starts from empty caches (supports are rebuilt); numba functions are compiled once in a
warm-up at n = 64 before timing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from machine import machine

from glrtheory import Pattern
from glrtheory import analysis as an

SPECS = ["ssm", "attention", "window:64", "lags:1,3,8", "power2", "power:3", "quadratic", "exponent:0.5",
         "fenwick", "blocks", "kron:1,11"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-log2", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1, help="timings per point; the minimum is kept")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "analyze.json"))
    args = ap.parse_args(argv)
    for spec in SPECS:  # warm-up: numba compilation / cache load
        an.analyze(Pattern.from_spec(spec), 64)
    results = []
    for spec in SPECS:
        p = Pattern.from_spec(spec)
        for k in range(10, args.max_log2 + 1):
            n = 2**k
            best = float("inf")
            for _ in range(args.repeat):
                an.clear_caches()
                start = time.perf_counter()
                report = an.analyze(p, n)
                best = min(best, time.perf_counter() - start)
            results.append({"spec": spec, "n": n, "seconds": round(best, 4), "cache_peak": report["cache_peak"],
                            "hop_diameter": report["hop_diameter"]})
            print(f"{spec:<12} n=2^{k:<3} {best:8.3f} s", flush=True)
    out = {"benchmark": "analyze(p, n) for every built-in family", "command": " ".join(sys.argv),
           "machine": machine(), "results": results,
           "max_seconds_at_2^20": max((r["seconds"] for r in results if r["n"] == 2**20), default=None)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
