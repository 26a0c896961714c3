"""Files written atomically (the JSON records runs leave behind, and checkpoints): written to a temporary file
beside the target and renamed over it, so that a reader, a crash or another process writing the same file sees the
old content or the new, never half of either."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)   # read once (setting it is the only way): temporary files get 0600, the result must not
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_file(path: str | Path, binary: bool = False, sync: bool = False):
    """A file to write (text, or bytes with ``binary``) that becomes ``path`` when the block ends, with the mode a
    plain ``open`` gives, flushed to disk first with ``sync``; if the block raises, ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj, lines: bool = False) -> None:
    """Write ``obj`` as indented JSON (or ``obj``, a list of strings, as lines) to ``path``, atomically."""
    with atomic_file(path) as f:
        f.write("".join(ln + "\n" for ln in obj) if lines else json.dumps(obj, indent=1) + "\n")
