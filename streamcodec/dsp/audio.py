"""Turn whatever audio a user hands us into the float32 16 kHz mono signal the codec works on."""

from math import gcd

import numpy as np

from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.dsp.resample import half_length, polyphase, resample_poly
from streamcodec.errors import AudioInputError

_MAX_CHANNELS = 64


def to_codec_audio(audio, sample_rate: int) -> np.ndarray:
    """Validate, down-mix and resample `audio` to float32 mono at 16 kHz.

    `audio` is a 1-D array of samples or a 2-D array shaped (samples, channels), as soundfile returns;
    integer arrays are scaled from their full range, floats are taken as already in [-1, 1].
    """
    x = _as_float(audio)
    if x.size == 0:
        raise AudioInputError("audio is empty: pass at least one sample")
    x = _downmix(x)
    if not np.all(np.isfinite(x)):
        raise AudioInputError("audio contains NaN or infinite samples: clean the signal before encoding")
    return resample(x, sample_rate, SAMPLE_RATE)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling by the exact rational ratio (no-op when the rates match)."""
    rate_in = _check_rate(rate_in)
    if rate_in == rate_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def _check_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        if isinstance(sample_rate, float) and sample_rate.is_integer():
            sample_rate = int(sample_rate)
        else:
            raise AudioInputError(f"sample rate must be a whole number of Hz, got {sample_rate!r}")
    if not 1000 <= sample_rate <= 384_000:
        raise AudioInputError(f"sample rate {sample_rate} Hz is outside 1000..384000 Hz")
    return int(sample_rate)


def _as_float(audio) -> np.ndarray:
    try:
        x = np.asarray(audio)
    except Exception as exc:  # ragged lists and other non-arrays
        raise AudioInputError(f"audio must be a numeric array, got {type(audio).__name__}") from exc
    if x.dtype.kind == "i":
        return x.astype(np.float32) / float(-np.iinfo(x.dtype).min)
    if x.dtype.kind == "u":
        info = np.iinfo(x.dtype)
        half = (info.max + 1) / 2.0
        return ((x.astype(np.float64) - half) / half).astype(np.float32)
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    raise AudioInputError(f"audio must hold integer or float samples, got dtype {x.dtype}")


def _downmix(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise AudioInputError(f"audio must be 1-D or (samples, channels), got shape {x.shape}")
    if x.shape[1] > _MAX_CHANNELS:
        raise AudioInputError(
            f"audio has shape {x.shape}: expected (samples, channels); transpose a (channels, samples) array"
        )
    return x.mean(axis=1)


class StreamResampler:
    """Chunk-by-chunk polyphase resampling that gives the same samples as resample() on the whole
    signal (to float rounding): each chunk is filtered with enough context on both sides, and only
    outputs that no later input can change are released."""

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE) -> None:
        rate_in = _check_rate(rate_in)
        g = gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        half_filter_in = -(-half_length(self.up, self.down) // self.up) + 1  # the filter's reach, in input samples
        self._margin = -(-half_filter_in // self.down) * self.down
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # input index of _buf[0]; always a multiple of down
        self._out_next = 0  # next output index to release
        self._n_in = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        if self.up == self.down:
            return np.asarray(x, np.float32)
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        self._n_in += len(x)
        # Outputs whose input time is at least one margin before the end of what we hold are final.
        final_end = max(0, (self._n_in - self._margin) * self.up // self.down)
        return self._release(final_end)

    def flush(self) -> np.ndarray:
        if self.up == self.down:
            return np.zeros(0, np.float32)
        return self._release(-(-self._n_in * self.up // self.down))

    def _release(self, out_end: int) -> np.ndarray:
        if out_end <= self._out_next:
            return np.zeros(0, np.float32)
        out = polyphase(self._buf, self.up, self.down, self._out_next, out_end, self._buf_start).astype(np.float32)
        self._out_next = out_end
        keep_from = max(0, (out_end * self.down // self.up - self._margin) // self.down * self.down)
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return out
