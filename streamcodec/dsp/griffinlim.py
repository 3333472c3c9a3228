"""Griffin-Lim refinement of a phase estimate (the fast variant with momentum, Perraudin et al.
2013). Started from the PGHI phase, a few iterations remove most of PGHI's remaining inconsistency.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streamcodec.dsp.params import HOP, WIN_LENGTH
from streamcodec.dsp.stft import SCALE, WINDOW

_OVERLAP = WIN_LENGTH // HOP
_WIN2 = (WINDOW.astype(np.float64) ** 2).reshape(_OVERLAP, HOP)


def _frames_to_signal(frames: np.ndarray) -> np.ndarray:
    """Least-squares overlap-add of consecutive frames into one local signal."""
    k = len(frames)
    y = (np.fft.irfft(frames / SCALE, n=WIN_LENGTH, axis=1) * WINDOW).reshape(k, _OVERLAP, HOP)
    acc = np.zeros((k + _OVERLAP - 1, HOP))
    norm = np.zeros((k + _OVERLAP - 1, HOP))
    for i in range(_OVERLAP):
        acc[i : i + k] += y[:, i]
        norm[i : i + k] += _WIN2[i]
    return (acc / np.maximum(norm, 1e-6)).ravel()


def _signal_to_frames(signal: np.ndarray, k: int) -> np.ndarray:
    frames = sliding_window_view(signal, WIN_LENGTH)[::HOP][:k]
    return np.fft.rfft(frames * WINDOW, axis=1) * SCALE


def griffin_lim(frames: np.ndarray, iters: int, context: np.ndarray | None = None, momentum: float = 0.99):
    """Refine the phase of complex `frames` for `iters` iterations, keeping their magnitudes.

    `context` holds frames that come just before and are already final (for example already
    played): they take part in the overlap-add but are not changed, so refined blocks still join.
    """
    frames = np.asarray(frames, np.complex128)
    if iters <= 0 or len(frames) == 0:
        return frames.astype(np.complex64)
    fixed = 0 if context is None else len(context)
    mag = np.abs(frames)
    current = frames
    previous = frames
    for _ in range(iters):
        stack = current if context is None else np.concatenate([context, current])
        projected = _signal_to_frames(_frames_to_signal(stack), len(stack))[fixed:]
        accelerated = projected + momentum * (projected - previous)
        previous = projected
        current = mag * np.exp(1j * np.angle(accelerated))
    return current.astype(np.complex64)
