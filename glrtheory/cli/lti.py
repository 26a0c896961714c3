"""``glr lti``: an LTI pattern as a filter: H(z), poles, stability, memory horizon, impulse response."""
from __future__ import annotations

import math
import re

from ..errors import GLRError
from .common import add_output_args, pattern_arg, positive_int, print_json, pyplot, save

#: Impulse-response values printed and written to JSON.
HEAD = 64
_COEF = re.compile(r"\s*(a?)(\d+)\s*=\s*(.+?)\s*\Z")


def register(sub) -> None:
    p = sub.add_parser("lti", help="transfer function, poles, stability and memory of an LTI pattern")
    p.add_argument("spec", help="pattern spec whose supports are lag sets, e.g. lags:1,2 or power2")
    p.add_argument("--coef", action="append", default=[], metavar="l=VALUE",
                   help="coefficient b_l of B-lag l (repeat for every lag); a0=VALUE sets the direct "
                        "coefficient (default 1), aj=VALUE another A-lag")
    p.add_argument("--n", type=positive_int, default=HEAD,
                   help=f"sequence length: the lags are the pattern's lags <= n-1 (default {HEAD})")
    p.add_argument("--eps", type=float, default=1e-3,
                   help="memory horizon threshold: steps until the response decays below eps (default 1e-3)")
    add_output_args(p)
    p.set_defaults(run=run_lti)


def parse_coefficients(items) -> tuple[dict[int, float], dict[int, float]]:
    """``["1=0.5", "a0=2"]`` -> (B-coefficients ``{1: 0.5}``, A-coefficients ``{0: 2.0}``)."""
    a, b = {}, {}
    for item in items:
        m = _COEF.match(item)
        if not m:
            raise GLRError(f"--coef expects l=VALUE or aj=VALUE, got {item!r}")
        side, lag, text = m.groups()
        try:
            value = float(text)
        except ValueError:
            raise GLRError(f"--coef {item!r}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise GLRError(f"--coef {item!r}: the value is not finite")
        target = a if side else b
        if int(lag) in target:
            raise GLRError(f"--coef gives {'a' if side else 'b'}_{lag} twice")
        target[int(lag)] = int(value) if value.is_integer() else value
    a.setdefault(0, 1)
    return a, b


def report(system, eps: float) -> dict:
    """The `glr lti --json` dictionary."""
    from ..symbolic.lti_realization import DENSE_EIG_MAX_ORDER, dominant_poles, pole_estimate
    from ..symbolic.lti_stability import memory_horizon, spectral_radius

    poles = dominant_poles(system) if system.order > DENSE_EIG_MAX_ORDER else pole_estimate(system).poles
    rho = spectral_radius(system)
    h = system.impulse_response(HEAD)
    return {
        "transfer_function": system.transfer_function_string(),
        "poles": [[float(p.real), float(p.imag)] for p in poles],
        "spectral_radius": rho,
        "stable": bool(rho < 1),
        "memory_horizon": memory_horizon(system, eps),
        "impulse_response": [float(x) if math.isfinite(x) else None for x in h],
    }


def run_lti(args) -> None:
    from ..symbolic.lti import LTISystem

    pattern = pattern_arg(args.spec)
    a, b = parse_coefficients(args.coef)
    system = LTISystem.from_pattern(pattern, n=args.n, b=b, a=a)
    for side, coefs, fmt in (("B", system.b, "{}=VALUE"), ("A", system.a, "a{}=VALUE")):
        unset = [l for l, c in coefs.items() if c.free_symbols]
        if unset:
            raise GLRError(f"{pattern.spec} at n={args.n} has {side}-lags {list(coefs)}; no --coef for "
                           f"{side}-lag(s) {', '.join(map(str, unset))} (give --coef "
                           f"{fmt.format(unset[0])}, 0 allowed, or a smaller --n)")
    if not 0 < args.eps < 1:
        raise GLRError(f"--eps must lie in (0, 1), got {args.eps}")
    out = report(system, args.eps)
    if args.plot:
        from ..symbolic.lti_plot import draw

        plt = pyplot(args.plot)
        fig = plt.figure(figsize=(11, 4.5))
        draw(system, fig, HEAD)
        save(fig, args.plot)
        plt.close(fig)
    if args.json:
        print_json(out)
        return
    head = ", ".join(f"{x:.6g}" if x is not None else "inf" for x in out["impulse_response"][:16])
    poles = ", ".join(f"{complex(*p):.6g}" for p in out["poles"][:16])
    lines = [
        f"pattern          {pattern.spec} at n={args.n}: A-lags {list(system.a_lags)}, B-lags {list(system.b_lags)}",
        f"H(z)             {out['transfer_function']}",
        f"poles ({len(out['poles'])})        {poles}{' ...' if len(out['poles']) > 16 else ''}",
        f"spectral radius  {out['spectral_radius']:.10g}",
        f"stable           {'yes' if out['stable'] else 'no'}",
        f"memory horizon   {out['memory_horizon'] if out['memory_horizon'] is not None else 'infinite'}"
        f" steps (eps={args.eps:g})",
        f"impulse response {head} ...",
    ]
    if args.plot:
        lines.append(f"wrote {args.plot}")
    print("\n".join(lines))
