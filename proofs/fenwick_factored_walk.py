"""Factored fenwick is a two-lag recurrence: one combined state a chunk, walked as ssm's boundary states are.

Statement. Take fenwick's ``B(t) = {t-1, (t-1) & (t-2), ..., 0}`` (``t - 1`` with its lowest set bits cleared one
at a time) with factored coefficients ``b[t, s] = f_t h_s``, as ``GLRMixer``'s source scores without a lag bias
give (``fenwick_factored_carries``), and ``H_t = a_t u_t + f_t sum_{s in B(t)} h_s H_s``. Let

    P_t = sum_{s in B(t + 1)} h_s H_s,   so that   H_t = a_t u_t + f_t P_{t-1}   (t >= 1),   H_0 = a_0 u_0.

Because ``B(t + 1) = {t} + B((t & (t - 1)) + 1)`` (t >= 1; ``B(1) = {0}``),

    P_t = h_t H_t + P_{t & (t-1)}   (t >= 1),   P_0 = h_0 H_0:

a recurrence with two lags, t - 1 (through H_t) and the Fenwick parent ``t & (t - 1)``. With chunks of C = 2^k rows
``cC + 1 .. cC + C``, a row ``t = cC + r`` reads ``t - 1`` and, for r < C, ``cC + (r & (r - 1))``: inside the chunk
or ``cC`` itself. So every row's reads from outside are the one state ``Z_c = P_{cC}``: ``H_t = H^loc_t + e_t Z_c``
(the carries have rank 1, as ``fenwick_factored_carries`` found in the kernels' layout). The chunk's last row
``(c + 1) C`` also reads its parent ``clear(c + 1) C`` (``clear(x) = x & (x - 1)``), whose P is an earlier chunk's Z:

    Z_{c+1} = L_c + g_c Z_c + Z_{clear(c+1)},   Z_0 = h_0 a_0 u_0,

``L_c`` the last row's P with ``Z_c = 0`` (a ``d_k x d_v`` product of the chunk's keys and values) and ``g_c`` a
scalar (where c + 1 is odd, ``clear(c + 1) = c``: the last row reads Z_c twice). That is ssm's boundary walk
(``Z_{c+1} = L_c + g_c Z_c``) plus one earlier state added a step.

Consequence (an estimate from measured parts, not a measurement). A forward of this form runs ssm's kernels with one
more state read a walk step, one chunk inverse (fenwick's rows are not a running product) in place of ssm's
``decay_sums``, and the chunk output of ssm reading its M from that inverse. Measured in ``gpu_calls/call154`` at
B2 T16384 H16 D128 bf16: ssm's walk 0.275 ms, chunk output 0.270, ``decay_sums`` 0.013; fenwick's two chunk
inverses 0.141 (0.070 each). Without the extra reads that is 0.275 + 0.270 + 0.070 = 0.615 ms, against the 0.645 ms
that 1.5x fla's ``chunk_simple_gla`` (0.430 ms) allows, and 0.85-0.9 ms for the lead of
``fenwick_factored_carries``: a margin of 5%, which the walk's added reads (one state of 32 KB in bf16 a step) and
the chunk output's M from an inverse would have to fit in.
Measured since (``kernels/scan/readout_factored.py``, ``gpu_calls/call206``, H200): built so, the forward took
1.308 ms against fla's 0.434, slower than fenwick's generic readout (1.070): its walk 0.570 ms, chunk output 0.308,
chunk inverses 0.105 (one tf32 pass, 0.070 was two launches' mean at three). ssm's walk and output with these
inverses would come to 0.654 ms, over the 0.651 that 1.5x this run's fla allows: the estimate holds no margin.

Derivation. The chain identity ``B(t + 1) = {t} + B((t & (t - 1)) + 1)`` on fenwick's own tables for every t < 2^12;
sympy: the two recurrences give the same H, symbolically in a, f, h and u, for n = 12. Check, exhaustively, mod
p = 2^31 - 1 with random coefficients and scalar states (the recurrence is linear, so a scalar per entry of the
d_k x d_v state is the general case): for every n = 1 .. 2^8 + 1 and chunks of 2, 4, 8 and 16, the walk (each chunk
run alone with its input and Z_c = 0, then with Z_c = 1 and no input, then its parent's state alone) gives every
``H_t``, and every ``Z_c`` equals ``P_{cC}`` of the direct recurrence.
"""
import numpy as np
import sympy as sp

from glrtheory.patterns.structured import fenwick_table
from glrtheory.prime_field import PRIME


def _parent_chain(n: int) -> None:
    """``B(t + 1) = {t} + B((t & (t - 1)) + 1)`` on fenwick's tables, t = 1 .. n - 2."""
    table = fenwick_table(n)
    B = [set(int(s) for s in row if s >= 0) for row in table]
    for t in range(1, n - 1):
        assert B[t + 1] == {t} | B[(t & (t - 1)) + 1], t


def _direct(n, a, f, h, u, mod=None):
    """H and P of ``H_t = a_t u_t + f_t sum_{s in B(t)} h_s H_s`` (fenwick's tables), ``P_t`` summed over B(t+1)."""
    table = fenwick_table(n + 1)
    red = (lambda x: x % mod) if mod else (lambda x: x)          # noqa: E731
    H, P = [], []
    for t in range(n):
        H.append(red(a[t] * u[t] + f[t] * sum((h[int(s)] * H[int(s)] for s in table[t] if s >= 0), 0)))
    for t in range(n):
        P.append(red(sum((h[int(s)] * H[int(s)] for s in table[t + 1] if s >= 0), 0)))
    return H, P


def derive():
    _parent_chain(2**12)
    n = 12
    a, f, h, u = (sp.symbols(f"{x}0:{n}") for x in "afhu")
    H, _ = _direct(n, a, f, h, u)
    Hp, P = [a[0] * u[0]], [h[0] * a[0] * u[0]]
    for t in range(1, n):
        Hp.append(a[t] * u[t] + f[t] * P[t - 1])
        P.append(h[t] * Hp[t] + P[t & (t - 1)])
    assert all(sp.expand(x - y) == 0 for x, y in zip(H, Hp))
    print(f"B(t+1) = {{t}} + B((t & (t-1)) + 1) for t < 2^12; for n = {n} the two-lag recurrence "
          f"P_t = h_t H_t + P_(t & (t-1)), H_t = a_t u_t + f_t P_(t-1) gives fenwick's H symbolically")


def _chunk(c, C, n, a, f, h, u, Z, Z_parent, inputs: bool):
    """Rows ``cC + 1 .. min(cC + C, n - 1)`` of the two-lag recurrence mod p, reading ``Z = P_{cC}`` and, at
    row (c + 1) C, ``Z_parent`` for its parent's P (``P_{cC}`` again where c + 1 is odd); u only if ``inputs``.
    Returns {t: H_t} and the last row's P."""
    P, H = {c * C: Z}, {}
    for t in range(c * C + 1, min(c * C + C, n - 1) + 1):
        H[t] = ((a[t] * u[t] if inputs else 0) + f[t] * P[t - 1]) % PRIME
        P[t] = (h[t] * H[t] + (P[t & (t - 1)] if t < (c + 1) * C else Z_parent)) % PRIME
    return H, P[max(H, default=c * C)]


def _walk(n, C, a, f, h, u):
    """H by the chunk walk: ``H_t = H^loc_t + e_t Z_c``, ``Z_{c+1} = L_c + g_c Z_c + Z_{clear(c+1)}``."""
    Z, H = [h[0] * a[0] * u[0] % PRIME], {0: a[0] * u[0] % PRIME}
    for c in range((n - 2) // C + 1 if n > 1 else 0):
        local, L = _chunk(c, C, n, a, f, h, u, 0, 0, True)
        carry, g = _chunk(c, C, n, a, f, h, u, 1, 0, False)
        _, one = _chunk(c, C, n, a, f, h, u, 0, 1, False)
        H.update({t: (local[t] + carry[t] * Z[c]) % PRIME for t in local})
        if max(local) == (c + 1) * C:                            # a full chunk: its last row is Z_{c+1}
            assert one == 1
            Z.append((L + g * Z[c] + Z[(c + 1) & c]) % PRIME)
    return [H[t] for t in range(n)], Z


def check(n_max=2**8 + 1, chunks=(2, 4, 8, 16)):
    rng = np.random.default_rng(0)
    runs = 0
    for n in range(1, n_max + 1):
        a, f, h, u = ([int(x) for x in rng.integers(1, PRIME, n + 1)] for _ in range(4))
        H, P = _direct(n, a, f, h, u, PRIME)
        for C in chunks:
            Hw, Z = _walk(n, C, a, f, h, u)
            assert Hw == H, (n, C)
            assert Z == [P[c * C] for c in range(len(Z))], (n, C)
            runs += 1
    assert runs == 4 * n_max
    print(f"checked {runs} (n, C) pairs, n = 1..{n_max}, chunks {chunks}: the walk over one combined state a chunk "
          f"gives fenwick's H exactly (mod p), and Z_c = P_(cC)")
    ssm_walk, ssm_out, inverse, fla = 0.275, 0.270, 0.141 / 2, 0.430      # ms, gpu_calls/call154 (fla: call139)
    floor = ssm_walk + ssm_out + inverse
    assert floor < 1.5 * fla < 1.07 * floor
    print(f"estimate: ssm's walk + chunk output + one chunk inverse = {floor:.3f} ms, against 1.5 x fla = "
          f"{1.5 * fla:.3f} ms: a margin of {1.5 * fla / floor - 1:.0%} for the added reads")
