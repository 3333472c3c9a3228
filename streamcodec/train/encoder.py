"""Training recipe for the search's starting point (issue 14): a copy of E fine-tuned so that its
quantised latent already decodes well through the generator the search goes through. Resumable:

    streamcodec train encoder --run runs/encoder --minutes 60
    streamcodec train export --kind encoder --run runs/encoder --out models/speech-2k

E was trained with G on an L1 loss (stages 1 and 2 of train/speech.py); the codec then searches
from E's quantised latent through the receiver's generator (train/decoder.py) with a
loudness-weighted loss. Here E learns that very loss with the latent quantised (straight-through):
field crops as the codec sees them (train/decoder.py's LEVELS: half clean, a level change within
the codec's dead zone), passed through the model's enhancer, each frame through the generator and
loudness weight the codec's search would use for it (speech/codec.py's `enhance` and
`search_ways`). It only changes where the encoder's search starts, so packets decode on every
receiver of the model: it ships as encoder.safetensors beside the model and the id stays.
A soup (runs of other seeds, `--seed`, averaged at export, `--average`) gained nothing measurable
(benchmarks/results/encoder_soup.md), so one run ships.

The amortised search (`--amortise FRAMES`) is a second round on top: the shipped copy, regressed
(mean squared error on the latent) toward the quantised latents a longer search (`--amortise-iters`,
32) ends at from it, on that many field crops coded first, in shards a stopped run continues from
(train/decoder.py's build_shards). The search then starts nearer where it would go, which counts
most when a deadline cuts it short:

    streamcodec train encoder --run runs/amortised --amortise 4608 --steps 1600

Targets from 64-iteration searches, and a second round on top, tied with it (model card).
"""

import functools
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from streamcodec.dsp.params import BLOCK_FRAMES
from streamcodec.nets.assets import read_assets, read_part
from streamcodec.nets.speech import SpeechNetConfig, build
from streamcodec.speech.codec import enhance, search_ways
from streamcodec.speech.model import load_model
from streamcodec.train.augment import FieldAugmenter
from streamcodec.threads import count as thread_count
from streamcodec.train.decoder import LEVELS, build_shards, field_crops, read_shards, search_indices, shards
from streamcodec.train.loop import StagedTrainer, ste_quantize
from streamcodec.train.noise import load_bank
from streamcodec.train.speech import CropSampler

DEV_SEED = 1  # development crops, the same for runs of every seed (those of seed 0's before --seed)


@dataclass
class EncoderTrainConfig:
    model: str = "speech-2k"  # the model whose E is copied, with its enhancer and generators
    seed: int = 0  # the training crops and their augmentation; the development crops are the same for every seed
    batch: int = 16
    lr: float = 2e-5  # small: a larger step lets the straight-through latent drift off its levels
    amortise_frames: int = 0  # 0: learn the search's first score; N: regress toward longer searches' ends on N frames
    amortise_iters: int = 32  # the length of those searches
    dev_frames: int = 128
    checkpoint_seconds: float = 300.0

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderTrainConfig":
        return cls(**d)


class EncoderTrainer(StagedTrainer):
    def __init__(self, run: Path, corpus: Path, cfg: EncoderTrainConfig | None = None,
                 noise: Path | None = None) -> None:
        super().__init__(run, cfg or EncoderTrainConfig(), EncoderTrainConfig.from_dict)
        cfg = self.cfg
        assets = read_assets(cfg.model)
        self.net_cfg = SpeechNetConfig(**assets.config["net"])
        self.model = load_model(cfg.model)
        self.E = assets.load_into("encoder", build(self.net_cfg)[0]).train()
        shipped = read_part(cfg.model, "encoder")
        if cfg.amortise_frames and shipped is not None:  # the amortised search: a round on top of the shipped copy
            shipped.load_into(self.E)
        G = assets.load_into("generator", build(self.net_cfg)[1])
        part = read_part(cfg.model, "decoder")
        receiver = G if part is None else part.load_into(build(self.net_cfg)[1])
        # torch copies of the generators the codec's search goes through, in search_ways' order
        self.ways = [(net.requires_grad_(False), w) for net, (_, w) in zip((receiver, G), search_ways(self.model))]
        self.level_values = torch.from_numpy(self.model.levels)
        self.opt = torch.optim.AdamW(self.E.parameters(), cfg.lr, betas=(0.8, 0.99))
        bank = load_bank("train", noise)
        self.train = CropSampler(corpus, "train", BLOCK_FRAMES, cfg.seed)
        self.field = FieldAugmenter(bank, self.train.crops, self.model.level_target_db, cfg.seed, LEVELS)
        dev = CropSampler(corpus, "dev", BLOCK_FRAMES, DEV_SEED)
        self.dev = self.inputs(FieldAugmenter(bank, dev.crops, self.model.level_target_db, DEV_SEED + 1, LEVELS),
                               dev.crops(cfg.dev_frames))
        self.corpus, self.noise = Path(corpus), noise
        self.pairs_dir = self.run / "pairs"
        self.rng = np.random.default_rng(cfg.seed)
        self.resume()

    def modules(self) -> dict:
        return {"E": self.E}

    def optimizers(self) -> dict:
        return {"opt": self.opt}

    def inputs(self, field: FieldAugmenter, clean: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Clean crops -> (what the search aims at, (n, mels, frames); each frame's way)."""
        x = np.ascontiguousarray(field.field_pair(clean)[0].transpose(0, 2, 1), np.float32)
        target, noisy = enhance(self.model, x, self.model.enhancer is not None)
        return torch.from_numpy(np.ascontiguousarray(target, np.float32)), noisy.astype(int)

    def search_loss(self, x: torch.Tensor, route: np.ndarray) -> torch.Tensor:
        """The codec's search loss (core/search.py's loudness_weighted_mse, each frame through its
        own generator) of E's quantised latent: the search's first score."""
        z = ste_quantize(self.E(x), self.level_values)
        total = x.new_zeros(())
        for k, (net, weight) in enumerate(self.ways):
            items = torch.from_numpy(np.flatnonzero(route == k))
            if len(items):
                target = x[items]
                total = total + (torch.exp(weight * target) * (net(z[items]) - target) ** 2).mean(dim=(1, 2)).sum()
        return total / len(x)

    def build_pairs(self, workers: int | None = None) -> None:
        """The amortised search's frames: a development shard and the training shards."""
        cfg = self.cfg
        jobs = [("dev", "dev", cfg.dev_frames, LEVELS)] + shards("train", cfg.amortise_frames, LEVELS)
        make = functools.partial(searched_frames, iters=cfg.amortise_iters, workers=workers or thread_count())
        build_shards(self.pairs_dir, jobs, self.corpus, self.noise, cfg.model, cfg.seed, make, self.log)

    @cached_property
    def train_pairs(self) -> dict[str, np.ndarray]:
        return read_shards(self.pairs_dir, ["train"])

    @cached_property
    def dev_pairs(self) -> dict[str, np.ndarray]:
        return dict(np.load(self.pairs_dir / "dev.npz"))

    def regression_loss(self, x: np.ndarray, indices: np.ndarray) -> torch.Tensor:
        """Mean squared distance of E's latent to the levels a longer search ended at."""
        return torch.mean((self.E(torch.from_numpy(x.astype(np.float32))) - self.level_values[indices.astype(np.int64)]) ** 2)

    def step(self, stage: int) -> dict:
        if self.cfg.amortise_frames:
            pick = self.rng.integers(len(self.train_pairs["x"]), size=self.cfg.batch)
            loss = self.regression_loss(self.train_pairs["x"][pick], self.train_pairs["indices"][pick])
        else:
            loss = self.search_loss(*self.inputs(self.field, self.train.crops(self.cfg.batch)))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.E.parameters(), 5.0)
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """The search's first score on the development crops (at step 0: the shipped E's) and, for
        the amortised search, the distance to where the longer search ended."""
        self.E.eval()
        out = {"dev_loss": self.search_loss(*self.dev).item()}
        if self.cfg.amortise_frames:
            out["dev_mse"] = self.regression_loss(self.dev_pairs["x"], self.dev_pairs["indices"]).item()
        self.E.train()
        return out

    def export(self, out: Path, average: list["EncoderTrainer"] = ()) -> Path:
        """encoder.safetensors (float16) and encoder.json beside the model it serves; with
        `average`, the mean of this run's weights and theirs (runs of other seeds)."""
        return self.export_part("encoder", out, average)


def searched_frames(model, sampler: CropSampler, augmenter: FieldAugmenter, n: int, iters: int,
                    workers: int) -> dict[str, np.ndarray]:
    """n field crops as E sees them (the enhancer's estimate, float16 (mels, BLOCK_FRAMES)) and
    the level indices the encoder's search of `iters` iterations ends at for them."""
    x, _ = field_crops(sampler, augmenter, n)
    seen = enhance(model, x, model.enhancer is not None)[0]
    return {"x": seen.astype(np.float16), "indices": search_indices(model, x, iters, workers)}


def export(run: Path, out: Path, corpus: Path, average: list[Path] = (), noise: Path | None = None) -> Path:
    return EncoderTrainer(run, corpus, noise=noise).export(out, [EncoderTrainer(r, corpus, noise=noise) for r in average])


def main(args) -> None:
    amortise = dict(lr=5e-5, amortise_frames=args.amortise, amortise_iters=args.amortise_iters) if args.amortise else {}
    trainer = EncoderTrainer(args.run, args.corpus, EncoderTrainConfig(model=args.model, seed=args.seed, **amortise),
                             noise=args.noise)
    if trainer.cfg.amortise_frames:
        trainer.build_pairs()
    trainer.run_stage(1, args.steps, args.minutes)
