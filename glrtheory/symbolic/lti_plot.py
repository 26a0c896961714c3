"""Picture of an LTI pattern: poles and zeros against the unit circle, and the impulse response."""
from __future__ import annotations

import numpy as np

from .lti import LTISystem
from .lti_poles import DENSE_EIG_MAX_ORDER, dominant_poles, pole_estimate


def draw(system: LTISystem, fig, length: int = 64, frequencies: int | None = None) -> None:
    """Draw on a matplotlib figure: left, poles (x) and zeros (o) with the unit circle; right, the
    impulse response ``h_0 .. h_{length-1}`` (from the recurrence); with ``frequencies``, a second row
    with the magnitude (dB) and phase of ``H(e^{i omega})`` at that many points of ``[0, pi)``."""
    if frequencies:
        (ax_p, ax_h), (ax_m, ax_f) = fig.subplots(2, 2)
        draw_frequency_response(system, ax_m, ax_f, frequencies)
    else:
        ax_p, ax_h = fig.subplots(1, 2)
    theta = np.linspace(0, 2 * np.pi, 400)
    ax_p.plot(np.cos(theta), np.sin(theta), color="0.6", lw=1, label="unit circle")
    if system.order > DENSE_EIG_MAX_ORDER:
        poles, title = dominant_poles(system), "dominant poles"
    else:
        poles, title = pole_estimate(system).poles, "poles"
    zeros = system.numeric_zeros()
    ax_p.scatter(poles.real, poles.imag, marker="x", color="C3", label=f"{title} ({poles.size})")
    if zeros.size:
        ax_p.scatter(zeros.real, zeros.imag, marker="o", facecolors="none", edgecolors="C0",
                     label=f"zeros ({zeros.size})")
    ax_p.set_aspect("equal")
    ax_p.axhline(0, color="0.85", lw=0.5)
    ax_p.axvline(0, color="0.85", lw=0.5)
    rho = float(np.abs(poles).max()) if poles.size else 0.0
    ax_p.set_title(f"{system.spec}: pole-zero map, spectral radius {rho:.4g}")
    ax_p.set_xlabel("Re z")
    ax_p.set_ylabel("Im z")
    ax_p.legend(loc="upper right", fontsize="small")
    h = system.impulse_response(length)
    ax_h.stem(np.arange(length), h, basefmt=" ")
    ax_h.set_title("impulse response h_t")
    ax_h.set_xlabel("t")


def draw_frequency_response(system: LTISystem, ax_mag, ax_phase, points: int = 512) -> None:
    """Magnitude ``20 log10 |H(e^{i omega})|`` and phase ``angle H`` against ``omega / pi``."""
    omega, H = system.frequency_response(points)
    with np.errstate(divide="ignore"):
        ax_mag.plot(omega / np.pi, 20 * np.log10(np.abs(H)), lw=1)
    ax_mag.set_title("magnitude |H| (dB)")
    ax_mag.set_xlabel("omega / pi")
    ax_phase.plot(omega / np.pi, np.angle(H) / np.pi, lw=1)
    ax_phase.set_title("phase angle H / pi")
    ax_phase.set_xlabel("omega / pi")
