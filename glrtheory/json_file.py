"""Writing the JSON that runs leave behind (results, bundles, sweep and machine records) atomically: a reader,
or another process writing the same file, sees the old content or the new, never half of either."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)   # read once (setting it is the only way): temporary files get 0600, the result must not
os.umask(_UMASK)


def write_json(path: str | Path, obj, lines: bool = False) -> None:
    """Write ``obj`` as indented JSON (or ``obj``, a list of strings, as lines) to a temporary file
    beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(ln + "\n" for ln in obj) if lines else json.dumps(obj, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)           # the mode a plain open() would give
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
