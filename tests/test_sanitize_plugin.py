"""``benchmarks/sanitize_plugin.py``: ``SANITIZE_FROM=N`` deselects exactly the first N tests collected, in
collection order, and reports them as deselected; the rest run."""
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from sanitize_plugin import pytest_collection_modifyitems  # noqa: E402


@pytest.mark.parametrize("start, kept", [(None, "abcde"), ("0", "abcde"), ("1", "bcde"), ("4", "e"), ("5", ""),
                                         ("9", "")])
def test_the_first_n_items_are_deselected(monkeypatch, start, kept):
    monkeypatch.delenv("SANITIZE_FROM", raising=False)
    if start is not None:
        monkeypatch.setenv("SANITIZE_FROM", start)
    items, reported = list("abcde"), []
    config = SimpleNamespace(hook=SimpleNamespace(pytest_deselected=lambda items: reported.extend(items)))
    pytest_collection_modifyitems(config, items)
    assert "".join(items) == kept and "".join(reported) == "abcde"[:5 - len(kept)]


def test_pytest_runs_the_rest(tmp_path):
    """Through pytest itself: with SANITIZE_FROM=3 of five tests, the last two run and three are deselected."""
    pytest.importorskip("triton")               # the plugin's configure hook imports the Triton readout
    (tmp_path / "test_five.py").write_text(
        "import pytest\n@pytest.mark.parametrize('i', range(5))\ndef test_i(i):\n    print('RAN', i)\n")
    env = dict(os.environ, SANITIZE_FROM="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "sanitize_plugin", "-s",
                          "-q", str(tmp_path / "test_five.py")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300).stdout
    assert re.findall(r"RAN (\d)", out) == ["3", "4"] and "2 passed, 3 deselected" in out
