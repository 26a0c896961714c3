"""Known token mixers written in the framework, each with its native (fla / mamba_ssm) signature.

Every function builds its pattern from a spec and coefficient arrays aligned with ``p.tables(n)``, and
computes through ``glrtheory.solve`` in float64; it accepts numpy arrays or torch tensors (layout
``[B, T, H, D]`` as in flash-linear-attention) and returns the kind and dtype of its primary input.
``ENTRIES`` records each entry's pattern spec, state shape and which of A and B carry the data;
``INEXPRESSIBLE`` lists the architectures the scalar-coefficient framework cannot write exactly;
``OPERATOR_ENTRIES`` (DeltaNet, Gated DeltaNet) use operator-valued B-coefficients (``solve_operator``).
"""
from .attention import sliding_window_attention, softmax_attention
from .chacal import chacal
from .linear import gla, linear_attention, retention, retnet_gammas, simple_gla
from .log_linear import level_masks, levels, log_linear_attention
from .long_conv import long_conv
from .multi_lag import lag_set, multi_lag
from .operator import delta_net, gated_delta_net, solve_operator
from .registry import ENTRIES, INEXPRESSIBLE, OPERATOR_ENTRIES, Entry, Inexpressible
from .ssm import diagonal_ssm, mamba2

__all__ = ["softmax_attention", "sliding_window_attention", "linear_attention", "retention", "simple_gla",
           "gla", "mamba2", "diagonal_ssm", "long_conv", "chacal", "log_linear_attention", "multi_lag",
           "delta_net", "gated_delta_net", "solve_operator", "retnet_gammas", "levels", "level_masks", "lag_set",
           "ENTRIES", "OPERATOR_ENTRIES", "INEXPRESSIBLE", "Entry", "Inexpressible"]
