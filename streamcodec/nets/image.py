"""Image networks: encoder E (RGB -> latent map at 1/16 resolution), generator G (latent -> RGB) and
a patch discriminator D (training only).

Images are (batch, 3, H, W) in [0, 1] with H and W multiples of STRIDE (the codec pads and crops).
Both networks are fully convolutional. G is what the latent search back-propagates through, so its
width falls as resolution rises: most of its work happens at 1/16 and 1/8 resolution, and each
2x upsampling is a 3x3 convolution followed by a pixel shuffle. GDN (E) and its inverse (G) are the
nonlinearity of choice for learned compression: cheap (a 1x1 convolution) and they decorrelate
the latent better than a pointwise activation at this size.

The latent channels are ordered by importance (training drops a random tail of them), so a rate
controller can send only the first k channels and G fills the rest with zeros.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

from streamcodec.nets.discriminator import FeatureDiscriminator

STRIDE = 16


@dataclass(frozen=True)
class ImageNetConfig:
    latent_channels: int = 32
    widths: tuple[int, ...] = (192, 128, 64, 32)  # G at 1/16, 1/8, 1/4, 1/2 (E mirrors it)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ImageNetConfig":
        return cls(latent_channels=d["latent_channels"], widths=tuple(d["widths"]))


class GDN(nn.Module):
    """Generalised divisive normalisation, y = x / sqrt(beta + gamma * x^2) (inverse: multiply).
    beta and gamma are kept positive by squaring their parameters. A parameter started at exactly
    0 never moves (the square's gradient is 0 there), so `off_init` starts the cross-channel terms
    off zero; at 0 the layer stays a per-channel normalisation for good."""

    def __init__(self, ch: int, inverse: bool = False, gamma_init: float = 0.3, off_init: float = 0.0) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(ch))
        eye = torch.eye(ch)
        self.gamma = nn.Parameter((gamma_init * eye + off_init * (1 - eye)).view(ch, ch, 1, 1))

    def forward(self, x):
        norm = F.conv2d(x * x, self.gamma.pow(2), self.beta.pow(2) + 1e-6)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class _Res(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(ch, ch, 1))

    def forward(self, x):
        return x + self.body(x)


def _up(a: int, b: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(a, 4 * b, 3, padding=1), nn.PixelShuffle(2))


class Encoder(nn.Module):
    def __init__(self, cfg: ImageNetConfig) -> None:
        super().__init__()
        w = cfg.widths[::-1]  # 1/2 ... 1/16
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 5, stride=2, padding=2), GDN(w[0])]
        for a, b in zip(w, w[1:]):
            layers += [nn.Conv2d(a, b, 5, stride=2, padding=2), GDN(b)]
        layers += [_Res(w[-1]), nn.Conv2d(w[-1], cfg.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x - 0.5)


class Generator(nn.Module):
    def __init__(self, cfg: ImageNetConfig) -> None:
        super().__init__()
        w = cfg.widths
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, w[0], 3, padding=1), _Res(w[0])]
        for a, b in zip(w, w[1:]):
            layers += [_up(a, b), GDN(b, inverse=True)]
        layers += [_up(w[-1], 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z) + 0.5


class Discriminator(FeatureDiscriminator):
    """Patch discriminator on RGB (training only)."""

    def __init__(self, width: int = 32) -> None:
        chans = (3, width, 2 * width, 4 * width, 4 * width)
        super().__init__([nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(chans, chans[1:])],
                         nn.Conv2d(chans[-1], 1, 3, padding=1))


def build(cfg: ImageNetConfig) -> tuple[nn.Module, nn.Module]:
    return Encoder(cfg), Generator(cfg)
