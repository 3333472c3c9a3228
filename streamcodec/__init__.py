"""streamcodec: speech at 2 kbps with a back-propagated GAN codec (BPGAN), streamed over MQTT."""

from streamcodec.errors import AudioInputError, BitstreamError, StreamcodecError

__version__ = "0.1.0"

__all__ = ["AudioInputError", "BitstreamError", "StreamcodecError", "__version__"]
