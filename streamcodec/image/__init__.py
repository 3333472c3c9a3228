"""The public image API: `compress(image, bpp=0.3) -> bytes` and `decompress(data) -> uint8 H x W x 3`.

    import streamcodec.image
    data = streamcodec.image.compress("photo.png", bpp=0.3)   # path, PIL image or numpy array
    rgb = streamcodec.image.decompress(data)                  # numpy uint8, same size as the input

Two models: image-rd, the rate-distortion model (numpy only, image file v3), and image-photo, the
BPGAN model with a latent search (torch, `pip install 'streamcodec[image]'`, image file v1).
`decompress` picks the model by the file's format.
"""

from pathlib import Path

import numpy as np

from streamcodec.bitstream.image_file import is_image_file, read_image_file
from streamcodec.defaults import IMAGE_BPP, IMAGE_ITERS, IMAGE_MODEL, IMAGE_RD_ITERS, IMAGE_RD_MODEL
from streamcodec.errors import MissingExtraError
from streamcodec.image import rd_codec
from streamcodec.image.io import MAX_PIXELS, save_image, to_rgb
from streamcodec.image.rd_model import RDImageModel, is_rd_model, load_rd_model

DEFAULT_MODEL, DEFAULT_BPP, DEFAULT_ITERS = IMAGE_MODEL, IMAGE_BPP, IMAGE_ITERS
__all__ = ["compress", "decompress", "info", "to_rgb", "save_image", "load_model", "load_rd_model", "ImageModel",
           "RDImageModel", "DEFAULT_BPP", "DEFAULT_ITERS", "DEFAULT_MODEL", "MAX_PIXELS"]


def _photo():
    """The torch side (image-photo): imported only when that model is used."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("the image-photo model runs in torch: pip install 'streamcodec[image]', "
                                f"or use the numpy model with model={IMAGE_RD_MODEL!r}") from exc
    from streamcodec.image import codec, model

    return codec, model


def __getattr__(name: str):
    if name in ("load_model", "ImageModel", "TILE"):
        codec, model = _photo()
        return getattr(codec if name == "TILE" else model, name)
    raise AttributeError(f"module 'streamcodec.image' has no attribute {name!r}")


def _read(data: bytes | str | Path) -> bytes:
    return Path(data).read_bytes() if isinstance(data, (str, Path)) else bytes(data)


def compress(image, bpp: float | None = None, iters: int | None = None, deadline: float | None = None,
             model=None, loss_fn=None) -> bytes:
    """An image (path, PIL image or array) -> image file bytes (.sci) of at most bpp bits per pixel.

    bpp: target bits per pixel of the whole file (default 0.3). With image-rd the rate control
    picks the highest quality that fits. iters and deadline steer the latent search (iterations,
    0 = encoder only; default 24 for image-photo, 1 for image-rd, whose first iterate is its best:
    benchmarks/results/image_rd_search.md; seconds in all); loss_fn ((target, output) -> loss per
    item) is image-photo's."""
    if isinstance(model, (str, Path, type(None))) and is_rd_model(str(model or DEFAULT_MODEL)):
        model = load_rd_model(str(model or DEFAULT_MODEL))
    if isinstance(model, RDImageModel):
        return rd_codec.encode_rd(to_rgb(image), model, DEFAULT_BPP if bpp is None else bpp,
                                  IMAGE_RD_ITERS if iters is None else iters, deadline)
    codec, photo = _photo()
    m = model if isinstance(model, photo.ImageModel) else photo.load_model(model or DEFAULT_MODEL)
    return codec.encode_image(to_rgb(image), m, bpp, DEFAULT_ITERS if iters is None else iters, deadline, loss_fn)


def decompress(data: bytes | str | Path, model=None) -> np.ndarray:
    """Image file bytes (or a path to a .sci file) -> uint8 H x W x 3."""
    data = _read(data)
    if is_image_file(data):
        m = model if isinstance(model, RDImageModel) else load_rd_model(str(model or IMAGE_RD_MODEL))
        return rd_codec.decode_rd(data, m)
    from streamcodec.bitstream import read_container

    codec, photo = _photo()
    m = model if isinstance(model, photo.ImageModel) else photo.load_model(model or IMAGE_MODEL)
    return codec.decode_image(read_container(data), m)


def info(source: bytes | str | Path) -> dict:
    """Format, size, tiles and bits per pixel of an image file."""
    data = _read(source)
    if is_image_file(data):
        f = read_image_file(data)
        width, height = int(f.meta.get("width", 0)), int(f.meta.get("height", 0))
        return {"kind": "image", "format": 3, "model_id": f.model_id.hex(), "width": width, "height": height,
                "tiles": len(f.tiles), "quality": f.meta.get("quality"), "bytes": len(data),
                "bpp": 8 * len(data) / max(width * height, 1), "damaged_bytes": 0}
    from streamcodec.bitstream import read_container

    c = read_container(data)
    width, height = int(c.meta.get("width", 0)), int(c.meta.get("height", 0))
    return {"kind": c.kind, "format": 1, "model_id": c.model_id.hex(), "width": width, "height": height,
            "tiles": len(c.packets), "channels": sorted({p.shape[0] for p in c.packets if p.shape}),
            "bytes": len(data), "bpp": 8 * len(data) / max(width * height, 1),
            "damaged_bytes": sum(d.length for d in c.damage)}
