"""The ``glr`` command. Each verb lives in its own module with ``register(subparsers)``.

Errors print one line (``glr: error: ...``) and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import GLRError

#: Modules of glrtheory.cli that register verbs, in the order `glr --help` lists them.
VERB_MODULES = ("patterns", "analysis", "catalog", "lti")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise GLRError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="glr", description="Analyze structured generalized linear recurrences.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for name in VERB_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except GLRError as exc:
        print(f"glr: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
