"""Exact linear algebra over the prime field F_p, p = 2^31 - 1, for *generic* ranks.

A generic rank is the rank when the coefficients on the supports are independent indeterminates. Drawing
them uniformly from F_p gives that rank except with probability at most D / p for a minor of degree D
(Schwartz--Zippel). Entries of ``M = (I - B)^{-1} A`` have degree <= n in the coefficients, so an r x r
minor has degree <= r n <= n^2: at n = 128 the failure probability is below 1e-5 per cut. Floating-point
rank of M is not used: with random coefficients its entries grow like products along paths.

Arithmetic is int64: residues are < 2^31, so a product of two is < 2^62 and never overflows.
"""
from __future__ import annotations

import numba
import numpy as np

from .errors import GLRError
from .patterns import Pattern
from .patterns.support import check_length

#: The Mersenne prime 2^31 - 1.
PRIME = 2**31 - 1
#: Largest n for exact work over F_p (an n x n int64 matrix and up to n eliminations).
EXACT_MAX_N = 512


def rank_mod_p(x, prime: int = PRIME) -> int:
    """Rank over F_prime of an integer matrix, by Gaussian elimination (vectorized per pivot)."""
    a = np.array(x, dtype=np.int64, copy=True)
    if a.ndim != 2:
        raise GLRError(f"rank_mod_p needs a 2-d matrix, got shape {a.shape}")
    if not 2 <= prime <= PRIME:
        raise GLRError(f"prime must lie in [2, 2^31-1], got {prime}")
    a %= prime
    rows, cols = a.shape
    r = 0
    for c in range(cols):
        if r == rows:
            break
        nz = np.flatnonzero(a[r:, c])
        if not nz.size:
            continue
        piv = r + int(nz[0])
        if piv != r:
            a[[r, piv], c:] = a[[piv, r], c:]
        a[r, c:] = a[r, c:] * pow(int(a[r, c]), prime - 2, prime) % prime
        below = r + 1 + np.flatnonzero(a[r + 1:, c])
        if below.size:
            a[below, c:] = (a[below, c:] - a[below, c][:, None] * a[r, c:][None, :]) % prime
        r += 1
    return r


@numba.njit(cache=True, inline="always")
def fold(x):
    """A value < 2^32 congruent to ``0 <= x < 2^63`` modulo 2^31 - 1 (``2^31 = 1`` mod p)."""
    return (x & 2147483647) + (x >> 31)


@numba.njit(cache=True, inline="always")
def mod(x, prime):
    """``x mod prime`` for ``0 <= x < 2^63``; two folds instead of a division when prime = 2^31 - 1."""
    if prime == 2147483647:
        x = fold(fold(x))
        return x - prime if x >= prime else x
    return x % prime


@numba.njit(cache=True)
def inverse_mod(x, prime):
    """``x^(prime - 2) = x^(-1)`` mod prime (Fermat), by squaring; x reduced and non-zero."""
    inv, base, e = 1, x, prime - 2
    while e > 0:
        if e & 1:
            inv = mod(inv * base, prime)
        base = mod(base * base, prime)
        e >>= 1
    return inv


@numba.njit(cache=True)
def find_pivot(a, r, c, prime):
    """Reduce ``a[r:, c]`` mod prime in place and return the first row >= r with a non-zero there (-1: none)."""
    piv = -1
    for i in range(r, a.shape[0]):
        a[i, c] = mod(a[i, c], prime)
        if piv < 0 and a[i, c] != 0:
            piv = i
    return piv


@numba.njit(cache=True)
def rank_mod_p_inplace(a, prime):
    """Rank over F_prime of a non-negative int64 matrix (entries < 2^33), by Gaussian elimination that
    overwrites ``a`` (Numba, O(rows x cols x rank)). For p = 2^31 - 1 the updates fold once and stay below
    2^33 (``2^31 = 1`` mod p); a pivot column and row are reduced fully before use."""
    rows, cols = a.shape
    r = 0
    for c in range(cols):
        if r == rows:
            break
        piv = find_pivot(a, r, c, prime)
        if piv < 0:
            continue
        if piv != r:
            for j in range(c, cols):
                a[r, j], a[piv, j] = a[piv, j], a[r, j]
        inv = inverse_mod(a[r, c], prime)
        for j in range(c, cols):
            a[r, j] = mod(mod(a[r, j], prime) * inv, prime)
        for i in range(r + 1, rows):
            if a[i, c] != 0:
                g = prime - a[i, c]                     # row_i += (-a[i, c]) row_r
                if prime == 2147483647:
                    for j in range(c, cols):
                        a[i, j] = fold(a[i, j] + g * a[r, j])
                else:
                    for j in range(c, cols):
                        a[i, j] = (a[i, j] + g * a[r, j]) % prime
        r += 1
    return r


def random_coefficients_mod_p(pattern: Pattern, n: int, seed=None, prime: int = PRIME):
    """Tables of ``pattern`` at length n and coefficients drawn uniformly from F_prime \\ {0}.

    Returns ``(a_idx, b_idx, a, b)``; padded slots hold 0.
    """
    n = check_length(n)
    if n > EXACT_MAX_N:
        raise GLRError(f"exact work over F_p is limited to n <= {EXACT_MAX_N}, got n={n}")
    a_idx, b_idx = pattern.tables(n)
    rng = np.random.default_rng(seed)
    a = np.where(a_idx >= 0, rng.integers(1, prime, size=a_idx.shape, dtype=np.int64), 0)
    b = np.where(b_idx >= 0, rng.integers(1, prime, size=b_idx.shape, dtype=np.int64), 0)
    return a_idx, b_idx, a, b


def mixing_matrix_mod_p(a_idx, b_idx, a, b, prime: int = PRIME) -> np.ndarray:
    """``M = (I - B)^{-1} A`` over F_prime by forward substitution: ``M[t] = A[t] + sum_s b[t,s] M[s]``."""
    n = a_idx.shape[0]
    M = np.zeros((n, n), dtype=np.int64)
    for t in range(n):
        ja = a_idx[t] >= 0
        M[t, a_idx[t, ja]] = a[t, ja] % prime
        jb = b_idx[t] >= 0
        if jb.any():
            M[t] = (M[t] + (b[t, jb, None] % prime * M[b_idx[t, jb]] % prime).sum(axis=0)) % prime
    return M
