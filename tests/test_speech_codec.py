"""The speech codec end to end with a small untrained model (the shipped one is tested in
test_speech_model.py)."""

from dataclasses import replace

import numpy as np
import pytest

from streamcodec import AudioInputError, BitstreamError
from streamcodec.bitstream import encode_packet, parse_packet, read_container
from streamcodec.bitstream.container import encode_header
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.speech import SpeechDecoder, SpeechEncoder, compress, decompress


def test_round_trip_keeps_length_and_bitrate(speech, tiny_model):
    data = compress(speech, SAMPLE_RATE, iters=2, model=tiny_model)
    c = read_container(data)
    assert c.meta["samples"] == len(speech) and not c.damage
    assert len(c.packets) == -(-len(speech) // BLOCK_SAMPLES)
    assert [p.sequence for p in c.packets] == list(range(len(c.packets)))
    assert c.packets[0].first and c.packets[-1].last
    assert all(len(p.payload) * 8 <= 2048 for p in c.packets)
    audio, rate = decompress(data, model=tiny_model)
    assert rate == SAMPLE_RATE and len(audio) == len(speech) and np.all(np.isfinite(audio))


@pytest.mark.parametrize("n", [1, 100, BLOCK_SAMPLES - 1, BLOCK_SAMPLES, BLOCK_SAMPLES + 1])
def test_short_and_odd_lengths_are_padded_and_trimmed(speech, tiny_model, n):
    audio, _ = decompress(compress(speech[:n], SAMPLE_RATE, iters=0, model=tiny_model), model=tiny_model)
    assert len(audio) == n


def test_streaming_encoder_matches_offline_compress(speech, tiny_model):
    offline = read_container(compress(speech, SAMPLE_RATE, iters=0, model=tiny_model)).packets
    encoder = SpeechEncoder(tiny_model, iters=0, stream_id=0)
    packets, rng, i = [], np.random.default_rng(0), 0
    while i < len(speech):
        n = int(rng.integers(1, 5000))
        packets += encoder.push(speech[i : i + n])
        i += n
    packets += encoder.flush()
    streamed = [parse_packet(p) for p in packets]
    assert [(p.sequence, p.flags, p.payload) for p in streamed] == [(p.sequence, p.flags, p.payload) for p in offline]


def test_decoder_conceals_lost_frames(speech, tiny_model):
    data = bytearray(compress(speech, SAMPLE_RATE, iters=0, model=tiny_model))
    header = len(encode_header("speech", tiny_model.model_id, {"sample_rate": SAMPLE_RATE, "samples": len(speech)}))
    data[header + 40] ^= 0xFF  # damage the first packet's payload
    audio, _ = decompress(bytes(data), model=tiny_model)
    assert len(audio) == len(speech) and np.all(np.isfinite(audio))


def test_silence_and_clipping(tiny_model):
    loud = np.sign(np.sin(np.linspace(0, 2000, 20000))).astype(np.float32) * 4.0  # clipped square wave
    for x in (np.zeros(20000, np.float32), loud):
        audio, _ = decompress(compress(x, SAMPLE_RATE, iters=1, model=tiny_model), model=tiny_model)
        assert len(audio) == len(x) and np.all(np.isfinite(audio))


def test_bad_audio_is_refused(tiny_model):
    with pytest.raises(AudioInputError, match="NaN"):
        compress(np.array([0.0, np.nan]), SAMPLE_RATE, model=tiny_model)
    with pytest.raises(AudioInputError, match="empty"):
        compress(np.zeros(0), SAMPLE_RATE, model=tiny_model)


def test_other_model_or_kind_is_refused(speech, tiny_model):
    data = compress(speech[:4000], SAMPLE_RATE, iters=0, model=tiny_model)
    c = read_container(data)
    other = encode_header("speech", b"zzzz", c.meta) + b"".join(
        encode_packet(replace(p, model_id=b"zzzz")) for p in c.packets)
    with pytest.raises(BitstreamError, match="use the same model"):
        decompress(other, model=tiny_model)
    with pytest.raises(BitstreamError, match="image"):
        decompress(encode_header("image", tiny_model.model_id, {}), model=tiny_model)
    decoder = SpeechDecoder(tiny_model)
    with pytest.raises(BitstreamError, match="use the same model"):
        decoder.decode(encode_packet(replace(c.packets[0], model_id=b"zzzz")))
