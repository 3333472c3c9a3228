"""The shipped model (models/speech-2k) on real speech of a held-out speaker (the conftest clip is
the development speaker it_IT_m_Carlo). Quality bars were measured first, then set just under."""

import pytest
from pesq import pesq
from pystoi import stoi

from streamcodec.bitstream.speech import read_speech_file
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import compress, decompress, load_model
from streamcodec.speech.codec import DEFAULT_ITERS

MIN_PESQ_WB = 2.1  # measured 2.191 (encoder only: 2.035)
MIN_STOI = 0.92  # measured 0.933 (encoder only: 0.907)


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def coded(speech, model):
    return {iters: compress(speech, SAMPLE_RATE, iters=iters, model=model) for iters in (0, DEFAULT_ITERS)}


def test_loads_by_name(model):
    assert model.name == "speech-2k" and len(model.model_id) == 4
    assert model.latent_shape == (16, 32) and len(model.levels) == 16 and model.code.n_symbols == 16


def test_bitrate_on_the_wire(coded, speech):
    data = coded[DEFAULT_ITERS]
    frame_bits = [8 * (len(p.encode()) + 1) for p in read_speech_file(data).packets]  # packet and record byte
    assert max(frame_bits) <= 2048
    assert 8 * len(data) * SAMPLE_RATE <= 2000 * len(speech)  # every byte of the file


def _quality(data, speech, model):
    audio, _ = decompress(data, model=model)
    return pesq(SAMPLE_RATE, speech, audio, "wb"), stoi(speech, audio, SAMPLE_RATE)


def test_quality_on_held_out_speech(coded, speech, model):
    pesq_wb, intelligibility = _quality(coded[DEFAULT_ITERS], speech, model)
    assert pesq_wb > MIN_PESQ_WB and intelligibility > MIN_STOI
    encoder_only = _quality(coded[0], speech, model)
    assert pesq_wb > encoder_only[0] + 0.05  # the search pays: measured +0.16


def test_the_enhancer_loads_only_for_an_encoder():
    """speech-2k ships an enhancer and a receiver's generator; a decoder (a receiver's warm-up)
    never loads the enhancer, an encoder searches through the receiver's generator; the enhancer
    is used by default and leaves the model id alone, the receiver's generator is part of it."""
    from streamcodec.speech import SpeechEncoder
    from streamcodec.speech.codec import warm_up
    from streamcodec.speech.model import from_assets, read_assets

    fresh = from_assets(read_assets("speech-2k"))
    warm_up(fresh, encode=False)  # what a receiver runs
    assert "enhancer" not in vars(fresh)
    assert fresh.decoder is not fresh.generator  # speech-2k ships a generator tuned for receivers
    warm_up(fresh, decode=False)  # a sender that does not denoise
    assert "enhancer" not in vars(fresh)
    assert SpeechEncoder(fresh).denoise and fresh.enhancer is not None
    assert not SpeechEncoder(fresh, denoise=False).denoise
    assert fresh.model_id == load_model().model_id != fresh.base_id
    assert fresh.decodes(fresh.base_id) and not fresh.decodes(b"\0\0\0\0")


def test_frames_the_enhancer_cleaned_are_searched_through_g(model, speech):
    """The search goes through the receiver's generator, but a frame the enhancer changed by
    more than NOISY_FRAME (noisy input) goes through G, whose indices that generator learnt to
    clean up: the same indices as a search through G alone."""
    from functools import partial

    import numpy as np

    from streamcodec.core.search import (
        GeneratorObjective,
        admm_search,
        loudness_weighted_mse,
    )
    from streamcodec.dsp import logmel
    from streamcodec.dsp.params import BLOCK_FRAMES, BLOCK_SAMPLES
    from streamcodec.speech.codec import NOISY_FRAME, NOISY_WEIGHT, search_latents

    clip = speech[SAMPLE_RATE : SAMPLE_RATE + BLOCK_SAMPLES]
    noisy = clip + 0.3 * np.std(clip) * np.random.default_rng(0).standard_normal(len(clip)).astype(np.float32)
    x = np.stack([logmel(a)[:BLOCK_FRAMES].T for a in (clip, noisy)]).astype(np.float32)
    cleaned = model.enhancer(x)
    change = np.abs(cleaned - x).mean(axis=(1, 2))
    assert change[0] < NOISY_FRAME < change[1]
    result = search_latents(model, x, None, 4, denoise=True)
    for i, (net, weight) in enumerate(((model.decoder, None), (model.generator, NOISY_WEIGHT))):
        alone = admm_search(GeneratorObjective(net, cleaned[i : i + 1], partial(loudness_weighted_mse, weight=weight)),
                            model.encoder(cleaned[i : i + 1]), model.levels, iters=4, eval_every=4)
        np.testing.assert_array_equal(result.indices[i], alone.indices[0])
