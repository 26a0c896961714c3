"""Verified kernels over the index tables (installed as ``glrtheory.kernels``).

``scan/``: the scan ``H = (I - B)^{-1} A U`` as fla lays out an op (``naive`` oracle, ``cpu`` Numba,
``chunk`` PyTorch, ``triton`` GPU, ``plan``, ``op`` with ``glr_scan`` and its backend registry);
``cpu``: the public path of the Numba ``scan``; ``decode``: the Numba live-set decode cache
(``DecodeCache``, ``step``); ``layers``: the token mixer ``GLRMixer``, whose decode state is
``state.GLRCache``; ``torch``: the public path of ``glr_scan`` and ``GLRMixer``.
Kernels read only ``IndexTables`` and tensors, never a ``Pattern``; each is tested against the naive
oracle and the float64 reference ``glrtheory.solve``.
"""
