"""The pieces of one block: short causal convolution, SwiGLU MLP, and the pre-norm residual block

    x <- x + Mixer(Conv(RMSNorm(x)));    x <- x + SwiGLU(RMSNorm(x))
    SwiGLU(x) = W_2 (silu(W_g x) * W_u x)

Each piece has ``forward`` over a whole sequence ``[batch, T, d]`` and ``step`` over one token
``[batch, d]`` with a small state, and decoding token by token equals ``forward`` (tested).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from glrtheory.kernels.torch import GLRMixer

from .config import ModelConfig


class SwiGLU(nn.Module):
    """``W_2 (silu(W_g x) * W_u x)`` with hidden width ``hidden``."""

    def __init__(self, d_model: int, hidden: int, device=None, dtype=None):
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * hidden, bias=False, device=device, dtype=dtype)
        self.down = nn.Linear(hidden, d_model, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, u = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(g) * u)


class ShortConv(nn.Module):
    """Causal depthwise convolution of width W: ``y_t = sum_{j < W} w_j * x_{t-j}`` per channel."""

    def __init__(self, d_model: int, width: int, device=None, dtype=None):
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(d_model, d_model, width, groups=d_model, padding=width - 1, bias=False,
                              device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)

    def step(self, x_t: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token; ``past[batch, W - 1, d]`` holds the last W - 1 inputs (zeros before the start)."""
        window = torch.cat([past, x_t[:, None]], dim=1)            # x_{t-W+1} .. x_t
        y = torch.einsum("bwd,dw->bd", window, self.conv.weight[:, 0])
        return y, window[:, 1:]


class Block(nn.Module):
    """``x + Mixer(Conv(RMSNorm(x)))``, then ``+ SwiGLU(RMSNorm(x))`` (module docstring)."""

    def __init__(self, config: ModelConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        c = config
        self.norm_mix = nn.RMSNorm(c.d_model, **kw)
        self.conv = ShortConv(c.d_model, c.conv, **kw) if c.conv else None
        self.mixer = GLRMixer(c.pattern, c.d_model, c.n_heads, c.d_head, readout=c.readout, scores=c.scores,
                              timescales=c.timescales, lag_bias=c.lag_bias, **kw)
        self.norm_mlp = nn.RMSNorm(c.d_model, **kw) if c.mlp_width else None
        self.mlp = SwiGLU(c.d_model, c.mlp_width, **kw) if c.mlp_width else None

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        """Whole sequence ``x[batch, T, d]``; with a fresh ``state`` (``init_state``), leave it holding
        what decoding needs after these T tokens (a prefill)."""
        y = self.norm_mix(x)
        if self.conv is not None:
            if state is not None:
                past = torch.cat([state["conv"], y], dim=1)
                state["conv"] = past[:, past.shape[1] - (self.conv.width - 1):]
            y = self.conv(y)
        x = x + (self.mixer(y) if state is None else self.mixer(y, cache=state["mixer"]))
        return x if self.mlp is None else x + self.mlp(self.norm_mlp(x))

    def init_state(self, batch: int, max_length: int, like: torch.Tensor) -> dict:
        """Decode state: the mixer cache and the convolution's last inputs."""
        past = None if self.conv is None else like.new_zeros(batch, self.conv.width - 1, like.shape[-1])
        return {"mixer": self.mixer.init_cache(max_length), "conv": past}

    def step(self, x_t: torch.Tensor, state: dict) -> torch.Tensor:
        y = self.norm_mix(x_t)
        if self.conv is not None:
            y, state["conv"] = self.conv.step(y, state["conv"])
        x_t = x_t + self.mixer.step(y, state["mixer"])
        return x_t if self.mlp is None else x_t + self.mlp(self.norm_mlp(x_t))
