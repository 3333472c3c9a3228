"""Frame level: measured on the log-mel, removed before the networks and restored after.

The speech model was trained on speech levelled to one loudness, so a whisper or a hot microphone
codes badly unless the level is taken out first. The level of a 1.024 s frame is the power of its
loudest quarter of STFT frames (speech, not the pauses between words), in dB on the log-mel scale;
it travels in every packet as one byte (0.5 dB steps) and both ends derive the same gain from
that byte, so the decoder restores the input level exactly but for the 0.25 dB rounding.
"""

import numpy as np

from streamcodec.dsp.mel import DB_PER_UNIT, logmel_to_power
from streamcodec.dsp.params import DB_MAX, DB_MIN

LEVEL_STEP_DB = 0.5  # one step of the level byte
LOUD_FRACTION = 0.25  # the loudest quarter of frames sets the level
MAX_BOOST_DB = 45.0  # a frame is never amplified more than this (a -70 dBFS floor stays a floor)
MAX_CUT_DB = 30.0
DEADZONE_DB = 10.0  # speech-2k was trained with random level changes of +-10 dB
HEADROOM_DB = MAX_BOOST_DB  # the encoder's analysis range below the log-mel floor


def measure_level(logmel: np.ndarray) -> np.ndarray:
    """(..., frames, mels) log-mel in [-1, 1] -> (...) level in dB."""
    power = np.mean(logmel_to_power(logmel), axis=-1)  # (..., frames)
    k = max(1, int(round(power.shape[-1] * LOUD_FRACTION)))
    loud = np.sort(power, axis=-1)[..., -k:]
    return np.clip(10.0 * np.log10(np.mean(loud, axis=-1) + 1e-30), DB_MIN, DB_MAX)


def level_to_byte(level_db) -> np.ndarray:
    """dB (DB_MIN..0) -> the packet's level byte (0: 0 dB, 200: -100 dB)."""
    return np.clip(np.round(-np.asarray(level_db) / LEVEL_STEP_DB), 0, 255).astype(np.uint8)


def byte_to_level(b) -> np.ndarray:
    return -np.asarray(b, np.float64) * LEVEL_STEP_DB


def gain_for(level_db, target_db: float) -> np.ndarray:
    """The gain (dB) that brings a frame of `level_db` to the model's `target_db`, bounded; frames
    already within DEADZONE_DB of it are left alone: the model was trained on levels spread over
    that range, so shifting them only changes what it sees (the dead zone is a guard, not yet
    an A/B result: see the session note)."""
    d = target_db - np.asarray(level_db, np.float64)
    return np.clip(np.where(np.abs(d) > DEADZONE_DB, d, 0.0), -MAX_CUT_DB, MAX_BOOST_DB)


def apply_gain(logmel: np.ndarray, gain_db, keep_floor: bool = True, low=-1.0) -> np.ndarray:
    """Shift log-mel by gain_db (broadcast over the last two axes) and clip to [low, 1]. With
    `keep_floor`, values at the floor (-1: nothing, below what the log-mel kept) go to `low`
    whatever the shift, so a gain never turns nothing into a noise floor. The encoder instead
    analyses with headroom below the floor (HEADROOM_DB) and lets the boost bring up what is really
    there; the decoder restores a quiet frame's level into that headroom (`low`, per frame, below
    -1 by the boost the encoder gave) rather than cut its detail at the floor."""
    shift = (np.asarray(gain_db, np.float32) / DB_PER_UNIT)[..., None, None]
    low = np.asarray(low, np.float32)[..., None, None] if np.ndim(low) else low
    x = np.asarray(logmel, np.float32)
    out = np.clip(x + shift, low, 1.0)
    return (np.where(x <= -0.999, low, out) if keep_floor else out).astype(np.float32)
