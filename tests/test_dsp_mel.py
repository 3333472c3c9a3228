import numpy as np
import pytest

from streamcodec.dsp import logmel, logmel_to_mel, magnitude_to_logmel, mel_to_magnitude, stft
from streamcodec.dsp.mel import MEL_FB
from streamcodec.dsp.params import DB_MIN, N_BINS, N_MELS


def test_filterbank_has_no_empty_band():
    assert MEL_FB.shape == (N_MELS, N_BINS)
    assert np.all((MEL_FB > 0).sum(axis=1) >= 2)
    np.testing.assert_allclose(MEL_FB.sum(axis=1), 1.0, rtol=1e-5)
    centres = (MEL_FB * np.arange(N_BINS)).sum(axis=1)
    assert np.all(np.diff(centres) > 0)  # bands go up in frequency


def test_logmel_range_and_inverse():
    mag = np.abs(stft(np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1))
    lm = magnitude_to_logmel(mag)
    assert lm.min() >= -1.0 and lm.max() <= 1.0
    np.testing.assert_allclose(magnitude_to_logmel(mel_to_magnitude(logmel_to_mel(lm), "nnls")), lm, atol=0.02)


def test_silence_maps_to_the_floor():
    assert np.all(logmel(np.zeros(4000, np.float32)) == -1.0)
    assert logmel_to_mel(np.array([[-1.0]]))[0, 0] == pytest.approx(10 ** (DB_MIN / 20))


@pytest.mark.parametrize("method", ["mu", "spread", "pinv", "nnls"])
def test_inversion_is_non_negative_and_consistent(speech, method):
    mag = np.abs(stft(speech[:16000]))
    mel = mag @ MEL_FB.T
    est = mel_to_magnitude(mel, method)
    assert est.shape == mag.shape and np.all(est >= 0)
    assert np.linalg.norm(est @ MEL_FB.T - mel) / np.linalg.norm(mel) < 0.25


def test_default_inversion_beats_plain_spreading(speech):
    mag = np.abs(stft(speech))
    mel = mag @ MEL_FB.T
    error = {m: np.linalg.norm(mel_to_magnitude(mel, m) - mag) / np.linalg.norm(mag) for m in ("mu", "spread")}
    assert error["mu"] < 0.6 * error["spread"]  # measured 0.04 against 0.16


def test_inversion_does_not_depend_on_batching(speech):
    mel = np.abs(stft(speech[:32000])) @ MEL_FB.T
    whole = mel_to_magnitude(mel)
    parts = np.concatenate([mel_to_magnitude(mel[:37]), mel_to_magnitude(mel[37:])])
    assert np.array_equal(whole, parts)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown mel inversion"):
        mel_to_magnitude(np.ones((1, N_MELS)), "magic")
