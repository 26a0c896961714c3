"""``python -m glrtheory.lm {train,eval,generate,collect,report} ...`` (also ``glr lm ...``); works under torchrun.
Errors print one line and exit with status 2, as ``glr``'s (``glrtheory.cli.run``)."""
import os
import sys

from glrtheory.cli import run

from .commands import build_parser


def main(argv=None) -> int:
    return run("glrtheory.lm", build_parser(), argv)


def exit_now(code: int) -> None:
    """Leave with ``code``; a torchrun process (``WORLD_SIZE`` > 1) skips the interpreter's and C++'s teardown, once
    its work is done and its streams flushed. Without that, in 2 of 113 runs of 2 gloo processes on the CPU (torch
    2.13), a process that had written all its results aborted in teardown ("terminate called without an active
    exception", no Python frame left: a C++ thread still joinable), and torchrun failed the run; with it, none of 200
    (tests/test_lm_train.py's lag-bias run, two at a time on the 2-core machine)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_now(main())
