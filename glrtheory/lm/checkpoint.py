"""Checkpoints that resume exactly: model, optimizer, step and every RNG state, written atomically.

``save`` writes to a temporary file in the same folder and renames it over the target
(``os.replace`` is atomic), so a crash leaves either the old checkpoint or the new one, never half of one.
A checkpoint records its run's ``fingerprint`` (model, data split, optimization); ``load`` refuses one
from another config.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from glrtheory.atomic import atomic_file
from glrtheory.errors import GLRError


def rng_states() -> dict:
    """The states of Python's, NumPy's and torch's (CPU and, where present, CUDA) generators."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def atomic_save(obj, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path``, atomically and flushed to disk (``glrtheory.atomic.atomic_file``)."""
    with atomic_file(path, binary=True, sync=True) as f:
        torch.save(obj, f)


def save(path, *, model, optimizer, step: int, fingerprint: str, config: dict, extra: dict | None = None):
    """Write the checkpoint of a run after ``step`` optimizer steps."""
    atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                 "rng": rng_states(), "fingerprint": fingerprint, "config": config,
                 "extra": extra or {}}, path)


def read(path, fingerprint: str | None = None) -> dict:
    """The checkpoint at ``path``; with ``fingerprint``, refuse one written by another config."""
    path = Path(path)
    if not path.is_file():
        raise GLRError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise GLRError(f"checkpoint {str(path)!r} cannot be read: {type(exc).__name__}") from None
    if not isinstance(ckpt, dict) or "fingerprint" not in ckpt:
        raise GLRError(f"{str(path)!r} is not a glrtheory LM checkpoint")
    if fingerprint is not None and ckpt["fingerprint"] != fingerprint:
        raise GLRError(f"checkpoint {str(path)!r} comes from another config (fingerprint "
                       f"{ckpt['fingerprint']}, this config {fingerprint}); use another log.out_dir")
    return ckpt


def restore(ckpt: dict, *, model, optimizer=None) -> int:
    """Load model, optimizer and RNG states from a checkpoint; return its step."""
    model.load_state_dict(ckpt["model"])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    set_rng_states(ckpt["rng"])
    return int(ckpt["step"])
