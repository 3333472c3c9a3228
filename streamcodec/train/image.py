"""Training recipe for the image model, in the same two resumable stages as speech
(streamcodec/train/loop.py):

    streamcodec train photos                                           # photo set, once
    streamcodec train image --run runs/image --stage 1 --minutes 60    # E and G, then adversarial
    streamcodec train image --run runs/image --stage 2 --minutes 15    # 64 k-means levels, quantised G
    streamcodec train export --kind image --run runs/image --out models/image-photo

Stage 1 trains E and G on (1 - MS-SSIM) + alpha * MSE of random crops, with uniform noise on the
latent (G learns to tolerate quantisation) and nested channel dropout: each crop keeps only its
first k latent channels (G sees zeros for the rest), so channels come out ordered by importance and
the codec controls the rate by how many it sends. After `adv_start` steps a small least-squares
adversarial and feature-matching loss joins in. Stage 2 freezes E, fits 64 levels by
entropy-constrained k-means (their error matches the stage-1 noise; core/quantizer.py) and
fine-tunes G on quantised latents (straight-through).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from streamcodec.core.losses import ms_ssim, msssim_mse
from streamcodec.core.quantizer import fit_levels_entropy
from streamcodec.nets.image import Discriminator, ImageNetConfig, build
from streamcodec.train.loop import StagedTrainer, ste_quantize
from streamcodec.train.photos import PhotoCrops, load_split


@dataclass
class TrainConfig:
    net: ImageNetConfig = field(default_factory=ImageNetConfig)
    seed: int = 0
    batch: int = 8
    crop: int = 192
    dev_crop: int = 256  # one central crop of each development photo
    lr: float = 4e-4
    alpha: float = 30.0  # weight of MSE against (1 - MS-SSIM), in training and in the codec's search
    latent_noise: float = 0.5  # half-width of the uniform noise added to the latent in stage 1
    latent_l2: float = 1e-3
    min_channels: int = 4  # nested dropout keeps k in [min_channels, all] ...
    full_channels_p: float = 0.25  # ... or all channels with this probability
    adv_start: int = 22_000
    lambda_adv: float = 0.003
    lambda_fm: float = 0.03
    n_levels: int = 64
    level_crops: int = 256
    checkpoint_seconds: float = 300.0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["net"] = ImageNetConfig.from_dict(d["net"])
        return cls(**d)


def channel_mask(n: int, channels: int, min_channels: int, full_p: float, gen: torch.Generator) -> torch.Tensor:
    """(n, channels, 1, 1) mask keeping the first k channels of each item (nested dropout)."""
    k = torch.randint(min_channels, channels + 1, (n, 1), generator=gen)
    k = torch.where(torch.rand(n, 1, generator=gen) < full_p, torch.full_like(k, channels), k)
    return (torch.arange(channels)[None, :] < k).float().view(n, channels, 1, 1)


class Trainer(StagedTrainer):
    def __init__(self, run: Path, photos: Path | None = None, cfg: TrainConfig | None = None) -> None:
        super().__init__(run, cfg or TrainConfig(), TrainConfig.from_dict)
        cfg = self.cfg
        self.E, self.G = build(cfg.net)
        self.D = Discriminator()
        self.opt_g = torch.optim.Adam(list(self.E.parameters()) + list(self.G.parameters()), cfg.lr)
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.lr, betas=(0.5, 0.99))
        self.train = PhotoCrops(load_split("train", photos), cfg.crop, cfg.seed)
        self.dev_batch = PhotoCrops(load_split("dev", photos), cfg.dev_crop, cfg.seed + 1).centre_crops()
        self.loss = msssim_mse(cfg.alpha)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.resume()

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """PSNR and MS-SSIM of the development crops with every channel (and quantised, in stage 2)."""
        self.E.eval()
        self.G.eval()
        x = self.dev_batch
        z = self.E(x)
        variants = {"": z} if self.levels is None else {"": z, "_quantised": ste_quantize(z, self.levels)}
        out = {}
        for suffix, zz in variants.items():
            y = self.G(zz).clamp(0, 1)
            mse = (y - x).pow(2).flatten(1).mean(1)
            out["dev_psnr" + suffix] = (10 * torch.log10(1 / mse)).mean().item()
            out["dev_msssim" + suffix] = ms_ssim(x, y).mean().item()
        self.E.train()
        self.G.train()
        return out

    def training_latents(self):
        for _ in range(max(1, self.cfg.level_crops // 16)):
            yield self.E(self.train.batch(16))

    def fit_levels(self, z: np.ndarray) -> np.ndarray:
        """Entropy-constrained levels whose error matches the stage-1 noise (uniform: width^2 / 12),
        which G was trained to tolerate."""
        return fit_levels_entropy(z, self.cfg.n_levels, (2 * self.cfg.latent_noise) ** 2 / 12, seed=self.cfg.seed)

    def latent_noise(self, z: torch.Tensor) -> torch.Tensor:
        return self.cfg.latent_noise * (2 * torch.rand_like(z) - 1)

    def step(self, stage: int) -> dict:
        cfg = self.cfg
        x = self.train.batch(cfg.batch)
        z, z_in = self.encode(x, stage)
        mask = channel_mask(len(x), cfg.net.latent_channels, cfg.min_channels, cfg.full_channels_p, self.gen)
        y = self.G(z_in * mask)
        return self.update(stage, x, y, z, self.loss(x, y).mean())


def export(run: Path, out: Path, photos: Path | None = None) -> Path:
    trainer = Trainer(run, photos)
    return trainer.export(out, alpha=trainer.cfg.alpha)


def main(args) -> None:
    trainer = Trainer(args.run, args.photos)
    print(f"training photos: {len(trainer.train.photos)}, development crops: {len(trainer.dev_batch)}", flush=True)
    trainer.run_stage(args.stage, args.steps, args.minutes)
