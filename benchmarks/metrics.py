"""Speech quality metrics, all offline: PESQ-WB, STOI, ViSQOL (speech mode, lattice model) and
DNSMOS (overall). Decoded signals are aligned to the reference first (codecs add delay)."""

import numpy as np
from scipy.signal import correlate

SR = 16000
_visqol = None


def align(reference: np.ndarray, decoded: np.ndarray, max_shift: int = 1600) -> np.ndarray:
    """Shift `decoded` by the lag (within +-100 ms) that best matches `reference`; same length."""
    n = len(reference)
    decoded = np.concatenate([decoded[:n], np.zeros(max(0, n - len(decoded)), np.float32)])
    corr = correlate(decoded, reference, mode="full", method="fft")
    lags = np.arange(-n + 1, n)
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
