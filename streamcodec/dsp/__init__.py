"""The speech signal path shared by sender and receiver: numpy only (numba for PGHI and mel inversion).

Typical use: `logmel(to_codec_audio(x, rate))` at the sender, `MelSynthesizer().push(frames)` at
the receiver. See params.py for the fixed numbers.
"""

from streamcodec.dsp.audio import resample, to_codec_audio
from streamcodec.dsp.griffinlim import griffin_lim
from streamcodec.dsp.mel import logmel_to_mel, magnitude_to_logmel, mel_to_magnitude
from streamcodec.dsp.pipeline import MelAnalyzer, MelSynthesizer, logmel, synthesize
from streamcodec.dsp.stft import OverlapAdd, StftAnalyzer, istft, stft


def __getattr__(name: str):
    """PGHI (numba) loads on first use, so what only encodes never imports numba."""
    if name in ("RtPghi", "pghi", "rtpghi"):
        from streamcodec.dsp import phase

        return getattr(phase, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MelAnalyzer", "MelSynthesizer", "OverlapAdd", "RtPghi", "StftAnalyzer", "griffin_lim", "istft",
    "logmel", "logmel_to_mel", "magnitude_to_logmel", "mel_to_magnitude", "pghi", "resample", "rtpghi",
    "stft", "synthesize", "to_codec_audio",
]
