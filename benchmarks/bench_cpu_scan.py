"""CPU forward pass of ``power2`` (8 heads, d = 64, float32): the Numba kernel against
``scipy.sparse.linalg.spsolve_triangular`` (all heads), dense ``torch.linalg.solve_triangular``
(n <= 16384) and a plain copy of u into preallocated h (the memory floor), all in the same run. The
kernel runs with all numba threads (parallel over heads), into a preallocated 64-byte aligned h and into
outputs it allocates itself: recycled by its pool (the previous output dropped, or kept by the caller)
and, with the pool off, fresh memory on every call; these and the copy alternate call by call. It also
runs with one thread. The tables are validated once.

A lag profile (one thread, at the largest n) times what one more term per row costs by how far back
its state row lies, and power2 against the same lags with the k-th lag >= 16 made k rows larger
(k = 1 ... 12). power2's lags >= 16 all lie a multiple of 4 KiB back, so their rows share the same four
L1 sets; skewed, no two of them share L1 sets.

Targets at n = 65536: at least 30x faster than spsolve_triangular; at most 2x the copy time, also when
``scan`` allocates its output.

    python benchmarks/bench_cpu_scan.py [--quick] [--out PATH]
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse
from scipy.sparse.linalg import spsolve_triangular

from machine import best_of, best_of_each, machine, plan, write

from glrtheory import Pattern, solve
from glrtheory.kernels.cpu import Tables, scan
from glrtheory.kernels.scan import cpu_out
from glrtheory.kernels.scan.cpu_out import aligned_empty
from glrtheory.recurrence import random_coefficients

SPEC, HEADS, D, DTYPE = "power2", 8, 64, np.float32
DENSE_MAX = 16384
#: Extra B-lags beside lag 1 in the lag profile (d = 64 float32: a lag of L rows lies L/4 KiB back).
PROFILE_LAGS = [2, 16, 64, 512, 2048, 8192]


def system(b_idx: np.ndarray, b: np.ndarray) -> scipy.sparse.csr_matrix:
    """``I - B`` for one head as a sparse CSR matrix."""
    n = b_idx.shape[0]
    t, j = np.nonzero(b_idx >= 0)
    rows = np.concatenate([np.arange(n), t])
    cols = np.concatenate([np.arange(n), b_idx[t, j]])
    vals = np.concatenate([np.ones(n, b.dtype), -b[t, j]])
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def run(n: int, rng, repeats: int) -> list[dict]:
    p = Pattern.from_spec(SPEC)
    a_idx, b_idx = p.tables(n)
    a, b = random_coefficients(p, n, rng, (HEADS,), DTYPE)
    u = rng.standard_normal((HEADS, n, D), dtype=DTYPE)
    h = aligned_empty(u.shape, u.dtype)
    rows = []

    def row(method, seconds, **extra):
        rows.append({"n": n, "method": method, "seconds": seconds, **extra})
        print(f"n={n:6d} {method:28s} {seconds * 1e3:10.2f} ms", flush=True)

    scan(u, a, b, (a_idx, b_idx), out=h)
    ref = solve(p, a[:1], b[:1], u[:1])                      # float64 reference, head 0
    err = float(np.linalg.norm(h[:1] - ref) / np.linalg.norm(ref))
    tables = Tables((a_idx, b_idx))
    kept = []

    def keeping():                                           # the caller keeps the previous output
        kept[:] = [scan(u, a, b, tables)]

    def fresh_pages():                                       # no pool: fresh memory on every call
        pool_bytes, cpu_out.POOL_BYTES = cpu_out.POOL_BYTES, 0
        try:
            scan(u, a, b, tables)
        finally:
            cpu_out.POOL_BYTES = pool_bytes

    t = best_of_each({"numba": lambda: scan(u, a, b, tables, out=h), "numba_alloc": lambda: scan(u, a, b, tables),
                      "numba_alloc_kept": keeping, "numba_fresh_pages": fresh_pages,
                      "copy": lambda: np.copyto(h, u)}, repeats)
    kept.clear()
    threads = numba.get_num_threads()
    row("numba", t["numba"], rel_err_head0=err, threads=threads)
    row("numba_alloc", t["numba_alloc"], threads=threads,
        note="scan allocates its output; the previous one is dropped, so the pool recycles its slab")
    row("numba_alloc_kept", t["numba_alloc_kept"], threads=threads,
        note="scan allocates its output while the caller keeps the previous one (two slabs in turn)")
    row("numba_fresh_pages", t["numba_fresh_pages"], threads=threads,
        note="scan allocates fresh memory on every call (pool off): the OS zero-fills the pages")
    numba.set_num_threads(1)
    row("numba_1thread", best_of(lambda: scan(u, a, b, tables, out=h), repeats), threads=1)
    numba.set_num_threads(threads)
    row("copy", t["copy"])

    rhs = a[:, :, 0, None] * u                               # A U (A is diagonal for power2)
    mats = [system(b_idx, b[i]) for i in range(HEADS)]

    def sparse():
        for i in range(HEADS):
            h[i] = spsolve_triangular(mats[i], rhs[i], lower=True, unit_diagonal=True)

    row("spsolve_triangular", best_of(sparse, max(1, repeats // 3)),
        rel_err_head0=float(np.linalg.norm(h[:1] - ref) / np.linalg.norm(ref)))

    if n <= DENSE_MAX:
        import torch

        rhs_t = torch.from_numpy(rhs)
        # time only the solves: build each head's dense matrix once, outside the timer
        denses = [torch.from_numpy(mats[i].toarray()) for i in range(HEADS if n <= 4096 else 1)]
        per_head = best_of(lambda: [torch.linalg.solve_triangular(m, rhs_t[0], upper=False, unitriangular=True)
                                    for m in denses], max(1, repeats // 3)) / len(denses)
        row("torch_dense_solve_triangular", per_head * HEADS, heads_timed=len(denses),
            note="per-head solve time x 8 heads; dense matrices built outside the timer")
    return rows


def skewed(lags: list[int]) -> list[int]:
    """The k-th lag >= 16 made k rows larger (the others kept): rows then differ by k modulo 16, so no
    two of the far rows lie a multiple of 4 KiB apart (d = 64 float32: 16 rows are 4 KiB)."""
    far = [lag for lag in lags if lag >= 16]
    return [lag for lag in lags if lag < 16] + [lag + k for k, lag in enumerate(far, 1)]


def lag_profile(n: int, rng, repeats: int, profile_lags=PROFILE_LAGS, heads: int = HEADS) -> dict:
    """One thread: the cost of one more term per row by its lag (B = {1, L} against B = {1}, per term
    applied), and power2 against its lags with the k-th lag >= 16 made k rows larger (each far row in its
    own L1 sets). The calls alternate."""
    u = rng.standard_normal((heads, n, D), dtype=DTYPE)
    h = aligned_empty(u.shape, u.dtype)

    def call(b_lags):
        p = Pattern.from_lags((0,), b_lags)
        tables = Tables(p, n)
        a, b = random_coefficients(p, n, rng, (heads,), DTYPE)
        return lambda: scan(u, a, b, tables, out=h)

    lags = [lag for lag in profile_lags if lag < n]
    power2 = [1 << k for k in range(n.bit_length() - 1)]
    calls = {"lag 1": call([1]), **{f"lags 1,{lag}": call([1, lag]) for lag in lags},
             "power2": call(power2), "power2_far_lags_skewed": call(skewed(power2))}
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        t = best_of_each(calls, repeats)
    finally:
        numba.set_num_threads(threads)
    rows = [{"lag": lag, "kib_back": lag * D * np.dtype(DTYPE).itemsize / 1024,
             "ns_per_term": (t[f"lags 1,{lag}"] - t["lag 1"]) / (heads * (n - lag)) * 1e9} for lag in lags]
    for r in rows:
        print(f"lag {r['lag']:5d} ({r['kib_back']:6.0f} KiB back): {r['ns_per_term']:6.2f} ns per term, 1 thread")
    for name in ("power2", "power2_far_lags_skewed"):
        print(f"{name:28s} {t[name] * 1e3:10.2f} ms, 1 thread")
    return {"n": n, "threads": 1, "seconds": t, "extra_lag": rows}


def main(argv=None) -> int:
    args, sizes, repeats, rng = plan(__doc__, argv, [4096, 16384, 65536], [512, 2048], 7)
    rows = [r for n in sizes for r in run(n, rng, repeats)]
    profile = lag_profile(sizes[-1], rng, repeats)
    summary = []
    for n in sizes:
        t = {r["method"]: r["seconds"] for r in rows if r["n"] == n}
        summary.append({"n": n, "speedup_vs_spsolve": t["spsolve_triangular"] / t["numba"],
                        "numba_over_copy": t["numba"] / t["copy"],
                        "numba_alloc_over_copy": t["numba_alloc"] / t["copy"],
                        "numba_alloc_kept_over_copy": t["numba_alloc_kept"] / t["copy"],
                        "numba_fresh_pages_over_copy": t["numba_fresh_pages"] / t["copy"],
                        "speedup_vs_spsolve_1thread": t["spsolve_triangular"] / t["numba_1thread"],
                        "numba_1thread_over_copy": t["numba_1thread"] / t["copy"],
                        "speedup_vs_dense": (t["torch_dense_solve_triangular"] / t["numba"]
                                             if "torch_dense_solve_triangular" in t else None)})
        print(f"n={n}: {summary[-1]['speedup_vs_spsolve']:.1f}x faster than spsolve_triangular, "
              f"{summary[-1]['numba_over_copy']:.2f}x the copy time")
    last = summary[-1]
    result = {"benchmark": "cpu_scan", "spec": SPEC, "heads": HEADS, "d": D, "dtype": "float32",
              "machine": machine(), "timing": f"best of {repeats} (spsolve/dense: best of {max(1, repeats // 3)})",
              "rows": rows, "summary": summary, "lag_profile": profile,
              "targets_at_largest_n": {"n": last["n"], "spsolve_speedup_min": 30,
                                       "met_spsolve": bool(last["speedup_vs_spsolve"] >= 30),
                                       "copy_ratio_max": 2, "met_copy": bool(last["numba_over_copy"] <= 2),
                                       "met_copy_alloc": bool(max(last["numba_alloc_over_copy"],
                                                                 last["numba_alloc_kept_over_copy"]) <= 2)}}
    write(result, args, "cpu_scan")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
