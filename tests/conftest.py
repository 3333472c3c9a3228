import numpy as np
import pytest

from streamcodec.dsp import logmel
from streamcodec.train.debian import fetch_package, read_audio
from tests.brokers import Mosquitto

# Real speech for DSP tests: a few prompts of the Italian Asterisk voice (G.722, 16 kHz), a Debian
# package named in DESIGN.md, fetched once into the streamcodec cache.
_PROMPTS = ["vm-tomakecall", "queue-callswaiting", "vm-deleted", "conf-getpin"]


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 8 s of real 16 kHz speech, float32."""
    root = fetch_package("asterisk-core-sounds-it-g722")
    folder = root / "usr/share/asterisk/sounds/it_IT_m_Carlo"
    return np.concatenate([read_audio(folder / f"{name}.g722") for name in _PROMPTS])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, speech):
    """An untrained, small speech model in the shipped format: enough to test the codec."""
    import torch

    from streamcodec.core.huffman import HuffmanCode
    from streamcodec.core.quantizer import fit_levels, quantize
    from streamcodec.dsp import logmel
    from streamcodec.nets.assets import save_model
    from streamcodec.nets.speech import SpeechNetConfig, build
    from streamcodec.speech.model import load_model

    torch.manual_seed(0)
    cfg = SpeechNetConfig("conv1d", 16, 32, 1)
    encoder, generator = build(cfg)
    with torch.no_grad():
        z = encoder(torch.from_numpy(logmel(speech)[None].transpose(0, 2, 1).copy())).numpy()
    levels = fit_levels(z, 16)
    code = HuffmanCode.from_histogram(np.bincount(quantize(z, levels).ravel(), minlength=16))
    folder = save_model(tmp_path_factory.mktemp("model"), encoder, generator, torch.from_numpy(levels),
                        code.lengths, {"net": cfg.to_dict(), "level_target_db": -30.0})
    return load_model(str(folder))


@pytest.fixture(scope="session")
def tiny_image_model(tmp_path_factory):
    """An untrained, small image model in the shipped format: enough to test the image codec."""
    import torch

    from streamcodec.core.huffman import HuffmanCode
    from streamcodec.core.quantizer import fit_levels, quantize
    from streamcodec.image.model import load_model
    from streamcodec.nets.assets import save_model
    from streamcodec.nets.image import ImageNetConfig, build

    torch.manual_seed(0)
    cfg = ImageNetConfig(8, (32, 16, 8, 8))
    encoder, generator = build(cfg)
    with torch.no_grad():
        z = encoder(torch.rand(4, 3, 64, 64)).numpy()
    levels = fit_levels(z, 64)
    code = HuffmanCode.from_histogram(np.bincount(quantize(z, levels).ravel(), minlength=64) + 1)
    folder = save_model(tmp_path_factory.mktemp("image-model"), encoder, generator, torch.from_numpy(levels),
                        code.lengths, {"net": cfg.to_dict(), "alpha": 30.0})
    return load_model(str(folder))


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph, 768x512 uint8 RGB: the centre of a Lomiri wallpaper, fetched once."""
    from PIL import Image

    root = fetch_package("lomiri-wallpapers-20.04")
    with Image.open(next(root.rglob("Infinite-Sea_by_Aury88.jpg"))) as im:
        a = np.asarray(im.convert("RGB"))
    y, x = (a.shape[0] - 512) // 2, (a.shape[1] - 768) // 2
    return a[y : y + 512, x : x + 768].copy()


@pytest.fixture
def mosquitto(tmp_path):
    """A real Mosquitto on a free loopback port, for this test only."""
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def tiny_corpus(tmp_path, speech):
    frames = logmel(speech).astype(np.float16)
    for split, part in (("train", frames[: len(frames) // 2]), ("dev", frames[len(frames) // 2 :])):
        (tmp_path / "corpus" / split).mkdir(parents=True)
        np.save(tmp_path / "corpus" / split / "spk.npy", part)
    return tmp_path / "corpus"


@pytest.fixture
def noise_bank(tmp_path):
    from streamcodec.train import noise

    bank = tmp_path / "noise" / "train"
    bank.mkdir(parents=True)
    for kind in ("white", "hum"):
        np.save(bank / f"{kind}.npy", logmel(noise.synthetic(kind, 5, 0)).astype(np.float16))
    return tmp_path / "noise"
