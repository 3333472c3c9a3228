"""The rate-distortion image networks (training definitions, torch): a mean-scale hyperprior codec
in the family every learned image codec since 2018 belongs to.

    x (3, H, W) -> g_a -> y (M, H/16, W/16) -> h_a -> z (Z, H/64, W/64)
    z quantised, coded with one table per channel; h_s(z) gives each value of y a mean and a scale
    y quantised around its mean, coded with a table chosen by its scale; g_s(y) -> x

One model covers the whole rate range through gain units (Cui et al., 2021): quality q selects a
gain vector that scales y (and z) before quantisation and its inverse after, and a fractional q
interpolates two neighbouring gains geometrically, so rate control is a continuous knob.
Training may run the convolutions in bfloat16 (autocast; about twice as fast on a CPU with
AVX512-BF16): every transform hands back float32, so rounding and the bit counts stay exact.
Upsampling is a 3x3 convolution followed by a pixel shuffle (no transposed convolutions), which the
numpy runtime can run and differentiate with the same im2col products as the encoder.
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

from streamcodec.nets.image import GDN as _GDN  # the same layer, started nearer the identity

STRIDE = 64  # pixels per hyper-latent value: images are padded to a multiple of it
Y_STRIDE = 16
SCALE_MIN = 0.11  # smallest scale the entropy model uses (as in CompressAI's Gaussian conditional)
LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)  # rate weights per quality, MSE on 0..255;
# 0.0009 added after 25k steps with 0.0018 lowest sat at 0.34 bpp, where 0.15 bpp is a target


@dataclass(frozen=True)
class RDNetConfig:
    n: int = 96  # width of the transforms
    m: int = 128  # channels of y
    z: int = 64  # channels of z
    lambdas: tuple[float, ...] = LAMBDAS

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RDNetConfig":
        return cls(n=int(d["n"]), m=int(d["m"]), z=int(d["z"]), lambdas=tuple(float(v) for v in d["lambdas"]))


def GDN(ch: int, inverse: bool = False) -> nn.Module:
    """Cross-channel terms started off zero, so that they can learn (benchmarks/results/image_rd_ab.md)."""
    return _GDN(ch, inverse, gamma_init=0.1, off_init=0.01)


def _down(a: int, b: int) -> nn.Conv2d:
    return nn.Conv2d(a, b, 5, stride=2, padding=2)


def _up(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, 4 * b, 3, padding=1), nn.PixelShuffle(2))


class Analysis(nn.Module):
    def __init__(self, cfg: RDNetConfig) -> None:
        super().__init__()
        n = cfg.n
        self.net = nn.Sequential(_down(3, n), GDN(n), _down(n, n), GDN(n), _down(n, n), GDN(n), _down(n, cfg.m))

    def forward(self, x):
        return self.net(x - 0.5).float()  # float32 under bf16 autocast too: quantisation needs it


class Synthesis(nn.Module):
    def __init__(self, cfg: RDNetConfig) -> None:
        super().__init__()
        n = cfg.n
        self.net = nn.Sequential(_up(cfg.m, n), GDN(n, True), _up(n, n), GDN(n, True), _up(n, n), GDN(n, True),
                                 _up(n, 3))

    def forward(self, y):
        return self.net(y).float() + 0.5


class HyperAnalysis(nn.Module):
    def __init__(self, cfg: RDNetConfig) -> None:
        super().__init__()
        n = cfg.n
        self.net = nn.Sequential(nn.Conv2d(cfg.m, n, 3, padding=1), nn.LeakyReLU(0.2), _down(n, n),
                                 nn.LeakyReLU(0.2), _down(n, cfg.z))

    def forward(self, y):
        return self.net(y).float()


class HyperSynthesis(nn.Module):
    """z -> (mean, scale) of every value of y."""

    def __init__(self, cfg: RDNetConfig) -> None:
        super().__init__()
        n = cfg.n
        self.net = nn.Sequential(_up(cfg.z, n), nn.LeakyReLU(0.2), _up(n, n), nn.LeakyReLU(0.2),
                                 nn.Conv2d(n, 2 * cfg.m, 3, padding=1))

    def forward(self, z):
        mean, raw = self.net(z).float().chunk(2, 1)
        return mean, F.softplus(raw) + SCALE_MIN


def gaussian_bits(v: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log2 P(v) of a Gaussian integrated over [v - 0.5, v + 0.5]: the bits an ideal coder spends."""
    d = (v - mean).abs()
    c = 1 / (scale * math.sqrt(2))
    p = 0.5 * (torch.erfc((d - 0.5) * c) - torch.erfc((d + 0.5) * c))
    return -torch.log2(p.clamp_min(1e-9))


class RDModel(nn.Module):
    """The whole codec for training: gains, transforms and both entropy models. z has a per-channel
    Laplace density with a learned location and scale (its bits are a few per cent of the file)."""

    def __init__(self, cfg: RDNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        q = len(cfg.lambdas)
        self.g_a, self.g_s = Analysis(cfg), Synthesis(cfg)
        self.h_a, self.h_s = HyperAnalysis(cfg), HyperSynthesis(cfg)
        self.gain = nn.Parameter(torch.ones(q, cfg.m))
        self.inv_gain = nn.Parameter(torch.ones(q, cfg.m))
        self.z_gain = nn.Parameter(torch.ones(q, cfg.z))
        self.z_inv_gain = nn.Parameter(torch.ones(q, cfg.z))
        self.z_loc = nn.Parameter(torch.zeros(cfg.z))
        self.z_log_scale = nn.Parameter(torch.zeros(cfg.z))

    def gains(self, quality: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(batch, channels, 1, 1) gains for each item's quality in [0, Q-1]: neighbouring gains
        interpolated geometrically (their absolute values, so a gain never crosses zero)."""
        q = quality.clamp(0, len(self.cfg.lambdas) - 1)
        lo = q.floor().long().clamp(max=len(self.cfg.lambdas) - 2)
        t = (q - lo)[:, None]

        def mix(table):
            a, b = table.abs()[lo] + 1e-4, table.abs()[lo + 1] + 1e-4
            return (a ** (1 - t) * b**t)[:, :, None, None]

        return mix(self.gain), mix(self.inv_gain), mix(self.z_gain), mix(self.z_inv_gain)

    def z_bits(self, z_hat: torch.Tensor) -> torch.Tensor:
        loc = self.z_loc.view(1, -1, 1, 1)
        b = self.z_log_scale.exp().view(1, -1, 1, 1)

        def cdf(v):
            return 0.5 + 0.5 * torch.sign(v - loc) * (1 - torch.exp(-(v - loc).abs() / b))

        p = cdf(z_hat + 0.5) - cdf(z_hat - 0.5)
        return -torch.log2(p.clamp_min(1e-9))

    @torch.no_grad()
    def code(self, x: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """What the codec sends and decodes: (reconstruction in [0, 1], bits per item by the entropy
        models, the integers sent: y's residuals around its mean, their scales, and z), y rounded
        around its mean and z rounded."""
        g, ig, zg, zig = self.gains(quality)
        y = self.g_a(x) * g
        z_hat = torch.round(self.h_a(y) * zg)
        mean, scale = self.h_s(z_hat * zig)
        y_hat = torch.round(y - mean) + mean
        bits = gaussian_bits(y_hat, mean, scale).flatten(1).sum(1) + self.z_bits(z_hat).flatten(1).sum(1)
        return self.g_s(y_hat * ig).clamp(0, 1), bits, (y_hat - mean, scale, z_hat)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass -> (reconstruction, bits of y, bits of z), each bits tensor per value.
        Rates see additive uniform noise; g_s sees y rounded around its mean (straight-through),
        which trains it on the values it will decode."""
        g, ig, zg, zig = self.gains(quality)
        y = self.g_a(x) * g
        z = self.h_a(y) * zg
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = z + (torch.round(z) - z).detach()
        mean, scale = self.h_s(z_hat * zig)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_hat = mean + (y - mean) + (torch.round(y - mean) - (y - mean)).detach()
        return self.g_s(y_hat * ig), gaussian_bits(y_noisy, mean, scale), self.z_bits(z_noisy)
