"""Training recipe for the receiver's large decoder (issue 32): the receiver's generator with
more residual blocks per stage, which also reads the end of the frame before, trained on what a
receiver gets from today's encoder. Resumable like the other recipes:

    streamcodec train receiver --run runs/receiver --sequences 3000 --minutes 60
    streamcodec train export --kind receiver --run runs/receiver --out models/speech-2k

A receiver runs its generator once per frame, without the search, so it can pay for a larger one
than the encoder searches through. The encoder does not change (it still searches through the
model's `decoder`), so neither do the packets or the model id; the large decoder is an extra part
(receiver.safetensors) that receivers use where it is present and drop under load.

It starts as the shipped receiver's generator (nets/speech.deepen: the new blocks begin as the
identity), and its input is the frame's latent with the last `context` latent steps of the frame
before in front (level indices the receiver has already: no delay). A frame after a lost or
silent one, or the first of a stream, gets unsent steps (the fill level) there instead; training
gives a tenth of the frames that, besides each sequence's first.

The pairs are sequences of consecutive frames: clean crops of several frames, degraded as one
(noise runs on across frames) by train/augment.py, each frame then levelled and coded on its own
as the encoder does (train/decoder.py's search), in shards a stopped run continues from.
"""

import functools
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamcodec.core.search import LOUDNESS_WEIGHT
from streamcodec.defaults import SPEECH_ITERS
from streamcodec.dsp.params import BLOCK_FRAMES, N_MELS
from streamcodec.nets.assets import read_assets, read_part
from streamcodec.nets.speech import Discriminator, Generator1d, deepen
from streamcodec.nets.speech_config import ReceiverConfig, SpeechNetConfig
from streamcodec.speech.model import fill_level, load_model
from streamcodec.threads import count as thread_count
from streamcodec.train.decoder import LEVELS, SHARD, build_shards, read_shards, search_indices
from streamcodec.train.loop import StagedTrainer, l1_step, lsgan_losses, weighted_l1
from streamcodec.train.speech import TrainConfig, mels_first


@dataclass
class ReceiverTrainConfig:
    model: str = "speech-2k"  # the model it serves: its encoder makes the pairs, its receiver's generator is the start
    seed: int = 0
    sequences: int = 3000  # training sequences of `sequence_frames` consecutive frames
    sequence_frames: int = 4
    dev_sequences: int = 64
    dilations: tuple[int, ...] = ReceiverConfig.dilations
    context: int = ReceiverConfig.context
    p_no_context: float = 0.1  # training frames whose frame before counts as lost
    search_iters: int = SPEECH_ITERS
    batch: int = 16
    lr: float = 1e-4
    checkpoint_seconds: float = 300.0
    p_clean: float = LEVELS.p_clean  # share of pairs coded from clean speech (the rest degraded as train/augment.py does)
    pairs: str = ""  # folder of coded pairs ("": the run's own pairs/); arms of an A/B may share one
    # G's adversarial and feature-matching terms (train/speech.py's weights) times this (0: L1
    # alone), against a discriminator trained from scratch that gets `adv_warmup` steps alone first
    adversarial: float = 0.0
    loudness: float = 0.0  # L1 weighted by exp(loudness * target) as the search weights its loss (0: plain)
    adv_warmup: int = 200

    @classmethod
    def from_dict(cls, d: dict) -> "ReceiverTrainConfig":
        return cls(**{**d, "dilations": tuple(d["dilations"])})

    @property
    def receiver(self) -> ReceiverConfig:
        return ReceiverConfig(self.dilations, self.context)


def make_sequences(model, sampler, augmenter, n: int, frames: int, iters: int, workers: int) -> dict[str, np.ndarray]:
    """n sequences of `frames` consecutive frames: the level indices the encoder sends for each
    frame, uint8 (n, frames, channels, steps), and each clean frame, float16 (n, frames, BLOCK_FRAMES, mels)."""
    field_, clean = augmenter.field_pair(sampler.crops(n, frames * BLOCK_FRAMES), piece=BLOCK_FRAMES)
    x = np.ascontiguousarray(field_.transpose(0, 2, 1), np.float32)
    indices = search_indices(model, x, iters, workers)
    return {"indices": indices.reshape(n, frames, *indices.shape[1:]),
            "target": clean.reshape(n, frames, BLOCK_FRAMES, N_MELS).astype(np.float16)}


class Framed(nn.Module):
    """The large decoder as trained: latent with `context` steps of the frame before in front ->
    the frame's own log-mel (the output for the context is cut off)."""

    def __init__(self, net: Generator1d, context: int, stride: int) -> None:
        super().__init__()
        self.net, self.cut = net, context * stride

    def forward(self, z):
        return self.net(z)[..., self.cut :]


class ReceiverTrainer(StagedTrainer):
    def __init__(self, run: Path, corpus: Path, cfg: ReceiverTrainConfig | None = None,
                 noise: Path | None = None) -> None:
        super().__init__(run, cfg or ReceiverTrainConfig(), ReceiverTrainConfig.from_dict)
        cfg = self.cfg
        assets = read_assets(cfg.model)
        self.net_cfg = SpeechNetConfig(**assets.config["net"])
        start = Generator1d(self.net_cfg)  # the shipped receiver's generator, else G
        part = read_part(cfg.model, "decoder")
        part.load_into(start) if part is not None else assets.load_into("generator", start)
        self.G = deepen(start, Generator1d(self.net_cfg, cfg.dilations))
        self.G.train()
        self.framed = Framed(self.G, cfg.context, self.net_cfg.time_stride)
        self.small = start.eval()  # what receivers decode with today: the development baseline
        self.levels = torch.from_numpy(assets.quantiser()[0])
        self.fill = fill_level(load_model(cfg.model))
        self.opt = torch.optim.AdamW(self.G.parameters(), cfg.lr, betas=(0.8, 0.99))
        self.D = Discriminator() if cfg.adversarial else None
        self.opt_d = torch.optim.AdamW(self.D.parameters(), cfg.lr, betas=(0.8, 0.99)) if self.D else None
        self.corpus, self.noise = Path(corpus), noise
        self.pairs_dir = Path(cfg.pairs) if cfg.pairs else self.run / "pairs"
        self.rng = np.random.default_rng(cfg.seed)
        self.resume()

    def modules(self) -> dict:
        return {"G": self.G, **({"D": self.D} if self.D else {})}

    def optimizers(self) -> dict:
        return {"opt": self.opt, **({"d": self.opt_d} if self.D else {})}

    def save(self) -> None:
        levels, self.levels = self.levels, None  # the model's own levels, not a training result
        super().save()
        self.levels = levels

    def jobs(self) -> list[tuple]:
        """(file name, split, sequences, augmentation) of every shard."""
        cfg = self.cfg
        per = SHARD // cfg.sequence_frames
        augment = replace(LEVELS, p_clean=cfg.p_clean)
        jobs = [("dev-seq", "dev", cfg.dev_sequences, augment)]
        jobs += [(f"seq-{i:04d}", "train", min(per, cfg.sequences - i * per), augment)
                 for i in range(-(-cfg.sequences // per))]
        return jobs + [("dev-clean", "dev", cfg.dev_sequences, replace(LEVELS, p_clean=1.0))]  # last: the others keep their seeds

    def build_pairs(self, workers: int | None = None) -> None:
        cfg = self.cfg
        make = functools.partial(make_sequences, frames=cfg.sequence_frames, iters=cfg.search_iters,
                                 workers=workers or thread_count())
        build_shards(self.pairs_dir, self.jobs(), self.corpus, self.noise, cfg.model, cfg.seed, make, self.log,
                     crop=cfg.sequence_frames * BLOCK_FRAMES)

    @cached_property
    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        pairs = read_shards(self.pairs_dir, ["seq"])
        return pairs["indices"][: self.cfg.sequences], pairs["target"][: self.cfg.sequences]

    @cached_property
    def dev_pairs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The development sequences by measure prefix: "dev" coded as the training pairs are,
        "dev_clean" from clean speech (its weighted L1 orders decoders nearly as PESQ-WB on real
        packets does: docs/training.md)."""
        files = {"dev": "dev-seq.npz", "dev_clean": "dev-clean.npz"}
        return {k: (d["indices"], d["target"]) for k, f in files.items() for d in [np.load(self.pairs_dir / f)]}

    def _inputs(self, indices: np.ndarray, pos: np.ndarray, before: np.ndarray) -> torch.Tensor:
        """Latents of frames `pos` of sequences `indices` (n, frames, channels, steps), with the
        end of the frame before in front where `before` says so, else the fill level."""
        cur = indices[np.arange(len(pos)), pos].astype(np.int64)
        c = self.cfg.context
        ctx = np.full((*cur.shape[:2], c), self.fill, np.int64)
        if c:
            prev = indices[np.arange(len(pos)), np.maximum(pos - 1, 0)][..., -c:]
            ctx[before] = prev[before]
        return self.levels[torch.from_numpy(np.concatenate([ctx, cur], axis=2))]

    def step(self, stage: int) -> dict:
        indices, target = self.train_pairs
        cfg = self.cfg
        pick = self.rng.integers(len(indices), size=cfg.batch)
        pos = self.rng.integers(cfg.sequence_frames, size=cfg.batch)
        before = (pos > 0) & (self.rng.random(cfg.batch) >= cfg.p_no_context)
        z = self._inputs(indices[pick], pos, before)
        x = mels_first(target[pick, pos].astype(np.float32))
        if not self.D:
            return l1_step(self.framed, self.opt, z, x, cfg.loudness)
        y = self.framed(z)
        rec = weighted_l1(y, x, cfg.loudness)
        (adv, fm), logs = lsgan_losses(self.D, x, y, self.opt_d)
        loss = rec
        if self.state["stage_steps"]["1"] >= cfg.adv_warmup:
            loss = loss + cfg.adversarial * (TrainConfig.lambda_adv * adv + TrainConfig.lambda_fm * fm)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.G.parameters(), 5.0)
        self.opt.step()
        return {"rec": rec.item(), **logs}

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """L1 and loudness-weighted L1 on log-mel against the clean development speech, on each
        development set (dev_pairs): the large decoder with the frame before as a receiver has it
        (none for each sequence's first), the same with no frame before (_alone), and the small one
        (_small, what receivers decode with today)."""
        out = {}
        self.G.eval()
        for key, (indices, target) in self.dev_pairs.items():
            n, k = indices.shape[:2]
            seq, pos = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
            y = mels_first(target[seq, pos].astype(np.float32))
            runs = {"": self.framed(self._inputs(indices[seq], pos, pos > 0)),
                    "_alone": self.framed(self._inputs(indices[seq], pos, np.zeros(len(pos), bool))),
                    "_small": self.small(self.levels[torch.from_numpy(indices[seq, pos].astype(np.int64))])}
            for suffix, y_hat in runs.items():
                out[f"{key}_l1{suffix}"] = F.l1_loss(y_hat, y).item()
                out[f"{key}_l1_loud{suffix}"] = weighted_l1(y_hat, y, LOUDNESS_WEIGHT).item()
        self.G.train()
        return out

    def part_config(self) -> dict:
        return {**super().part_config(), "receiver": self.cfg.receiver.to_dict()}

    def export(self, out: Path) -> Path:
        """receiver.safetensors (float16) and receiver.json beside the model it serves, with the
        development measures of what is exported (their pairs coded first where a pairs folder
        from before the clean development set lacks them)."""
        self.build_pairs()
        return self.export_part("receiver", out)


def export(run: Path, out: Path, corpus: Path, noise: Path | None = None) -> Path:
    return ReceiverTrainer(run, corpus, noise=noise).export(out)


def main(args) -> None:
    cfg = ReceiverTrainConfig(model=args.model, sequences=args.sequences, sequence_frames=args.sequence_frames,
                              dilations=tuple(args.dilations),
                              context=args.context, pairs=str(args.pairs or ""), adversarial=args.adversarial,
                              loudness=args.loudness, lr=args.lr, p_clean=args.clean)
    trainer = ReceiverTrainer(args.run, args.corpus, cfg, noise=args.noise)
    trainer.build_pairs()
    cfg = trainer.cfg
    print(f"training sequences: {cfg.sequences} of {cfg.sequence_frames} frames; {cfg.receiver}", flush=True)
    trainer.run_stage(1, args.steps, args.minutes)
