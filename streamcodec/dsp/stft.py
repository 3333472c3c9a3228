"""STFT analysis and overlap-add synthesis, both streaming.

Frames are centred: frame n covers samples [n*HOP - WIN/2, n*HOP + WIN/2), with zeros before the
start, so a signal of N samples has ceil(N / HOP) frames and a 1.024 s block is exactly 128 frames.
The offline functions are the streaming classes fed in one call, so the two cannot disagree.
Spectra are scaled so that a full-scale sine has magnitude 1 in its bin; the phase refers to the
start of each frame (the convention of numpy's rfft).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streamcodec.dsp.params import HOP, N_BINS, WIN_LENGTH

WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN_LENGTH) / WIN_LENGTH)).astype(np.float32)
SCALE = 2.0 / float(WINDOW.sum())
_OVERLAP = WIN_LENGTH // HOP


def n_frames(n_samples: int) -> int:
    return -(-n_samples // HOP)


class StftAnalyzer:
    """Streaming STFT: push samples in chunks of any size, get every frame as soon as it is complete."""

    def __init__(self) -> None:
        self._buf = np.zeros(WIN_LENGTH // 2, np.float32)
        self._samples_in = 0
        self._frames_out = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the newly complete frames as complex64 (frames, N_BINS)."""
        samples = np.asarray(samples, np.float32).ravel()
        self._samples_in += samples.size
        buf = np.concatenate([self._buf, samples])
        if buf.size < WIN_LENGTH:
            self._buf = buf
            return np.zeros((0, N_BINS), np.complex64)
        count = (buf.size - WIN_LENGTH) // HOP + 1
        frames = sliding_window_view(buf, WIN_LENGTH)[::HOP][:count]
        self._buf = buf[count * HOP :]
        self._frames_out += count
        return (np.fft.rfft(frames * WINDOW, axis=1) * SCALE).astype(np.complex64)

    def flush(self) -> np.ndarray:
        """Zero-pad the end and return the frames still owed, so ceil(samples / HOP) in all."""
        missing = n_frames(self._samples_in) - self._frames_out
        if missing <= 0:
            return np.zeros((0, N_BINS), np.complex64)
        needed = (missing - 1) * HOP + WIN_LENGTH - self._buf.size
        samples_in = self._samples_in
        frames = self.push(np.zeros(needed, np.float32))
        self._samples_in = samples_in
        return frames


class OverlapAdd:
    """Streaming inverse STFT: least-squares overlap-add, normalised by the summed squared window,
    so that frames from StftAnalyzer come back to the same samples."""

    def __init__(self) -> None:
        self._acc = np.zeros(WIN_LENGTH - HOP, np.float64)
        self._norm = np.zeros(WIN_LENGTH - HOP, np.float64)
        self._skip = WIN_LENGTH // 2  # the first frame starts half a window before sample 0

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add complex frames (k, N_BINS); return the samples that no later frame can change."""
        k = len(frames)
        if k == 0:
            return np.zeros(0, np.float32)
        y = np.fft.irfft(np.asarray(frames) / SCALE, n=WIN_LENGTH, axis=1) * WINDOW
        acc = np.zeros((k + _OVERLAP - 1, HOP))
        norm = np.zeros((k + _OVERLAP - 1, HOP))
        acc.ravel()[: self._acc.size] += self._acc
        norm.ravel()[: self._norm.size] += self._norm
        segments = y.reshape(k, _OVERLAP, HOP)
        win2 = (WINDOW.astype(np.float64) ** 2).reshape(_OVERLAP, HOP)
        for i in range(_OVERLAP):
            acc[i : i + k] += segments[:, i]
            norm[i : i + k] += win2[i]
        acc, norm = acc.ravel(), norm.ravel()
        self._acc, self._norm = acc[k * HOP :].copy(), norm[k * HOP :].copy()
        return self._emit(acc[: k * HOP], norm[: k * HOP])

    def flush(self) -> np.ndarray:
        """Return the samples up to one hop past the last frame's centre, where the signal ended."""
        tail = WIN_LENGTH // 2  # from the last frame's centre to the end of its hop
        out = self._emit(self._acc[:tail], self._norm[:tail])
        self._acc[:] = 0.0
        self._norm[:] = 0.0
        return out

    def _emit(self, acc: np.ndarray, norm: np.ndarray) -> np.ndarray:
        skip = min(self._skip, acc.size)
        self._skip -= skip
        acc, norm = acc[skip:], norm[skip:]
        return (acc / np.maximum(norm, 1e-6)).astype(np.float32)


def stft(x: np.ndarray) -> np.ndarray:
    """Offline STFT of a 16 kHz signal: complex64 (ceil(N / HOP), N_BINS)."""
    analyzer = StftAnalyzer()
    return np.concatenate([analyzer.push(x), analyzer.flush()])


def istft(frames: np.ndarray, length: int | None = None) -> np.ndarray:
    """Offline inverse of stft(); trims to `length` samples when given."""
    ola = OverlapAdd()
    y = np.concatenate([ola.push(frames), ola.flush()])
    return y if length is None else y[:length]
