"""The shipped image model: encoder E, generator G, 64 quantiser levels, Huffman code and the
search loss weight alpha, loaded from safetensors. `load_model("image-photo")` finds it inside
the installed package."""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from streamcodec.core.huffman import HuffmanCode
from streamcodec.nets.assets import ModelError, read_assets
from streamcodec.nets.image import ImageNetConfig, build
from streamcodec.defaults import IMAGE_MODEL

DEFAULT_MODEL = IMAGE_MODEL


@dataclass
class ImageModel:
    name: str
    config: ImageNetConfig
    encoder: torch.nn.Module
    generator: torch.nn.Module
    levels: np.ndarray  # float32, ascending
    code: HuffmanCode
    alpha: float  # MSE weight of the search loss (1 - MS-SSIM) + alpha * MSE
    model_id: bytes


@lru_cache(maxsize=4)
def load_model(name: str = DEFAULT_MODEL) -> ImageModel:
    assets = read_assets(name)
    try:
        cfg = ImageNetConfig.from_dict(assets.config["net"])
        encoder, generator = build(cfg)
        assets.load_into("encoder", encoder)
        assets.load_into("generator", generator)
        generator.requires_grad_(False)  # the search differentiates G with respect to its input only
        levels, lengths = assets.quantiser()
        code = HuffmanCode(lengths)
        alpha = float(assets.config["alpha"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelError(f"image model {name!r} is damaged or incompatible: {exc}") from exc
    return ImageModel(name, cfg, encoder, generator, levels, code, alpha, assets.model_id)
