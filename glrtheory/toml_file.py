"""Reading the TOML configs of the lab and the LM runs: a missing or malformed file is a ``GLRError``."""
from __future__ import annotations

from pathlib import Path

from .errors import GLRError
from .text_file import read_text

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError


def read_toml(path) -> dict:
    """The table in the TOML file at ``path``; a GLRError naming the file if it is absent or not TOML."""
    path = Path(path)
    text = read_text(path, f"config file {str(path)!r}", "TOML")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GLRError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def parse_toml_value(text: str):
    """One TOML value written as text (``3``, ``"a"``, ``[1, 2]``); raises TOMLDecodeError if it is none."""
    return tomllib.loads(f"v = {text}")["v"]
