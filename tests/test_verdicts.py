"""The rule that judges claims 6 and 7 (``glrtheory.verdicts``), on hand-made seeds with exact binary fractions, and
how often it crosses the spread by chance."""
import numpy as np
import pytest

from glrtheory.verdicts import against, chance_rate, compare, decide, expected_by_chance


@pytest.mark.parametrize("values, base, verdict, diff, spread", [
    ([1.0, 2.0], [0.0, 1.0], "within", 1.0, 1.0),          # a difference equal to the spread is within
    ([2338 / 4096, 3855 / 4096, 4017 / 4096], [926 / 4096, 1410 / 4096, 2663 / 4096], "within", 1737 / 4096,
     1737 / 4096),                                          # equal too, though the float means differ in the last bit
    ([1.0, 2.0], [0.0, 0.5], "gains", 1.25, 1.0),
    ([0.0, 0.5], [1.0, 2.0], "loses", -1.25, 1.0),
    ([0.5, 0.5, 0.5], [0.25, 0.25, 0.375], "gains", 0.5 - 0.875 / 3, 0.125),   # spread from the wider side
    ([0.75, 0.75], [0.5, 1.0], "within", 0.0, 0.5),
    ([1.0], [0.0, 0.25], "one seed", 0.875, None),
    ([1.0, 1.0], [0.0], "one seed", 1.0, None),
])
def test_against(values, base, verdict, diff, spread):
    r = against(values, base)
    assert r == {"difference": pytest.approx(diff, abs=1e-15), "spread": spread, "verdict": verdict}


def test_lower_is_better_flips_the_sign_only():
    assert against([1.0, 1.25], [2.0, 2.25], higher_is_better=False)["verdict"] == "gains"
    assert against([2.0, 2.25], [1.0, 1.25], higher_is_better=False)["verdict"] == "loses"
    assert against([2.0, 2.25], [1.0, 1.25], higher_is_better=False)["difference"] == 1.0
    assert against([1.0, 2.0], [0.0, 1.0], higher_is_better=False)["verdict"] == "within"


def test_compare_pairs_each_multi_lag_pattern_with_ssm_of_its_setting():
    groups = {("a", "ssm"): [0.0, 0.25], ("a", "power2"): [1.0, 1.0], ("a", "fenwick"): [0.0, 0.25],
              ("a", "attention"): [1.0, 1.0],                  # not a GLR pattern: not compared
              ("b", "ssm"): [1.0, 1.0], ("b", "quadratic"): [0.0, 0.0],
              ("c", "power2"): [1.0, 1.0],                     # no ssm in setting c
              ("d", "ssm"): [0.5], ("d", "fenwick"): [0.0, 1.0]}
    r = compare(groups)
    assert r == {"gains": [("a", "power2", 0.875)], "loses": [("b", "quadratic", -1.0)],
                 "within": [("a", "fenwick", 0.0)], "one seed": [("d", "fenwick", 0.0)]}


@pytest.mark.parametrize("result, verdict", [
    ({"gains": [1], "loses": [], "within": [2, 3], "one seed": []}, "confirmed"),
    ({"gains": [], "loses": [1], "within": [2], "one seed": [4]}, "refuted"),
    ({"gains": [1], "loses": [("s", "p", -1.0)], "within": [], "one seed": []}, "refined"),
    ({"gains": [], "loses": [], "within": [2], "one seed": [4]}, "inconclusive"),
    ({"gains": [], "loses": [], "within": [], "one seed": [4]}, "inconclusive"),
    ({"gains": [], "loses": [], "within": [], "one seed": []}, "inconclusive"),
])
def test_decide(result, verdict):
    assert decide(result)[0] == verdict


def test_compare_takes_numpy_seeds():
    groups = {("a", "ssm"): np.array([0.0, 0.25]), ("a", "power2"): np.array([1.0, 1.0])}
    assert compare(groups)["gains"] == [("a", "power2", 0.875)]


def test_decide_says_why():
    assert decide({"gains": [1, 2], "loses": [], "within": [3], "one seed": []})[1] == \
        "2 comparisons better beyond the seed spread, 1 within it"
    assert decide({"gains": [], "loses": [1], "within": [2, 3], "one seed": []})[1] == \
        "1 comparisons worse beyond the seed spread, 2 within it"
    assert decide({"gains": [], "loses": [], "within": [], "one seed": [1]})[1] == \
        "one seed per setting: the seed spread is unknown"
    assert decide({"gains": [], "loses": [], "within": [], "one seed": []})[1] == "no multi-lag / ssm pair measured"
    assert decide({"gains": [], "loses": [], "within": [1, 2], "one seed": [3]})[1] == \
        "all 2 differences within the seed spread"
    assert "worse in ['s']" in decide({"gains": [1], "loses": [("s", "p", -1.0)], "within": [], "one seed": []})[1]


def test_chance_rate_against_a_closed_form_and_a_simulation():
    """Two seeds a side: the difference of means is N(0, 1) and each range |N(0, 2)|, with CDF erf(w / 2), so the rate
    is ``int_0^inf erf(d / 2)^2 phi(d) dd`` (one integral, by scipy); three and six a side against 400,000 draws of
    the rule itself (``against``'s event, vectorized), within four standard errors."""
    from scipy import integrate, special, stats

    closed = integrate.quad(lambda d: special.erf(d / 2) ** 2 * stats.norm.pdf(d), 0, np.inf)[0]
    assert chance_rate(2, 2) == pytest.approx(closed, abs=1e-9)
    rng = np.random.default_rng(12)
    for k, k_base in ((3, 3), (6, 6), (3, 6)):
        x, y = rng.standard_normal((400_000, k)), rng.standard_normal((400_000, k_base))
        hits = (x.mean(1) - y.mean(1) > np.maximum(np.ptp(x, 1), np.ptp(y, 1))).mean()
        assert abs(chance_rate(k, k_base) - hits) <= 4 * (hits * (1 - hits) / 400_000) ** 0.5 + 1e-6, (k, k_base)


def test_expected_by_chance_sums_the_rate_of_each_comparison_judged():
    """Only the comparisons ``compare`` judges against the spread count: a pattern against ssm of its setting, both
    sides with two seeds or more."""
    groups = {("a", "ssm"): [0.0, 0.25, 0.5], ("a", "power2"): [1.0, 1.0, 1.0], ("a", "fenwick"): [0.0, 0.5],
              ("a", "attention"): [1.0, 1.0, 1.0],            # not a GLR pattern
              ("b", "power2"): [1.0, 1.0],                    # no ssm in setting b
              ("c", "ssm"): [0.5], ("c", "fenwick"): [0.0, 1.0]}    # one seed of ssm
    expected, compared = expected_by_chance(groups)
    assert compared == 2 and expected == pytest.approx(chance_rate(3, 3) + chance_rate(2, 3))


def test_claims_rule_edges():
    """A difference of exactly
    spread + TOLERANCE (1e-9 over a spread of 0) is within, either way; 2e-9 is beyond. Gains only or losses only,
    with no ties, decide. Lower-is-better reaches ``compare``. float32 seeds are judged in float64: the difference
    of the means of [0.1, 0.2, 0.4] and [0.3, 0.6, 0.8] (float32) is their exact rational difference."""
    from fractions import Fraction

    assert against([1e-9, 1e-9], [0.0, 0.0])["verdict"] == against([0.0, 0.0], [1e-9, 1e-9])["verdict"] == "within"
    assert against([2e-9, 2e-9], [0.0, 0.0])["verdict"] == "gains"
    assert against([0.0, 0.0], [2e-9, 2e-9])["verdict"] == "loses"
    assert decide({"gains": [1], "loses": [], "within": [], "one seed": []})[0] == "confirmed"
    assert decide({"gains": [], "loses": [1], "within": [], "one seed": []})[0] == "refuted"
    groups = {("a", "ssm"): [1.0, 1.25], ("a", "power2"): [0.0, 0.25], ("a", "fenwick"): [2.0, 2.25]}
    assert compare(groups, higher_is_better=False) == {"gains": [("a", "power2", -1.0)],
                                                        "loses": [("a", "fenwick", 1.0)], "within": [], "one seed": []}
    v, b = np.float32([0.1, 0.2, 0.4]), np.float32([0.3, 0.6, 0.8])
    exact = (sum(map(Fraction, v.tolist())) - sum(map(Fraction, b.tolist()))) / 3
    assert against(v, b)["difference"] == pytest.approx(float(exact), rel=1e-15, abs=0)
