"""Our STFT and PGHI's phase-gradient formulas against LTFAT (ltfatpy, the dev extra), an
independent implementation of the Gabor transform. ltfatpy is imported, not skipped when missing:
CI installs it (scripts/setup.sh), so a setup that loses it fails here rather than passing silently."""

import ltfatpy
import numpy as np
import pytest

from streamcodec.dsp import stft
from streamcodec.dsp.params import HOP, N_BINS, WIN_LENGTH
from streamcodec.dsp.phase import _FREQ_GAIN, LAMBDA, _time_steps
from streamcodec.dsp.stft import SCALE, WINDOW

L = 128 * HOP  # one 1.024 s block; LTFAT's transform is circular, so edge frames are left out
INNER = slice(4, L // HOP - 4)


def _dgt(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """LTFAT's DGT with phase referred to each window's centre: (frames, bins)."""
    c = ltfatpy.dgtreal(np.asarray(x, np.float64), window, HOP, WIN_LENGTH, pt="timeinv")
    return (c[0] if isinstance(c, tuple) else c).T


def _gauss() -> np.ndarray:
    """The Gaussian PGHI assumes for our Hann window: exp(-pi t^2 / LAMBDA)."""
    g = ltfatpy.pgauss(L, LAMBDA / L)
    return g[0] if isinstance(g, tuple) else g


def test_stft_equals_ltfat_dgt():
    t = np.arange(L) / 16000
    x = (0.5 * np.sin(2 * np.pi * (300 * t + 2000 * t**2)) + 0.01 * np.random.default_rng(0).standard_normal(L))
    ref = _dgt(x, np.fft.ifftshift(WINDOW.astype(np.float64)))
    # ours refers phase to the frame start (half a window before the centre: (-1)^m) and scales
    # a full-scale sine to magnitude 1
    ref = SCALE * ref * (-1.0) ** np.arange(N_BINS)
    ours = stft(x.astype(np.float32))
    assert np.abs(ours[INNER] - ref[INNER]).max() < 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("freq", [1234.5, 1009.375, 3000.0])
def test_time_phase_steps_match_ltfat_for_sinusoids_off_bin_centre(freq):
    """PGHI's phase advance per hop, 2 pi a m / M + (a M / lambda) dL/dm from the magnitude alone,
    against the true phase of LTFAT's Gaussian DGT."""
    c = _dgt(0.5 * np.sin(2 * np.pi * freq * np.arange(L) / 16000), _gauss())
    predicted = _time_steps(np.log(np.abs(c)))
    actual = np.angle(c[1:] / c[:-1])
    significant = np.abs(c[1:]) > 0.05 * np.abs(c).max()
    significant[: INNER.start], significant[INNER.stop :] = False, False
    error = np.angle(np.exp(1j * (actual - predicted[:-1])))
    assert significant.sum() > 100 and np.abs(error[significant]).max() < 1e-3


def test_frequency_phase_steps_match_ltfat_for_an_impulse():
    """PGHI's phase step from bin to bin, -(lambda / (a M)) dL/dn, against LTFAT's DGT of a click
    between two frame centres."""
    x = np.zeros(L)
    x[L // 2 + 37] = 1.0
    c = _dgt(x, _gauss())
    steps = _FREQ_GAIN * np.gradient(np.log(np.abs(c)), axis=0)
    actual = np.angle(c[:, 1:] / c[:, :-1])
    significant = np.abs(c[:, 1:]) > 0.05 * np.abs(c).max()
    error = np.angle(np.exp(1j * (actual - 0.5 * (steps[:, 1:] + steps[:, :-1]))))
    assert significant.sum() > 100 and np.abs(error[significant]).max() < 1e-6
