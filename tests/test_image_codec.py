"""The image codec with an untrained tiny model: shapes, tiling, rate control, search, bad input,
damaged files and the CLI."""

import warnings

import numpy as np
import pytest
from PIL import Image

import streamcodec.image as sci
from streamcodec import cli
from streamcodec.core.losses import msssim_mse
from streamcodec.errors import BitstreamError, ImageInputError, StreamcodecWarning
from streamcodec.image import codec as image_codec
from streamcodec.image import io as image_io


def _noise_image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / max(w, 1), yy / max(h, 1), 0.5 + 0.5 * np.sin(xx / 7.0)], -1)
    return np.clip(255 * base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (15, 17), (100, 130), (64, 64)])
def test_round_trip_keeps_size(tiny_image_model, shape):
    rgb = _noise_image(*shape)
    data = sci.compress(rgb, model=tiny_image_model, iters=2)
    out = sci.decompress(data, model=tiny_image_model)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert sci.info(data)["width"] == shape[1] and sci.info(data)["height"] == shape[0]


def test_tiles_cover_large_images(tiny_image_model, monkeypatch):
    monkeypatch.setattr(image_codec, "TILE", 32)
    rgb = _noise_image(70, 50)
    data = sci.compress(rgb, model=tiny_image_model, iters=1)
    assert sci.info(data)["tiles"] == 3 * 2
    assert sci.decompress(data, model=tiny_image_model).shape == rgb.shape
    assert image_codec.tile_boxes(70, 50, 32)[-1] == (64, 32, 6, 18)


def test_rate_control_follows_bpp(tiny_image_model):
    rgb = _noise_image(128, 192)
    sizes = []
    for bpp in (0.03, 0.1, 1.0):
        data = sci.compress(rgb, bpp=bpp, model=tiny_image_model, iters=0)
        sizes.append(len(data))
        info = sci.info(data)
        if info["channels"] != [1]:  # the floor is one channel, whatever the budget
            assert info["bpp"] <= bpp
    assert sizes[0] < sizes[1] < sizes[2]
    with pytest.raises(ValueError):
        sci.compress(rgb, bpp=-1, model=tiny_image_model)


def test_search_never_worse_than_encoder(tiny_image_model):
    import torch

    rgb = _noise_image(64, 96, seed=3)
    loss = msssim_mse(30.0)
    target = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255

    def score(data):
        out = torch.from_numpy(sci.decompress(data, model=tiny_image_model)).permute(2, 0, 1)[None].float() / 255
        return loss(target, out).item()

    plain = score(sci.compress(rgb, model=tiny_image_model, iters=0))
    searched = score(sci.compress(rgb, model=tiny_image_model, iters=12))
    assert searched < plain


def test_deadline_bounds_the_search(tiny_image_model):
    import time

    rgb = _noise_image(128, 128)
    start = time.perf_counter()
    sci.compress(rgb, model=tiny_image_model, iters=10_000, deadline=0.5)
    assert time.perf_counter() - start < 5  # would take minutes without the deadline


def test_inputs_path_pil_grey_rgba_16bit(tiny_image_model, tmp_path):
    rgb = _noise_image(40, 56)
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path)
    assert np.array_equal(image_io.to_rgb(path), rgb)
    assert np.array_equal(image_io.to_rgb(str(path)), rgb)
    assert np.array_equal(image_io.to_rgb(Image.open(path)), rgb)
    grey = rgb[:, :, 0]
    assert np.array_equal(image_io.to_rgb(grey), np.repeat(grey[:, :, None], 3, 2))
    assert np.array_equal(image_io.to_rgb(grey.astype(np.uint16) * 257), np.repeat(grey[:, :, None], 3, 2))
    assert np.array_equal(image_io.to_rgb(rgb / 255.0), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    with pytest.warns(StreamcodecWarning, match="alpha"):
        assert np.array_equal(image_io.to_rgb(rgba), rgb)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with pytest.warns(StreamcodecWarning):
        out = sci.decompress(sci.compress(tmp_path / "alpha.png", model=tiny_image_model, iters=0),
                             model=tiny_image_model)
    assert out.shape == rgb.shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_io.to_rgb(rgb)  # plain RGB: no warning


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 32, 32), np.uint8), "channels first"),
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.full((8, 8, 3), 2.0), r"\[0, 1\]"),
    (np.full((8, 8, 3), np.nan), "NaN"),
    (np.full((8, 8), 300, np.int32), "0..255"),
    (np.zeros((8, 8, 5), np.uint8), "expected"),
    ("not an image", "cannot compress a list"),
])
def test_bad_inputs_are_explained(bad, match):
    value = list(bad) if isinstance(bad, str) else bad
    with pytest.raises(ImageInputError, match=match):
        image_io.to_rgb(value)


def test_bad_files_are_explained(tmp_path, monkeypatch):
    with pytest.raises(ImageInputError, match="no such image"):
        image_io.to_rgb(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageInputError, match="cannot read"):
        image_io.to_rgb(junk)
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(big)
    monkeypatch.setattr(image_io, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageInputError, match="over the limit"):
        image_io.to_rgb(big)
    with pytest.raises(ImageInputError, match="over the limit"):
        image_io.to_rgb(np.zeros((200, 300, 3), np.uint8))


def test_damaged_and_foreign_files_raise(tiny_image_model, tmp_path, monkeypatch):
    monkeypatch.setattr(image_codec, "TILE", 32)
    data = sci.compress(_noise_image(64, 64), model=tiny_image_model, iters=0)
    flipped = bytearray(data)
    flipped[-10] ^= 0x40
    for broken, match in [(bytes(flipped), "damaged"), (data[:-30], "damaged"), (data[:10], "too short"),
                          (b"hello world" * 10, "not a streamcodec file")]:
        with pytest.raises(BitstreamError, match=match):
            sci.decompress(broken, model=tiny_image_model)
    # a whole tile removed at a packet boundary: the file is intact but incomplete
    from streamcodec.bitstream import read_container
    from streamcodec.bitstream.container import encode_header
    from streamcodec.bitstream.packet import encode_packet

    c = read_container(data)
    short = encode_header("image", c.model_id, c.meta) + b"".join(encode_packet(p) for p in c.packets[:-1])
    with pytest.raises(BitstreamError, match="truncated"):
        sci.decompress(short, model=tiny_image_model)
    import streamcodec.speech as speech

    with pytest.raises(BitstreamError, match="not an image"):
        sci.decompress(speech.compress(np.zeros(16000, np.float32), 16000, iters=0), model=tiny_image_model)
    other = bytearray(data)
    other[6:10] = b"\x00\x00\x00\x00"  # model id in the header (its CRC then fails too)
    with pytest.raises(BitstreamError):
        sci.decompress(bytes(other), model=tiny_image_model)


def test_cli_compress_info_decompress(tiny_image_model, tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(_noise_image(48, 80)).save(src)
    model = tiny_image_model.name
    assert cli.main(["image", "compress", str(src), str(tmp_path / "x.sci"), "--bpp", "0.5", "--iters", "2",
                     "--model", model]) == 0
    assert cli.main(["info", str(tmp_path / "x.sci")]) == 0
    assert "80x48 pixels" in capsys.readouterr().out
    assert cli.main(["image", "decompress", str(tmp_path / "x.sci"), str(tmp_path / "out.png"), "--model", model]) == 0
    assert Image.open(tmp_path / "out.png").size == (80, 48)
    assert cli.main(["image", "compress", str(tmp_path / "nope.png"), str(tmp_path / "y.sci"), "--model", model]) == 2
    assert "no such image" in capsys.readouterr().err
    assert not (tmp_path / "y.sci").exists()
