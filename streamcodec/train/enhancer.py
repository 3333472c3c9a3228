"""Training recipe for the speech enhancer (issue 14): the network in front of E and the search
that turns what a field microphone gives (noise, reverberation, 8 kHz or telephone band) into an
estimate of the clean speech, in the log-mel domain. Resumable like the model recipe:

    streamcodec train enhancer --run runs/enhancer --minutes 60
    streamcodec train enhancer --run runs/enhancer --decay-steps 6000   # then anneal the step size
    streamcodec train export --kind enhancer --run runs/enhancer --out models/speech-2k
    streamcodec train enhancer --run runs/enhancer-round --from-shipped --over-weight 2 --over-high-only \
        --decay-steps 3000                              # a round on top of the shipped enhancer

It is trained alone, on (field, clean) pairs from train/augment.py at the level target of the
model it serves, with an L1 loss: E, G, the levels and the Huffman code stay as they are, so
packets coded with it decode on every receiver of that model (same model id). Options weight the
loss above 4 kHz, where unseen noise stays in and costs ViSQOL (Codec2 never codes that band), and
make an estimate above the clean target (noise left in) cost more than one below (speech taken out).
"""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from streamcodec.dsp.level import apply_gain, gain_for, measure_level
from streamcodec.errors import StreamcodecError
from streamcodec.nets.assets import model_dir, read_assets, read_part, save_part
from streamcodec.nets.speech import Enhancer, EnhancerConfig
from streamcodec.train.augment import MEL_HZ, FieldAugmenter
from streamcodec.train.loop import StagedTrainer, l1_step
from streamcodec.train.noise import load_bank
from streamcodec.train.speech import CropSampler, mels_first


@dataclass
class EnhancerTrainConfig:
    net: EnhancerConfig = field(default_factory=EnhancerConfig)
    model: str = "speech-2k"  # the model whose level target the enhancer is trained at
    seed: int = 0
    batch: int = 16
    crop: int = 64
    lr: float = 3e-4
    checkpoint_seconds: float = 300.0
    # Cosine decay of the step size from lr to lr_final over decay_steps steps from decay_start
    # (decay_steps 0: constant). Set on a running run by --decay-steps.
    decay_start: int = 0
    decay_steps: int = 0
    lr_final: float = 3e-5
    start: str = "new"  # or "shipped": from the enhancer the model ships
    high_band_weight: float = 1.0  # L1 weight of the mel bands above HIGH_HZ against those below
    over_weight: float = 1.0  # L1 weight of an estimate above the clean target (noise left in) against one below
    over_high_only: bool = False  # over_weight above HIGH_HZ only

    @classmethod
    def from_dict(cls, d: dict) -> "EnhancerTrainConfig":
        return cls(**{**d, "net": EnhancerConfig.from_dict(d["net"])})


HIGH_HZ = 4000.0


class EnhancerTrainer(StagedTrainer):
    def __init__(self, run: Path, corpus: Path, cfg: EnhancerTrainConfig | None = None,
                 noise: Path | None = None) -> None:
        super().__init__(run, cfg or EnhancerTrainConfig(), EnhancerTrainConfig.from_dict)
        cfg = self.cfg
        shipped = None
        if cfg.start == "shipped" and not (self.run / "checkpoint.safetensors").exists():  # a new run
            shipped = read_part(cfg.model, "enhancer")
            if shipped is None:
                raise StreamcodecError(f"model {cfg.model!r} ships no enhancer to start from: train one without "
                                       "--from-shipped")
            cfg.net = EnhancerConfig.from_dict(shipped.config["net"])
            self.save_config()  # the shipped enhancer's shape
        self.net = Enhancer(cfg.net)
        if shipped is not None:
            shipped.load_into(self.net).train()
        self.high = torch.from_numpy(MEL_HZ >= HIGH_HZ)
        self.bands = self._per_band(cfg.high_band_weight, high_only=True)
        self.over = self._per_band(cfg.over_weight, cfg.over_high_only)
        self.opt = torch.optim.AdamW(self.net.parameters(), cfg.lr, betas=(0.8, 0.99))
        self.target_db = float(read_assets(cfg.model).config["level_target_db"])
        bank = load_bank("train", noise)
        self.train = CropSampler(corpus, "train", cfg.crop, cfg.seed)
        dev = CropSampler(corpus, "dev", 128, cfg.seed + 1)
        self.field = FieldAugmenter(bank, self.train.crops, self.target_db, cfg.seed)
        clean = dev.crops(64)
        self.dev_clean = mels_first(apply_gain(clean, gain_for(measure_level(clean), self.target_db)))
        pair = FieldAugmenter(bank, dev.crops, self.target_db, cfg.seed + 2).field_pair(clean)
        self.dev_field = tuple(mels_first(x) for x in pair)
        self.resume()

    def _per_band(self, weight: float, high_only: bool) -> torch.Tensor | None:
        """A loss weight per mel band: `weight` above HIGH_HZ (everywhere unless high_only), 1
        elsewhere; None where it is 1 everywhere (plain L1)."""
        if weight == 1.0:
            return None
        return 1.0 + (weight - 1.0) * (self.high.float() if high_only else torch.ones(len(self.high)))

    def modules(self) -> dict:
        return {"enhancer": self.net}

    def optimizers(self) -> dict:
        return {"opt": self.opt}

    def start_decay(self, steps: int) -> None:
        """Anneal over the next `steps` steps from where the run stands (once: a resumed run keeps
        the schedule it was given); recorded in the run's config.json."""
        if self.cfg.decay_steps:
            return
        self.cfg.decay_start, self.cfg.decay_steps = self.state["stage_steps"]["1"], steps
        self.save_config()

    def lr(self, step: int) -> float:
        cfg = self.cfg
        if not cfg.decay_steps or step <= cfg.decay_start:
            return cfg.lr
        t = min(1.0, (step - cfg.decay_start) / cfg.decay_steps)
        return cfg.lr_final + (cfg.lr - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t))

    def step(self, stage: int) -> dict:
        for group in self.opt.param_groups:
            group["lr"] = self.lr(self.state["stage_steps"]["1"])
        x, target = (mels_first(a) for a in self.field.field_pair(self.train.crops(self.cfg.batch)))
        return l1_step(self.net, self.opt, x, target, bands=self.bands, over=self.over)

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """L1 to the clean speech on the field dev pairs (beside the untouched input's), and how
        much the enhancer changes clean dev speech (0 would be a perfect pass-through); the first
        also above 4 kHz alone."""
        self.net.eval()
        x, target = self.dev_field
        y = self.net(x)
        out = {"dev_l1_field": F.l1_loss(y, target).item(),
               "dev_l1_field_high": F.l1_loss(y[:, self.high], target[:, self.high]).item(),
               "dev_l1_field_input": F.l1_loss(x, target).item(),
               "dev_l1_clean": F.l1_loss(self.net(self.dev_clean), self.dev_clean).item()}
        self.net.train()
        return out

    def export(self, out: Path) -> Path:
        """enhancer.safetensors (float16) and enhancer.json beside the model it serves."""
        config = {"net": self.cfg.net.to_dict(), "training": asdict(self.cfg), "state": self.state}
        return save_part(model_dir(str(out)), "enhancer", self.net, config)


def export(run: Path, out: Path, corpus: Path, noise: Path | None = None) -> Path:
    return EnhancerTrainer(run, corpus, noise=noise).export(out)


def main(args) -> None:
    cfg = EnhancerTrainConfig(model=args.model, start="shipped" if args.from_shipped else "new",
                              high_band_weight=args.high_band_weight, over_weight=args.over_weight,
                              over_high_only=args.over_high_only)
    trainer = EnhancerTrainer(args.run, args.corpus, cfg, noise=args.noise)
    if args.decay_steps:
        trainer.start_decay(args.decay_steps)
        args.steps = args.steps or trainer.cfg.decay_start + trainer.cfg.decay_steps
    print(f"train frames: {trainer.train.frames}, level target {trainer.target_db} dB", flush=True)
    trainer.run_stage(1, args.steps, args.minutes)
