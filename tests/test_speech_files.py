import re

import numpy as np
import pytest
import soundfile as sf

from streamcodec import AudioInputError, BitstreamError
from streamcodec.cli import main as cli
from streamcodec.dsp.audio import StreamResampler, resample
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import compress, decompress
from streamcodec.speech.files import compress_file, decompress_file, info


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_stream_resampler_equals_whole_signal(rate):
    x = np.random.default_rng(rate).standard_normal(rate * 2 + 17).astype(np.float32)
    r, out, rng, i = StreamResampler(rate), [], np.random.default_rng(0), 0
    while i < len(x):
        n = int(rng.integers(1, 9000))
        out.append(r.push(x[i : i + n]))
        i += n
    out.append(r.flush())
    np.testing.assert_allclose(np.concatenate(out), resample(x, rate, SAMPLE_RATE), atol=1e-6)


def test_file_round_trip_matches_the_offline_api(tmp_path, speech, tiny_model):
    wav = tmp_path / "in.wav"
    sf.write(wav, speech, SAMPLE_RATE, subtype="FLOAT")
    summary = compress_file(wav, tmp_path / "x.scf", iters=0, model=tiny_model)
    assert summary["frames"] == -(-len(speech) // 16384) and summary["payload_kbps"] <= 2.0 + 1e-9
    assert (tmp_path / "x.scf").read_bytes() == compress(speech, SAMPLE_RATE, iters=0, model=tiny_model)
    out = decompress_file(tmp_path / "x.scf", tmp_path / "out.wav", model=tiny_model)
    audio, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == SAMPLE_RATE and len(audio) == len(speech) == out["samples"]
    expected, _ = decompress((tmp_path / "x.scf").read_bytes(), model=tiny_model)
    np.testing.assert_allclose(audio, np.clip(expected, -1, 1), atol=1 / 32767 + 1e-6)  # 16-bit WAV


def test_stereo_44k_file_is_resampled(tmp_path, speech, tiny_model):
    stereo = np.stack([resample(speech, SAMPLE_RATE, 44100)] * 2, axis=1)
    sf.write(tmp_path / "in.wav", stereo, 44100)
    compress_file(tmp_path / "in.wav", tmp_path / "x.scf", iters=0, model=tiny_model)
    assert abs(info(tmp_path / "x.scf")["seconds"] - len(speech) / SAMPLE_RATE) < 1e-3


def test_bad_files(tmp_path, tiny_model):
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioInputError, match="cannot read"):
        compress_file(tmp_path / "junk.wav", tmp_path / "x.scf", model=tiny_model)
    with pytest.raises(BitstreamError, match="not a streamcodec speech file"):
        decompress_file(tmp_path / "junk.wav", tmp_path / "y.wav", model=tiny_model)


def test_cli_encode_info_decode(tmp_path, speech, tiny_model, capsys):
    sf.write(tmp_path / "in.wav", speech, SAMPLE_RATE)
    model = tiny_model.name  # the folder the fixture wrote
    assert cli(["encode", str(tmp_path / "in.wav"), str(tmp_path / "x.scf"), "--iters", "1", "--model", model]) == 0
    assert "kbps" in capsys.readouterr().out
    assert cli(["info", str(tmp_path / "x.scf")]) == 0
    text = capsys.readouterr().out
    assert f"model id: {tiny_model.model_id.hex()}" in text and "duration: " in text
    assert cli(["decode", str(tmp_path / "x.scf"), str(tmp_path / "out.wav"), "--model", model]) == 0
    assert sf.info(str(tmp_path / "out.wav")).frames == len(speech)


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert cli(["decode", str(tmp_path / "missing.scf"), str(tmp_path / "o.wav")]) == 2
    assert cli(["encode", str(tmp_path / "missing.wav"), str(tmp_path / "o.scf")]) == 2
    err = capsys.readouterr().err
    assert err.count("streamcodec: error:") == 2


def _crafted(model, samples, packets) -> bytes:
    """A speech file written record by record, with whatever header and sequence numbers we like."""
    import io

    from streamcodec.bitstream.speech import SpeechFileWriter

    out = io.BytesIO()
    writer = SpeechFileWriter(out, model.model_id, samples)
    for p in packets:
        writer.write(p.encode())
    return out.getvalue()


def test_forged_headers_and_sequence_numbers_cannot_make_the_output_long(tiny_model, speech):
    from streamcodec.bitstream.speech import (
        MAX_FILE_SAMPLES,
        OPEN_ENDED,
        SpeechPacket,
        read_speech_file,
    )
    from streamcodec.speech.codec import decode_file

    real = [read_speech_file(compress(speech[:16384], SAMPLE_RATE, iters=0, model=tiny_model)).packets[0]]

    def frames_out(samples, seqs):
        packets = [SpeechPacket(s % 65536, real[0].level, real[0].payload) for s in seqs]
        file = read_speech_file(_crafted(tiny_model, samples, packets))
        return sum(len(a) for a, _ in decode_file(file, tiny_model)) / 16384

    assert frames_out(MAX_FILE_SAMPLES, [0]) == 1  # 74 hours declared, one frame present
    assert frames_out(MAX_FILE_SAMPLES, [0, 500]) == 32  # at most 15 concealed frames per frame present
    assert frames_out(MAX_FILE_SAMPLES, [0, 30000, 60000]) == 3  # jumps over 10 minutes close up
    assert frames_out(OPEN_ENDED, [40000, 40001, 40003]) == 4  # an archive starts at its first packet
    assert frames_out(5 * 16384, [0, 1, 2, 3, 4, 5, 6, 7]) == 5  # and a file ends where it says


def test_cli_never_writes_over_input_or_existing_files(tmp_path, speech, tiny_model, capsys):
    wav = tmp_path / "in.wav"
    sf.write(wav, speech[:20000], SAMPLE_RATE)
    before = wav.read_bytes()
    model = ["--model", tiny_model.name, "--iters", "0"]
    assert cli(["encode", str(wav), str(wav), *model]) == 2
    assert wav.read_bytes() == before and "is the input file" in capsys.readouterr().err
    scf = tmp_path / "new" / "folder" / "x.scf"  # missing folders are created
    assert cli(["encode", str(wav), str(scf), *model]) == 0
    assert cli(["encode", str(wav), str(scf), *model]) == 2 and "--force" in capsys.readouterr().err
    assert cli(["encode", str(wav), str(scf), "-y", *model]) == 0
    out = tmp_path / "out.wav"
    out.write_bytes(b"precious")
    (tmp_path / "junk.scf").write_bytes(b"STCF\x02 not a file")
    assert cli(["decode", str(tmp_path / "junk.scf"), str(out), "--force", "--model", tiny_model.name]) == 2
    assert out.read_bytes() == b"precious" and not list(tmp_path.glob(".*partial*"))  # a failure loses nothing
    assert cli(["decode", str(scf), str(out), "--force", "--model", tiny_model.name]) == 0
    assert sf.info(str(out)).frames == 20000


def test_cli_options_are_not_abbreviated_and_secrets_are_not_echoed(capsys):
    with pytest.raises(SystemExit):
        cli(["recv", "--pass", "s3cret"])  # not --password-file
    with pytest.raises(SystemExit):
        cli(["send", "--mic", "--password", "s3cret"])
    err = capsys.readouterr().err
    assert "s3cret" not in err and "STREAMCODEC_MQTT_PASSWORD" in err


def test_files_of_another_kind_are_named_and_empty_ones_are_not_decoded(tmp_path, speech, tiny_model, capsys):
    """decode of a file with no intact frame exits 2 and writes nothing; an image, a WAV renamed
    .scf or a v1 file is named for what it is, with the command to use; info says what the
    packets hold beside what the header declares."""
    from PIL import Image

    from streamcodec.bitstream.speech import FILE_HEADER, crc8

    good = tmp_path / "good.scf"
    wav = tmp_path / "in.wav"
    sf.write(wav, speech[: 3 * 16384], SAMPLE_RATE)
    assert cli(["encode", str(wav), str(good), "--model", tiny_model.name, "--iters", "0"]) == 0
    (tmp_path / "broken.scf").write_bytes(good.read_bytes()[:20])
    (tmp_path / "renamed.scf").write_bytes(wav.read_bytes())
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    assert cli(["image", "compress", str(tmp_path / "x.png"), str(tmp_path / "x.sci"), "--iters", "0"]) == 0
    capsys.readouterr()
    for name, message in (("broken.scf", "no intact frame"), ("renamed.scf", "WAV file.*streamcodec encode"),
                          ("x.sci", "image.*streamcodec image decompress")):
        out = tmp_path / f"{name}.wav"
        assert cli(["decode", str(tmp_path / name), str(out), "--model", tiny_model.name]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
        assert not out.exists()
    forged = bytearray(good.read_bytes())
    forged[9:13] = (10**9).to_bytes(4, "big")  # the header declares 17 hours
    forged[FILE_HEADER.size] = crc8(bytes(forged[: FILE_HEADER.size]))  # a valid header: only the packets tell
    (tmp_path / "forged.scf").write_bytes(bytes(forged))
    assert cli(["info", str(tmp_path / "forged.scf")]) == 0
    assert "62500.00 s declared, 3.07 s in its packets" in capsys.readouterr().out
