"""Native inputs in, native outputs out: numpy arrays or torch tensors, validated, computed in float64.

Every catalog function converts its inputs with ``as_float64`` (which names the argument in its errors),
computes through ``glrtheory.solve`` in float64, and returns with ``like`` in the kind (numpy / torch),
dtype and device of its primary input (``q``, ``x``, ``u`` or ``attn``).
"""
from __future__ import annotations

import numpy as np

from ..errors import GLRError
from ..checks import check_finite, check_real


#: Largest float64 working array (elements) a catalog function builds: 2^27 elements = 1 GiB.
MAX_ELEMENTS = 2**27


def check_size(elements: int, what: str) -> None:
    """Refuse work whose working arrays would exceed ``MAX_ELEMENTS`` (the float64 references are exact,
    not fast: use glrtheory.kernels for large inputs)."""
    if elements > MAX_ELEMENTS:
        raise GLRError(f"{what} needs {elements} float64 elements, over the catalog's limit {MAX_ELEMENTS}")


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def as_float64(x, name: str, ndim: int | None = None, finite: bool = True) -> np.ndarray:
    """A real float64 numpy copy of ``x`` (numpy array, torch tensor or nested sequence), checked finite
    unless ``finite=False``."""
    if x is None:
        raise GLRError(f"{name} is required")
    if _is_torch(x):
        if x.is_complex():
            raise GLRError(f"{name} must be real, got a complex tensor")
        arr = x.detach().to("cpu").double().numpy()
    else:
        arr = np.asarray(x)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise GLRError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise GLRError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if finite:
        check_finite(arr, name)
    return arr


def check_shape(arr: np.ndarray, name: str, expected: tuple, labels: str) -> None:
    """Raise unless ``arr.shape == expected``; ``labels`` names the axes, e.g. ``"[B, T, H, K]"``."""
    if arr.shape != tuple(expected):
        raise GLRError(f"{name} must have shape {labels} = {tuple(expected)}, got {arr.shape}")


def qkv(q, k, v):
    """q, k ``[B, T, H, K]`` and v ``[B, T, H, V]`` as checked float64 arrays."""
    qa, ka, va = as_float64(q, "q", 4), as_float64(k, "k", 4), as_float64(v, "v", 4)
    check_shape(ka, "k", qa.shape, "[B, T, H, K]")
    B, T, H, _ = qa.shape
    check_shape(va, "v", (B, T, H, va.shape[3]), "[B, T, H, V]")
    return qa, ka, va


def head_groups(heads: int, groups: int, what: str) -> int:
    """Heads per group for grouped (GQA-style) inputs: ``heads`` must be a multiple of ``groups``."""
    if groups == 0 or heads % groups:
        raise GLRError(f"{what}: the number of heads {heads} must be a multiple of the number of groups "
                       f"{groups}")
    return heads // groups


def scale_or_default(scale, k: int) -> float:
    """fla's convention: ``scale = 1/sqrt(K)`` unless given."""
    if scale is None:
        return k ** -0.5
    return check_real(scale, "scale")


def like(result: np.ndarray, ref):
    """``result`` (float64 numpy) in the kind, dtype and device of ``ref``."""
    if _is_torch(ref):
        import torch

        dtype = ref.dtype if ref.is_floating_point() else torch.float64
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=ref.device, dtype=dtype)
    dtype = np.asarray(ref).dtype
    return result.astype(dtype if np.issubdtype(dtype, np.floating) else np.float64, copy=False)
