"""The image training recipe on tiny data: photo set layout, a few steps of each stage, resume,
export, and the exported model coding an image."""

import json

import numpy as np
import pytest
from PIL import Image

import streamcodec.image as sci
from streamcodec.cli import main as cli
from streamcodec.nets.image import ImageNetConfig
from streamcodec.train.image import PhotoCrops, TrainConfig, Trainer, channel_mask
from streamcodec.train.photos import wallpaper_files


@pytest.fixture
def tiny_photos(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    for split, n in (("train", 3), ("dev", 2)):
        (tmp_path / "photos" / split).mkdir(parents=True)
        for i in range(n):
            img = 127 + 100 * np.sin(xx[..., None] / (5 + i + np.arange(3)) + yy[..., None] / 9)
            img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / "photos" / split / f"p{i}.png")
    return tmp_path / "photos"


def _tiny_config():
    return TrainConfig(net=ImageNetConfig(8, (32, 16, 8, 8)), batch=2, crop=64, dev_crop=64, adv_start=3, level_crops=16)


def test_two_stages_resume_and_export(tmp_path, tiny_photos):
    run = tmp_path / "run"
    trainer = Trainer(run, tiny_photos, _tiny_config())
    first = trainer.dev_metrics()["dev_psnr"]
    trainer.train_stage(1, steps=3, minutes=5)
    assert cli(["train", "image", "--run", str(run), "--photos", str(tiny_photos), "--steps", "5"]) == 0
    trainer = Trainer(run, tiny_photos)  # the command line continued the run, with its saved config
    assert trainer.state["stage_steps"]["1"] == 5
    resumed = Trainer(run, tiny_photos)
    assert resumed.cfg == trainer.cfg and resumed.state["stage_steps"]["1"] == 5
    for a, b in zip(trainer.G.parameters(), resumed.G.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    resumed.train_stage(1, steps=40, minutes=5)  # adversarial from step 3
    assert resumed.dev_metrics()["dev_psnr"] > first
    resumed.train_stage(2, steps=3, minutes=5)
    assert len(resumed.levels) == 64
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["stage"] == 2 and "dev_psnr_quantised" in log[-1]
    assert {"adv", "fm", "d"} <= set(resumed.step(1))  # past adv_start: adversarial terms are on

    out = tmp_path / "model"
    assert cli(["train", "export", "--kind", "image", "--run", str(run), "--photos", str(tiny_photos),
                "--out", str(out)]) == 0
    model = sci.load_model(str(out))
    rgb = np.asarray(Image.open(tiny_photos / "dev" / "p0.png"))
    assert sci.decompress(sci.compress(rgb, iters=2, model=model), model=model).shape == rgb.shape


def test_nested_dropout_keeps_leading_channels():
    import torch

    mask = channel_mask(500, 8, 2, 0.25, torch.Generator().manual_seed(0))[:, :, 0, 0]
    assert (mask[:, :2] == 1).all()  # never fewer than min_channels
    assert (mask[:, :-1] >= mask[:, 1:]).all()  # a prefix: once dropped, every later channel is dropped
    assert 0.15 < (mask.sum(1) == 8).float().mean() < 0.45 and (mask.sum(1) < 8).any()


def test_crops_and_missing_photos(tmp_path, tiny_photos):
    crops = PhotoCrops([np.zeros((70, 90, 3), np.uint8), np.zeros((10, 10, 3), np.uint8)], 64, 0)
    assert len(crops.photos) == 1 and crops.batch(3).shape == (3, 3, 64, 64)
    with pytest.raises(FileNotFoundError, match="streamcodec train photos"):
        Trainer(tmp_path / "run", tmp_path / "nowhere", _tiny_config())


def test_wallpaper_variants_collapse_to_the_largest(tmp_path):
    folder = tmp_path / "usr/share/wallpapers/Wave/contents/images"
    folder.mkdir(parents=True)
    for w, h in ((640, 480), (1920, 1080)):
        Image.new("RGB", (w, h)).save(folder / f"{w}x{h}.png")
    Image.new("RGB", (100, 80)).save(folder.parent / "screenshot.png")
    Image.new("RGB", (300, 200)).save(tmp_path / "plain.jpg")
    files = sorted(p.name for p in wallpaper_files(tmp_path))
    assert files == ["1920x1080.png", "plain.jpg"]


def test_rd_run_resumes_exports_and_warm_starts_a_new_run(tmp_path, tiny_photos):
    """The RD model's run continues from its checkpoint, and its exported weights (no optimizer)
    start a new run at the same step: how training carries over to a machine that keeps only git."""
    from streamcodec.nets.image_rd import RDNetConfig
    from streamcodec.train.image_rd import RDTrainConfig, RDTrainer, main as rd_main

    cfg = RDTrainConfig(net=RDNetConfig(n=8, m=8, z=8), batch=2, crop=64, dev_crop=64, log_every=2, threads=1)
    run = tmp_path / "rd"
    RDTrainer(run, tiny_photos, cfg).fit(steps=3)
    rd_main(["--run", str(run), "--photos", str(tiny_photos), "--steps", "4"])
    trainer = RDTrainer(run, tiny_photos)
    assert trainer.state["step"] == 4 and trainer.cfg == cfg
    folder = tmp_path / "image-rd"
    rd_main(["--run", str(run), "--photos", str(tiny_photos), "--export", str(folder)])
    warm = RDTrainer(tmp_path / "rd2", tiny_photos, cfg, init=folder)
    assert warm.state["step"] == 4
    # the command line gives no network settings: they come from the exported model
    default_net = RDTrainConfig(batch=2, crop=64, dev_crop=64, threads=1)
    assert RDTrainer(tmp_path / "rd3", tiny_photos, default_net, init=folder).cfg.net == cfg.net
    for (name, a), b in zip(trainer.model.named_parameters(), warm.model.parameters()):
        a = a.detach() if "gain" in name or name.startswith("z_") else a.detach().half().float()  # float16 on disk
        assert np.array_equal(a.numpy(), b.detach().numpy()), name
    from streamcodec.image.rd_codec import decode_rd, encode_rd
    from streamcodec.image.rd_model import load_rd_model

    codec_model = load_rd_model(str(folder))  # the export is what the codec loads, tables included
    rgb = np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    assert decode_rd(encode_rd(rgb, codec_model, 64.0), codec_model).shape == rgb.shape
    warm.fit(steps=6)
    log = [json.loads(line) for line in (tmp_path / "rd2" / "log.jsonl").read_text().splitlines()]
    assert log[0]["warm_start"] == str(folder) and log[-1]["step"] == 6
    assert {"q0", "q6"} <= set(next(r["dev"] for r in log if "dev" in r))


def test_rd_run_gains_lower_qualities_when_resumed(tmp_path, tiny_photos):
    """--add-lambdas extends a trained run below its lowest rate: the old qualities keep their
    gains, the new ones continue their trend, bounded by lambda's own ratio (smaller gains: a
    lower rate), the transforms keep their
    optimizer state, and the run resumes with the new qualities from then on."""
    from streamcodec.nets.image_rd import RDNetConfig
    import torch
    from streamcodec.train.image_rd import RDTrainConfig, RDTrainer, main as rd_main

    cfg = RDTrainConfig(net=RDNetConfig(n=8, m=8, z=8, lambdas=(0.01, 0.02, 0.04)), batch=2, crop=64,
                        dev_crop=64, log_every=2, threads=1)
    run = tmp_path / "rd"
    before = RDTrainer(run, tiny_photos, cfg)
    before.fit(steps=3)
    with torch.no_grad():
        before.model.gain[1] = before.model.gain[0] * 8  # gain x8 per lambda doubling: continued at most x2
    before.save()
    adam = {k: v.clone() for k, v in before.opt.state[before.opt.param_groups[0]["params"][0]].items()}
    rd_main(["--run", str(run), "--photos", str(tiny_photos), "--steps", "3", "--add-lambdas", "0.0025", "0.005"])
    after = RDTrainer(run, tiny_photos)
    assert after.cfg.net.lambdas == (0.0025, 0.005, 0.01, 0.02, 0.04)
    old, new = before.model.gain.detach().abs(), after.model.gain.detach()
    assert torch.allclose(new[2:], before.model.gain.detach())
    assert torch.allclose(new[1], old[0] / 2, rtol=1e-4) and torch.allclose(new[0], old[0] / 4, rtol=1e-4)
    for k, v in after.opt.state[after.opt.param_groups[0]["params"][0]].items():
        assert torch.equal(v, adam[k]), k
    after.fit(steps=5)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"step": 3, "lambdas": [0.0025, 0.005, 0.01, 0.02, 0.04]} in log and log[-1]["step"] == 5
    assert "q4" in log[-2]["dev"]
    with pytest.raises(ValueError, match="below the lowest"):
        RDTrainer(run, tiny_photos, add_lambdas=(0.03,))


def test_rd_gain_tuning_leaves_every_other_weight_as_it_was(tmp_path, tiny_photos):
    """--tune-gains-below trains only the lowest qualities' gains: the transforms, z's density and
    the other qualities' gains stay bit for bit (the export still refits the coding tables)."""
    import torch
    from streamcodec.nets.image_rd import RDNetConfig
    from streamcodec.train.image_rd import RDTrainConfig, RDTrainer, main as rd_main

    cfg = RDTrainConfig(net=RDNetConfig(n=8, m=8, z=8, lambdas=(0.01, 0.02, 0.04)), batch=2, crop=64,
                        dev_crop=64, log_every=100, threads=1)
    run = tmp_path / "rd"
    RDTrainer(run, tiny_photos, cfg).fit(steps=3)  # every weight trained: the optimizer has momentum
    before = {k: v.clone() for k, v in RDTrainer(run, tiny_photos).model.state_dict().items()}
    rd_main(["--run", str(run), "--photos", str(tiny_photos), "--steps", "8", "--tune-gains-below", "0.015"])
    after = RDTrainer(run, tiny_photos).model.state_dict()
    for key, value in after.items():
        if key in ("gain", "inv_gain", "z_gain", "z_inv_gain"):
            assert torch.equal(value[1:], before[key][1:]), key
            if key in ("gain", "inv_gain"):  # (z of an untrained model rounds to 0: no gradient for z's)
                assert not torch.equal(value[0], before[key][0]), key
        else:
            assert torch.equal(value, before[key]), key
    with pytest.raises(ValueError, match="nothing would train"):
        RDTrainer(run, tiny_photos, tune_gains_below=0.001)


def test_rd_gdn_cross_channel_terms_get_a_gradient():
    """GDN keeps gamma positive by squaring its parameters: a parameter at exactly 0 never moves,
    so the RD model's GDN starts its cross-channel terms off zero (the A/B in image_rd_ab.md)."""
    import torch

    from streamcodec.nets.image import GDN as PlainGDN
    from streamcodec.nets.image_rd import GDN

    off = ~torch.eye(4, dtype=torch.bool)
    for layer, learns in ((GDN(4), True), (GDN(4, inverse=True), True), (PlainGDN(4), False)):
        layer(torch.randn(2, 4, 5, 5)).pow(2).sum().backward()
        assert bool((layer.gamma.grad[:, :, 0, 0][off] != 0).all()) is learns


def test_rd_bf16_training_hands_float32_to_rounding_and_bits(tmp_path, tiny_photos):
    """--bf16 runs the convolutions in bfloat16, but every transform hands back float32, so the
    rounding of y around its mean and the entropy model's bits are computed exactly; the setting is
    kept in the run's config, and given when resuming it changes from then on (logged)."""
    import torch
    from streamcodec.nets.image_rd import RDNetConfig
    from streamcodec.train.image_rd import RDTrainConfig, RDTrainer, main as rd_main

    cfg = RDTrainConfig(net=RDNetConfig(n=8, m=8, z=8), batch=2, crop=64, dev_crop=64, threads=1)
    run = tmp_path / "rd"
    RDTrainer(run, tiny_photos, cfg).fit(steps=1)
    rd_main(["--run", str(run), "--photos", str(tiny_photos), "--steps", "2", "--bf16"])
    rd_main(["--run", str(run), "--photos", str(tiny_photos), "--steps", "3"])  # no flag: the run's config keeps it
    trainer = RDTrainer(run, tiny_photos)
    assert trainer.cfg.bf16 and trainer.state["step"] == 3
    assert {"step": 1, "bf16": True} in [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit(steps=4)
    assert any(not torch.equal(v, before[k]) for k, v in trainer.model.state_dict().items())
    model = trainer.model
    x = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model.g_a(x)
        mean, scale = model.h_s(model.h_a(y))
        outs = model(x, torch.tensor([0.0, 3.0]))
    assert all(t.dtype == torch.float32 for t in (y, mean, scale, *outs))
    assert all(bool(torch.isfinite(t).all()) for t in outs)
