"""PyTorch kernels (CPU and CUDA): the differentiable op ``glr_scan`` and the layer ``GLRMixer``.

    from glrtheory.kernels.torch import glr_scan, GLRMixer
    h = glr_scan(u, a, b, p.tables(T))     # u [B, T, H, D], a [B, T, H, wa], b [B, T, H, wb]
"""
from .layers import GLRCache, GLRMixer
from .scan.op import BACKENDS, DEFAULT_CHUNK, flops, glr_scan

__all__ = ["glr_scan", "GLRMixer", "GLRCache", "flops", "DEFAULT_CHUNK", "BACKENDS"]
