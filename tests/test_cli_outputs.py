"""``glr``'s outputs in full (mutation run 11): exact text lines, JSON keys, exit codes, one-line refusals, the
data drawn in plots, and user pattern files, each against hand-worked values or the library API."""
import json
import re
import sys
import warnings

import pytest

from glrtheory import GLRError, Pattern
from glrtheory.analysis import analyze, cache_peak, total_cost
from glrtheory.catalog import INEXPRESSIBLE
from glrtheory.catalog.registry import table as catalog_table
from glrtheory.patterns import FAMILIES
from helpers import one_line_error, run_cli as run


def refused(capsys, *argv) -> str:
    """The one error line of a refused call (exit 2, nothing on stdout), without its ``glr: error: `` prefix."""
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.endswith("\n"), (code, out, err)
    return one_line_error(err)[len("glr: error: "):]


@pytest.fixture
def figures(monkeypatch):
    """The figures the verbs save, kept instead of written: ``[(figure, path)]``."""
    import glrtheory.cli.analysis as analysis
    import glrtheory.cli.lti as lti
    import glrtheory.cli.patterns as patterns

    kept = []
    for mod in (analysis, lti, patterns):
        monkeypatch.setattr(mod, "save", lambda fig, path: kept.append((fig, path)))
    return kept


# --- the command itself: errors, warnings, argument types -------------------------------------------------------

def test_empty_messages_print_the_type_name_and_repeated_warnings_once(capsys, monkeypatch):
    """A warning or error whose message is empty prints its class name; a repeated warning prints once."""
    import glrtheory.cli.patterns as verbs

    def quiet(args):
        warnings.warn("")
        warnings.warn("")
        warnings.warn("second", RuntimeWarning)
        raise GLRError("")

    monkeypatch.setattr(verbs, "run_patterns", quiet)
    code, out, err = run(capsys, "patterns")
    assert (code, out) == (2, "")
    assert err.splitlines() == ["glr: warning: UserWarning", "glr: warning: second", "glr: error: GLRError"]


def test_a_broken_pipe_exits_0_quietly(capsys, monkeypatch):
    """Output cut off by a closed pipe (``glr patterns | head -1``) is not an error."""
    import glrtheory.cli.patterns as verbs

    def cut(args):
        raise BrokenPipeError

    monkeypatch.setattr(verbs, "run_patterns", cut)
    assert run(capsys, "patterns") == (0, "", "")


@pytest.mark.parametrize("argv, message", [
    (["analyze", "ssm", "--n", "0"], "argument --n: expected a positive integer, got 0"),
    (["analyze", "ssm", "--n", "-3"], "argument --n: expected a positive integer, got -3"),
    (["analyze", "ssm", "--n", "1.5"], "argument --n: expected a positive integer, got '1.5'"),
    (["search", "--n", "8", "--max-cache", "-1"], "argument --max-cache: expected a non-negative integer, got -1"),
    (["search", "--n", "8", "--max-hops", "x"], "argument --max-hops: expected a non-negative integer, got 'x'"),
    (["search", "--n", "8", "--family", "window", "--values", "x"],
     "argument --values: expected a finite number, got 'x'"),
    (["search", "--n", "8", "--family", "window", "--values", "nan"],         # was a ValueError's traceback
     "argument --values: expected a finite number, got 'nan'"),
    (["search", "--n", "8", "--family", "window", "--values", "inf"],         # was an OverflowError's traceback
     "argument --values: expected a finite number, got 'inf'"),
    (["analyze", "ssm", "--n", "1_0"], "argument --n: expected a positive integer, got '1_0'"),
    (["analyze", "ssm", "--n", "\u0663"], "argument --n: expected a positive integer, got '\u0663'"),
    (["lti", "lags:1", "--coef", "1=0.5", "--eps", "1e-3_0"], "argument --eps: expected a finite number, got '1e-3_0'"),
    (["search", "--n", "8", "--values", "3"], "--values needs --family"),
    (["frobnicate"], "argument VERB: invalid choice: 'frobnicate' (choose from 'patterns', 'show', 'analyze', "
                     "'compare', 'search', 'catalog', 'lti', 'lab', 'lm')"),
    ([], "the following arguments are required: VERB"),
    (["analyze", "ssm"], "the following arguments are required: --n"),
    (["analyze", "ssm", "--n", "8", "--plot", "a.pdf"], "argument --plot: expected a .png file name, got 'a.pdf'"),
    (["analyze", "ssm", "--n", "8", "--rank-method", "svd"],
     "argument --rank-method: invalid choice: 'svd' (choose from 'exact', 'flow')"),
    (["search", "--n", "8", "--rank-method", "svd"],
     "argument --rank-method: invalid choice: 'svd' (choose from 'exact', 'flow')"),
    (["search", "--n", "8", "--family", "kron"],
     "argument --family: invalid choice: 'kron' (choose from 'blocks', 'exponent', 'power', 'window')"),
    (["compare", "--n", "8"], "the following arguments are required: SPEC"),
    (["analyze", "ssm", "--n", "8", "--rank-method", "flow"], "--rank-method flow has no rank to compute: add --rank"),
    (["compare", "ssm", "--n", "8", "--rank-method", "exact"],
     "--rank-method exact has no rank to compute: add --rank or --plot"),
    (["analyze", "not-a-module:pattern", "--n", "8"],
     "unknown pattern family 'not-a-module'; known: " + ", ".join(FAMILIES)),
    (["show", "ssm", "--n", "129"], "show is limited to n <= 128, got n=129"),
    (["show", "ssm", "--n", "2049", "--plot", "s.png"], "show is limited to n <= 2048 with --plot, got n=2049"),
    (["catalog", "--n", "0"], "argument --n: expected a positive integer, got 0"),
    (["catalog", "--plot", "c.png"], "unrecognized arguments: --plot c.png"),
    (["patterns", "--plot", "p.png"], "unrecognized arguments: --plot p.png"),
    (["lti", "lags:1", "--coef", "1=0.5", "--n", "0"], "argument --n: expected a positive integer, got 0"),
    (["lti", "lags:1", "--coef", "1=0.5", "--freq", "0"], "argument --freq: expected a positive integer, got 0"),
    (["lti", "lags:1", "--coef", "1=0.5", "--eps", "x"], "argument --eps: expected a finite number, got 'x'"),
    (["lti", "lags:1", "--coef", "1=0.5", "--step", "x"], "argument --step: expected a finite number, got 'x'"),
    (["lti", "lags:1", "--coef", "1=b", "--range", "0", "x"], "argument --range: expected a finite number, got 'x'"),
])
def test_refusals_in_full(capsys, argv, message):
    """Bad arguments: one line, exit 2, with argparse's or the verb's whole message."""
    assert refused(capsys, *argv) == message


def test_zero_is_a_non_negative_integer_and_upper_case_png_is_a_png(capsys, figures):
    """``--max-cache 0`` is a bound (window:1 keeps no state: A(t) = {t}, B empty) and ``A.PNG`` a PNG name."""
    code, out, _ = run(capsys, "search", "--n", "64", "--max-cache", "0", "--max-decode", "0", "--max-hops", "0",
                       "--min-rank", "0", "--json")
    assert code == 0 and json.loads(out)["bounds"] == {"max_decode": 0, "max_cache": 0, "max_hops": 0, "min_rank": 0}
    code, out, _ = run(capsys, "search", "--n", "64", "--max-cache", "0", "--json")
    assert code == 0 and [r["spec"] for r in json.loads(out)["matches"]] == ["window:1"]
    code, out, _ = run(capsys, "show", "ssm", "--n", "4", "--plot", "A.PNG")
    assert (code, out) == (0, "wrote A.PNG\n") and figures[0][1] == "A.PNG"


# --- user pattern files ---------------------------------------------------------------------------------------

def test_user_files_import_their_neighbours_and_may_define_dataclasses(capsys, tmp_path):
    """A pattern file may import a module beside it, define a dataclass (which looks its module up in
    sys.modules), and name a dotted attribute; two files of one name are two patterns."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "near_lags_mod.py").write_text("LAGS = (1, 3)\n")
    (tmp_path / "a" / "mine.py").write_text(
        "import dataclasses\nfrom glrtheory import Pattern\nfrom near_lags_mod import LAGS\n\n"
        "@dataclasses.dataclass\nclass Cfg:\n    lags: tuple = LAGS\n\n"
        "class ns:\n    pattern = Pattern.from_lags((0,), Cfg().lags, spec='near')\n")
    (tmp_path / "b" / "mine.py").write_text("from glrtheory import Pattern\n"
                                            "class ns:\n    pattern = Pattern.from_lags((0,), (2,), spec='other')\n")
    code, out, _ = run(capsys, "show", f"{tmp_path / 'a' / 'mine.py'}:ns.pattern", "--n", "4", "--json")
    assert code == 0 and json.loads(out) == {"spec": "near", "n": 4, "A": [[0], [1], [2], [3]],
                                             "B": [[], [0], [1], [0, 2]]}
    code, out, _ = run(capsys, "compare", f"{tmp_path / 'a' / 'mine.py'}:ns.pattern",
                       f"{tmp_path / 'b' / 'mine.py'}:ns.pattern", "--n", "8", "--json")
    sys.modules.pop("near_lags_mod", None)        # imported by the user file: found on the path, not in a cache
    assert code == 0 and [(r["spec"], r["nnz_b"]) for r in json.loads(out)] == [("near", 7 + 5), ("other", 6)]


def test_a_dotted_module_is_imported_from_the_current_folder_first(capsys, tmp_path, monkeypatch):
    """``module:attribute`` imports from the current folder before the rest of sys.path, even where a module of
    the same name sits in sys.path[0]; a dotted module (a package's module) too; the folder is taken off after."""
    (tmp_path / "first").mkdir()
    (tmp_path / "cwd").mkdir()
    name = "glr_shadowed_pattern_mod"
    (tmp_path / "first" / f"{name}.py").write_text("raise ImportError('the wrong module')\n")
    (tmp_path / "cwd" / f"{name}.py").write_text("from glrtheory import Pattern\n"
                                                 "def make():\n    return Pattern.from_spec('power2')\n")
    (tmp_path / "cwd" / "glr_pkg_for_test").mkdir()
    (tmp_path / "cwd" / "glr_pkg_for_test" / "__init__.py").write_text("")
    (tmp_path / "cwd" / "glr_pkg_for_test" / "mod.py").write_text("from glrtheory import Pattern\n"
                                                                "pattern = Pattern.from_spec('fenwick')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delitem(sys.modules, name, raising=False)
    code, out, _ = run(capsys, "analyze", f"{name}:make", "--n", "16", "--json")
    sys.modules.pop(name, None)
    assert code == 0 and json.loads(out) == analyze(Pattern.from_spec("power2"), 16)
    code, out, _ = run(capsys, "show", "glr_pkg_for_test.mod:pattern", "--n", "4", "--json")
    for key in [k for k in sys.modules if k.startswith("glr_pkg_for_test")]:
        sys.modules.pop(key)
    assert code == 0 and json.loads(out)["spec"] == "fenwick"
    assert str(tmp_path / "cwd") not in sys.path


@pytest.mark.parametrize("body, attr, message", [
    (None, "pattern", "pattern file '{path}' does not exist"),
    ("x = 1 / 0\n", "pattern", "importing '{path}' failed: ZeroDivisionError: division by zero"),
    ("pattern = 3\n", "pattern", "{path}:pattern is a int, not a glrtheory Pattern"),
    ("pattern = 3\n", "nope", "'{path}' has no attribute 'nope'"),
    ("class ns:\n    pattern = 3\n", "ns.nope", "'{path}' has no attribute 'ns.nope'"),
    ("def pattern():\n    return [1]\n", "pattern", "{path}:pattern is a list, not a glrtheory Pattern"),
    ("def pattern():\n    return {}['k']\n", "pattern", "calling {path}:pattern() failed: KeyError: 'k'"),
    ("from glrtheory import Pattern\ndef pattern():\n    return Pattern.from_spec('window:0')\n", "pattern",
     "window W must be >= 1, got 0"),
    ("from glrtheory import Pattern\npattern = Pattern.from_spec('ssm')\n", "pattern-x",
     "pattern '{path}:pattern-x' names a .py file: write file.py:attribute, a dotted Python name after the one colon"),
])
def test_user_file_failures_in_full(capsys, tmp_path, body, attr, message):
    """A pattern file that is missing, fails to import, lacks the attribute or gives no Pattern: one line, exit 2,
    naming the file, the attribute and the error; a GLRError raised by the user's call is passed on as it is; an
    attribute that is not a (dotted) name is refused as no file.py:attribute."""
    path = tmp_path / "mine.py"
    if body is not None:
        path.write_text(body)
    expected = message.format(path=path, known=", ".join(FAMILIES))
    assert refused(capsys, "analyze", f"{path}:{attr}", "--n", "8") == expected


def test_plotting_without_matplotlib_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    message = refused(capsys, "show", "ssm", "--plot", "s.png")
    assert message == "plotting needs matplotlib: pip install 'glrtheory[plot]'"


def test_plots_are_written_at_120_dpi(capsys, tmp_path):
    """The PNG records 120 dots per inch (4724 pixels per metre in its pHYs chunk)."""
    png = tmp_path / "s.png"
    assert run(capsys, "show", "ssm", "--n", "4", "--plot", str(png))[0] == 0
    data = png.read_bytes()
    at = data.index(b"pHYs") + 4
    assert (int.from_bytes(data[at:at + 4], "big"), int.from_bytes(data[at + 4:at + 8], "big")) == (4724, 4724)


# --- glr patterns, glr show -----------------------------------------------------------------------------------

def test_patterns_text_and_json(capsys):
    """One line per family, ``name+args`` in 18 columns then its description; JSON rows with the same fields."""
    code, out, _ = run(capsys, "patterns")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(FAMILIES)
    assert lines[0] == "ssm                first order: A(t)={t}, B(t)={t-1}"
    assert lines[3] == "lags:l1,l2,...     explicit translation-invariant B-lags, A(t)={t}"
    code, out, _ = run(capsys, "patterns", "--json")
    window = {"family": "window", "args": ":W", "description": "A covers the last W inputs, empty B"}
    assert json.loads(out)[2] == window
    assert [sorted(r) for r in json.loads(out)] == [["args", "description", "family"]] * len(FAMILIES)


def test_show_grids_worked_by_hand(capsys):
    """ssm (A(t) = {t}, B(t) = {t - 1}) at n = 3, window:2 at n = 5, and ssm at n = 11 (two-digit rows)."""
    code, out, _ = run(capsys, "show", "ssm", "--n", "3")
    assert (code, out) == (0, "t  A(t)  B(t)\n"
                              "0  a     .\n"
                              "1  .a    b.\n"
                              "2  ..a   .b.\n")
    code, out, _ = run(capsys, "show", "window:2", "--n", "5")
    assert (code, out) == (0, "t  A(t)   B(t)\n"
                              "0  a      .\n"
                              "1  aa     ..\n"
                              "2  .aa    ...\n"
                              "3  ..aa   ....\n"
                              "4  ...aa  .....\n")
    code, out, _ = run(capsys, "show", "ssm", "--n", "11")
    lines = out.splitlines()
    assert lines[0] == " t  A(t)         B(t)" and lines[1] == " 0  a            ."
    assert lines[3] == " 2  ..a          .b."
    assert lines[11] == "10  ..........a  .........b."


def test_show_at_its_limits_and_its_figure(capsys, figures):
    """n = 128 is shown as text and 2048 drawn; the figure holds A and B as images of the masks, titled."""
    code, out, _ = run(capsys, "show", "ssm", "--n", "128")
    assert code == 0 and len(out.splitlines()) == 129
    code, out, _ = run(capsys, "show", "ssm", "--n", "2048", "--plot", "big.png")
    assert (code, out) == (0, "wrote big.png\n")
    code, out, _ = run(capsys, "show", "window:2+power2", "--n", "12", "--plot", "p.png", "--json")
    assert code == 0 and json.loads(out)["n"] == 12
    fig, path = figures[-1]
    A, B = Pattern.from_spec("window:2+power2").masks(12)
    assert path == "p.png" and tuple(fig.get_size_inches()) == (10, 5) and len(fig.axes) == 2
    assert fig.axes[0].get_position().x1 < fig.axes[1].get_position().x0            # side by side
    for ax, mask, name in zip(fig.axes, (A, B), ("A (inputs)", "B (past states)")):
        image, = ax.get_images()
        assert (image.get_array() == mask).all() and image.get_cmap().name == "Greys"
        assert image.get_interpolation() == "nearest"
        assert ax.get_title() == f"window:2+power2: {name}, n=12"
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("s", "t")


# --- glr search --------------------------------------------------------------------------------------------------

def test_search_text_lines(capsys):
    """The summary line names the bounds given (or none) and counts matches of the candidates."""
    code, out, _ = run(capsys, "search", "ssm", "power2", "--n", "64", "--max-cache", "8", "--max-hops", "70")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "n = 64; bounds: max cache 8, max hops 70; 1 of 2 candidates meet them"
    assert lines[3].split()[0] == "ssm" and len(lines) == 4
    code, out, _ = run(capsys, "search", "ssm", "--n", "64")
    assert out.splitlines()[0] == "n = 64; bounds: none; 1 of 1 candidates meet them"
    code, out, _ = run(capsys, "search", "ssm", "--n", "64", "--max-cache", "0")
    assert out == "n = 64; bounds: max cache 0; 0 of 1 candidates meet them\n"


def test_search_names_the_candidates_it_skipped(capsys):
    """attention's rank at n = 6000 is over the exact method's limit: skipped with search()'s reason, one line."""
    from glrtheory.analysis.search import search

    ref = search([Pattern.from_spec("attention"), Pattern.from_spec("ssm")], 6000, min_rank=1)
    (skip,) = ref["skipped"]
    code, out, _ = run(capsys, "search", "attention", "ssm", "--n", "6000", "--min-rank", "1")
    assert code == 0 and out.splitlines()[-1] == f"skipped attention: {skip['reason']}"
    assert out.splitlines()[0] == "n = 6000; bounds: min rank 1; 1 of 2 candidates meet them"


def test_search_names_the_candidates_past_its_rank_budget(capsys, monkeypatch):
    """A search's ranks share RANKS_MAX_WORK: with room for power2's and ssm's exact ranks alone, attention
    between them is skipped with search()'s reason, which names the limit, and ssm after it still runs."""
    from glrtheory.analysis import clear_caches, exact_rank_max, hankel, search as search_module
    from glrtheory.analysis.limits import WorkBudget

    specs = ["power2", "attention", "ssm"]
    room = WorkBudget(2**62, "unlimited")
    clear_caches()
    for spec in ("power2", "ssm"):
        exact_rank_max(Pattern.from_spec(spec), 64, budget=room)
    monkeypatch.setitem(hankel.RANKS_MAX_WORK, "exact", room.spent)
    clear_caches()
    (skip,) = search_module.search([Pattern.from_spec(s) for s in specs], 64, min_rank=1)["skipped"]
    assert skip["spec"] == "attention" and "search's rank work limit RANKS_MAX_WORK['exact']" in skip["reason"]
    clear_caches()
    code, out, _ = run(capsys, "search", *specs, "--n", "64", "--min-rank", "1")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "n = 64; bounds: min rank 1; 2 of 3 candidates meet them"
    assert [line.split()[0] for line in lines[3:-1]] == ["ssm", "power2"]
    assert lines[-1] == f"skipped attention: {skip['reason']}"
    clear_caches()


def test_search_min_rank_and_method_and_the_default_grid(capsys):
    """--min-rank drops the patterns whose generic rank is below it (ranks from analyze); --rank-method is
    passed on: fenwick's rank by flow is certain (error bound 0), the default exact one carries analyze's bound;
    a family without --values searches its grid at n (window: W = 1, 2, .., 64)."""
    ranks = {s: analyze(Pattern.from_spec(s), 64, rank=True) for s in ("ssm", "fenwick")}
    assert ranks["ssm"]["hankel_rank_max"] == 1 < 3 <= ranks["fenwick"]["hankel_rank_max"]
    assert ranks["fenwick"]["hankel_rank_error_bound"] > 0
    code, out, _ = run(capsys, "search", "ssm", "fenwick", "--n", "64", "--min-rank", "3", "--rank-method", "flow",
                       "--json")
    data = json.loads(out)
    assert code == 0 and [r["spec"] for r in data["matches"]] == ["fenwick"]
    assert [r["spec"] for r in data["rejected"]] == ["ssm"]
    assert data["matches"][0]["hankel_rank_error_bound"] == 0
    code, out, _ = run(capsys, "search", "fenwick", "--n", "64", "--min-rank", "3", "--json")
    assert json.loads(out)["matches"][0]["hankel_rank_error_bound"] == ranks["fenwick"]["hankel_rank_error_bound"]
    code, out, _ = run(capsys, "search", "--n", "64", "--family", "window", "--json")
    data = json.loads(out)
    assert sorted(r["spec"] for r in data["matches"]) == sorted(f"window:{2 ** k}" for k in range(7))


# --- glr catalog -----------------------------------------------------------------------------------------------

def test_catalog_text_in_full(capsys):
    """Every row's cells (two spaces or more apart, left-aligned, no trailing space) from catalog.registry.table,
    with copies as `` xC`` and operator entries as ``(op)``; the header and both footers."""
    rows = catalog_table(64)
    code, out, _ = run(capsys, "catalog", "--n", "64")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == ("n = 64; decode = max_t |A(t)|+|B(t)|, cache = peak live states, total = nnz_a + nnz_b "
                        "(glrtheory.analysis); growth classes from glrtheory.symbolic.costs")
    assert lines[-3:] == ["(op): operator-valued B, a K x K matrix on the key dimension (each B-term costs K "
                          "state-sized multiply-adds)", "",
                          f"{len(INEXPRESSIBLE)} architectures the scalar framework cannot express: "
                          "glr catalog --inexpressible"]
    table = lines[1:-3]
    assert len(table) == len(rows) + 1 and not any(x.endswith(" ") for x in table)
    assert re.split(r"\s{2,}", table[0]) == ["name", "pattern", "state", "data in", "decode@n", "decode", "cache@n",
                                            "cache", "total@n", "total"]
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", table[0])]
    for r, line in zip(rows, table[1:]):
        name = r["name"] + (" (op)" if r["coefficients"] == "operator" else "")
        example = r["example"] + (f" x{r['copies']}" if r["copies"] != 1 else "")
        assert re.split(r"\s{2,}", line) == [name, example, r["state"], r["data_in"], str(r["decode_max"]),
                                             r["theta_decode"], str(r["cache_peak"]), r["theta_cache"],
                                             str(r["total"]), r["theta_total"]]
        assert all(line[s - 2:s] == "  " and line[s] != " " for s in starts)
    code, out, _ = run(capsys, "catalog", "--inexpressible", "--json")
    assert json.loads(out) == [{"name": x.name, "reason": x.reason} for x in INEXPRESSIBLE]
    code, out, _ = run(capsys, "catalog", "--inexpressible")
    assert out == "".join(f"{x.name}\n    {x.reason}\n" for x in INEXPRESSIBLE)


def test_catalog_copies_of_two(capsys):
    """log-linear attention at n = 2 keeps levels(2) = 2 copies of ssm: shown as ``ssm x2``."""
    from glrtheory.catalog import levels

    assert levels(2) == 2
    code, out, _ = run(capsys, "catalog", "--n", "2")
    line = next(x for x in out.splitlines() if x.startswith("log_linear_attention"))
    assert re.split(r"\s{2,}", line)[1] == "ssm x2"


# --- glr compare: the table and the figure ----------------------------------------------------------------------

RULE_CHAIN = ("from glrtheory import Pattern\n"
              "pattern = Pattern.from_rule(None, lambda t: ((t - 1)[:, None], (t > 0)[:, None]), spec='chain')\n")


def test_compare_table_alignment_and_fitted_classes(capsys, tmp_path):
    """The spec column is left-aligned, the others right-aligned, under a rule of dashes two spaces apart; a user
    rule's classes are fitted (theta_basis 'fitted, ...') and read ``~class``, the built-ins' are proved."""
    path = tmp_path / "chain.py"
    path.write_text(RULE_CHAIN)
    code, out, _ = run(capsys, "compare", "ssm", f"{path}:pattern", "--n", "64")
    lines = out.splitlines()
    chain = Pattern.from_rule(None, lambda t: ((t - 1)[:, None], (t > 0)[:, None]), spec="chain")
    r = analyze(chain, 64)
    assert r["theta_basis"].startswith("fitted") and (r["theta_total"], r["theta_cache"]) == ("n", "1")
    assert code == 0 and lines == [
        "spec   decode max  decode mean  total cost  cache  depth  hops  Theta(total)  Theta(cache)",
        "-----  ----------  -----------  ----------  -----  -----  ----  ------------  ------------",
        "ssm             2        1.984         127      1     63    63             n             1",
        "chain           2        1.984         127      1     63    63            ~n            ~1",
    ]


def test_compare_table_with_ranks(capsys):
    """``--rank`` adds the rank and its error bound (0: certain) before the classes. At n = 16: ssm reads
    |A(t)| + |B(t)| = 2 (31 entries, mean 31/16), power2 up to 1 + 4 at t = 15 (16 + 49 entries: floor(log2 t) + 1
    B-lags at t), keeping 8 states; ranks from analyze."""
    ranks = [analyze(Pattern.from_spec(s), 16, rank=True)["hankel_rank_max"] for s in ("ssm", "power2")]
    assert ranks == [1, 8]
    code, out, _ = run(capsys, "compare", "ssm", "power2", "--n", "16", "--rank")
    assert code == 0 and out.splitlines() == [
        "spec    decode max  decode mean  total cost  cache  depth  hops  rank  P(rank low) <=  Theta(total)  "
        "Theta(cache)",
        "------  ----------  -----------  ----------  -----  -----  ----  ----  --------------  ------------  "
        "------------",
        "ssm              2        1.938          31      1     15    15     1               0             n  "
        "           1",
        "power2           5        4.062          65      8     15     4     8               0      n*log(n)  "
        "           n"]


def test_compare_figure_of_zero_counts_warns_of_nothing(capsys, figures):
    """At n = 1 every cache and depth is 0: the figure is drawn without matplotlib's warning that a log axis has no
    positive values (the y axes are symmetric-log, linear below 1), and the zeros are on it, on axes from 0 to at
    least 1 (autoscaling all zeros had drawn 0 to 0.055)."""
    code, out, err = run(capsys, "compare", "ssm", "power2", "--n", "1", "--plot", "c.png")
    assert code == 0 and err == "" and out.splitlines()[-1] == "wrote c.png"
    cache = figures[-1][0].axes[1]
    assert [list(line.get_ydata()) for line in cache.get_lines()] == [[0], [0]] and cache.get_ylim() == (0, 1)


def test_compare_figure_data(capsys, figures, monkeypatch):
    """The three panels of ``compare --plot`` at n = 256: total cost and cache peak at n = 16, 32, .., 256 from
    the analysis functions, the rank up to PLOT_RANK_MAX_N = 128 without --rank and up to n with it, each series
    labelled with its spec; a rank over a limit (of the method asked for) ends its series there."""

    specs = ("ssm", "power2")
    code, out, _ = run(capsys, "compare", *specs, "--n", "256", "--plot", "c.png")
    assert code == 0 and out.splitlines()[-1] == "wrote c.png"
    fig, path = figures[-1]
    ns = [16, 32, 64, 128, 256]
    assert path == "c.png" and tuple(fig.get_size_inches()) == (15, 4) and len(fig.axes) == 3
    assert fig.axes[0].get_position().x1 < fig.axes[1].get_position().x0 < fig.axes[2].get_position().x0
    titles = ["total cost nnz_a + nnz_b", "cache peak",
              "generic Hankel rank (exact; n <= 128, within limits)"]
    for ax, title in zip(fig.axes, titles):
        assert ax.get_title() == title and ax.get_xlabel() == "n"
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "symlog") and ax.xaxis.get_transform().base == 2
        assert ax.yaxis.get_transform().linthresh == 1 and ax.get_ylim()[0] == 0 < ax.get_ylim()[1]
        assert [line.get_label() for line in ax.get_lines()] == list(specs)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == list(specs)
        assert all(line.get_marker() == "o" and line.get_linestyle() == "-" for line in ax.get_lines())
    for k, spec in enumerate(specs):
        p = Pattern.from_spec(spec)
        assert list(fig.axes[0].get_lines()[k].get_xdata()) == ns
        assert list(fig.axes[0].get_lines()[k].get_ydata()) == [total_cost(p, n) for n in ns]
        assert list(fig.axes[1].get_lines()[k].get_xdata()) == ns
        assert list(fig.axes[1].get_lines()[k].get_ydata()) == [cache_peak(p, n) for n in ns]
        assert list(fig.axes[2].get_lines()[k].get_xdata()) == ns[:4]
        assert list(fig.axes[2].get_lines()[k].get_ydata()) == [
            analyze(p, n, rank=True)["hankel_rank_max"] for n in ns[:4]]
    run(capsys, "compare", "ssm", "--n", "256", "--plot", "c.png", "--rank")
    rank_ax = figures[-1][0].axes[2]
    assert rank_ax.get_title() == "generic Hankel rank (exact; n <= 256, within limits)"
    assert list(rank_ax.get_lines()[0].get_xdata()) == ns
    run(capsys, "compare", "ssm", "--n", "16", "--plot", "c.png")
    assert [list(ax.get_lines()[0].get_xdata()) for ax in figures[-1][0].axes] == [[16]] * 3
    from glrtheory.analysis import _rank_flow, clear_caches

    monkeypatch.setattr(_rank_flow, "FLOW_RANK_MAX_WORK", _rank_flow._flow_work(Pattern.from_spec("ssm"), 32))
    clear_caches()
    code, out, _ = run(capsys, "compare", "ssm", "--n", "64", "--plot", "c.png", "--rank-method", "flow")
    assert list(figures[-1][0].axes[2].get_lines()[0].get_xdata()) == [16, 32]    # the exact rank has no such limit
    assert out.splitlines()[-2].startswith("rank series of 'ssm' ends at n=32: the max-flow Hankel rank of 'ssm' at "
                                           "n=64 needs ")
    clear_caches()


def test_compare_table_and_plot_share_the_rank_budget(capsys, figures, monkeypatch):
    """The table's ranks and the plot's rank series of one compare share RANKS_MAX_WORK: with room for the table's
    ranks (n = 128) and ssm's series (16..64) alone, power2's series is empty, with a note naming the limit; the rank
    at n is the table's, never computed again. A step less and ssm's series ends at n=32. A table rank skipped ends
    its series one length before, with the table's reason."""
    from glrtheory.analysis import clear_caches, hankel, hankel_rank_max
    from glrtheory.analysis.limits import WorkBudget

    def work(spec, ns, method="exact"):
        clear_caches()
        room = WorkBudget(2**62, "unlimited")
        for n in ns:
            hankel_rank_max(Pattern.from_spec(spec), n, method, budget=room)
        return room.spent

    import glrtheory.cli.analysis as cli

    asked, real = [], cli.rank_series
    monkeypatch.setattr(cli, "rank_series", lambda p, ns, *args, **kw: asked.append(ns) or real(p, ns, *args, **kw))
    table, series = work("ssm", [128]) + work("power2", [128]), work("ssm", [16, 32, 64])
    for limit, ssm_ns in [(table + series, [16, 32, 64, 128]), (table + series - 1, [16, 32])]:
        monkeypatch.setitem(hankel.RANKS_MAX_WORK, "exact", limit)
        clear_caches()
        code, out, _ = run(capsys, "compare", "ssm", "power2", "--n", "128", "--rank", "--plot", "c.png")
        lines = out.splitlines()
        assert code == 0 and [line.split()[7] for line in lines[2:4]] == ["1", "64"]        # the table's ranks
        rank_ax = figures[-1][0].axes[2]
        assert [list(line.get_xdata()) for line in rank_ax.get_lines()] == [ssm_ns, []]
        assert lines[-2].startswith("rank series of 'power2' is empty: the exact Hankel rank of 'power2' at n=16 "
                                    "needs more than the ")
        assert lines[-2].endswith(f"of the compare's rank work limit RANKS_MAX_WORK['exact'] = {limit}; rank it "
                                  "alone (glr analyze --rank --rank-method exact) or compare fewer patterns")
        assert (lines[-3].startswith("rank series of 'ssm' ends at n=32") if len(ssm_ns) == 2
                else not lines[-3].startswith("rank series"))
        assert asked == [[16, 32, 64]] * 2        # the rank at n = 128 is the table's, never computed again
        asked.clear()
    # the flow pays a rank's whole work before it runs: room for ssm's table rank and both series below n, not for
    # power2's table rank, whose series ends at n = 64 with the table's reason (that rank is not tried twice)
    flow = {s: (work(s, [128], "flow"), work(s, [16, 32, 64], "flow")) for s in ("ssm", "power2")}
    limit = flow["ssm"][0] + flow["ssm"][1] + flow["power2"][1]
    assert flow["power2"][0] > limit - flow["ssm"][0]
    monkeypatch.setitem(hankel.RANKS_MAX_WORK, "flow", limit)
    clear_caches()
    code, out, _ = run(capsys, "compare", "ssm", "power2", "--n", "128", "--rank", "--rank-method", "flow", "--plot",
                       "c.png")
    lines = out.splitlines()
    assert [line.split()[7] for line in lines[2:4]] == ["1", "skipped"]
    assert [list(line.get_xdata()) for line in figures[-1][0].axes[2].get_lines()] == [[16, 32, 64, 128],
                                                                                     [16, 32, 64]]
    skip = lines[4].removeprefix("skipped power2 hankel_rank_max: ")
    assert skip.startswith("the max-flow Hankel rank of 'power2' at n=128 needs more than the ")
    assert lines[-2] == f"rank series of 'power2' ends at n=64: {skip}"
    clear_caches()


def test_compare_total_cost_is_skipped_with_either_count(capsys, monkeypatch):
    """The table's total cost is nnz_a + nnz_b, skipped (with that count's reason) when either count is."""
    import glrtheory.cli.analysis as cli

    rows = cli.compare([Pattern.from_spec("ssm")], 16)
    for key in ("nnz_a", "nnz_b"):
        row = {**rows[0], key: None, "skipped": {key: f"{key} over the limit"}}
        monkeypatch.setattr(cli, "compare", lambda *args, **kwargs: [dict(row, skipped=dict(row["skipped"]))])
        code, out, _ = run(capsys, "compare", "ssm", "--n", "16")
        lines = out.splitlines()
        assert code == 0 and re.split(r"\s{2,}", lines[2])[3] == "skipped"
        assert lines[0].split("  ")[0:1] == ["spec"] and "total cost" in lines[0]
        assert lines[-1] == f"skipped ssm {key}, total_cost: {key} over the limit"


# --- glr lti -----------------------------------------------------------------------------------------------------

def lti_json(capsys, *argv) -> dict:
    code, out, _ = run(capsys, "lti", *argv, "--json")
    assert code == 0
    return json.loads(out)


@pytest.mark.parametrize("argv, message", [
    (["lags:1,2", "--coef", "1=0.5", "--coef", "1=0.2"], "--coef gives b_1 twice"),
    (["window:2", "--coef", "a0=0.5", "--coef", "a0=0.2"], "--coef gives a_0 twice"),
    (["lags:1,2", "--coef", "rest=0", "--coef", "rest=1"], "--coef gives rest= twice"),
    (["window:2", "--coef", "arest=0", "--coef", "arest=1"], "--coef gives arest= twice"),
    (["lags:1,2", "--coef", "all=0", "--coef", "rest=1"],
     "--coef all= sets every B-lag; give single lags with rest= instead"),
    (["window:2", "--coef", "aall=0", "--coef", "a0=1"],
     "--coef aall= sets every A-lag; give single lags with arest= instead"),
    (["lags:1", "--coef", "1=z"], "--coef '1=z': 'z' is not a finite number or a symbol name"),
    (["lags:1", "--coef", "1=2b"], "--coef '1=2b': '2b' is not a finite number or a symbol name"),
    (["lags:1", "--coef", "1=inf"], "--coef '1=inf': 'inf' is not a finite number or a symbol name"),
    (["lags:1", "--coef", "one=1"], "--coef expects l=VALUE, all=VALUE, rest=VALUE or aj=VALUE, got 'one=1'"),
    (["power2", "--n", "9", "--coef", "1=0.5", "--coef", "4=0"],
     "power2 at n=9 has B-lags [1, 2, 4, 8]; no --coef for B-lag(s) 2, 8 (give --coef 2=VALUE, rest=0, all=VALUE, "
     "or a smaller --n)"),
    (["window:3", "--coef", "a2=0.5"],
     "window:3 at n=64 has A-lags [0, 1, 2]; no --coef for A-lag(s) 1 (give --coef a1=VALUE, arest=0, aall=VALUE, "
     "or a smaller --n)"),
    (["lags:1,2", "--coef", "1=b1", "--coef", "2=b2", "--freq"],
     "--freq and --plot need numbers for every coefficient, not symbols"),
    (["lags:1", "--coef", "1=b", "--plot", "x.png"],
     "--freq and --plot need numbers for every coefficient, not symbols"),
    (["lags:1", "--coef", "1=0.5", "--eps", "0"], "--eps must lie in (0, 1), got 0.0"),
    (["lags:1,7", "--coef", "1=b1", "--coef", "7=b2"],
     "the stability region of 2 symbols is limited to B-order <= 6, got 7; use one shared symbol (--coef all=b) "
     "for a scan"),
])
def test_lti_refusals_in_full(capsys, argv, message):
    assert refused(capsys, "lti", *argv) == message


def test_lti_coefficients_as_printed(capsys):
    """2^54 is a float, not an exact integer (exact up to 2^53); spaces around ``=`` and around a number or a
    symbol are allowed; the A-side's direct coefficient defaults to 1 with arest= filling the rest."""
    code, out, _ = run(capsys, "lti", "lags:1", "--coef", "1=18014398509481984")
    assert code == 0 and "H(z)             1/(1 - 1.8014398509482e+16*z**-1)" in out.splitlines()
    assert lti_json(capsys, "lags:1", "--coef", " 1 = 0.5 ")["transfer_function"] == "1/(1 - 0.5*z**-1)"
    assert lti_json(capsys, "lags:1", "--coef", "1 = b ")["transfer_function"] == "1/(1 - b*z**-1)"
    assert lti_json(capsys, "window:3", "--coef", "arest=2")["transfer_function"] == "1 + 2*z**-1 + 2*z**-2"
    assert lti_json(capsys, "window:3", "--coef", "a0=3", "--coef", "arest=2")["impulse_response"][:4] == [3, 2, 2, 0]


def test_lti_poles_dense_up_to_the_limit_then_the_dominant_six(capsys, monkeypatch):
    """With the dense limit lowered to order 20 (and the sparse route from 21), order 20 reports all 20 poles and
    order 21 the 6 of largest modulus, each a root of z^K - 0.5 z^(K-1) - 0.1 (numpy's roots as reference)."""
    import numpy as np

    import glrtheory.symbolic.lti_poles as poles
    import glrtheory.symbolic.lti_stability as stability

    monkeypatch.setattr(poles, "DENSE_EIG_MAX_ORDER", 20)
    monkeypatch.setattr(stability, "DENSE_EIG_MAX_ORDER", 20)
    monkeypatch.setattr(poles, "SPARSE_FROM_ORDER", 21)
    for K, count in ((20, 20), (21, 6)):
        data = lti_json(capsys, f"lags:1,{K}", "--coef", "1=0.5", "--coef", f"{K}=0.1")
        got = np.array([complex(*p) for p in data["poles"]])
        den = np.zeros(K + 1)
        den[[0, 1, K]] = [1, -0.5, -0.1]
        ref = np.roots(den)
        assert got.size == count and np.abs(np.polyval(den, got)).max() < 1e-10, K
        assert np.allclose(np.sort(np.abs(got))[::-1], np.sort(np.abs(ref))[::-1][:count], rtol=1e-9), K


def test_lti_non_finite_values_are_null_and_named(capsys):
    """An impulse response past the float range is null in JSON (``inf`` in text); a pole on the unit circle
    (b_1 = 1: H(1) is infinite) gives a null magnitude and phase at omega = 0 and its own text line."""
    data = lti_json(capsys, "lags:1", "--coef", "1=1e308")
    assert data["impulse_response"][:3] == [1.0, 1e308, None]
    data = lti_json(capsys, "lags:1", "--coef", "1=1", "--freq", "2")
    f = data["frequency_response"]
    assert f["omega"][0] == 0 and f["magnitude"][0] is None and f["phase"][0] is None
    assert f["magnitude"][1] == pytest.approx(2 ** -0.5) and f["phase"][1] == pytest.approx(-0.25 * 3.141592653589793)
    code, out, _ = run(capsys, "lti", "lags:1", "--coef", "1=1", "--freq", "2")
    lines = out.splitlines()
    assert lines[-3:] == ["omega/pi   |H|          |H| dB     phase/pi", "0          inf (a pole on the unit circle)",
                          "0.5        0.707107     -3.01      -0.25"]
    code, out, _ = run(capsys, "lti", "lags:1", "--coef", "1=1e308")
    assert "impulse response 1, 1e+308, inf, inf," in out


def test_lti_symbolic_text_and_json(capsys):
    """Symbols: no B-lags at all (window:2 with a symbol a_1: stable, region True); one symbol past the
    Schur-Cohn order (power2 at n = 64, order 32): no region (null), the scan's range as stable_range.describe()."""
    import sympy as sp

    from glrtheory.symbolic.lti import LTISystem
    from glrtheory.symbolic.lti_scan import stable_range

    assert lti_json(capsys, "window:2", "--coef", "a1=g") == {
        "transfer_function": "1 + g*z**-1", "symbols": ["g"], "stability_region": "True", "stable_range": None}
    data = lti_json(capsys, "power2", "--coef", "all=b")
    assert data["stability_region"] is None and data["stable_range"]["intervals"] == [[-0.333, 0.166]]
    b = sp.Symbol("b", real=True)
    rng = stable_range(LTISystem.from_pattern("power2", n=64, b=b), lo=-2, hi=2, step=1e-3)
    code, out, _ = run(capsys, "lti", "power2", "--coef", "all=b")
    assert code == 0 and out.splitlines() == [
        "pattern          power2 at n=64: A-lags [0], B-lags [1, 2, 4, 8, 16, 32]",
        "H(z)             1/(1 - b*z**-1 - b*z**-2 - b*z**-4 - b*z**-8 - b*z**-16 - b*z**-32)",
        "stable iff       no closed form at this order (see the scan)",
        f"stable range     {rng.describe()}"]
    code, out, _ = run(capsys, "lti", "lags:1,2", "--coef", "1=b1", "--coef", "2=b2")
    assert code == 0 and out.splitlines()[2:] == ["stable iff       (Abs(b2) < 1) & (Abs(b1/(b2 - 1)) < 1)"]


def test_lti_figure(capsys, figures):
    """``--plot``: the pole-zero map and the first 64 impulse-response values (11 x 4.5 inches); with ``--freq``
    a second row draws |H| and the phase at max(POINTS, 512) frequencies omega = pi k / POINTS (11 x 8)."""
    import numpy as np

    code, out, _ = run(capsys, "lti", "lags:1", "--coef", "1=0.9", "--plot", "l.png")
    assert code == 0 and out.splitlines()[-1] == "wrote l.png"
    fig, path = figures[-1]
    assert path == "l.png" and tuple(fig.get_size_inches()) == (11, 4.5) and len(fig.axes) == 2
    heads = fig.axes[1].containers[0].markerline.get_ydata()
    assert np.allclose(heads, 0.9 ** np.arange(64), rtol=1e-12)
    for argv, points in (([], 512), (["600"], 600)):
        code, out, _ = run(capsys, "lti", "lags:1", "--coef", "1=0.9", "--freq", *argv, "--plot", "l.png")
        fig = figures[-1][0]
        assert code == 0 and tuple(fig.get_size_inches()) == (11, 8) and len(fig.axes) == 4
        magnitude = fig.axes[2].get_lines()[0]
        assert np.allclose(magnitude.get_xdata(), np.arange(points) / points, rtol=0, atol=1e-15)
        assert magnitude.get_ydata()[0] == pytest.approx(20.0)            # |H(1)| = 1 / (1 - 0.9) = 10
    text = run(capsys, "lti", "lags:1", "--coef", "1=0.9", "--freq")[1].splitlines()
    assert text[-17] == "omega/pi   |H|          |H| dB     phase/pi" and text[-16].startswith("0          10 ")
    assert text[-1].startswith("0.9375 ")                                 # 16 frequencies: 15/16


def test_analyze_figure_and_text(capsys, figures):
    """``analyze --plot``: one panel per series (decode cost and live set per step, and with --rank the rank per
    cut), each drawn against its index from the analysis functions and titled with the spec; the text report
    prints every key in one column, the skipped notes, then ``wrote FILE``."""
    import numpy as np

    from glrtheory.analysis import decode_costs, hankel_profile, live_profile

    p = Pattern.from_spec("power2")
    code, out, _ = run(capsys, "analyze", "power2", "--n", "32", "--rank", "--rank-method", "flow", "--plot", "a.png")
    fig, path = figures[-1]
    assert code == 0 and path == "a.png" and tuple(fig.get_size_inches()) == (15, 4) and len(fig.axes) == 3
    series = [(decode_costs(p, 32), "decode cost |A(t)|+|B(t)|", "t"),
              (live_profile(p, 32), "live set after step t", "t"),
              (hankel_profile(p, 32, "flow"), "generic Hankel rank at cut t", "cut t")]
    for ax, (y, title, xlabel) in zip(fig.axes, series):
        line, = ax.get_lines()
        assert list(line.get_xdata()) == list(range(len(y))) and np.array_equal(line.get_ydata(), y)
        assert (ax.get_title(), ax.get_xlabel()) == (f"power2: {title}", xlabel)
    report = analyze(p, 32, rank=True, rank_method="flow")
    width = max(map(len, report))
    lines = out.splitlines()
    assert lines[-1] == "wrote a.png" and len(lines) == len(report) + 1
    assert lines[0] == f"{'spec':<{width}}  power2" and f"{'hankel_rank_method':<{width}}  flow" in lines
    code, out, _ = run(capsys, "analyze", "power2", "--n", "32", "--plot", "a.png")
    assert tuple(figures[-1][0].get_size_inches()) == (10, 4) and len(figures[-1][0].axes) == 2


def test_analyze_figure_leaves_out_what_is_skipped_and_notes_what_fails(capsys, figures, monkeypatch):
    """A quantity the report skips has no panel and no note (attention's rank at n = 6000; a union over the table
    limit, whose every series is skipped); a series that fails to draw is noted, one line each; the rank panel
    uses the method asked for."""
    import glrtheory.analysis as an
    import glrtheory.cli.analysis as cli
    import glrtheory.patterns.support as support

    code, out, _ = run(capsys, "analyze", "attention", "--n", "6000", "--rank", "--plot", "a.png")
    fig = figures[-1][0]
    assert code == 0 and [ax.get_title() for ax in fig.axes] == ["attention: decode cost |A(t)|+|B(t)|",
                                                                  "attention: live set after step t"]
    assert not any(x.startswith("plot panel") for x in out.splitlines()) and out.endswith("wrote a.png\n")
    report = analyze(Pattern.from_spec("attention"), 6000, rank=True)
    keys = [x.split()[0] for x in out.splitlines() if not x.startswith(("skipped attention ", "wrote "))]
    assert keys == [k for k in report if k != "skipped"]
    limit = support.MAX_TABLE_ENTRIES
    monkeypatch.setattr(support, "MAX_TABLE_ENTRIES", 2000)
    an.clear_caches()
    code, out, _ = run(capsys, "analyze", "blocks+ssm", "--n", "256", "--plot", "a.png")
    monkeypatch.setattr(support, "MAX_TABLE_ENTRIES", limit)
    an.clear_caches()
    assert code == 0 and not any(x.startswith("plot panel") for x in out.splitlines())
    assert out.endswith("\na.png not written: every series is over a limit (skipped)\n")
    methods = []

    def failing(name):
        def fail(p, n, *method):
            methods.extend(method)
            raise GLRError(f"{name} failed")
        return fail

    monkeypatch.setattr(cli, "live_profile", failing("live"))
    monkeypatch.setattr(cli, "hankel_profile", failing("rank"))
    code, out, _ = run(capsys, "analyze", "power2", "--n", "32", "--rank", "--rank-method", "flow", "--plot",
                       "a.png")
    assert code == 0 and out.splitlines()[-3:] == ["plot panel 'live set after step t' not drawn: live failed",
                                                   "plot panel 'generic Hankel rank at cut t' not drawn: rank failed",
                                                   "wrote a.png"]
    assert methods == ["flow"] and len(figures[-1][0].axes) == 1


def test_lti_text_report_worked_by_hand(capsys):
    """h_t = 0.5^t (ssm, b_1 = 0.5): one pole 0.5, stable, last |h_t| >= 1e-3 at t = 9 (horizon 10), the first 16
    values; b_2 = -1 puts the poles +-i on the circle (not stable, no horizon); H = 1 - z^-1 vanishes at omega = 0
    (-inf dB, phase 0); JSON is indented by two spaces."""
    code, out, _ = run(capsys, "lti", "ssm", "--coef", "1=0.5")
    head = ", ".join(f"{0.5 ** t:.6g}" for t in range(16))
    assert code == 0 and out.splitlines() == [
        "pattern          ssm at n=64: A-lags [0], B-lags [1]", "H(z)             1/(1 - 0.5*z**-1)",
        "poles (1)        0.5+0j", "spectral radius  0.5", "stable           yes",
        "memory horizon   10 steps (eps=0.001)", f"impulse response {head} ..."]
    assert head.startswith("1, 0.5, 0.25, 0.125, 0.0625, 0.03125, ") and head.endswith(", 3.05176e-05")
    code, out, _ = run(capsys, "lti", "lags:2", "--coef", "2=-1")
    assert out.splitlines()[2:6] == ["poles (2)        0+1j, 0-1j", "spectral radius  1", "stable           no",
                                     "memory horizon   infinite steps (eps=0.001)"]
    code, out, _ = run(capsys, "lti", "window:2", "--coef", "a1=-1", "--freq", "2")
    assert out.splitlines()[-2:] == ["0          0            -inf       0", "0.5        1.41421      3.01       0.25"]
    code, out, _ = run(capsys, "patterns", "--json")
    assert out.splitlines()[:3] == ["[", "  {", '    "family": "ssm",']


@pytest.mark.parametrize("order, more", [(16, False), (17, True)])
def test_lti_text_lists_at_most_16_poles(capsys, order, more):
    """A filter of order K has K poles; the text lists 16 of them and ends with `` ...`` when K > 16."""
    code, out, _ = run(capsys, "lti", f"lags:1,{order}", "--coef", "1=0.5", "--coef", f"{order}=0.1")
    line = out.splitlines()[2]
    assert code == 0 and line.startswith(f"poles ({order})        ") and line.count(",") == 15
    assert line.endswith(" ...") is more
