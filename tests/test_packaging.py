"""The installed package: console script, version, and the shipped model inside a built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_console_script_help_and_version():
    exe = Path(sys.executable).parent / "streamcodec"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("streamcodec ")
    text = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("encode", "decode", "info", "vocode", "image", "train"):
        assert command in text


@pytest.mark.slow
def test_wheel_ships_and_loads_the_model(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("streamcodec-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("model", "enhancer", "encoder", "decoder"):  # every network the codec loads ships
        assert f"streamcodec/models/speech-2k/{part}.safetensors" in names
    assert "streamcodec/models/speech-2k/MODEL_CARD.md" in names
    assert "streamcodec/models/image-photo/model.safetensors" in names
    assert "streamcodec/models/image-photo/MODEL_CARD.md" in names
    assert "streamcodec/models/image-rd/model.safetensors" in names  # the numpy image model
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import numpy as np, streamcodec.speech as s, streamcodec.image as i; m = s.load_model(); "
            "assert s.__file__.startswith(%r), s.__file__; "
            "rgb = np.full((40, 60, 3), 90, np.uint8); assert i.decompress(i.compress(rgb, iters=1)).shape == rgb.shape; "
            "assert i.decompress(i.compress(rgb, bpp=2, model='image-rd')).shape == rgb.shape; "
            "print(m.model_id.hex())" % str(site))
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip()) == 8
