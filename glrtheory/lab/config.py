"""A lab sweep: its TOML form, its checks, and the cells it expands to.

    [run]    steps, batch, lrs, seeds, eval_size, warmup, weight_decay, checkpoint_every, device,
             threads (CPU threads of torch; 1 is fastest on a shared machine),
             cuda_graphs (on CUDA, each step's forward and backward replayed as CUDA graphs; default true)
    [model]  ModelConfig options shared by every cell (d_model, n_layers, n_heads, conv, mlp_mult, ...)
    mixers = [{pattern = "ssm"}, {pattern = "attention", scores = "query_key", name = "attention"}, ...]
    states = ["vector", "matrix"]            (optional; each mixer in each state, default vector only;
                                              a mixer that sets readout itself is listed once)
    [tasks.mqar]  K = [2, 4, 8], length = 64, vocab = 64     (the one list-valued parameter is swept)

A cell is (task, level, mixer, seed); it trains one model per learning rate, keeps the one best on the validation
set (the first listed of those tied) and reports its test accuracy (``runner``). Every mixer gets the same steps,
batch, LR grid, data and ``[model]`` options (d_model, layers, heads); parameter counts then differ with the mixer
(query-key attention's projections, matrix states' query, a lag bias) and each cell reports its own. The held-out
sets are fresh draws (their own seeds, ``train.HELD_OUT``), not sequences unseen in training: where a task has few
distinct sequences (copy at small L), training meets them too. Seeds lie in ``[0, MAX_SEED)``, each listed once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math

from glrtheory.checks import check_integer, check_real, check_table
from glrtheory.errors import GLRError
from glrtheory.toml_file import read_toml
from glrtheory.models import ModelConfig, SequenceModel
from glrtheory.tasks import TASKS, make_task

from .theory import DEPENDENCE_MAX_N
from .train import HELD_OUT, SEED_STRIDE

#: Seeds below this keep every training batch's seed (``seed * SEED_STRIDE + step``) apart from the held-out sets'.
MAX_SEED = min(HELD_OUT.values()) // SEED_STRIDE

STATES = {"vector": False, "matrix": True}

RUN_DEFAULTS = dict(steps=200, batch=32, lrs=[1e-3, 3e-3], seeds=[0], eval_size=256, warmup=0.1,
                    weight_decay=0.0, checkpoint_every=100, device="auto", threads=1, cuda_graphs=True)
MODEL_DEFAULTS = dict(d_model=32, n_layers=2, n_heads=2, conv=2, mlp_mult=2)


#: ModelConfig options that size the model or its reach: [model]'s alone, the same for every mixer (a mixer entry
#: setting one would compare models of different sizes; heads, head size and the convolution also move the reach).
MODEL_SIZE = ("d_model", "n_layers", "n_heads", "d_head", "conv", "mlp_mult", "mlp_hidden", "vocab_size",
              "tie_embeddings")


@dataclasses.dataclass(frozen=True)
class Mixer:
    """One mixer of the sweep: a display name and the ModelConfig options it sets (none of ``MODEL_SIZE``)."""

    name: str
    options: dict

    @classmethod
    def parse(cls, entry, state: str | None) -> "Mixer":
        if isinstance(entry, str):
            entry = {"pattern": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
            raise GLRError(f"a mixer is a pattern spec or a table with 'pattern', got {entry!r}")
        if not isinstance(entry.get("name", ""), str):
            raise GLRError(f"mixer {entry['pattern']!r}: name must be a string, got {entry['name']!r}")
        options = {k: v for k, v in entry.items() if k != "name"}
        sized = [k for k in MODEL_SIZE if k in options]
        if sized:
            raise GLRError(f"mixer {entry['pattern']!r} sets {', '.join(sized)}: the model's size is [model]'s, the "
                           f"same for every mixer (a mixer sets pattern, scores, readout, timescales, lag_bias, ...)")
        name = entry.get("name") or entry["pattern"] + (" qk" if entry.get("scores") == "query_key" else "")
        if state is not None and "readout" not in entry:
            options["readout"] = STATES[state]
            name = f"{name} ({state})"
        elif "readout" in entry and "name" not in entry:
            name += " (matrix)" if entry["readout"] else " (vector)"
        return cls(name, options)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (task, level, mixer, seed) of the sweep; ``key`` names it in the JSON lines."""

    task: str
    params: dict
    mixer: Mixer
    seed: int

    @property
    def key(self) -> str:
        text = json.dumps([self.task, self.params, self.mixer.name, self.mixer.options, self.seed], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def make_task(self):
        return make_task(self.task, **self.params)

    def model_config(self, model: dict) -> ModelConfig:
        return ModelConfig.from_dict({**model, **self.mixer.options, "vocab_size": self.make_task().vocab_size})


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A checked sweep (module docstring)."""

    run: dict
    model: dict
    mixers: tuple
    tasks: dict
    data: dict = dataclasses.field(default_factory=dict, compare=False)   # as given, for sweep.json

    def trained_unlike(self, other: "Sweep") -> list[str]:
        """The settings whose values differ from ``other``'s and change what a cell trains to: the model and
        every [run] option other than seeds (a cell's key has its seed), device, threads, cuda_graphs and
        checkpoint_every. A cell's key does not cover them, so cells of sweeps that differ there must not mix."""
        free = {"seeds", "device", "threads", "cuda_graphs", "checkpoint_every"}
        return ([f"run.{k}: {other.run[k]!r} -> {self.run[k]!r}" for k in self.run
                 if k not in free and self.run[k] != other.run[k]]
                + [f"model.{k}: {other.model.get(k)!r} -> {self.model.get(k)!r}"
                   for k in sorted(set(self.model) | set(other.model)) if self.model.get(k) != other.model.get(k)])

    def cells(self) -> list[Cell]:
        """Every (task, level, mixer, seed): the easiest level of every task first, then the next one,
        and so on (so that a sweep cut short by a time limit still covers every task)."""
        out = []
        levels = {name: sorted(params[TASKS[name].difficulty]) for name, params in self.tasks.items()}
        for i in range(max(len(v) for v in levels.values())):
            for name, params in self.tasks.items():
                if i < len(levels[name]):
                    p = {**params, TASKS[name].difficulty: levels[name][i]}
                    out += [Cell(name, p, m, s) for m in self.mixers for s in self.run["seeds"]]
        return out


def _check_run(run: dict) -> dict:
    unknown = sorted(set(run) - set(RUN_DEFAULTS))
    if unknown:
        raise GLRError(f"unknown [run] option(s): {', '.join(unknown)}; known: {', '.join(RUN_DEFAULTS)}")
    run = {**RUN_DEFAULTS, **run}
    for key in ("steps", "batch", "eval_size", "checkpoint_every", "threads"):
        check_integer(run[key], f"[run] {key}", 1)
    if run["steps"] > SEED_STRIDE:        # a seed's batches would reach the next seed's
        raise GLRError(f"[run] steps is limited to {SEED_STRIDE}, got {run['steps']}")
    lrs = run["lrs"]
    if not isinstance(lrs, list) or not lrs or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                        and 0 < x < math.inf for x in lrs):
        raise GLRError(f"[run] lrs must be a non-empty list of positive finite numbers, got {lrs!r}")
    check_real(run["warmup"], "[run] warmup", 0, 1)          # a share of the steps
    check_real(run["weight_decay"], "[run] weight_decay", 0)
    if not isinstance(run["cuda_graphs"], bool):
        raise GLRError(f"[run] cuda_graphs must be true or false, got {run['cuda_graphs']!r}")
    seeds = run["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            and 0 <= s < MAX_SEED for s in seeds):
        raise GLRError(f"[run] seeds must be a non-empty list of integers in [0, {MAX_SEED}), got {seeds!r}")
    if len(set(seeds)) < len(seeds):      # a repeated seed would train its cells twice and count them as two seeds
        raise GLRError(f"[run] seeds lists a seed twice: {seeds}")
    return run


def _check_task(name: str, params: dict) -> dict:
    if name not in TASKS:
        raise GLRError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    axis = TASKS[name].difficulty
    levels = params.get(axis)
    levels = [levels] if isinstance(levels, int) else levels
    if not isinstance(levels, list) or not levels:
        raise GLRError(f"task {name!r} needs {axis} = [levels...] (its swept parameter)")
    for level in levels:   # builds each task once, so a level that does not fit fails now
        n = make_task(name, **{**params, axis: level}).seq_len
        if n > DEPENDENCE_MAX_N:    # refused before training, not when the report is written
            raise GLRError(f"task {name!r} has sequences of n = {n}; the lab's predictions take n <= "
                           f"{DEPENDENCE_MAX_N}")
    if len(set(levels)) < len(levels):       # a repeated level would train its cells twice and count them as seeds
        raise GLRError(f"task {name!r} lists a level of {axis} twice: {levels}")
    return {**params, axis: levels}


def sweep_from_dict(data: dict) -> Sweep:
    """Check a sweep given as a dict (the TOML tables) and fill in defaults."""
    unknown = sorted(set(data) - {"run", "model", "mixers", "states", "tasks"})
    if unknown:
        raise GLRError(f"unknown sweep section(s): {', '.join(unknown)}; known: run, model, mixers, states, tasks")
    run = _check_run(dict(check_table(data.get("run", {}), "[run]")))
    model = {**MODEL_DEFAULTS, **check_table(data.get("model", {}), "[model]")}
    states = data.get("states", [None])
    if not isinstance(states, list) or not states:
        raise GLRError(f"states must be a non-empty list (states = [\"vector\", \"matrix\"]), got {states!r}")
    bad = [s for s in states if s is not None and (not isinstance(s, str) or s not in STATES)]
    if bad:
        raise GLRError(f"unknown state(s) {bad}; known: {', '.join(STATES)}")
    if not data.get("mixers"):
        raise GLRError("the sweep lists no mixers")
    if not isinstance(data["mixers"], list):
        raise GLRError(f"mixers must be a list (mixers = [\"ssm\", {{pattern = \"power2\"}}]), got {data['mixers']!r}")
    named = {}
    for m in (Mixer.parse(e, s) for e in data["mixers"] for s in states):
        if named.setdefault(m.name, m) != m:       # a mixer that sets readout itself comes once from every state
            raise GLRError(f"two mixers are named {m.name!r} ({named[m.name].options} and {m.options}): "
                           "give each its own 'name'")
    mixers = tuple(named.values())
    if not data.get("tasks"):
        raise GLRError("the sweep lists no tasks")
    tasks = {name: _check_task(name, dict(check_table(params, f"[tasks.{name}]")))
             for name, params in check_table(data["tasks"], "tasks").items()}
    sweep = Sweep(run, model, mixers, tasks, data)
    for mixer in mixers:   # a bad model option, pattern or score form fails before any training
        SequenceModel(ModelConfig.from_dict({**model, **mixer.options, "vocab_size": 4}))
    return sweep


def load_sweep(path) -> Sweep:
    """Read and check a sweep TOML file."""
    return sweep_from_dict(read_toml(path))
