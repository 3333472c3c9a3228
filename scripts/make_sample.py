"""Make the bundled demo sample streamcodec/data/sample-fr.flac from the Debian package
asterisk-core-sounds-fr-g722 (June Wallack, CC-BY-SA-3.0; see streamcodec/data/README.md).

    .venv/bin/python scripts/make_sample.py
"""

from pathlib import Path

import numpy as np
import soundfile as sf

from streamcodec.train.corpus import GAP, trim_and_level
from streamcodec.train.debian import fetch_package, read_audio

PROMPTS = ["vm-intro", "conf-getpin", "vm-tomakecall"]
OUT = Path(__file__).resolve().parent.parent / "streamcodec" / "data" / "sample-fr.flac"

root = fetch_package("asterisk-core-sounds-fr-g722") / "usr/share/asterisk/sounds/fr_CA_f_June"
clips = [trim_and_level(read_audio(root / f"{name}.g722")) for name in PROMPTS]
audio = np.concatenate([piece for clip in clips for piece in (clip, GAP)])
sf.write(OUT, audio, 16000, subtype="PCM_16")
print(f"{OUT}: {len(audio) / 16000:.1f} s")
