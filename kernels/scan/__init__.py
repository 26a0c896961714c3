"""The scan ``H = (I - B)^{-1} A U`` over index tables, laid out as fla lays out an op.

``naive`` (the one-screen float64 oracle), ``cpu`` (Numba, numpy API), ``chunk`` (PyTorch, any device),
``triton`` (the GPU kernels), ``plan`` (the device tables the torch backends get), ``op`` (``glr_scan``
and its backend registry), ``readout`` with ``readout_plan`` (which algorithm, the chunk layout; numpy
only), ``readout_aligned`` and ``readout_blocks`` (``glr_readout``: the matrix-state readout without
per-token states).
"""
