"""The codecs a user would pick instead of streamcodec, each as 16 kHz float audio -> (decoded
16 kHz audio, bits per second actually spent)."""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from streamcodec.dsp.audio import resample


def _int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def codec2(x: np.ndarray, mode: int) -> tuple[np.ndarray, float]:
    """Codec 2 (narrowband, 8 kHz): mode 3200, 2400, 1200 or 700 (700C)."""
    import pycodec2

    c = pycodec2.Codec2(mode)
    n = c.samples_per_frame()
    pcm = _int16(resample(x, 16000, 8000))
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % n, np.int16)])
    bits = 0
    out = []
    for i in range(0, len(pcm), n):
        packet = c.encode(pcm[i : i + n])
        bits += 8 * len(packet)
        out.append(c.decode(packet))
    y = np.concatenate(out).astype(np.float32) / 32768
    return resample(y, 8000, 16000)[: len(x)], bits / (len(pcm) / 8000)


def opus(x: np.ndarray, bitrate: int = 6000) -> tuple[np.ndarray, float]:
    """Opus at 16 kHz, VoIP mode, 20 ms frames."""
    import opuslib

    frame = 320
    enc = opuslib.Encoder(16000, 1, "voip")
    enc.bitrate = bitrate
    dec = opuslib.Decoder(16000, 1)
    pcm = _int16(x)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % frame, np.int16)])
    bits, out = 0, []
    for i in range(0, len(pcm), frame):
        packet = enc.encode(pcm[i : i + frame].tobytes(), frame)
        bits += 8 * len(packet)
        out.append(np.frombuffer(dec.decode(packet, frame), np.int16))
    return np.concatenate(out).astype(np.float32)[: len(x)] / 32768, bits / (len(pcm) / 16000)


def speex(x: np.ndarray, quality: int = 0) -> tuple[np.ndarray, float]:
    """Speex wideband through Debian's speexenc/speexdec; quality 0 is its lowest wideband rate."""
    with tempfile.TemporaryDirectory() as tmp:
        src, spx, dst = Path(tmp) / "in.wav", Path(tmp) / "x.spx", Path(tmp) / "out.wav"
        sf.write(src, _int16(x), 16000, subtype="PCM_16")
        subprocess.run(["speexenc", "-w", "--quality", str(quality), str(src), str(spx)], check=True,
                       capture_output=True)
        subprocess.run(["speexdec", str(spx), str(dst)], check=True, capture_output=True)
        y, rate = sf.read(dst, dtype="float32")
        bits = 8 * spx.stat().st_size  # includes the Ogg container, as a user would send it
    return resample(y, rate, 16000)[: len(x)], bits / (len(x) / 16000)
