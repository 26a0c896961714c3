"""PyTorch kernels (CPU and CUDA): the differentiable op ``glr_scan`` and the layer ``GLRMixer``.

    from glrtheory.kernels.torch import glr_scan, GLRMixer
    h = glr_scan(u, a, b, p.tables(n))          # H = (I - B)^{-1} A U, custom backward, chunked
"""
from .torch_mixer import GLRCache, GLRMixer
from .torch_scan import DEFAULT_CHUNK, flops, glr_scan

__all__ = ["glr_scan", "GLRMixer", "GLRCache", "flops", "DEFAULT_CHUNK"]
