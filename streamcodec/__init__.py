"""streamcodec: speech at 2 kbps with a back-propagated GAN codec (BPGAN), streamed over MQTT, and
photos on the same core. `streamcodec.speech` and `streamcodec.image` load on first use (they
import torch). Importing streamcodec sets the thread policy (streamcodec/threads.py) before torch
loads, unless STREAMCODEC_THREADS or OMP_NUM_THREADS says otherwise."""

import importlib

from streamcodec.errors import AudioInputError, BitstreamError, ImageInputError, StreamcodecError, StreamcodecWarning
from streamcodec.threads import configure_default

configure_default()

__version__ = "0.1.0"

__all__ = ["AudioInputError", "BitstreamError", "ImageInputError", "StreamcodecError", "StreamcodecWarning",
           "__version__", "image", "speech"]


def __getattr__(name: str):
    if name in ("image", "speech"):
        return importlib.import_module(f"streamcodec.{name}")
    raise AttributeError(f"module 'streamcodec' has no attribute {name!r}")
