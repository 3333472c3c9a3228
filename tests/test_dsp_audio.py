import subprocess
import sys

import numpy as np
import pytest

from streamcodec import AudioInputError, StreamcodecError
from streamcodec.dsp import to_codec_audio
from streamcodec.dsp.resample import polyphase, resample_poly


def test_int16_is_scaled_to_unit_range():
    x = np.array([0, 16384, -32768, 32767], np.int16)
    y = to_codec_audio(x, 16000)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0.0, 0.5, -1.0, 32767 / 32768], atol=1e-7)


def test_stereo_is_downmixed():
    left = np.sin(np.linspace(0, 100, 1600)).astype(np.float32)
    stereo = np.stack([left, -left * 0.5], axis=1)
    np.testing.assert_allclose(to_codec_audio(stereo, 16000), left * 0.25, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_duration_and_pitch(rate):
    t = np.arange(rate) / rate
    y = to_codec_audio(np.sin(2 * np.pi * 440 * t), rate)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second


@pytest.mark.parametrize("up, down, n", [(2, 1, 1000), (1, 3, 3000), (160, 441, 9000), (320, 147, 500),
                                         (4, 5, 7), (5, 1, 3)])
def test_resampler_gives_scipys_samples_without_scipy(up, down, n):
    from scipy.signal import resample_poly as reference

    x = np.random.default_rng(n).standard_normal(n)
    np.testing.assert_allclose(resample_poly(x, up, down), reference(x, up, down), atol=1e-12)
    m0, m1 = len(x) * up // down // 3, len(x) * up // down // 2  # a stretch of it, from part of the input
    start = max(0, m0 * down // up - 100)
    np.testing.assert_allclose(polyphase(x[start:], up, down, m0, m1, start), reference(x, up, down)[m0:m1], atol=1e-12)


def test_the_codec_path_runs_without_scipy():
    code = ("import sys; sys.modules['scipy'] = None  # as in an install without it: importing it fails\n"
            "import numpy as np; from streamcodec.dsp import to_codec_audio, logmel, MelSynthesizer\n"
            "MelSynthesizer().push(logmel(to_codec_audio(np.random.default_rng(0).standard_normal(44100), 44100)))")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "audio, rate, message",
    [
        (np.zeros(0, np.float32), 16000, "empty"),
        (np.zeros((0, 2), np.float32), 16000, "empty"),
        (np.array([0.0, np.nan, 0.1]), 16000, "NaN"),
        (np.array([0.0, np.inf]), 16000, "infinite"),
        (np.array(["a", "b"]), 16000, "dtype"),
        (np.zeros((2, 16000)), 16000, "transpose"),
        (np.zeros((4, 4, 4)), 16000, "shape"),
        (np.zeros(100), 0, "outside"),
        (np.zeros(100), 44100.5, "whole number"),
        (np.zeros(100), "16000", "whole number"),
    ],
)
def test_bad_input_gets_a_clear_error(audio, rate, message):
    with pytest.raises(AudioInputError, match=message) as info:
        to_codec_audio(audio, rate)
    assert isinstance(info.value, StreamcodecError)
