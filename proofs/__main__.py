"""Run the executable proofs: ``python -m proofs [NAME ...]``; exit status 1 if any check fails."""
import sys
import traceback

from . import names, run


def main(argv: list[str]) -> int:
    chosen = argv or names()
    unknown = sorted(set(chosen) - set(names()))
    if unknown:
        print(f"unknown proof(s): {', '.join(unknown)}; known: {', '.join(names())}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        print(f"\n=== {name} ===")
        try:
            run(name)
            print(f"--- {name}: checked")
        except Exception:
            traceback.print_exc()
            failed.append(name)
    print(f"\n{len(chosen) - len(failed)}/{len(chosen)} proofs checked" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))
