"""``glr catalog``: the known token mixers in the framework, with their patterns and costs at length n."""
from __future__ import annotations

from ..errors import GLRError
from .common import add_output_args, positive_int, print_json

COLUMNS = (("name", "name"), ("example", "pattern"), ("state", "state"), ("data_in", "data in"),
           ("decode_max", "decode@n"), ("theta_decode", "decode"), ("cache_peak", "cache@n"),
           ("theta_cache", "cache"), ("total", "total@n"), ("theta_total", "total"))

#: The length of the exact counts.
N = 1024


def register(sub) -> None:
    p = sub.add_parser("catalog", help="list the known architectures written in the framework")
    p.add_argument("--n", type=positive_int, help=f"length for the exact counts (default {N})")
    p.add_argument("--inexpressible", action="store_true",
                   help="list the architectures the scalar framework cannot express, with reasons")
    add_output_args(p, plot=False)
    p.set_defaults(run=run_catalog)


def run_catalog(args) -> None:
    from ..catalog import INEXPRESSIBLE
    from ..catalog.registry import table

    if args.inexpressible:
        if args.n is not None:
            raise GLRError("--n sets the length of the costs; --inexpressible lists no costs")
        if args.json:
            print_json([{"name": x.name, "reason": x.reason} for x in INEXPRESSIBLE])
        else:
            for x in INEXPRESSIBLE:
                print(f"{x.name}\n    {x.reason}")
        return
    n = N if args.n is None else args.n
    rows = table(n)
    if args.json:
        print_json(rows)
        return
    cells = [[h for _, h in COLUMNS]]
    for r in rows:
        example = r["example"] if r["copies"] == 1 else f"{r['example']} x{r['copies']}"
        name = r["name"] + (" (op)" if r["coefficients"] == "operator" else "")
        cells.append([example if k == "example" else name if k == "name" else str(r[k]) for k, _ in COLUMNS])
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    print(f"n = {n}; decode = max_t |A(t)|+|B(t)|, cache = peak live states, total = nnz_a + nnz_b "
          "(glrtheory.analysis); growth classes from glrtheory.symbolic.costs")
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print("(op): operator-valued B, a K x K matrix on the key dimension (each B-term costs K state-sized "
          "multiply-adds)")
    print(f"\n{len(INEXPRESSIBLE)} architectures the scalar framework cannot express: glr catalog --inexpressible")
