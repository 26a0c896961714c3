"""``SequenceModel``: a small language model around any ``GLRMixer`` pattern.

    x_0 = E[tokens];   x_{l+1} = Block_l(x_l)  (l < n_layers);   logits = W_out RMSNorm(x_L)

with ``Block`` the pre-norm residual pair [mixer, SwiGLU] of ``glrtheory.models.blocks``. ``forward`` runs
the whole sequence (training); ``init_cache`` + ``step`` decode token by token with the same logits;
``forward(tokens, cache=...)`` prefills a fresh cache in one pass (and returns the same logits as without one).
"""
from __future__ import annotations

import dataclasses
import functools

import torch
from torch import nn

from glrtheory.checks import check_integer
from glrtheory.errors import GLRError

from .blocks import Block
from .config import ModelConfig


#: The most parameters a ``SequenceModel`` may have (2^30: 4 GiB in float32, 16 GiB with Adam's states and the
#: gradients); past it the machine's memory, not the user, would say no.
MAX_PARAMETERS = 2**30


def parameter_count(config: ModelConfig) -> int:
    """``SequenceModel(config).num_parameters()`` without allocating: models of one and two blocks built on the meta
    device, every block being alike (``c_L = c_1 + (L - 1)(c_2 - c_1)``)."""
    one, two = _one_and_two_blocks(dataclasses.replace(config, n_layers=1))
    return one + (config.n_layers - 1) * (two - one)


@functools.lru_cache(maxsize=256)
def _one_and_two_blocks(config: ModelConfig) -> tuple[int, int]:
    with torch.device("meta"):
        return tuple(SequenceModel(dataclasses.replace(config, n_layers=k)).num_parameters() for k in (1, 2))


class ModelCache:
    """Decode state of a ``SequenceModel``: one state per block, and the position ``t`` of the next token."""

    def __init__(self, states: list, batch: int, max_length: int):
        self.states, self.batch, self.max_length, self.t = states, batch, max_length, 0


class SequenceModel(nn.Module):
    """Embedding, ``n_layers`` blocks of [RMSNorm, GLRMixer, residual, RMSNorm, SwiGLU, residual], final
    RMSNorm and a linear head (module docstring).

    Parameters
    ----------
    config : ModelConfig
    device, dtype : optional
        Where and in which floating dtype to create the parameters.

    A model of more than ``MAX_PARAMETERS`` parameters is refused (counted on the meta device) before anything is
    allocated.
    """

    def __init__(self, config: ModelConfig, device=None, dtype=None):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise GLRError(f"config must be a ModelConfig, got {type(config).__name__}")
        if torch.get_default_device().type != "meta":
            count = parameter_count(config)
            if count > MAX_PARAMETERS:
                raise GLRError(f"the model has {count:,} parameters (d_model {config.d_model}, n_layers "
                               f"{config.n_layers}, vocab_size {config.vocab_size}), over the limit MAX_PARAMETERS = "
                               f"{MAX_PARAMETERS:,}")
        self.config = c = config
        kw = dict(device=device, dtype=dtype)
        self.embed = nn.Embedding(c.vocab_size, c.d_model, **kw)
        self.blocks = nn.ModuleList(Block(c, **kw) for _ in range(c.n_layers))
        self.norm = nn.RMSNorm(c.d_model, **kw)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False, **kw)
        if c.tie_embeddings:
            self.head.weight = self.embed.weight

    def num_parameters(self, embeddings: bool = True) -> int:
        """Number of distinct trainable parameters (without the embedding and head when ``embeddings=False``)."""
        skip = set() if embeddings else {id(self.embed.weight), id(self.head.weight)}
        seen = {id(p): p for p in self.parameters() if p.requires_grad and id(p) not in skip}
        return sum(p.numel() for p in seen.values())

    def _check_tokens(self, tokens: torch.Tensor, ndim: int) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != ndim or tokens.dtype != torch.long:
            shape = "[batch, T]" if ndim == 2 else "[batch]"
            got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise GLRError(f"tokens must be a long tensor of shape {shape}, got {got}")
        capturing = tokens.is_cuda and torch.cuda.is_current_stream_capturing()   # a graph records no host reads
        if tokens.numel() and not capturing and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise GLRError(f"token ids must lie in [0, {self.config.vocab_size}), "
                           f"got {int(tokens.min())}..{int(tokens.max())}")

    def forward(self, tokens: torch.Tensor, cache: ModelCache | None = None) -> torch.Tensor:
        """``tokens[batch, T] (long) -> logits[batch, T, vocab_size]``; with ``cache``, also fill it with
        these tokens (a fresh cache in one pass, a used one token by token) and return the same logits."""
        self._check_tokens(tokens, 2)
        if cache is not None:
            self._check_cache(tokens, cache, tokens.shape[1])
            if cache.t > 0:
                return torch.stack([self.step(tokens[:, t], cache) for t in range(tokens.shape[1])], dim=1)
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache.states[i])
        if cache is not None:
            cache.t = tokens.shape[1]
        return self.head(self.norm(x))

    def _check_cache(self, tokens: torch.Tensor, cache, count: int) -> None:
        if not isinstance(cache, ModelCache) or tokens.shape[0] != cache.batch:
            raise GLRError(f"cache must be a ModelCache made for batch {tokens.shape[0]}")
        if cache.t + count > cache.max_length:
            raise GLRError(f"the cache was made for {cache.max_length} tokens; step {cache.t + count - 1} is past it")

    def init_cache(self, batch: int, max_length: int) -> ModelCache:
        """An empty decode cache for ``batch`` sequences of up to ``max_length`` tokens."""
        for v, name in ((batch, "batch"), (max_length, "max_length")):
            check_integer(v, name, 1)
        like = self.embed.weight
        return ModelCache([b.init_state(batch, max_length, like) for b in self.blocks], batch, max_length)

    def step(self, tokens_t: torch.Tensor, cache: ModelCache) -> torch.Tensor:
        """Decode one token per sequence: ``tokens_t[batch] -> logits[batch, vocab_size]``, equal to
        ``forward`` at position ``cache.t``; advances the cache."""
        self._check_tokens(tokens_t, 1)
        self._check_cache(tokens_t, cache, 1)
        x = self.embed(tokens_t)
        for block, state in zip(self.blocks, cache.states):
            x = block.step(x, state)
        cache.t += 1
        return self.head(self.norm(x))
