"""LM run configuration, read from TOML; unknown keys are errors.

A config file has the tables ``[data]``, ``[model]``, ``[train]``, ``[eval]``, ``[log]`` (every key
optional, defaults below) and may list ``patterns = [...]``: one run per pattern, each the ``[model]``
table with ``pattern`` set and the keys of ``[overrides.<pattern>]`` on top. ``train.batch`` is the
global batch in sequences; each of the ``world`` processes runs ``accum = batch / (world * micro_batch)``
micro-batches per step, so the same config gives the same optimization on 1 or N processes.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from glrtheory.checks import check_table
from glrtheory.errors import GLRError
from glrtheory.toml_file import TOMLDecodeError, parse_toml_value, read_toml



@dataclass
class DataConfig:
    root: str = ""            # "" means the running Python's stdlib
    cache_dir: str = ""       # "" means ~/.cache/glrtheory/lm
    val_percent: float = 2.0


@dataclass
class TrainConfig:
    seq_len: int = 256
    batch: int = 16           # global batch, sequences per optimizer step
    micro_batch: int = 16     # sequences per process per forward/backward
    steps: int = 100
    lr: float = 1e-3
    min_lr: float = 1e-4      # end of the cosine
    warmup: int = 10
    weight_decay: float = 0.1
    betas: list = field(default_factory=lambda: [0.9, 0.95])
    clip: float = 1.0
    seed: int = 0
    device: str = "auto"      # auto | cpu | cuda


@dataclass
class EvalConfig:
    every: int = 50           # steps between validations (and at the last step)
    windows: int = 32         # validation windows of seq_len bytes, spread evenly over the split
    batch: int = 16


@dataclass
class LogConfig:
    out_dir: str = "runs/lm"
    checkpoint_every: int = 50
    progress: bool = True


SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig, "log": LogConfig}
TOP_KEYS = set(SECTIONS) | {"model", "patterns", "overrides"}


@dataclass
class RunConfig:
    """One run: one model on the corpus. ``name`` names its folder under ``log.out_dir``."""

    name: str
    model: dict
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    log: LogConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.log.out_dir) / self.name

    def identity(self) -> dict:
        """What a checkpoint must match to be resumed: model, data split and optimization."""
        data = asdict(self.data)
        data.pop("cache_dir")
        return {"model": self.model, "data": data, "train": asdict(self.train)}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"name": self.name, "model": self.model, "data": asdict(self.data),
                "train": asdict(self.train), "eval": asdict(self.eval), "log": asdict(self.log)}


def _section(cls, table, name: str):
    check_table(table, f"config [{name}]")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise GLRError(f"unknown key(s) {', '.join(unknown)} in config [{name}]; "
                       f"known: {', '.join(known)}")
    default = cls()
    for key, value in table.items():
        want = type(getattr(default, key))
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise GLRError(f"config [{name}] {key} must be {want.__name__}, got {value!r}")
        setattr(default, key, value)
    return default


#: Most bytes one forward of the model takes (micro-batch or evaluation batch x seq_len): 2^20.
MAX_FORWARD_BYTES = 2 ** 20
#: Most bytes one optimizer step takes (batch x seq_len): 2^26, 20 times GPT-3's 3.2M tokens.
MAX_STEP_BYTES = 2 ** 26


def _check(run: RunConfig) -> None:
    t = run.train
    for key in ("seq_len", "batch", "micro_batch", "steps"):
        if getattr(t, key) < 1:
            raise GLRError(f"config [train] {key} must be >= 1, got {getattr(t, key)}")
    for name, rows in (("[train] micro_batch", t.micro_batch), ("[eval] batch", run.eval.batch)):
        if rows * t.seq_len > MAX_FORWARD_BYTES:
            raise GLRError(f"config {name} x [train] seq_len = {rows} x {t.seq_len} bytes in one forward is over "
                           f"the limit {MAX_FORWARD_BYTES}")
    if t.batch * t.seq_len > MAX_STEP_BYTES:
        raise GLRError(f"config [train] batch x seq_len = {t.batch} x {t.seq_len} bytes a step is over the limit "
                       f"{MAX_STEP_BYTES}")
    if t.batch % t.micro_batch:
        raise GLRError(f"config [train] batch={t.batch} is not a multiple of micro_batch={t.micro_batch}")
    if not 0 <= t.warmup <= t.steps or not 0 < t.lr < math.inf or not 0 <= t.min_lr <= t.lr:
        raise GLRError("config [train] needs 0 <= warmup <= steps and 0 <= min_lr <= lr, lr > 0 finite")
    if t.seed < 0:
        raise GLRError(f"config [train] seed must be >= 0, got {t.seed}")
    if not 0 <= t.weight_decay < math.inf:
        raise GLRError(f"config [train] weight_decay must be finite and >= 0, got {t.weight_decay}")
    if not t.clip > 0:
        raise GLRError(f"config [train] clip must be > 0 (inf: no clipping), got {t.clip}")
    if len(t.betas) != 2 or not all(type(b) in (int, float) and 0 <= b < 1 for b in t.betas):
        raise GLRError(f"config [train] betas must be two numbers in [0, 1), got {t.betas!r}")
    if t.device not in ("auto", "cpu", "cuda"):
        raise GLRError(f"config [train] device must be auto, cpu or cuda, got {t.device!r}")
    if run.eval.every < 1 or run.eval.windows < 1 or run.eval.batch < 1 or run.log.checkpoint_every < 1:
        raise GLRError("config [eval] every, windows, batch and [log] checkpoint_every must be >= 1")


def parse_config(raw: dict, source: str = "config") -> list[RunConfig]:
    """The runs of a parsed TOML document (one per pattern)."""
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise GLRError(f"unknown key(s) {', '.join(unknown)} at the top of {source}; "
                       f"known: {', '.join(sorted(TOP_KEYS))}")
    sections = {name: _section(cls, raw.get(name, {}), name) for name, cls in SECTIONS.items()}
    model = raw.get("model", {})
    overrides = raw.get("overrides", {})
    if not isinstance(model, dict) or not isinstance(overrides, dict) or not all(
            isinstance(table, dict) and "pattern" not in table for table in overrides.values()):
        raise GLRError(f"{source}: [model] and each [overrides.<pattern>] must be tables (the latter without pattern)")
    if "patterns" in raw and "pattern" in model:       # one would be ignored (as --set model.pattern=X was)
        raise GLRError(f"{source}: [model] sets pattern {model['pattern']!r} and the top lists patterns = "
                       f"{raw['patterns']!r}: give one (--pattern picks one of the list)")
    patterns = raw.get("patterns", [model.get("pattern")])
    if not isinstance(patterns, list) or not patterns:
        raise GLRError(f"{source}: patterns must be a non-empty list")
    if not all(isinstance(pattern, str) for pattern in patterns):
        raise GLRError(f"{source}: [model] needs a pattern (or list patterns = [...] at the top); each a string, "
                       f"got {', '.join(repr(p) for p in patterns)}")
    stray = sorted(set(overrides) - set(patterns))
    if stray:
        raise GLRError(f"{source}: [overrides] for pattern(s) not in patterns: {', '.join(stray)}")
    runs, names = [], {}
    for pattern in patterns:
        run_model = {**model, "pattern": pattern, **overrides.get(pattern, {})}
        name = pattern.replace(":", "-").replace("/", "-")
        if name in names:
            raise GLRError(f"{source}: patterns {names[name]!r} and {pattern!r} both give the run name {name!r}")
        names[name] = pattern
        run = RunConfig(name, run_model, **copy.deepcopy(sections))
        _check(run)
        runs.append(run)
    return runs


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``raw`` with each ``"section.key=value"`` set (value read as TOML, else as a string)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise GLRError(f"--set takes section.key=value, got {item!r}")
        try:
            value = parse_toml_value(text)
        except TOMLDecodeError:
            value = text
        table = raw
        for key in keys[:-1]:
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                raise GLRError(f"--set {item!r}: {key} is not a table")
        table[keys[-1]] = value
    return raw


def load_config(path: str | Path, overrides: list[str] = ()) -> list[RunConfig]:
    """Read a TOML config file, with ``--set`` style overrides; see the module docstring."""
    raw = read_toml(path)
    return parse_config(apply_overrides(raw, list(overrides)), str(path))


def select(runs: list[RunConfig], pattern: str | None) -> list[RunConfig]:
    """The runs of one pattern (by spec or run name), or all when pattern is None."""
    if pattern is None:
        return runs
    chosen = [r for r in runs if pattern in (r.model["pattern"], r.name)]
    if not chosen:
        raise GLRError(f"pattern {pattern!r} is not in the config; it has "
                       f"{', '.join(r.model['pattern'] for r in runs)}")
    return chosen
