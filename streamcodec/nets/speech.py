"""Speech networks: encoder E (log-mel block -> latent), generator G (latent -> log-mel block),
discriminator D (training only) and the optional enhancer (field log-mel -> clean log-mel estimate,
in front of E and the search).

Log-mel blocks are (batch, 128 mels, frames) in [-1, 1]. Both E and G are fully convolutional in
time, so they train on crops shorter than the 128-frame block the codec uses. G is what the
latent search back-propagates through once per step, so it is small: two variants are here to
compare quality per millisecond (benchmarks/speech_nets.py):

- "conv1d": the 128 mel bands are channels; the latent is (16, frames / 4).
- "conv2d": mel x time is an image; the latent is (32, 4, frames / 32), upsampled 2x per stage.
"""

import torch
from torch import nn

from streamcodec.dsp.params import N_MELS
from streamcodec.nets.discriminator import FeatureDiscriminator
from streamcodec.nets.speech_config import LEAKY_SLOPE, EnhancerConfig, SpeechNetConfig, latent_shape  # noqa: F401 (re-exported)


def _act() -> nn.Module:
    return nn.LeakyReLU(LEAKY_SLOPE)


class _Res1d(nn.Module):
    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(_act(), nn.Conv1d(ch, ch, 3, padding=dilation, dilation=dilation),
                                  _act(), nn.Conv1d(ch, ch, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class _Res2d(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_act(), nn.Conv2d(ch, ch, 3, padding=1), _act(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Generator1d(nn.Module):
    """`dilations`: those of the residual blocks of each stage (default: G's, cfg.blocks_per_stage
    of 1, 2); the receiver's decoder (ReceiverConfig) has more."""

    def __init__(self, cfg: SpeechNetConfig, dilations: tuple[int, ...] | None = None) -> None:
        super().__init__()
        w = cfg.width
        dilations = cfg.dilations if dilations is None else dilations
        layers: list[nn.Module] = [nn.Conv1d(cfg.latent_channels, w, 3, padding=1)]
        layers += [_Res1d(w, d) for d in dilations]
        for _ in range(2):  # two 2x upsampling stages: latent rate -> frame rate
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(w, w, 3, padding=1)]
            layers += [_Res1d(w, d) for d in dilations]
        layers += [_act(), nn.Conv1d(w, N_MELS, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return torch.tanh(self.net(z))


def deepen(src: Generator1d, dst: Generator1d) -> Generator1d:
    """Start `dst`, a generator with more residual blocks per stage than `src`, as `src`: every
    layer of src copied to its place, the blocks src lacks (after its own in each stage) made the
    identity by a zero last convolution, so training starts from src's output and can only add."""

    def stages(g: Generator1d) -> list[list[nn.Module]]:
        out: list[list[nn.Module]] = [[]]
        for layer in g.net:
            if isinstance(layer, nn.Upsample):
                out.append([])
            elif list(layer.parameters()):  # not the activations
                out[-1].append(layer)
        return out

    for a, b in zip(stages(src), stages(dst), strict=True):
        plain = [[m for m in s if not isinstance(m, _Res1d)] for s in (a, b)]
        blocks = [[m for m in s if isinstance(m, _Res1d)] for s in (a, b)]
        for x, y in zip(*plain, strict=True):
            y.load_state_dict(x.state_dict())
        for x, y in zip(*blocks):
            y.load_state_dict(x.state_dict())
        for y in blocks[1][len(blocks[0]):]:
            nn.init.zeros_(y.body[3].weight)
            nn.init.zeros_(y.body[3].bias)
    return dst


class Encoder1d(nn.Module):
    def __init__(self, cfg: SpeechNetConfig) -> None:
        super().__init__()
        w = cfg.width
        layers: list[nn.Module] = [nn.Conv1d(N_MELS, w, 3, padding=1), _Res1d(w)]
        for _ in range(2):
            layers += [_act(), nn.Conv1d(w, w, 4, stride=2, padding=1), _Res1d(w)]
        layers += [_act(), nn.Conv1d(w, cfg.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


_CH2D = (128, 96, 64, 32, 16)  # channels from 4 x (T/32) up to 128 x T


class Generator2d(nn.Module):
    def __init__(self, cfg: SpeechNetConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, _CH2D[0], 3, padding=1), _Res2d(_CH2D[0])]
        for c_in, c_out in zip(_CH2D[:-1], _CH2D[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1), _Res2d(c_out)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), _act(), nn.Conv2d(_CH2D[-1], 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return torch.tanh(self.net(z)).squeeze(1)


class Encoder2d(nn.Module):
    def __init__(self, cfg: SpeechNetConfig) -> None:
        super().__init__()
        ch = _CH2D[::-1]
        layers: list[nn.Module] = [nn.Conv2d(1, ch[0], 3, padding=1)]
        for c_in, c_out in zip(ch, ch[1:] + (ch[-1],)):
            layers += [_act(), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
        layers += [_Res2d(ch[-1]), _act(), nn.Conv2d(ch[-1], cfg.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.unsqueeze(1))


class Discriminator(FeatureDiscriminator):
    """Conv1d discriminator over mel frames (training only)."""

    def __init__(self, width: int = 128) -> None:
        chans = (N_MELS, width, width, 2 * width, 2 * width)
        super().__init__([nn.Conv1d(a, b, 5, stride=2 if i else 1, padding=2)
                          for i, (a, b) in enumerate(zip(chans, chans[1:]))], nn.Conv1d(chans[-1], 1, 3, padding=1))


class Enhancer(nn.Module):
    """Noisy, reverberant or band-limited log-mel (batch, 128, frames), level-normalised as the
    codec does -> an estimate of the clean speech. A residual on its input, with the last layer
    zero at the start, so it begins as the identity and clean speech passes almost untouched."""

    def __init__(self, cfg: EnhancerConfig) -> None:
        super().__init__()
        w = cfg.width
        out = nn.Conv1d(w, N_MELS, 3, padding=1)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(nn.Conv1d(N_MELS, w, 3, padding=1), *[_Res1d(w, d) for d in cfg.dilations], _act(), out)

    def forward(self, x):
        return torch.clamp(x + self.net(x), -1.0, 1.0)


def build(cfg: SpeechNetConfig) -> tuple[nn.Module, nn.Module]:
    """(encoder, generator) for a config."""
    if cfg.arch == "conv1d":
        return Encoder1d(cfg), Generator1d(cfg)
    if cfg.arch == "conv2d":
        return Encoder2d(cfg), Generator2d(cfg)
    raise ValueError(f"unknown speech network architecture {cfg.arch!r}")


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (convolutions only, which dominate)."""
    total = 0

    def hook(layer, _inp, out):
        nonlocal total
        kernel = layer.weight[0].numel()  # in_channels / groups * kernel elements
        total += out.numel() * kernel

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    with torch.no_grad():
        module(*inputs)
    for h in handles:
        h.remove()
    return total
