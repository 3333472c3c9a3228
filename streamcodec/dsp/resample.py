"""Rational-ratio polyphase resampling in numpy, so that the codec needs no scipy (about 140 MB
installed) for the one thing it used it for.

The filter is the usual windowed-sinc low-pass (Kaiser window, beta 5, cut-off at the lower of the
two Nyquist rates, 10 zero crossings each side of the slower rate), the design scipy's resample_poly
uses by default, and output sample m sits at input time m * down / up, so both give the same
samples (tests/test_dsp_audio.py checks it against scipy).

    y[m] = sum_k x[k] * h(m * down - k * up),   h centred, of length 2 * HALF + 1 on the upsampled grid
"""

from functools import lru_cache

import numpy as np

ZERO_CROSSINGS = 10  # filter half-length in periods of the slower rate
KAISER_BETA = 5.0
CHUNK = 1 << 15  # outputs computed at once (bounds the gathered window matrix to a few tens of MB)


def half_length(up: int, down: int) -> int:
    """Half the filter length, on the upsampled grid."""
    return ZERO_CROSSINGS * max(up, down)


@lru_cache(maxsize=16)
def _taps(up: int, down: int) -> tuple[np.ndarray, int]:
    """The filter split by phase, and its number of taps per output: row r holds h(half - r - j * up)
    for j = 0..taps-1, the weights of the input samples first, first+1, ... of an output whose
    first contributing sample lies r upsampled-grid steps past the filter's reach."""
    half = half_length(up, down)
    cutoff = 1.0 / max(up, down)  # of the upsampled grid's Nyquist rate
    n = np.arange(-half, half + 1, dtype=np.float64)
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half + 1, KAISER_BETA)
    h *= up / h.sum()  # unity gain at DC after the zeros the upsampling puts in
    taps = (2 * half) // up + 1
    table = np.zeros((up, taps))
    for r in range(up):
        idx = half - r - np.arange(taps) * up
        ok = idx >= -half
        table[r, ok] = h[idx[ok] + half]
    return table, taps


def polyphase(x: np.ndarray, up: int, down: int, out_start: int, out_end: int, in_start: int = 0) -> np.ndarray:
    """Outputs out_start..out_end-1 of resampling by up/down (coprime), where x holds the input
    samples in_start..in_start+len(x)-1 and every other input sample counts as zero."""
    x = np.asarray(x, np.float64)
    table, taps = _taps(up, down)
    half = half_length(up, down)
    out = np.empty(max(0, out_end - out_start), np.float64)
    for c0 in range(out_start, out_end, CHUNK):
        m = np.arange(c0, min(out_end, c0 + CHUNK), dtype=np.int64)
        pos = m * down - half  # the lowest upsampled-grid position that contributes
        first = -(-pos // up)  # the first input sample at or after it
        k = first[:, None] + np.arange(taps) - in_start  # samples first..first+taps-1, as indices into x
        inside = (k >= 0) & (k < len(x))
        window = np.where(inside, x[np.clip(k, 0, max(len(x) - 1, 0))] if len(x) else 0.0, 0.0)
        out[c0 - out_start : c0 - out_start + len(m)] = np.einsum("ij,ij->i", window, table[first * up - pos])
    return out


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """The whole signal resampled by up/down: ceil(len(x) * up / down) samples."""
    if up == down:
        return np.asarray(x, np.float64).copy()
    return polyphase(x, up, down, 0, -(-len(x) * up // down))
