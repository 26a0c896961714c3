"""LTI lag patterns: the Numba kernel against ``scipy.signal.lfilter`` with the equivalent denominator.

With coefficients that depend only on the lag, ``h_t = u_t + sum_{l in L} c_l h_{t-l}`` is the IIR filter
``H(z) = 1 / (1 - sum_l c_l z^-l)``: lfilter(``[1]``, ``[1, -c_1, ..., -c_maxlag]``) over the time axis
(d = 64 channels, float64, one sequence). lfilter costs O(n x largest lag) (every denominator slot, zero
or not); the kernel costs ``nnz_a + nnz_b`` (docs/quantities.md). lfilter runs whose estimated work
n x (largest lag + 1) x d exceeds ``LFILTER_MAX_WORK`` are skipped and marked so.

    python benchmarks/bench_lti.py [--quick] [--out PATH]
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from machine import best_of, machine, plan, write

from glrtheory import Pattern
from glrtheory.analysis import nnz
from glrtheory.kernels.cpu import scan

SPECS = ("ssm", "lags:1,3,8", "power2", "quadratic", "exponent:0.5")
D = 64
LFILTER_MAX_WORK = 2e10


def run(spec: str, n: int, rng, repeats: int) -> list[dict]:
    p = Pattern.from_spec(spec)
    lags = p.support_b(n).lags
    a_idx, b_idx = p.tables(n)
    c = rng.uniform(-1, 1, lags.size)
    c *= 0.9 / np.abs(c).sum()                                # sum |c_l| < 1: stable
    by_lag = np.zeros(n)
    by_lag[lags] = c
    t = np.arange(n)[:, None]
    b = np.where(b_idx >= 0, by_lag[np.clip(t - b_idx, 0, n - 1)], 0.0)
    a = np.ones(a_idx.shape)
    u = rng.standard_normal((n, D))
    den = np.zeros(int(lags.max(initial=0)) + 1)
    den[0] = 1.0
    den[lags] = -c
    h = np.empty_like(u)
    kernel = best_of(lambda: scan(u, a, b, (a_idx, b_idx), out=h), repeats)
    na, nb = nnz(p, n)
    rows = [{"spec": spec, "n": n, "method": "numba", "seconds": kernel, "work": (na + nb) * D}]
    work = n * den.size * D
    if work <= LFILTER_MAX_WORK:
        ref = lfilter([1.0], den, u, axis=0)
        err = float(np.linalg.norm(h - ref) / np.linalg.norm(ref))
        rows.append({"spec": spec, "n": n, "method": "lfilter", "work": work, "rel_err_vs_numba": err,
                     "seconds": best_of(lambda: lfilter([1.0], den, u, axis=0), max(1, repeats // 3))})
    for r in rows:
        print(f"{spec:12s} n={n:6d} {r['method']:8s} {r['seconds'] * 1e3:10.2f} ms  work {r['work']:.3g}",
              flush=True)
    if work > LFILTER_MAX_WORK:
        print(f"{spec:12s} n={n:6d} lfilter  skipped: work {work:.3g} > {LFILTER_MAX_WORK:.0e}")
    return rows


def main(argv=None) -> int:
    args, sizes, repeats, rng = plan(__doc__, argv, [4096, 16384, 65536], [256, 1024], 5)
    rows = [r for spec in SPECS for n in sizes for r in run(spec, n, rng, repeats)]
    speedups = []
    for spec in SPECS:
        for n in sizes:
            t = {r["method"]: r for r in rows if r["spec"] == spec and r["n"] == n}
            if "lfilter" in t:
                speedups.append({"spec": spec, "n": n, "speedup": t["lfilter"]["seconds"] / t["numba"]["seconds"],
                                 "rel_err": t["lfilter"]["rel_err_vs_numba"]})
    result = {"benchmark": "lti", "d": D, "dtype": "float64", "machine": machine(),
              "timing": f"best of {repeats} (lfilter: best of {max(1, repeats // 3)})",
              "lfilter_max_work": LFILTER_MAX_WORK, "rows": rows, "speedup_vs_lfilter": speedups}
    write(result, args, "lti")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
