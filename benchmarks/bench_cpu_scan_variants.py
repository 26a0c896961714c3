"""Two measurements behind docs/cpu_scan.md's account of the Numba scan (power2, d = 64, float32, n = 65536), each
against the kernel in the same run, the calls alternating:

* the two-pass variant (rejected): each block of C rows first takes every row's A term and its B terms on rows
  before the block (no row waits for another), then in order the terms inside the block. Timed with 2 threads and
  8 heads for C = 16 ... 128, and with one thread each pass alone (C = 64): if the first pass alone took as long as
  the kernel, the chain from row to row is not what limits it.
* a finer lag profile (``bench_cpu_scan.lag_profile``, one thread, 4 heads): lags one apart on either side of the
  multiples of 16 (16 rows of d = 64 float32 are 4 KiB).

    python benchmarks/bench_cpu_scan_variants.py [--quick] [--out PATH]
"""
from __future__ import annotations

import numba
import numpy as np

from bench_cpu_scan import D, DTYPE, HEADS, SPEC, lag_profile
from machine import best_of_each, machine, plan, write

from glrtheory import Pattern
from glrtheory.kernels.cpu import Tables, scan
from glrtheory.kernels.scan.cpu import FASTMATH, add_alternating, add_row
from glrtheory.kernels.scan.cpu_memory import BLOCK, register_block, row_length
from glrtheory.kernels.scan.cpu_out import aligned_empty
from glrtheory.recurrence import random_coefficients

FINE_LAGS = [2, 3, 4, 8, 12, 15, 16, 17, 20, 24, 31, 32, 33, 48, 63, 64, 65, 128, 129, 512, 513, 2048, 2049]
PASSES = {"both": 3, "first": 1, "second": 2}


@numba.njit(fastmath=FASTMATH)
def _two_pass(u, a, b, a_idx, b_idx, h, C, passes):
    """One sequence (d = ``BLOCK``), blocks of C rows: pass 1 (bit 1 of passes) ``h_t = A terms + B terms on rows
    < c0``, rows independent; pass 2 (bit 2) in order, ``h_t +=`` the terms on rows in the block, row t - 1's from
    registers."""
    n = h.shape[0]
    even, odd, prev = register_block(h.dtype), register_block(h.dtype), register_block(h.dtype)
    prev[:] = 0                   # uninitialised: row 0 takes 0 * prev, NaN where the stack held a NaN pattern
    first = np.empty(C, np.int64)
    for c0 in range(0, n, C):
        c1 = min(n, c0 + C)
        for t in range(c0, c1):
            end = row_length(b_idx, t)
            s = 0
            while s < end and b_idx[t, s] < c0:
                s += 1
            first[t - c0] = s
            if passes & 1:
                even[:] = 0
                odd[:] = 0
                add_row(odd, 0, t, u, a_idx, a)
                add_alternating(even, odd, t, h, b_idx, b, s)
                for k in range(BLOCK):
                    h[t, k] = even[k] + odd[k]
        if not passes & 2:
            continue
        for t in range(c0, c1):
            end = row_length(b_idx, t)
            last = end - 1 if end > first[t - c0] and b_idx[t, end - 1] == t - 1 else end
            for k in range(BLOCK):
                even[k] = h[t, k]
                odd[k] = 0
            for j in range(first[t - c0], last):
                c, xs = b[t, j], h[b_idx[t, j]]
                for k in range(BLOCK):
                    odd[k] += c * xs[k]
            c = b[t, last] if last < end else 0.0
            for k in range(BLOCK):
                even[k] = even[k] + odd[k] + c * prev[k]
                h[t, k] = even[k]
                prev[k] = even[k]


@numba.njit(parallel=True)
def two_pass(u, a, b, a_idx, b_idx, h, C, passes):
    """``_two_pass`` over the sequences, in parallel."""
    for i in numba.prange(h.shape[0]):
        _two_pass(u[i], a[i], b[i], a_idx, b_idx, h[i], C, passes)


def variant(n: int, rng, repeats: int) -> dict:
    p = Pattern.from_spec(SPEC)
    tables = Tables(p, n)
    a_idx, b_idx = tables
    a, b = random_coefficients(p, n, rng, (HEADS,), DTYPE)
    u = rng.standard_normal((HEADS, n, D), dtype=DTYPE)
    h, mine = aligned_empty(u.shape, u.dtype), aligned_empty(u.shape, u.dtype)
    scan(u, a, b, tables, out=h)
    errors = {}
    for C in (16, 32, 64, 128):                              # the variant computes the kernel's states
        mine[:] = np.nan
        two_pass(u, a, b, a_idx, b_idx, mine, C, PASSES["both"])
        errors[C] = float(np.abs(mine - h).max() / np.abs(h).max())
        assert errors[C] <= 1e-5, (C, errors[C])
    calls = {"kernel": lambda: scan(u, a, b, tables, out=h), "copy": lambda: np.copyto(h, u),
             **{f"two_pass C={C}": (lambda C=C: two_pass(u, a, b, a_idx, b_idx, mine, C, PASSES["both"]))
                for C in (16, 32, 64, 128)}}
    two = best_of_each(calls, repeats)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = best_of_each({"kernel": calls["kernel"], **{f"two_pass C=64 {name}": (
            lambda bits=bits: two_pass(u, a, b, a_idx, b_idx, mine, 64, bits)) for name, bits in PASSES.items()}},
            repeats)
    finally:
        numba.set_num_threads(threads)
    rows = [{"n": n, "method": name, "threads": count, "seconds": seconds}
            for count, t in ((threads, two), (1, one)) for name, seconds in t.items()]
    for r in rows:
        print(f"{r['threads']} threads {r['method']:28s} {r['seconds'] * 1e3:8.2f} ms", flush=True)
    return {"n": n, "heads": HEADS, "max_rel_err_vs_kernel": errors, "seconds_2_threads": two,
            "threads": threads, "seconds_1_thread": one, "rows": rows}


def main(argv=None) -> int:
    args, (n,), repeats, rng = plan(__doc__, argv, [65536], [2048], 9)
    passes = variant(n, rng, repeats)
    result = {"benchmark": "cpu_scan_variants", "spec": SPEC, "d": D, "dtype": "float32",
              "timing": f"best of {repeats}, calls alternating", "rows": passes.pop("rows"), "two_pass": passes,
              "fine_lag_profile": lag_profile(n, rng, repeats, FINE_LAGS, heads=4), "machine": machine()}
    write(result, args, "cpu_scan_variants")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
