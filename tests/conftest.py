import numpy as np
import pytest

from streamcodec.train.debian import fetch_package, read_audio

# Real speech for DSP tests: a few prompts of the Italian Asterisk voice (G.722, 16 kHz), a Debian
# package named in DESIGN.md, fetched once into the streamcodec cache.
_PROMPTS = ["vm-tomakecall", "queue-callswaiting", "vm-deleted", "conf-getpin"]


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 8 s of real 16 kHz speech, float32."""
    root = fetch_package("asterisk-core-sounds-it-g722")
    folder = root / "usr/share/asterisk/sounds/it_IT_m_Carlo"
    return np.concatenate([read_audio(folder / f"{name}.g722") for name in _PROMPTS])
