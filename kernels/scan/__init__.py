"""The scan ``H = (I - B)^{-1} A U`` over index tables, by backend (``triton``: the GPU kernels)."""
