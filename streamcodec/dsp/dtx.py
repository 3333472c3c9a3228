"""Discontinuous transmission: which frames hold speech, and comfort noise for those that do not.

A node with nothing to say should spend almost nothing. The voice-activity decision is made per
1.024 s frame on its log-mel, and has to hold on real microphones (a noise floor, mains hum), not
only on digital zeros, and at any level (a whisper is speech, a steady fan is not): a frame is
speech when enough of its STFT frames stand well above the background, the quietest moments of
the last few frames (speech varies from syllable to syllable and pauses between words;
stationary noise and hum vary by a dB or two; speech bands only, so hum does not count). A
frame after a speech frame is still coded as speech (hangover) unless it is clearly background,
so word endings and reverberation tails are not cut; a frame holds 1.024 s, so an onset always
lies inside a coded frame. When in doubt the frame is coded as speech: bits are cheaper than a
lost word.

Silent frames are sent as a comfort-noise envelope: the background's level and its spectral shape
in 16 bands, 4 bits each; the receiver renders noise of that shape, so the timeline stays
continuous and the room does not fall dead silent between words.
"""

import collections

import numpy as np

from streamcodec.dsp.mel import DB_PER_UNIT, logmel_to_power
from streamcodec.dsp.params import DB_MAX, DB_MIN, N_MELS

CN_BANDS = 16
CN_STEP_DB = 3.0
CN_TOP_DB = 12.0  # a band can be at most 12 dB above the mean of all bands (16 bands)
SILENT_DB = -90.0  # below this level a frame is silence whatever its shape
SPEECH_BANDS = slice(12, 100)  # about 300 Hz to 4 kHz: where speech energy is, and hum is not


def _db(power) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 1e-30))


class VoiceActivity:
    """Per-frame speech decision against a background level tracked by minimum statistics (the
    quietest tenth of every frame, lowest over the last 8 frames: the pauses between words set it,
    a long vowel cannot raise it), with a one-frame hangover."""

    ABOVE_BACKGROUND_DB = 12.0  # what a speech frame's loud STFT frames stand above the background
    MIN_SPEECH_FRAMES = 3  # STFT frames (24 ms) that must stand out
    HANGOVER = 1  # frames coded as speech after the last speech frame
    MEMORY = 8  # frames of minimum statistics

    def __init__(self) -> None:
        self._quiet: collections.deque[float] = collections.deque(maxlen=self.MEMORY)
        self._hang = 0

    def is_speech(self, logmel: np.ndarray) -> bool:
        """(frames, mels) log-mel of one frame -> whether to code it as speech."""
        e = _db(np.mean(logmel_to_power(logmel)[:, SPEECH_BANDS], axis=1))  # per STFT frame
        self._quiet.append(float(np.percentile(e, 10)))
        background = min(self._quiet)
        loud = np.sum(e > background + self.ABOVE_BACKGROUND_DB) >= self.MIN_SPEECH_FRAMES
        active = loud and np.percentile(e, 95) > SILENT_DB
        if active:
            self._hang = self.HANGOVER
            return True
        if self._hang > 0 and np.percentile(e, 95) > background + 6.0:
            self._hang -= 1
            return True
        self._hang = 0
        return False


def noise_level(logmel: np.ndarray) -> float:
    """Mean power of a background frame in dB (the level byte of a comfort-noise packet)."""
    return float(np.clip(_db(np.mean(logmel_to_power(logmel))), DB_MIN, DB_MAX))


def encode_envelope(logmel: np.ndarray, level_db: float) -> bytes:
    """(frames, mels) background -> 8 bytes: 16 band levels, 4 bits each, 3 dB steps below
    level + 12 dB. Digital silence (level at the floor) sends no envelope at all."""
    if level_db <= DB_MIN + 1.0:
        return b""
    bands = _db(np.mean(logmel_to_power(logmel).reshape(len(logmel), CN_BANDS, N_MELS // CN_BANDS), axis=(0, 2)))
    steps = np.clip(np.round((level_db + CN_TOP_DB - bands) / CN_STEP_DB), 0, 15).astype(np.uint8)
    return bytes((steps[0::2] << 4 | steps[1::2]).tolist())


def decode_envelope(payload: bytes, level_db: float) -> np.ndarray:
    """Payload of a comfort-noise packet -> (N_MELS,) background log-mel; ValueError if malformed."""
    if not payload:
        return np.full(N_MELS, -1.0, np.float32)
    if len(payload) != CN_BANDS // 2:
        raise ValueError(f"comfort-noise envelope of {len(payload)} bytes, {CN_BANDS // 2} expected")
    b = np.frombuffer(payload, np.uint8)
    steps = np.stack([b >> 4, b & 15], axis=1).ravel().astype(np.float64)
    band_db = level_db + CN_TOP_DB - CN_STEP_DB * steps
    mel_db = np.repeat(band_db, N_MELS // CN_BANDS)
    return np.clip((mel_db - DB_MIN) / DB_PER_UNIT - 1.0, -1.0, 1.0).astype(np.float32)


def comfort_noise(envelope: np.ndarray, frames: int, rng: np.random.Generator,
                  previous: np.ndarray | None = None) -> np.ndarray:
    """(frames, mels) log-mel of noise with the given mean envelope: each band fluctuates as the
    power of a few STFT bins would, and the first frames glide from the previous envelope."""
    env = np.broadcast_to(envelope, (frames, N_MELS)).astype(np.float64)
    if previous is not None:
        glide = np.clip(np.arange(frames) / 16.0, 0.0, 1.0)[:, None]
        env = previous * (1 - glide) + env * glide
    jitter_db = 10.0 * np.log10(rng.gamma(4.0, 1 / 4.0, (frames, N_MELS)))
    out = np.where(env <= -0.999, -1.0, env + jitter_db / DB_PER_UNIT)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
