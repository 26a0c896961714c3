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


# -- mutation run 7: messages, chunks, limits and lag detection of rules -----------------------------------
def named(f, name):
    f.__name__ = name
    return f


@pytest.mark.parametrize("a_rule, b_rule, message", [
    (named(lambda t: t[:, None] + 1, "ahead"), None,
     r"^rule ahead for A: A\(0\) contains s=1 > t: the support is not causal$"),
    (None, named(lambda t: t[:, None], "same"),
     r"^rule same for B: B\(0\) contains s=0 >= t: the support is not causal \(B is not strictly causal\)$"),
    (named(lambda t: t[:, None] - 3, "behind"), None, r"^rule behind for A: A\(0\) holds a negative position -3: out"),
    (named(lambda t: (t[:, None], t[:, None], t), "three"), None,
     r"^rule three for A: a tuple from a rule must be \(values, keep\), got 3 items$"),
    (None, named(lambda t: (np.zeros((t.size, 2), int), np.ones((t.size, 3), bool)), "wide"),
     r"^rule wide for B: values \(16, 2\) and mask \(16, 3\) do not broadcast$"),
    (named(lambda t: ([[0], [0, 1]], np.ones((2, 2), bool)), "ragged"), None,
     r"^rule ragged for A: the rule returned a ragged or non-numeric array; return a list of 1-D arrays"),
    (named(lambda t: (np.arange(3), np.ones(3, bool)), "row"), None,
     r"^rule row for A: the rule returned shape \(1, 3\) for 16 positions; expected \[16, w\]$"),
    (named(lambda t: [np.array([0.5])] * t.size, "halves"), None, r"^rule halves for A: the rule returned non-int"),
    (named(lambda t: (np.array([[0.5]]), t[:, None] >= 0), "half"), None, r"^rule half for A: the rule returned non"),
    (named(lambda t: np.array([[0.0 + 0j]] * t.size), "complex"), None,
     r"^rule complex for A: the rule must return integer positions, got dtype complex128$"),
])
def test_rule_messages_name_the_rule_the_side_and_the_relation(a_rule, b_rule, message):
    """Each malformed rule output is refused with the rule's name and side first (``rule NAME for A/B``), A's
    relation ``> t`` and B's ``>= t`` with its strictness note, as a GLRError at construction (n = 16)."""
    with pytest.raises(GLRError, match=message):
        Pattern.from_rule(a_rule, b_rule)


def test_rule_outputs_of_every_form_give_the_sets():
    """Unsigned and integral-float positions, a 1-D mask of m positions, a list of ragged rows, and a rule whose
    last rows of a chunk are empty (B(t) = {0} for 1 <= t <= 5 only) give the sets of their definitions; a rule
    that is not callable is named by its type."""
    p = Pattern.from_rule(lambda t: t.astype(np.uint32)[:, None], lambda t: ((t - 1).astype(float), t > 0))
    assert p.sets(20) == ([[t] for t in range(20)], [[t - 1] if t else [] for t in range(20)])
    q = Pattern.from_rule(None, lambda t: [np.arange(t0 % 3).astype(np.int16) for t0 in t])
    assert q.sets(20)[1] == [list(range(t % 3)) if t % 3 <= t else [] for t in range(20)]
    early = Pattern.from_rule(None, lambda t: (np.zeros_like(t), (t > 0) & (t < 6)))
    assert early.sets(40)[1] == [[0] if 1 <= t <= 5 else [] for t in range(40)]
    with pytest.raises(GLRError, match="a rule must be a callable of t, got int"):
        Pattern.from_rule(None, 42)


def test_rule_entry_limits_are_exact(monkeypatch):
    """A side may hold exactly ``max_entries`` entries (B(t) = {t - 1}: 20 entries at n = 21 of a limit of 20);
    the 21st is refused with the count and the position reached; ``RULE_MAX_ENTRIES`` bounds one evaluation's
    entries in the same way (15 entries at n = 16 fit a limit of 15, not 14)."""
    import glrtheory.patterns.rules as rules_module

    p = Pattern.from_rule(None, named(lambda t: (t - 1, t > 0), "prev"), max_entries=20)
    assert p.sets(21)[1][-1] == [19]
    with pytest.raises(GLRError, match=r"^rule prev for B gives 21 entries by t=21 \(n=22\), over the limit "
                                       r"RULE_MAX_ENTRIES = 20$"):
        p.tables(22)
    late = Pattern.from_rule(None, named(lambda t: (t - 1, t > 0), "prev"), max_entries=300)
    with pytest.raises(GLRError, match=r"^rule prev for B gives 783 entries by t=783 \(n=1000\)"):   # second chunk
        late.tables(1000)
    monkeypatch.setattr(rules_module, "RULE_MAX_ENTRIES", 15)
    assert Pattern.from_rule(None, lambda t: (t - 1, t > 0)).sets(16)[1][-1] == [14]
    monkeypatch.setattr(rules_module, "RULE_MAX_ENTRIES", 14)
    with pytest.raises(GLRError, match=r"^rule prev for B: B has 15 entries, over the limit RULE_MAX_ENTRIES = 14$"):
        Pattern.from_rule(None, named(lambda t: (t - 1, t > 0), "prev"))


def test_rule_chunks_shrink_for_wide_rows(monkeypatch):
    """With ``_CHUNK_ENTRIES`` = 64 and rows of 8 entries, every call after the first at a new n asks for at most
    64 / 8 positions, always int64; the sets are the definition's (B(t) = {t - 8 .. t - 1})."""
    import glrtheory.patterns.rules as rules_module

    monkeypatch.setattr(rules_module, "_CHUNK_ENTRIES", 64)
    calls = []

    def eight_back(t):
        calls.append((t.dtype, t.size))
        return t[:, None] - np.arange(1, 9)[None, :], t[:, None] - np.arange(1, 9)[None, :] >= 0

    p = Pattern.from_rule(None, eight_back)
    calls.clear()
    assert p.sets(300)[1] == [list(range(max(0, t - 8), t)) for t in range(300)]
    assert all(dtype == np.int64 for dtype, _ in calls) and max(size for _, size in calls[1:]) <= 8


def test_rule_time_limit_on_a_fake_clock(monkeypatch):
    """The time limit on a clock the rule advances (costs binary fractions, so exact): the rule is refused once the
    time projected for n exceeds the limit (not when it equals it), but only after 5% of the limit has passed;
    a rule is never refused on its last chunk; the message gives the positions, the time, the projection."""
    import types

    import glrtheory.patterns.rules as rules_module

    clock = [0.0]
    monkeypatch.setattr(rules_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def make(cost):
        clock[0] = 0.0

        def costly(t):
            clock[0] += cost(t)
            return t - 1, t > 0
        return Pattern.from_rule(None, costly, max_seconds=8)

    per_position = make(lambda t: np.count_nonzero(t >= 16) / 128)   # 256 positions: 2 s
    assert len(per_position.sets(1040)[1]) == 1040                    # projected 2 * 1024 / 256 = 8 s: not over
    with pytest.raises(GLRError, match=r"^rule costly for B is too slow: 256 positions took 2 s, about 8.59 s for "
                                       r"n=1116, over the limit RULE_MAX_SECONDS = 8 s \(vectorize the rule over t\)$"):
        make(lambda t: np.count_nonzero(t >= 16) / 128).tables(1116)
    slow_start = make(lambda t: np.count_nonzero(t >= 16) / 1024)     # 0.25 s: under 5% of 8 s, not judged yet
    with pytest.raises(GLRError, match=r"too slow: 768 positions took 0.75 s, about 1.02e\+03 s for n=1048592"):
        slow_start.tables(16 + 2**20)
    exact = make(lambda t: 0.0 if t[0] < 16 else 0.05 * 8 if t[0] == 16 else 1 / 1024)   # 5% after one chunk
    with pytest.raises(GLRError, match=r"too slow: 768 positions took 0.4\d* s"):
        exact.tables(16 + 2**20)
    last = make(lambda t: 16.0 if t[-1] == 1015 else 0.0)            # only the last chunk is slow
    assert len(last.sets(1016)[1]) == 1016


def test_sparse_lag_detection_worked_cases():
    """``SparseSupport.lags``: the lag set only where every row is ``{t - l : l <= t}`` of the last row's lags
    (sets worked by hand: lags {1, 3}; {1, 3} with row 4 missing lag 3; with a stray entry; a one-lag set; all
    rows empty), and a table refused by its own ``max_entries`` with the support named."""
    from glrtheory.errors import WorkLimitError

    def b_lags(sets):
        return Pattern.from_sets([[t] for t in range(len(sets))], sets).support_b(len(sets)).lags

    assert b_lags([[], [0], [1], [0, 2], [1, 3], [2, 4]]).tolist() == [1, 3]
    assert b_lags([[], [0], [1], [0, 2], [3], [2, 4]]) is None
    assert b_lags([[], [0], [0, 1], [0, 2], [1, 3], [2, 4]]) is None
    assert b_lags([[], [], [0], [1], [2], [3]]).tolist() == [2]
    assert b_lags([[], [], [], [2], [2], [4]]) is None
    assert b_lags([[]] * 6).tolist() == []
    assert b_lags([[], [0], [0], [2]]) is None           # row 2's lag 2 lies above every lag of the last row
    sup = Pattern.from_sets([[t] for t in range(6)], [[], [0], [1], [0, 2], [1, 3], [2, 4]]).support_b(6)
    with pytest.raises(WorkLimitError, match=r"index table of a sparse user support at n=6 would hold 6x2=12"):
        sup.table(max_entries=11)
