"""``glr analyze`` and ``glr compare``: JSON keys, tables, plots and one-line errors (exit 2)."""
import json
import re

import pytest

from glrtheory import GLRError, Pattern
from glrtheory.errors import WorkLimitError
from glrtheory.analysis import HOPS_MAX_WORK, KEYS, RANK_KEYS, analyze, total_cost
from helpers import run_cli as run


def test_analyze_json_keys(capsys):
    code, out, _ = run(capsys, "analyze", "fenwick", "--n", "64", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == list(KEYS)
    assert data == analyze(Pattern.from_spec("fenwick"), 64)
    code, out, _ = run(capsys, "analyze", "window:4", "--n", "16", "--json", "--rank")
    data = json.loads(out)
    assert list(data) == list(KEYS) + list(RANK_KEYS)
    assert data["hop_diameter"] is None and data["full_receptive_field"] is False
    assert data["hankel_rank_max"] == 3 and data["hankel_rank_method"] == "exact"
    assert data["hankel_rank_error_bound"] == 0      # 3 = min(live set, t + 1, n - t - 1): certain


def test_rank_methods_agree_on_the_cli(capsys):
    """--rank-method exact (the default) and flow (its check) at n = 2048."""
    ranks = {}
    for method in ("exact", "flow"):
        code, out, _ = run(capsys, "compare", "fenwick", "blocks", "--n", "2048", "--rank", "--rank-method", method,
                           "--json")
        assert code == 0
        ranks[method] = [(r["hankel_rank_max"], r["hankel_rank_method"]) for r in json.loads(out)]
    assert [r for r, _ in ranks["exact"]] == [r for r, _ in ranks["flow"]] == [10, 23]
    assert {m for _, m in ranks["flow"]} == {"flow"}


def test_analyze_text_and_plot(capsys, tmp_path):
    png = tmp_path / "a.png"
    code, out, _ = run(capsys, "analyze", "power2", "--n", "32", "--rank", "--plot", str(png))
    assert code == 0 and png.stat().st_size > 0
    lines = dict(line.split(None, 1) for line in out.splitlines() if not line.startswith("wrote"))
    assert lines["cache_peak"] == "16" and lines["hankel_rank_max"] == "16" and lines["theta_total"] == "n*log(n)"


def test_compare_json_table_and_plot(capsys, tmp_path):
    specs = ["ssm", "power2", "fenwick"]
    code, out, _ = run(capsys, "compare", *specs, "--n", "64", "--json", "--rank")
    assert code == 0
    rows = json.loads(out)
    assert [r["spec"] for r in rows] == specs
    assert all(list(r) == list(KEYS) + list(RANK_KEYS) for r in rows)
    png = tmp_path / "c.png"
    code, out, _ = run(capsys, "compare", *specs, "--n", "64", "--plot", str(png))
    assert code == 0 and png.stat().st_size > 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["spec", "decode", "max"]
    fenwick = next(line for line in lines if line.startswith("fenwick")).split()
    p = Pattern.from_spec("fenwick")
    assert str(total_cost(p, 64)) in fenwick and "rank" not in lines[0]


RULER = """
import numpy as np
from glrtheory import Pattern

def ruler(t):
    low = t & -t
    return np.stack([t - 1, t - low], axis=1), (t > 0)[:, None]

pattern = Pattern.from_rule(None, ruler, spec="ruler")
"""


def test_analyze_skips_hops_over_the_limit(capsys, tmp_path):
    """A rule that is not a lag set, B(t) = {t-1, t - lowbit(t)}, at n = 65536: the search from every input
    is over the hop limit, so hop_diameter is null with the reason; the rest is computed."""
    path = tmp_path / "ruler.py"
    path.write_text(RULER)
    n = 65536
    code, out, _ = run(capsys, "analyze", f"{path}:pattern", "--n", str(n), "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == list(KEYS) + ["skipped"] and list(data["skipped"]) == ["hop_diameter"]

    def nnz_b(m):                           # |B(t)| = 1 for odd t (t - 1 = t - lowbit), 2 for even t > 0
        return (m - 1) + (m - 1) // 2

    assert (data["nnz_a"], data["nnz_b"], data["decode_cost_max"]) == (n, nnz_b(n), 3)
    assert data["depth"] == n - 1                   # the chain t-1 -> t; every edge steps back >= 1
    assert data["hop_diameter"] is None and data["full_receptive_field"] is True   # the chain reaches all
    assert data["theta_basis"] == "fitted" and data["cache_peak"] > 0
    fits = max(m for m in range(1, n) if m * (2 * m + m + nnz_b(m)) <= HOPS_MAX_WORK)
    reason = data["skipped"]["hop_diameter"]
    assert f"over the limit {HOPS_MAX_WORK}" in reason and reason.endswith(f"the largest n that fits is {fits}")
    code, out, _ = run(capsys, "analyze", f"{path}:pattern", "--n", str(n))
    assert code == 0
    lines = out.splitlines()
    assert next(x for x in lines if x.startswith("hop_diameter")).split() == ["hop_diameter", "skipped"]
    assert lines[-1] == f"skipped ruler hop_diameter: {reason}"


@pytest.mark.parametrize("method", ["exact", "flow"])
def test_rank_over_the_limit_is_skipped(capsys, method):
    """--rank over its limit: the rank is null with the reason, the other quantities and patterns stay."""
    code, out, _ = run(capsys, "compare", "attention", "ssm", "--n", "6000", "--rank", "--rank-method", method,
                       "--json")
    assert code == 0
    attention, ssm = json.loads(out)
    assert attention["hankel_rank_max"] is None and attention["hankel_rank_method"] == method
    assert re.search(r"the largest n (that fits|whose sketch arrays fit) is \d+$",
                     attention["skipped"]["hankel_rank_max"])
    assert attention["cache_peak"] == 5999 and ssm["hankel_rank_max"] == 1 and "skipped" not in ssm
    code, out, _ = run(capsys, "compare", "attention", "ssm", "--n", "6000", "--rank", "--rank-method", method)
    lines = out.splitlines()
    assert "skipped" in lines[2].split() and lines[-1].startswith("skipped attention hankel_rank_max: ")


@pytest.mark.parametrize("argv, message", [
    (["analyze", "nope", "--n", "8"], "unknown pattern family"),
    (["analyze", "ssm", "--n", "0"], "positive integer"),
    (["analyze", "ssm"], "--n"),
    (["analyze", "ssm", "--n", "8", "--plot", "x.pdf"], ".png"),
    (["analyze", "ssm", "--n", "8", "--rank-method", "svd"], "invalid choice"),
    (["compare", "--n", "8"], "SPEC"),
    (["compare", "ssm", "window:0", "--n", "8"], "window W must be >= 1"),
])
def test_errors_are_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("glr: error:") and message in err


def test_compare_takes_at_most_ten_patterns(capsys, tmp_path):
    """Ten patterns are compared (one row each, in order); an eleventh is refused, naming the limit and the count,
    before any report, in the library and on the command line (one line, exit 2)."""
    from glrtheory.analysis import COMPARE_MAX_PATTERNS, compare

    specs = [f"window:{w}" for w in range(1, 12)]
    assert COMPARE_MAX_PATTERNS == 10
    code, out, _ = run(capsys, "compare", *specs[:10], "--n", "16", "--json")
    assert code == 0 and [r["cache_peak"] for r in json.loads(out)] == list(range(10))    # window:W keeps W - 1
    with pytest.raises(WorkLimitError, match=r"at most 10 patterns at once \(got 11\)"):
        compare((Pattern.from_spec(s) for s in specs), 16)
    code, out, err = run(capsys, "compare", *specs, "--n", "16", "--plot", str(tmp_path / "c.png"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "at most 10 patterns at once (got 11)" in err
    assert not (tmp_path / "c.png").exists()


def test_search_cli(capsys, tmp_path):
    """glr search: built-ins by default, a family's grid, and a user pattern from a file."""
    code, out, _ = run(capsys, "search", "--n", "4096", "--max-cache", "64", "--max-hops", "20", "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["spec"] for r in data["matches"]] == ["fenwick"] and data["bounds"]["max_cache"] == 64
    code, out, _ = run(capsys, "search", "--n", "1024", "--family", "blocks", "--values", "8", "32", "128",
                       "--max-cache", "64", "--min-rank", "4")
    assert code == 0 and "2 of 3 candidates meet them" in out
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[3:]] == ["blocks:8", "blocks:32"]     # cheaper first
    (tmp_path / "mine.py").write_text("from glrtheory import Pattern\n"
                                      "pattern = Pattern.from_lags((0,), (1, 2, 4, 8), spec='mine')\n")
    code, out, _ = run(capsys, "search", str(tmp_path / "mine.py") + ":pattern", "ssm", "--n", "256",
                       "--max-decode", "3", "--json")
    assert code == 0 and [r["spec"] for r in json.loads(out)["matches"]] == ["ssm"]
    assert [r["spec"] for r in json.loads(out)["rejected"]] == ["mine"]


@pytest.mark.parametrize("argv, message", [
    (["search", "--n", "64", "--values", "3"], "--values needs --family"),
    (["search", "--n", "64", "--max-cache", "-1"], "non-negative integer"),
    (["search", "--n", "64", "--family", "fenwick"], "invalid choice"),
])
def test_search_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("glr: error:") and message in err


def test_analyze_reports_the_readout_algorithm(capsys, monkeypatch):
    """The ``readout`` key: the matrix-state readout's algorithm, cost class, sizes and class in n. fenwick at
    n = 1 + 16 * 64 in chunks of 64 (offset 1) keeps the states at the 16 multiples of 64 below 1024, and a
    chunk (c0, c0 + 64] reads popcount(c0 / 64) + 1 <= 5 of them (the definition's roundings of c0). The
    class is fitted to the work estimate at n / 16 .. n: over 64..1025 fenwick's log factor does not show
    (slope 1.09, class n); over 256..4096 it does."""
    code, out, _ = run(capsys, "analyze", "fenwick", "--n", "1025", "--json")
    assert code == 0 and json.loads(out)["readout"] == {
        "algorithm": "chunked_aligned", "cost_class": "n (w + m)", "chunk": 64, "w": 0, "m": 5,
        "boundary_states": 16, "theta": "n", "theta_fit": {"range": [64, 1025], "slope": 1.0866, "residual": 0.1033}}
    expect = {"power2": ("tiled_mixing", None, "n**2*log(n)"), "window:4": ("direct", 3, "n"),
              "blocks:16": ("chunked_aligned", 0, "n"), "fenwick": ("chunked_aligned", 0, "n*log(n)"),
              "attention+ssm": ("tiled_mixing", None, "n**3")}
    for spec, (name, w, theta) in expect.items():
        r = analyze(Pattern.from_spec(spec), 4096)["readout"]
        assert (r["algorithm"], r["w"], r["theta"]) == (name, w, theta), spec
    r = analyze(Pattern.from_spec("ssm"), 64)["readout"]
    assert r["theta"] is None and "too short" in r["theta_fit"]["reason"]
    code, out, _ = run(capsys, "analyze", "ssm", "--n", "1024")
    assert code == 0 and '"algorithm": "chunked_aligned"' in next(x for x in out.splitlines()
                                                                  if x.startswith("readout"))
    import glrtheory.analysis.report as report
    monkeypatch.setattr(report, "READOUT_MAX_ENTRIES", 100)
    r = analyze(Pattern.from_spec("fenwick"), 256)
    assert r["readout"] is None and "over the limit 100" in r["skipped"]["readout"]
    monkeypatch.setattr(report, "READOUT_MAX_ENTRIES", 2**24)
    monkeypatch.setattr(report, "READOUT_MAX_N", 1000)
    r = analyze(Pattern.from_spec("ssm"), 1001)
    assert r["readout"] is None and "needs 1001 positions, over the limit 1000; the largest n that fits is 1000" \
        in r["skipped"]["readout"]
    r = analyze(Pattern.from_spec("ssm"), 1000)
    assert r["readout"]["algorithm"] == "chunked_aligned", r["skipped"]


def test_readout_class_follows_the_work_not_the_total_cost():
    """A(t) = [0, t] when t is a power of two, else {t}; B(t) = {t - 1}: every A row is an interval and the
    total cost is linear (exact counts: 4x from n = 1024 to 4096), but A's reach before a chunk grows with
    n (449 at 1024, 1985 at 4096 in chunks of 64), so the readout's work is ~n^2 (the old rule, the total
    cost's class when every A row is an interval, said n)."""
    import numpy as np

    from glrtheory.analysis.counts import nnz
    from glrtheory.analysis.report import _readout
    from glrtheory.kernels.scan.readout_plan import aligned_layout

    def a_rule(t):
        power = (t & (t - 1)) == 0
        cols = np.arange(int(t.max(initial=0)) + 1)[None, :]
        return np.where(power[:, None], cols, t[:, None]), np.where(power[:, None], cols <= t[:, None], cols == 0)

    p = Pattern.from_rule(a_rule, lambda t: ((t - 1)[:, None], (t >= 1)[:, None]), spec="power-of-two intervals")
    assert 3.9 < sum(nnz(p, 4096)) / sum(nnz(p, 1024)) < 4.1
    assert [aligned_layout(p.tables(n), 64).span for n in (1024, 4096)] == [449, 1985]
    r = _readout(p, 4096)
    assert r["theta"] == "n**2" and r["theta_fit"]["range"] == [256, 4096], r


def test_analyze_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys; from glrtheory import Pattern; from glrtheory.analysis import analyze; "
            "r = analyze(Pattern.from_spec('fenwick'), 1024); assert r['readout']['algorithm'] == 'chunked_aligned'; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_union_whose_table_is_over_the_limit_is_skipped(capsys, monkeypatch):
    """blocks+ssm builds its A side as a table (blocks of 16 at n = 256: 256 x 16 entries); with the table
    limit at 2000 every quantity read from the supports is None with the table's reason under ``skipped``,
    the closed-form classes stay, and the CLI prints the report (exit 0), not an error line."""
    import glrtheory.analysis as an
    import glrtheory.patterns.support as support

    p, n = Pattern.from_spec("blocks+ssm"), 256
    an.clear_caches()
    within = analyze(p, n)
    assert "skipped" not in within and within["nnz_a"] == n * 17 // 2       # A(t): t's block up to t
    monkeypatch.setattr(support, "MAX_TABLE_ENTRIES", 2000)
    an.clear_caches()                                        # the supports at n are cached
    over = analyze(p, n)
    skipped = over.pop("skipped")
    table_keys = ["nnz_a", "nnz_b", "decode_cost_max", "decode_cost_mean", "hop_diameter", "cache_peak", "depth",
                  "full_receptive_field", "readout"]
    assert sorted(skipped) == sorted(table_keys)
    assert all("would hold 256x16=4096 entries, over the limit 2000" in r for r in skipped.values())
    assert over == {**within, **dict.fromkeys(table_keys)}
    code, out, _ = run(capsys, "analyze", "blocks+ssm", "--n", str(n))
    lines = out.splitlines()
    assert code == 0 and next(x for x in lines if x.startswith("nnz_a")).split() == ["nnz_a", "skipped"]
    notes = [x for x in lines if x.startswith("skipped blocks+ssm ")]          # one line per reason: one reason
    assert [sorted(x.split(":")[0].split(" ", 2)[2].split(", ")) for x in notes] == [sorted(table_keys)]
    code, out, _ = run(capsys, "analyze", "blocks+ssm", "--n", str(n), "--json")
    assert code == 0 and json.loads(out)["skipped"] == skipped
    code, out, _ = run(capsys, "compare", "blocks+ssm", "ssm", "--n", str(n))      # total cost: skipped too
    rows = {x.split()[0]: x.split() for x in out.splitlines() if x.split() and x.split()[0] in ("blocks+ssm", "ssm")}
    assert code == 0 and rows["blocks+ssm"][1:4] == ["skipped"] * 3 and rows["ssm"][3] == str(2 * n - 1)
    an.clear_caches()


def test_plot_draws_what_is_within_the_limits(capsys, monkeypatch, tmp_path):
    """``analyze --plot`` draws the panels whose quantities the report has: none for a union over the table
    limit (no file, exit 0), and a profile over its own limit is noted while the other panels are drawn."""
    import glrtheory.analysis as an
    import glrtheory.cli.analysis as cli
    import glrtheory.patterns.support as support

    out_png = tmp_path / "a.png"
    monkeypatch.setattr(support, "MAX_TABLE_ENTRIES", 2000)
    an.clear_caches()
    code, out, _ = run(capsys, "analyze", "blocks+ssm", "--n", "256", "--plot", str(out_png))
    assert code == 0 and f"{out_png} not written: every series is over a limit" in out and not out_png.exists()
    monkeypatch.undo()
    an.clear_caches()

    def over(*args):
        raise GLRError("the exact Hankel rank is over its limit")

    monkeypatch.setattr(cli, "hankel_profile", over)
    code, out, _ = run(capsys, "analyze", "power2", "--n", "64", "--rank", "--plot", str(out_png))
    assert code == 0 and "plot panel 'generic Hankel rank at cut t' not drawn: the exact Hankel rank" in out
    assert f"wrote {out_png}" in out and out_png.stat().st_size > 0


def test_n_1_is_a_positive_integer(capsys):
    code, out, _ = run(capsys, "analyze", "ssm", "--n", "1", "--json")
    assert code == 0 and json.loads(out)["n"] == 1


@pytest.mark.parametrize("body, message", [
    ("raise SystemExit(3)\n", "importing"),
    ("def pattern():\n    raise ValueError('boom')\n", "calling"),
    ("import sys\ndef pattern():\n    sys.exit(0)\n", "calling"),
])
def test_user_code_failures_are_one_line_exit_2(capsys, tmp_path, body, message):
    path = tmp_path / "mine.py"
    path.write_text(body)
    code, out, err = run(capsys, "analyze", f"{path}:pattern", "--n", "8")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("glr: error:") and message in err


def test_ctrl_c_is_one_line_exit_130(capsys, tmp_path):
    """A KeyboardInterrupt (Ctrl-C) anywhere in a verb: ``glr: interrupted`` and status 130, no traceback."""
    path = tmp_path / "mine.py"
    path.write_text("def pattern():\n    raise KeyboardInterrupt\n")
    assert run(capsys, "analyze", f"{path}:pattern", "--n", "8") == (130, "", "glr: interrupted\n")


def test_compare_table_columns_are_the_json_values(capsys):
    specs = ["window:4", "power2", "fenwick"]
    code, out, _ = run(capsys, "compare", *specs, "--n", "64", "--json")
    rows = {r["spec"]: r for r in json.loads(out)}
    code, out, _ = run(capsys, "compare", *specs, "--n", "64")
    assert code == 0
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["spec", "decode max", "decode mean", "total cost", "cache",
                                                      "depth", "hops", "Theta(total)", "Theta(cache)"]
    assert [line.split()[0] for line in lines[2:]] == specs
    for line in lines[2:]:
        r = rows[line.split()[0]]
        assert line.split() == [r["spec"], str(r["decode_cost_max"]), f"{r['decode_cost_mean']:.4g}",
                                str(r["nnz_a"] + r["nnz_b"]), str(r["cache_peak"]), str(r["depth"]),
                                "-" if r["hop_diameter"] is None else str(r["hop_diameter"]),
                                r["theta_total"], r["theta_cache"]]
