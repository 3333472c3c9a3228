"""The resumable two-stage training loop shared by the speech and image recipes.

A run folder holds config.json (written once; a resumed run keeps its first config), a safetensors
checkpoint with every module and optimizer, and log.jsonl. Running the same command again continues
where the last run stopped; SIGINT/SIGTERM stop cleanly after the current step and save.
A recipe subclasses StagedTrainer, builds E, G, D and their optimizers (opt_g, opt_d), and supplies
`step(stage)` (which calls `encode()` and `update()` here), `dev_metrics()`, `latent_noise(z)`
(stage 1), `training_latents()` (E's latents of some training batches) and `fit_levels(z)`
(stage 2's quantiser).

Both recipes share the stage logic: stage 1 trains E and G with noise on the latent and, after
`adv_start` steps, least-squares adversarial and feature-matching terms; stage 2 freezes E, fits
the levels, and fine-tunes G on quantised latents (straight-through) at a third of the step size.
A recipe may add a stage 3 (E and the levels frozen; `begin_stage3()` sets it up).
"""

import json
import math
import signal
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from streamcodec.core.huffman import HuffmanCode
from streamcodec.errors import StreamcodecError
from streamcodec.nets.assets import model_dir, save_model, save_part
from streamcodec.train import checkpoint


class StagedTrainer:
    def __init__(self, run: Path, cfg, config_from_dict) -> None:
        self.run = Path(run)
        self.run.mkdir(parents=True, exist_ok=True)
        cfg_path = self.run / "config.json"
        if cfg_path.exists():
            cfg = config_from_dict(json.loads(cfg_path.read_text()))
        self.cfg = cfg
        if not cfg_path.exists():
            self.save_config()
        torch.manual_seed(cfg.seed)
        self.state = {"stage_steps": {"1": 0, "2": 0}, "seconds": {"1": 0.0, "2": 0.0}}
        self.levels: torch.Tensor | None = None
        self._stop = False

    def save_config(self) -> None:
        """Record the run's config (a resumed run reads it back), also when a setting is fixed at
        the first start."""
        (self.run / "config.json").write_text(json.dumps(asdict(self.cfg), indent=1))

    # Subclasses build self.E, self.G, self.D, self.opt_g, self.opt_d, then call resume().
    def modules(self) -> dict:
        return {"E": self.E, "G": self.G, "D": self.D}

    def optimizers(self) -> dict:
        return {"g": self.opt_g, "d": self.opt_d}

    def step(self, stage: int) -> dict:
        raise NotImplementedError

    def dev_metrics(self) -> dict:
        raise NotImplementedError

    def latent_noise(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_latents(self):
        raise NotImplementedError

    def fit_levels(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def begin_stage3(self) -> None:
        raise StreamcodecError(f"{type(self).__name__} has stages 1 and 2 only")

    def adversarial_due(self, stage: int) -> bool:
        """Whether G's loss has the adversarial terms yet (D trains whenever they are due)."""
        return stage >= 2 or self.state["stage_steps"]["1"] >= self.cfg.adv_start

    def begin_stage2(self) -> None:
        """Fit the levels on E's training latents and lower the step size."""
        with torch.no_grad():
            z = torch.cat([z.flatten() for z in self.training_latents()]).numpy()
        self.levels = torch.from_numpy(self.fit_levels(z))
        for group in self.opt_g.param_groups:
            group["lr"] = self.cfg.lr / 3

    def encode(self, x: torch.Tensor, stage: int) -> tuple[torch.Tensor, torch.Tensor]:
        """E's latent of x and G's input: noisy in stage 1, quantised (straight-through) in stage 2."""
        if stage == 1:
            z = self.E(x)
            return z, z + self.latent_noise(z)
        with torch.no_grad():
            z = self.E(x)
        return z, ste_quantize(z, self.levels)

    def update(self, stage: int, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, rec: torch.Tensor) -> dict:
        """One optimizer step of E and G on the reconstruction loss `rec` of output y for target x,
        with the latent L2 (stage 1) and the adversarial terms once they are due."""
        cfg = self.cfg
        loss = rec + (cfg.latent_l2 * z.pow(2).mean() if stage == 1 else 0.0)
        logs = {}
        if self.adversarial_due(stage):
            (adv, fm), logs = lsgan_losses(self.D, x, y, self.opt_d)
            loss = loss + cfg.lambda_adv * adv + cfg.lambda_fm * fm
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.E.parameters()) + list(self.G.parameters()), 5.0)
        self.opt_g.step()
        logs["rec"] = rec.item()
        return logs

    def huffman(self) -> HuffmanCode:
        """The Huffman code of the level indices of E's (quantised) training latents."""
        counts = np.zeros(self.cfg.n_levels, np.int64)
        mids = (self.levels[1:] + self.levels[:-1]) / 2
        with torch.no_grad():
            for z in self.training_latents():
                counts += np.bincount(torch.bucketize(z.contiguous(), mids).flatten().numpy(), minlength=len(counts))
        return HuffmanCode.from_histogram(counts)

    def export(self, out: Path, **config) -> Path:
        """Write the shipped model: E and G weights, levels, Huffman lengths, and config.json
        (network config, `config` extras, every training setting and the step counts)."""
        if self.levels is None:
            raise RuntimeError("stage 2 has not run yet: there are no quantiser levels to ship")
        config = {"net": self.cfg.net.to_dict(), **config, "training": asdict(self.cfg),
                  "state": {k: v for k, v in self.state.items() if k != "levels"}}
        return save_model(out, self.E, self.G, self.levels, self.huffman().lengths, config)

    def run_stage(self, stage: int, steps: int, minutes: float) -> None:
        """The CLI's entry: 0 steps means the stage's default budget, 0 minutes no time limit."""
        self.train_stage(stage, steps or (200_000 if stage == 1 else 20_000), minutes or math.inf)

    def resume(self) -> None:
        ckpt = self.run / "checkpoint.safetensors"
        if ckpt.exists():
            self.state = checkpoint.load(ckpt, self.modules(), self.optimizers())
            if self.state.get("levels"):
                self.levels = torch.tensor(self.state["levels"])

    def save(self) -> None:
        if self.levels is not None:
            self.state["levels"] = self.levels.tolist()
        checkpoint.save(self.run / "checkpoint.safetensors", self.modules(), self.optimizers(), self.state)

    def log(self, record: dict) -> None:
        with open(self.run / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def train_stage(self, stage: int, steps: int, minutes: float, log_every: int = 500) -> None:
        key = str(stage)
        self.state["stage_steps"].setdefault(key, 0)
        self.state["seconds"].setdefault(key, 0.0)
        if stage >= 2:
            if self.levels is None:
                self.begin_stage2()
            self.E.requires_grad_(False)
        if stage == 3:
            self.begin_stage3()
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        start = time.time()
        last_save = start
        done = self.state["stage_steps"][key]
        bar = tqdm(total=steps, initial=done, desc=f"stage {stage}", mininterval=10, smoothing=0.05)
        running: dict = {}
        if done == 0:  # where the stage starts from
            self.log({"stage": stage, "step": 0, **self.dev_metrics()})
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
            if done % log_every == 0:
                self.log({"stage": stage, "step": done, "seconds": round(self.state["seconds"][key]), **running,
                          **self.dev_metrics()})
            if time.time() - last_save > self.cfg.checkpoint_seconds:
                self.save()
                last_save = time.time()
        bar.close()
        self.save()
        self.log({"stage": stage, "step": done, "seconds": round(self.state["seconds"][key]), "saved": True,
                  **self.dev_metrics()})

    def export_part(self, name: str, out: Path, average: list["StagedTrainer"] = ()) -> Path:
        """A network trained beside a shipped model (the recipe's single module) -> <name>.safetensors
        (float16) and <name>.json in the model's folder, with the development measures of what is
        written; with `average`, the mean of this run's weights and theirs (a "model soup" of runs
        fine-tuned from the same start; the speech networks have weights and biases only)."""
        if any(o.cfg.model != self.cfg.model for o in average):
            raise StreamcodecError("runs to average must serve the same model (its networks are their starting point)")
        net = next(iter(self.modules().values()))  # the part; a discriminator beside it stays in the run
        config = {**self.part_config(), "training": asdict(self.cfg), "state": self.state}
        if average:
            states = [next(iter(o.modules().values())).state_dict() for o in average]
            with torch.no_grad():
                for key, p in net.state_dict().items():
                    p.copy_(torch.stack([p] + [s[key] for s in states]).mean(0))
            config["averaged_with"] = [{"training": asdict(o.cfg), "state": o.state} for o in average]
        config["dev"] = self.dev_metrics()
        return save_part(model_dir(str(out)), name, net, config)

    def part_config(self) -> dict:
        """What a part's json says of its network (export_part)."""
        return {"net": self.net_cfg.to_dict()}

    def _request_stop(self, *_):
        self._stop = True


def weighted_l1(y: torch.Tensor, target: torch.Tensor, loudness: float = 0.0,
                bands: torch.Tensor | None = None, over: torch.Tensor | None = None) -> torch.Tensor:
    """L1 on log-mel (batch, mels, frames), each bin weighted by exp(loudness * target), as the
    codec's search weights its loss (core/search.py), and by `bands` (mels,) where given, the
    weights normalised to a mean of one (0 and None: plain L1); an error above the target (noise
    left in) counts `over` (mels,) times one below."""
    err = (y - target).abs()
    if over is not None:
        err = err * torch.where(y > target, over[:, None], 1.0)
    if not loudness and bands is None:
        return err.mean()
    w = torch.exp(loudness * target) if loudness else torch.ones_like(target)
    if bands is not None:
        w = w * bands[:, None]
    return (w * err).sum() / w.sum()


def l1_step(net: torch.nn.Module, opt, x: torch.Tensor, target: torch.Tensor, loudness: float = 0.0,
            bands: torch.Tensor | None = None, over: torch.Tensor | None = None) -> dict:
    """One optimizer step of a network trained alone on an L1 loss (the enhancer, the receiver's
    generator), gradients clipped as everywhere here; its loss for the log."""
    loss = weighted_l1(net(x), target, loudness, bands, over)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return {"rec": loss.item()}


def ste_quantize(z: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Nearest level in the forward pass, identity gradient (straight-through)."""
    idx = torch.bucketize(z.contiguous(), (levels[1:] + levels[:-1]) / 2)
    return z + (levels[idx] - z).detach()


def lsgan_losses(D, real: torch.Tensor, fake: torch.Tensor, opt_d) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
    """One least-squares discriminator update, then the generator's adversarial and
    feature-matching terms: ((adv, fm), their values and D's loss as floats for the log)."""
    real_score, _ = D(real)
    fake_score, _ = D(fake.detach())
    loss_d = ((real_score - 1) ** 2).mean() + (fake_score**2).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    fake_score, fake_feats = D(fake)
    with torch.no_grad():
        _, real_feats = D(real)
    adv = ((fake_score - 1) ** 2).mean()
    fm = sum(torch.nn.functional.l1_loss(a, b) for a, b in zip(fake_feats, real_feats)) / len(fake_feats)
    return (adv, fm), {"d": loss_d.item(), "adv": adv.item(), "fm": fm.item()}
