"""``python -m glrtheory.lm {train,eval,generate} ...`` (also ``glr lm ...``); works under torchrun."""
import sys

from glrtheory.errors import GLRError

from .commands import build_parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.run(args)
    except GLRError as exc:
        print(f"glrtheory.lm: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
