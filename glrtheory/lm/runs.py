"""Plumbing shared by train, eval and generate: the corpus of a run on every process."""
from __future__ import annotations

from pathlib import Path

from glrtheory.errors import GLRError

from .config import DataConfig
from .data import Corpus, corpus_files, load_corpus, stdlib_root
from .distributed import Dist, barrier, broadcast_error


def open_corpus(data: DataConfig, d: Dist) -> Corpus:
    """The corpus of ``data``: every process checks it exists, process 0 builds the cache, the others
    wait and map it. A failure on process 0 is raised on every process (no process waits forever)."""
    root = Path(data.root) if data.root else stdlib_root()
    files = corpus_files(root)  # a missing corpus fails on every process at once
    message = None
    if d.main:
        try:
            corpus = load_corpus(root, data.cache_dir or None, data.val_percent, files=files)
        except GLRError as exc:
            message = str(exc)
    broadcast_error(message, d)
    barrier(d)
    return corpus if d.main else load_corpus(root, data.cache_dir or None, data.val_percent, build=False,
                                             files=files)
