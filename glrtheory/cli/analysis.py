"""``glr analyze`` (the exact quantities of one pattern at length n) and ``glr compare`` (the trade-off)."""
from __future__ import annotations

import json

from ..analysis import (RANK_METHODS, analyze, compare, compare_rank_budget, decode_costs, hankel_profile,
                        live_profile, rank_series, sweep)
from ..errors import GLRError
from .common import add_output_args, distinct_patterns, pattern_arg, positive_int, print_json, pyplot, save

#: Without --rank, the rank panel of ``compare --plot`` covers n up to this length.
PLOT_RANK_MAX_N = 128


def register(sub) -> None:
    p = sub.add_parser("analyze", help="exact cost, cache, depth, hops (and generic Hankel rank) at length n")
    p.add_argument("spec", help="pattern spec (power2, window:64+fenwick) or your own pattern as "
                                "module:attribute or file.py:attribute")
    p.add_argument("--n", type=positive_int, required=True, help="sequence length")
    p.add_argument("--rank", action="store_true", help="also the generic Hankel rank (limited n)")
    add_rank_method_arg(p)
    add_output_args(p)
    p.set_defaults(run=run_analyze)

    p = sub.add_parser("compare", help="side-by-side trade-off of several patterns at length n")
    p.add_argument("specs", nargs="+", metavar="SPEC",
                   help="pattern specs, or your own patterns as module:attribute or file.py:attribute")
    p.add_argument("--n", type=positive_int, required=True, help="sequence length")
    p.add_argument("--rank", action="store_true", help="add the generic Hankel rank column (limited n)")
    add_rank_method_arg(p)
    add_output_args(p)
    p.set_defaults(run=run_compare)


def add_rank_method_arg(p) -> None:
    p.add_argument("--rank-method", choices=RANK_METHODS,
                   help="exact: rank over F_p (p = 2^31-1) of random instances, with a bound on the probability "
                        "of falling short (default); flow: vertex-disjoint paths by max-flow, deterministic")


def rank_method_in_force(args, ranks: bool, asks: str = "--rank") -> str:
    """The rank method in force ("exact" by default); naming one where no rank is computed (no ``asks``) is refused."""
    if args.rank_method is not None and not ranks:
        raise GLRError(f"--rank-method {args.rank_method} has no rank to compute: add {asks}"
                       + (" or --plot" if args.verb == "compare" else ""))
    return args.rank_method or RANK_METHODS[0]


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def run_analyze(args) -> None:
    p = pattern_arg(args.spec)
    plt = pyplot() if args.plot else None
    method = rank_method_in_force(args, args.rank)
    report = analyze(p, args.n, rank=args.rank, rank_method=method)
    skipped = report.get("skipped", {})
    # each panel's series, unless the report skipped its quantity (over a work limit)
    panels = [(lambda: decode_costs(p, args.n), "decode_cost_max", "decode cost |A(t)|+|B(t)|", "t"),
              (lambda: live_profile(p, args.n), "cache_peak", "live set after step t", "t"),
              (lambda: hankel_profile(p, args.n, method), "hankel_rank_max",
               "generic Hankel rank at cut t", "cut t")][:3 if args.rank else 2]
    panels = [x for x in panels if x[1] not in skipped]
    plot_notes = []
    if plt is not None:
        drawn = []
        for series, key, title, xlabel in panels:
            try:
                drawn.append((series(), title, xlabel))
            except GLRError as exc:            # a per-cut profile can be over a limit its report's value is not
                plot_notes.append(f"plot panel '{title}' not drawn: {exc}")
        panels = drawn
    if plt is not None and panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
        for ax, (y, title, xlabel) in zip(axes[0], panels):
            ax.plot(range(len(y)), y, lw=1)
            ax.set_title(f"{p.spec}: {title}", fontsize=9)
            ax.set_xlabel(xlabel)
        save(fig, args.plot)
        plt.close(fig)
    if args.json:
        print_json(report)
        return
    report.pop("skipped", None)
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {'skipped' if key in skipped else _text(value)}")
    print(skip_notes([{"spec": p.spec, "skipped": skipped}]), end="")
    print("".join(f"{note}\n" for note in plot_notes), end="")
    if plt is not None:
        print(f"wrote {args.plot}" if panels else f"{args.plot} not written: every series is over a limit (skipped)")


COLUMNS = (("spec", "spec"), ("decode_cost_max", "decode max"), ("decode_cost_mean", "decode mean"),
           ("total_cost", "total cost"), ("cache_peak", "cache"), ("depth", "depth"),
           ("hop_diameter", "hops"), ("hankel_rank_max", "rank"),
           ("hankel_rank_error_bound", "P(rank low) <="), ("theta_total", "Theta(total)"),
           ("theta_cache", "Theta(cache)"))


def table(rows: list[dict]) -> str:
    """The side-by-side text table of ``glr compare`` (rows: analyze reports plus ``total_cost``)."""
    cols = [(key, head) for key, head in COLUMNS if any(key in r for r in rows)]
    cells = [[head for _, head in cols]] + [[_cell(r, key) for key, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def skip_notes(rows: list[dict]) -> str:
    """One line per pattern and reason of the quantities skipped over a limit (``analyze``'s ``skipped``):
    ``skipped SPEC KEY, KEY: REASON``."""
    lines = []
    for r in rows:
        by_reason: dict[str, list[str]] = {}
        for key, reason in r.get("skipped", {}).items():
            by_reason.setdefault(reason, []).append(key)
        lines += [f"skipped {r['spec']} {', '.join(keys)}: {reason}\n" for reason, keys in by_reason.items()]
    return "".join(lines)


def _cell(row: dict, key: str) -> str:
    """A table cell; fitted classes read ``~class`` (measured over a range of n, not proved); a quantity
    skipped over a limit reads ``skipped``."""
    if key in row.get("skipped", {}):
        return "skipped"
    text = _text(row.get(key))
    fitted = str(row.get("theta_basis", "")).startswith("fitted")
    return "~" + text if key.startswith("theta_") and fitted else text


def _lengths(n: int) -> list[int]:
    ns, k = [], 16
    while k < n:
        ns.append(k)
        k *= 2
    return ns + [n]


def run_compare(args) -> None:
    patterns = distinct_patterns(args.specs)
    plt = pyplot() if args.plot else None
    method = rank_method_in_force(args, args.rank or plt is not None)
    budget = compare_rank_budget(method)           # the table's ranks and the plot's rank series share it
    rows = compare(patterns, args.n, rank=args.rank, rank_method=method, progress=True, rank_budget=budget)
    plot_notes = []
    if plt is not None:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        ns = _lengths(args.n)
        rank_max_n = args.n if args.rank else min(args.n, PLOT_RANK_MAX_N)
        for p, row in zip(patterns, rows):
            data = sweep(p, ns)
            axes[0].plot(data["n"], data["total_cost"], "o-", label=p.spec)
            axes[1].plot(data["n"], data["cache_peak"], "o-", label=p.spec)
            rank = _rank_line(p, row if args.rank else None, [n for n in ns if n <= rank_max_n], method, budget)
            axes[2].plot(rank["n"], rank["hankel_rank_max"], "o-", label=p.spec)
            if rank["stopped"]:
                last = f"ends at n={rank['n'][-1]}" if rank["n"] else "is empty"
                plot_notes.append(f"rank series of {p.spec!r} {last}: {rank['stopped']}")
        for ax, title in zip(axes, ("total cost nnz_a + nnz_b", "cache peak",
                                    f"generic Hankel rank ({method}; n <= {rank_max_n}, within limits)")):
            ax.set_title(title)
            ax.set_xscale("log", base=2)
            ax.set_yscale("symlog", linthresh=1)     # counts: log from 1 up, and a zero (a cache at n = 1) still drawn
            ax.set_ylim(0, max(ax.get_ylim()[1], 1))  # no negative half; all zeros: up to 1, not 0.055
            ax.set_xlabel("n")
            ax.legend(fontsize=8)
        save(fig, args.plot)
        plt.close(fig)
    if args.json:
        print_json(rows)
        return
    for row in rows:                          # nnz_a + nnz_b, skipped with them
        skipped = row.get("skipped", {})
        if "nnz_a" in skipped or "nnz_b" in skipped:
            row["total_cost"] = None
            skipped["total_cost"] = skipped.get("nnz_a") or skipped["nnz_b"]
        else:
            row["total_cost"] = row["nnz_a"] + row["nnz_b"]
    print(table(rows))
    print(skip_notes(rows), end="")
    print("".join(f"{note}\n" for note in plot_notes), end="")
    if plt is not None:
        print(f"wrote {args.plot}")


def _rank_line(p, row: dict | None, ns: list[int], method: str, budget) -> dict:
    """The rank panel's series of p at ns (``rank_series``), its last point the table's ``row`` (the rank at n, or
    its reason for being skipped) when there is one: a rank is never computed twice, or refused twice."""
    if row is None:
        return rank_series(p, ns, method, budget=budget)
    rank = rank_series(p, ns[:-1], method, budget=budget)
    if rank["stopped"] is None and row["hankel_rank_max"] is None:
        rank["stopped"] = row["skipped"]["hankel_rank_max"]
    elif rank["stopped"] is None:
        rank["n"].append(ns[-1])
        rank["hankel_rank_max"].append(row["hankel_rank_max"])
    return rank
