"""The model of a run, from its ``[model]`` table, and its forward FLOPs per token.

The model is ``glrtheory.models.SequenceModel(ModelConfig(**table))`` with a 256-byte vocabulary; the
table's keys are ``ModelConfig``'s fields but vocab_size (``pattern`` is the mixer's spec). Forward FLOPs per token are
counted by ``torch.utils.flop_counter.FlopCounterMode`` on one window of ``seq_len`` bytes: matmuls by
torch's own formulas, ``glr_scan`` by its registered ``2 * batch * d * (nnz_a + nnz_b)``.
"""
from __future__ import annotations

import copy

from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from glrtheory.errors import GLRError

VOCAB = 256

#: Builds a model from a run's [model] table; tests pass their own.
ModelFactory = Callable[[dict], torch.nn.Module]


def build_model(table: dict) -> torch.nn.Module:
    """``SequenceModel(ModelConfig(vocab_size=256, **table))``; unknown keys are a GLRError."""
    from glrtheory.models import ModelConfig, SequenceModel

    if "vocab_size" in table:
        raise GLRError("config [model] must not set vocab_size: the corpus is bytes (256)")
    return SequenceModel(ModelConfig.from_dict({"vocab_size": VOCAB, **table}))


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def unused_parameters(model: torch.nn.Module, seq_len: int) -> list[str]:
    """The names of the parameters that get no gradient from one window of ``seq_len`` bytes (ssm's lag bias: its
    one-slot tables never read it), found by a backward on a float32 CPU copy as ``forward_flops_per_token``
    counts: DDP must be told to expect them, and only then."""
    twin = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).train()
    twin(torch.zeros(1, seq_len, dtype=torch.long)).float().sum().backward()
    return [name for name, p in twin.named_parameters() if p.requires_grad and p.grad is None]


@torch.no_grad()
def forward_flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Forward FLOPs of ``model`` on one window of ``seq_len`` bytes, divided by ``seq_len``.

    Counted on a float32 CPU copy of the model, so that the count is the same whatever backend runs
    the scan on the device (on an H200 the Triton scan's FLOPs were not seen by FlopCounterMode).
    """
    twin = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    x = torch.zeros(1, seq_len, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        twin(x)
    return counter.get_total_flops() / seq_len
