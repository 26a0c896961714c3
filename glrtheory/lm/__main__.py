"""``python -m glrtheory.lm {train,eval,generate,collect,report} ...`` (also ``glr lm ...``); works under torchrun.
Errors print one line and exit with status 2, as ``glr``'s (``glrtheory.cli.run``)."""
import sys

from glrtheory.cli import run

from .commands import build_parser


def main(argv=None) -> int:
    return run("glrtheory.lm", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
