"""Mutation run 10 (docs/mutation.md): the lab's configuration (``lab/config.py``) and report (``lab/report.py``),
each test against hand-worked values, exact binomial sums or the committed lab folders."""
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import matplotlib
import pytest

from glrtheory import GLRError
from glrtheory.lab import summarize, sweep_from_dict, write_results
from glrtheory.lab.config import Mixer
from glrtheory.lab.report import plot, table
from glrtheory.lab.runner import finished
from glrtheory.lab.theory import ALPHA

ROOT = Path(__file__).resolve().parents[1]
BASE = {"mixers": ["ssm"], "tasks": {"mqar": {"K": [4], "length": 64}}}
MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "conv": 2}


def refused(change: dict, message: str) -> None:
    with pytest.raises(GLRError, match=f"^{re.escape(message)}$"):
        sweep_from_dict({**BASE, **change})


def test_defaults_and_the_data_as_given():
    """A sweep without [run] and [model] gets the defaults, written out here by hand (every config that leaves one
    out trains with it); a scalar level is a list of one; ``data`` keeps the dict as given (for sweep.json)."""
    data = {"mixers": ["ssm"], "tasks": {"mqar": {"K": 4, "length": 64}}}
    sweep = sweep_from_dict(data)
    assert sweep.run == {"steps": 200, "batch": 32, "lrs": [1e-3, 3e-3], "seeds": [0], "eval_size": 256,
                         "warmup": 0.1, "weight_decay": 0.0, "checkpoint_every": 100, "device": "auto", "threads": 1,
                         "cuda_graphs": True}
    assert sweep.model == {"d_model": 32, "n_layers": 2, "n_heads": 2, "conv": 2, "mlp_mult": 2}
    assert sweep.tasks == {"mqar": {"K": [4], "length": 64}} and sweep.data is data
    edges = sweep_from_dict({**BASE, "run": {"lrs": [1], "warmup": 0, "weight_decay": 0}})
    assert edges.run["lrs"] == [1] and sweep_from_dict({**BASE, "run": {"warmup": 1.0}}).run["warmup"] == 1.0


def test_mixer_names_and_options():
    """Names and options worked by hand: a spec alone, query-key scores (" qk", not for source scores), a given name,
    each state (readout False / True), readout set by the entry itself (named by it unless a name is given)."""
    def parsed(entry, state=None):
        m = Mixer.parse(entry, state)
        return m.name, m.options
    assert parsed("ssm") == ("ssm", {"pattern": "ssm"})
    qk = {"pattern": "attention", "scores": "query_key"}
    assert parsed(qk) == ("attention qk", qk)
    assert parsed({"pattern": "attention", "scores": "source"})[0] == "attention"
    assert parsed({**qk, "name": "full"}) == ("full", qk)
    assert parsed("ssm", "vector") == ("ssm (vector)", {"pattern": "ssm", "readout": False})
    assert parsed({"pattern": "ssm", "name": "slow"}, "matrix") == ("slow (matrix)",
                                                                    {"pattern": "ssm", "readout": True})
    assert parsed({"pattern": "ssm", "readout": True}) == ("ssm (matrix)", {"pattern": "ssm", "readout": True})
    assert parsed({"pattern": "ssm", "readout": False}) == ("ssm (vector)", {"pattern": "ssm", "readout": False})
    assert parsed({"pattern": "ssm", "readout": True, "name": "mine"}) == ("mine", {"pattern": "ssm", "readout": True})
    assert parsed({"pattern": "ssm", "readout": True}, "vector")[0] == "ssm (matrix)"
    both = sweep_from_dict({**BASE, "mixers": ["ssm", qk], "states": ["vector", "matrix"]})
    assert [(m.name, m.options.get("readout")) for m in both.mixers] == [
        ("ssm (vector)", False), ("ssm (matrix)", True), ("attention qk (vector)", False),
        ("attention qk (matrix)", True)]


@pytest.mark.parametrize("change, message", [
    ({"extra": {}, "more": 1}, "unknown sweep section(s): extra, more; known: run, model, mixers, states, tasks"),
    ({"run": {"step": 3, "lr": 1}}, "unknown [run] option(s): lr, step; known: steps, batch, lrs, seeds, eval_size, "
                                    "warmup, weight_decay, checkpoint_every, device, threads, cuda_graphs"),
    ({"run": {"batch": "x"}}, "[run] batch must be an integer, got 'x'"),
    ({"run": {"lrs": []}}, "[run] lrs must be a non-empty list of positive finite numbers, got []"),
    ({"run": {"lrs": [1e-3, 0]}}, "[run] lrs must be a non-empty list of positive finite numbers, got [0.001, 0]"),
    ({"run": {"lrs": [-1e-3]}}, "[run] lrs must be a non-empty list of positive finite numbers, got [-0.001]"),
    ({"run": {"lrs": ["x"]}}, "[run] lrs must be a non-empty list of positive finite numbers, got ['x']"),
    ({"run": {"lrs": [True]}}, "[run] lrs must be a non-empty list of positive finite numbers, got [True]"),
    ({"run": {"lrs": [math.inf]}}, "[run] lrs must be a non-empty list of positive finite numbers, got [inf]"),
    ({"run": {"lrs": 0.1}}, "[run] lrs must be a non-empty list of positive finite numbers, got 0.1"),
    ({"run": {"warmup": -0.1}}, "[run] warmup must lie in [0, 1], got -0.1"),
    ({"run": {"warmup": 1.5}}, "[run] warmup must lie in [0, 1], got 1.5"),
    ({"run": {"warmup": "x"}}, "[run] warmup must be a finite number, got 'x'"),
    ({"run": {"weight_decay": -1.0}}, "[run] weight_decay must lie in [0, inf], got -1.0"),
    ({"run": {"seeds": 3}}, "[run] seeds must be a non-empty list of integers in [0, 100000), got 3"),
    ({"run": 3}, "[run] must be a table, got 3"),
    ({"model": "x"}, "[model] must be a table, got 'x'"),
    ({"tasks": [1]}, "tasks must be a table, got [1]"),
    ({"tasks": {"mqar": 3}}, "[tasks.mqar] must be a table, got 3"),
    ({"states": "vector"}, "states must be a non-empty list (states = [\"vector\", \"matrix\"]), got 'vector'"),
    ({"states": []}, "states must be a non-empty list (states = [\"vector\", \"matrix\"]), got []"),
    ({"states": ["tensor", "vector"]}, "unknown state(s) ['tensor']; known: vector, matrix"),
    ({"states": [["vector"]]}, "unknown state(s) [['vector']]; known: vector, matrix"),
    ({"mixers": []}, "the sweep lists no mixers"),
    ({"tasks": {}}, "the sweep lists no tasks"),
    ({"mixers": [{"name": "x"}]}, "a mixer is a pattern spec or a table with 'pattern', got {'name': 'x'}"),
    ({"mixers": [{"pattern": 3}]}, "a mixer is a pattern spec or a table with 'pattern', got {'pattern': 3}"),
    ({"mixers": [{"pattern": "ssm", "name": 3}]}, "mixer 'ssm': name must be a string, got 3"),
    ({"mixers": ["ssm", {"pattern": "ssm", "timescales": [32, 256]}]},
     "two mixers are named 'ssm' ({'pattern': 'ssm'} and {'pattern': 'ssm', 'timescales': [32, 256]}): give each "
     "its own 'name'"),
    ({"mixers": [{"pattern": "ssm", "vocab_size": 8, "tie_embeddings": True}]},
     "mixer 'ssm' sets vocab_size, tie_embeddings: the model's size is [model]'s, the same for every mixer (a mixer "
     "sets pattern, scores, readout, timescales, lag_bias, ...)"),
    ({"tasks": {"sorting": {"n": [2]}}}, "unknown task 'sorting'; known: mqar, copy, recall, modcount"),
    ({"tasks": {"mqar": {"K": "4", "length": 64}}}, "task 'mqar' needs K = [levels...] (its swept parameter)"),
    ({"tasks": {"mqar": {"K": [], "length": 64}}}, "task 'mqar' needs K = [levels...] (its swept parameter)"),
    ({"tasks": {"mqar": {"K": [[4]], "length": 64}}}, "K must be an integer, got [4]")])
def test_bad_sweeps_name_the_problem(change, message):
    """Whole messages, written by hand (a section, option or level of the wrong type raised TypeError,
    AttributeError or IndexError; lrs of true or inf, a negative warm-up or weight decay were accepted)."""
    refused(change, message)


def test_trained_unlike_names_every_setting_a_cell_trains_to():
    """Seeds, device, threads, CUDA graphs and checkpoints change no cell; warm-up does, and so does a model option
    that one sweep sets and the other leaves out (None on that side)."""
    old = sweep_from_dict(BASE)
    free = {"seeds": [0, 1], "device": "cpu", "threads": 4, "cuda_graphs": False, "checkpoint_every": 7}
    assert sweep_from_dict({**BASE, "run": free}).trained_unlike(old) == []
    assert sweep_from_dict({**BASE, "run": {"warmup": 0.2}}).trained_unlike(old) == ["run.warmup: 0.1 -> 0.2"]
    assert sweep_from_dict({**BASE, "model": {"d_head": 8}}).trained_unlike(old) == ["model.d_head: None -> 8"]
    assert old.trained_unlike(sweep_from_dict({**BASE, "model": {"d_head": 8}})) == ["model.d_head: 8 -> None"]


@pytest.mark.parametrize("folder", sorted(p.name for p in (ROOT / "benchmarks/results/lab").iterdir()))
def test_cell_keys_are_those_of_the_committed_lab_folders(folder):
    """Every cell of a committed sweep.json finds its row in that folder's cells (``glr lab report`` matches them by
    key), and the row is that cell's task, level, mixer and seed."""
    path = ROOT / "benchmarks/results/lab" / folder
    sweep = sweep_from_dict(json.loads((path / "sweep.json").read_text()))
    done = finished(path)
    cells = sweep.cells()
    assert len(done) == len(cells)
    for c in cells:
        row = done[c.key]
        assert re.fullmatch("[0-9a-f]{16}", c.key)
        assert (row["task"], row["level"], row["mixer"], row["seed"]) == (
            c.task, c.params[sweep_task_axis(c.task)], c.mixer.name, c.seed)


def sweep_task_axis(task: str) -> str:
    return {"mqar": "K", "copy": "L", "recall": "D", "modcount": "k"}[task]


def _least_count(n: int, p: Fraction, alpha: Fraction) -> int:
    """The least k with P(Binomial(n, p) > k) <= alpha, by exact sums over the binomial terms."""
    terms = [math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(n + 1)]
    tail = Fraction(1) - terms[0]
    k = 0
    while tail > alpha:
        k += 1
        tail -= terms[k]
    return k


def test_the_chance_margin_counts_every_seeds_answers():
    """copy at L = 4 has 4 answers a sequence: two seeds of 128 test sequences give 1024 answers, and the mean
    (k + 1) / 1024 refutes the ceiling 1/4 of window:2 (k from exact binomial sums at ALPHA) while k / 1024 does not;
    with one seed's 512 answers (k + 1) / 1024 is within chance."""
    k = _least_count(1024, Fraction(1, 4), Fraction(ALPHA))
    assert (k + 1) / 1024 < 0.9 and k + 1 <= _least_count(512, Fraction(1, 4), Fraction(ALPHA)) * 2
    data = {"run": {"eval_size": 128, "seeds": [0, 1]}, "model": MODEL, "mixers": ["window:2"],
            "tasks": {"copy": {"L": [4], "length": 32, "vocab": 6}}}
    sweep = sweep_from_dict(data)
    for j, expected in ((k, "inconclusive"), (k + 1, "refuted")):
        rows = [dict(task="copy", mixer="window:2", level=4, accuracy=j / 1024, seed=s) for s in (0, 1)]
        (s,) = summarize(sweep, rows)
        assert s["verdict"] == expected and s["seeds"] == [2]
        if expected == "refuted":
            ((lv, a, c, m),) = s["over"]
            assert (lv, a, c) == (4, (k + 1) / 1024, 0.25) and k / 1024 < c + m < (k + 1) / 1024
    one = sweep_from_dict({**data, "run": {"eval_size": 128, "seeds": [0]}})
    (s,) = summarize(one, [dict(task="copy", mixer="window:2", level=4, accuracy=(k + 1) / 1024)])
    assert s["verdict"] == "inconclusive"


def test_training_works_where_some_level_reaches_exactly_the_threshold():
    """window:2 fails copy at every L (ruled out at n = 32); it confirms the bound because it reaches exactly 0.9 on
    recall at D = 2 and attention copies at exactly 0.9, though window:2's copy rows come last. Recall's levels are
    all within its scale, D = 8 too, out of reach (x in the table)."""
    sweep = sweep_from_dict({"model": MODEL, "mixers": ["window:2", "attention"],
                             "tasks": {"copy": {"L": [4, 8], "length": 32, "vocab": 6},
                                       "recall": {"D": [2, 8], "length": 32, "vocab": 12}}})
    rows = [dict(task="recall", mixer="window:2", level=2, accuracy=0.9),
            dict(task="recall", mixer="window:2", level=8, accuracy=0.1),
            dict(task="recall", mixer="attention", level=2, accuracy=0.9)]
    rows += [dict(task="copy", mixer="attention", level=L, accuracy=0.9) for L in (4, 8)]
    rows += [dict(task="copy", mixer="window:2", level=L, accuracy=0.2) for L in (4, 8)]
    out = {(s["task"], s["mixer"]): s for s in summarize(sweep, rows)}
    assert (out["copy", "window:2"]["feasible"], out["copy", "window:2"]["verdict"]) == ([False, False], "confirmed")
    recall = out["recall", "window:2"]
    assert recall["feasible"] == [True, False] and recall["within_scale"] == [True, True]
    assert "| 2: 0.90, 8x: 0.10 |" in table([recall])


def _entry(**kw):
    s = dict(task="copy", difficulty="L", mixer="ssm", n=32, cache_peak=1, state_numbers=132, reach=31, rule="rule",
             crossover=4, levels=[2, 4, 8, 16], accuracy=[1.0, 0.456, 0.2, 0.125], feasible=[True, True, False, False],
             within_scale=[True, False, True, False], verdict="confirmed", reason="why")
    return {**s, **kw}


def test_table_rows_written_by_hand():
    """The table of three hand entries: the header, ten columns, the marks (x where a bound rules a level out,
    whatever the scale; s where only the scale does), the crossover as an integer (1024, not 1.02e+03) or none."""
    summary = [_entry(), _entry(mixer="fenwick", crossover=None, verdict="inconclusive", reason="r"),
               _entry(task="recall", difficulty="D", crossover=1024, levels=[1024], accuracy=[0.5], feasible=[True],
                      within_scale=[True])]
    assert table(summary) == "\n".join([
        "| task | mixer | n | cache | state numbers | reach | predicted | crossover (acc < 0.9) | accuracy by level "
        "(x: a bound rules it out; s: beyond the scale) | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        "| copy (L) | ssm | 32 | 1 | 132 | 31 | rule | 4 | 2: 1.00, 4s: 0.46, 8x: 0.20, 16x: 0.12 "
        "| **confirmed**: why |",
        "| copy (L) | fenwick | 32 | 1 | 132 | 31 | rule | none | 2: 1.00, 4s: 0.46, 8x: 0.20, 16x: 0.12 "
        "| **inconclusive**: r |",
        "| recall (D) | ssm | 32 | 1 | 132 | 31 | rule | 1024 | 1024: 0.50 | **confirmed**: why |"])


def test_write_results_records_what_the_sweep_and_its_cells_are(tmp_path):
    """results.json (indent 1) holds the command, the machine ({} when none), the threshold, what the accuracies
    are (test accuracies, or the best held-out one where a row has no validation accuracy), the sweep, the
    summary, the cells as given, 2 cells in all (one level, one mixer, two seeds) with one done, and the failures
    of errors.jsonl; table.md is the table and the accuracies' sentence."""
    sweep = sweep_from_dict({"run": {"seeds": [0, 1]}, "mixers": [{"pattern": "attention", "scores": "query_key"}],
                             "tasks": {"copy": {"L": [2], "length": 8, "vocab": 6}}})
    rows = [dict(task="copy", mixer="attention qk", level=2, accuracy=0.75, val_accuracy=1.0, key="abc")]
    failure = {"key": "def", "error": "GLRError: no"}
    (tmp_path / "errors.jsonl").write_text(json.dumps(failure) + "\n")
    for machine, recorded in ((None, {}), ({"device": "cpu"}, {"device": "cpu"})):
        results = write_results(sweep, rows, tmp_path, "glr lab run x", machine)
        text = (tmp_path / "results.json").read_text()
        assert text.startswith('{\n "command": "glr lab run x",\n "machine": ')
        assert json.loads(text) == json.loads(json.dumps(results)) == {
            "command": "glr lab run x", "machine": recorded, "threshold": 0.9,
            "accuracies": "test-set accuracy at the learning rate picked on the validation set",
            "sweep": {"run": sweep.run, "model": sweep.model, "tasks": {"copy": {"L": [2], "length": 8, "vocab": 6}},
                      "mixers": [{"name": "attention qk", "pattern": "attention", "scores": "query_key"}]},
            "summary": json.loads(json.dumps(summarize(sweep, rows))), "cells": rows,
            "cells_total": 2, "cells_done": 1, "errors": [failure]}
    assert results["summary"][0]["accuracy"] == [0.75]
    assert (tmp_path / "table.md").read_text() == (f"{table(summarize(sweep, rows))}\n\nAccuracies: test-set accuracy "
                                                   "at the learning rate picked on the validation set.\n")
    assert (tmp_path / "accuracy.png").stat().st_size > 0 and (tmp_path / "cost.png").stat().st_size > 0
    old = write_results(sweep, [{k: v for k, v in rows[0].items() if k != "val_accuracy"}], tmp_path, "")
    assert old["accuracies"] == ("accuracy at the learning rate best on the one held-out set that gives it (an "
                                 "optimistic pick)")


def test_the_figures_show_the_summary(tmp_path, monkeypatch):
    """What the two figures draw, read back from them (not pixels), for three hand entries: accuracy against level
    per task (log2 axis, 0.9 line, a dashed line at each scale within twice the largest level: 8 = 2 x 4 drawn,
    12 not, recall's reach 3 drawn; titles, labels, legends), and each mixer's mean accuracy against cache and
    decode cost (log axes, one legend); a mixer keeps one colour, its own, everywhere (recall's only mixer is the
    second, so a colour from the axes' cycle would differ)."""
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    saved, real = {}, Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: (saved.__setitem__(Path(path).name, fig),
                                                                    real(fig, path, **kw))[1])
    common = dict(task="copy", difficulty="L", n=32, levels=[2, 4])
    summary = [dict(common, mixer="a", accuracy=[1.0, 0.5], capacity=8.0, cache_peak=1, decode_cost_mean=2.0),
               dict(common, mixer="b", accuracy=[0.8, 0.2], capacity=12.0, cache_peak=32, decode_cost_mean=16.0),
               dict(task="recall", difficulty="D", n=64, levels=[1, 8], mixer="b", accuracy=[1.0, 0.25], capacity=3,
                    cache_peak=1, decode_cost_mean=2.0)]
    plot(summary, tmp_path)
    assert sorted(saved) == ["accuracy.png", "cost.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name in saved)
    colours = {}

    def colour(mixer, c):
        colours.setdefault(mixer, to_rgba(c))
        assert to_rgba(c) == colours[mixer], mixer

    acc = saved["accuracy.png"]
    assert len(acc.axes) == 2
    expected = {0: ("copy (n = 32); dashed: scale", "L", [("a (scale 8)", [2, 4], [1.0, 0.5]),
                                                         ("b (scale 12)", [2, 4], [0.8, 0.2])], [("a", 8.0)]),
                1: ("recall (n = 64); dashed: reach", "D", [("b (reach 3)", [1, 8], [1.0, 0.25])], [("b", 3)])}
    for i, ax in enumerate(acc.axes):
        title, xlabel, lines, marks = expected[i]
        assert (ax.get_title(), ax.get_xlabel(), ax.get_ylim()) == (title, xlabel, (-0.02, 1.02))
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
        assert ax.get_ylabel() == ("accuracy (mean over seeds)" if i == 0 else "")
        data = [x for x in ax.lines if not x.get_label().startswith("_")]
        assert [(x.get_label(), list(x.get_xdata()), list(x.get_ydata())) for x in data] == lines
        assert all((x.get_marker(), x.get_linestyle()) == ("o", "-") for x in data)
        for x in data:
            colour(x.get_label().split()[0], x.get_color())
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [x[0] for x in lines]
        rules = [x for x in ax.lines if x.get_label().startswith("_")]
        vertical = [x for x in rules if x.get_xdata()[0] == x.get_xdata()[1]]
        horizontal = [x for x in rules if x.get_ydata()[0] == x.get_ydata()[1]]
        assert len(vertical) + len(horizontal) == len(rules)
        assert [list(x.get_ydata()) for x in horizontal] == [[0.9, 0.9]]
        assert to_rgba(horizontal[0].get_color()) == to_rgba("gray")
        assert [x.get_xdata()[0] for x in vertical] == [c for _, c in marks]
        for (mixer, _), x in zip(marks, vertical):
            colour(mixer, x.get_color())
            assert x.get_linestyle() == "--"
    assert colours["a"] != colours["b"]
    cost = saved["cost.png"]
    assert len(cost.axes) == 4
    points = {(0, 0): [(1, 0.75), (32, 0.5)], (1, 0): [(2.0, 0.75), (16.0, 0.5)], (0, 1): [(1, 0.625)],
              (1, 1): [(2.0, 0.625)]}
    for (i, j), ax in zip([(0, 0), (0, 1), (1, 0), (1, 1)], cost.axes):
        assert ax.get_xlabel() == ("cache (states) at n", "decode cost at n")[i]
        assert ax.get_title() == (["copy", "recall"][j] if i == 0 else "")
        assert ax.get_ylabel() == ("mean accuracy over levels" if j == 0 else "")
        assert ax.get_xscale() == "log" and ax.get_ylim() == (-0.02, 1.02)
        assert [tuple(c.get_offsets()[0]) for c in ax.collections] == points[i, j]
        for c, mixer in zip(ax.collections, (["a", "b"], ["b"])[j], strict=True):
            assert c.get_label() == mixer
            colour(mixer, tuple(c.get_facecolor()[0]))
        assert (ax.get_legend() is not None) == ((i, j) == (0, 1))
    legend = cost.axes[1].get_legend()          # every mixer, though the last task ran only b
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    for handle, mixer in zip(legend.legend_handles, "ab", strict=True):
        colour(mixer, tuple(handle.get_color()))
    assert matplotlib.get_backend().lower() == "agg"
