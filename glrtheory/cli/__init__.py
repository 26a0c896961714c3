"""The ``glr`` command. Each verb lives in its own module with ``register(subparsers)``.

Errors print one line (``glr: error: ...``) and exit with status 2; each warning prints one line
(``glr: warning: ...``).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ..errors import GLRError

#: Modules of glrtheory.cli that register verbs, in the order `glr --help` lists them.
VERB_MODULES = ("patterns", "analysis", "search", "catalog", "lti", "lab", "lm")


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


def _first_line(obj) -> str:
    text = str(obj).strip()
    return text.splitlines()[0] if text else type(obj).__name__


def main(argv=None) -> int:
    """Run one verb; warnings print as one ``glr: warning:`` line each, an error as one line and status 2."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            args = build_parser().parse_args(argv)
            args.run(args)
            code = 0
        except GLRError as exc:
            code, error = 2, exc
        except BrokenPipeError:
            return 0
    seen = []
    for w in caught:
        line = f"glr: warning: {_first_line(w.message)}"
        if line not in seen:
            seen.append(line)
            print(line, file=sys.stderr)
    if code:
        print(f"glr: error: {_first_line(error)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
