"""The spec-string grammar (see README "Pattern specs").

    spec   := term ("+" term)*             union of the terms' supports
    term   := family [":" args]
    family := ssm | attention | window:W | lags:l1,l2,... | power:b | power2 | quadratic
            | exponent:alpha | fenwick | blocks[:C] | kron:r0,r1,...   (r_i = row i of the base, i+1 digits)
"""
from __future__ import annotations

import math
import re

from ..errors import GLRError
from . import families as fam
from .pattern import Pattern

#: family name -> (argument form, one-line description); the CLI's `glr patterns` prints this.
FAMILIES = {
    "ssm": ("", "first order: A(t)={t}, B(t)={t-1}"),
    "attention": ("", "dense causal A, empty B"),
    "window": (":W", "A covers the last W inputs, empty B"),
    "lags": (":l1,l2,...", "explicit translation-invariant B-lags, A(t)={t}"),
    "power": (":b", "B-lags b^k (power2 = power:2): O(log t) per token"),
    "power2": ("", "B-lags 2^k: O(log t) per token, O(n log n) total"),
    "quadratic": ("", "B-lags k^2+1: O(sqrt t) per token, O(n^1.5) total"),
    "exponent": (":alpha", "B-lags floor(k^(1/alpha)): Theta(t^alpha) per token, alpha in [0,1]"),
    "fenwick": ("", "aligned binary counter of log-linear attention: O(log n) states"),
    "blocks": ("[:C]", "two-level blocks of size C (default ceil(sqrt n)): dense A in block, carry state"),
    "kron": (":r0,r1,...", "Kronecker powers of a small causal base mask given by rows, e.g. kron:1,11"),
}

_MAX_SPEC = 10_000
_MAX_TERMS = 32
_INT = re.compile(r"[+-]?\d+\Z")


def _int(text: str, what: str) -> int:
    text = text.strip()
    if not _INT.match(text):
        raise GLRError(f"{what} must be an integer, got {text!r}")
    if len(text.lstrip("+-")) > 12:
        raise GLRError(f"{what} {text} exceeds the limit 2^31-1")
    return int(text)


def _no_args(name: str, args: str | None) -> None:
    if args is not None:
        raise GLRError(f"family {name!r} takes no arguments, got {name}:{args}")


def _need_args(name: str, args: str | None, form: str) -> str:
    if args is None or not args.strip():
        raise GLRError(f"family {name!r} needs arguments: {name}{form}")
    return args


def _term(term: str) -> Pattern:
    name, sep, args = term.partition(":")
    name = name.strip().lower()
    args = args if sep else None
    if name not in FAMILIES:
        raise GLRError(f"unknown pattern family {name!r}; known: {', '.join(FAMILIES)}")
    form = FAMILIES[name][0]
    if name in ("ssm", "attention", "power2", "quadratic", "fenwick"):
        _no_args(name, args)
        return {"ssm": fam.ssm, "attention": fam.attention, "power2": lambda: fam.power(2),
                "quadratic": fam.quadratic, "fenwick": fam.fenwick}[name]()
    if name == "blocks" and args is None:
        return fam.blocks()
    args = _need_args(name, args, form)
    if name == "window":
        return fam.window(_int(args, "window W"))
    if name == "power":
        return fam.power(_int(args, "power base b"))
    if name == "blocks":
        return fam.blocks(_int(args, "block size C"))
    if name == "lags":
        return fam.lags(*[_int(x, "lag") for x in args.split(",")])
    if name == "exponent":
        try:
            alpha = float(args)
        except ValueError:
            raise GLRError(f"exponent alpha must be a number, got {args!r}") from None
        if not math.isfinite(alpha):
            raise GLRError(f"exponent alpha must be finite, got {args!r}")
        return fam.exponent(alpha)
    # kron
    rows = [r.strip() for r in args.split(",")]
    if len(rows) > 16:
        raise GLRError(f"kron base is limited to 16 rows, got {len(rows)}")
    for i, r in enumerate(rows):
        if len(r) != i + 1 or set(r) - {"0", "1"}:
            raise GLRError(f"kron row {i} must be {i + 1} digits of 0/1 (lower triangle), got {r!r}")
    K = [[int(r[j]) if j <= i else 0 for j in range(len(rows))] for i, r in enumerate(rows)]
    return fam.kron(K)


def parse(spec: str) -> Pattern:
    """Parse a spec string into a ``Pattern`` (grammar in the module docstring)."""
    if not isinstance(spec, str):
        raise GLRError(f"a pattern spec must be a string, got {type(spec).__name__}")
    if len(spec) > _MAX_SPEC:
        raise GLRError(f"pattern spec is longer than {_MAX_SPEC} characters")
    terms = spec.split("+")
    if len(terms) > _MAX_TERMS:
        raise GLRError(f"pattern spec unites {len(terms)} terms, over the limit {_MAX_TERMS}")
    if any(not t.strip() for t in terms):
        raise GLRError(f"empty term in pattern spec {spec!r}")
    pattern = _term(terms[0])
    for t in terms[1:]:
        pattern = pattern + _term(t)
    return pattern
