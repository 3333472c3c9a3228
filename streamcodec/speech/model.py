"""The shipped speech model: encoder E, generator G, quantiser levels and Huffman code, loaded from
safetensors (never pickle). `load_model("speech-2k")` finds the model inside the installed package
(models/ in a checkout is the same folder, mapped to streamcodec.models)."""

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load

from streamcodec.core.huffman import HuffmanCode
from streamcodec.dsp.params import BLOCK_FRAMES
from streamcodec.errors import StreamcodecError
from streamcodec.nets.speech import SpeechNetConfig, build, latent_shape

DEFAULT_MODEL = "speech-2k"


class ModelError(StreamcodecError):
    """A model could not be found or loaded."""


@dataclass
class SpeechModel:
    name: str
    config: SpeechNetConfig
    encoder: torch.nn.Module
    generator: torch.nn.Module
    levels: torch.Tensor
    code: HuffmanCode
    model_id: bytes  # first 4 bytes of the SHA-256 of model.safetensors

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config, BLOCK_FRAMES)


def model_dir(name: str) -> Path:
    path = Path(name)
    if path.is_dir():
        return path
    base = resources.files("streamcodec.models")
    candidate = Path(str(base.joinpath(name)))
    if not (candidate / "model.safetensors").exists():
        raise ModelError(f"no speech model named {name!r}: pass a folder holding model.safetensors and config.json")
    return candidate


def from_bytes(name: str, weights: bytes, config: dict) -> SpeechModel:
    """Build a SpeechModel from the bytes of model.safetensors and its parsed config.json."""
    try:
        tensors = load(weights)
        cfg = SpeechNetConfig(**config["net"])
        encoder, generator = build(cfg)
        encoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")})
        generator.load_state_dict({k[10:]: v for k, v in tensors.items() if k.startswith("generator.")})
        levels = tensors["levels"].float()
        code = HuffmanCode(tensors["huffman_lengths"].numpy())
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelError(f"speech model {name!r} is damaged or incompatible: {exc}") from exc
    if code.n_symbols != len(levels):
        raise ModelError(f"speech model {name!r}: {len(levels)} levels but a Huffman code for {code.n_symbols}")
    encoder.eval()
    generator.eval()
    return SpeechModel(name, cfg, encoder, generator, levels, code, hashlib.sha256(weights).digest()[:4])


@lru_cache(maxsize=4)
def load_model(name: str = DEFAULT_MODEL) -> SpeechModel:
    folder = model_dir(name)
    try:
        weights = (folder / "model.safetensors").read_bytes()
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read speech model in {folder}: {exc}") from exc
    return from_bytes(name, weights, config)
