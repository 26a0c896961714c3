"""``glr lti``: an LTI pattern as a filter: H(z), poles, stability (or its region in coefficient symbols),
memory horizon, impulse and frequency response."""
from __future__ import annotations

import math
import re

import numpy as np
import sympy as sp

from ..checks import parse_real
from ..errors import GLRError
from .common import add_output_args, finite_real, pattern_arg, positive_int, print_json, pyplot, save

#: Impulse-response values printed and written to JSON.
HEAD = 64
#: Frequencies printed by ``--freq`` without a number; a plot draws at least PLOT_FREQUENCIES.
FREQUENCIES = 16
PLOT_FREQUENCIES = 512
#: The stable-range scan of one symbol: (lo, hi, step).
SCAN = (-2.0, 2.0, 1e-3)
_COEF = re.compile(r"\s*(a?)([0-9]+|rest|all)\s*=\s*(.+?)\s*\Z")
_NAME = re.compile(r"[A-Za-z_]\w*\Z")


def register(sub) -> None:
    p = sub.add_parser("lti", help="transfer function, poles, stability, memory and frequency response of an "
                                   "LTI pattern")
    p.add_argument("spec", help="pattern spec whose supports are lag sets (e.g. lags:1,2 or power2), or "
                                "module:attribute")
    p.add_argument("--coef", action="append", default=[], metavar="l=VALUE",
                   help="coefficient b_l of B-lag l; all=VALUE shares one value over every B-lag, rest=VALUE "
                        "fills the lags not given; a0=VALUE sets the direct coefficient (default 1), aj=, "
                        "aall=, arest= the A-side. VALUE is a number or a symbol name (1=b1): symbols give "
                        "the stability region instead of poles")
    p.add_argument("--n", type=positive_int, default=HEAD,
                   help=f"sequence length: the lags are the pattern's lags <= n-1 (default {HEAD})")
    p.add_argument("--eps", type=finite_real, default=1e-3,
                   help="memory horizon threshold: steps until the response decays below eps (default 1e-3)")
    p.add_argument("--freq", type=positive_int, nargs="?", const=FREQUENCIES, metavar="POINTS",
                   help=f"frequency response |H| and phase at POINTS frequencies in [0, pi) (default "
                        f"{FREQUENCIES}); plotted with --plot")
    p.add_argument("--range", type=finite_real, nargs=2, metavar=("LO", "HI"),
                   help=f"scan range of the one symbol for its stable range (default {SCAN[0]:g} {SCAN[1]:g})")
    p.add_argument("--step", type=finite_real, help=f"scan resolution (default {SCAN[2]:g})")
    add_output_args(p)
    p.set_defaults(run=run_lti)


def parse_coefficients(items) -> dict[str, dict]:
    """``["1=0.5", "rest=0", "a0=b0"]`` -> ``{"a": {...}, "b": {...}}``, each ``{lag or "all"/"rest": value}``
    with values numbers or real sympy symbols (names only: a string is never evaluated)."""
    out = {"a": {}, "b": {}}
    for item in items:
        m = _COEF.match(item)
        if not m:
            raise GLRError(f"--coef expects l=VALUE, all=VALUE, rest=VALUE or aj=VALUE, got {item!r}")
        side, key, text = m.groups()
        key = key if key in ("all", "rest") else int(key)
        target = out["a" if side else "b"]
        if key in target:
            raise GLRError(f"--coef gives {side or 'b'}_{key} twice" if isinstance(key, int)
                           else f"--coef gives {side}{key}= twice")
        target[key] = _coefficient(item, text)
    for side, given in out.items():
        if "all" in given and len(given) > 1:
            raise GLRError(f"--coef {'a' if side == 'a' else ''}all= sets every {side.upper()}-lag; give single "
                           f"lags with {'a' if side == 'a' else ''}rest= instead")
    return out


def _coefficient(item: str, text: str):
    try:
        value = parse_real(text)
    except ValueError:
        if not _NAME.match(text) or text == "z" or text.lower() in ("nan", "inf", "infinity"):
            raise GLRError(f"--coef {item!r}: {text!r} is not a finite number or a symbol name") from None
        return sp.Symbol(text, real=True)
    return int(value) if value.is_integer() and abs(value) <= 2**53 else value     # exact integers print as such


def resolve(given: dict, lags, side: str) -> dict:
    """Values for every lag of one side from the parsed ``--coef`` items (``all``, ``rest``, single lags)."""
    if "all" in given:
        return dict.fromkeys(lags, given["all"])
    values = {k: v for k, v in given.items() if k != "rest"}
    if side == "a" and 0 in lags and 0 not in values:
        values[0] = 1                              # the direct coefficient defaults to 1
    if "rest" in given:
        values.update({l: given["rest"] for l in lags if l not in values})
    return values


def report(system, eps: float) -> dict:
    """The `glr lti --json` dictionary."""
    from ..symbolic.lti_poles import DENSE_EIG_MAX_ORDER, dominant_poles, pole_estimate
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


def _system(args):
    """The LTISystem of the spec at n with the ``--coef`` values; GLRError naming a lag left without one."""
    from ..symbolic.lti import LTISystem

    pattern = pattern_arg(args.spec)
    given = parse_coefficients(args.coef)
    probe = LTISystem.from_pattern(pattern, n=args.n, b=None, a=None)
    a = resolve(given["a"], probe.a_lags, "a")
    b = resolve(given["b"], probe.b_lags, "b")
    system = LTISystem.from_pattern(pattern, n=args.n, b=b, a=a)
    for side, lags, values, fmt in (("B", probe.b_lags, b, "{}=VALUE"), ("A", probe.a_lags, a, "a{}=VALUE")):
        unset = [l for l in lags if l not in values]
        if unset:
            raise GLRError(f"{pattern.spec} at n={args.n} has {side}-lags {_some(lags, True)}; no --coef for "
                           f"{side}-lag(s) {_some(unset)} (give --coef "
                           f"{fmt.format(unset[0])}, {'a' if side == 'A' else ''}rest=0, "
                           f"{'a' if side == 'A' else ''}all=VALUE, or a smaller --n)")
    return pattern, system


def _some(lags, brackets: bool = False, shown: int = 8) -> str:
    """``1, 2, 4`` for a few lags (``[1, 2, 4]`` with brackets); past ``shown`` the first and last few and the count,
    so that an error stays one short line (window:4000 listed its 4000 lags in 45,910 characters)."""
    lags = [str(lag) for lag in lags]
    few = len(lags) <= shown
    text = ", ".join(lags) if few else f"{', '.join(lags[:shown - 2])}, ..., {', '.join(lags[-2:])}"
    return (f"[{text}]" if brackets else text) + ("" if few else f" ({len(lags)} in all)")


def _unused_scan(symbols: int) -> GLRError:
    return GLRError(f"--range and --step set the scan of one symbol in the B-coefficients; this system has "
                    f"{symbols or 'no'} symbols there")


def symbolic_report(system, scan: tuple[float, float, float] | None = None) -> dict:
    """The `glr lti --json` dictionary of a system with coefficient symbols: H(z), the Schur-Cohn region
    (order <= SCHUR_COHN_MAX_ORDER) and, for one symbol in the B-coefficients, its stable range by a scan
    ``(lo, hi, step)`` (default SCAN; one given for another system is refused, as it would go unused)."""
    from ..symbolic.lti_scan import stable_range
    from ..symbolic.lti_stability import SCHUR_COHN_MAX_ORDER, stability_region

    free_b = system.b_symbols
    order = max(system.b, default=0)
    if len(free_b) > 1 and order > SCHUR_COHN_MAX_ORDER:
        raise GLRError(f"the stability region of {len(free_b)} symbols is limited to B-order <= "
                       f"{SCHUR_COHN_MAX_ORDER}, got {order}; use one shared symbol (--coef all=b) for a scan")
    region = stability_region(system) if order <= SCHUR_COHN_MAX_ORDER else None
    if len(free_b) != 1 and scan is not None:
        raise _unused_scan(len(free_b))
    lo, hi, step = scan or SCAN
    rng = stable_range(system, lo=lo, hi=hi, step=step) if len(free_b) == 1 else None
    return {
        "transfer_function": system.transfer_function_string(),
        "symbols": sorted(s.name for s in system.free_symbols),
        "stability_region": None if region is None else str(region),
        "stable_range": None if rng is None else {"symbol": rng.symbol, "intervals": rng.intervals, "lo": rng.lo,
                                                  "hi": rng.hi, "step": rng.step, "circle_points": rng.points,
                                                  "circle_points_max": rng.finest},
        "stable_range_text": None if rng is None else rng.describe(),
    }


def frequency(system, points: int) -> dict:
    """``{"omega", "magnitude", "phase"}`` at ``omega = pi k / points`` (LTISystem.frequency_response)."""
    omega, H = system.frequency_response(points)
    finite = np.isfinite(H)
    return {"omega": omega.tolist(), "magnitude": [float(x) if f else None for x, f in zip(np.abs(H), finite)],
            "phase": [float(x) if f else None for x, f in zip(np.angle(H), finite)]}


def run_lti(args) -> None:
    pattern, system = _system(args)
    if not 0 < args.eps < 1:
        raise GLRError(f"--eps must lie in (0, 1), got {args.eps}")
    scan = None if args.range is None and args.step is None else \
        (*(args.range or SCAN[:2]), SCAN[2] if args.step is None else args.step)
    if system.is_numeric and scan is not None:
        raise _unused_scan(0)
    if not system.is_numeric:
        if args.freq or args.plot:
            raise GLRError("--freq and --plot need numbers for every coefficient, not symbols")
        out = symbolic_report(system, scan)
        if args.json:
            print_json({k: v for k, v in out.items() if k != "stable_range_text"})
            return
        print(f"pattern          {pattern.spec} at n={args.n}: A-lags {list(system.a_lags)}, "
              f"B-lags {list(system.b_lags)}")
        print(f"H(z)             {out['transfer_function']}")
        print(f"stable iff       {out['stability_region'] or 'no closed form at this order (see the scan)'}")
        if out["stable_range_text"]:
            print(f"stable range     {out['stable_range_text']}")
        return
    out = report(system, args.eps)
    if args.freq:
        out["frequency_response"] = frequency(system, args.freq)
    if args.plot:
        from ..symbolic.lti_plot import draw

        plt = pyplot()
        fig = plt.figure(figsize=(11, 8 if args.freq else 4.5))
        draw(system, fig, HEAD, frequencies=max(args.freq, PLOT_FREQUENCIES) if args.freq else None)
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
    if args.freq:
        f = out["frequency_response"]
        lines.append("omega/pi   |H|          |H| dB     phase/pi")
        for w, mag, ph in zip(f["omega"], f["magnitude"], f["phase"]):
            if mag is None:
                lines.append(f"{w / math.pi:<10.4g} inf (a pole on the unit circle)")
            else:
                db = 20 * math.log10(mag) if mag > 0 else -math.inf
                lines.append(f"{w / math.pi:<10.4g} {mag:<12.6g} {db:<10.4g} {ph / math.pi:.4g}")
    if args.plot:
        lines.append(f"wrote {args.plot}")
    print("\n".join(lines))
