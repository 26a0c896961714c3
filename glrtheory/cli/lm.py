"""``glr lm train|eval|generate``: byte-level language models per pattern (see glrtheory.lm)."""
from __future__ import annotations


def register(subparsers) -> None:
    from glrtheory.lm.commands import add_commands

    p = subparsers.add_parser("lm", help="train / evaluate / sample byte-level LMs per pattern")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=type(p))
    sub.required = True
    add_commands(sub)
