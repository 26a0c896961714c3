"""The generic Hankel rank at a cut exactly over F_p with random coefficients, by a two-sided sketch
(Numba), for ``method="exact"``.

With random ``Omega`` (inputs, n x K) and ``Psi`` (output weights, n x K), the sketch of the block at cut t
is a prefix sum of rank-2 terms (M is lower triangular, so ``M[:t+1, :] Omega = M[:t+1, :t+1] Omega[:t+1]``)::

    S_t = Psi[t+1:]^T M[t+1:, :t+1] Omega[:t+1]
        = Psi^T M[:, :t+1] Omega[:t+1] - Psi[:t+1]^T M[:t+1, :t+1] Omega[:t+1]
        = sum_{s <= t} P[s] Omega[s]^T - Psi[s] X[s]^T,    X = M Omega,  P = M^T Psi   (one sweep each)

Its leading k x k block, for k = min(live set, t + 1, n - t - 1) >= rank, has the rank of the block except
with probability <= k (n + 2) / (p - 1) (Schwartz-Zippel: its k x k minors have degree <= k (n + 2) in the
random values); it never exceeds the generic rank.
"""
from __future__ import annotations

import numba
import numpy as np

from ..prime_field import PRIME, fold, mod, rank_mod_p_inplace


@numba.njit(cache=True, inline="always")
def _axpy(y, a, x):
    """``y += a x`` mod p, in place."""
    for c in range(y.size):
        y[c] = mod(y[c] + a * x[c], PRIME)


@numba.njit(cache=True)
def forward_sweep(a_idx, a, b_idx, b, omega):
    """``X = M Omega`` mod p row by row: ``X[t] = sum_{A(t)} a Omega[s] + sum_{B(t)} b X[s]``."""
    X = np.zeros_like(omega)
    for t in range(omega.shape[0]):
        for j in range(a_idx.shape[1]):
            if a_idx[t, j] >= 0:
                _axpy(X[t], a[t, j], omega[a_idx[t, j]])
        for j in range(b_idx.shape[1]):
            if b_idx[t, j] >= 0:
                _axpy(X[t], b[t, j], X[b_idx[t, j]])
    return X


@numba.njit(cache=True)
def backward_sweep(a_idx, a, b_idx, b, psi):
    """``P = M^T Psi`` mod p: ``G = (I - B)^{-T} Psi`` for y descending, then ``P[s] = sum_{s in A(x)} a G[x]``."""
    G = psi.copy()
    for y in range(psi.shape[0] - 1, -1, -1):
        for j in range(b_idx.shape[1]):
            if b_idx[y, j] >= 0:
                _axpy(G[b_idx[y, j]], b[y, j], G[y])
    P = np.zeros_like(psi)
    for x in range(psi.shape[0]):
        for j in range(a_idx.shape[1]):
            if a_idx[x, j] >= 0:
                _axpy(P[a_idx[x, j]], a[x, j], G[x])
    return P


@numba.njit(cache=True)
def advance(S, lo, hi, sign, P, omega, psi, X):
    """``S += sign * sum_{lo <= s < hi} (P[s] Omega[s]^T - Psi[s] X[s]^T)`` mod p (sign = +1 or -1); the
    entries of S stay below 2^33 (folded, not fully reduced)."""
    k = S.shape[0]
    for s in range(lo, hi):
        for i in range(k):
            pi = P[s, i] if sign > 0 else PRIME - P[s, i]
            qi = PRIME - psi[s, i] if sign > 0 else psi[s, i]
            for j in range(k):
                S[i, j] = fold(fold(S[i, j] + pi * omega[s, j]) + qi * X[s, j])


def block_rank(S: np.ndarray, k: int) -> int:
    """Rank over F_p of the leading k x k block of S."""
    return int(rank_mod_p_inplace(S[:k, :k].copy(), PRIME))
