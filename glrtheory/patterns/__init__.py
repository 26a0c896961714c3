"""Patterns: the supports A(t), B(t), the built-in families, the spec grammar and the index tables."""
from .families import (attention, blocks, exponent, fenwick, kron, lags, power, quadratic, ssm,
                       window)
from .pattern import Pattern
from .registry import FAMILIES, Family, parse, register
from .support import MAX_TABLE_ENTRIES, LagSupport, Support, TableSupport

__all__ = ["Pattern", "FAMILIES", "Family", "register", "parse", "Support", "LagSupport", "TableSupport",
           "MAX_TABLE_ENTRIES", "ssm", "attention", "window", "lags", "power", "quadratic", "exponent", "fenwick",
           "blocks", "kron"]
