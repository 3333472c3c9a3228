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
