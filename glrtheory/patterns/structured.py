"""Structured supports whose counts, last uses and structure answers follow from their structure in
O(n log n)."""
from __future__ import annotations

import numpy as np

from .support import Support, check_table_size, rows_to_table


class BlockSupport(Support):
    """Intra-block direct support ``S(t) = {c(t), ..., t}`` with block start ``c(t) = C * floor(t / C)``."""

    def __init__(self, n: int, block: int):
        super().__init__(n, strict=False)
        self.block = block

    def counts(self) -> np.ndarray:
        t = np.arange(self.n, dtype=np.int64)
        return t % self.block + 1

    def last_use(self) -> np.ndarray:
        s = np.arange(self.n, dtype=np.int64)
        return np.minimum(s - s % self.block + self.block - 1, self.n - 1)

    def table(self, max_entries: int | None = None) -> np.ndarray:
        w = min(self.block, self.n)
        check_table_size(self.n, w, max_entries, f"blocks of size {self.block}")
        t = np.arange(self.n, dtype=np.int64)[:, None]
        s = t - t % self.block + np.arange(w)[None, :]
        return np.where(s <= t, s, -1).astype(np.int32)

    def interval_start(self, max_entries: int | None = None) -> np.ndarray:
        """``S(t) = {c(t), ..., t}``: ``lo[t] = c(t)``."""
        t = np.arange(self.n, dtype=np.int64)
        return t - t % self.block

    def interval_end(self, max_entries: int | None = None) -> np.ndarray:
        """``{t : s in S(t)} = {s, ..., end of the block of s}``."""
        return self.last_use()


def fenwick_table(n: int) -> np.ndarray:
    """``B(t) = {floor((t-1) / 2^k) * 2^k : k >= 0}`` for t >= 1 (the aligned binary counter).

    Clearing the lowest set bit of ``v = t - 1`` (``v & (v - 1)``) until 0 lists B(t) in descending order,
    so row t holds them in columns ``popcount(t - 1), ..., 0``; width ``1 + max popcount = bit_length(n - 1)``.
    """
    width = int(n - 1).bit_length()
    out = np.full(n * width, -1, dtype=np.int32)
    v = np.arange(n - 1, dtype=np.int64)                        # t - 1 for t = 1 .. n-1
    flat = np.arange(1, n, dtype=np.int64) * width + np.bitwise_count(v)
    while v.size:
        out[flat] = v
        keep = v > 0
        v, flat = v[keep], flat[keep] - 1
        v &= v - 1
    return out.reshape(n, width)


def blocks_carry_table(n: int, block: int) -> np.ndarray:
    """``B(t) = {c(t) - 1}`` for ``c(t) = C floor(t / C) > 0``: the last state of the previous block."""
    t = np.arange(n, dtype=np.int64)
    return rows_to_table((t - t % block - 1)[:, None])


class KronSupport(Support):
    """Kronecker power of a base mask K (m x m, lower triangular, unit diagonal).

    Writing t and s in base m with digits t_j, s_j: ``s in S(t)`` iff ``K[t_j, s_j] = 1`` for all j
    (and ``s != t`` when strict). Leading zero digits contribute ``K[0, 0] = 1``, so the support does not
    depend on the number of digits: it is the leading n x n block of every Kronecker power.
    """

    def __init__(self, n: int, base: np.ndarray, strict: bool):
        super().__init__(n, strict)
        self.base = base.astype(bool)
        m = base.shape[0]
        self.m = m
        self.ndigits = 1
        while m**self.ndigits < n:
            self.ndigits += 1

    def digits(self, x: np.ndarray) -> list[np.ndarray]:
        """Base-m digits of x, most significant first."""
        out = []
        for _ in range(self.ndigits):
            x, digit = np.divmod(x, self.m)
            out.append(digit)
        return out[::-1]

    def longest_paths(self, max_entries: int | None = None) -> np.ndarray:
        """A chain moves each digit along a path of the base graph (edge x -> y when K[y, x], x < y), and
        moving one digit at a time attains the sum: ``d[t] = sum_j L[t_j]``, L the longest paths of the base."""
        K = self.base
        L = np.zeros(self.m, dtype=np.int64)
        for y in range(self.m):
            L[y] = max((L[x] + 1 for x in range(y) if K[y, x]), default=0)
        return sum(L[d] for d in self.digits(np.arange(self.n, dtype=np.int64)))

    def unreachable_pair(self, a: Support) -> tuple[int, int] | None:
        """With ``A(t) = {t}``: every edge s -> t has ``s_j <= t_j`` in every digit (K is lower triangular),
        so the states reached from u_1 keep a last digit >= 1, and h_m (last digit 0) is out of reach."""
        if a.lags is not None and list(a.lags) == [0] and self.n > self.m:
            return 1, self.m
        return None

    def counts(self) -> np.ndarray:
        rowsum = self.base.sum(axis=1).astype(np.int64)
        c = np.ones(self.n, dtype=np.int64)
        for d in self.digits(np.arange(self.n, dtype=np.int64)):
            c *= rowsum[d]
        return c - 1 if self.strict else c

    def last_use(self) -> np.ndarray:
        """Largest t <= n-1 whose every digit t_j satisfies K[t_j, s_j] = 1 (digit-wise greedy)."""
        K, m = self.base, self.m
        s = np.arange(self.n, dtype=np.int64)
        sd = self.digits(s)
        nd = self.digits(np.array([self.n - 1]))
        nd = [int(v[0]) for v in nd]
        top = np.array([max(np.flatnonzero(K[:, d])) for d in range(m)])  # largest allowed digit
        below = np.full((m, m), -1)  # below[d, x] = largest y < x with K[y, d]
        for d in range(m):
            for x in range(m):
                ys = [y for y in range(x) if K[y, d]]
                below[d, x] = ys[-1] if ys else -1
        best = np.full(self.n, -1, dtype=np.int64)
        prefix_ok = np.ones(self.n, dtype=bool)   # digits 0..p-1 of n-1 all allowed for s
        prefix_val = 0
        k = self.ndigits
        tail = sum(top[sd[q]] * m ** (k - 1 - q) for q in range(k))   # the digits q > p set to top[s_q]
        for p in range(k):
            tail -= top[sd[p]] * m ** (k - 1 - p)
            y = below[sd[p], nd[p]]
            ok = prefix_ok & (y >= 0)
            if ok.any():
                best = np.where(ok, (prefix_val * m + y) * m ** (k - 1 - p) + tail, best)
            prefix_ok &= K[nd[p], sd[p]]
            prefix_val = prefix_val * m + nd[p]
        best = np.where(prefix_ok, self.n - 1, best)
        if self.strict:
            best = np.where(best == s, -1, best)
        return best

    def table(self, max_entries: int | None = None) -> np.ndarray:
        K, m = self.base, self.m
        rmax = int(K.sum(axis=1).max())
        check_table_size(self.n, self.width(), max_entries, "a Kronecker power")
        allowed = np.full((m, rmax), -1, dtype=np.int64)
        for d in range(m):
            ys = np.flatnonzero(K[d])
            allowed[d, : ys.size] = ys
        rowsum = K.sum(axis=1)
        # the entries (row, s) as flat arrays, grouped by row and ascending in s; digit by digit (most
        # significant first) each s of row t becomes s * m + y for the allowed y (K[t_j, y]), ascending
        row = np.arange(self.n, dtype=np.int64)
        s = np.zeros(self.n, dtype=np.int64)
        for d in self.digits(np.arange(self.n, dtype=np.int64)):
            dj = d[row]
            reps = rowsum[dj]
            y = allowed[np.repeat(dj, reps), _index_in_group(reps)]
            row, s = np.repeat(row, reps), np.repeat(s * m, reps) + y
        if self.strict:
            keep = s != row
            row, s = row[keep], s[keep]
        count = np.bincount(row, minlength=self.n)
        out = np.full((self.n, int(count.max(initial=0))), -1, dtype=np.int32)
        out[row, _index_in_group(count)] = s
        return out


def _index_in_group(sizes: np.ndarray) -> np.ndarray:
    """``0, 1, ..., sizes[0]-1, 0, 1, ..., sizes[1]-1, ...``: each entry's place within its group."""
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
