"""Griffin-Lim refinement of a phase estimate (the fast variant with momentum, Perraudin et al.
2013). Started from the PGHI phase, a few iterations remove most of PGHI's remaining inconsistency.
"""

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streamcodec.dsp.params import HOP, WIN_LENGTH
from streamcodec.dsp.stft import SCALE, WINDOW

_OVERLAP = WIN_LENGTH // HOP
_WIN2 = (WINDOW.astype(np.float64) ** 2).reshape(_OVERLAP, HOP)
_SYNTH_WINDOW = (WINDOW / SCALE).astype(np.float32)  # irfft's output is windowed and unscaled at once
_ANALYSIS_WINDOW = WINDOW.astype(np.float32)


@lru_cache(maxsize=8)
def _inverse_norm(k: int) -> np.ndarray:
    """1 / the summed squared windows over the local signal of k frames (the same every call)."""
    norm = np.zeros((k + _OVERLAP - 1, HOP))
    for i in range(_OVERLAP):
        norm[i : i + k] += _WIN2[i]
    return (1.0 / np.maximum(norm, 1e-6)).astype(np.float32)


def _frames_to_signal(frames: np.ndarray) -> np.ndarray:
    """Least-squares overlap-add of consecutive frames into one local signal."""
    k = len(frames)
    y = (np.fft.irfft(frames, n=WIN_LENGTH, axis=1) * _SYNTH_WINDOW).reshape(k, _OVERLAP, HOP)
    acc = np.zeros((k + _OVERLAP - 1, HOP), np.float32)
    for i in range(_OVERLAP):
        acc[i : i + k] += y[:, i]
    return (acc * _inverse_norm(k)).ravel()


def _signal_to_frames(signal: np.ndarray, k: int) -> np.ndarray:
    frames = sliding_window_view(signal, WIN_LENGTH)[::HOP][:k]
    return np.fft.rfft(frames * _ANALYSIS_WINDOW, axis=1) * np.float32(SCALE)


def griffin_lim(frames: np.ndarray, iters: int, context: np.ndarray | None = None, momentum: float = 0.99):
    """Refine the phase of complex `frames` for `iters` iterations, keeping their magnitudes.

    `context` holds frames that come just before and are already final (for example already
    played): they take part in the overlap-add but are not changed, so refined blocks still join.
    Single precision throughout (the output is 16-bit audio), and the new phase is applied as
    x * |m| / |x| rather than through angle and exp.
    """
    frames = np.asarray(frames, np.complex64)
    if iters <= 0 or len(frames) == 0:
        return frames
    fixed = 0 if context is None else len(context)
    context = None if context is None else np.asarray(context, np.complex64)
    mag = np.abs(frames)
    current = frames
    previous = frames
    for _ in range(iters):
        stack = current if context is None else np.concatenate([context, current])
        projected = _signal_to_frames(_frames_to_signal(stack), len(stack))[fixed:]
        accelerated = projected + np.float32(momentum) * (projected - previous)
        previous = projected
        current = accelerated * (mag / np.maximum(np.abs(accelerated), np.float32(1e-12)))
    return current
