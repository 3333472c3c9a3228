"""Speech quality metrics, all offline: PESQ-WB, STOI, ViSQOL (speech mode, lattice model) and
DNSMOS (overall). Decoded signals are aligned to the reference first (codecs add delay), on
magnitude spectrograms: a vocoder that rebuilds phase (ours) has no waveform to cross-correlate
with, and waveform alignment lands it off by a few ms and understates its STOI by about 0.04."""

import numpy as np
from scipy.signal import correlate

SR = 16000
_visqol = None


def _magnitudes(x: np.ndarray, hop: int) -> np.ndarray:
    """(bands, frames) magnitude spectrogram, Hann window of 512, normalised per band."""
    win = np.hanning(512).astype(np.float32)
    n = 1 + max(0, len(x) - 512) // hop
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, 512)), 512)[::hop][:n]
    mag = np.abs(np.fft.rfft(frames * win, axis=1)).T
    return mag - mag.mean(axis=1, keepdims=True)


def align(reference: np.ndarray, decoded: np.ndarray, max_shift: int = 1600, hop: int = 16) -> np.ndarray:
    """Shift `decoded` by the lag (within +-100 ms, in steps of `hop` samples) whose magnitude
    spectrogram best matches the reference's; same length as the reference."""
    n = len(reference)
    decoded = np.concatenate([decoded[:n], np.zeros(max(0, n - len(decoded)), np.float32)]).astype(np.float32)
    ref, deg = _magnitudes(reference.astype(np.float32), hop), _magnitudes(decoded, hop)
    corr = sum(correlate(d, r, mode="full", method="fft") for d, r in zip(deg, ref))
    lags = np.arange(-ref.shape[1] + 1, ref.shape[1]) * hop
    window = np.abs(lags) <= max_shift
    lag = int(lags[window][np.argmax(corr[window])])
    if lag > 0:
        return np.concatenate([decoded[lag:], np.zeros(lag, np.float32)])
    return np.concatenate([np.zeros(-lag, np.float32), decoded[: n + lag]])


def pesq_wb(ref, deg) -> float:
    from pesq import pesq

    return float(pesq(SR, ref, deg, "wb"))


def stoi(ref, deg) -> float:
    from pystoi import stoi as _stoi

    return float(_stoi(ref, deg, SR))


def visqol(ref, deg) -> float:
    global _visqol
    if _visqol is None:
        from visqol import VisqolApi

        _visqol = VisqolApi()
        _visqol.create(mode="speech", use_lattice_model=True)
    return float(_visqol.measure_from_arrays(ref.astype(np.float64), deg.astype(np.float64), SR).moslqo)


def dnsmos(deg) -> float:
    from speechmos import dnsmos as _dnsmos

    return float(_dnsmos.run(np.clip(deg, -1, 1).astype(np.float32), SR)["ovrl_mos"])


def all_metrics(ref: np.ndarray, deg: np.ndarray) -> dict:
    deg = align(ref, deg)
    return {"pesq_wb": pesq_wb(ref, deg), "stoi": stoi(ref, deg), "visqol": visqol(ref, deg), "dnsmos": dnsmos(deg)}
