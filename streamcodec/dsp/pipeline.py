"""The two ends of the speech signal path, as streaming objects and as one-call functions.

MelAnalyzer: audio -> normalised log-mel frames (the encoder's input).
MelSynthesizer: log-mel frames -> audio (mel inversion, RTPGHI, optional Griffin-Lim, overlap-add).
Both keep their state across calls, so a stream cut into packets decodes without seams.
"""

import numpy as np

from streamcodec.dsp.griffinlim import griffin_lim
from streamcodec.dsp.mel import logmel_to_mel, magnitude_to_logmel, mel_to_magnitude
from streamcodec.dsp.params import N_BINS, N_MELS
from streamcodec.dsp.stft import OverlapAdd, StftAnalyzer

GL_CONTEXT = 3  # final frames that a refined chunk overlaps with


class MelAnalyzer:
    def __init__(self, headroom_db: float = 0.0) -> None:
        self._stft = StftAnalyzer()
        self.headroom_db = headroom_db  # range below the floor kept for levelling (mel.py)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """16 kHz float samples -> newly complete log-mel frames (frames, N_MELS) in [-1, 1]."""
        return magnitude_to_logmel(np.abs(self._stft.push(samples)), self.headroom_db)

    def flush(self) -> np.ndarray:
        return magnitude_to_logmel(np.abs(self._stft.flush()), self.headroom_db)


class MelSynthesizer:
    def __init__(self, griffin_lim_iters: int = 0, inversion: str = "mu") -> None:
        self.griffin_lim_iters = griffin_lim_iters
        self.inversion = inversion
        from streamcodec.dsp.phase import RtPghi  # numba: loaded by decoders only

        self._pghi = RtPghi()
        self._ola = OverlapAdd()
        self._context = np.zeros((0, N_BINS), np.complex64)

    def push(self, logmel: np.ndarray) -> np.ndarray:
        """Log-mel frames (frames, N_MELS) -> the audio samples that are now final."""
        logmel = np.asarray(logmel, np.float32).reshape(-1, N_MELS)
        mag = mel_to_magnitude(logmel_to_mel(logmel), self.inversion)
        return self._synthesize(self._pghi.push(mag))

    def flush(self) -> np.ndarray:
        last = self._synthesize(self._pghi.flush())
        return np.concatenate([last, self._ola.flush()])

    def _synthesize(self, frames: np.ndarray) -> np.ndarray:
        if self.griffin_lim_iters and len(frames):
            frames = griffin_lim(frames, self.griffin_lim_iters, self._context)
            self._context = np.concatenate([self._context, frames])[-GL_CONTEXT:]
        return self._ola.push(frames)


def logmel(audio: np.ndarray) -> np.ndarray:
    """Offline log-mel of 16 kHz float audio: (ceil(N / HOP), N_MELS)."""
    analyzer = MelAnalyzer()
    return np.concatenate([analyzer.push(audio), analyzer.flush()])


def synthesize(logmel_frames: np.ndarray, length: int | None = None, griffin_lim_iters: int = 0) -> np.ndarray:
    """Offline audio from log-mel frames, trimmed to `length` samples when given."""
    synth = MelSynthesizer(griffin_lim_iters)
    y = np.concatenate([synth.push(logmel_frames), synth.flush()])
    return y if length is None else y[:length]
