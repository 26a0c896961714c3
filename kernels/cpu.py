"""The Numba CPU scan ``scan(u, a, b, tables)`` (numpy API ``[..., n, d]``); it lives in ``scan/cpu.py``.

    from glrtheory.kernels.cpu import scan
    h = scan(u, a, b, p.tables(n))      # H = (I - B)^{-1} A U, float32/float64, same contract as solve
"""
from .scan.cpu import BLOCK, Counts, Tables, readout, scan

__all__ = ["scan", "readout", "Counts", "Tables", "BLOCK"]
