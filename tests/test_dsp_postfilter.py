"""The decoder's spectral-contrast post-filter (dsp/postfilter.py)."""

import numpy as np

from streamcodec.dsp.postfilter import sharpen


def test_sharpening_deepens_peaks_and_valleys_and_stays_in_range():
    bands = np.arange(128)
    mel = (0.2 * np.sin(bands / 1.5) - 0.2)[None, None].repeat(4, axis=1).astype(np.float32)  # (1, 4, 128)
    out = sharpen(mel, 0.3)
    inner = slice(8, -8)  # away from the edges, where the local average is one-sided
    assert np.ptp(out[..., inner]) > 1.1 * np.ptp(mel[..., inner])
    peak = int(np.argmax(mel[0, 0, inner])) + 8
    assert out[0, 0, peak] > mel[0, 0, peak]
    assert out.dtype == np.float32 and out.min() >= -1 and out.max() <= 1
    loud = np.clip(mel * 5, -1, 1)
    assert sharpen(loud, 0.6).max() <= 1.0 and sharpen(loud, 0.6).min() >= -1.0


def test_flat_spectra_and_zero_amount_are_left_alone():
    flat = np.full((2, 3, 128), -0.4, np.float32)
    np.testing.assert_allclose(sharpen(flat, 0.5), flat, atol=1e-6)
    rng = np.random.default_rng(0)
    mel = np.tanh(rng.standard_normal((2, 128, 128))).astype(np.float32)
    assert sharpen(mel, 0.0) is mel
    # a level change (within range) commutes with it: the filter sees only the spectrum's shape
    quiet = mel * 0.3 - 0.2
    np.testing.assert_allclose(sharpen(quiet, 0.3) - 0.1, sharpen(quiet - 0.1, 0.3), atol=1e-5)


def test_decoder_applies_it_to_speech_frames(speech, tiny_model):
    from streamcodec.speech import compress, decompress

    data = compress(speech[:32000], 16000, iters=0, model=tiny_model)
    plain, _ = decompress(data, model=tiny_model, postfilter=0.0)
    sharp, _ = decompress(data, model=tiny_model)  # on by default
    assert len(plain) == len(sharp) and np.isfinite(sharp).all()
    assert not np.allclose(plain, sharp)
