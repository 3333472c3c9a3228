"""The 128-band mel filterbank, the normalised log-mel the networks see, and its inverse back to a
non-negative linear magnitude spectrogram."""

import functools

import numpy as np

from streamcodec.dsp.params import DB_MAX, DB_MIN, N_BINS, N_MELS, SAMPLE_RATE, WIN_LENGTH
from streamcodec.errors import MissingExtraError

_BIN_HZ = SAMPLE_RATE / WIN_LENGTH


def _hz_to_mel(f):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    return np.where(f < 1000.0, f * 3.0 / 200.0, 15.0 + 27.0 * np.log(np.maximum(f, 1e-9) / 1000.0) / np.log(6.4))


def _mel_to_hz(m):
    m = np.asarray(m, np.float64)
    return np.where(m < 15.0, m * 200.0 / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))


def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_BINS) triangular filters from 0 to 8 kHz, each row summing to 1.

    Below about 700 Hz the mel bands are narrower than an FFT bin (31.25 Hz); their triangles are
    widened to one bin each side so that no band is empty. A band's value is then a weighted
    average of bin magnitudes, so log-mel levels read like spectrum levels.
    """
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    freqs = np.arange(N_BINS) * _BIN_HZ
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    left = np.maximum(centre - lower, _BIN_HZ)[:, None]
    right = np.maximum(upper - centre, _BIN_HZ)[:, None]
    d = freqs[None, :] - centre[:, None]
    fb = np.maximum(0.0, 1.0 - np.where(d < 0, -d / left, d / right))
    return (fb / fb.sum(axis=1, keepdims=True)).astype(np.float32)


MEL_FB = mel_filterbank()
_FLOOR = 10.0 ** (DB_MIN / 20.0)
DB_PER_UNIT = (DB_MAX - DB_MIN) / 2.0  # dB per log-mel unit


def logmel_to_power(logmel: np.ndarray) -> np.ndarray:
    """Log-mel (any range, the encoder's headroom included) -> mel power, float64."""
    return 10.0 ** (((np.asarray(logmel, np.float64) + 1.0) * DB_PER_UNIT + DB_MIN) / 10.0)


def power_to_logmel(power: np.ndarray) -> np.ndarray:
    """Mel power -> log-mel clipped to [-1, 1]."""
    db = 10.0 * np.log10(np.maximum(power, 10.0 ** (DB_MIN / 10.0)))
    return np.clip((db - DB_MIN) / DB_PER_UNIT - 1.0, -1.0, 1.0).astype(np.float32)


def magnitude_to_logmel(mag: np.ndarray, headroom_db: float = 0.0) -> np.ndarray:
    """(frames, N_BINS) magnitudes -> (frames, N_MELS) log-mel in [-1, 1] (DB_MIN..DB_MAX dB).
    `headroom_db` extends the range below DB_MIN on the same scale (values below -1), so that a
    quiet input can be levelled before the floor takes its detail (dsp/level.py)."""
    floor = DB_MIN - headroom_db
    db = 20.0 * np.log10(np.maximum(mag @ MEL_FB.T, 10.0 ** (floor / 20.0)))
    low = 2.0 * (floor - DB_MIN) / (DB_MAX - DB_MIN) - 1.0
    return np.clip(2.0 * (db - DB_MIN) / (DB_MAX - DB_MIN) - 1.0, low, 1.0).astype(np.float32)


def logmel_to_mel(logmel: np.ndarray) -> np.ndarray:
    """Inverse of the log and normalisation: linear mel magnitudes (frames, N_MELS). Values below
    -1 (a quiet frame whose level the decoder restored, dsp/level.py) go down to -200 dB."""
    db = (np.clip(logmel, -3.0, 1.0) + 1.0) * 0.5 * (DB_MAX - DB_MIN) + DB_MIN
    return (10.0 ** (db / 20.0)).astype(np.float32)


# Mel -> linear magnitude. The system M s = m is underdetermined above 700 Hz and over-determined
# below; we want s >= 0. benchmarks/dsp.py compares these solvers on speech.
_PINV = np.linalg.pinv(MEL_FB.astype(np.float64)).astype(np.float32)  # (N_BINS, N_MELS)
_SPREAD = (MEL_FB / MEL_FB.sum(axis=0, keepdims=True).clip(1e-9)).T.copy()  # (N_BINS, N_MELS)
_ROWS, _COLS = np.nonzero(MEL_FB)  # the filterbank is sparse: 529 of 32896 weights are non-zero
_WEIGHTS = MEL_FB[_ROWS, _COLS].astype(np.float64)
_COLSUM = np.maximum(MEL_FB.sum(axis=0).astype(np.float64), 1e-9)


def _multiplicative_updates(mel, rows, cols, weights, colsum, iters):
    """Per frame: s = M^T m / colsum, then s *= M^T m / M^T M s (Lee-Seung updates for
    least squares). Loops over the sparse filterbank, so each frame's result depends on that frame
    alone, whatever the batch: decoding does not change with how a stream is cut into chunks."""
    n_frames, n_mels = mel.shape
    n_bins = colsum.size
    out = np.empty((n_frames, n_bins))
    target = np.empty(n_bins)
    projected = np.empty(n_mels)
    back = np.empty(n_bins)
    for f in range(n_frames):
        target[:] = 0.0
        for i in range(weights.size):
            target[cols[i]] += weights[i] * mel[f, rows[i]]
        s = out[f]
        for k in range(n_bins):
            s[k] = target[k] / colsum[k]
        for _ in range(iters):
            projected[:] = 0.0
            for i in range(weights.size):
                projected[rows[i]] += weights[i] * s[cols[i]]
            back[:] = 0.0
            for i in range(weights.size):
                back[cols[i]] += weights[i] * projected[rows[i]]
            for k in range(n_bins):
                s[k] *= target[k] / max(back[k], 1e-30)
    return out


@functools.cache
def _compiled_updates():
    """The updates compiled by numba, loaded on first use: only decoding needs them, so a sender
    or an encode never imports numba (a third of a second and some 40 MB)."""
    from numba import njit

    return njit(cache=True, nogil=True)(_multiplicative_updates)


def mel_to_magnitude(mel: np.ndarray, method: str = "mu", iters: int = 8) -> np.ndarray:
    """Non-negative linear magnitudes (frames, N_BINS) whose mel projection approximates `mel`.

    methods: "mu" (default: spread, then `iters` multiplicative updates towards the non-negative
    least-squares solution; smooth where the bands leave freedom, exact per frame), "spread" (each
    bin takes the weighted mean of the bands covering it), "pinv" (pseudo-inverse clipped at a
    floor), "nnls" (exact, per frame; slow, and its sparse solutions sound rough).
    """
    mel = np.asarray(mel, np.float32)
    if method == "mu":
        m = np.ascontiguousarray(mel, np.float64).reshape(-1, mel.shape[-1])
        return _compiled_updates()(m, _ROWS, _COLS, _WEIGHTS, _COLSUM, iters).astype(np.float32)
    if method == "spread":
        return mel @ _SPREAD.T
    if method == "pinv":
        return np.maximum(mel @ _PINV.T, _FLOOR)
    if method == "nnls":
        try:  # the one method that needs scipy, which the codec does not install
            from scipy.optimize import nnls
        except ImportError as exc:
            raise MissingExtraError("mel inversion 'nnls' needs scipy: pip install scipy, or use method 'mu'") from exc

        fb = MEL_FB.astype(np.float64)
        return np.stack([nnls(fb, row.astype(np.float64))[0] for row in mel]).astype(np.float32)
    raise ValueError(f"unknown mel inversion method {method!r}: use mu, spread, pinv or nnls")
