"""The rule that judges claims 6 and 7 (``glrtheory.verdicts``), on hand-made seeds with exact binary fractions."""
import pytest

from glrtheory.verdicts import against, compare, decide


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
    import numpy as np
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
