"""Verified kernels over the index tables (installed as ``glrtheory.kernels``): Numba CPU, PyTorch, Triton."""
