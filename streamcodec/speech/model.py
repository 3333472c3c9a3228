"""The shipped speech model: encoder E, generator G, quantiser levels and Huffman code, loaded from
safetensors (never pickle) into the numpy networks of nets/runtime.py: coding and decoding speech
never imports torch. `load_model("speech-2k")` finds the model inside the installed package
(models/ in a checkout is the same folder, mapped to streamcodec.models)."""

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from streamcodec.core.huffman import HuffmanCode
from streamcodec.defaults import SPEECH_MODEL
from streamcodec.dsp.params import BLOCK_FRAMES
from streamcodec.nets import runtime
from streamcodec.nets.assets import Assets, ModelError, Part, read_assets, read_part
from streamcodec.nets.speech_config import EnhancerConfig, ReceiverConfig, SpeechNetConfig, latent_shape

DEFAULT_MODEL = SPEECH_MODEL


@dataclass
class SpeechModel:
    name: str
    config: SpeechNetConfig
    encoder: runtime.Net  # E, or its copy tuned to start the search where the model ships one (encoder.safetensors)
    generator: runtime.Net  # G, with a vector-Jacobian product; `decoder` is what the search goes through
    levels: np.ndarray  # float32, ascending
    code: HuffmanCode
    model_id: bytes  # what its encoders write (encoder_id)
    level_target_db: float  # the frame level the networks were trained at (dsp/level.py)
    base_id: bytes  # first 4 bytes of the SHA-256 of model.safetensors (E, G, the levels and the code)
    # The generator receivers decode with and the search goes through: G's copy tuned on the
    # search's latents where the model ships one (decoder.safetensors, train/decoder.py), else G.
    decoder: runtime.Net

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config, BLOCK_FRAMES)

    @functools.cached_property
    def enhancer(self) -> runtime.Net | None:
        """Field log-mel -> clean estimate (SpeechEncoder's denoise), loaded when an encoder first
        asks for it: a receiver never does."""
        return load_enhancer(self.name)

    @functools.cached_property
    def receiver(self) -> "ReceiverNet | None":
        """The receiver's larger decoder (train/receiver.py), loaded when a decoder first asks for
        it (an encoder never does), None where the model ships none. Only receivers run it (the
        search goes through `decoder`), so the model id does not depend on it."""
        return load_receiver(self.name, self.config, float(self.levels[fill_level(self)]))

    def decodes(self, model_id: bytes) -> bool:
        """Whether packets labelled `model_id` are this model's: what its encoders write, or (where
        it ships a receiver's generator) packets searched through G alone, as encoders before it
        did, which that generator decodes as well as G does."""
        return bytes(model_id) in (self.model_id, self.base_id)


def fill_level(model: SpeechModel) -> int:
    """The level index put in latent steps a short frame does not send: the one nearest zero."""
    return int(np.argmin(np.abs(model.levels)))


def load_enhancer(name: str) -> runtime.Net | None:
    """The enhancer shipped beside a model (train/enhancer.py), None where there is none. It only
    changes what the encoder sends, so a model's id does not depend on it."""
    part = read_part(name, "enhancer")
    if part is None:
        return None
    try:
        return runtime.enhancer(part.tensors, EnhancerConfig.from_dict(part.config["net"]).dilations)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"the enhancer of speech model {name!r} is damaged or incompatible: {exc}") from exc


@dataclass
class ReceiverNet:
    """The receiver's decoder: a frame's latent (n, channels, steps), with the last `context`
    latent steps of the frame before in front (n, channels, >= context; None where it was lost,
    silent or is not there: `fill`, the value of unsent steps), -> the frame's log-mel."""

    net: runtime.Net
    context: int
    stride: int  # frames per latent step
    fill: float

    def __call__(self, z: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        if self.context:
            if before is None:
                before = np.full((*z.shape[:2], self.context), self.fill, np.float32)
            z = np.concatenate([before[..., -self.context :], z], axis=2)
        return np.ascontiguousarray(self.net(z)[..., self.stride * self.context :])


def load_receiver(name: str, cfg: SpeechNetConfig, fill: float) -> ReceiverNet | None:
    part = read_part(name, "receiver")
    if part is None:
        return None
    try:
        if SpeechNetConfig(**part.config["net"]) != cfg:
            raise ValueError(f"it was trained for a {part.config['net']} network, the model is {cfg}")
        rc = ReceiverConfig.from_dict(part.config["receiver"])
        return ReceiverNet(runtime.generator(part.tensors, rc.dilations, prefix="net."), rc.context, cfg.time_stride,
                           fill)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"the receiver decoder of speech model {name!r} is damaged or incompatible: {exc}") from exc


def from_assets(assets: Assets) -> SpeechModel:
    try:
        cfg = SpeechNetConfig(**assets.config["net"])
        if cfg.arch != "conv1d":
            raise ValueError(f"the codec runs conv1d networks, this model is {cfg.arch}")
        encoder = runtime.encoder(assets.tensors)
        generator = runtime.generator(assets.tensors, cfg.dilations)
        levels, lengths = assets.quantiser()
        code = HuffmanCode(lengths)
        target = float(assets.config["level_target_db"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelError(f"speech model {assets.name!r} is damaged or incompatible: {exc}") from exc
    part = read_part(assets.name, "decoder")
    decoder = generator if part is None else load_net(assets.name, "decoder", part, cfg)
    # E's copy tuned to start the search (train/encoder.py): only where the search starts changes,
    # so the model id does not depend on it
    tuned = read_part(assets.name, "encoder")
    if tuned is not None:
        encoder = load_net(assets.name, "encoder", tuned, cfg)
    return SpeechModel(assets.name, cfg, encoder, generator, levels, code, encoder_id(assets.model_id, part),
                       target, assets.model_id, decoder)


def load_net(name: str, kind: str, part: Part, cfg: SpeechNetConfig) -> runtime.Net:
    """A copy of E or G (`kind` "encoder" or "decoder") shipped beside a model, fine-tuned from
    the model's own, checked to fit the model's network."""
    try:
        if SpeechNetConfig(**part.config["net"]) != cfg:
            raise ValueError(f"it was trained for a {part.config['net']} network, the model is {cfg}")
        if kind == "encoder":
            return runtime.encoder(part.tensors, prefix="net.")
        return runtime.generator(part.tensors, cfg.dilations, prefix="net.")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"the {kind} of speech model {name!r} is damaged or incompatible: {exc}") from exc


def encoder_id(base_id: bytes, decoder: Part | None) -> bytes:
    """The id a model's encoders write: that of model.safetensors, or, where a receiver's generator
    ships beside it, the first 4 bytes of the SHA-256 of that id and decoder.safetensors. The
    encoder searches through that generator (a receiver decoding such packets with G instead loses
    0.45 PESQ-WB), so a receiver without it, or with another one, must refuse them."""
    return base_id if decoder is None else hashlib.sha256(base_id + decoder.data).digest()[:4]


def resolve_model(model) -> SpeechModel:
    """A SpeechModel as given, or loaded by name or folder (None: the default model)."""
    return model if isinstance(model, SpeechModel) else load_model(model or DEFAULT_MODEL)


@functools.lru_cache(maxsize=4)
def load_model(name: str = DEFAULT_MODEL) -> SpeechModel:
    return from_assets(read_assets(name))
