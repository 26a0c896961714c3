"""Reading the JSON files that lab and LM runs write: one that is missing, or not UTF-8 JSON holding an object (a
JSON Lines file: an object a line), is a ``GLRError`` naming it."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import GLRError
from .text_file import read_text


def _object(text: str, name: str, where: str = "") -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if where else f"line {exc.lineno}"
        raise GLRError(f"{name} is not JSON{where} ({exc.msg} at {at})") from None
    if not isinstance(data, dict):
        raise GLRError(f"{name} holds a JSON {type(data).__name__}{where}, not an object")
    return data


def _name(path: Path, what: str) -> str:
    return f"{what} {str(path)!r}" if what else repr(str(path))


def read_json(path, what: str = "") -> dict:
    """The object in the JSON file at ``path``; errors call it ``what`` (a bundle, ...) before its path."""
    path = Path(path)
    name = _name(path, what)
    return _object(read_text(path, name, "JSON"), name)


def read_json_lines(path) -> list[dict]:
    """The objects of the JSON Lines file at ``path``, one a non-blank line."""
    path, name = Path(path), _name(Path(path), "")
    return [_object(line, name, f" at line {i}") for i, line in enumerate(read_text(path, name, "JSON").splitlines(), 1)
            if line.strip()]
