"""Rule-based and sparse user patterns: against the built-in families and a per-t Python loop, the
limits, and the `module:attribute` route of the CLI."""
import json
import time

import numpy as np
import pytest
import scipy.sparse

from glrtheory import GLRError, Pattern
from glrtheory.analysis import analyze
from glrtheory.cli import main
from glrtheory.patterns.rules import SparseSupport
from glrtheory.patterns.support import last_use_from_table

LENGTHS = [1, 2, 63, 1000]


def power2_pair(t):                       # max width plus a mask, as lags
    lags = 2 ** np.arange(31)
    return lags, lags[None, :] <= t[:, None]


def fenwick_ragged(t):                    # ragged source lists, one Python loop per t
    return [[((x - 1) >> k) << k for k in range(int(x).bit_length() + 1)] if x else [] for x in t]


def window4_array(t):                     # a plain [m, 4] array of sources (with duplicates at the start)
    return np.maximum(t[:, None] - np.arange(4)[None, :], 0)


@pytest.mark.parametrize("n", LENGTHS)
def test_rules_give_the_families_tables(n):
    cases = [(Pattern.from_rule(None, power2_pair, kind="lags"), "power2"),
             (Pattern.from_rule(None, fenwick_ragged), "fenwick"),
             (Pattern.from_rule(window4_array, lambda t: np.zeros((t.size, 0), int)), "window:4")]
    for p, spec in cases:
        for got, ref in zip(p.tables(n), Pattern.from_spec(spec).tables(n)):
            assert np.array_equal(got, ref), spec


def test_rule_is_lazy_and_prefix_consistent():
    calls = []

    def rule(t):
        calls.append(t.size)
        return (t[:, None] * 3) // 4, t[:, None] > 0          # B(t) = {floor(3t/4)} for t >= 1

    p = Pattern.from_rule(None, rule)
    assert sum(calls) == 16                                    # evaluated once at n = 16, eagerly
    big = p.sets(500)[1]
    small = p.sets(100)[1]
    assert sum(calls) == 500 and small == big[:100]           # each t evaluated once, prefix reused
    assert big == [[] if t == 0 else [3 * t // 4] for t in range(500)]


def test_rule_without_quadratic_memory():
    p = Pattern.from_rule(None, lambda t: (t - 1, t > 0))     # ssm at n = 2^20: O(n) memory
    sb = p.support_b(2**20)
    assert isinstance(sb, SparseSupport) and sb.indices.nbytes == 4 * (2**20 - 1)
    assert list(sb.lags) == [1]
    q = Pattern.from_sets([[t] for t in range(2**16)], [[t - 1] if t else [] for t in range(2**16)])
    ref = analyze(Pattern.from_spec("ssm"), 2**16)
    assert {k: v for k, v in analyze(q, 2**16).items() if k in ("nnz_b", "cache_peak", "hop_diameter")} == \
        {k: ref[k] for k in ("nnz_b", "cache_peak", "hop_diameter")}


def test_sparse_support_against_tables():
    rng = np.random.default_rng(7)
    n = 63
    B = np.tril(rng.random((n, n)) < 0.2, -1)
    p = Pattern.from_masks(scipy.sparse.csr_matrix(np.eye(n)), scipy.sparse.csr_matrix(B))
    sb = p.support_b(n)
    table = sb.table()
    assert [[int(s) for s in row if s >= 0] for row in table] == [list(np.flatnonzero(r)) for r in B]
    assert np.array_equal(sb.counts(), B.sum(axis=1))
    assert np.array_equal(sb.last_use(), last_use_from_table(n, table))
    assert sb.lags is None and p.support_a(n).lags.tolist() == [0]
    assert p.sets(n) == Pattern.from_masks(np.eye(n, dtype=bool), B).sets(n)


def test_lag_detection_matches_the_family_analysis():
    for n in (2, 63, 1000):
        got = analyze(Pattern.from_rule(None, power2_pair, kind="lags"), n)
        ref = analyze(Pattern.from_spec("power2"), n)
        assert {k: got[k] for k in got if not k.startswith(("theta", "spec"))} == \
            {k: ref[k] for k in ref if not k.startswith(("theta", "spec"))}
    f = Pattern.from_rule(None, fenwick_ragged)
    assert f.support_b(100).lags is None
    ref = analyze(Pattern.from_spec("fenwick"), 300)
    got = analyze(f, 300)
    assert got["cache_peak"] == ref["cache_peak"] and got["hop_diameter"] == ref["hop_diameter"]


@pytest.mark.parametrize("b_rule, kind, message", [
    (lambda t: t[:, None], "sources", r"B\(0\) contains s=0 >= t: the support is not causal"),
    (lambda t: t[:, None] - 2, "sources", "negative position -2: out of range"),
    (lambda t: np.ones((t.size, 1), int), "lags", r"B\(0\) holds a negative position -1"),
    (lambda t: (np.zeros((t.size, 1)), t[:, None] > 0), "lags", r"B\(1\) contains s=1 >= t"),
    (lambda t: (t - 0.5, t > 0), "sources", "non-integer"),
    (lambda t: (t - 1, (t > 0).astype(int)), "sources", "must be boolean"),
    (lambda t: [[]], "sources", "returned 1 rows for 16 positions"),
    (lambda t: np.zeros((2, 2), int), "sources", "shape"),
    (lambda t: 1 / 0, "sources", "failed at t in .0, 16.: ZeroDivisionError"),
    (lambda t: "x", "sources", "integer positions"),
    (lambda t: (t - 1, t > 0), "offsets", "kind must be"),
    (42, "sources", "callable"),
])
def test_bad_rules(b_rule, kind, message):
    with pytest.raises(GLRError, match=message):
        Pattern.from_rule(None, b_rule, kind=kind)


def test_rule_limits_are_named():
    wide = Pattern.from_rule(None, lambda t: (np.arange(t.max() + 1)[None, :],
                                              np.tri(t.size, int(t.max()) + 1, int(t[0]) - 1, dtype=bool)),
                             max_entries=10**5)
    with pytest.raises(GLRError, match="over the limit RULE_MAX_ENTRIES = 100000"):
        wide.tables(1000)

    def slow(t):
        time.sleep(0.002 * t.size)
        return t - 1, t > 0

    p = Pattern.from_rule(None, slow, max_seconds=0.5)
    with pytest.raises(GLRError, match="too slow.*over the limit RULE_MAX_SECONDS = 0.5 s"):
        p.tables(2**22)


def test_dense_masks_have_a_stated_limit(monkeypatch):
    import glrtheory.patterns.pattern as pattern_module

    monkeypatch.setattr(pattern_module, "DENSE_MASK_MAX_ENTRIES", 100)
    with pytest.raises(GLRError, match="over the limit 100 entries .N <= 10.; pass a scipy.sparse"):
        Pattern.from_masks(np.eye(11, dtype=bool), np.zeros((11, 11), bool))
    N = 2**16                                  # far over the dense limit, fine as scipy.sparse
    p = Pattern.from_masks(scipy.sparse.eye(N, format="csr"), scipy.sparse.eye(N, k=-1, format="csr"))
    assert analyze(p, N)["cache_peak"] == 1
    with pytest.raises(GLRError, match="0/1"):
        Pattern.from_masks(2 * np.eye(3), np.zeros((3, 3)))


# -- the CLI: module:attribute ------------------------------------------------------------------------
USER_FILE = """
import numpy as np
from glrtheory import Pattern

def lags(t):
    lags = 2 ** np.arange(31)
    return lags, lags[None, :] <= t[:, None]

pattern = Pattern.from_rule(None, lags, kind="lags", spec="mine")
def make():
    return pattern
number = 3
"""


def test_cli_module_attribute(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine_mod.py").write_text(USER_FILE)
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "./mine_mod.py:pattern", "--n", "65536", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = analyze(Pattern.from_spec("power2"), 65536)
    assert out["spec"] == "mine" and out["cache_peak"] == ref["cache_peak"] == 32768
    assert out["hop_diameter"] == ref["hop_diameter"]
    assert main(["compare", "mine_mod:make", "power2", "glrtheory.patterns.families:fenwick", "window:4",
                 "--n", "64", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["spec"] for r in rows] == ["mine", "power2", "fenwick", "window:4"]
    assert main(["show", f"{tmp_path / 'mine_mod.py'}:pattern", "--n", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["B"] == [[], [0], [0, 1], [1, 2]]


@pytest.mark.parametrize("ref, message", [
    ("./absent.py:pattern", "does not exist"),
    ("./mine_mod.py:nothing", "has no attribute 'nothing'"),
    ("./mine_mod.py:number", "is a int, not a glrtheory Pattern"),
    ("./broken.py:p", "importing './broken.py' failed: ZeroDivisionError"),
    ("no_such_module_xyz:p", "importing 'no_such_module_xyz' failed: ModuleNotFoundError"),
])
def test_cli_module_attribute_errors(tmp_path, monkeypatch, capsys, ref, message):
    (tmp_path / "mine_mod.py").write_text(USER_FILE)
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", ref, "--n", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("glr: error:") and message in err and err.count("\n") == 1


def test_readme_example_runs():
    from pathlib import Path
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Your own pattern", 1)[1]
    code = re.search(r"```python\n(.*?)\n```", section, flags=re.S).group(1)
    scope = {}
    exec(compile(code, "README own pattern", "exec"), scope)
    assert np.array_equal(scope["pattern"].tables(1000)[1], Pattern.from_spec("power2").tables(1000)[1])


def test_rule_grows_one_position_at_a_time():
    """Asking for n = 17, 18, ... one at a time (the rule holds 16 rows after construction) extends the
    rows each time: the sets are always the definition's."""
    p = Pattern.from_rule(b_rule=lambda t: (np.stack([t - 1, t - 2], axis=1), np.stack([t >= 1, t >= 2], axis=1)))
    for n in range(16, 40):
        A, B = p.sets(n)
        assert A == [[t] for t in range(n)]
        assert B == [sorted(s for s in (t - 2, t - 1) if s >= 0) for t in range(n)]
