"""Results of a sweep: ``results.json``, the theory-against-measurement table, and the figures.

``summarize`` groups the finished cells by (task, mixer), averages their accuracies (``reported``) over seeds at
each level, finds the measured crossover (the smallest level whose accuracy is below 0.9) and sets it
beside the prediction of ``glrtheory.lab.theory`` at the same length n, with a verdict.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from glrtheory.tasks import IGNORE, TASKS, make_task

from .config import Sweep
from .runner import failures
from .theory import THRESHOLD, feasible, noise, prediction, verdict, within_scale


#: What a sweep's accuracies are, by ``held_out``; results.json and table.md say it.
ACCURACIES = {True: "test-set accuracy at the learning rate picked on the validation set",
              False: "accuracy at the learning rate best on the one held-out set that gives it (an optimistic pick)"}


def held_out(rows: list[dict]) -> bool:
    """Whether every row reports its test accuracy at the learning rate picked on the validation set (``runner``);
    rows written before the test set existed report the best accuracy over the learning rates on validation."""
    return all("val_accuracy" in r for r in rows)


def reported(rows: list[dict]) -> list[float]:
    """Each row's accuracy, picked alike for the whole sweep: the test accuracy where every row has one
    (``held_out``), else the best over the learning rates on the validation set (a newer row's ``val_accuracy``,
    which is that same number)."""
    held = held_out(rows)
    return [r["accuracy"] if held else r.get("val_accuracy", r["accuracy"]) for r in rows]


def _answers(sweep: Sweep, task_name: str, level: int) -> int:
    """Answers a sequence of the task at ``level`` scores (its targets other than ``IGNORE``)."""
    task = make_task(task_name, **{**sweep.tasks[task_name], TASKS[task_name].difficulty: level})
    return int((task.sample(1, seed=0)[1] != IGNORE).sum())


def summarize(sweep: Sweep, rows: list[dict]) -> list[dict]:
    """One entry per (task, mixer) with levels, mean accuracies, prediction, crossover and verdict."""
    groups = defaultdict(lambda: defaultdict(list))
    for r, acc in zip(rows, reported(rows)):
        groups[(r["task"], r["mixer"])][r["level"]].append(acc)
    mixers = {m.name: m for m in sweep.mixers}
    summary = []
    for (task_name, mixer_name), by_level in groups.items():
        levels = sorted(by_level)
        acc = [sum(by_level[lv]) / len(by_level[lv]) for lv in levels]
        task = make_task(task_name, **{**sweep.tasks[task_name], TASKS[task_name].difficulty: levels[0]})
        model = {**sweep.model, **mixers[mixer_name].options}
        pred = prediction(task, model, levels)
        crossover = next((lv for lv, a in zip(levels, acc) if a < THRESHOLD), None)
        over = []                                   # accuracies past what reach allows, beyond chance
        for lv, a in zip(levels, acc):
            c = pred["ceiling"][lv]
            m = noise(c, _answers(sweep, task_name, lv) * sweep.run["eval_size"] * len(by_level[lv]), len(levels))
            if a > c + m:
                over.append((lv, a, c, m))
        summary.append({"task": task_name, "mixer": mixer_name, "difficulty": task.difficulty, "levels": levels,
                        "accuracy": acc, "seeds": [len(by_level[lv]) for lv in levels], "over": over,
                        "feasible": [feasible(lv, pred) for lv in levels],
                        "within_scale": [within_scale(task_name, lv, pred) for lv in levels],
                        "crossover": crossover, **pred})
    trains, learned = defaultdict(bool), defaultdict(bool)      # by mixer (its feasible levels), by task
    for s in summary:
        trains[s["mixer"]] |= any(a >= THRESHOLD for a, ok in zip(s["accuracy"], s["feasible"]) if ok)
        learned[s["task"]] |= any(a >= THRESHOLD for a in s["accuracy"])
    for s in summary:
        s["verdict"], s["reason"] = verdict(s["levels"], s["accuracy"], s["feasible"],
                                            trains[s["mixer"]] and learned[s["task"]], s["over"])
    return summary


def _num(x) -> str:
    if x is None:
        return "none"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def table(summary: list[dict]) -> str:
    """Markdown table: prediction against measured crossover, with verdicts."""
    head = ("| task | mixer | n | cache | state numbers | reach | predicted | crossover (acc < 0.9) "
            "| accuracy by level (x: a bound rules it out; s: beyond the scale) | verdict |")
    lines = [head, "|" + " --- |" * 10]
    for s in summary:
        accs = ", ".join(f"{lv}{'' if ok and held else 'x' if not ok else 's'}: {a:.2f}"
                         for lv, a, ok, held in zip(s["levels"], s["accuracy"], s["feasible"], s["within_scale"]))
        lines.append(f"| {s['task']} ({s['difficulty']}) | {s['mixer']} | {s['n']} | {s['cache_peak']} "
                     f"| {s['state_numbers']} | {s['reach']} | {s['rule']} | {_num(s['crossover'])} | {accs} "
                     f"| **{s['verdict']}**: {s['reason']} |")
    return "\n".join(lines)


def write_results(sweep: Sweep, rows: list[dict], out, command: str, machine: dict | None = None) -> dict:
    """Write ``results.json``, ``table.md`` and the figures into ``out``; return the results dict."""
    out = Path(out)
    summary, accuracies = summarize(sweep, rows), ACCURACIES[held_out(rows)]
    results = {"command": command, "machine": machine or {}, "threshold": THRESHOLD, "accuracies": accuracies,
               "sweep": {"run": sweep.run, "model": sweep.model, "tasks": sweep.tasks,
                         "mixers": [{"name": m.name, **m.options} for m in sweep.mixers]},
               "summary": summary, "cells": rows,
               "cells_total": len(sweep.cells()), "cells_done": len(rows), "errors": failures(out)}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "table.md").write_text(f"{table(summary)}\n\nAccuracies: {accuracies}.\n")
    plot(summary, out)
    return results


def plot(summary: list[dict], out: Path) -> None:
    """``accuracy.png`` (accuracy against level, recall's reach and the others' scales as vertical marks) and
    ``cost.png`` (mean accuracy against cache and decode cost at the task's length)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.lines
    import matplotlib.ticker
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(s["task"] for s in summary))
    mixers = list(dict.fromkeys(s["mixer"] for s in summary))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(mixers)}
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [s for s in summary if s["task"] == task]
        top = max(max(s["levels"]) for s in rows)
        mark = "reach" if task == "recall" else "scale"          # the bound's level, or the state's scale
        for s in rows:
            ax.plot(s["levels"], s["accuracy"], "o-", color=colors[s["mixer"]], ms=3,
                    label=f"{s['mixer']} ({mark} {s['capacity']:.3g})")
            if s["capacity"] is not None and s["capacity"] <= 2 * top:
                ax.axvline(s["capacity"], color=colors[s["mixer"]], ls="--", lw=0.8)
        ax.axhline(THRESHOLD, color="gray", lw=0.5)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(rows[0]["difficulty"])
        ax.set_title(f"{task} (n = {rows[0]['n']}); dashed: {mark}", fontsize=9)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("accuracy (mean over seeds)")
    fig.savefig(out / "accuracy.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.5 * len(tasks), 7), squeeze=False, layout="constrained")
    for j, task in enumerate(tasks):
        for i, (key, label) in enumerate((("cache_peak", "cache (states)"), ("decode_cost_mean", "decode cost"))):
            ax = axes[i][j]
            for s in (s for s in summary if s["task"] == task):
                mean = sum(s["accuracy"]) / len(s["accuracy"])
                ax.scatter([s[key]], [mean], color=colors[s["mixer"]], label=s["mixer"])
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(f"{label} at n")
        axes[0][j].set_title(task, fontsize=9)
    axes[0][0].set_ylabel("mean accuracy over levels")
    axes[1][0].set_ylabel("mean accuracy over levels")
    every = [matplotlib.lines.Line2D([], [], ls="", marker="o", color=colors[m], label=m) for m in mixers]
    axes[0][-1].legend(handles=every, fontsize=7)         # every mixer, whichever tasks it ran
    fig.savefig(out / "cost.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
