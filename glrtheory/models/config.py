"""``ModelConfig``: the hyper-parameters of ``SequenceModel``, checked once, serializable as a dict."""
from __future__ import annotations

import dataclasses

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError
from glrtheory.kernels.layers import gate_bias
from glrtheory.patterns import Pattern

#: Score forms of ``GLRMixer``: per-source scores, or ``q_t . k_s`` (softmax / sliding-window attention).
SCORES = ("source", "query_key")


def _positive(name: str, v, zero: bool = False) -> None:
    check_integer(v, name, 0 if zero else 1)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of ``SequenceModel``.

    Parameters
    ----------
    vocab_size : int
        Number of token ids ``V``; tokens are ``0 <= x < V``.
    d_model, n_layers, n_heads : int
        Width of the residual stream, number of blocks, mixer heads per block.
    pattern : str
        ``GLRMixer`` pattern spec (``"power2"``, ``"attention"``, ``"window:64"``, ...).
    readout : bool
        Matrix state ``u_s = k_s v_s^T`` read by ``q_t`` (True) or vector state ``u_s = v_s`` (False).
    scores : {"source", "query_key"}
        Coefficient form of the mixer: per-source scores, or ``q_t . k_s`` over the supports
        (``"attention"`` with ``"query_key"`` is softmax attention).
    mlp_mult : int
        SwiGLU hidden width is ``mlp_mult * d_model``; 0 drops the MLP.
    mlp_hidden : int or None
        SwiGLU hidden width in place of ``mlp_mult * d_model`` (to give mixers of different sizes the same
        parameter count); None: ``mlp_mult * d_model``.
    conv : int
        Width of a short causal depthwise convolution before each mixer (0: none), as in H3/Mamba.
    d_head : int or None
        Value size per head (default ``d_model // n_heads``).
    tie_embeddings : bool
        Share the input embedding with the output head.
    timescales : (tau_min, tau_max) or None
        The mixers' gates start at ``1 - 1 / tau`` with tau log-spaced over the heads (``GLRMixer``); None:
        near 1/2.
    lag_bias : bool
        The mixers' scores get a learned bias per head and bucket of lags (``GLRMixer``); False: none.
    """

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    pattern: str = "power2"
    readout: bool = False
    scores: str = "source"
    mlp_mult: int = 2
    mlp_hidden: int | None = None
    conv: int = 0
    d_head: int | None = None
    tie_embeddings: bool = False
    timescales: tuple[float, float] | None = None
    lag_bias: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "n_heads"):
            _positive(name, getattr(self, name))
        for name in ("mlp_mult", "conv"):
            _positive(name, getattr(self, name), zero=True)
        if self.mlp_hidden is not None:
            _positive("mlp_hidden", self.mlp_hidden)
            if not self.mlp_mult:
                raise GLRError(f"mlp_hidden={self.mlp_hidden} asks for an MLP that mlp_mult=0 drops; set one of them")
        if self.d_head is not None:
            _positive("d_head", self.d_head)
        elif self.d_model % self.n_heads:
            raise GLRError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; set d_head")
        if self.scores not in SCORES:
            raise GLRError(f"scores must be one of {', '.join(SCORES)}, got {self.scores!r}")
        if not isinstance(self.pattern, str):
            raise GLRError(f"pattern must be a spec string, got {type(self.pattern).__name__}")
        Pattern.from_spec(self.pattern)  # a bad spec fails here, with the parser's message
        if not isinstance(self.lag_bias, bool):
            raise GLRError(f"lag_bias must be true or false, got {self.lag_bias!r}")
        if self.timescales is not None:
            gate_bias(self.timescales, self.n_heads)      # a bad pair fails here, with its message
            object.__setattr__(self, "timescales", tuple(self.timescales))    # TOML and JSON give a list

    @property
    def mlp_width(self) -> int:
        """The SwiGLU hidden width: ``mlp_hidden``, else ``mlp_mult * d_model`` (0: no MLP)."""
        return self.mlp_hidden if self.mlp_hidden is not None else self.mlp_mult * self.d_model

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Build from a dict (e.g. a TOML table); unknown keys are an error that names them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise GLRError(f"unknown model option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**data)
