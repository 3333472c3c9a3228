"""The training recipe on tiny data: a few steps of each stage, resume, export."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from streamcodec.cli import main as cli
from streamcodec.errors import BitstreamError, StreamcodecError
from streamcodec.nets.speech import SpeechNetConfig
from streamcodec.train.speech import TrainConfig, Trainer


def _tiny_config():
    return TrainConfig(net=SpeechNetConfig("conv1d", 16, 32, 1), batch=4, crop=32, adv_start=3, level_samples=128)


def test_two_stages_resume_and_export(tmp_path, tiny_corpus):
    run = tmp_path / "run"
    trainer = Trainer(run, tiny_corpus, _tiny_config())
    first_dev = trainer.dev_metrics()["dev_l1"]
    trainer.train_stage(1, steps=4, minutes=5)
    assert (run / "checkpoint.safetensors").exists() and (run / "config.json").exists()

    assert cli(["train", "speech", "--run", str(run), "--corpus", str(tiny_corpus), "--steps", "5"]) == 0
    trainer = Trainer(run, tiny_corpus)
    resumed = Trainer(run, tiny_corpus)  # config comes from the run folder
    assert resumed.cfg == trainer.cfg and resumed.state["stage_steps"]["1"] == 5
    for a, b in zip(trainer.G.parameters(), resumed.G.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    resumed.train_stage(1, steps=30, minutes=5)  # continues to 30, adversarial from step 3
    assert resumed.state["stage_steps"]["1"] == 30
    assert resumed.dev_metrics()["dev_l1"] < first_dev

    resumed.train_stage(2, steps=3, minutes=5)
    assert resumed.levels is not None and len(resumed.levels) == 16
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["stage"] == 2 and "dev_l1_quantised" in log[-1]

    out = tmp_path / "model"
    assert cli(["train", "export", "--run", str(run), "--corpus", str(tiny_corpus), "--out", str(out)]) == 0
    tensors = load_file(str(out / "model.safetensors"))
    assert tensors["levels"].shape == (16,) and tensors["huffman_lengths"].shape == (16,)
    assert any(k.startswith("encoder.") for k in tensors) and any(k.startswith("generator.") for k in tensors)
    assert json.loads((out / "config.json").read_text())["net"]["width"] == 32


def test_missing_corpus_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the corpus first"):
        Trainer(tmp_path / "run", tmp_path / "nowhere", _tiny_config())


def test_field_training_normalises_levels_and_augments(tmp_path, tiny_corpus, noise_bank):
    """Field training: the level target is measured once and kept, inputs are degraded while the
    targets stay clean, both at the normalised level, and training steps run and resume."""
    from streamcodec.dsp.level import measure_level

    cfg = _tiny_config()
    cfg.augment, cfg.adv_start = True, 0
    trainer = Trainer(tmp_path / "run", tiny_corpus, cfg, noise=noise_bank)
    target_db = trainer.cfg.level_target_db
    assert -60 < target_db < -10
    x, target = (t.transpose(1, 2).numpy() for t in trainer.sample(64))
    assert np.allclose(np.median(measure_level(x)), target_db, atol=3)
    degraded = np.abs(x - target).mean(axis=(1, 2)) > 1e-3
    assert 0.3 < degraded.mean() < 0.8  # p_clean is 0.5, plus the floor effect of very quiet input
    trainer.train_stage(1, steps=3, minutes=5)
    assert "dev_l1_field" in json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    resumed = Trainer(tmp_path / "run", tiny_corpus, noise=noise_bank)
    assert resumed.cfg.level_target_db == target_db and resumed.state["stage_steps"]["1"] == 3


def test_enhancer_trains_resumes_and_ships_beside_the_model(tmp_path, tiny_corpus, noise_bank, speech):
    """The enhancer starts as the identity (denoising gives the very packets of plain coding),
    learns on field pairs, resumes, and once exported beside a copy of speech-2k is used by default
    and changes what the encoder sends while the model id, and so every receiver, stays the same."""
    import shutil

    from streamcodec.nets.assets import model_dir
    from streamcodec.nets.speech import EnhancerConfig
    from streamcodec.speech import compress, decompress
    from streamcodec.speech.model import ModelError, load_model
    from streamcodec.train.enhancer import EnhancerTrainConfig, EnhancerTrainer

    model = tmp_path / "speech-copy"
    shutil.copytree(model_dir("speech-2k"), model, ignore=shutil.ignore_patterns("enhancer*"))  # E, G and code only
    cfg = EnhancerTrainConfig(net=EnhancerConfig(32, (1, 2)), model=str(model), batch=4, crop=32)
    run = tmp_path / "enh"
    trainer = EnhancerTrainer(run, tiny_corpus, cfg, noise=noise_bank)
    first = trainer.dev_metrics()
    assert first["dev_l1_clean"] == 0.0 and first["dev_l1_field"] == first["dev_l1_field_input"] > 0
    x = speech[: 16000 * 2]
    with pytest.raises(ModelError, match="no enhancer"):
        compress(x, 16000, iters=2, model=str(model), denoise=True)
    trainer.export(model)
    load_model.cache_clear()
    assert compress(x, 16000, iters=2, model=str(model)) == compress(x, 16000, iters=2, model=str(model), denoise=False)

    trainer.train_stage(1, steps=30, minutes=5)
    trainer.start_decay(10)  # anneal over the last 10 steps: recorded in the run, kept on resume
    assert trainer.lr(30) == cfg.lr and trainer.lr(35) < cfg.lr and trainer.lr(40) == pytest.approx(cfg.lr_final)
    trainer.train_stage(1, steps=40, minutes=5)
    assert trainer.opt.param_groups[0]["lr"] < cfg.lr
    resumed = EnhancerTrainer(run, tiny_corpus, noise=noise_bank)
    resumed.start_decay(1000)  # a schedule once set stays
    assert resumed.cfg == trainer.cfg and resumed.cfg.decay_start == 30 and resumed.cfg.decay_steps == 10
    assert resumed.state["stage_steps"]["1"] == 40
    assert resumed.dev_metrics()["dev_l1_field"] < first["dev_l1_field"]
    assert cli(["train", "export", "--kind", "enhancer", "--noise", str(noise_bank), "--run", str(run), "--corpus", str(tiny_corpus),
                "--out", str(model)]) == 0
    load_model.cache_clear()
    denoised = compress(x, 16000, iters=2, model=str(model))  # the model's enhancer is used by default
    assert denoised == compress(x, 16000, iters=2, model=str(model), denoise=True)
    assert denoised != compress(x, 16000, iters=2, model=str(model), denoise=False)
    assert load_model(str(model)).model_id == load_model("speech-2k").model_id
    audio, rate = decompress(denoised, model="speech-2k")
    assert rate == 16000 and abs(len(audio) - len(x)) < 512 and np.isfinite(audio).all()


def test_enhancer_round_starts_from_the_shipped_one_and_weights_the_high_band(tmp_path, tiny_corpus, noise_bank):
    """--from-shipped starts a new run from the enhancer the model ships (its shape too), a resumed
    run from its own checkpoint; the high-band weight makes an error above 4 kHz count that many
    times one below, the over weight an estimate above the target that many times one below; a
    model without an enhancer is refused with a message that says what to do."""
    import shutil

    from streamcodec.nets.assets import model_dir, read_part
    from streamcodec.train.augment import MEL_HZ
    from streamcodec.train.enhancer import EnhancerTrainConfig, EnhancerTrainer
    from streamcodec.train.loop import weighted_l1

    cfg = EnhancerTrainConfig(model="speech-2k", start="shipped", high_band_weight=4.0, batch=2, crop=16)
    run = tmp_path / "round"
    trainer = EnhancerTrainer(run, tiny_corpus, cfg, noise=noise_bank)
    shipped = read_part("speech-2k", "enhancer")
    assert trainer.cfg.net.to_dict() == shipped.config["net"]
    for name, weight in trainer.net.state_dict().items():
        assert torch.equal(weight, torch.from_numpy(shipped.tensors[name].astype(np.float32)))
    first = trainer.dev_metrics()  # the shipped enhancer already cleans the dev field pairs
    assert first["dev_l1_field"] < first["dev_l1_field_input"] and first["dev_l1_field_high"] > 0

    target = torch.zeros(1, 128, 4)
    high = torch.from_numpy(MEL_HZ >= 4000.0)
    above, below = target.clone(), target.clone()
    above[:, high], below[:, ~high] = 0.5, 0.5
    w = trainer.bands
    per_band = weighted_l1(above, target, bands=w) / high.sum(), weighted_l1(below, target, bands=w) / (~high).sum()
    assert per_band[0] / per_band[1] == pytest.approx(4.0)
    over = torch.full((128,), 3.0)
    for bands in (None, w):  # noise left in (an estimate above the target) counts `over` times a loss of speech
        assert weighted_l1(target + 0.5, target, bands=bands, over=over) == pytest.approx(
            3 * weighted_l1(target - 0.5, target, bands=bands, over=over).item())
    over_high = trainer._per_band(3.0, high_only=True)  # --over-high-only: above 4 kHz alone
    assert weighted_l1(above, target, over=over_high) == pytest.approx(3 * weighted_l1(-above, target, over=over_high).item())
    assert weighted_l1(below, target, over=over_high) == pytest.approx(weighted_l1(-below, target, over=over_high).item())
    assert trainer._per_band(1.0, high_only=False) is None and torch.equal(trainer._per_band(3.0, False), over)

    trainer.train_stage(1, steps=2, minutes=5)
    resumed = EnhancerTrainer(run, tiny_corpus, noise=noise_bank)  # config and weights from the run folder
    assert resumed.cfg == trainer.cfg and resumed.state["stage_steps"]["1"] == 2
    moved = [n for n, v in trainer.net.state_dict().items() if not torch.equal(v, resumed.net.state_dict()[n])]
    assert not moved
    assert any(not torch.equal(v, torch.from_numpy(shipped.tensors[n].astype(np.float32)))
               for n, v in resumed.net.state_dict().items())

    bare = tmp_path / "speech-copy"
    shutil.copytree(model_dir("speech-2k"), bare, ignore=shutil.ignore_patterns("enhancer*"))
    with pytest.raises(StreamcodecError, match="ships no enhancer"):
        EnhancerTrainer(tmp_path / "none", tiny_corpus, EnhancerTrainConfig(model=str(bare), start="shipped"),
                        noise=noise_bank)


def test_search_aware_stage_fine_tunes_a_shipped_model(tmp_path, tiny_corpus, tiny_model):
    """Stage 3 starts from a shipped model (its E, G, levels and level target), trains G alone on
    the latents the codec's search finds, D first alone, resumes, and exports a model that codes."""
    from streamcodec.speech import compress, decompress
    from streamcodec.speech.model import load_model

    cfg = TrainConfig(net=SpeechNetConfig("conv1d", 16, 32, 1), batch=4, crop=32, level_samples=128,
                      init_from=tiny_model.name, search_iters=2, stage3_adv_start=2, stage3_warmup=2)
    run = tmp_path / "run"
    trainer = Trainer(run, tiny_corpus, cfg)
    np.testing.assert_array_equal(trainer.levels.numpy(), tiny_model.levels)
    assert trainer.cfg.level_target_db == tiny_model.level_target_db
    encoder = [p.detach().clone() for p in trainer.E.parameters()]
    generator = [p.detach().clone() for p in trainer.G.parameters()]
    searched = trainer.searched_latents(trainer.dev_batch[:2])
    assert set(np.unique(searched.numpy())) <= set(tiny_model.levels.tolist())
    assert trainer.adversarial_due(3) is False
    trainer.train_stage(3, steps=3, minutes=5)
    assert trainer.adversarial_due(3) is True
    assert all(torch.equal(a, b) for a, b in zip(encoder, trainer.E.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(generator, trainer.G.parameters()))
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.lr * cfg.stage3_lr_scale)
    assert "dev_l1_searched" in json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    resumed = Trainer(run, tiny_corpus)
    assert resumed.state["stage_steps"]["3"] == 3 and resumed.cfg == trainer.cfg
    out = tmp_path / "model"
    resumed.export(out, level_target_db=resumed.cfg.level_target_db)
    model = load_model(str(out))
    assert model.model_id != tiny_model.model_id and model.level_target_db == tiny_model.level_target_db
    audio, _ = decompress(compress(np.zeros(8000, np.float32) + 0.01, 16000, iters=2, model=str(out)), model=str(out))
    assert np.isfinite(audio).all()


def test_loudness_weighted_l1_is_l1_at_zero_and_counts_loud_bins_more():
    from streamcodec.train.loop import weighted_l1

    target = torch.tensor([[-0.9, 0.8]])
    assert weighted_l1(target + 0.1, target) == pytest.approx(0.1)
    quiet_miss, loud_miss = target + torch.tensor([[0.2, 0.0]]), target + torch.tensor([[0.0, 0.2]])
    assert weighted_l1(quiet_miss, target) == pytest.approx(weighted_l1(loud_miss, target).item())
    assert weighted_l1(loud_miss, target, 4.0) > 10 * weighted_l1(quiet_miss, target, 4.0)


def test_receiver_generator_trains_on_searched_latents_and_ships(tmp_path, tiny_corpus, noise_bank, tiny_model, speech):
    """The receiver's generator: pairs are the codec's own searched indices (within the frame's
    bit budget) and clean targets, rebuilt identically when a shard is lost; training starts from
    the model's G, learns, resumes, and once exported is what decoders use and the encoder searches
    through: a new model id, whose receivers still decode the packets of the old one; a next round
    starts from it."""
    import shutil

    from streamcodec.speech import compress, decompress
    from streamcodec.speech.codec import SpeechDecoder
    from streamcodec.speech.model import ModelError, load_model
    from streamcodec.train.decoder import DecoderTrainConfig, DecoderTrainer, frame_limit

    model = tmp_path / "model"
    shutil.copytree(tiny_model.name, model)
    cfg = DecoderTrainConfig(model=str(model), frames=12, dev_frames=8, babble_frames=4, hard_frames=3,
                             search_iters=2, batch=4, lr=1e-3, loudness=4.0)
    run = tmp_path / "dec"
    trainer = DecoderTrainer(run, tiny_corpus, cfg, noise=noise_bank)
    trainer.build_pairs(workers=2)
    shard = np.load(run / "pairs" / "train-0000.npz")
    indices, target = shard["indices"], shard["target"]
    assert indices.shape == (12, *tiny_model.latent_shape) and target.shape == (12, 128, 128)
    assert np.load(run / "pairs" / "babble-0000.npz")["indices"].shape == (4, *tiny_model.latent_shape)
    assert np.load(run / "pairs" / "hard-0000.npz")["indices"].shape == (3, *tiny_model.latent_shape)
    budget = frame_limit(tiny_model, 1).budget[0]
    assert all(tiny_model.code.encode(i)[1] <= budget for i in indices)
    (run / "pairs" / "train-0000.npz").unlink()
    trainer.build_pairs(workers=1)
    np.testing.assert_array_equal(np.load(run / "pairs" / "train-0000.npz")["indices"], indices)

    dev = np.load(run / "pairs" / "dev.npz")
    shipped = tiny_model.generator(tiny_model.levels[dev["indices"].astype(np.int64)])
    first = trainer.dev_metrics()["dev_l1"]
    assert first == pytest.approx(np.abs(shipped - dev["target"].astype(np.float32).transpose(0, 2, 1)).mean(), rel=1e-3)
    first_loud = trainer.dev_metrics()["dev_l1_loud"]
    trainer.train_stage(1, steps=20, minutes=5)
    assert len(trainer.train_pairs[0]) == 19  # the babble and hard pairs are trained on too
    assert trainer.dev_metrics()["dev_l1_loud"] < first_loud
    resumed = DecoderTrainer(run, tiny_corpus, noise=noise_bank)
    assert resumed.cfg == cfg and resumed.state["stage_steps"]["1"] == 20
    for a, b in zip(trainer.G.parameters(), resumed.G.parameters()):
        assert torch.equal(a, b)

    x = speech[: 16000 * 2]
    packets = compress(x, 16000, iters=2, model=str(model))
    before = decompress(packets, model=str(model))[0]
    assert cli(["train", "export", "--kind", "decoder", "--noise", str(noise_bank), "--run", str(run), "--corpus", str(tiny_corpus),
                "--out", str(model)]) == 0
    load_model.cache_clear()
    tuned = load_model(str(model))
    assert tuned.base_id == tiny_model.model_id != tuned.model_id and tuned.decoder is not tuned.generator
    after = decompress(packets, model=str(model))[0]  # packets searched through G decode with its copy
    assert len(after) == len(before) and np.isfinite(after).all() and not np.allclose(after, before)
    assert SpeechDecoder(tiny_model).model.decoder is tiny_model.generator  # no decoder shipped: G
    searched = compress(x, 16000, iters=2, model=str(model))  # now through the receiver's generator
    assert searched != packets and np.isfinite(decompress(searched, model=str(model))[0]).all()
    with pytest.raises(BitstreamError, match="use the same model"):  # a receiver without it refuses them
        decompress(searched, model=tiny_model)
    with pytest.raises(StreamcodecError, match="no receiver's generator"):
        DecoderTrainer(tmp_path / "r0", tiny_corpus, DecoderTrainConfig(model=tiny_model.name, start="decoder"))
    round2 = DecoderTrainer(tmp_path / "r2", tiny_corpus, DecoderTrainConfig(model=str(model), start="decoder"))
    for k, v in load_file(str(model / "decoder.safetensors")).items():  # a next round starts from it
        torch.testing.assert_close(round2.G.state_dict()[k], v.float())

    other = tmp_path / "dec2"  # a second run from the same G: exported as the mean of both
    shutil.copytree(run, other)
    DecoderTrainer(other, tiny_corpus, noise=noise_bank).train_stage(1, steps=30, minutes=5)
    assert cli(["train", "export", "--kind", "decoder", "--noise", str(noise_bank), "--run", str(run), "--average", str(other),
                "--corpus", str(tiny_corpus), "--out", str(model)]) == 0
    weights = load_file(str(model / "decoder.safetensors"))
    mean = {k: (a + b) / 2 for (k, a), b in zip(trainer.G.state_dict().items(),
                                                 DecoderTrainer(other, tiny_corpus, noise=noise_bank).G.state_dict().values())}
    assert any(not torch.allclose(a, trainer.G.state_dict()[k], atol=1e-3) for k, a in mean.items())
    for k, a in mean.items():
        torch.testing.assert_close(weights[k].float(), a, atol=2e-3, rtol=2e-3)
    exported = json.loads((model / "decoder.json").read_text())
    assert exported["averaged_with"][0]["state"]["stage_steps"]["1"] == 30
    load_model.cache_clear()
    averaged = load_model(str(model))  # the development L1 recorded is that of the network shipped
    y = averaged.decoder(averaged.levels[dev["indices"].astype(np.int64)])
    assert exported["dev"]["dev_l1"] == pytest.approx(np.abs(y - dev["target"].astype(np.float32).transpose(0, 2, 1)).mean(), rel=1e-2)
    assert cli(["train", "export", "--kind", "enhancer", "--noise", str(noise_bank), "--run", str(run), "--average", str(other)]) == 2
    foreign = DecoderTrainer(other, tiny_corpus, noise=noise_bank)
    foreign.cfg.model = "speech-2k"
    with pytest.raises(StreamcodecError, match="same model"):
        DecoderTrainer(run, tiny_corpus, noise=noise_bank).export(model, [foreign])

    config = json.loads((model / "decoder.json").read_text())
    config["net"]["width"] = 64
    (model / "decoder.json").write_text(json.dumps(config))
    load_model.cache_clear()
    with pytest.raises(ModelError, match="decoder of speech model"):
        load_model(str(model))
    load_model.cache_clear()


def test_receiver_decoder_trains_on_frame_sequences_and_ships(tmp_path, tiny_corpus, noise_bank, tiny_model, speech):
    """The receivers' large decoder: pairs are sequences of consecutive frames, each within its
    bit budget; it starts as the shipped generator (new blocks are the identity), learns, resumes,
    and once exported receivers decode with it, reading the end of the frame before (none after a
    loss), while the model id and the packets stay; turned off, the small decoder runs."""
    import dataclasses
    import shutil

    from streamcodec.bitstream.speech import read_speech_file
    from streamcodec.nets.speech import Generator1d
    from streamcodec.speech import compress
    from streamcodec.speech.codec import SpeechDecoder, decode_file
    from streamcodec.speech.model import load_model
    from streamcodec.train.decoder import frame_limit
    from streamcodec.train.receiver import ReceiverTrainConfig, ReceiverTrainer

    model = tmp_path / "model"
    shutil.copytree(tiny_model.name, model)
    cfg = ReceiverTrainConfig(model=str(model), sequences=6, sequence_frames=2, dev_sequences=3, dilations=(1, 2),
                              context=2, search_iters=2, batch=4, lr=1e-3)
    run = tmp_path / "recv"
    trainer = ReceiverTrainer(run, tiny_corpus, cfg, noise=noise_bank)
    trainer.build_pairs(workers=2)
    shard = np.load(run / "pairs" / "seq-0000.npz")
    assert shard["indices"].shape == (6, 2, *tiny_model.latent_shape) and shard["target"].shape == (6, 2, 128, 128)
    assert np.load(run / "pairs" / "dev-clean.npz")["indices"].shape == (3, 2, *tiny_model.latent_shape)
    budget = frame_limit(tiny_model, 1).budget[0]
    assert all(tiny_model.code.encode(i)[1] <= budget for i in shard["indices"].reshape(-1, *tiny_model.latent_shape))

    alone = ReceiverTrainer(tmp_path / "alone", tiny_corpus, ReceiverTrainConfig(
        model=str(model), sequences=6, sequence_frames=2, dev_sequences=3, dilations=(1, 2), context=0,
        pairs=str(run / "pairs")))  # shares the pairs; without context it starts as the small decoder exactly
    start = alone.dev_metrics()
    for key in ("dev_l1", "dev_l1_loud", "dev_clean_l1", "dev_clean_l1_loud"):  # both development sets
        assert start[key] == pytest.approx(start[f"{key}_small"], rel=1e-5)
    first = trainer.dev_metrics()
    assert first["dev_l1_small"] == start["dev_l1_small"]
    adv = ReceiverTrainer(tmp_path / "adv", tiny_corpus, ReceiverTrainConfig(
        model=str(model), sequences=6, sequence_frames=2, dev_sequences=3, dilations=(1, 2), context=2,
        pairs=str(run / "pairs"), adversarial=1.0))  # the adversarial arm: its discriminator resumes too
    assert {"rec", "adv", "fm", "d"} <= adv.step(1).keys()
    adv.save()
    for a, b in zip(adv.D.parameters(), ReceiverTrainer(tmp_path / "adv", tiny_corpus).D.parameters()):
        assert torch.equal(a, b)
    trainer.train_stage(1, steps=25, minutes=5)
    assert trainer.dev_metrics()["dev_l1"] < first["dev_l1"]
    resumed = ReceiverTrainer(run, tiny_corpus, noise=noise_bank)
    assert resumed.cfg == cfg and resumed.state["stage_steps"]["1"] == 25
    for a, b in zip(trainer.G.parameters(), resumed.G.parameters()):
        assert torch.equal(a, b)

    x = speech[: 16000 * 4]
    packets = compress(x, 16000, iters=2, model=str(model), dtx=False)
    assert cli(["train", "export", "--kind", "receiver", "--noise", str(noise_bank), "--run", str(run), "--corpus",
                str(tiny_corpus), "--out", str(model)]) == 0
    load_model.cache_clear()
    shipped = load_model(str(model))
    assert shipped.receiver is not None and shipped.model_id == tiny_model.model_id
    assert compress(x, 16000, iters=2, model=str(model), dtx=False) == packets  # the encoder is unchanged
    dev = np.load(run / "pairs" / "dev-seq.npz")["indices"]  # numpy runs what torch trained
    z = shipped.levels[dev[:, 1].astype(np.int64)]
    before = shipped.levels[dev[:, 0].astype(np.int64)]
    with torch.no_grad():
        net = Generator1d(shipped.config, (1, 2))
        net.load_state_dict({k: v.float() for k, v in load_file(str(model / "receiver.safetensors")).items()})
        want = net(torch.from_numpy(np.concatenate([before[..., -2:], z], 2)))[..., 8:].numpy()
    np.testing.assert_allclose(shipped.receiver(z, before), want, atol=1e-4)

    frames = read_speech_file(packets).packets
    fresh = lambda: SpeechDecoder(str(model))  # noqa: E731
    dec = fresh()
    mels = [dec.frame_mel(p) for p in frames[:3]]
    assert dec.last_decoder == "large"
    np.testing.assert_array_equal(mels[0], fresh().frame_mel(frames[0]))  # a stream's first frame: no frame before
    assert not np.allclose(mels[2], fresh().frame_mel(frames[2]))  # later ones read the one before
    dec.conceal()  # after a loss the next frame decodes as if it were the first
    np.testing.assert_array_equal(dec.frame_mel(frames[3]), fresh().frame_mel(frames[3]))
    file = read_speech_file(packets)  # packets out of order decode as in order; one lost is concealed
    in_order = [a for a, _ in decode_file(file, str(model))]
    shuffled = dataclasses.replace(file, packets=file.packets[::-1])
    for a, b in zip(in_order, [a for a, _ in decode_file(shuffled, str(model))], strict=True):
        np.testing.assert_array_equal(a, b)
    lossy = [(a, lost) for a, lost in decode_file(dataclasses.replace(file, packets=file.packets[:1] + file.packets[2:]),
                                                  str(model))]
    assert [lost for _, lost in lossy][:3] == [False, True, False] and np.isfinite(np.concatenate([a for a, _ in lossy])).all()
    small = SpeechDecoder(str(model), large_decoder=False)
    np.testing.assert_array_equal(small.frame_mel(frames[0]), SpeechDecoder(tiny_model).frame_mel(frames[0]))
    assert small.last_decoder == "small"
    load_model.cache_clear()


def test_encoder_start_learns_the_search_loss_and_ships_beside_the_model(tmp_path, tiny_corpus, noise_bank,
                                                                          tiny_model, speech):
    """E's copy learns the codec's own first search score (the same number the search computes),
    resumes, and ships as encoder.safetensors: the encoder starts from it, the model id stays, so
    its packets decode on receivers of the model without it."""
    import shutil
    from dataclasses import replace

    from streamcodec.core.search import RoutedObjective, admm_search, loudness_weighted_mse
    from streamcodec.speech import compress, decompress
    from streamcodec.speech.model import ModelError, load_model
    from streamcodec.train.encoder import EncoderTrainConfig, EncoderTrainer

    model = tmp_path / "model"
    shutil.copytree(tiny_model.name, model)
    cfg = EncoderTrainConfig(model=str(model), batch=4, lr=1e-3, dev_frames=8)
    run = tmp_path / "enc"
    trainer = EncoderTrainer(run, tiny_corpus, cfg, noise=noise_bank)
    x, route = trainer.dev
    first = trainer.dev_metrics()["dev_loss"]
    ways = [(tiny_model.decoder, loudness_weighted_mse)]  # the tiny model has no enhancer: no frame is noisy
    search = admm_search(RoutedObjective(ways, route, x.numpy()), tiny_model.encoder(x.numpy()), tiny_model.levels, iters=0)
    assert not route.any() and first == pytest.approx(search.initial_loss.mean(), rel=1e-3)
    trainer.train_stage(1, steps=20, minutes=5)
    assert trainer.dev_metrics()["dev_loss"] < first
    resumed = EncoderTrainer(run, tiny_corpus, noise=noise_bank)
    assert resumed.cfg == cfg and resumed.state["stage_steps"]["1"] == 20
    for a, b in zip(trainer.E.parameters(), resumed.E.parameters()):
        assert torch.equal(a, b)

    assert cli(["train", "export", "--kind", "encoder", "--noise", str(noise_bank), "--run", str(run), "--corpus", str(tiny_corpus),
                "--out", str(model)]) == 0
    load_model.cache_clear()
    tuned = load_model(str(model))
    assert tuned.model_id == tiny_model.model_id
    assert not np.allclose(tuned.encoder(x.numpy()), tiny_model.encoder(x.numpy()), atol=1e-3)
    audio = speech[: 16000 * 2]
    packets = compress(audio, 16000, iters=0, model=str(model))
    assert packets != compress(audio, 16000, iters=0, model=tiny_model)
    np.testing.assert_array_equal(decompress(packets, model=str(model))[0], decompress(packets, model=tiny_model)[0])

    other = EncoderTrainer(tmp_path / "enc-s1", tiny_corpus, replace(cfg, seed=1), noise=noise_bank)
    assert torch.equal(other.dev[0], x)  # every seed is scored on the same development crops
    other.train_stage(1, steps=20, minutes=5)  # from the same E, on other crops: exported as the mean of both
    assert cli(["train", "export", "--kind", "encoder", "--noise", str(noise_bank), "--run", str(run), "--average", str(other.run),
                "--corpus", str(tiny_corpus), "--out", str(model)]) == 0
    weights = load_file(str(model / "encoder.safetensors"))
    pairs = [(k, a, other.E.state_dict()[k]) for k, a in trainer.E.state_dict().items()]
    assert any(not torch.allclose(a, b, atol=1e-3) for _, a, b in pairs)
    for k, a, b in pairs:
        torch.testing.assert_close(weights[k].float(), (a + b) / 2, atol=2e-3, rtol=2e-3)
    assert json.loads((model / "encoder.json").read_text())["averaged_with"][0]["training"]["seed"] == 1

    config = json.loads((model / "encoder.json").read_text())
    config["net"]["width"] = 64
    (model / "encoder.json").write_text(json.dumps(config))
    load_model.cache_clear()
    with pytest.raises(ModelError, match="encoder of speech model"):
        load_model(str(model))
    load_model.cache_clear()


def test_amortised_search_regresses_the_shipped_copy_toward_longer_searches(tmp_path, tiny_corpus, noise_bank,
                                                                            tiny_model):
    """--amortise: starts from the encoder the model ships, codes its frames with the encoder's own
    longer search (resumable shards), learns to land nearer where that search ends, and ships
    like the first round."""
    import shutil

    from streamcodec.speech.model import load_model
    from streamcodec.train.encoder import EncoderTrainConfig, EncoderTrainer

    model = tmp_path / "model"
    shutil.copytree(tiny_model.name, model)
    first_round = EncoderTrainer(tmp_path / "enc", tiny_corpus, EncoderTrainConfig(model=str(model), batch=4, lr=1e-3,
                                                                                   dev_frames=4), noise=noise_bank)
    first_round.train_stage(1, steps=10, minutes=5)
    assert cli(["train", "export", "--kind", "encoder", "--noise", str(noise_bank), "--run", str(first_round.run), "--corpus", str(tiny_corpus),
                "--out", str(model)]) == 0
    load_model.cache_clear()
    shipped = load_model(str(model))

    cfg = EncoderTrainConfig(model=str(model), batch=4, lr=1e-3, dev_frames=6, amortise_frames=10, amortise_iters=3)
    run = tmp_path / "amortised"
    trainer = EncoderTrainer(run, tiny_corpus, cfg, noise=noise_bank)
    trainer.build_pairs(workers=2)
    dev = np.load(run / "pairs" / "dev.npz")
    x, indices = dev["x"].astype(np.float32), dev["indices"].astype(np.int64)
    assert x.shape == (6, 128, 128) and indices.shape == (6, *tiny_model.latent_shape)
    start = shipped.encoder(x)  # the shipped copy, where the search started
    assert (np.abs(start - shipped.levels[indices]) > 1e-6).any()  # and the search moved
    first = trainer.dev_metrics()["dev_mse"]
    assert first == pytest.approx(np.mean((start - shipped.levels[indices]) ** 2), rel=2e-2)
    assert np.load(run / "pairs" / "train-0000.npz")["indices"].shape == (10, *tiny_model.latent_shape)
    (run / "pairs" / "train-0000.npz").unlink()
    trainer.build_pairs(workers=1)  # a stopped build continues, with the same frames
    np.testing.assert_array_equal(np.load(run / "pairs" / "train-0000.npz")["indices"], trainer.train_pairs["indices"])

    trainer.train_stage(1, steps=30, minutes=5)
    assert trainer.dev_metrics()["dev_mse"] < first
    resumed = EncoderTrainer(run, tiny_corpus, noise=noise_bank)
    assert resumed.cfg == cfg and resumed.state["stage_steps"]["1"] == 30
    assert all(torch.equal(a, b) for a, b in zip(trainer.E.parameters(), resumed.E.parameters()))
    assert cli(["train", "export", "--kind", "encoder", "--noise", str(noise_bank), "--run", str(run), "--corpus", str(tiny_corpus),
                "--out", str(model)]) == 0
    load_model.cache_clear()
    amortised = load_model(str(model))
    assert amortised.model_id == tiny_model.model_id
    assert np.mean((amortised.encoder(x) - shipped.levels[indices]) ** 2) < first
    load_model.cache_clear()
