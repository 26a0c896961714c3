"""The ``glr`` command. Each verb lives in its own module with ``register(subparsers)``.

Errors print one line (``glr: error: ...``) and exit with status 2: bad arguments, a ``GLRError``, and a file that
cannot be read or written (``OSError``, a file that is not UTF-8 text); each warning prints one line
(``glr: warning: ...``); Ctrl-C prints ``glr: interrupted`` and exits with status 130. ``python -m glrtheory.lm``
runs the same way (``run``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings

from ..errors import GLRError

#: Modules of glrtheory.cli that register verbs, in the order `glr --help` lists them.
VERB_MODULES = ("patterns", "analysis", "search", "catalog", "lti", "lab", "lm")


class OneLineParser(argparse.ArgumentParser):
    """Errors as one line; a negative number in scientific notation (``--range -1e-3 1``) read as a value, as
    ``-0.001`` is (argparse's own pattern takes only plain decimals for numbers, and the rest for options)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):  # one line, exit 2
        raise GLRError(message)


#: What bad input raises besides GLRError: a path that is a file, a folder, missing or not writable; a file not UTF-8.
INPUT_ERRORS = (GLRError, OSError, UnicodeDecodeError)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="glr", description="Analyze structured generalized linear recurrences.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineParser)
    sub.required = True
    for name in VERB_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _first_line(obj) -> str:
    text = str(obj).strip()
    return text.splitlines()[0] if text else type(obj).__name__


def _error_line(exc: BaseException) -> str:
    """An error's one line; an ``OSError`` as the path it met (a rename's target, not its temporary file) and why."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        path = exc.filename2 if exc.filename2 is not None else exc.filename
        return f"cannot use {os.fsdecode(path)!r}: {exc.strerror}"
    return _first_line(exc)


def run(prog: str, parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse ``argv`` and run the chosen command; warnings print as one ``PROG: warning:`` line each, an error
    (``INPUT_ERRORS``) as one line and status 2."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            args = parser.parse_args(argv)
            args.run(args)
            code = 0
        except BrokenPipeError:
            return 0
        except KeyboardInterrupt:               # Ctrl-C: one line, the shell's status for SIGINT
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except INPUT_ERRORS as exc:
            code, error = 2, exc
    seen = []
    for w in caught:
        line = f"{prog}: warning: {_first_line(w.message)}"
        if line not in seen:
            seen.append(line)
            print(line, file=sys.stderr)
    if code:
        print(f"{prog}: error: {_error_line(error)}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    """Run one verb of ``glr`` (``run``)."""
    return run("glr", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
