"""The speech codec end to end with a small untrained model (the shipped one is tested in
test_speech_model.py): bitstream v2, the hard per-frame budget, short messages, DTX, levels."""

import numpy as np
import pytest

from streamcodec import AudioInputError, BitstreamError
from streamcodec.bitstream.speech import (
    FILE_HEADER_BYTES, TYPE_COMFORT, TYPE_SPEECH, encode_file_header, encode_record, parse_speech_packet,
    read_speech_file,
)
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.speech import SpeechDecoder, SpeechEncoder, compress, decompress
from streamcodec.speech.codec import min_kbps


def _kbps(data: bytes, samples: int) -> float:
    """Rate of a file, every byte counted (rounded to the bit per second, as float division of an
    exact 2,000 bit/s would land a hair above it)."""
    return round(8 * len(data) * SAMPLE_RATE / samples) / 1000


def test_round_trip_keeps_length_and_rate_on_the_wire(speech, tiny_model):
    data = compress(speech, SAMPLE_RATE, iters=2, model=tiny_model)
    f = read_speech_file(data)
    assert f.samples == len(speech) and not f.damage
    assert len(f.packets) == -(-len(speech) // BLOCK_SAMPLES)
    assert [p.sequence for p in f.packets] == list(range(len(f.packets)))
    assert f.packets[0].first and f.packets[-1].last and f.packets[-1].short
    assert _kbps(data, len(speech)) <= 2.0  # every byte of the file
    audio, rate = decompress(data, model=tiny_model)
    assert rate == SAMPLE_RATE and len(audio) == len(speech) and np.all(np.isfinite(audio))


def _check_rate(data: bytes, kbps: float) -> None:
    """At every frame boundary the file so far (header, records, packets) is within `kbps`."""
    f = read_speech_file(data)
    spent, samples = 8 * FILE_HEADER_BYTES, 0
    for p in f.packets:
        size = len(p.encode()) + 1
        assert 8 * size <= 2048
        spent += 8 * size
        samples += p.samples
        assert spent <= kbps * 1000 * samples / SAMPLE_RATE + 1e-6


def test_every_frame_fits_its_budget_even_when_the_latent_is_expensive(speech, tiny_model):
    """An untrained model's latents are far from what its Huffman code expects; the rate-penalised
    projection must still fit every frame, at every rate the model can hold."""
    loud = np.concatenate([speech, speech[::-1]]) * 3
    lowest = min_kbps(tiny_model)
    for kbps in (lowest, (lowest + 2.0) / 2, 2.0):
        data = compress(loud, SAMPLE_RATE, iters=2, model=tiny_model, kbps=kbps, dtx=False)
        _check_rate(data, kbps)
        assert _kbps(data, len(loud)) <= kbps
    with pytest.raises(AudioInputError, match="range model"):
        compress(loud, SAMPLE_RATE, model=tiny_model, kbps=lowest - 0.1)


@pytest.mark.parametrize("seconds", [0.3, 1.4, 2.5])
def test_short_messages_cost_in_proportion(speech, tiny_model, seconds):
    n = int(seconds * SAMPLE_RATE)
    data = compress(speech[:n], SAMPLE_RATE, iters=1, model=tiny_model)
    assert _kbps(data, n) <= 2.0
    _check_rate(data, 2.0)
    audio, _ = decompress(data, model=tiny_model)
    assert len(audio) == n


@pytest.mark.parametrize("n", [1, 100, BLOCK_SAMPLES - 1, BLOCK_SAMPLES, BLOCK_SAMPLES + 1])
def test_short_and_odd_lengths_are_padded_and_trimmed(speech, tiny_model, n):
    audio, _ = decompress(compress(speech[:n], SAMPLE_RATE, iters=0, model=tiny_model), model=tiny_model)
    assert len(audio) == n


def test_silence_and_a_microphone_floor_cost_almost_nothing(tiny_model):
    rng = np.random.default_rng(0)
    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    floor = rng.standard_normal(len(t)) * 10 ** (-60 / 20)
    hum = 10 ** (-45 / 20) * np.sin(2 * np.pi * 50 * t) + floor
    for x in (np.zeros(len(t)), floor, hum):
        data = compress(x.astype(np.float32), SAMPLE_RATE, iters=0, model=tiny_model)
        assert _kbps(data, len(x)) <= 0.2
        assert all(p.kind == TYPE_COMFORT for p in read_speech_file(data).packets)
        audio, _ = decompress(data, model=tiny_model)
        assert len(audio) == len(x)
        # Comfort noise at the background's level (within 3 dB), not dead silence or a blast.
        if np.any(x):
            rms = lambda a: 20 * np.log10(np.sqrt(np.mean(a[SAMPLE_RATE:-SAMPLE_RATE] ** 2)))  # noqa: E731
            assert abs(rms(audio) - rms(x)) < 3


def test_speech_after_silence_is_coded_as_speech_and_silence_after_it_is_not(speech, tiny_model):
    rng = np.random.default_rng(1)
    floor = (rng.standard_normal(5 * BLOCK_SAMPLES) * 1e-3).astype(np.float32)
    x = np.concatenate([floor, speech[: 4 * BLOCK_SAMPLES] + floor[: 4 * BLOCK_SAMPLES], floor])
    kinds = [p.kind for p in read_speech_file(compress(x, SAMPLE_RATE, iters=0, model=tiny_model)).packets]
    assert kinds[:5] == [TYPE_COMFORT] * 5 and kinds[5:9] == [TYPE_SPEECH] * 4
    assert kinds[-3:] == [TYPE_COMFORT] * 3  # one frame of hangover at most


def test_quiet_speech_comes_back_at_its_level(speech, tiny_model):
    """The level byte: the networks see every frame at their training level and the decoder puts
    the input level back, so speech 40 dB quieter codes the same and comes out 40 dB quieter."""
    out_db, levels = [], []
    for gain_db in (0, -40):
        data = compress(speech * 10 ** (gain_db / 20), SAMPLE_RATE, iters=0, model=tiny_model, dtx=False)
        levels.append(np.array([p.level for p in read_speech_file(data).packets], float))
        audio, _ = decompress(data, model=tiny_model)
        out_db.append(20 * np.log10(np.sqrt(np.mean(audio**2))))
    np.testing.assert_allclose(levels[1] - levels[0], 80, atol=1)  # 0.5 dB steps
    assert abs(out_db[0] - out_db[1] - 40) < 2


def test_streaming_encoder_matches_offline_compress(speech, tiny_model):
    offline = read_speech_file(compress(speech, SAMPLE_RATE, iters=0, model=tiny_model)).packets
    encoder = SpeechEncoder(tiny_model, iters=0, start_time_us=0)
    packets, rng, i = [], np.random.default_rng(0), 0
    while i < len(speech):
        n = int(rng.integers(1, 5000))
        packets += encoder.push(speech[i : i + n])
        i += n
    packets += encoder.flush()
    assert [parse_speech_packet(p) for p in packets] == offline


def test_decoder_conceals_damaged_frames(speech, tiny_model):
    data = bytearray(compress(speech, SAMPLE_RATE, iters=0, model=tiny_model))
    data[FILE_HEADER_BYTES + 40] ^= 0xFF  # damage the first packet's payload
    audio, _ = decompress(bytes(data), model=tiny_model)
    assert len(audio) == len(speech) and np.all(np.isfinite(audio))


def test_a_hostile_header_cannot_make_the_output_longer_than_the_packets(speech, tiny_model):
    f = read_speech_file(compress(speech[:20000], SAMPLE_RATE, iters=0, model=tiny_model))
    forged = encode_file_header(tiny_model.model_id, 2**32 - 1) + b"".join(encode_record(p.encode()) for p in f.packets)
    audio, _ = decompress(forged, model=tiny_model)
    assert len(audio) <= len(f.packets) * BLOCK_SAMPLES


def test_clipping_and_bad_rates(tiny_model):
    loud = np.sign(np.sin(np.linspace(0, 2000, 20000))).astype(np.float32) * 4.0  # clipped square wave
    audio, _ = decompress(compress(loud, SAMPLE_RATE, iters=1, model=tiny_model), model=tiny_model)
    assert len(audio) == len(loud) and np.all(np.isfinite(audio))
    with pytest.raises(AudioInputError, match="bitrate"):
        compress(loud, SAMPLE_RATE, model=tiny_model, kbps=2.1)


def test_bad_audio_is_refused(tiny_model):
    with pytest.raises(AudioInputError, match="NaN"):
        compress(np.array([0.0, np.nan]), SAMPLE_RATE, model=tiny_model)
    with pytest.raises(AudioInputError, match="empty"):
        compress(np.zeros(0), SAMPLE_RATE, model=tiny_model)


def test_other_model_is_refused(speech, tiny_model):
    data = compress(speech[:4000], SAMPLE_RATE, iters=0, model=tiny_model)
    other = encode_file_header(b"zzzz", 4000) + data[FILE_HEADER_BYTES:]
    with pytest.raises(BitstreamError, match="use the same model"):
        decompress(other, model=tiny_model)
    decoder = SpeechDecoder(tiny_model)
    with pytest.raises(BitstreamError, match="format v1 packet"):
        decoder.decode(b"SC\x01" + bytes(40))


def test_context_lets_e_see_the_stream_before_each_frame(speech, tiny_model):
    """With context the enhancer and E see the stream's frames before each frame (silence before
    the first): frames code differently, the file is as valid and within the rate, and pushing
    the audio in other pieces gives the same bytes."""
    plain = read_speech_file(compress(speech, SAMPLE_RATE, iters=0, model=tiny_model, dtx=False))
    data = compress(speech, SAMPLE_RATE, iters=0, model=tiny_model, dtx=False, context=True)
    seen = read_speech_file(data)
    assert len(seen.packets) == len(plain.packets) and seen.samples == plain.samples
    assert any(a.payload != b.payload for a, b in zip(seen.packets[1:], plain.packets[1:]))
    assert _kbps(data, len(speech)) <= 2.0
    encoder = SpeechEncoder(tiny_model, iters=0, dtx=False, context=True, stream_id=0, start_time_us=0)
    pieces = [encoder.push(speech[i : i + 3001]) for i in range(0, len(speech), 3001)] + [encoder.flush()]
    assert [parse_speech_packet(p).payload for ps in pieces for p in ps] == [p.payload for p in seen.packets]


def test_worker_threads_code_a_batch_as_one_thread_does(speech, tiny_model):
    """Frames of a batch split among worker threads code as they do in one thread (each frame's
    search is its own), up to the last bits of float arithmetic in batched matrix products."""
    x = np.tile(speech, 2)
    out = {}
    for workers in (1, 2, 3):
        encoder = SpeechEncoder(tiny_model, iters=4, dtx=False, stream_id=0, start_time_us=0, workers=workers)
        out[workers] = [parse_speech_packet(p) for p in encoder.push(x) + encoder.flush()]
        assert encoder.last_iterations == 4
    for workers in (2, 3):
        assert [p.sequence for p in out[workers]] == [p.sequence for p in out[1]]
        same = sum(a.payload == b.payload for a, b in zip(out[1], out[workers]))
        assert same >= len(out[1]) - 1
