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
