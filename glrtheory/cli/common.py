"""Shared pieces of the CLI verbs: arguments, JSON output and plotting back-end."""
from __future__ import annotations

import argparse
import json

from ..errors import GLRError
from ..patterns import Pattern


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse reports the message as `argument --x: ...`)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_output_args(p: argparse.ArgumentParser, plot: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    if plot:
        p.add_argument("--plot", metavar="FILE.png", help="draw a PNG figure to FILE.png")


def print_json(data) -> None:
    print(json.dumps(data, indent=2))


def pattern_arg(spec: str) -> Pattern:
    return Pattern.from_spec(spec)


def pyplot(path: str):
    """matplotlib.pyplot with the Agg back-end, after checking the target is a .png path."""
    if not path.lower().endswith(".png"):
        raise GLRError(f"--plot needs a .png file name, got {path!r}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GLRError("plotting needs matplotlib: pip install 'glrtheory[plot]'") from None
    return plt


def save(fig, path: str) -> None:
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise GLRError(f"cannot write {path!r}: {exc.strerror}") from None
