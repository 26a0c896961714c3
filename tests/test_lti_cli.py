"""`glr lti`: JSON keys and values against the Python API, the plot, and one-line errors."""
import json

import numpy as np
import pytest
import scipy.signal

from glrtheory.cli import main
from glrtheory.symbolic.lti import LTISystem
from glrtheory.symbolic.lti_stability import memory_horizon, spectral_radius

KEYS = ["transfer_function", "poles", "spectral_radius", "stable", "memory_horizon", "impulse_response"]


def run_json(capsys, *argv):
    assert main(["lti", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_and_values(capsys):
    out = run_json(capsys, "power2", "--n", "9", "--coef", "1=0.5", "--coef", "2=-0.3", "--coef", "4=0.1",
                   "--coef", "8=0.05", "--coef", "a0=2")
    assert list(out) == KEYS
    s = LTISystem.from_pattern("power2", n=9, b={1: 0.5, 2: -0.3, 4: 0.1, 8: 0.05}, a=2)
    assert out["transfer_function"] == s.transfer_function_string() == "2/(1 - 0.5*z**-1 + 0.3*z**-2 - 0.1*z**-4 - 0.05*z**-8)"
    poles = np.array([complex(re, im) for re, im in out["poles"]])
    assert poles.size == 8
    assert np.allclose(np.sort_complex(poles), np.sort_complex(np.roots([1, -0.5, 0.3, 0, -0.1, 0, 0, 0, -0.05])))
    assert out["spectral_radius"] == pytest.approx(np.abs(poles).max(), rel=1e-12)
    assert out["stable"] is True and out["memory_horizon"] == memory_horizon(s)
    ref = scipy.signal.lfilter([2], [1, -0.5, 0.3, 0, -0.1, 0, 0, 0, -0.05], np.eye(64)[0])
    assert len(out["impulse_response"]) == 64
    assert np.allclose(out["impulse_response"], ref, rtol=1e-12, atol=0)


def test_unstable_and_fir(capsys):
    out = run_json(capsys, "ssm", "--coef", "1=1.5")
    assert out["stable"] is False and out["memory_horizon"] is None and out["spectral_radius"] == 1.5
    assert out["impulse_response"][:3] == [1.0, 1.5, 2.25]
    out = run_json(capsys, "window:3", "--coef", "a1=0.5", "--coef", "a2=0.25")
    assert out["transfer_function"] == "1 + 0.5*z**-1 + 0.25*z**-2"
    assert out["spectral_radius"] == 0 and out["stable"] and out["memory_horizon"] == 3
    assert out["impulse_response"][:4] == [1, 0.5, 0.25, 0]


def test_text_and_plot(capsys, tmp_path):
    path = tmp_path / "lti.png"
    assert main(["lti", "lags:1,2", "--coef", "1=0.5", "--coef", "2=0.3", "--plot", str(path)]) == 0
    text = capsys.readouterr().out
    assert "H(z)             1/(1 - 0.5*z**-1 - 0.3*z**-2)" in text and "stable           yes" in text
    assert f"spectral radius  {spectral_radius(LTISystem.from_lags([1, 2], b={1: 0.5, 2: 0.3})):.10g}" in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,message", [
    (["fenwick", "--coef", "1=0.5"], "not LTI"),
    (["blocks:4"], "not LTI"),
    (["power2", "--coef", "1=0.5"], "no --coef for B-lag(s) 2, 4, 8, 16, 32"),
    (["window:2"], "no --coef for A-lag(s) 1"),
    (["lags:1", "--coef", "1=nan"], "not finite"),
    (["lags:1", "--coef", "1=inf"], "not finite"),
    (["lags:1", "--coef", "1=x"], "not a number"),
    (["lags:1", "--coef", "b1=0.5"], "l=VALUE"),
    (["lags:1", "--coef", "3=0.5"], "B-lag 3 is not a lag"),
    (["lags:1", "--coef", "1=0.5", "--coef", "1=0.2"], "twice"),
    (["lags:1", "--coef", "1=0.5", "--eps", "2"], "eps"),
    (["lags:1", "--coef", "1=0.5", "--plot", "x.pdf"], ".png"),
])
def test_errors(capsys, argv, message):
    assert main(["lti", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("glr: error:") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["lags:1", "--coef", "1=1e308"], ["lags:1", "--coef", "1=1e308", "--coef", "a0=1e308"],
                                  ["lags:1,2", "--coef", "1=1e308", "--coef", "2=1e308"],
                                  ["lags:1", "--coef", "1=0.5", "--coef", "a0=1e308"]])
def test_huge_coefficients_give_no_numpy_runtime_warning(capsys, argv):
    assert main(["lti", *argv, "--json"]) in (0, 2)
    lines = capsys.readouterr().err.splitlines()
    # main prints every warning as one "glr: warning:" line; only the LTI layer's own may appear
    assert all(line.startswith("glr: warning: companion matrix of order") for line in lines
               if line.startswith("glr: warning:")), lines
    assert not any("encountered" in line for line in lines), lines
