"""Reading a text file that a user names or a run wrote: a folder, a missing file, or bytes that are not UTF-8 are
a ``GLRError`` naming the file."""
from __future__ import annotations

from pathlib import Path

from .errors import GLRError


def read_text(path: Path, name: str, kind: str) -> str:
    """The UTF-8 text of the ``kind`` file (JSON, TOML) at ``path``; errors call it ``name``."""
    if path.is_dir():
        raise GLRError(f"{name} is a folder, not a {kind} file")
    if not path.is_file():
        raise GLRError(f"{name} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GLRError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
