"""Runtime against theory: the kernel's wall-clock ratio t(4n) / t(n) against the ratio of
``glrtheory.symbolic.costs.total_cost_bound`` (``nnz_a + nnz_b``, docs/quantities.md) at 4n and n.

One sample is the time of ``reps`` back-to-back calls, with ``reps`` calibrated so that a sample at n
takes at least 20 ms; the samples of the two sizes alternate, so that a neighbour's burst of work hits
both, and each size keeps its minimum. States are narrow (d = 4), so the
states of both sizes stay within the caches' reach and the time follows the operation count: with d = 64
the far lags of the larger size leave L2/L3 and the ratio rises by up to ~1.9x (measured), which would
hide a wrong complexity class. Numba runs on one thread: on a shared 2-core machine a second thread
measures the neighbours. A ratio outside the band is measured again on freshly allocated arrays, at most
``ATTEMPTS`` times in all: on 2026-12-01 (late) the unchanged CPU kernel failed one or two families in 5 of 9
runs of this file (ssm, quadratic, blocks, kron; ssm at 0.58 and kron at 1.79 of theory), the code of commit
ab2699b alike, each family passing when run again. A failing ratio held through all samples of one measurement
although the samples alternate sizes: a property of those arrays (their pages, say), not of the moment. A wrong
complexity class is off in every attempt and still fails. Select with
``-m timing``, skip with ``-m 'not timing'``.
"""
import time

import numba
import numpy as np
import pytest

from glrtheory import Pattern
from glrtheory.kernels.cpu import Tables, scan
from glrtheory.recurrence import random_coefficients
from glrtheory.symbolic.costs import evaluate, total_cost_bound

pytestmark = pytest.mark.timing

D = 4
#: kron's rows are long and scattered, and its tables stop at n = 4096: at n = 2^10, d = 16 a call is
#: long enough to hide the per-call and per-row costs while u, h and out at 4n (768 KiB) stay in one
#: core's 1 MiB L2. Measured ratio / theory over 6 repeats each (quiet machine): d = 16 at 2^10
#: 0.89-0.95; d = 128 at 2^9 0.65-0.91 (3 MiB at 4n leaves L2); d = 8 at 2^10 0.82-0.84 (row overhead).
WIDE = {"kron:1,11": 16}
MIN_SAMPLE = 0.020
SAMPLES = 7
ATTEMPTS = 3
#: The kernel's own CPU time: with one numba thread the kernel runs in the calling thread, and the
#: thread's CPU clock does not count the time the neighbours' processes hold the core.
CLOCK = time.thread_time
#: measured / theoretical ratio must lie within [LOW, HIGH]. The band is wider upwards: cache effects at
#: 4n can only slow a multiply-add down; only fixed per-call costs pull the ratio down.
#: What it can separate: a kernel whose true cost grows like n^e against a theory of n^f fails only when
#: 4^(e - f) > HIGH or < LOW, i.e. e - f > log4(1.6) = 0.34 or f - e > log4(1.45) = 0.27. So it tells
#: n from n^1.5 (ratio 4 vs 8), n^1.5 from n^2 (8 vs 16), n^log2(3) from n^2 (9 vs 16) and n log n from
#: n^1.5 (4.5 vs 8 at n = 2^13), and it can NOT tell n from n log n (4 vs ~4.5), n^1.5 from n^log2(3)
#: (8 vs 9) or n log n from n log^2 n: those need the exact operation counts, which the symbolic and
#: analysis tests check.
LOW, HIGH = 1 / 1.45, 1.6

#: family -> n (4n is timed too)
SIZES = {"ssm": 2**17, "window:7": 2**17, "lags:1,3,8": 2**17, "power2": 2**16, "power:3": 2**16,
         "quadratic": 2**13, "exponent:0.5": 2**13, "fenwick": 2**16, "blocks": 2**12,
         "kron:1,11": 2**10, "attention": 2**9, "window:3+power2": 2**16}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def elapsed(args, reps: int) -> float:
    u, a, b, tables, out = args
    t0 = CLOCK()
    for _ in range(reps):
        scan(u, a, b, tables, out=out)
    return CLOCK() - t0


def best_ratio(small, large, reps: int) -> float:
    """min over SAMPLES of t(large) / min over SAMPLES of t(small), the samples alternating."""
    times = np.array([[elapsed(small, reps), elapsed(large, reps)] for _ in range(SAMPLES)])
    return times[:, 1].min() / times[:, 0].min()


def problem(p, n, rng, d):
    tables = Tables(p, n)                                     # validated once, outside the timer
    a, b = random_coefficients(p, n, rng, (), np.float32)
    u = rng.standard_normal((n, d), dtype=np.float32)
    return u, a, b, tables, np.zeros_like(u)


def measured_ratio(p, n, rng, d) -> float:
    """t(4n) / t(n) on fresh arrays (``best_ratio``), with ``reps`` calibrated on the warm small size."""
    small, large = problem(p, n, rng, d), problem(p, 4 * n, rng, d)
    scan(*small[:4], out=small[4])                            # compile / warm up
    t0 = CLOCK()
    scan(*small[:4], out=small[4])
    reps = max(1, int(np.ceil(MIN_SAMPLE / max(CLOCK() - t0, 1e-6))))
    return best_ratio(small, large, reps)


@pytest.mark.parametrize("spec", list(SIZES))
def test_runtime_ratio_matches_theory(spec, rng):
    p, n = Pattern.from_spec(spec), SIZES[spec]
    cost = evaluate(total_cost_bound(p), [n, 4 * n])
    theory = cost[1] / cost[0]
    measured = []
    while len(measured) < ATTEMPTS and not (measured and LOW <= measured[-1] / theory <= HIGH):
        measured.append(float(measured_ratio(p, n, rng, WIDE.get(spec, D))))
    print(f"{spec}: n={n} measured {[round(m, 2) for m in measured]} theory {theory:.2f}")     # one per attempt
    assert LOW <= measured[-1] / theory <= HIGH, f"{spec}: t(4n)/t(n) = {measured} in turn, theory {theory:.2f}"
