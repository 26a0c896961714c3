"""Results of LM runs: gather them into one JSON bundle, then draw the figures and write the tables.

``collect`` reads every ``<run>/log.jsonl`` (and ``result.json``, ``generate.json`` where present) under
a runs folder, and the scaling runs (the same config on 1 and on N processes), with a machine header.
``render`` turns a bundle into ``val_bpb.png`` (validation bits per byte against training tokens and
against training FLOPs, one line per pattern) and ``tables.md`` (final bits per byte overall and by
position, decode speed and cache against ``cache_peak``, tokens per second on 1 and N devices).
"""
from __future__ import annotations

import platform
from pathlib import Path

import torch

from glrtheory.errors import GLRError
from glrtheory.json_file import read_json, read_json_lines


def _read_run(folder: Path) -> dict:
    run = {"log": read_json_lines(folder / "log.jsonl")}
    for name in ("result", "generate"):
        if (folder / f"{name}.json").exists():
            data = read_json(folder / f"{name}.json")
            run[name] = {k: v for k, v in data.items() if k != "log"}
    return run


def machine() -> dict:
    cuda = torch.cuda.is_available()
    return {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu_count": __import__("os").cpu_count(),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []}


def collect(runs_dir: str | Path, scaling: list[str | Path] = ()) -> dict:
    """A bundle of every run under ``runs_dir`` (folders with a log.jsonl) and of the scaling runs."""
    runs_dir = Path(runs_dir)
    folders = sorted(p.parent for p in runs_dir.glob("*/log.jsonl"))
    if not folders:
        raise GLRError(f"no run with a log.jsonl under {str(runs_dir)!r}")
    bundle = {"machine": machine(), "runs": {f.name: _read_run(f) for f in folders}, "scaling": []}
    keys = ("run", "world", "device", "step", "tokens_per_s")
    for folder in scaling:
        logs = sorted(Path(folder).glob("*/log.jsonl"))
        if not logs:
            raise GLRError(f"no scaling run with a log.jsonl under {str(folder)!r}")
        for f in logs:
            last = (read_json_lines(f) or [{}])[-1]
            if not set(keys) <= set(last):
                raise GLRError(f"{str(f)!r} does not end with a training row ({', '.join(keys)})")
            bundle["scaling"].append({k: last[k] for k in keys})
    return bundle


def _fmt(x, digits=3):
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def tables(bundle: dict) -> str:
    """Markdown: final validation bits per byte (overall, over the windows unseen in training where the log has
    it, by position), decode, scaling."""
    out = ["| pattern | steps | tokens | params | fwd FLOPs/token | tokens/s | val bpb | unseen (windows) "
           "| by position |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, run in bundle["runs"].items():
        last = run["log"][-1]
        pos = ", ".join(f"{k}: {v:.3f}" for k, v in last["val_bpb_by_position"].items())
        done = "" if run.get("result") else " (stopped)"
        unseen = last.get("val_bpb_unseen")
        unseen = "-" if unseen is None else f"{unseen:.3f} ({last['val_windows_unseen']})"
        out.append(f"| {last['pattern']} | {last['step']}{done} | {last['tokens']:,} | {last['params']:,} | "
                   f"{last['forward_flops_per_token']:,.0f} | {last['tokens_per_s']:,.0f} | {last['val_bpb']:.3f} | "
                   f"{unseen} | {pos} |")
    rows = [(run["generate"], r) for run in bundle["runs"].values() if "generate" in run
            for r in run["generate"]["decode"]]
    if rows:
        out += ["", "| pattern | context | tokens/s | tokens/s (last 256) | held (peak, per layer) | cache_peak "
                "(analysis) | cache MB (peak, all layers) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for _, r in rows:
            out.append(f"| {r['pattern']} | {r['context']} | {r['tokens_per_s']:.0f} | {r['tokens_per_s_last']:.0f} | "
                       f"{r['held_peak']} | {r['cache_peak']} | {r['cache_bytes_peak'] / 2**20:.2f} |")
    if bundle.get("scaling"):
        out += ["", "| run | processes | tokens/s | efficiency vs 1 |", "| --- | ---: | ---: | ---: |"]
        base = {s["run"]: s["tokens_per_s"] for s in bundle["scaling"] if s["world"] == 1}
        for s in bundle["scaling"]:
            eff = s["tokens_per_s"] / (s["world"] * base[s["run"]]) if s["run"] in base else float("nan")
            out.append(f"| {s['run']} | {s['world']} | {s['tokens_per_s']:,.0f} | {eff:.2f} |")
    return "\n".join(out) + "\n"


def render(bundle: dict, dest: str | Path) -> list[Path]:
    """Write ``val_bpb.png`` and ``tables.md`` into ``dest``; return their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text, gpus = tables(bundle), bundle["machine"].get("gpus") or ["cpu"]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, run in bundle["runs"].items():
        log = run["log"]
        for ax, key in zip(axes, ("tokens", "train_flops")):
            ax.plot([ln[key] for ln in log], [ln["val_bpb"] for ln in log], marker="o", label=log[-1]["pattern"])
    axes[0].set(xlabel="training tokens (bytes)", ylabel="validation bits per byte")
    axes[1].set(xlabel="training FLOPs (3 x forward, FlopCounterMode)", xscale="log")
    axes[0].legend()
    fig.suptitle(f"byte-level LM per pattern ({len(gpus)} x {gpus[0]})")
    fig.tight_layout()
    paths = [dest / "val_bpb.png", dest / "tables.md"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    paths[1].write_text(text)
    return paths
