"""Argument checks shared by the whole package: integers, finite reals and finite arrays, and the one
grammar of numbers written as text (specs, command-line values).

Each check raises a ``GLRError`` naming the argument and the rule it breaks, and returns the clean value.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .errors import GLRError

#: Positions and lengths are stored as int32 in the index tables.
INT32_MAX = 2**31 - 1


#: Numbers as text: ASCII digits with an optional sign; a real may add a decimal point and an exponent. Python's
#: ``int`` and ``float`` also take ``1_0``, other scripts' digits, ``nan`` and ``inf``; nothing here does.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_REAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def parse_integer(text: str) -> int:
    """``text`` (spaces around it allowed) as an integer of the grammar ``[+-]?[0-9]+``; ValueError otherwise."""
    text = text.strip()
    if not _INTEGER_TEXT.match(text):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def parse_real(text: str) -> float:
    """``text`` (spaces around it allowed) as a finite real, in decimal or exponent notation; ValueError
    otherwise (also for a value beyond float64, such as ``1e999``)."""
    text = text.strip()
    value = float(text) if _REAL_TEXT.match(text) else math.nan
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def check_integer(v, what: str, minimum: int, maximum: int = INT32_MAX) -> int:
    """``minimum <= v <= maximum`` for an integer v (bool is refused); returns ``int(v)``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise GLRError(f"{what} must be an integer, got {v!r}")
    if v < minimum:
        raise GLRError(f"{what} must be >= {minimum}, got {v}")
    if v > maximum:
        raise GLRError(f"{what} {v} exceeds the limit {'2^31-1' if maximum == INT32_MAX else maximum}")
    return int(v)


def check_table(v, what: str) -> dict:
    """A table (a dict, as TOML and JSON give one); returns it."""
    if not isinstance(v, dict):
        raise GLRError(f"{what} must be a table, got {v!r}")
    return v


def check_real(v, what: str, low: float = -math.inf, high: float = math.inf, open_low: bool = False,
               open_high: bool = False) -> float:
    """A finite real number (bool is refused) in the interval from low to high, each end closed unless
    ``open_low`` / ``open_high``; returns ``float(v)``."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
        raise GLRError(f"{what} must be a finite number, got {v!r}")
    if (v <= low if open_low else v < low) or (v >= high if open_high else v > high):
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise GLRError(f"{what} must lie in {interval}, got {v!r}")
    return float(v)


def check_finite(x: np.ndarray, name: str, where: np.ndarray | None = None) -> None:
    """Raise a GLRError naming the first NaN or inf of x (only where ``where`` is True, when given)."""
    bad = ~np.isfinite(x)
    if where is not None:
        bad &= where
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise GLRError(f"{name} holds a non-finite value (NaN or inf) at index {where}")


def check_device(device, what: str = "device"):
    """A torch device this machine has: ``auto`` (CUDA where present), ``cpu``, ``cuda`` or ``cuda:i`` (or a
    ``torch.device`` or CUDA index); returns the ``torch.device``."""
    import torch        # here, so that the theory half imports without torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise GLRError(f"{what} must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    if isinstance(device, int) and not 0 <= device < count:
        raise GLRError(f"{what} {device!r} names CUDA device {device}; this machine has {count} CUDA device(s)")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise GLRError(f"unknown {what} {device!r}; use auto, cpu or cuda[:i]") from None
    if device.type == "cuda" and (device.index or 0) >= count:
        raise GLRError(f"{what} {str(device)!r} is not available (this machine has {count} CUDA device(s))")
    if device.type not in ("cpu", "cuda"):
        raise GLRError(f"unsupported {what} {str(device)!r}; use auto, cpu or cuda[:i]")
    return device
