"""Training of the rate-distortion image model (nets/image_rd.py): loss = R + lambda_q * 255^2 * MSE,
each item of a batch at a random quality q (so one model learns every rate), R the bits the
entropy models assign to y and z (uniform-noise proxy), per pixel.

Resumable like every run here: the run folder holds config.json (the first start's settings win),
checkpoint.safetensors (every few minutes and at a clean stop on SIGINT/SIGTERM) and log.jsonl
(development PSNR, MS-SSIM and estimated bpp at each quality). Running the same command continues.

    python -m streamcodec.train.image_rd --run runs/image-rd --steps 200000
"""

import argparse
import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from streamcodec.core.losses import ms_ssim
from streamcodec.core import context_code
from streamcodec.image import rd_codec
from streamcodec.image.rd_model import load_rd_model, save_rd_model
from streamcodec.nets.image_rd import RDModel, RDNetConfig
from streamcodec.train import checkpoint
from streamcodec.train.photos import PhotoCrops, load_split


@dataclass
class RDTrainConfig:
    net: RDNetConfig = field(default_factory=RDNetConfig)
    seed: int = 0
    steps: int = 200_000
    batch: int = 8
    crop: int = 128
    dev_crop: int = 256
    lr: float = 2e-4
    lr_drop_at: float = 0.9  # fraction of `steps` after which the step size is a tenth
    aux_lr: float = 1e-3  # the gains and z's density learn faster: they are few numbers
    checkpoint_seconds: float = 240.0
    log_every: int = 500
    threads: int = 2
    bf16: bool = False  # the convolutions of a training step in bfloat16 (benchmarks/results/image_rd_ab_bf16.md)

    @classmethod
    def from_dict(cls, d: dict) -> "RDTrainConfig":
        d = dict(d)
        d["net"] = RDNetConfig.from_dict(d["net"])
        return cls(**d)


def rd_loss(model: RDModel, x: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean over the batch of bpp + lambda(q) * 255^2 * MSE, lambda interpolated log-linearly."""
    y, bits_y, bits_z = model(x, quality)
    pixels = x.shape[2] * x.shape[3]
    bpp = (bits_y.flatten(1).sum(1) + bits_z.flatten(1).sum(1)) / pixels
    mse = (y - x).pow(2).flatten(1).mean(1)
    lam = torch.exp(torch.from_numpy(np.interp(quality.numpy(), np.arange(len(model.cfg.lambdas)),
                                               np.log(model.cfg.lambdas))).float())
    loss = (bpp + lam * 255**2 * mse).mean()
    return loss, {"loss": loss.item(), "bpp": bpp.mean().item(), "psnr": (-10 * torch.log10(mse.mean())).item()}


AUX = {"gain", "inv_gain", "z_gain", "z_inv_gain", "z_loc", "z_log_scale"}  # few numbers: their own step size


class RDTrainer:
    def __init__(self, run: Path, photos: Path | None = None, cfg: RDTrainConfig | None = None,
                 init: Path | None = None, threads: int | None = None, lr: float | None = None,
                 add_lambdas: tuple[float, ...] = (), tune_gains_below: float | None = None,
                 bf16: bool | None = None) -> None:
        self.run = Path(run)
        self.run.mkdir(parents=True, exist_ok=True)
        cfg_path = self.run / "config.json"
        if cfg_path.exists():
            cfg = RDTrainConfig.from_dict(json.loads(cfg_path.read_text()))
        cfg = cfg or RDTrainConfig()
        if init is not None and not cfg_path.exists():  # the networks are the exported model's, qualities included
            cfg = replace(cfg, net=RDNetConfig.from_dict(json.loads((Path(init) / "config.json").read_text())["net"]))
        self.cfg = cfg
        if threads:  # how busy the machine is now, not part of the recipe: a resumed run takes it too
            cfg.threads = threads
        lr_changed = lr is not None and cfg_path.exists() and lr != cfg.lr
        if lr_changed:
            cfg.aux_lr *= lr / cfg.lr  # the gains and z's density slow down with the rest
        if lr is not None:
            cfg.lr = lr
        bf16_changed = bf16 is not None and cfg_path.exists() and bf16 != cfg.bf16
        if bf16 is not None:
            cfg.bf16 = bf16
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.model, self.opt = self._build(cfg.net)
        self.train = PhotoCrops(load_split("train", photos), cfg.crop, cfg.seed)
        self.dev = PhotoCrops(load_split("dev", photos), cfg.dev_crop, cfg.seed + 1).centre_crops()
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.state = {"step": 0, "seconds": 0.0}
        self._stop = False
        if (self.run / "checkpoint.safetensors").exists():
            self.state = checkpoint.load(self.run / "checkpoint.safetensors", {"model": self.model}, {"opt": self.opt})
        elif init is not None:
            self.warm_start(Path(init))
        if lr_changed:  # a resumed run given another step size (a decay phase): the log says from when
            self.log({"step": self.state["step"], "lr": lr})
        if bf16_changed:
            self.log({"step": self.state["step"], "bf16": bf16})
        cfg_path.write_text(json.dumps(asdict(cfg), indent=1))
        new = sorted(set(add_lambdas) - set(cfg.net.lambdas))
        if new:
            self.add_qualities(new)
            cfg_path.write_text(json.dumps(asdict(cfg), indent=1))
            self.save()  # the checkpoint's shapes follow the config at once
        self.tuned = len(self.cfg.net.lambdas) if tune_gains_below is None else \
            sum(v < tune_gains_below for v in self.cfg.net.lambdas)
        if tune_gains_below is not None:
            self._freeze_all_but_low_gains()

    def _freeze_all_but_low_gains(self) -> None:
        """Train only the gains of the `tuned` lowest qualities: every other weight, the other
        qualities' gains and z's density stay exactly as they are, so the rates the model already
        had keep their weights bit for bit (a full fine-tune with new qualities tied with this, but
        its old rates drifted to more bits at equal PSNR: benchmarks/results/image_rd_ab_low.md)."""
        if not self.tuned:
            raise ValueError("no quality lies below --tune-gains-below: nothing would train")
        mask = torch.zeros(len(self.cfg.net.lambdas), 1)
        mask[: self.tuned] = 1
        for name, p in self.model.named_parameters():
            if name in ("gain", "inv_gain", "z_gain", "z_inv_gain"):
                p.register_hook(lambda g: g * mask)
                for moment in self.opt.state.get(p, {}).values():  # no momentum moves a frozen row either
                    if moment.shape == p.shape:
                        moment.mul_(mask)
            else:
                p.requires_grad_(False)

    def _build(self, net: RDNetConfig) -> tuple[RDModel, torch.optim.Optimizer]:
        model = RDModel(net)
        params = dict(model.named_parameters())
        opt = torch.optim.Adam([{"params": [p for k, p in params.items() if k not in AUX], "lr": self.cfg.lr},
                                {"params": [params[k] for k in sorted(AUX)], "lr": self.cfg.aux_lr}])
        return model, opt

    def add_qualities(self, lambdas: list[float]) -> None:
        """Extend a trained model below its lowest rate (a run that cannot reach a target bpp):
        each new quality's gains continue the two lowest ones' trend in log-gain per log-lambda
        (bounded), so it starts near where it will settle. The transforms keep their optimizer
        state; the gains, whose shape changes, restart theirs."""
        old = self.cfg.net.lambdas
        if max(lambdas) >= old[0]:
            raise ValueError(f"new lambdas {lambdas} must lie below the lowest trained one ({old[0]})")
        net = replace(self.cfg.net, lambdas=tuple(lambdas) + old)
        model, opt = self._build(net)
        state = self.model.state_dict()
        dl = np.log(np.array(lambdas)) - np.log(old[0])  # (new,) log-lambda distance below the lowest
        for key in ("gain", "inv_gain", "z_gain", "z_inv_gain"):
            low = state[key].abs().clamp_min(1e-4).log()
            slope = (low[1] - low[0]) / float(np.log(old[1]) - np.log(old[0]))
            # a lower rate scales a value down and back up, by at most lambda's own ratio: a channel
            # whose two lowest gains differ wildly (nearly unused) would otherwise explode
            slope = slope.clamp(0, 1) if key in ("gain", "z_gain") else slope.clamp(-1, 0)
            state[key] = torch.cat([(low[0] + torch.from_numpy(dl).float()[:, None] * slope).exp(), state[key]])
        model.load_state_dict(state)
        kept = self.opt.state_dict()
        n_main = len(kept["param_groups"][0]["params"])
        kept["state"] = {i: v for i, v in kept["state"].items() if i < n_main}
        opt.load_state_dict(kept)
        self.model, self.opt, self.cfg.net = model, opt, net
        self.log({"step": self.state["step"], "lambdas": list(net.lambdas)})

    def warm_start(self, folder: Path) -> None:
        """Continue from an exported model folder (image/rd_model.py's format), at its step count
        and with a new optimizer: how a run carries over between machines that keep only git."""
        from safetensors.numpy import load_file

        tensors = load_file(str(folder / "model.safetensors"))
        state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items() if not k.startswith("table.")}
        self.model.load_state_dict(state)
        self.state = {"step": int(json.loads((folder / "config.json").read_text())["step"]), "seconds": 0.0}
        self.log({"step": self.state["step"], "warm_start": str(folder)})

    def export(self, folder: Path, crops: int = 40) -> None:
        """The model as the codec loads it (no optimizer state), with the step count it reached and
        entropy-coder tables fitted to what it sends for `crops` training crops at every quality
        (fewer bits on the development photos than tables built from its Gaussians:
        benchmarks/image_tables.py)."""
        state, net, step = self.model.state_dict(), self.cfg.net.to_dict(), self.state["step"]
        save_rd_model(folder, state, net, step)
        model = load_rd_model.__wrapped__(str(folder))  # numpy, as the codec computes the buckets
        rng = np.random.default_rng(self.cfg.seed)
        size = min(256, *(min(p.shape[:2]) for p in self.train.photos))
        samples = []
        for i in rng.integers(0, len(self.train.photos), crops):
            photo = self.train.photos[i]
            y, x = (rng.integers(0, photo.shape[k] - size + 1) for k in (0, 1))
            crop = np.ascontiguousarray(photo[y : y + size, x : x + size])
            y0 = rd_codec.analyse(model, crop, (0, 0, size, size))
            for q in range(len(net["lambdas"])):
                samples += rd_codec.tile_symbols(model, y0, float(q), size, size)
        save_rd_model(folder, state, net, step, context_code.fit_tables(model.code, samples))

    def save(self) -> None:
        checkpoint.save(self.run / "checkpoint.safetensors", {"model": self.model}, {"opt": self.opt}, self.state)

    def log(self, record: dict) -> None:
        with open(self.run / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """PSNR and estimated bpp of the development crops at each whole quality (rounded latents)."""
        self.model.eval()
        out = {}
        for q in range(len(self.cfg.net.lambdas)):
            quality = torch.full((len(self.dev),), float(q))
            _, info = rd_loss_eval(self.model, self.dev, quality)
            out[f"q{q}"] = info
        self.model.train()
        return out

    def set_lr(self) -> None:
        scale = 0.1 if self.state["step"] >= self.cfg.lr_drop_at * self.cfg.steps else 1.0
        self.opt.param_groups[0]["lr"] = self.cfg.lr * scale
        self.opt.param_groups[1]["lr"] = self.cfg.aux_lr * scale

    def step(self) -> dict:
        x = self.train.batch(self.cfg.batch)
        top = min(self.tuned, len(self.cfg.net.lambdas) - 1)  # tuning the lowest k: q in [0, k] reaches all of them
        quality = torch.rand(len(x), generator=self.gen) * top
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.bf16):
            loss, info = rd_loss(self.model, x, quality)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        return info

    def fit(self, steps: int | None = None, minutes: float = math.inf) -> None:
        steps = steps or self.cfg.steps
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        start = last_save = time.time()
        running: dict = {}
        if self.state["step"] == 0:
            self.log({"step": 0, "dev": self.dev_metrics()})
        while self.state["step"] < steps and not self._stop and time.time() - start < minutes * 60:
            t0 = time.time()
            self.set_lr()
            info = self.step()
            self.state["seconds"] += time.time() - t0
            self.state["step"] += 1
            for k, v in info.items():
                running[k] = 0.98 * running.get(k, v) + 0.02 * v
            if self.state["step"] % self.cfg.log_every == 0:
                self.log({"step": self.state["step"], "seconds": round(self.state["seconds"]),
                          **{k: round(v, 4) for k, v in running.items()}, "dev": self.dev_metrics()})
            if time.time() - last_save > self.cfg.checkpoint_seconds:
                self.save()
                last_save = time.time()
        self.save()
        self.log({"step": self.state["step"], "seconds": round(self.state["seconds"]), "saved": True})

    def _request_stop(self, *_) -> None:
        self._stop = True


def rd_loss_eval(model: RDModel, x: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """bpp (entropy-model estimate on rounded latents), PSNR and MS-SSIM of the reconstruction."""
    rec, bits, _ = model.code(x, quality)
    mse = (rec - x).pow(2).flatten(1).mean(1)
    bpp = bits / (x.shape[2] * x.shape[3])
    return mse, {"bpp": round(bpp.mean().item(), 4), "psnr": round((10 * torch.log10(1 / mse)).mean().item(), 3),
                 "msssim": round(ms_ssim(x, rec).mean().item(), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/image-rd"))
    parser.add_argument("--photos", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=math.inf)
    parser.add_argument("--n", type=int, default=None, help="transform width (first start only)")
    parser.add_argument("--crop", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None,
                        help="step size (default 2e-4; given when resuming, it changes from this step on, logged)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (also when resuming)")
    parser.add_argument("--lr-drop-at", type=float, default=None,
                        help="fraction of --steps after which the step size is a tenth (first start only; "
                             "default 0.9, 1 for never: a later stage sets its own with --lr)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="convolutions in bfloat16 during training steps (about twice as fast on a CPU with "
                             "AVX512-BF16 or AMX; development measures stay float32); given when resuming, it "
                             "changes from this step on, logged")
    parser.add_argument("--init", type=Path, default=None,
                        help="an exported model folder to continue from when the run folder is new")
    parser.add_argument("--add-lambdas", type=float, nargs="+", default=(),
                        help="rate weights below the lowest to add as new qualities (when resuming; "
                             "gains extrapolated, logged)")
    parser.add_argument("--tune-gains-below", type=float, default=None,
                        help="train only the gains of the qualities whose lambda is below this (the rest "
                             "frozen: the other rates keep their weights exactly); given each time the stage runs")
    parser.add_argument("--export", type=Path, default=None,
                        help="write the run's model folder (what the codec loads) here and stop")
    args = parser.parse_args(argv)
    cfg = RDTrainConfig()
    if args.n:
        cfg.net = RDNetConfig(n=args.n, m=cfg.net.m, z=cfg.net.z)
    if args.crop:
        cfg.crop = args.crop
    if args.steps:
        cfg.steps = args.steps
    if args.lr_drop_at is not None:
        cfg.lr_drop_at = args.lr_drop_at
    trainer = RDTrainer(args.run, args.photos, cfg, args.init, args.threads, args.lr, tuple(args.add_lambdas),
                         args.tune_gains_below, args.bf16)
    if args.export:
        trainer.export(args.export)
        return
    trainer.fit(args.steps, args.minutes)


if __name__ == "__main__":
    main()
