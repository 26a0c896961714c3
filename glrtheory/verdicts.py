"""How claims 6 and 7 judge training results. Each pattern with several past states is compared with the
first-order ``ssm`` in one setting (one sweep's task and level, or one run set: the same model, budget and
learning-rate search); the difference of the means over seeds counts only beyond the seed spread, the larger
``max - min`` of the two sides. A claim is **confirmed** when some comparisons gain and none lose, **refuted**
when some lose and none gain, **refined** when both happen, and **inconclusive** otherwise. ``chance_rate`` and
``expected_by_chance`` say how many crossings of the spread chance alone would make: the yardstick for the counts."""
from __future__ import annotations

import functools
import math

import numpy as np

MULTI_LAG, FIRST_ORDER = ("power2", "quadratic", "fenwick"), "ssm"   # patterns with several past states
KINDS = ("gains", "loses", "within", "one seed")
#: Differences this close to the spread count as equal to it (within): means of a few seeds round in their last bit.
TOLERANCE = 1e-9


def against(values, base, higher_is_better: bool = True) -> dict:
    """``mean(values) - mean(base)``, the seed spread, and the verdict: ``gains`` / ``loses`` beyond the spread
    (better / worse), ``within`` it (a difference equal to the spread is within), or ``one seed`` where a side has
    fewer than two values (the spread is unknown)."""
    values, base = np.asarray(values, float), np.asarray(base, float)
    diff = float(values.mean() - base.mean())
    if min(values.size, base.size) < 2:
        return {"difference": diff, "spread": None, "verdict": "one seed"}
    spread = float(max(np.ptp(values), np.ptp(base)))
    better = diff if higher_is_better else -diff
    verdict = "gains" if better > spread + TOLERANCE else "loses" if better < -spread - TOLERANCE else "within"
    return {"difference": diff, "spread": spread, "verdict": verdict}


def compare(groups: dict, higher_is_better: bool = True) -> dict:
    """``groups``: (setting, pattern) -> values over seeds. Every multi-lag pattern against ``ssm`` of its
    setting: {kind: [(setting, pattern, difference)]} for each of ``KINDS``."""
    out = {kind: [] for kind in KINDS}
    for (setting, pattern), vals in groups.items():
        base = groups.get((setting, FIRST_ORDER))
        if pattern in MULTI_LAG and base is not None and len(base):
            r = against(vals, base, higher_is_better)
            out[r["verdict"]].append((setting, pattern, r["difference"]))
    return out


def decide(result: dict) -> tuple[str, str]:
    """The claim's verdict from ``compare``'s result, and why."""
    gains, losses, ties, single = (result[k] for k in KINDS)
    if not (gains or losses or ties):
        return "inconclusive", ("one seed per setting: the seed spread is unknown" if single
                                else "no multi-lag / ssm pair measured")
    if gains and not losses:
        return "confirmed", f"{len(gains)} comparisons better beyond the seed spread, {len(ties)} within it"
    if losses and not gains:
        return "refuted", f"{len(losses)} comparisons worse beyond the seed spread, {len(ties)} within it"
    if gains:
        return "refined", (f"{len(gains)} comparisons better beyond the seed spread, {len(losses)} worse, "
                           f"{len(ties)} within it; worse in {[x[0] for x in losses]}")
    return "inconclusive", f"all {len(ties)} differences within the seed spread"


def _pdf(x: float, scale: float = 1.0) -> float:
    """The density of ``N(0, scale^2)`` at x."""
    return math.exp(-0.5 * (x / scale) ** 2) / (scale * math.sqrt(2 * math.pi))


def _range_cdf(w: float, k: int) -> float:
    """``P(max - min <= w)`` for k independent standard normal values:
    ``k int phi(x) (Phi(x + w) - Phi(x))^(k - 1) dx``."""
    from scipy import integrate, special

    return k * integrate.quad(lambda x: _pdf(x) * (special.ndtr(x + w) - special.ndtr(x)) ** (k - 1),
                              -np.inf, np.inf)[0]


@functools.lru_cache(maxsize=None)
def chance_rate(seeds: int, base_seeds: int) -> float:
    """How often ``against`` says ``gains`` (and as often ``loses``) when both sides come from one normal
    distribution: ``P(mean(x) - mean(y) > max(ptp x, ptp y))`` for ``seeds`` and ``base_seeds`` values. For normal
    values the difference of means, ``N(0, 1/k_x + 1/k_y)``, is independent of both ranges, so the rate is
    ``int_0^inf F_x(d) F_y(d) pdf(d) dd`` with ``F`` the range's CDF (``_range_cdf``)."""
    from scipy import integrate

    scale = (1 / seeds + 1 / base_seeds) ** 0.5
    return integrate.quad(lambda d: _range_cdf(d, seeds) * _range_cdf(d, base_seeds) * _pdf(d, scale), 0, np.inf)[0]


def expected_by_chance(groups: dict) -> tuple[float, int]:
    """``(expected, compared)``: of the comparisons ``compare(groups)`` judges against the spread (both sides with
    at least two seeds), how many would cross it in one given direction by chance alone (``chance_rate`` summed),
    and how many there are: the yardstick for a claim's count of gains or of losses."""
    rates = [chance_rate(len(vals), len(groups[(setting, FIRST_ORDER)]))
             for (setting, pattern), vals in groups.items()
             if pattern in MULTI_LAG and len(groups.get((setting, FIRST_ORDER), ())) >= 2 and len(vals) >= 2]
    return float(sum(rates)), len(rates)
