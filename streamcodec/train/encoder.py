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
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamcodec.dsp.params import BLOCK_FRAMES
from streamcodec.nets.assets import read_assets, read_part
from streamcodec.nets.speech import SpeechNetConfig, build
from streamcodec.speech.codec import enhance, search_ways
from streamcodec.speech.model import load_model
from streamcodec.train.augment import FieldAugmenter
from streamcodec.train.decoder import LEVELS
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

    def step(self, stage: int) -> dict:
        loss = self.search_loss(*self.inputs(self.field, self.train.crops(self.cfg.batch)))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.E.parameters(), 5.0)
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """The search's first score on the development crops (at step 0: the shipped E's)."""
        self.E.eval()
        out = {"dev_loss": self.search_loss(*self.dev).item()}
        self.E.train()
        return out

    def export(self, out: Path, average: list["EncoderTrainer"] = ()) -> Path:
        """encoder.safetensors (float16) and encoder.json beside the model it serves; with
        `average`, the mean of this run's weights and theirs (runs of other seeds)."""
        return self.export_part("encoder", out, average)


def export(run: Path, out: Path, corpus: Path, average: list[Path] = ()) -> Path:
    return EncoderTrainer(run, corpus).export(out, [EncoderTrainer(r, corpus) for r in average])


def main(args) -> None:
    trainer = EncoderTrainer(args.run, args.corpus, EncoderTrainConfig(model=args.model, seed=args.seed))
    trainer.run_stage(1, args.steps, args.minutes)
