"""Every executable proof in proofs/ runs and its checks pass; `python -m proofs` runs them all."""
import subprocess
import sys
from pathlib import Path

import pytest

import proofs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", proofs.names())
def test_proof(name, capsys):
    proofs.run(name)
    assert capsys.readouterr().out.strip(), "a proof prints its statement, derivation and check"


def test_python_m_proofs_runs_them_all_and_fails_loudly():
    proc = subprocess.run([sys.executable, "-m", "proofs", "no_such_proof"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown proof" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "proofs", "universality"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "1/1 proofs checked" in proc.stdout


def test_a_failing_proof_makes_python_m_proofs_exit_1(tmp_path):
    """An injected proof whose check fails: ``python -m proofs`` prints FAILED with its name and exits 1,
    and still runs the other proofs, one of them without ``main()`` (its docstring, ``derive()``, ``check()``)."""
    pkg = tmp_path / "proofs"
    pkg.mkdir()
    for name in ("__init__.py", "__main__.py"):
        (pkg / name).write_text((ROOT / "proofs" / name).read_text())
    (pkg / "broken.py").write_text('def main():\n    print("statement")\n    assert 1 + 1 == 3, "injected failure"\n')
    (pkg / "fine.py").write_text('def main():\n    print("statement")\n')
    (pkg / "plain.py").write_text('"""plain statement"""\ndef derive():\n    print("derived")\n'
                                  'def check():\n    print("checked all")\n')
    proc = subprocess.run([sys.executable, "-m", "proofs"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2/3 proofs checked; FAILED: ['broken']" in proc.stdout
    assert "injected failure" in proc.stderr and "--- fine: checked" in proc.stdout
    assert "plain statement\nderived\nchecked all\n--- plain: checked" in proc.stdout     # no main(): derive, check
