"""Phase from magnitude by phase-gradient heap integration (PGHI).

For a Gaussian window the STFT phase gradient is a function of the log-magnitude gradient; PGHI
integrates it, always continuing from the largest coefficient whose phase is known, which keeps
the integration on ridges where the estimate is reliable (Prusa, Balazs, Sondergaard 2017). The
Hann window is treated as a Gaussian with lambda = 0.25645 * WIN_LENGTH**2. With phase referred to
the window centre, for log-magnitude L(n, m) (frame n, bin m, hop a, FFT size M):

    phase step to the next frame  = 2 pi a m / M + (a M / lambda) dL/dm
    phase step to the next bin    = -(lambda / (a M)) dL/dn

RtPghi is the real-time variant (Prusa and Holighaus 2017): frame by frame, one frame of
look-ahead for dL/dn, starting each frame from the previous frame's phases, so a decoder that keeps
one RtPghi across packets produces a continuous phase across block boundaries.
"""

import numpy as np
from numba import njit

from streamcodec.dsp.params import HOP, N_BINS, WIN_LENGTH

LAMBDA = 0.25645 * WIN_LENGTH**2
_TIME_STEP = 2.0 * np.pi * HOP * np.arange(N_BINS) / WIN_LENGTH  # phase advance per hop of bin m
_TIME_GAIN = HOP * WIN_LENGTH / LAMBDA
_FREQ_GAIN = -LAMBDA / (HOP * WIN_LENGTH)
_TO_FRAME_START = -np.pi * np.arange(N_BINS) * (WIN_LENGTH // 2) * 2 / WIN_LENGTH  # centre -> start
TOL_DB = 100.0  # coefficients this far below the maximum get a pseudo-random phase
_LOG_FLOOR = 1e-10


def _log_magnitude(mag: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(mag, np.float64), _LOG_FLOOR))


def _freq_derivative(logmag: np.ndarray) -> np.ndarray:
    """dL/dm by centred differences (one-sided at DC and Nyquist)."""
    return np.gradient(logmag, axis=-1)


def _time_steps(logmag: np.ndarray) -> np.ndarray:
    return _TIME_STEP + _TIME_GAIN * _freq_derivative(logmag)


@njit(cache=True, nogil=True)
def _pseudo_random_phase(frame: int, k: int) -> float:
    """A fixed phase per (frame, bin): decoding does not depend on chunking or on global state."""
    h = (frame * 1_000_003 + k * 7919 + 12345) & 0xFFFFFFFF
    h = (h ^ (h >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    h = (h ^ (h >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return 2.0 * np.pi * (h & 0xFFFF) / 65536.0


@njit(cache=True, nogil=True)
def _heap_push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] >= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(keys, vals, size):
    val = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] > keys[left]:
            child = left + 1
        if keys[i] >= keys[child]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        vals[child], vals[i] = vals[i], vals[child]
        i = child
    return val, size


@njit(cache=True, nogil=True)
def _pghi_offline(logmag, tsteps, fsteps, tol):
    """Heap integration over a whole (frames, bins) spectrogram; returns centred-convention phase."""
    n_frames, n_bins = logmag.shape
    total = n_frames * n_bins
    phase = np.zeros(total)
    done = np.zeros(total, np.bool_)
    flat = logmag.ravel()
    ts = tsteps.ravel()
    fs = fsteps.ravel()
    cutoff = flat.max() - tol
    remaining = 0
    for i in range(total):
        if flat[i] < cutoff:
            done[i] = True
            phase[i] = _pseudo_random_phase(i // n_bins, i % n_bins)
        else:
            remaining += 1
    keys = np.empty(total)
    vals = np.empty(total, np.int64)
    order = np.argsort(-flat)
    pos = 0
    while remaining > 0:
        while done[order[pos]]:
            pos += 1
        start = order[pos]
        done[start] = True
        remaining -= 1
        size = _heap_push(keys, vals, 0, flat[start], start)
        while size > 0:
            i, size = _heap_pop(keys, vals, size)
            n, m = i // n_bins, i % n_bins
            if n + 1 < n_frames and not done[i + n_bins]:
                j = i + n_bins
                phase[j] = phase[i] + 0.5 * (ts[i] + ts[j])
                done[j] = True
                remaining -= 1
                size = _heap_push(keys, vals, size, flat[j], j)
            if n > 0 and not done[i - n_bins]:
                j = i - n_bins
                phase[j] = phase[i] - 0.5 * (ts[i] + ts[j])
                done[j] = True
                remaining -= 1
                size = _heap_push(keys, vals, size, flat[j], j)
            if m + 1 < n_bins and not done[i + 1]:
                j = i + 1
                phase[j] = phase[i] + 0.5 * (fs[i] + fs[j])
                done[j] = True
                remaining -= 1
                size = _heap_push(keys, vals, size, flat[j], j)
            if m > 0 and not done[i - 1]:
                j = i - 1
                phase[j] = phase[i] - 0.5 * (fs[i] + fs[j])
                done[j] = True
                remaining -= 1
                size = _heap_push(keys, vals, size, flat[j], j)
    return phase.reshape(n_frames, n_bins)


@njit(cache=True, nogil=True)
def _rtpghi_frame(frame_index, log_prev, log_cur, phase_prev, ts_prev, ts_cur, fs_cur, tol, keys, vals):
    """Phase of one frame, integrated from the previous frame's phase and then across bins."""
    n_bins = log_cur.size
    phase = np.zeros(n_bins)
    done = np.zeros(n_bins, np.bool_)
    cutoff = max(log_prev.max(), log_cur.max()) - tol
    for m in range(n_bins):
        if log_cur[m] < cutoff:
            done[m] = True
            phase[m] = _pseudo_random_phase(frame_index, m)
    size = 0
    for m in range(n_bins):
        if log_prev[m] >= cutoff:
            size = _heap_push(keys, vals, size, log_prev[m], m + n_bins)  # vals >= n_bins: previous frame
    while True:
        if size == 0:
            # Nothing left to continue from (silence before): start at the largest open coefficient.
            best = -1
            for m in range(n_bins):
                if not done[m] and (best < 0 or log_cur[m] > log_cur[best]):
                    best = m
            if best < 0:
                break
            phase[best] = phase_prev[best] + 0.5 * (ts_prev[best] + ts_cur[best])
            done[best] = True
            size = _heap_push(keys, vals, size, log_cur[best], best)
        v, size = _heap_pop(keys, vals, size)
        if v >= n_bins:
            m = v - n_bins
            if not done[m]:
                phase[m] = phase_prev[m] + 0.5 * (ts_prev[m] + ts_cur[m])
                done[m] = True
                size = _heap_push(keys, vals, size, log_cur[m], m)
        else:
            m = v
            if m + 1 < n_bins and not done[m + 1]:
                phase[m + 1] = phase[m] + 0.5 * (fs_cur[m] + fs_cur[m + 1])
                done[m + 1] = True
                size = _heap_push(keys, vals, size, log_cur[m + 1], m + 1)
            if m > 0 and not done[m - 1]:
                phase[m - 1] = phase[m] - 0.5 * (fs_cur[m] + fs_cur[m - 1])
                done[m - 1] = True
                size = _heap_push(keys, vals, size, log_cur[m - 1], m - 1)
    return phase


def _to_complex(mag: np.ndarray, centred_phase: np.ndarray) -> np.ndarray:
    return (mag * np.exp(1j * (centred_phase + _TO_FRAME_START))).astype(np.complex64)


def pghi(mag: np.ndarray) -> np.ndarray:
    """Offline PGHI: (frames, N_BINS) magnitudes -> complex STFT frames (stft.py's convention)."""
    mag = np.asarray(mag, np.float32)
    logmag = _log_magnitude(mag)
    fsteps = _FREQ_GAIN * np.gradient(logmag, axis=0) if len(mag) > 1 else np.zeros_like(logmag)
    phase = _pghi_offline(logmag, _time_steps(logmag), fsteps, TOL_DB * np.log(10) / 20)
    return _to_complex(mag, phase)


class RtPghi:
    """Real-time PGHI with one frame of look-ahead: push magnitude frames, get complex frames back
    one frame late; flush() releases the last frame."""

    def __init__(self) -> None:
        self._frames = 0  # frames released so far
        self._prev_log = np.full(N_BINS, np.log(_LOG_FLOOR))
        self._prev_ts = np.zeros(N_BINS)
        self._prev_phase = np.zeros(N_BINS)
        self._pending: list[np.ndarray] = []  # magnitudes of (at most two) frames not yet released
        self._keys = np.empty(2 * N_BINS)
        self._vals = np.empty(2 * N_BINS, np.int64)
        self._tol = TOL_DB * np.log(10) / 20

    def push(self, mag: np.ndarray) -> np.ndarray:
        frames = np.asarray(mag, np.float32).reshape(-1, N_BINS)
        if self._pending:
            frames = np.concatenate([np.stack(self._pending), frames])
        if len(frames) < 2:
            self._pending = list(frames)
            return np.zeros((0, N_BINS), np.complex64)
        self._pending = [frames[-1]]
        return self._release(frames[:-1], frames[1:])

    def flush(self) -> np.ndarray:
        if not self._pending:
            return np.zeros((0, N_BINS), np.complex64)
        frame = self._pending.pop()
        return self._release(frame[None], None)

    def _release(self, mags: np.ndarray, next_mags: np.ndarray | None) -> np.ndarray:
        """Frames `mags` (k, N_BINS), each with its next frame (None: the stream's end). The
        logarithms, gradients and complex frames are computed for all k at once; only the heap
        integration goes frame by frame."""
        log_cur = _log_magnitude(mags)
        log_prev = np.concatenate([self._prev_log[None], log_cur[:-1]])
        if next_mags is None:
            dn = log_cur - log_prev if self._frames else np.zeros_like(log_cur)
        else:
            dn = 0.5 * (_log_magnitude(next_mags) - log_prev)
            if self._frames == 0:
                dn[0] = 2 * dn[0] + log_prev[0] - log_cur[0]  # the first frame: a one-sided difference
        ts_cur = _time_steps(log_cur)
        fs_cur = _FREQ_GAIN * dn
        phases = np.empty_like(log_cur)
        for i in range(len(mags)):
            phases[i] = _rtpghi_frame(self._frames + i, log_prev[i], log_cur[i], self._prev_phase,
                                      self._prev_ts if i == 0 else ts_cur[i - 1], ts_cur[i], fs_cur[i], self._tol,
                                      self._keys, self._vals)
            self._prev_phase = phases[i]
        self._frames += len(mags)
        self._prev_log, self._prev_ts = log_cur[-1], ts_cur[-1]
        return _to_complex(mags, phases)


def rtpghi(mag: np.ndarray) -> np.ndarray:
    """RtPghi over a whole spectrogram at once."""
    rt = RtPghi()
    return np.concatenate([rt.push(mag), rt.flush()])
