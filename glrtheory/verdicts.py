"""How claims 6 and 7 judge training results. Each pattern with several past states is compared with the
first-order ``ssm`` in one setting (one sweep's task and level, or one run set: the same model, budget and
learning-rate search); the difference of the means over seeds counts only beyond the seed spread, the larger
``max - min`` of the two sides. A claim is **confirmed** when some comparisons gain and none lose, **refuted**
when some lose and none gain, **refined** when both happen, and **inconclusive** otherwise."""
from __future__ import annotations

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
