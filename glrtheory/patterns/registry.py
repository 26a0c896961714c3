"""The family registry: one ``Family`` record per family (grammar, reader, constructor, one-line doc,
closed-form builder), and ``parse``, which turns a spec string into a ``Pattern`` through it.

Adding a family is one record::

    register(Family("every3", "", "B-lag 3 only", no_args("every3"), lambda: lags(3)))

after which ``Pattern.from_spec("every3+ssm")`` works; ``forms`` names a builder of closed forms
(``"module:function"``, called with the constructor's arguments), or is None when none are known
(then ``glrtheory.symbolic.costs.theta`` gives None and says why).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

from ..errors import GLRError
from . import families as fam
from .pattern import Pattern
from .spec import integer, kron_rows, needed, no_args, number, split_terms

_COSTS = "glrtheory.symbolic.family_forms"


@dataclasses.dataclass(frozen=True)
class Family:
    """One pattern family.

    name: the spec name; args: the argument form ``glr patterns`` shows (``""``, ``":W"``, ``"[:C]"``);
    doc: one line; read: the argument text (None without ``:``) -> the constructor's arguments;
    build: the constructor; forms: ``"module:function"`` building ``CostForms`` from the same
    arguments, or None when the family has no closed forms.
    """

    name: str
    args: str
    doc: str
    read: Callable[[str | None], tuple]
    build: Callable[..., Pattern]
    forms: str | None = None

    def closed_forms(self, *params):
        """The family's ``CostForms`` for these constructor arguments (None when it has none)."""
        if self.forms is None:
            return None
        module, _, name = self.forms.partition(":")
        return getattr(importlib.import_module(module), name)(*params)


#: family name -> record, in the order ``glr patterns`` lists them
FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the registry (its name must be new)."""
    if family.name in FAMILIES:
        raise GLRError(f"pattern family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def parse(spec: str) -> Pattern:
    """Parse a spec string into a ``Pattern`` (grammar in ``glrtheory.patterns.spec``)."""
    pattern = None
    for name, args in split_terms(spec):
        family = FAMILIES.get(name)
        if family is None:
            raise GLRError(f"unknown pattern family {name!r}; known: {', '.join(FAMILIES)}")
        params = family.read(args)
        p = family.build(*params)
        if not p.terms:                  # a constructor that does not name its term
            fam.with_term(p, name, *params)
        pattern = p if pattern is None else pattern + p
    return pattern


def _one(name: str, form: str, what: str, convert):
    return lambda args: (convert(needed(name, form, args), what),)


def _blocks(args: str | None) -> tuple:
    return (None,) if args is None else (integer(needed("blocks", "[:C]", args), "block size C"),)


for _record in (
    Family("ssm", "", "first order: A(t)={t}, B(t)={t-1}", no_args("ssm"), fam.ssm, f"{_COSTS}:ssm_forms"),
    Family("attention", "", "dense causal A, empty B", no_args("attention"), fam.attention,
           f"{_COSTS}:attention_forms"),
    Family("window", ":W", "A covers the last W inputs, empty B", _one("window", ":W", "window W", integer),
           fam.window, f"{_COSTS}:window_forms"),
    Family("lags", ":l1,l2,...", "explicit translation-invariant B-lags, A(t)={t}",
           lambda args: tuple(integer(x, "lag") for x in needed("lags", ":l1,l2,...", args).split(",")),
           fam.lags, f"{_COSTS}:lags_forms"),
    Family("power", ":b", "B-lags b^k (power2 = power:2): O(log t) per token",
           _one("power", ":b", "power base b", integer), fam.power, f"{_COSTS}:power_forms"),
    Family("power2", "", "B-lags 2^k: O(log t) per token, O(n log n) total", no_args("power2"),
           lambda: fam.power(2)),
    Family("quadratic", "", "B-lags k^2+1: O(sqrt t) per token, O(n^1.5) total", no_args("quadratic"),
           fam.quadratic, f"{_COSTS}:quadratic_forms"),
    Family("exponent", ":alpha", "B-lags floor(k^(1/alpha)): Theta(t^alpha) per token, alpha in [0,1]",
           _one("exponent", ":alpha", "exponent alpha", number), fam.exponent, f"{_COSTS}:exponent_forms"),
    Family("fenwick", "", "aligned binary counter of log-linear attention: O(log n) states", no_args("fenwick"),
           fam.fenwick, f"{_COSTS}:fenwick_forms"),
    Family("blocks", "[:C]", "two-level blocks of size C (default ceil(sqrt n)): dense A in block, carry state",
           _blocks, fam.blocks, f"{_COSTS}:blocks_forms"),
    Family("kron", ":r0,r1,...", "Kronecker powers of a small causal base mask given by rows, e.g. kron:1,11",
           lambda args: (kron_rows(needed("kron", ":r0,r1,...", args)),), fam.kron, f"{_COSTS}:kron_forms"),
):
    register(_record)

Pattern.spec_parser = staticmethod(parse)
