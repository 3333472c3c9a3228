"""The speech networks' configurations, apart from torch: the numpy runtime (nets/runtime.py) and
the training definitions (nets/speech.py) both read them."""

from dataclasses import asdict, dataclass

from streamcodec.dsp.params import N_MELS

LEAKY_SLOPE = 0.2  # the negative slope of every LeakyReLU in the speech networks


@dataclass(frozen=True)
class SpeechNetConfig:
    arch: str = "conv1d"  # "conv1d" or "conv2d"
    latent_channels: int = 16
    width: int = 256
    blocks_per_stage: int = 2

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dilations(self) -> tuple[int, ...]:
        """Of G's residual blocks in each stage."""
        return (1, 2)[: self.blocks_per_stage]

    @property
    def time_stride(self) -> int:
        return 4 if self.arch == "conv1d" else 32


@dataclass(frozen=True)
class EnhancerConfig:
    width: int = 256
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)  # 40 STFT frames (0.32 s) of context either side

    def to_dict(self) -> dict:
        return {"width": self.width, "dilations": list(self.dilations)}

    @classmethod
    def from_dict(cls, d: dict) -> "EnhancerConfig":
        return cls(int(d["width"]), tuple(int(v) for v in d["dilations"]))


@dataclass(frozen=True)
class ReceiverConfig:
    """The receiver's decoder (issue 32): the receiver's generator with more residual blocks per
    stage, which also sees the last `context` latent steps of the frame before (the level indices a
    receiver already has: no look-ahead, no delay)."""

    dilations: tuple[int, ...] = (1, 2, 4, 8)  # of each stage's blocks; the first ones are G's
    context: int = 8  # latent steps of the previous frame in front of the frame's own (0: none)

    def to_dict(self) -> dict:
        return {"dilations": list(self.dilations), "context": self.context}

    @classmethod
    def from_dict(cls, d: dict) -> "ReceiverConfig":
        return cls(tuple(int(v) for v in d["dilations"]), int(d["context"]))


def latent_shape(cfg: SpeechNetConfig, frames: int) -> tuple[int, ...]:
    if cfg.arch == "conv1d":
        return (cfg.latent_channels, frames // cfg.time_stride)
    return (cfg.latent_channels, N_MELS // 32, frames // cfg.time_stride)
