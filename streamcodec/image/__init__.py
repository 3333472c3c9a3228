"""The public image API: `compress(image, bpp=0.3) -> bytes` and `decompress(data) -> uint8 H x W x 3`.

    import streamcodec.image
    data = streamcodec.image.compress("photo.png", bpp=0.3)   # path, PIL image or numpy array
    rgb = streamcodec.image.decompress(data)                  # numpy uint8, same size as the input
"""

from pathlib import Path

import numpy as np

from streamcodec.errors import MissingExtraError

try:
    import torch  # noqa: F401 - the image networks run in torch for now
except ImportError as exc:
    raise MissingExtraError("the image codec needs torch until its numpy runtime ships: "
                            "pip install 'streamcodec[image]'") from exc

from streamcodec.bitstream import read_container
from streamcodec.core.search import LossFn
from streamcodec.image.codec import DEFAULT_BPP, DEFAULT_ITERS, TILE, decode_image, encode_image
from streamcodec.image.io import MAX_PIXELS, save_image, to_rgb
from streamcodec.image.model import DEFAULT_MODEL, ImageModel, load_model

__all__ = ["compress", "decompress", "info", "to_rgb", "save_image", "load_model", "ImageModel", "DEFAULT_BPP",
           "DEFAULT_ITERS", "DEFAULT_MODEL", "MAX_PIXELS", "TILE"]


def _model(model) -> ImageModel:
    return model if isinstance(model, ImageModel) else load_model(model or DEFAULT_MODEL)


def compress(image, bpp: float | None = None, iters: int = DEFAULT_ITERS, deadline: float | None = None,
             model=None, loss_fn: LossFn | None = None) -> bytes:
    """An image (path, PIL image or array) -> a streamcodec image container (.sci bytes).

    bpp: target bits per pixel of the whole file (default 0.3); the rate controller sends as many
    latent channels as fit. iters: latent search iterations (0 = encoder only); deadline: seconds
    the search may take in all. loss_fn: (target, output) -> loss per item, default
    (1 - MS-SSIM) + alpha * MSE with the model's alpha.
    """
    return encode_image(to_rgb(image), _model(model), bpp, iters, deadline, loss_fn)


def decompress(data: bytes | str | Path, model=None) -> np.ndarray:
    """Image container bytes (or a path to a .sci file) -> uint8 H x W x 3."""
    return decode_image(read_container(data), _model(model))


def info(source: bytes | str | Path) -> dict:
    """Size, tiles, latent channels and bits per pixel of an image container."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    c, size = read_container(data), len(data)
    width, height = int(c.meta.get("width", 0)), int(c.meta.get("height", 0))
    return {"kind": c.kind, "model_id": c.model_id.hex(), "width": width, "height": height,
            "tiles": len(c.packets), "channels": sorted({p.shape[0] for p in c.packets if p.shape}),
            "bytes": size, "bpp": 8 * size / max(width * height, 1), "damaged_bytes": sum(d.length for d in c.damage)}
