"""PyTorch kernels (CPU and CUDA): the differentiable op ``glr_scan`` and the layer ``GLRMixer``.

    from glrtheory.kernels.torch import glr_scan, GLRMixer
    h = glr_scan(u, a, b, p.tables(T))     # u [B, T, H, D], a [B, T, H, wa], b [B, T, H, wb]
    o = glr_readout(q, k, v, a, b, p.tables(T))   # o_t = q_t^T H_t for u_t = k_t v_t^T, no per-token states
"""
from .layers import GLRCache, GLRMixer
from .scan.op import BACKENDS, DEFAULT_CHUNK, flops, glr_scan
from .scan.readout import glr_readout, readout_algorithm

__all__ = ["glr_scan", "GLRMixer", "GLRCache", "flops", "DEFAULT_CHUNK", "BACKENDS", "glr_readout",
           "readout_algorithm"]
