"""Shared pieces of the CLI verbs: arguments, pattern specs and references, JSON output, plotting."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import re
import sys
from pathlib import Path

from ..checks import parse_integer, parse_real
from ..errors import GLRError
from ..patterns import Pattern


def _int_in(low: int, kind: str, high: float = math.inf):
    """argparse type: an integer (``checks.parse_integer``) in ``[low, high]`` (argparse reports the message as
    `argument --x: ...`)."""
    def parse(text: str) -> int:
        try:
            v = parse_integer(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {v}")
        return v
    return parse


positive_int = _int_in(1, "a positive integer")
non_negative_int = _int_in(0, "a non-negative integer")
#: A random generator's seed: torch's generators take 64 bits.
random_seed = _int_in(0, "a seed from 0 to 2^64-1", 2**64 - 1)


def finite_real(text: str) -> float:
    """argparse type: a finite number (``checks.parse_real``: nan, inf and ``1_0`` refused)."""
    try:
        return parse_real(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None


def positive_real(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = parse_real(text)
    except ValueError:
        v = math.nan
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def path_arg(text: str) -> str:
    """argparse type: a file or folder name, not empty (an empty one would fall back to ``.`` silently)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return text


def add_output_args(p: argparse.ArgumentParser, plot: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    if plot:
        p.add_argument("--plot", metavar="FILE.png", type=png_file, help="draw a PNG figure to FILE.png")


def png_file(path: str) -> str:
    """A ``--plot`` target: a file name ending in .png (an empty one too is refused, not ignored)."""
    if not path.lower().endswith(".png") or path.lower() == ".png":
        raise argparse.ArgumentTypeError(f"expected a .png file name, got {path!r}")
    return path


def print_json(data) -> None:
    print(json.dumps(data, indent=2))


#: ``module:attribute`` (as uvicorn and gunicorn take an app): a dotted module or a ``.py`` file, then a
#: dotted attribute path. Built-in specs never match: their arguments are numbers.
_REFERENCE = re.compile(r"(?P<module>.+):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\Z")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")


def pattern_arg(spec: str) -> Pattern:
    """A pattern from a spec string (``power2``, ``window:64+fenwick``) or from the user's code:
    ``module:attribute`` or ``path/to/file.py:attribute``, where the attribute is a ``Pattern`` or a
    function of no arguments that returns one (a module named as a pattern family is read as a spec). The module is
    imported, never evaluated as a string."""
    from ..patterns.registry import FAMILIES

    m = _REFERENCE.match(spec.strip())
    if m and m["module"] not in FAMILIES and (m["module"].endswith(".py") or _DOTTED.match(m["module"])):
        return load_pattern(m["module"], m["attr"])
    if spec.strip().split(":", 1)[0].endswith(".py"):
        raise GLRError(f"pattern {spec!r} names a .py file: write file.py:attribute, a dotted Python name after "
                       "the one colon")
    return Pattern.from_spec(spec)       # a family's spec (window:W ...): its own error names a bad parameter


def distinct_patterns(specs: list[str]) -> list[Pattern]:
    """``pattern_arg`` of each spec; a pattern given twice (the same canonical spec, as ``window:3`` and
    ``window:03``) is refused, where it would be computed again into a duplicate row."""
    patterns, seen = [pattern_arg(s) for s in specs], {}
    for spec, p in zip(specs, patterns):
        if p.spec in seen:
            raise GLRError(f"pattern {p.spec!r} is given twice ({seen[p.spec]!r} and {spec!r})")
        seen[p.spec] = spec
    return patterns


def _import(module: str):
    """Import a dotted module (the current directory first on the path) or a ``.py`` file by path."""
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise GLRError(f"pattern file {module!r} does not exist")
        name = f"_glr_user_{path.stem}_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        folder = str(path.parent)
    else:
        name, spec, folder = module, None, os.getcwd()
    sys.path.insert(0, folder)
    try:
        if spec is None:
            return importlib.import_module(name)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    except (Exception, SystemExit) as exc:
        if spec is not None:
            sys.modules.pop(name, None)
        raise GLRError(f"importing {module!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(folder)


def load_pattern(module: str, attr: str) -> Pattern:
    """``getattr(import(module), attr)`` as a Pattern (a zero-argument callable is called once)."""
    obj = _import(module)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GLRError(f"{module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, Pattern):
        try:
            obj = obj()
        except GLRError:
            raise
        except (Exception, SystemExit) as exc:
            raise GLRError(f"calling {module}:{attr}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Pattern):
        raise GLRError(f"{module}:{attr} is a {type(obj).__name__}, not a glrtheory Pattern")
    return obj


def pyplot():
    """matplotlib.pyplot with the Agg back-end."""
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
