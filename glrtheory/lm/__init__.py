"""Byte-level language models per pattern on the CPython stdlib sources, trained with torchrun/DDP.

    python -m glrtheory.lm train --config configs/lm/tiny.toml          # or: glr lm train ...
    torchrun --nproc_per_node=2 -m glrtheory.lm train --config configs/lm/h200x2.toml
    python -m glrtheory.lm eval --config ...        # bits per byte, overall and by position
    python -m glrtheory.lm generate --config ...    # sample; decode speed and cache vs cache_peak

Modules: ``data`` (corpus, split, batches), ``config`` (TOML), ``distributed`` (process group),
``build`` (model, FLOPs), ``train``, ``evaluate``, ``checkpoint``, ``generate``, ``commands``.
"""
from .config import RunConfig, load_config, parse_config
from .data import Corpus, load_corpus

__all__ = ["RunConfig", "load_config", "parse_config", "Corpus", "load_corpus"]
