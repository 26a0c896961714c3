"""Bad input at the command line, as a user met it: each gets one line and exit 2 (``glr`` and
``python -m glrtheory.lm``), refused before any large work, naming the problem or the limit."""
import json
from pathlib import Path

import pytest

from glrtheory.lm.__main__ import main as lm_main
from helpers import one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "lm" / "tiny.toml")


def lm(capsys, *argv) -> str:
    assert lm_main(list(argv)) == 2
    return one_line_error(capsys.readouterr().err, "glrtheory.lm")


@pytest.mark.parametrize("argv, says", [
    ([], "required: COMMAND"),
    (["train", "--bogus"], "required: --config"),
    (["eval", "--config", TINY, "--windows", "0"], "--windows: expected a positive integer, got 0"),
    (["train", "--config", TINY, "--stop-at", "-1"], "--stop-at: expected a positive integer, got -1"),
    (["generate", "--config", TINY, "--tokens", "-5"], "--tokens: expected a non-negative integer, got -5"),
    (["generate", "--config", TINY, "--seed", str(2**64)], f"--seed: expected a seed from 0 to 2^64-1, got {2**64}"),
    (["generate", "--config", TINY, "--seed", "-1"], "--seed: expected a seed from 0 to 2^64-1, got -1"),
    (["generate", "--config", TINY, "--random-weights", "--tokens", "1048577"],
     "--tokens 1048577 is over the limit of 1048576 decoded bytes"),
    (["generate", "--config", TINY, "--random-weights", "--contexts", "64,100000000"],
     "--contexts 100000000 is over the limit of 1048576 decoded bytes"),
    (["train", "--config", TINY, "--set", "model.pattern=nosuch"],
     "[model] sets pattern 'nosuch' and the top lists patterns = "),
    (["train", "--config", ""], "argument --config: expected a path, got ''"),
    (["collect", "--runs", "", "--out", "x.json"], "argument --runs: expected a path, got ''"),
    (["collect", "--runs", ".", "--out", ""], "argument --out: expected a path, got ''"),
    (["train", "--config", TINY, "--set", "train.seq_len=100000000"],
     "micro_batch x [train] seq_len = 8 x 100000000 bytes in one forward is over the limit 1048576"),
])
def test_lm_arguments(capsys, argv, says):
    assert says in lm(capsys, *argv)


def test_lm_report_wants_a_bundle(tmp_path, capsys):
    (tmp_path / "empty.json").write_text("{}")
    assert "is not JSON (Expecting value at line 1)" in lm(capsys, "report", "--bundle", TINY, "--dest", str(tmp_path))
    assert "has no 'runs'" in lm(capsys, "report", "--bundle", str(tmp_path / "empty.json"), "--dest", str(tmp_path))


def test_run_folders_whose_json_is_malformed(tmp_path, capsys):
    """What ``glr lab run``/``report`` and ``glr lm collect``/``report`` read back from a run folder or a bundle:
    JSON that is broken, not an object, not UTF-8, a folder, or a bundle whose fields are missing or of another kind
    gets one line naming the file (no traceback)."""
    def error(*argv) -> str:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2
        return one_line_error(err)

    lab = tmp_path / "lab"
    lab.mkdir()
    smoke = str(ROOT / "configs/lab/smoke.toml")
    for text, says in (("{bad", "is not JSON (Expecting property name enclosed in double quotes at line 1)"),
                       ("[]", "holds a JSON list, not an object")):
        (lab / "sweep.json").write_text(text)
        assert error("lab", "report", str(lab)) == f"glr: error: {str(lab / 'sweep.json')!r} {says}"
        assert error("lab", "run", smoke, "--out", str(lab)).endswith(says)
    runs = tmp_path / "runs"
    (runs / "ssm").mkdir(parents=True)
    (runs / "ssm" / "log.jsonl").write_text('{"step": 1}\n{"step": \n')
    log = str(runs / "ssm" / "log.jsonl")
    assert error("lm", "collect", "--runs", str(runs), "--out", str(tmp_path / "b.json")) == (
        f"glr: error: {log!r} is not JSON at line 2 (Expecting value at column 10)")
    (runs / "ssm" / "log.jsonl").write_text('{"step": 1}\n')
    assert error("lm", "collect", "--runs", str(runs), "--scaling", str(tmp_path / "none"),
                 "--out", str(tmp_path / "b.json")).endswith(f"no scaling run with a log.jsonl under "
                                                              f"{str(tmp_path / 'none')!r}")
    assert error("lm", "collect", "--runs", str(runs), "--scaling", str(runs),
                 "--out", str(tmp_path / "b.json")).endswith(f"{log!r} does not end with a training row (run, world, "
                                                              "device, step, tokens_per_s)")
    bundle, dest = tmp_path / "bundle.json", str(tmp_path / "report")
    for content, says in ((b"\xff{}", "is not UTF-8 text (invalid start byte at byte 0)"),
                          (b'{"runs": {"a": 5}}', "is not a bundle of glrtheory.lm collect (TypeError: "),
                          (b'{"runs": {"a": {"log": []}}}', "is not a bundle of glrtheory.lm collect (IndexError: "),
                          (b'{"runs": {}}', "has no 'runs': not a bundle of glrtheory.lm collect")):
        bundle.write_bytes(content)
        assert error("lm", "report", "--bundle", str(bundle), "--dest", dest).startswith(
            f"glr: error: bundle {str(bundle)!r} {says}")
    assert error("lm", "report", "--bundle", str(tmp_path), "--dest", dest).endswith("is a folder, not a JSON file")


def test_config_files_that_are_not_text_or_not_files(tmp_path, capsys):
    binary = str(tmp_path / "binary.toml")
    Path(binary).write_bytes(b"\xff\xfe\x00[run]")
    for argv in (["lab", "run", binary], ["lm", "train", "--config", binary]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "is not UTF-8 text (invalid start byte at byte 0)" in one_line_error(err)
    code, _, err = run_cli(capsys, "lab", "run", str(tmp_path))
    assert code == 2 and one_line_error(err).endswith("is a folder, not a TOML file")


def test_an_output_path_that_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    code, _, err = run_cli(capsys, "lab", "run", str(ROOT / "configs/lab/smoke.toml"), "--out", str(tmp_path / "taken"))
    assert code == 2 and one_line_error(err) == f"glr: error: cannot use {str(tmp_path / 'taken')!r}: File exists"


def test_an_os_error_names_its_path_and_a_renames_target():
    """``OSError``s print as ``cannot use PATH: reason``, PATH the rename's target where there is one (not the
    temporary file written first), with no ``[Errno N]``; other errors as their first line."""
    from glrtheory.cli import _error_line

    assert _error_line(OSError(21, "Is a directory", "/x/a.json.1f.tmp", None, "/x/a.json")) == (
        "cannot use '/x/a.json': Is a directory")
    assert _error_line(FileExistsError(17, "File exists", "/x/up.py")) == "cannot use '/x/up.py': File exists"
    assert _error_line(NotADirectoryError(20, "Not a directory", b"/x/up.py/ssm")) == (
        "cannot use '/x/up.py/ssm': Not a directory")
    assert _error_line(OSError("no path here\nsecond")) == "no path here"


def test_lab_options_of_task_need_task_and_lists_need_values(capsys):
    smoke = str(ROOT / "configs/lab/smoke.toml")
    code, _, err = run_cli(capsys, "lab", "run", smoke, "--levels", "2", "--length", "64")
    assert code == 2 and one_line_error(err).endswith("--levels, --length set the task of --task, which is not given")
    code, _, err = run_cli(capsys, "lab", "run", smoke, "--patterns", "")
    assert code == 2 and ("--patterns: expected a comma-separated list of pattern specs with no empty item, got ''"
                          in one_line_error(err))


def test_a_lab_run_with_no_finished_cell_says_why(tmp_path, capsys):
    """A sweep whose only cell fails (a training batch over the tasks' sample limit, 20000 x 4096 tokens): the
    failure and its reason are printed, and the report, with nothing to report, is an error naming the last failure
    (it was a matplotlib traceback)."""
    config = tmp_path / "failing.toml"
    config.write_text('mixers = [{ pattern = "ssm" }]\n[run]\nsteps = 2\nbatch = 20000\ndevice = "cpu"\n'
                      "[tasks.recall]\nD = [4]\nlength = 4096\n")
    code, out, err = run_cli(capsys, "lab", "run", str(config), "--out", str(tmp_path / "out"), "--quiet")
    line = one_line_error(err)
    assert code == 2 and "no cell of" in line and "(the last failure: GLRError: " in line and "over the limit" in line
    assert "failed: GLRError: " in out and "over the limit" in out
    rows = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["error"] in line


def test_a_lab_run_with_a_failed_cell_reports_the_rest_and_warns(tmp_path, capsys):
    config = tmp_path / "mixed.toml"
    config.write_text('mixers = [{ pattern = "ssm" }]\n[run]\nsteps = 1\nbatch = 20000\nlrs = [1e-2]\n'
                      'device = "cpu"\n[tasks.copy]\nL = [2]\nlength = 16\nvocab = 8\n[tasks.recall]\nD = [4]\n'
                      "length = 4096\n")
    code, out, err = run_cli(capsys, "lab", "run", str(config), "--out", str(tmp_path / "out"), "--quiet")
    assert code == 0 and "1/2 cells" in out
    assert err.strip().splitlines() == [f"glr: warning: 1 cell failed in this run; the reasons are in "
                                         f"{str(tmp_path / 'out' / 'errors.jsonl')!r}"]


@pytest.mark.parametrize("argv, says", [
    (["lti", "lags:1,2", "--coef", "1=b", "--coef", "2=0.1", "--step", "1e-9"],
     "the scan of 4e+09 values at 256 circle points (order 2) exceeds the limit"),
    (["lti", "lags:1,2", "--coef", "1=b", "--coef", "2=0.1", "--step", "1e-300"], "the scan of 4e+300 values"),
    (["search", "--n", "4194305"], "a search at n=4194305 is over its limit n <= 4194304"),
    (["search", "--n", "2147483648"], "a search at n=2147483648 is over its limit n <= 4194304"),
    (["search", "--n", "2147483648", "--family", "window"], "a search at n=2147483648 is over its limit"),
    (["search", "--n", "64", "--family", "window", "--values", "3.5", "4"], "window's W takes integers"),
    (["analyze", "window:W", "--n", "10"], "window W must be an integer, got 'W'"),
    (["analyze", "blocks:C", "--n", "10"], "block size C must be an integer, got 'C'"),
    (["analyze", "ssm", "--n", "8", "--plot", ""], "argument --plot: expected a .png file name, got ''"),
    (["compare", "ssm", "--n", "8", "--plot", ".png"], "argument --plot: expected a .png file name, got '.png'"),
    (["analyze", "ssm", "--n", "8", "--rank-method", "flow"], "--rank-method flow has no rank to compute: add --rank"),
    (["compare", "ssm", "--n", "8", "--rank-method", "exact"], "no rank to compute: add --rank or --plot"),
    (["compare", "power2", "ssm", "power2", "--n", "8"], "pattern 'power2' is given twice ('power2' and 'power2')"),
    (["compare", "window:3", "window:03", "--n", "8"],
     "pattern 'window:3' is given twice ('window:3' and 'window:03')"),
    (["search", "ssm", "ssm", "--n", "8"], "pattern 'ssm' is given twice"),
    (["search", "--family", "window", "--values", "3", "3", "--n", "8"], "pattern 'window:3' is given twice"),
    (["search", "--family", "blocks", "--values", "2", "--n", "8", "blocks:2"], "pattern 'blocks:2' is given twice"),
    (["analyze", "up.py:", "--n", "8"], "pattern 'up.py:' names a .py file: write file.py:attribute"),
    (["analyze", "up.py:good:extra", "--n", "8"], "pattern 'up.py:good:extra' names a .py file"),
    (["compare", "ssm", "up.py:good+ssm", "--n", "8"], "pattern 'up.py:good+ssm' names a .py file"),
    (["search", "--n", "8", "--rank-method", "flow"], "--rank-method flow has no rank to compute: add --min-rank"),
    (["search", "--n", "8", "--rank-method", "exact"], "--rank-method exact has no rank to compute: add --min-rank"),
    (["lti", "ssm", "--coef", "1=b", "--range", "-1e-3x", "1"], "argument --range: expected 2 arguments"),
    (["lti", "lags:1", "--coef", "1=0.5", "--range", "-1", "1"], "this system has no symbols"),
    (["lti", "lags:1", "--coef", "1=0.5", "--step", "0.1"], "this system has no symbols"),
    (["lti", "lags:1,2", "--coef", "1=b", "--coef", "2=c", "--range", "-2", "2"], "this system has 2 symbols there"),
    (["lti", "lags:1", "--coef", "1=0.5", "--coef", "a0=g", "--step", "0.1"], "this system has no symbols there"),
    (["catalog", "--inexpressible", "--n", "5"], "--inexpressible lists no costs"),
    (["lab", "run", "--task", "modcount", "--levels", "2", "--patterns", "ssm", "--out", ""],
     "argument --out: expected a path, got ''"),
    (["lab", "run", ""], "argument config: expected a path, got ''"),
    (["lab", "report", ""], "argument folder: expected a path, got ''"),
])
def test_glr_refusals(capsys, argv, says):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and says in one_line_error(err)


@pytest.mark.parametrize("lo, hi", [("-1e-3", "1"), ("-1E-3", "1"), ("-.001", "1e0")])
def test_negative_numbers_in_scientific_notation_are_values(capsys, lo, hi):
    """``--range -1e-3 1`` scans from -0.001 (argparse alone reads ``-1e-3`` as an option and refuses the call)."""
    code, out, _ = run_cli(capsys, "lti", "ssm", "--coef", "1=b", "--range", lo, hi, "--json")
    scan = json.loads(out)["stable_range"]
    assert code == 0 and (scan["lo"], scan["hi"]) == (-0.001, 1.0)


def test_a_lab_config_whose_mixers_are_not_a_list(tmp_path, capsys):
    (tmp_path / "m.toml").write_text('mixers = "ssm"\n[tasks.copy]\nL = [2]\nlength = 16\n')
    code, _, err = run_cli(capsys, "lab", "run", str(tmp_path / "m.toml"), "--out", str(tmp_path / "out"))
    assert code == 2 and one_line_error(err).endswith("mixers must be a list (mixers = [\"ssm\", "
                                                      "{pattern = \"power2\"}]), got 'ssm'")


@pytest.mark.parametrize("steps", [None, "5"])
def test_a_lab_config_whose_run_is_not_a_table(tmp_path, capsys, steps):
    """``run = 3`` (with or without a --steps override) is one line naming [run] and exit 2 (it raised TypeError)."""
    (tmp_path / "r.toml").write_text('run = 3\nmixers = ["ssm"]\n[tasks.copy]\nL = [2]\nlength = 16\n')
    extra = [] if steps is None else ["--steps", steps]
    code, _, err = run_cli(capsys, "lab", "run", str(tmp_path / "r.toml"), "--out", str(tmp_path / "out"), *extra)
    assert code == 2 and one_line_error(err).endswith("[run] must be a table, got 3")
