"""Verified kernels over the index tables (installed as ``glrtheory.kernels``).

``cpu``: Numba forward substitution (``scan``); ``decode``: the live-set decode cache (``DecodeCache``,
``step``); ``torch``: the differentiable op ``glr_scan`` and the layer ``GLRMixer`` (CPU and CUDA).
Each is tested against the float64 reference ``glrtheory.solve``.
"""
