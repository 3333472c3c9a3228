import numpy as np
from hypothesis import given, settings, strategies as st

from streamcodec.dsp import OverlapAdd, StftAnalyzer, istft, stft
from streamcodec.dsp.params import BLOCK_FRAMES, BLOCK_SAMPLES, HOP, N_BINS


def test_a_block_is_128_frames():
    assert stft(np.zeros(BLOCK_SAMPLES, np.float32)).shape == (BLOCK_FRAMES, N_BINS)
    assert stft(np.zeros(BLOCK_SAMPLES + 1, np.float32)).shape == (BLOCK_FRAMES + 1, N_BINS)


def test_full_scale_sine_has_unit_magnitude():
    t = np.arange(16000) / 16000
    mag = np.abs(stft(np.sin(2 * np.pi * 1000 * t)))
    assert abs(mag[10:-10].max() - 1.0) < 1e-3  # 1 kHz sits exactly on bin 32


def test_istft_inverts_stft(speech):
    y = istft(stft(speech), len(speech))
    assert np.max(np.abs(y - speech)) < 1e-5


def _chunked(push, flush, data, sizes):
    out, i = [], 0
    for n in sizes:
        out.append(push(data[i : i + n]))
        i += n
    out.append(push(data[i:]))
    out.append(flush())
    return np.concatenate(out)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=20), st.integers(1, 20000))
def test_streaming_analysis_equals_offline(sizes, length):
    x = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    analyzer = StftAnalyzer()
    frames = _chunked(analyzer.push, analyzer.flush, x, sizes)
    np.testing.assert_allclose(frames, stft(x), atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12), st.integers(HOP, 12000))
def test_streaming_synthesis_equals_offline(sizes, length):
    frames = stft(np.random.default_rng(length).standard_normal(length).astype(np.float32))
    ola = OverlapAdd()
    y = _chunked(ola.push, ola.flush, frames, sizes)
    np.testing.assert_allclose(y, istft(frames), atol=1e-5)
