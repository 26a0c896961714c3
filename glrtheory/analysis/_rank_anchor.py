"""Ranks of ``S + U V^T`` for many low-rank changes U V^T of one matrix S over F_p (p = 2^31 - 1), after a
single factorization of S (Numba): the exact rank of nearby cuts without a new elimination each.

With ``T S = E`` in reduced row echelon form (T invertible, r pivot rows, pivot columns Pv) and the bordered
identity ``rank(S + U V^T) = rank([[S, U], [-V^T, I_m]]) - m`` (Schur complement of ``I_m``), row and column
operations with the pivots of E reduce the bordered matrix to ``r`` plus the rank of
``[[0, B], [R, J]]`` with ``W = T U``, ``B = W[r:]``, ``R = (-V^T + V^T[:, Pv] E[:r])`` on the non-pivot
columns and ``J = I_m + V^T[:, Pv] W[:r]``; bases of the row space of B and of the column space of R then
leave a core of size at most 2m x 2m. Cost O(K^2 m + K m^2) per change instead of O(K^3).
"""
from __future__ import annotations

import numba
import numpy as np

from ..prime_field import PRIME, find_pivot, fold, inverse_mod, mod, rank_mod_p_inplace


@numba.njit(cache=True)
def matmul_mod(A, B):
    """``A B`` mod p (entries < 2^33 in, reduced out); folded products summed below 2^63."""
    out = np.zeros((A.shape[0], B.shape[1]), dtype=np.int64)
    for i in range(A.shape[0]):
        for l in range(A.shape[1]):
            a = mod(A[i, l], PRIME)
            if a != 0:
                for j in range(B.shape[1]):
                    out[i, j] += fold(a * mod(B[l, j], PRIME))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = mod(out[i, j], PRIME)
    return out


@numba.njit(cache=True)
def rref_with_transform(S):
    """``(E, T, pivots, r)``: ``T S = E`` mod p, E in reduced row echelon form with pivot column
    ``pivots[i]`` in row i < r (rows r.. are zero), T invertible."""
    K, C = S.shape
    E = np.empty_like(S)
    for i in range(K):
        for j in range(C):
            E[i, j] = mod(S[i, j], PRIME)
    T = np.zeros((K, K), dtype=np.int64)
    for i in range(K):
        T[i, i] = 1
    pivots = np.full(K, -1, dtype=np.int64)
    r = 0
    for c in range(C):                     # entries stay below 2^33 (one fold per update), reduced at the end
        if r == K:
            break
        piv = find_pivot(E, r, c, PRIME)
        if piv < 0:
            continue
        for j in range(C):
            E[r, j], E[piv, j] = E[piv, j], E[r, j]
        for j in range(K):
            T[r, j], T[piv, j] = T[piv, j], T[r, j]
        inv = inverse_mod(E[r, c], PRIME)
        for j in range(C):
            E[r, j] = mod(mod(E[r, j], PRIME) * inv, PRIME)
        for j in range(K):
            T[r, j] = mod(mod(T[r, j], PRIME) * inv, PRIME)
        for i in range(K):
            x = mod(E[i, c], PRIME)
            if i != r and x != 0:
                g = PRIME - x
                for j in range(C):
                    E[i, j] = fold(E[i, j] + g * E[r, j])
                for j in range(K):
                    T[i, j] = fold(T[i, j] + g * T[r, j])
        pivots[r] = c
        r += 1
    for i in range(K):
        for j in range(C):
            E[i, j] = mod(E[i, j], PRIME)
        for j in range(K):
            T[i, j] = mod(T[i, j], PRIME)
    return E, T, pivots, r


@numba.njit(cache=True)
def _row_basis(M):
    """The nonzero rows of an echelon form of M (a basis of its row space), mod p."""
    A = M.copy()
    r = rank_mod_p_inplace(A, PRIME)
    out = np.empty((r, A.shape[1]), dtype=np.int64)
    for i in range(r):
        for j in range(A.shape[1]):
            out[i, j] = mod(A[i, j], PRIME)
    return out


@numba.njit(cache=True)
def anchored_rank(E, T, pivots, r, U, V):
    """``rank(S + U V^T)`` mod p from the factorization ``T S = E`` of S (see the module docstring)."""
    K, m = U.shape
    W = matmul_mod(T, U)
    Vp = np.empty((m, r), dtype=np.int64)
    for i in range(m):
        for k in range(r):
            Vp[i, k] = V[pivots[k], i]
    R = matmul_mod(Vp, E[:r])
    J = matmul_mod(Vp, W[:r])
    for i in range(m):
        J[i, i] = mod(J[i, i] + 1, PRIME)
    is_pivot = np.zeros(K, dtype=np.bool_)
    for k in range(r):
        is_pivot[pivots[k]] = True
    Rn_T = np.empty((K - r, m), dtype=np.int64)        # R on the non-pivot columns, transposed
    q = 0
    for c in range(K):
        if not is_pivot[c]:
            for i in range(m):
                Rn_T[q, i] = mod(R[i, c] + PRIME - mod(V[c, i], PRIME), PRIME)
            q += 1
    B1 = _row_basis(W[r:])                              # b x m
    R1_T = _row_basis(Rn_T)                             # rho x m
    b, rho = B1.shape[0], R1_T.shape[0]
    core = np.zeros((b + m, rho + m), dtype=np.int64)
    for i in range(b):
        for j in range(m):
            core[i, rho + j] = B1[i, j]
    for i in range(m):
        for j in range(rho):
            core[b + i, j] = R1_T[j, i]
        for j in range(m):
            core[b + i, rho + j] = J[i, j]
    return r + rank_mod_p_inplace(core, PRIME) - m
