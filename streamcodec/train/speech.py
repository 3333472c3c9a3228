"""Training recipe for the speech model, in BPGAN's two stages. Resumable: run the same command
again and it continues from the run folder's checkpoint.

    streamcodec train speech --run runs/speech --stage 1 --minutes 120   # E and G, then adversarial
    streamcodec train speech --run runs/speech --stage 2 --minutes 30    # k-means levels, quantised G
    streamcodec train speech --run runs/speech --stage 3 --minutes 60    # optional: G on searched latents
    streamcodec train export --run runs/speech --out models/speech-2k    # weights, levels, Huffman

Stage 1 trains E and G on log-mel reconstruction (L1), with Gaussian noise on the latent so that G
tolerates quantisation, and after `adv_start` steps adds a least-squares adversarial loss and
feature matching against D. Stage 2 freezes E, fits the k-means levels on E's latents and
fine-tunes G on quantised latents (straight-through); the Huffman code comes from the histogram
of the quantised training latents. Stage 3 (search-aware fine-tuning, issue 14) trains G on the
latents the codec's own search finds through the current G (core/search.py on the numpy runtime,
`search_iters` iterations, from E's latent), not on E's quantised output: what the receiver
decodes. A run may also start from a shipped model (`--init-from`, its E, G and levels). So far it
loses: from speech-2k, 253 steps raised the development search loss from 0.00359 to 0.00487
(benchmarks/results/search_aware.md); it is here to be improved, not used.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamcodec.core.quantizer import fit_levels
from streamcodec.core.search import GeneratorObjective, admm_search, loudness_weighted_mse
from streamcodec.dsp.level import apply_gain, gain_for, measure_level
from streamcodec.nets import runtime
from streamcodec.nets.assets import read_assets
from streamcodec.nets.speech import Discriminator, SpeechNetConfig, build
from streamcodec.train.augment import FieldAugmenter
from streamcodec.train.loop import StagedTrainer, lsgan_losses, ste_quantize
from streamcodec.train.noise import load_bank


@dataclass
class TrainConfig:
    net: SpeechNetConfig = field(default_factory=SpeechNetConfig)
    seed: int = 0
    batch: int = 16
    crop: int = 64  # frames per training example (G and E are convolutional in time)
    lr: float = 3e-4
    adv_start: int = 6000  # stage-1 step at which the adversarial losses start
    lambda_adv: float = 0.05
    lambda_fm: float = 0.5
    latent_noise: float = 0.15
    latent_l2: float = 1e-3
    gain_db: float = 10.0  # random level change, +-
    n_levels: int = 16
    level_samples: int = 4000  # crops whose latents fit the levels and the Huffman code
    checkpoint_seconds: float = 300.0
    # Field training (issue 14): level normalisation to level_target_db (None: measured on the
    # corpus at the first start), augmentation (train/augment.py), and a shipped model to start from.
    augment: bool = False
    level_target_db: float | None = None
    init_from: str = ""
    # Stage 3: search iterations per batch, step size (a fraction of lr, reached linearly over
    # stage3_warmup steps: a fresh Adam state at full step size adds noise a converged G loses
    # to), and the steps D trains alone first (a run started from a shipped model has a fresh D).
    search_iters: int = 8
    stage3_lr_scale: float = 0.1
    stage3_warmup: int = 1000
    stage3_adv_start: int = 500

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["net"] = SpeechNetConfig(**d["net"])
        return cls(**d)


class CropSampler:
    """Random `crop`-frame windows of the cached log-mel streams of one split."""

    def __init__(self, corpus: Path, split: str, crop: int, seed: int) -> None:
        files = sorted((Path(corpus) / split).glob("*.npy"))
        if not files:
            raise FileNotFoundError(f"no log-mel files in {corpus}/{split}: build the corpus first")
        streams = [np.load(f) for f in files]
        streams = [s for s in streams if len(s) > crop]
        self.data = np.concatenate(streams)  # (frames, mels) float16
        lengths = np.array([len(s) for s in streams])
        starts = np.cumsum(lengths) - lengths
        # Valid window starts: inside one stream, not crossing into the next.
        self.valid = np.concatenate([np.arange(s, s + n - crop) for s, n in zip(starts, lengths)])
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.frames = int(lengths.sum())

    def crops(self, n: int, frames: int | None = None) -> np.ndarray:
        """(n, frames, mels) float32 random windows (frames <= crop)."""
        idx = self.rng.choice(self.valid, n)
        return np.stack([self.data[i : i + (frames or self.crop)] for i in idx]).astype(np.float32)

    def batch(self, n: int, gain_db: float = 0.0) -> torch.Tensor:
        x = self.crops(n)
        if gain_db:
            shift = self.rng.uniform(-gain_db, gain_db, (n, 1, 1)) / 50.0  # 100 dB span -> [-1, 1]
            x = np.where(x <= -0.999, -1.0, np.clip(x + shift, -1.0, 1.0)).astype(np.float32)
        return torch.from_numpy(x).transpose(1, 2).contiguous()  # (n, mels, frames)


class Trainer(StagedTrainer):
    def __init__(self, run: Path, corpus: Path, cfg: TrainConfig | None = None, noise: Path | None = None) -> None:
        super().__init__(run, cfg or TrainConfig(), TrainConfig.from_dict)
        cfg = self.cfg
        self.E, self.G = build(cfg.net)
        self.D = Discriminator()
        self.opt_g = torch.optim.AdamW(list(self.E.parameters()) + list(self.G.parameters()), cfg.lr, betas=(0.8, 0.99))
        self.opt_d = torch.optim.AdamW(self.D.parameters(), cfg.lr, betas=(0.8, 0.99))
        self.train = CropSampler(corpus, "train", cfg.crop, cfg.seed)
        self.dev = CropSampler(corpus, "dev", 128, cfg.seed + 1)
        self.dev_batch = self.dev.batch(64)
        self.field = None
        if cfg.augment:
            self._start_field(self.run, noise)
        if cfg.init_from and not (self.run / "checkpoint.safetensors").exists():
            self._start_from(cfg.init_from)
        self.resume()

    def _start_from(self, name: str) -> None:
        """E and G of a shipped model (and its levels and level target, outside field training,
        so that stage 3 fine-tunes that very model)."""
        assets = read_assets(name)
        assets.load_into("encoder", self.E)
        assets.load_into("generator", self.G)
        self.E.train()
        self.G.train()
        if not self.cfg.augment:
            self.levels = torch.from_numpy(assets.quantiser()[0])
            if self.cfg.level_target_db is None and "level_target_db" in assets.config:
                self.cfg.level_target_db = float(assets.config["level_target_db"])
                self.save_config()

    def _start_field(self, run: Path, noise: Path | None) -> None:
        """Level normalisation, augmentation, the field dev batch, and the starting weights."""
        cfg = self.cfg
        if cfg.level_target_db is None:  # the corpus's typical block level, fixed at the first start
            cfg.level_target_db = round(float(np.median(measure_level(self.train.crops(2000)))), 2)
            self.save_config()
        bank = load_bank("train", noise)
        self.field = FieldAugmenter(bank, self.train.crops, cfg.level_target_db, cfg.seed)
        clean = self.dev_batch.transpose(1, 2).numpy()
        gain = gain_for(measure_level(clean), cfg.level_target_db)
        self.dev_batch = mels_first(apply_gain(clean, gain))
        field_in, field_target = FieldAugmenter(bank, self.dev.crops, cfg.level_target_db,
                                                cfg.seed + 2).field_pair(clean)
        self.dev_field = (mels_first(field_in), mels_first(field_target))

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch: (network input, target), (n, mels, frames) each."""
        if self.field is None:
            x = self.train.batch(n, self.cfg.gain_db)
            return x, x
        x, target = self.field.field_pair(self.train.crops(n))
        return mels_first(x), mels_first(target)

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        self.E.eval()
        self.G.eval()
        z = self.E(self.dev_batch)
        out = {"dev_l1": F.l1_loss(self.G(z), self.dev_batch).item()}
        if self.levels is not None:
            zq = ste_quantize(z, self.levels)
            out["dev_l1_quantised"] = F.l1_loss(self.G(zq), self.dev_batch).item()
            if self.cfg.search_iters:  # what the codec sends: searched latents, and their search loss
                x = self.dev_batch[:16]
                y = self.G(self.searched_latents(x))
                out["dev_l1_searched"] = F.l1_loss(y, x).item()
                out["dev_search_loss"] = float(loudness_weighted_mse(x.numpy(), y.numpy())[0].mean())
        if self.field is not None:
            x, target = self.dev_field
            out["dev_l1_field"] = F.l1_loss(self.G(self.E(x)), target).item()
        self.E.train()
        self.G.train()
        return out

    def fit_levels(self, z: np.ndarray) -> np.ndarray:
        return fit_levels(z, self.cfg.n_levels, seed=self.cfg.seed)

    def latent_noise(self, z: torch.Tensor) -> torch.Tensor:
        return self.cfg.latent_noise * torch.randn_like(z)

    def training_latents(self):
        for _ in range(max(1, self.cfg.level_samples // 64)):
            yield self.E(self.sample(64)[0])

    def begin_stage3(self) -> None:
        self._stage3_lr()

    def _stage3_lr(self) -> None:
        warm = min(1.0, (self.state["stage_steps"].get("3", 0) + 1) / max(1, self.cfg.stage3_warmup))
        for group in self.opt_g.param_groups:
            group["lr"] = self.cfg.lr * self.cfg.stage3_lr_scale * warm

    def adversarial_due(self, stage: int) -> bool:
        if stage == 3:
            return self.state["stage_steps"].get("3", 0) >= self.cfg.stage3_adv_start
        return super().adversarial_due(stage)

    @torch.no_grad()
    def searched_latents(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised latents the codec's search finds for x through the current G (its
        weights copied to the numpy runtime), from E's latent, without a rate limit."""
        G = runtime.generator({f"generator.{k}": v.numpy() for k, v in self.G.state_dict().items()},
                              self.cfg.net.dilations)
        target = x.numpy()
        result = admm_search(GeneratorObjective(G, target, loudness_weighted_mse), self.E(x).numpy(),
                             self.levels.numpy(), iters=self.cfg.search_iters, eval_every=4)
        return torch.from_numpy(result.latent)

    def step(self, stage: int) -> dict:
        x, target = self.sample(self.cfg.batch)
        if stage == 3:
            self._stage3_lr()
        z, z_in = (self.searched_latents(x),) * 2 if stage == 3 else self.encode(x, stage)
        y = self.G(z_in)
        if stage == 3 and not self.adversarial_due(3):  # D learns G's output before G hears from it
            lsgan_losses(self.D, target, y.detach(), self.opt_d)
        return self.update(stage, target, y, z, F.l1_loss(y, target))


def mels_first(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1)))


def export(run: Path, out: Path, corpus: Path) -> Path:
    """The model, with the frame level its networks were trained at: the field run's target, or
    the corpus's typical block level (what a run without level normalisation saw; the codec
    brings every input to it, and the enhancer trains at it)."""
    trainer = Trainer(run, corpus)
    target = trainer.cfg.level_target_db
    if target is None:
        target = round(float(np.median(measure_level(trainer.train.crops(2000)))), 2)
    return trainer.export(out, level_target_db=target)


def main(args) -> None:
    cfg = TrainConfig(net=SpeechNetConfig(arch=args.arch), augment=args.field, init_from=args.init_from or "")
    if args.field:  # a fine-tune of a trained model: adversarial terms from the start, a third of the
        cfg.adv_start = 0  # step size (at 3e-4 a fresh Adam state undid the clean model within 1,000 steps)
        cfg.lr = 1e-4
    trainer = Trainer(args.run, args.corpus, cfg)
    print(f"train frames: {trainer.train.frames} ({trainer.train.frames * 128 / 16000 / 3600:.2f} h), "
          f"dev frames: {trainer.dev.frames}", flush=True)
    trainer.run_stage(args.stage, args.steps, args.minutes)
