"""Wall time of the commands whose ranks share ``RANKS_MAX_WORK``, with the shared budget and without it.

    python benchmarks/bench_shared_budget.py [--quick] [--out benchmarks/results/shared_budget.json]

``glr compare`` of ten patterns at n = 4096 with ``--rank``, and of five with ``--rank --plot`` (its plot ranks
every n = 16 .. 4096), each timed with the budget (``hankel.RANKS_MAX_WORK``) and with it raised past any rank
(each rank still within its own limit), from empty caches; and ``glr search --n 2^22 --max-hops 8`` (no rank).
One run each: these take minutes.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from machine import arguments, machine, write

from glrtheory.analysis import clear_caches, hankel
from glrtheory.cli import main as glr

TEN = ["ssm", "power2", "quadratic", "fenwick", "blocks", "attention", "window:64", "exponent:0.5", "power:3",
       "lags:1,2,3,5,8,13"]
FIVE = ["ssm", "power2", "quadratic", "attention", "exponent:0.5"]


def timed(argv: list[str]) -> dict:
    """Run ``glr argv`` from empty caches: its seconds and how many ranks it reports skipped."""
    clear_caches()
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = glr(argv)
    seconds = time.perf_counter() - start
    lines = out.getvalue().splitlines()
    return {"command": "glr " + " ".join(argv), "seconds": round(seconds, 2), "exit": code,
            "ranks_skipped": sum(line.startswith("skipped ") and "hankel_rank_max" in line for line in lines)}


def main(argv=None) -> int:
    args = arguments(__doc__.splitlines()[0], argv)
    n, hops_n = (64, 2**12) if args.quick else (4096, 2**22)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for specs, extra in [(TEN, []), (FIVE, ["--plot", str(Path(tmp) / "c.png")])]:
            command = ["compare", *specs, "--n", str(n), "--rank", *extra]
            for budget in ("shared", "unlimited"):
                saved = dict(hankel.RANKS_MAX_WORK)
                if budget == "unlimited":
                    hankel.RANKS_MAX_WORK.update(dict.fromkeys(saved, 2**62))
                try:
                    rows.append({"budget": budget, **timed(command)})
                finally:
                    hankel.RANKS_MAX_WORK.update(saved)
                print(rows[-1], flush=True)
    rows.append({"budget": "none (hops)", **timed(["search", "--n", str(hops_n), "--max-hops", "8"])})
    print(rows[-1], flush=True)
    write({"benchmark": "shared_budget", "machine": machine(), "rows": rows}, args, "shared_budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
