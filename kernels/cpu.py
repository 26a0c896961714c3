"""The Numba CPU scan ``scan(u, a, b, tables)`` (numpy API ``[..., n, d]``); it lives in ``scan/cpu.py``.

    from glrtheory.kernels.cpu import release_pool, scan
    h = scan(u, a, b, p.tables(n))      # H = (I - B)^{-1} A U, float32/float64, same contract as solve
    release_pool()                      # give back the memory kept for outputs scan allocates
"""
from .scan.cpu import BLOCK, Counts, Tables, readout, scan
from .scan.cpu_out import release_pool

__all__ = ["scan", "readout", "release_pool", "Counts", "Tables", "BLOCK"]
