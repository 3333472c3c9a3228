"""The public speech API.

Until the codec lands this offers `vocode`: audio -> log-mel -> audio, the quality ceiling of the
signal path (no compression).
"""

import numpy as np

from streamcodec.dsp import logmel, synthesize, to_codec_audio
from streamcodec.dsp.params import SAMPLE_RATE

DEFAULT_GRIFFIN_LIM_ITERS = 4


def vocode(audio, sample_rate: int, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM_ITERS) -> tuple[np.ndarray, int]:
    """Round-trip `audio` through the codec's log-mel representation; returns (audio, 16000)."""
    x = to_codec_audio(audio, sample_rate)
    return synthesize(logmel(x), len(x), griffin_lim_iters), SAMPLE_RATE


__all__ = ["vocode"]
