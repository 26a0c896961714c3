"""``benchmarks/kernel_mutants.py``: the one-token mutants of a hand-written Triton kernel, named and counted by
hand, each applied by ``gpu_mutants.apply`` to exactly its named line, repeated lines included."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gpu_mutants import apply, run  # noqa: E402
from kernel_mutants import main, mutants  # noqa: E402

SOURCE = '''import triton
import triton.language as tl


def plain(x):
    return x + 1


@triton.jit
def k(p, n, B: tl.constexpr):
    i = tl.arange(0, B)
    m = i < n
    x = tl.load(p + i, mask=m, other=0.0)
    x += 2 * x
    x += 2 * x
    tl.store(p + i, x, mask=m)
    if B > 4 and n >= 1:
        x = x
'''

#: line: [(column, old, new)], read off SOURCE by hand.
EXPECTED = {
    11: [(18, "0", "1")],
    12: [(10, "<", "<=")],
    13: [(18, "+", "-"), (23, "mask=m", "mask=None"), (31, "other=0.0", "other=None"), (37, "0.0", "1.0")],
    14: [(6, "+=", "-="), (9, "2", "3"), (11, "*", "/")],
    15: [(6, "+=", "-="), (9, "2", "3"), (11, "*", "/")],
    16: [(15, "+", "-"), (23, "mask=m", "mask=None")],
    17: [(9, ">", ">="), (11, "4", "5"), (13, "and", "or"), (19, ">=", ">"), (22, "1", "2")],
}


def test_every_mutant_of_the_jit_function_and_no_other():
    names = [name for name, _ in mutants(SOURCE)]
    want = [f"k:{line}:{col} {old}->{new}" for line, edits in EXPECTED.items() for col, old, new in edits]
    assert names == want                                                # plain() is not mutated


@pytest.mark.parametrize("index", range(sum(map(len, EXPECTED.values()))))
def test_each_diff_changes_its_named_line_only(index):
    name, diff = mutants(SOURCE)[index]
    line, col, old, new = (lambda where, edit: (int(where.split(":")[1]), int(where.split(":")[2]),
                                                *edit.split("->")))(*name.split(" "))
    lines = SOURCE.split("\n")
    assert lines[line - 1][col:col + len(old)] == old
    want = lines[:line - 1] + [lines[line - 1][:col] + new + lines[line - 1][col + len(old):]] + lines[line:]
    assert apply(diff, SOURCE).split("\n") == want


def test_main_writes_a_seeded_sample(tmp_path):
    src = tmp_path / "k.py"
    src.write_text(SOURCE)
    assert main([str(src), "--out", str(tmp_path / "all")]) == 0
    assert main([str(src), "--out", str(tmp_path / "some"), "--sample", "5", "--seed", "3"]) == 0
    every = (tmp_path / "all" / "index.txt").read_text().splitlines()
    some = (tmp_path / "some" / "index.txt").read_text().splitlines()
    assert len(every) == 19 and len(some) == 5 and [s.split(" ")[0] for s in some] == ["1", "2", "3", "4", "5"]
    diffs = {e.split(" ", 1)[1]: (tmp_path / "all" / f"{e.split(' ')[0]}.diff").read_text() for e in every}
    for s in some:
        n, name = s.split(" ", 1)
        assert (tmp_path / "some" / f"{n}.diff").read_text() == diffs[name]


def test_main_skips_an_earlier_runs_mutants(tmp_path):
    """``--skip``: the mutants an earlier run's index names are left out before the sample is drawn, so the two
    runs share none, and together with the rest they are every mutant."""
    src = tmp_path / "k.py"
    src.write_text(SOURCE)
    assert main([str(src), "--out", str(tmp_path / "first"), "--sample", "7", "--seed", "1"]) == 0
    assert main([str(src), "--out", str(tmp_path / "rest"), "--skip", str(tmp_path / "first" / "index.txt")]) == 0
    assert main([str(src), "--out", str(tmp_path / "more"), "--sample", "4", "--seed", "1", "--skip",
                 str(tmp_path / "first" / "index.txt")]) == 0
    names = {run: [line.split(" ", 1)[1] for line in (tmp_path / run / "index.txt").read_text().splitlines()]
             for run in ("first", "rest", "more")}
    assert len(names["first"]) == 7 and len(names["rest"]) == 12 and len(names["more"]) == 4
    assert sorted(names["first"] + names["rest"]) == sorted(name for name, _ in mutants(SOURCE))
    assert set(names["more"]) <= set(names["rest"])


def test_a_run_names_the_trees_paths_relative_to_it(tmp_path):
    """``gpu_mutants.run`` on a tree whose one test fails naming a file of the tree by its full path: killed, and the
    row's tail names it relative to the tree (no path of the machine goes into a committed row)."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_one.py").write_text(
        f"def test_fails():\n    raise AssertionError('at {tmp_path.resolve()}/.venv/lib/x.py')\n")
    row = run(tmp_path, "none", "tests/test_one.py", None, ["tests/test_one.py"], timeout=120)
    assert row["verdict"] == "killed" and "at .venv/lib/x.py" in row["tail"]
    assert str(tmp_path.resolve()) not in row["tail"]


def test_a_run_goes_through_its_wrapper_with_the_copy_first_on_the_path(tmp_path, monkeypatch):
    """``run(..., wrap=...)`` starts pytest through the wrapper command (here ``env`` setting a variable the test
    wants: killed without it), imports a package from the copy before the caller's PYTHONPATH, and still finds a
    module that only the caller's entries hold (a plugin such as ``benchmarks/sanitize_plugin.py``)."""
    tree, extra = tmp_path / "tree", tmp_path / "extra"
    for folder in (tree / "tests", tree / "kernels", extra / "kernels"):
        folder.mkdir(parents=True)
    (tree / "tests" / "test_one.py").write_text(
        "import os, kernels, plugin_only\n"
        "def test_wrapped():\n    assert os.environ.get('WRAPPED') == '1' and kernels.WHERE == 'copy'\n")
    (tree / "kernels" / "__init__.py").write_text("WHERE = 'copy'\n")
    (extra / "kernels" / "__init__.py").write_text("WHERE = 'caller'\n")
    (extra / "plugin_only.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(extra))
    monkeypatch.delenv("WRAPPED", raising=False)
    selection, wrap = ["tests/test_one.py"], ("env", "WRAPPED=1")
    assert run(tree, "none", "kernels/__init__.py", None, selection, timeout=120, wrap=wrap)["verdict"] == "survived"
    assert run(tree, "none", "kernels/__init__.py", None, selection, timeout=120)["verdict"] == "killed"
