"""``glr search``: the patterns that meet budgets (decode cost, cache, hops, rank) at length n, ranked by
total cost; over the built-in families, a family's parameter grid, and the user's own patterns."""
from __future__ import annotations

from ..analysis.search import FAMILY_PARAMETERS, check_search_length, default_candidates, family_grid, search
from ..errors import GLRError
from .analysis import add_rank_method_arg, rank_method_in_force, table
from .common import distinct_patterns, finite_real, non_negative_int, positive_int, print_json


def register(sub) -> None:
    p = sub.add_parser("search", help="patterns that meet budgets at length n, ranked by total cost")
    p.add_argument("specs", nargs="*", metavar="PATTERN",
                   help="extra candidates: specs, or your own patterns as module:attribute or file.py:attribute")
    p.add_argument("--n", type=positive_int, required=True, help="sequence length")
    p.add_argument("--max-decode", type=non_negative_int, help="largest max_t |A(t)| + |B(t)|")
    p.add_argument("--max-cache", type=non_negative_int, help="largest cache peak (live set)")
    p.add_argument("--max-hops", type=non_negative_int, help="largest hop diameter (unreachable pairs fail)")
    p.add_argument("--min-rank", type=non_negative_int, help="smallest max generic Hankel rank")
    p.add_argument("--family", choices=sorted(FAMILY_PARAMETERS),
                   help="search this family's parameter (window W, blocks C, exponent alpha, power b) "
                        "instead of the built-in list")
    p.add_argument("--values", type=finite_real, nargs="+", metavar="V",
                   help="the parameter values of --family (default: a grid at n)")
    add_rank_method_arg(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run_search)


def run_search(args) -> None:
    if args.values is not None and args.family is None:
        raise GLRError("--values needs --family")
    check_search_length(args.n)
    if args.family is not None:
        specs = family_grid(args.family, args.n, args.values)
    else:
        specs = default_candidates(args.n) if not args.specs else []
    candidates = distinct_patterns(specs + list(args.specs))
    out = search(candidates, args.n, max_decode=args.max_decode, max_cache=args.max_cache,
                 max_hops=args.max_hops, min_rank=args.min_rank,
                 rank_method=rank_method_in_force(args, args.min_rank is not None, "--min-rank"), progress=True)
    if args.json:
        print_json(out)
        return
    bounds = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in out["bounds"].items() if v is not None)
    print(f"n = {args.n}; bounds: {bounds or 'none'}; {len(out['matches'])} of {len(candidates)} candidates meet them")
    if out["matches"]:
        print(table(out["matches"]))
    for row in out["skipped"]:
        print(f"skipped {row['spec']}: {row['reason']}")
