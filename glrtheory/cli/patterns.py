"""``glr patterns`` (the families) and ``glr show`` (the supports of A and B for small n)."""
from __future__ import annotations

from ..errors import GLRError
from ..patterns import FAMILIES
from .common import add_output_args, pattern_arg, positive_int, print_json, pyplot, save

SHOW_TEXT_MAX_N = 128
SHOW_PLOT_MAX_N = 2048


def register(sub) -> None:
    p = sub.add_parser("patterns", help="list the built-in pattern families")
    add_output_args(p, plot=False)
    p.set_defaults(run=run_patterns)

    p = sub.add_parser("show", help="print (or plot) the supports A(t), B(t) of a pattern")
    p.add_argument("spec", help="pattern spec (power2, window:8+fenwick), module:attribute or file.py:attribute")
    p.add_argument("--n", type=positive_int, default=16, help="sequence length (default 16)")
    add_output_args(p)
    p.set_defaults(run=run_show)


def run_patterns(args) -> None:
    if args.json:
        print_json([{"family": f.name, "args": f.args, "description": f.doc} for f in FAMILIES.values()])
        return
    for f in FAMILIES.values():
        print(f"{f.name + f.args:<18} {f.doc}")


def grid(a_sets, b_sets) -> str:
    """Text grid: row t shows A(t) ('a' marks s in A(t)) and B(t) ('b'); '.' elsewhere on s <= t."""
    n = len(a_sets)
    width = len(str(n - 1))
    lines = [f"{'t':>{width}}  A(t){' ' * max(n - 4, 0)}  B(t)"]
    for t in range(n):
        ra = "".join("a" if s in a_sets[t] else "." for s in range(t + 1)).ljust(max(n, 4))
        rb = "".join("b" if s in b_sets[t] else "." for s in range(t + 1)).ljust(max(n, 4))
        lines.append(f"{t:>{width}}  {ra}  {rb}".rstrip())
    return "\n".join(lines)


def run_show(args) -> None:
    p = pattern_arg(args.spec)
    limit = SHOW_PLOT_MAX_N if args.plot else SHOW_TEXT_MAX_N
    if args.n > limit:
        raise GLRError(f"show is limited to n <= {limit}{' with --plot' if args.plot else ''}, got n={args.n}")
    if args.plot:
        plt = pyplot()
        A, B = p.masks(args.n)
        fig, axes = plt.subplots(1, 2, figsize=(10, 5))
        for ax, m, name in zip(axes, (A, B), ("A (inputs)", "B (past states)")):
            ax.imshow(m, cmap="Greys", interpolation="nearest")
            ax.set_title(f"{p.spec}: {name}, n={args.n}")
            ax.set_xlabel("s")
            ax.set_ylabel("t")
        save(fig, args.plot)
        plt.close(fig)
    a_sets, b_sets = p.sets(args.n)
    if args.json:
        print_json({"spec": p.spec, "n": args.n, "A": a_sets, "B": b_sets})
    elif not args.plot:
        print(grid([set(r) for r in a_sets], [set(r) for r in b_sets]))
    else:
        print(f"wrote {args.plot}")
