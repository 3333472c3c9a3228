"""The public speech API: offline compress/decompress, the streaming frame codec, and vocode (the
log-mel round trip without compression, the ceiling of the signal path)."""

import io

import numpy as np

from streamcodec.bitstream.speech import read_speech_file
from streamcodec.dsp import logmel, synthesize, to_codec_audio
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.speech.codec import (
    DEFAULT_GRIFFIN_LIM, DEFAULT_ITERS, DEFAULT_KBPS, DEFAULT_POSTFILTER, SpeechDecoder, SpeechEncoder, decode_file,
)
from streamcodec.speech.files import encode_chunks
from streamcodec.speech.model import DEFAULT_MODEL, SpeechModel, load_model

_BATCH_SAMPLES = 8 * BLOCK_SAMPLES  # offline: frames are searched 8 at a time


def compress(audio, sample_rate: int, iters: int = DEFAULT_ITERS, deadline: float | None = None,
             model=None, kbps: float = DEFAULT_KBPS, dtx: bool = True, denoise: bool | None = None,
             context: bool = False) -> bytes:
    """Audio (any rate, mono or (samples, channels)) -> a streamcodec speech file (bytes) of at
    most `kbps` kbit/s, every byte counted. Silent frames cost a few bytes each (dtx)."""
    x = to_codec_audio(audio, sample_rate)
    out = io.BytesIO()
    chunks = (x[i : i + _BATCH_SAMPLES] for i in range(0, len(x), _BATCH_SAMPLES))
    encode_chunks(chunks, len(x), out, iters, deadline, model, kbps=kbps, dtx=dtx, denoise=denoise, context=context)
    return out.getvalue()


def decompress(data: bytes, model=None, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM,
               postfilter: float = DEFAULT_POSTFILTER) -> tuple[np.ndarray, int]:
    """A speech file -> (float32 audio, 16000). Damaged or missing frames are concealed.
    `postfilter`: the decoder's spectral-contrast amount (dsp/postfilter.py; 0 turns it off)."""
    file = read_speech_file(data)
    chunks = [audio for audio, _ in decode_file(file, model, griffin_lim_iters, postfilter)]
    return np.concatenate(chunks), SAMPLE_RATE


def vocode(audio, sample_rate: int, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM) -> tuple[np.ndarray, int]:
    """Round-trip `audio` through the codec's log-mel representation; returns (audio, 16000)."""
    x = to_codec_audio(audio, sample_rate)
    return synthesize(logmel(x), len(x), griffin_lim_iters), SAMPLE_RATE


__all__ = [
    "DEFAULT_MODEL", "SpeechDecoder", "SpeechEncoder", "SpeechModel", "compress", "decompress", "load_model",
    "vocode",
]
