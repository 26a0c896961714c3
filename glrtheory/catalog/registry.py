"""The catalog's table: every entry with its pattern, state and where the data dependence sits, and the
architectures the scalar-coefficient framework cannot express exactly (with the reason). The rows live in
``entries.toml`` beside this module, in the catalog's order; an entry's name is its function's name."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..toml_file import read_toml
from .attention import sliding_window_attention, softmax_attention
from .chacal import chacal
from .linear import gla, linear_attention, retention, simple_gla
from .log_linear import levels, log_linear_attention
from .long_conv import long_conv
from .multi_lag import multi_lag
from .operator import delta_net, gated_delta_net
from .ssm import diagonal_ssm, mamba2


@dataclass(frozen=True)
class Entry:
    """One architecture written in the framework.

    ``spec``: the pattern it runs on (with a parameter placeholder such as ``window:W``); ``example``:
    a concrete spec (or several, separated by " | ") for cost tables; ``state``: the shape of one state
    h_t per batch element (heads H, key and value dims K, V, SSM state N, head dim P, channels D, levels
    L); ``data_in``: which of A and B carry the token data (parameters such as gamma or a convolution
    kernel do not count). ``copies(n)``: how many recurrences of the pattern run side by side over the sequence
    (1, or the Fenwick levels of log-linear attention), with its growth class ``copies_theta``.
    """

    name: str
    function: Callable
    spec: str
    example: str
    state: str
    data_in: str
    note: str
    copies: Callable[[int], int] = lambda n: 1
    copies_theta: str = "1"


@dataclass(frozen=True)
class Inexpressible:
    """An architecture the scalar-coefficient framework cannot write exactly, and why."""

    name: str
    reason: str


#: The catalog's functions and the ``copies`` functions, by the names that entries.toml uses.
_FUNCTIONS: dict[str, Callable] = {f.__name__: f for f in (
    softmax_attention, sliding_window_attention, linear_attention, retention, simple_gla, gla, mamba2,
    diagonal_ssm, long_conv, chacal, log_linear_attention, multi_lag, delta_net, gated_delta_net, levels)}


def _entry(row: dict) -> Entry:
    """An ``Entry`` from one row of entries.toml: its function is the catalog function of its name."""
    if "copies" in row:
        row = {**row, "copies": _FUNCTIONS[row["copies"]]}
    return Entry(function=_FUNCTIONS[row["name"]], **row)


_TABLE = read_toml(Path(__file__).with_name("entries.toml"))
#: The scalar-coefficient entries, in the catalog's order.
ENTRIES: tuple[Entry, ...] = tuple(_entry(row) for row in _TABLE["scalar"])
#: Entries that need operator-valued B-coefficients (K x K on the key dimension; ``solve_operator``).
OPERATOR_ENTRIES: tuple[Entry, ...] = tuple(_entry(row) for row in _TABLE["operator"])
#: The architectures the scalar-coefficient framework cannot write exactly, with the reason.
INEXPRESSIBLE: tuple[Inexpressible, ...] = tuple(Inexpressible(**row) for row in _TABLE["inexpressible"])


def table(n: int = 1024) -> list[dict]:
    """One row per entry (scalar, then operator-valued): its pattern and the costs of docs/quantities.md at length n,
    from ``glrtheory.analysis`` (max decode cost, cache peak, total cost ``nnz_a + nnz_b``) and
    ``glrtheory.symbolic.costs.theta`` (growth classes), each times ``copies``."""
    import sympy as sp

    from ..analysis import cache_peak, decode_costs, total_cost
    from ..patterns import Pattern
    from ..symbolic.costs import theta

    rows = []
    for e, example in ((e, x.strip()) for e in ENTRIES + OPERATOR_ENTRIES for x in e.example.split("|")):
        p = Pattern.from_spec(example)
        c = e.copies(n)
        th = theta(p)
        rows.append({
            "name": e.name, "coefficients": "operator" if e in OPERATOR_ENTRIES else "scalar",
            "spec": e.spec, "example": p.spec, "copies": c, "state": e.state,
            "data_in": e.data_in, "n": n,
            "decode_max": c * int(decode_costs(p, n).max()), "cache_peak": c * cache_peak(p, n),
            "total": c * total_cost(p, n),
            **{k: None if v is None else str(sp.sympify(v) * sp.sympify(e.copies_theta)) for k, v in th.items()},
            "note": e.note,
        })
    return rows
