"""The byte corpus: the CPython standard-library ``.py`` sources, read as bytes (vocabulary 256).

Files are the ``*.py`` under ``root`` (default ``sysconfig.get_paths()["stdlib"]``, installed
``site-packages``/``dist-packages`` left out), sorted by relative path. A file goes to validation when
``int(sha256(relative_path)[:8], 16) % 100 < val_percent``, so the split depends on nothing but the path.
Each split is the concatenation of its files, stored once as a ``uint8`` file in a cache folder keyed by
the file list (path, size, mtime) and read back memory-mapped. ``Corpus.info`` (bytes, files, sha256 of
the concatenated corpus) goes into every result, so that runs on different Python versions never mix.
"""
from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glrtheory.errors import GLRError

SKIP_DIRS = ("site-packages", "dist-packages", "__pycache__")


def stdlib_root() -> Path:
    """The folder of the running Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(root: Path) -> list[Path]:
    """The ``.py`` files under root, sorted by relative path (installed packages left out)."""
    root = Path(root)
    if not root.is_dir():
        raise GLRError(f"corpus folder {str(root)!r} {'is not a folder' if root.exists() else 'does not exist'}")
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        found.extend(os.path.join(folder, n) for n in names if n.endswith(".py"))
    files = sorted((Path(f) for f in found if os.path.isfile(f)), key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise GLRError(f"corpus folder {str(root)!r} holds no .py files")
    return files


def is_validation(relative_path: str, val_percent: float) -> bool:
    """The split rule: the first 32 bits of sha256(path) modulo 100 below ``val_percent``."""
    return int(hashlib.sha256(relative_path.encode()).hexdigest()[:8], 16) % 100 < val_percent


@dataclass
class Corpus:
    """The two splits as memory-mapped ``uint8`` arrays, and ``info`` describing the corpus."""

    train: np.ndarray
    val: np.ndarray
    info: dict


def _cache_key(root: Path, files: list[Path], val_percent: float) -> str:
    h = hashlib.sha256(f"{root.resolve()}|{val_percent}".encode())
    for p in files:
        st = p.stat()
        h.update(f"|{p.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _build(root: Path, files: list[Path], val_percent: float, folder: Path) -> None:
    """Write train.bin, val.bin and info.json into a temporary folder, then rename it to ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    digest, counts = hashlib.sha256(), {"train": [0, 0], "val": [0, 0]}
    with open(tmp / "train.bin", "wb") as ftrain, open(tmp / "val.bin", "wb") as fval:
        for p in files:
            rel = p.relative_to(root).as_posix()
            data = p.read_bytes()
            digest.update(data)
            split = "val" if is_validation(rel, val_percent) else "train"
            (fval if split == "val" else ftrain).write(data)
            counts[split][0] += 1
            counts[split][1] += len(data)
    info = {"root": str(root), "files": len(files), "bytes": sum(c[1] for c in counts.values()),
            "sha256": digest.hexdigest(), "val_percent": val_percent,
            "train_files": counts["train"][0], "train_bytes": counts["train"][1],
            "val_files": counts["val"][0], "val_bytes": counts["val"][1]}
    (tmp / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    try:
        os.rename(tmp, folder)
    except OSError:  # another process finished first: keep its copy
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "glrtheory" / "lm"


def load_corpus(root: str | Path | None = None, cache_dir: str | Path | None = None,
                val_percent: float = 2.0, build: bool = True, files: list[Path] | None = None) -> Corpus:
    """The corpus under ``root`` (default: the stdlib), built into ``cache_dir`` once and memory-mapped.

    Raises
    ------
    GLRError
        If root is missing or holds no ``.py`` file, or a split is empty; if ``build`` is False and the
        cache is absent (ranks other than 0 wait for rank 0 to build it).
        ``files`` is ``corpus_files(root)`` when the caller has listed them already.
    """
    root = Path(root) if root else stdlib_root()
    if not 0 < val_percent < 100:
        raise GLRError(f"val_percent must lie in (0, 100), got {val_percent!r}")
    files = corpus_files(root) if files is None else files
    folder = Path(cache_dir or default_cache_dir()) / _cache_key(root, files, val_percent)
    if not (folder / "info.json").exists():
        if not build:
            raise GLRError(f"corpus cache {str(folder)!r} is missing")
        _build(root, files, val_percent, folder)
    info = json.loads((folder / "info.json").read_text())
    for split in ("train", "val"):
        if info[f"{split}_bytes"] == 0:
            raise GLRError(f"the {split} split of {str(root)!r} is empty (val_percent={val_percent})")
    mm = {s: np.memmap(folder / f"{s}.bin", dtype=np.uint8, mode="r") for s in ("train", "val")}
    return Corpus(mm["train"], mm["val"], info)


def batch_offsets(n_bytes: int, seq_len: int, seed: int, step: int, rows: int) -> np.ndarray:
    """Start offsets of the ``rows`` sequences of the global batch at ``step``, drawn uniformly from
    ``[0, n_bytes - seq_len - 1]`` by a generator seeded with ``(seed, step)``.

    Each rank takes its own rows of this global batch, so what a rank sees is fixed by (seed, step,
    rank) and the global batch does not depend on the number of processes.
    """
    if n_bytes < seq_len + 1:
        raise GLRError(f"a split of {n_bytes} bytes is shorter than seq_len + 1 = {seq_len + 1}")
    return np.random.default_rng([seed, step]).integers(0, n_bytes - seq_len, size=rows)


def in_training(train: np.ndarray, data: np.ndarray, offsets: np.ndarray, seq_len: int) -> np.ndarray:
    """``bool[len(offsets)]``: whether each window ``data[o : o + seq_len + 1]`` occurs, byte for byte, in the
    training split. The split is by file, and the standard library holds near-copies in both (the generated codec
    tables ``encodings/cp*.py``): such a window scores what training has seen, not held-out text."""
    hay = np.asarray(train).tobytes()
    return np.array([hay.find(np.asarray(data[o:o + seq_len + 1]).tobytes()) >= 0 for o in offsets], dtype=bool)


def seen_in_training(corpus: Corpus, seq_len: int, count: int, split: str = "validation") -> np.ndarray:
    """``in_training`` of the evaluation windows that ``eval_offsets(..., count, split)`` places in ``corpus.val``:
    the mask ``evaluate``'s ``seen`` takes."""
    return in_training(corpus.train, corpus.val, eval_offsets(len(corpus.val), seq_len, count, split), seq_len)


def windows(data: np.ndarray, offsets: np.ndarray, seq_len: int) -> np.ndarray:
    """``int64[len(offsets), seq_len + 1]``: the bytes ``data[o : o + seq_len + 1]`` for each offset."""
    idx = np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(seq_len + 1)
    return np.asarray(data[idx], dtype=np.int64)


def eval_offsets(n_bytes: int, seq_len: int, count: int, split: str = "validation") -> np.ndarray:
    """Offsets of evaluation windows of ``seq_len + 1`` bytes in the held-out split (the same for every run):
    ``validation``'s ``count`` spread evenly over it; ``test``'s ``count - 1`` halfway between those, so that no
    byte is in both (a second held-out set, on which a pick made on validation can be read)."""
    last = n_bytes - seq_len - 1
    if last < 0:
        raise GLRError(f"a split of {n_bytes} bytes is shorter than seq_len + 1 = {seq_len + 1}")
    fit = n_bytes // (seq_len + 1)
    if not 1 <= count <= fit:
        raise GLRError(f"{count} evaluation windows of {seq_len + 1} bytes: a split of {n_bytes} bytes holds 1 to "
                       f"{fit} without overlap")
    if split == "validation":
        return np.linspace(0, last, num=count).astype(np.int64)
    if split != "test":
        raise GLRError(f"unknown split {split!r}; use validation or test")
    if count < 2 or last / (count - 1) < 2 * (seq_len + 1):
        raise GLRError(f"{count} validation windows of {seq_len + 1} bytes leave no room between them for test "
                       f"windows in a split of {n_bytes} bytes")
    return np.linspace(0, last, num=2 * count - 1)[1::2].astype(np.int64)
