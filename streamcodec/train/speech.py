"""Training recipe for the speech model, in BPGAN's two stages. Resumable: run the same command
again and it continues from the run folder's checkpoint.

    streamcodec train speech --run runs/speech --stage 1 --minutes 120   # E and G, then adversarial
    streamcodec train speech --run runs/speech --stage 2 --minutes 30    # k-means levels, quantised G
    streamcodec train export --run runs/speech --out models/speech-2k    # weights, levels, Huffman

Stage 1 trains E and G on log-mel reconstruction (L1), with Gaussian noise on the latent so that G
tolerates quantisation, and after `adv_start` steps adds a least-squares adversarial loss and
feature matching against D. Stage 2 freezes E, fits the k-means levels on E's latents and
fine-tunes G on quantised latents (straight-through); the Huffman code comes from the histogram
of the quantised training latents.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamcodec.core.quantizer import fit_levels
from streamcodec.dsp.level import apply_gain, gain_for, measure_level
from streamcodec.nets.assets import read_assets
from streamcodec.nets.speech import Discriminator, SpeechNetConfig, build
from streamcodec.train.augment import FieldAugmenter
from streamcodec.train.loop import StagedTrainer, ste_quantize
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
        self.resume()

    def _start_field(self, run: Path, noise: Path | None) -> None:
        """Level normalisation, augmentation, the field dev batch, and the starting weights."""
        cfg = self.cfg
        if cfg.level_target_db is None:  # the corpus's typical block level, fixed at the first start
            cfg.level_target_db = round(float(np.median(measure_level(self.train.crops(2000)))), 2)
            (run / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
        bank = load_bank("train", noise)
        self.field = FieldAugmenter(bank, self.train.crops, cfg.level_target_db, cfg.seed)
        clean = self.dev_batch.transpose(1, 2).numpy()
        gain = gain_for(measure_level(clean), cfg.level_target_db)
        self.dev_batch = mels_first(apply_gain(clean, gain))
        field_in, field_target = FieldAugmenter(bank, self.dev.crops, cfg.level_target_db,
                                                cfg.seed + 2).field_pair(clean)
        self.dev_field = (mels_first(field_in), mels_first(field_target))
        if cfg.init_from and not (run / "checkpoint.safetensors").exists():
            assets = read_assets(cfg.init_from)
            assets.load_into("encoder", self.E)
            assets.load_into("generator", self.G)

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

    def step(self, stage: int) -> dict:
        x, target = self.sample(self.cfg.batch)
        z, z_in = self.encode(x, stage)
        y = self.G(z_in)
        return self.update(stage, target, y, z, F.l1_loss(y, target))


def mels_first(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1)))


def export(run: Path, out: Path, corpus: Path) -> Path:
    trainer = Trainer(run, corpus)
    extra = {} if trainer.cfg.level_target_db is None else {"level_target_db": trainer.cfg.level_target_db}
    return trainer.export(out, **extra)


def main(args) -> None:
    cfg = TrainConfig(net=SpeechNetConfig(arch=args.arch), augment=args.field, init_from=args.init_from or "")
    if args.field:  # a fine-tune of a trained model: adversarial terms from the start, a third of the
        cfg.adv_start = 0  # step size (at 3e-4 a fresh Adam state undid the clean model within 1,000 steps)
        cfg.lr = 1e-4
    trainer = Trainer(args.run, args.corpus, cfg)
    print(f"train frames: {trainer.train.frames} ({trainer.train.frames * 128 / 16000 / 3600:.2f} h), "
          f"dev frames: {trainer.dev.frames}", flush=True)
    trainer.run_stage(args.stage, args.steps, args.minutes)
