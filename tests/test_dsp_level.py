"""Frame level (dsp/level.py) and voice activity / comfort noise (dsp/dtx.py) on real speech."""

import numpy as np

from streamcodec.dsp import MelAnalyzer, logmel
from streamcodec.dsp.dtx import VoiceActivity, comfort_noise, decode_envelope, encode_envelope, noise_level
from streamcodec.dsp.level import (
    DEADZONE_DB, HEADROOM_DB, MAX_BOOST_DB, apply_gain, byte_to_level, gain_for, level_to_byte, measure_level,
)


def _blocks(x, headroom=0.0):
    a = MelAnalyzer(headroom)
    m = np.concatenate([a.push(x), a.flush()])
    n = len(m) // 128
    return m[: n * 128].reshape(n, 128, 128)


def test_level_follows_the_input_gain_and_round_trips_through_its_byte(speech):
    loud, quiet = measure_level(_blocks(speech, HEADROOM_DB)), measure_level(_blocks(speech * 0.01, HEADROOM_DB))
    np.testing.assert_allclose(loud - quiet, 40, atol=0.2)
    np.testing.assert_allclose(byte_to_level(level_to_byte(loud)), loud, atol=0.25)
    assert level_to_byte(0.0) == 0 and level_to_byte(-200.0) == 255


def test_gain_leaves_the_trained_range_alone_and_is_bounded():
    target = -38.0
    assert gain_for(target + DEADZONE_DB - 1, target) == 0 and gain_for(target - DEADZONE_DB + 1, target) == 0
    assert gain_for(target - 25, target) == 25 and gain_for(target + 15, target) == -15
    assert gain_for(-200.0, target) == MAX_BOOST_DB


def test_apply_gain_keeps_nothing_at_nothing():
    x = np.array([[[-1.0, -0.5, 0.9]]], np.float32)
    np.testing.assert_allclose(apply_gain(x, np.array([10.0])), [[[-1.0, -0.3, 1.0]]], atol=1e-6)
    np.testing.assert_allclose(apply_gain(x, np.array([-10.0]), low=-1.5), [[[-1.5, -0.7, 0.7]]], atol=1e-6)
    extended = np.array([[[-1.5, -1.2]]], np.float32)  # the encoder's headroom: real content below -1
    np.testing.assert_allclose(apply_gain(extended, np.array([20.0]), keep_floor=False), [[[-1.0, -0.8]]], atol=1e-6)


def test_voice_activity_on_speech_a_noise_floor_and_hum(speech):
    rng = np.random.default_rng(0)
    t = np.arange(len(speech)) / 16000
    floor = rng.standard_normal(len(speech)).astype(np.float32) * 1e-3
    hum = (0.02 * np.sin(2 * np.pi * 50 * t)).astype(np.float32) + floor
    for background in (floor, hum):
        vad = VoiceActivity()
        assert not any(vad.is_speech(b) for b in _blocks(background, HEADROOM_DB))
        assert sum(vad.is_speech(b) for b in _blocks(speech * 0.05 + background, HEADROOM_DB)) >= 7


def test_comfort_noise_envelope_round_trip(speech):
    rng = np.random.default_rng(1)
    noise = logmel(rng.standard_normal(16384).astype(np.float32) * 0.01)[:128]
    level = float(byte_to_level(level_to_byte(noise_level(noise))))
    payload = encode_envelope(noise, level)
    assert len(payload) == 8 and encode_envelope(np.full((128, 128), -1.0), -100.0) == b""
    env = decode_envelope(payload, level)
    np.testing.assert_allclose(env, noise.mean(axis=0), atol=0.06)  # 3 dB steps: within 1.5 dB (0.03) plus texture
    rendered = comfort_noise(env, 128, rng)
    assert abs(noise_level(rendered) - noise_level(noise)) < 2.0
