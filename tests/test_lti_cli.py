"""`glr lti`: JSON keys and values against the Python API and scipy, shared and symbolic coefficients
(the stable range against numpy roots), the frequency response, the plot, and one-line errors."""
import json

import numpy as np
import pytest
import scipy.signal
import sympy as sp

from glrtheory import GLRError
from glrtheory.cli import main
from glrtheory.symbolic.lti import LTISystem
from glrtheory.symbolic.lti_scan import stable_range
from glrtheory.symbolic.lti_stability import spectral_radius
from helpers import run_cli as run

KEYS = ["transfer_function", "poles", "spectral_radius", "stable", "memory_horizon", "impulse_response"]


def run_json(capsys, *argv):
    assert main(["lti", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_and_values(capsys):
    out = run_json(capsys, "power2", "--n", "9", "--coef", "1=0.5", "--coef", "2=-0.3", "--coef", "4=0.1",
                   "--coef", "8=0.05", "--coef", "a0=2")
    assert list(out) == KEYS
    s = LTISystem.from_pattern("power2", n=9, b={1: 0.5, 2: -0.3, 4: 0.1, 8: 0.05}, a=2)
    assert (out["transfer_function"] == s.transfer_function_string()
            == "2/(1 - 0.5*z**-1 + 0.3*z**-2 - 0.1*z**-4 - 0.05*z**-8)")
    poles = np.array([complex(re, im) for re, im in out["poles"]])
    assert poles.size == 8
    assert np.allclose(np.sort_complex(poles), np.sort_complex(np.roots([1, -0.5, 0.3, 0, -0.1, 0, 0, 0, -0.05])))
    assert out["spectral_radius"] == pytest.approx(np.abs(poles).max(), rel=1e-12)
    long = scipy.signal.lfilter([2], [1, -0.5, 0.3, 0, -0.1, 0, 0, 0, -0.05], np.eye(4000)[0])
    horizon = int(np.nonzero(np.abs(long) >= 1e-3)[0].max()) + 1      # last |h_t| >= eps (default 1e-3), + 1
    assert horizon == 24
    assert out["stable"] is True and out["memory_horizon"] == horizon
    ref = long[:64]
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
    (["window:4000", "--n", "100000", "--coef", "all=0.1"], "window:4000 at n=100000 has A-lags [0, 1, 2, 3, 4, 5, "
     "..., 3998, 3999] (4000 in all); no --coef for A-lag(s) 1, 2, 3, 4, 5, 6, ..., 3998, 3999 (3999 in all)"),
    (["lags:1,2,3,4,5,6,7,8", "--coef", "1=0.5"], "has B-lags [1, 2, 3, 4, 5, 6, 7, 8]; no --coef for B-lag(s) 2, 3, "
     "4, 5, 6, 7, 8 (give"),
    (["lags:1,2,3,4,5,6,7,8,9", "--coef", "1=0.5"], "has B-lags [1, 2, 3, 4, 5, 6, ..., 8, 9] (9 in all); no --coef "
     "for B-lag(s) 2, 3, 4, 5, 6, 7, 8, 9 (give"),
    (["lags:1", "--coef", "1=nan"], "'nan' is not a finite number or a symbol name"),
    (["lags:1", "--coef", "1=-Infinity"], "'-Infinity' is not a finite number or a symbol name"),
    (["lags:1", "--coef", "1=x+1"], "not a finite number or a symbol name"),
    (["lags:1", "--coef", "1=z"], "not a finite number or a symbol name"),
    (["lags:1", "--coef", "1=1_0"], "'1_0' is not a finite number or a symbol name"),
    (["lags:1,2", "--coef", "all=0.3", "--coef", "1=0.2"], "give single lags with rest= instead"),
    (["lags:1,2", "--coef", "rest=0", "--coef", "rest=1"], "rest= twice"),
    (["power2", "--coef", "1=b1", "--coef", "rest=b2"], "limited to B-order <= 6, got 32"),
    (["lags:1", "--coef", "1=b", "--freq"], "need numbers"),
    (["lags:1", "--coef", "1=b", "--range", "1"], "expected 2 arguments"),
    (["lags:1", "--coef", "1=b", "--range", "1", "0"], "lo <= hi"),
    (["lags:1", "--coef", "1=b", "--step", "0"], "step > 0"),
    (["power2", "--n", "65536", "--coef", "all=b"], "SCAN_MAX_WORK"),
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


@pytest.mark.parametrize("argv, stable, radius", [
    (["lags:1", "--coef", "1=1e308"], False, 1e308),               # h_t = 1e308 h_{t-1}: pole 1e308
    (["lags:1", "--coef", "1=1e308", "--coef", "a0=1e308"], False, 1e308),
    (["lags:1,2", "--coef", "1=1e308", "--coef", "2=1e308"], False, None),   # pole ~1e308, approximate
    (["lags:1", "--coef", "1=0.5", "--coef", "a0=1e308"], True, 0.5),        # a0 scales, poles unchanged
])
def test_huge_coefficients_give_no_numpy_runtime_warning(capsys, argv, stable, radius):
    assert main(["lti", *argv, "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["stable"] is stable
    if radius is not None:
        assert report["spectral_radius"] == pytest.approx(radius, rel=1e-12)
    # main prints every warning as one "glr: warning:" line; only the LTI layer's own may appear
    lines = err.splitlines()
    assert all(line.startswith("glr: warning: companion matrix of order") for line in lines
               if line.startswith("glr: warning:")), lines
    assert not any("encountered" in line for line in lines), lines



@pytest.mark.parametrize("coef, shown", [("1=2", "1/(1 - 2*z**-1)"), ("1=9007199254740992", "9007199254740992*z**-1"),
                                         ("1=1e200", "1/(1 - 1.0e+200*z**-1)")])
def test_integer_coefficients_print_exactly_up_to_2_to_the_53(capsys, coef, shown):
    """A whole-number coefficient prints as an integer where a float holds it exactly (up to 2^53); beyond, as the
    float it is (1e200 printed as its 201 digits)."""
    assert main(["lti", "lags:1", "--coef", coef]) == 0
    assert shown in capsys.readouterr().out

def test_rest_and_all_equal_spelled_out_coefficients(capsys):
    spelled = run_json(capsys, "power2", "--n", "9", "--coef", "1=0.5", "--coef", "2=0", "--coef", "4=0",
                       "--coef", "8=0")
    assert run_json(capsys, "power2", "--n", "9", "--coef", "1=0.5", "--coef", "rest=0") == spelled
    shared = run_json(capsys, "power2", "--n", "9", "--coef", "all=0.2")
    assert shared == run_json(capsys, "power2", "--n", "9", *sum([["--coef", f"{l}=0.2"] for l in (1, 2, 4, 8)], []))
    ref = scipy.signal.lfilter([1], [1, -0.2, -0.2, 0, -0.2, 0, 0, 0, -0.2], np.eye(64)[0])
    assert np.allclose(shared["impulse_response"], ref, rtol=1e-12, atol=0)
    fir = run_json(capsys, "window:3", "--coef", "arest=0.5")      # a0 keeps its default 1
    assert fir["impulse_response"][:4] == [1, 0.5, 0.5, 0]


def test_symbols_give_the_stability_region(capsys):
    out = run_json(capsys, "lags:1,2", "--coef", "1=b1", "--coef", "2=b2")
    assert out["symbols"] == ["b1", "b2"] and out["stable_range"] is None
    x, y = sp.symbols("b1 b2", real=True)
    region = sp.sympify(out["stability_region"], locals={"b1": x, "b2": y})
    assert region.free_symbols == {x, y}
    rng = np.random.default_rng(3)
    for b1, b2 in rng.uniform(-2.5, 2.5, size=(200, 2)):
        rho = np.abs(np.roots([1, -b1, -b2])).max()
        if abs(rho - 1) > 1e-6:
            assert region.subs({x: b1, y: b2}) in (sp.true, sp.false)
            assert bool(region.subs({x: b1, y: b2})) == (rho < 1), (b1, b2)


@pytest.mark.parametrize("n", [9, 64])
def test_stable_range_of_a_shared_coefficient(capsys, n):
    out = run_json(capsys, "power2", "--n", str(n), "--coef", "all=b", "--range", "-1", "1", "--step", "0.001")
    lags = [2**k for k in range((n - 1).bit_length())]
    (lo, hi), = out["stable_range"]["intervals"]
    assert abs(hi - 1 / len(lags)) <= 1e-3 + 1e-12  # |sum_l e^{-i w l}| <= L, equality at w = 0: b < 1/L

    def rho(b):
        den = np.zeros(max(lags) + 1)
        den[0] = 1
        den[lags] = -b
        return np.abs(np.roots(den)).max()

    assert rho(lo) < 1 < rho(lo - 2e-3) and rho(hi - 1e-3) < 1 < rho(hi + 2e-3)


def test_scan_against_numpy_roots():
    c = sp.Symbol("c", real=True)
    rng = np.random.default_rng(11)
    for _ in range(6):
        lags = sorted(rng.choice(np.arange(1, 6), size=3, replace=False).tolist())
        beta, gamma = rng.uniform(-0.6, 0.6, 3), rng.choice([-1.0, 1.0, 0.5], 3)
        s = LTISystem.from_lags(lags, b={l: be + ga * c for l, be, ga in zip(lags, beta, gamma)})
        r = stable_range(s, lo=-3, hi=3, step=0.01)
        grid = -3 + 0.01 * np.arange(601)
        inside = np.zeros(grid.size, bool)
        for a, b in r.intervals:
            inside |= (grid >= a - 1e-9) & (grid <= b + 1e-9)
        for g, flag in zip(grid, inside):
            den = np.zeros(max(lags) + 1)
            den[0] = 1
            for l, be, ga in zip(lags, beta, gamma):
                den[l] = -(be + ga * g)
            rho = np.abs(np.roots(den)).max()
            if abs(rho - 1) > 0.02:                   # away from an edge the scan is exact
                assert flag == (rho < 1), (lags, beta, gamma, g, rho)
    with pytest.raises(GLRError, match="not affine"):
        stable_range(LTISystem.from_lags([1], b={1: c**2}))
    with pytest.raises(GLRError, match="one symbol"):
        stable_range(LTISystem.from_lags([1, 2]))


def test_frequency_response(capsys, tmp_path):
    s = LTISystem.from_pattern("power2", n=9, b={1: 0.5, 2: -0.3, 4: 0.1, 8: 0.05}, a=2)
    num, den = s.numeric_coefficients()
    for points, whole in ((1, False), (37, False), (64, True)):
        w, H = s.frequency_response(points, whole=whole)
        w_ref, H_ref = scipy.signal.freqz(num, den, worN=points, whole=whole)
        assert np.allclose(w, w_ref, rtol=0, atol=1e-15)
        assert np.linalg.norm(H - H_ref) / np.linalg.norm(H_ref) < 1e-12
    _, H = LTISystem.from_lags([1], b={1: 1}).frequency_response(4)
    assert np.isinf(H[0]) and np.isfinite(H[1:]).all()               # the pole z = 1 at omega = 0
    out = run_json(capsys, "power2", "--n", "9", "--coef", "1=0.5", "--coef", "2=-0.3", "--coef", "4=0.1",
                   "--coef", "8=0.05", "--coef", "a0=2", "--freq", "37")
    f = out["frequency_response"]
    _, H_ref = scipy.signal.freqz(num, den, worN=37)
    assert (np.allclose(f["magnitude"], np.abs(H_ref), rtol=1e-12)
            and np.allclose(f["phase"], np.angle(H_ref), rtol=1e-12))
    path = tmp_path / "bode.png"
    assert main(["lti", "lags:1", "--coef", "1=0.9", "--freq", "--plot", str(path)]) == 0
    text = capsys.readouterr().out
    assert "omega/pi   |H|          |H| dB     phase/pi" in text and text.count("\n") > 16
    assert "0          10           20" in text                       # |H(1)| = 1 / (1 - 0.9)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stable_range_edges_are_exact_grid_values():
    """b_1 = c has the one pole c: stable iff |c| < 1 (c = +-1 puts the pole on the circle, not stable). Grid
    values are exact binary fractions, so the intervals are exact: the last stable grid value ends an
    interval, and hi itself is on the grid."""
    c = sp.Symbol("c", real=True)
    s = LTISystem.from_lags([1], b={1: c})
    assert stable_range(s, lo=-2, hi=2, step=0.25).intervals == [[-0.75, 0.75]]
    assert stable_range(s, lo=-0.5, hi=0.5, step=0.25).intervals == [[-0.5, 0.5]]
    assert stable_range(s, lo=0.5, hi=0.5, step=0.25).intervals == [[0.5, 0.5]]     # a one-value grid
    assert stable_range(s, lo=1, hi=2, step=0.25).intervals == []
    assert stable_range(s, lo=-1, hi=-1, step=0.25).intervals == []


@pytest.mark.parametrize("coef", ["1=1", "1=-1"])
def test_a_pole_on_the_unit_circle_is_not_stable(capsys, coef):
    """b_1 = +-1: the pole +-1 has modulus exactly 1, which is not stable (and the response never decays)."""
    report = run_json(capsys, "lags:1", "--coef", coef)
    assert report["spectral_radius"] == 1 and report["stable"] is False and report["memory_horizon"] is None


def test_eps_1_is_refused_with_symbols_too(capsys):
    code, out, err = run(capsys, "lti", "lags:1", "--coef", "1=b", "--eps", "1")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--eps must lie in (0, 1)" in err


def test_symbolic_json_keys_and_values(capsys):
    data = run_json(capsys, "lags:1", "--coef", "1=b", "--range", "-2", "2", "--step", "0.25")
    assert list(data) == ["transfer_function", "symbols", "stability_region", "stable_range"]
    r = stable_range(LTISystem.from_lags([1], b={1: sp.Symbol("b", real=True)}), lo=-2, hi=2, step=0.25)
    assert data["stable_range"] == {"symbol": "b", "intervals": [[-0.75, 0.75]], "lo": -2.0, "hi": 2.0, "step": 0.25,
                                    "circle_points": r.points, "circle_points_max": r.finest}


def test_two_symbols_at_the_schur_cohn_order_limit(capsys):
    """Two symbols are refused beyond SCHUR_COHN_MAX_ORDER = 6 only: B-order 6 gives the region."""
    data = run_json(capsys, "lags:1,6", "--coef", "1=b1", "--coef", "6=b2")
    assert data["symbols"] == ["b1", "b2"]
    b1, b2 = sp.symbols("b1 b2", real=True)
    region = sp.sympify(data["stability_region"], locals={"b1": b1, "b2": b2})
    for x, y in ((0.2, 0.3), (0.9, 0.5), (-0.4, -0.5), (0.1, 1.2)):
        rho = np.abs(np.roots([1, -x, 0, 0, 0, 0, -y])).max()
        assert abs(rho - 1) > 1e-3 and bool(region.subs({b1: x, b2: y})) == (rho < 1), (x, y, rho)
    code, out, err = run(capsys, "lti", "lags:1,7", "--coef", "1=b1", "--coef", "7=b2")
    assert code == 2 and "limited to B-order <= 6, got 7" in err


def test_eps_sets_the_memory_horizon(capsys):
    """h_t = 0.5^t: the last |h_t| >= 0.01 is h_6 (0.0156), so the horizon is 7; at the default 1e-3 it is 10."""
    assert run_json(capsys, "ssm", "--coef", "1=0.5", "--eps", "0.01")["memory_horizon"] == 7
    assert run_json(capsys, "ssm", "--coef", "1=0.5")["memory_horizon"] == 10
