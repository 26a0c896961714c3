"""`glr patterns` and `glr show`, and the one-line error contract of the `glr` command."""
import json
import shutil
import subprocess
import sys

import pytest

from glrtheory import Pattern
from helpers import run_cli as run
from glrtheory.patterns import FAMILIES


def test_patterns_lists_every_family(capsys):
    code, out, _ = run(capsys, "patterns")
    assert code == 0 and len(out.splitlines()) == len(FAMILIES)
    code, out, _ = run(capsys, "patterns", "--json")
    assert [row["family"] for row in json.loads(out)] == list(FAMILIES)


def test_show_text_grid_matches_the_supports(capsys):
    code, out, _ = run(capsys, "show", "fenwick", "--n", "9")
    assert code == 0
    rows = out.splitlines()[1:]
    a_sets, b_sets = Pattern.from_spec("fenwick").sets(9)
    for t, line in enumerate(rows):
        _, a_row, b_row = line.split(None, 2) if t else (*line.split(None, 1), "")
        assert [s for s, c in enumerate(a_row) if c == "a"] == a_sets[t]
        assert [s for s, c in enumerate(b_row) if c == "b"] == b_sets[t]


def test_show_json_and_plot(capsys, tmp_path):
    code, out, _ = run(capsys, "show", "window:2+power2", "--n", "12", "--json")
    data = json.loads(out)
    assert code == 0 and data["spec"] == "window:2+power2" and data["n"] == 12
    assert (data["A"], data["B"]) == tuple(Pattern.from_spec("window:2+power2").sets(12))
    png = tmp_path / "p.png"
    code, out, _ = run(capsys, "show", "quadratic", "--n", "64", "--plot", str(png))
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["show", "lags:0"], "must be >= 1"),
    (["show", "nosuch"], "unknown pattern family"),
    (["show", "ssm", "--n", "0"], "positive integer"),
    (["show", "ssm", "--n", "x"], "positive integer"),
    (["show", "ssm", "--n", "100000"], "n <= 128"),
    (["show", "ssm", "--plot", "out.jpg"], ".png"),
    (["show", "ssm", "--plot", "/nonexistent/dir/out.png"], "cannot write"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_errors_print_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and err.startswith("glr: error:")


def test_console_script_is_installed():
    exe = shutil.which("glr") or str(__import__("pathlib").Path(sys.executable).with_name("glr"))
    proc = subprocess.run([exe, "show", "power:0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "power base b" in proc.stderr


def test_warnings_print_one_line_each(capsys, monkeypatch):
    import warnings

    import glrtheory.cli.patterns as verbs

    def noisy(args):
        warnings.warn("first line\nsecond line", RuntimeWarning)
        warnings.warn("first line\nsecond line", RuntimeWarning)
        print("done")

    monkeypatch.setattr(verbs, "run_patterns", noisy)
    code, out, err = run(capsys, "patterns")
    assert code == 0 and out == "done\n" and err == "glr: warning: first line\n"
