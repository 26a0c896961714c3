"""The spec-string grammar (see README "Pattern specs"): splitting a spec into terms, and the argument
readers the family records use. Which families exist is the registry's business
(``glrtheory.patterns.families.FAMILIES``).

    spec   := term ("+" term)*             union of the terms' supports
    term   := family [":" args]
    family := ssm | attention | window:W | lags:l1,l2,... | power:b | power2 | quadratic
            | exponent:alpha | fenwick | blocks[:C] | kron:r0,r1,...   (r_i = row i of the base, i+1 digits)
"""
from __future__ import annotations

from ..checks import parse_integer, parse_real
from ..errors import GLRError

MAX_SPEC = 10_000
MAX_TERMS = 32
MAX_KRON_ROWS = 16


def split_terms(spec: str) -> list[tuple[str, str | None]]:
    """``"window:8+fenwick"`` -> ``[("window", "8"), ("fenwick", None)]`` (names lower-cased)."""
    if not isinstance(spec, str):
        raise GLRError(f"a pattern spec must be a string, got {type(spec).__name__}")
    if len(spec) > MAX_SPEC:
        raise GLRError(f"pattern spec is longer than {MAX_SPEC} characters")
    terms = spec.split("+")
    if len(terms) > MAX_TERMS:
        raise GLRError(f"pattern spec unites {len(terms)} terms, over the limit {MAX_TERMS}")
    if any(not t.strip() for t in terms):
        raise GLRError(f"empty term in pattern spec {spec!r}")
    out = []
    for term in terms:
        name, sep, args = term.partition(":")
        out.append((name.strip().lower(), args if sep else None))
    return out


# -- argument readers: the argument text (None when the term has no ':') -> constructor arguments ------

def no_args(name: str):
    """A reader for a family without arguments."""
    def read(args: str | None) -> tuple:
        if args is not None:
            raise GLRError(f"family {name!r} takes no arguments, got {name}:{args}")
        return ()
    return read


def needed(name: str, form: str, args: str | None) -> str:
    """The argument text of a family that needs one (``form`` shows it in the error)."""
    if args is None or not args.strip():
        raise GLRError(f"family {name!r} needs arguments: {name}{form}")
    return args


def integer(text: str, what: str) -> int:
    """An integer argument (``checks.parse_integer``, at most 12 digits; the constructor checks the range)."""
    text = text.strip()
    try:
        value = parse_integer(text)
    except ValueError:
        raise GLRError(f"{what} must be an integer, got {text!r}") from None
    if len(text.lstrip("+-")) > 12:
        raise GLRError(f"{what} {text} exceeds the limit 2^31-1")
    return value


def number(text: str, what: str) -> float:
    """A finite real argument (``checks.parse_real``)."""
    try:
        return parse_real(text)
    except ValueError:
        raise GLRError(f"{what} must be a finite number, got {text.strip()!r}") from None


def kron_rows(text: str) -> list[list[int]]:
    """``"1,11,101"`` -> the lower-triangular 0/1 base given by its rows (row i has i+1 digits)."""
    rows = [r.strip() for r in text.split(",")]
    if len(rows) > MAX_KRON_ROWS:
        raise GLRError(f"kron base is limited to {MAX_KRON_ROWS} rows, got {len(rows)}")
    for i, r in enumerate(rows):
        if len(r) != i + 1 or set(r) - {"0", "1"}:
            raise GLRError(f"kron row {i} must be {i + 1} digits of 0/1 (lower triangle), got {r!r}")
    return [[int(r[j]) if j <= i else 0 for j in range(len(rows))] for i, r in enumerate(rows)]
