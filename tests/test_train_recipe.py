"""Every shipped model's recipe runs end to end at tiny scale (a few steps per stage, tiny data,
the real networks), writes a model that loads, and resumes: a second run has nothing left to do."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from streamcodec.cli import main as cli
from streamcodec.train import recipe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_data(tmp_path, tiny_corpus, noise_bank):
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("dev", 1)):
        (tmp_path / "photos" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8)).save(
                tmp_path / "photos" / split / f"p{i}.png")
    return {"corpus": str(tiny_corpus), "noise": str(noise_bank), "photos": str(tmp_path / "photos")}


@pytest.mark.slow
@pytest.mark.parametrize("name, kind", [("image-photo", "image"), ("image-rd", "image-rd"), ("speech-2k", "speech")])
def test_recipe_runs_at_tiny_scale_and_resumes(tmp_path, tiny_data, name, kind, capsys):
    file, runs, out = ROOT / "recipes" / f"{name}.toml", tmp_path / "runs", tmp_path / "model"
    data = [a for k, v in tiny_data.items() for a in (f"--{k}", v)]
    assert cli(["train", "recipe", str(file), "--runs", str(runs), "--out", str(out), "--tiny", *data]) == 0
    stages = [s["name"] for s in recipe.load(file)["stage"] if s.get("data") is None]
    assert f"{len(stages)} stages run" in capsys.readouterr().out
    if kind == "image":
        from streamcodec.image import load_model
    elif kind == "image-rd":
        from streamcodec.image import load_rd_model as load_model
    else:
        from streamcodec.speech.model import load_model
    load_model.cache_clear()
    assert load_model(str(out)).model_id
    assert cli(["train", "recipe", str(file), "--runs", str(runs), "--out", str(out), "--tiny", *data]) == 0
    assert "0 stages run, all were done" in capsys.readouterr().out


def test_a_stage_without_some_noise_sources_sees_the_rest(tmp_path):
    bank = tmp_path / "bank"
    (bank / "train").mkdir(parents=True)
    for name in ("a", "b", "c"):
        np.save(bank / "train" / f"{name}.npy", np.zeros(3))
    view = recipe._noise_view(bank, ["b"], tmp_path / "view")
    assert sorted(p.name for p in (view / "train").iterdir()) == ["a.npy", "c.npy"]


def test_a_broken_recipe_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stage]]\nname = "x"\nargs = ["train", "{nowhere}"]\n')
    assert cli(["train", "recipe", str(bad), "--runs", str(tmp_path / "r")]) == 2
    assert "unknown placeholder" in capsys.readouterr().err
