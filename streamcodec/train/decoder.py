"""Training recipe for the receiver's generator (issue 14): a copy of G fine-tuned on what a
receiver really gets, the level indices the codec's own search sends, with the clean speech as
its target. Resumable like the other recipes:

    streamcodec train decoder --run runs/decoder --frames 8000 --minutes 60
    streamcodec train export --kind decoder --run runs/decoder --out models/speech-2k

G was trained on E's quantised latents (stage 2), but the search moves about 60 % of them, and a
noisy frame's indices come from the enhancer's estimate, not from clean speech. Once it ships, the
encoder searches through it too (its packets are made for it, so the model id changes: see
speech/model.py's encoder_id), and a next round (`--start decoder`) fine-tunes it on the packets
searched through it. (Training G itself on searched latents, stage 3 of train/speech.py, moved G
away from where the search starts and lost.)

The pairs are made first, in shards a stopped run continues from: clean 128-frame crops of the
training split, degraded and level-normalised by train/augment.py (half are left clean but for
a level change within the codec's dead zone), coded by the encoder's own search
(speech/codec.py's `search_latents`: the model's enhancer, E, 16 ADMM iterations, each frame
within the 2 kbit/s budget). Then G's copy learns them with an L1 loss on log-mel.
"""

import concurrent.futures
import functools
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamcodec.bitstream.speech import RECORD_BYTES
from streamcodec.core.search import LOUDNESS_WEIGHT, RateLimit
from streamcodec.defaults import SPEECH_ITERS, SPEECH_KBPS
from streamcodec.dsp.level import DEADZONE_DB
from streamcodec.dsp.params import BLOCK_FRAMES, BLOCK_SAMPLES
from streamcodec.errors import StreamcodecError
from streamcodec.nets.assets import read_assets, read_part
from streamcodec.nets.speech import SpeechNetConfig, build
from streamcodec.speech.codec import BitBank, fill_level, payload_budget, search_latents
from streamcodec.speech.model import load_model
from streamcodec.threads import count as thread_count
from streamcodec.train.augment import AugmentConfig, FieldAugmenter
from streamcodec.train.loop import StagedTrainer, l1_step, weighted_l1
from streamcodec.train.noise import load_bank
from streamcodec.train.speech import CropSampler, mels_first

SHARD = 256  # frames per file of pairs
# Levels as the networks see them in the codec: the encoder analyses with headroom below the
# log-mel floor and brings frames more than DEADZONE_DB off to the model's level, so quiet speech
# keeps its detail (train/augment.py's default, down to -40 dB, crushes it under the floor).
LEVELS = AugmentConfig(level_db=(-DEADZONE_DB, DEADZONE_DB))
# Babble-only pairs (other talkers 0..20 dB below the speech): babble is the noise the enhancer
# takes out least (it is speech too), so the receiver gets most of it in the indices.
BABBLE = AugmentConfig(level_db=LEVELS.level_db, p_clean=0.0, p_noise=1.0, snr_db=(0.0, 20.0), p_babble=1.0)
# Hard pairs: every frame degraded, most by loud noise (0..10 dB SNR) and half by reverberation,
# where the receiver sees its furthest packets from clean speech.
HARD = AugmentConfig(level_db=LEVELS.level_db, p_clean=0.0, p_noise=0.8, snr_db=(0.0, 10.0), p_reverb=0.5)
BATCH_CODED = 16  # frames one worker searches at once


@dataclass
class DecoderTrainConfig:
    model: str = "speech-2k"  # the model whose G is copied and whose encoder makes the pairs
    seed: int = 0
    frames: int = 8000  # training pairs
    babble_frames: int = 0  # babble-only training pairs beside them
    hard_frames: int = 0  # hard (loud noise, reverberation) training pairs beside them
    loudness: float = 0.0  # loss weight exp(loudness * target): 0 plain L1, 3 the search's weighting
    start: str = "generator"  # what is fine-tuned: G, or "decoder", the receiver's generator the model ships
    dev_frames: int = 256
    search_iters: int = SPEECH_ITERS
    batch: int = 16
    lr: float = 1e-4
    checkpoint_seconds: float = 300.0

    @classmethod
    def from_dict(cls, d: dict) -> "DecoderTrainConfig":
        return cls(**d)


def frame_limit(model, n: int) -> RateLimit:
    """Whole frames at the default rate, each within its share of the bits on the wire."""
    payload = payload_budget(BitBank(SPEECH_KBPS).share(BLOCK_SAMPLES), False, RECORD_BYTES)
    return RateLimit(model.code.lengths.astype(np.int64), np.full(n, payload, np.float64), None, fill_level(model))


def search_indices(model, x: np.ndarray, iters: int, workers: int) -> np.ndarray:
    """The encoder's own search (enhancer, E, `iters` ADMM iterations, each frame within the
    default rate) of level-normalised field log-mel (n, mels, BLOCK_FRAMES) -> level indices uint8
    (n, channels, steps), BATCH_CODED frames per job on `workers` threads."""
    parts = np.array_split(np.arange(len(x)), max(1, len(x) // BATCH_CODED))
    denoise = model.enhancer is not None  # loaded once, before the threads ask for it

    def code(part: np.ndarray) -> np.ndarray:
        return search_latents(model, x[part], frame_limit(model, len(part)), iters, denoise).indices

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(code, parts))).astype(np.uint8)


def field_crops(sampler: CropSampler, augmenter: FieldAugmenter, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n crops as the codec's search sees them (n, mels, BLOCK_FRAMES), and the clean ones."""
    field, clean = augmenter.field_pair(sampler.crops(n, BLOCK_FRAMES))
    return np.ascontiguousarray(field.transpose(0, 2, 1), np.float32), clean


def make_pairs(model, sampler: CropSampler, augmenter: FieldAugmenter, n: int, iters: int,
               workers: int) -> dict[str, np.ndarray]:
    """n pairs: indices uint8 (channels, steps) the codec sends, clean target float16 (BLOCK_FRAMES, mels)."""
    x, clean = field_crops(sampler, augmenter, n)
    return {"indices": search_indices(model, x, iters, workers), "target": clean.astype(np.float16)}


def build_shards(pairs_dir: Path, jobs: list[tuple], corpus: Path, noise: Path | None, model: str, seed: int,
                 make, log, crop: int = BLOCK_FRAMES) -> None:
    """Write each job's (file name, split, frames, augmentation) arrays, `make(model, sampler,
    augmenter, frames)`, to pairs_dir/<name>.npz, skipping those written (a stopped build
    continues; each shard has its own seed, so the pairs do not depend on where a build stopped);
    each shard's time goes to `log`. The sampler draws crops of up to `crop` frames."""
    pairs_dir.mkdir(parents=True, exist_ok=True)
    m = load_model(model)
    bank = load_bank("train", noise)
    for k, (name, split, n, augment) in enumerate(jobs):
        path = pairs_dir / f"{name}.npz"
        if path.exists():
            continue
        start = time.time()
        sampler = CropSampler(corpus, split, crop, seed + 100 + k)
        augmenter = FieldAugmenter(bank, sampler.crops, m.level_target_db, seed + 100 + k, augment)
        arrays = make(m, sampler, augmenter, n)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.rename(path)
        log({"pairs": name, "frames": n, "seconds": round(time.time() - start, 1)})
        print(f"pairs: {name} ({n} frames)", flush=True)


def read_shards(pairs_dir: Path, prefixes: list[str]) -> dict[str, np.ndarray]:
    """Every array of the shards written by build_shards whose names start with these prefixes,
    concatenated in order."""
    names = [p for prefix in prefixes for p in sorted(pairs_dir.glob(f"{prefix}-*.npz"))]
    if not names:
        raise FileNotFoundError(f"no coded pairs in {pairs_dir}: run build_pairs first")
    files = [np.load(p) for p in names]
    return {k: np.concatenate([f[k] for f in files]) for k in files[0].files}


def shards(prefix: str, frames: int, augment: AugmentConfig) -> list[tuple]:
    """(file name, split, frames, augmentation) of each training shard of one kind."""
    return [(f"{prefix}-{i:04d}", "train", min(SHARD, frames - i * SHARD), augment) for i in range(-(-frames // SHARD))]


class DecoderTrainer(StagedTrainer):
    def __init__(self, run: Path, corpus: Path, cfg: DecoderTrainConfig | None = None,
                 noise: Path | None = None) -> None:
        super().__init__(run, cfg or DecoderTrainConfig(), DecoderTrainConfig.from_dict)
        cfg = self.cfg
        assets = read_assets(cfg.model)
        self.net_cfg = SpeechNetConfig(**assets.config["net"])
        self.G = build(self.net_cfg)[1]
        if cfg.start == "decoder":  # a next round: the shipped receiver's generator, on packets searched through it
            part = read_part(cfg.model, "decoder")
            if part is None:
                raise StreamcodecError(f"model {cfg.model!r} ships no receiver's generator to start from")
            part.load_into(self.G)
        else:
            assets.load_into("generator", self.G)
        self.G.train()
        self.levels = torch.from_numpy(assets.quantiser()[0])
        self.opt = torch.optim.AdamW(self.G.parameters(), cfg.lr, betas=(0.8, 0.99))
        self.corpus, self.noise = Path(corpus), noise
        self.pairs_dir = self.run / "pairs"
        self.rng = np.random.default_rng(cfg.seed)
        self.resume()

    def modules(self) -> dict:
        return {"G": self.G}

    def optimizers(self) -> dict:
        return {"opt": self.opt}

    def save(self) -> None:
        levels, self.levels = self.levels, None  # the model's own levels, not a training result
        super().save()
        self.levels = levels

    def kinds(self) -> list[tuple[str, int, AugmentConfig]]:
        """(shard name prefix, training frames, augmentation) of each kind of pair, in the order
        their shards are seeded."""
        cfg = self.cfg
        return [("train", cfg.frames, LEVELS), ("babble", cfg.babble_frames, BABBLE), ("hard", cfg.hard_frames, HARD)]

    def build_pairs(self, workers: int | None = None) -> None:
        """Code the development and training pairs, shard by shard (build_shards)."""
        cfg = self.cfg
        jobs = [("dev", "dev", cfg.dev_frames, LEVELS)]
        jobs += [job for kind, frames, augment in self.kinds() for job in shards(kind, frames, augment)]
        make = functools.partial(make_pairs, iters=cfg.search_iters, workers=workers or thread_count())
        build_shards(self.pairs_dir, jobs, self.corpus, self.noise, cfg.model, cfg.seed, make, self.log)

    @cached_property
    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        pairs = read_shards(self.pairs_dir, [kind for kind, _, _ in self.kinds()])
        return pairs["indices"], pairs["target"]

    @cached_property
    def dev_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        dev = np.load(self.pairs_dir / "dev.npz")
        return dev["indices"], dev["target"]

    def _batch(self, indices: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.levels[torch.from_numpy(indices.astype(np.int64))]
        return z, mels_first(target.astype(np.float32))

    def step(self, stage: int) -> dict:
        pick = self.rng.integers(len(self.train_pairs[0]), size=self.cfg.batch)
        return l1_step(self.G, self.opt, *self._batch(self.train_pairs[0][pick], self.train_pairs[1][pick]),
                       self.cfg.loudness)

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """L1 on log-mel between the clean development speech and what G's copy makes of the
        indices the codec sent for it (at step 0: what the shipped G makes of them)."""
        self.G.eval()
        z, target = self._batch(*self.dev_pairs)
        y = self.G(z)
        out = {"dev_l1": F.l1_loss(y, target).item(), "dev_l1_loud": weighted_l1(y, target, LOUDNESS_WEIGHT).item()}
        self.G.train()
        return out

    def export(self, out: Path, average: list["DecoderTrainer"] = ()) -> Path:
        """decoder.safetensors (float16) and decoder.json beside the model it serves; with
        `average`, the mean of this run's weights and theirs (runs fine-tuned from the same G).
        decoder.json records the development measures of what is exported."""
        return self.export_part("decoder", out, average)


def export(run: Path, out: Path, corpus: Path, average: list[Path] = (), noise: Path | None = None) -> Path:
    """Export a run, or the average of its weights and other runs' (a "model soup": runs of the
    recipe on different pairs averaged decode better than each alone, speech_decoders_soup.md)."""
    return DecoderTrainer(run, corpus, noise=noise).export(out, [DecoderTrainer(r, corpus, noise=noise) for r in average])


def main(args) -> None:
    trainer = DecoderTrainer(args.run, args.corpus, DecoderTrainConfig(model=args.model, frames=args.frames,
                                                                       babble_frames=args.babble_frames,
                                                                       hard_frames=args.hard_frames,
                                                                       loudness=args.loudness, start=args.start),
                             noise=args.noise)
    trainer.build_pairs()
    cfg = trainer.cfg
    print(f"training pairs: {cfg.frames} (and {cfg.babble_frames} babble only, {cfg.hard_frames} hard)", flush=True)
    trainer.run_stage(1, args.steps, args.minutes)
