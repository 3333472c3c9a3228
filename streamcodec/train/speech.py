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
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from streamcodec.core.huffman import HuffmanCode
from streamcodec.core.quantizer import fit_levels
from streamcodec.nets.assets import save_model
from streamcodec.nets.speech import Discriminator, SpeechNetConfig, build
from streamcodec.train import checkpoint


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

    def batch(self, n: int, gain_db: float = 0.0) -> torch.Tensor:
        idx = self.rng.choice(self.valid, n)
        x = np.stack([self.data[i : i + self.crop] for i in idx]).astype(np.float32)
        if gain_db:
            shift = self.rng.uniform(-gain_db, gain_db, (n, 1, 1)) / 50.0  # 100 dB span -> [-1, 1]
            x = np.where(x <= -0.999, -1.0, np.clip(x + shift, -1.0, 1.0)).astype(np.float32)
        return torch.from_numpy(x).transpose(1, 2).contiguous()  # (n, mels, frames)


def _ste_quantize(z: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    idx = torch.bucketize(z, (levels[1:] + levels[:-1]) / 2)
    return z + (levels[idx] - z).detach()


class Trainer:
    def __init__(self, run: Path, corpus: Path, cfg: TrainConfig | None = None) -> None:
        self.run = Path(run)
        self.run.mkdir(parents=True, exist_ok=True)
        cfg_path = self.run / "config.json"
        if cfg_path.exists():
            cfg = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
        else:
            cfg = cfg or TrainConfig()
            cfg_path.write_text(json.dumps(asdict(cfg), indent=1))
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.E, self.G = build(cfg.net)
        self.D = Discriminator()
        self.opt_g = torch.optim.AdamW(list(self.E.parameters()) + list(self.G.parameters()), cfg.lr, betas=(0.8, 0.99))
        self.opt_d = torch.optim.AdamW(self.D.parameters(), cfg.lr, betas=(0.8, 0.99))
        self.train = CropSampler(corpus, "train", cfg.crop, cfg.seed)
        self.dev = CropSampler(corpus, "dev", 128, cfg.seed + 1)
        self.dev_batch = self.dev.batch(64)
        self.state = {"stage_steps": {"1": 0, "2": 0}, "seconds": {"1": 0.0, "2": 0.0}}
        self.levels: torch.Tensor | None = None
        self._stop = False
        ckpt = self.run / "checkpoint.safetensors"
        if ckpt.exists():
            self.state = checkpoint.load(ckpt, self._modules(), {"g": self.opt_g, "d": self.opt_d})
            if self.state.get("levels"):
                self.levels = torch.tensor(self.state["levels"])

    def _modules(self) -> dict:
        return {"E": self.E, "G": self.G, "D": self.D}

    def save(self) -> None:
        if self.levels is not None:
            self.state["levels"] = self.levels.tolist()
        checkpoint.save(self.run / "checkpoint.safetensors", self._modules(), {"g": self.opt_g, "d": self.opt_d},
                        self.state)

    def _log(self, record: dict) -> None:
        with open(self.run / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def dev_l1(self) -> dict:
        self.E.eval()
        self.G.eval()
        z = self.E(self.dev_batch)
        out = {"dev_l1": F.l1_loss(self.G(z), self.dev_batch).item()}
        if self.levels is not None:
            zq = _ste_quantize(z, self.levels)
            out["dev_l1_quantised"] = F.l1_loss(self.G(zq), self.dev_batch).item()
        self.E.train()
        self.G.train()
        return out

    def fit_levels_and_code(self) -> None:
        """Fit the k-means levels on E's latents of training crops (stage 2 start)."""
        with torch.no_grad():
            zs = [self.E(self.train.batch(64)).flatten() for _ in range(max(1, self.cfg.level_samples // 64))]
        z = torch.cat(zs).numpy()
        self.levels = torch.from_numpy(fit_levels(z, self.cfg.n_levels, seed=self.cfg.seed))

    def huffman(self) -> HuffmanCode:
        with torch.no_grad():
            counts = torch.zeros(self.cfg.n_levels, dtype=torch.int64)
            for _ in range(max(1, self.cfg.level_samples // 64)):
                z = self.E(self.train.batch(64))
                idx = torch.bucketize(z, (self.levels[1:] + self.levels[:-1]) / 2)
                counts += torch.bincount(idx.flatten(), minlength=self.cfg.n_levels)
        return HuffmanCode.from_histogram(counts.numpy())

    def step(self, stage: int) -> dict:
        cfg = self.cfg
        x = self.train.batch(cfg.batch, cfg.gain_db)
        if stage == 1:
            z = self.E(x)
            z_in = z + cfg.latent_noise * torch.randn_like(z)
        else:
            with torch.no_grad():
                z = self.E(x)
            z_in = _ste_quantize(z, self.levels)
        y = self.G(z_in)
        adversarial = stage == 2 or self.state["stage_steps"]["1"] >= cfg.adv_start
        logs = {}
        if adversarial:
            real_score, _ = self.D(x)
            fake_score, _ = self.D(y.detach())
            loss_d = ((real_score - 1) ** 2).mean() + (fake_score**2).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["d"] = loss_d.item()
        rec = F.l1_loss(y, x)
        loss = rec + (cfg.latent_l2 * z.pow(2).mean() if stage == 1 else 0.0)
        if adversarial:
            fake_score, fake_feats = self.D(y)
            with torch.no_grad():
                _, real_feats = self.D(x)
            adv = ((fake_score - 1) ** 2).mean()
            fm = sum(F.l1_loss(a, b) for a, b in zip(fake_feats, real_feats)) / len(fake_feats)
            loss = loss + cfg.lambda_adv * adv + cfg.lambda_fm * fm
            logs.update(adv=adv.item(), fm=fm.item())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.E.parameters()) + list(self.G.parameters()), 5.0)
        self.opt_g.step()
        logs["rec"] = rec.item()
        return logs

    def train_stage(self, stage: int, steps: int, minutes: float) -> None:
        if stage == 2:
            if self.levels is None:
                self.fit_levels_and_code()
                for group in self.opt_g.param_groups:
                    group["lr"] = self.cfg.lr / 3
            self.E.requires_grad_(False)
        key = str(stage)
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        start = time.time()
        last_save = start
        done = self.state["stage_steps"][key]
        bar = tqdm(total=steps, initial=done, desc=f"stage {stage}", mininterval=10, smoothing=0.05)
        running: dict = {}
        while done < steps and not self._stop and time.time() - start < minutes * 60:
            t0 = time.time()
            logs = self.step(stage)
            self.state["seconds"][key] += time.time() - t0
            done += 1
            self.state["stage_steps"][key] = done
            for k, v in logs.items():
                running[k] = 0.98 * running.get(k, v) + 0.02 * v
            bar.update(1)
            if done % 50 == 0:
                bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
            if done % 500 == 0:
                record = {"stage": stage, "step": done, "seconds": round(self.state["seconds"][key]), **running,
                          **self.dev_l1()}
                self._log(record)
            if time.time() - last_save > self.cfg.checkpoint_seconds:
                self.save()
                last_save = time.time()
        bar.close()
        self.save()
        self._log({"stage": stage, "step": done, "seconds": round(self.state["seconds"][key]), "saved": True,
                   **self.dev_l1()})

    def _request_stop(self, *_):
        self._stop = True


def export(run: Path, out: Path, corpus: Path) -> Path:
    """Write the shipped model: weights of E and G with levels and Huffman lengths, and config."""
    trainer = Trainer(run, corpus)
    if trainer.levels is None:
        raise RuntimeError("stage 2 has not run yet: there are no quantiser levels to ship")
    config = {"net": trainer.cfg.net.to_dict(), "training": asdict(trainer.cfg),
              "state": {k: v for k, v in trainer.state.items() if k != "levels"}}
    return save_model(out, trainer.E, trainer.G, trainer.levels, trainer.huffman().lengths, config)


def main(args) -> None:
    trainer = Trainer(args.run, args.corpus, TrainConfig(net=SpeechNetConfig(arch=args.arch)))
    steps = args.steps or (200_000 if args.stage == 1 else 20_000)
    print(f"train frames: {trainer.train.frames} ({trainer.train.frames * 128 / 16000 / 3600:.2f} h), "
          f"dev frames: {trainer.dev.frames}", flush=True)
    trainer.train_stage(args.stage, steps, args.minutes if args.minutes else math.inf)
