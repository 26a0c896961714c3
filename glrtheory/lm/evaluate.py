"""Validation in bits per byte, overall and by position in the context window.

For windows ``x[0..T]`` of the validation split the model predicts ``x[i+1]`` from ``x[0..i]``; the loss
at position i is ``-log2 p(x[i+1] | x[0..i])`` bits. Bits per byte is its mean over windows and
positions; the position buckets (0-63, 64-255, 256-1023, cut at T) show what a longer context buys.
Windows are spread evenly over the split (``data.eval_offsets``; ``split="test"``: the windows halfway between
those, a second held-out set), so every run scores the same bytes;
under torchrun each process scores every ``world``-th window and the sums are added.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GLRError
from .data import eval_offsets, windows
from .distributed import Dist, all_sum

BUCKETS = ((0, 64), (64, 256), (256, 1024))


def autocast(device: torch.device):
    """bf16 autocast on CUDA; nothing on the CPU (float32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bucket_means(per_position: np.ndarray) -> dict[str, float]:
    """Mean of ``per_position[lo:hi]`` for each bucket that starts inside the window, keyed ``"lo-hi"``
    (``hi`` the last position, cut at the window length)."""
    T = len(per_position)
    return {f"{lo}-{min(hi, T) - 1}": float(per_position[lo:min(hi, T)].mean()) for lo, hi in BUCKETS if lo < T}


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: np.ndarray, seq_len: int, n_windows: int, batch: int,
             d: Dist, split: str = "validation", seen: np.ndarray | None = None) -> dict:
    """``{"bpb", "bpb_by_position", "windows", "bytes"}`` of ``model`` on the windows of ``seq_len`` predicted
    bytes that ``eval_offsets(..., n_windows, split)`` places; with ``seen`` (a mask over those windows, as
    ``data.in_training`` gives it) also ``bpb_unseen`` and ``windows_unseen``: the same over the windows not seen."""
    was_training = model.training
    model.eval()
    every = eval_offsets(len(data), seq_len, n_windows, split)
    if seen is not None and len(seen) != len(every):
        raise GLRError(f"seen marks {len(seen)} windows, the split's evaluation has {len(every)}")
    mine = np.arange(len(every))[d.rank::d.world]
    bits, unseen = (torch.zeros(seq_len, dtype=torch.float64, device=d.device) for _ in range(2))
    for i in range(0, len(mine), batch):
        rows = mine[i:i + batch]
        xy = torch.from_numpy(windows(data, every[rows], seq_len)).to(d.device)
        with autocast(d.device):
            logits = model(xy[:, :-1])
        nll = F.cross_entropy(logits.float().transpose(1, 2), xy[:, 1:], reduction="none").double() / math.log(2)
        bits += nll.sum(0)
        if seen is not None:
            unseen += (nll * torch.from_numpy(~seen[rows]).to(d.device)[:, None]).sum(0)    # no sync, as a mask would
    bits = all_sum(bits, d).cpu().numpy() / len(every)
    model.train(was_training)
    out = {"bpb": float(bits.mean()), "bpb_by_position": bucket_means(bits), "windows": len(every),
           "bytes": len(every) * seq_len}
    if seen is not None:
        count = int((~seen).sum())
        total = all_sum(unseen, d).sum().item()
        out.update(bpb_unseen=total / (count * seq_len) if count else None, windows_unseen=count)
    return out
