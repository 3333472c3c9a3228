"""What the image API accepts, turned into one form: uint8 H x W x 3 RGB. Greyscale is replicated
to three channels, an alpha channel is dropped with a warning, and anything unusable raises an
ImageInputError that says what to do."""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from streamcodec.errors import ImageInputError, StreamcodecWarning

MAX_PIXELS = 8192 * 8192  # the whole image is held in memory (3 bytes per pixel); tiles bound the rest


def _check_size(height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise ImageInputError(f"image of {width}x{height} pixels is over the limit of {MAX_PIXELS} pixels "
                              f"(8192x8192): downscale it or split it into parts")


def _open(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return _from_pil(im)
    except FileNotFoundError as exc:
        raise ImageInputError(f"no such image file: {path}") from exc
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"cannot read image file {path}: {exc}") from exc


def _from_pil(im: Image.Image) -> np.ndarray:
    _check_size(im.height, im.width)  # before decoding the pixels
    if im.mode.startswith("I"):  # 16-bit greyscale
        return np.asarray(im).astype(np.int64).clip(0, 65535).astype(np.uint16)
    if im.mode == "P":  # palette: expand, keeping transparency as alpha
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, 1-bit, float ...
    return np.asarray(im)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise ImageInputError(f"integer image values must lie in 0..255 (got {a.min()}..{a.max()}); "
                                  "pass uint16 for 16-bit images")
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageInputError("image holds NaN or infinite values")
        if a.min() < 0 or a.max() > 1:
            raise ImageInputError(f"float image values must lie in [0, 1] (got {a.min():.3g}..{a.max():.3g}); "
                                  "divide 8-bit values by 255")
        return np.round(a * 255).astype(np.uint8)
    raise ImageInputError(f"unsupported image dtype {a.dtype}: use uint8, uint16 or float in [0, 1]")


def to_rgb(image) -> np.ndarray:
    """A path, PIL image or array (H x W, H x W x 1..4; uint8, uint16, bool or float in [0, 1])
    -> contiguous uint8 H x W x 3."""
    if isinstance(image, (str, Path)):
        a = _open(Path(image))
    elif isinstance(image, Image.Image):
        a = _from_pil(image)
    elif isinstance(image, np.ndarray):
        a = image
    else:
        raise ImageInputError(f"cannot compress a {type(image).__name__}: pass a path, a PIL image or a numpy array")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        hint = " (channels first? use np.moveaxis(image, 0, -1))" if a.ndim == 3 and a.shape[0] in (1, 3, 4) else ""
        raise ImageInputError(f"image array has shape {a.shape}; expected H x W or H x W x C with C in 1..4{hint}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageInputError(f"image is empty ({a.shape[1]}x{a.shape[0]} pixels)")
    _check_size(a.shape[0], a.shape[1])
    if a.shape[2] in (2, 4):
        warnings.warn("the image's alpha channel is dropped: streamcodec codes colour only", StreamcodecWarning,
                      stacklevel=3)
        a = a[:, :, : a.shape[2] - 1]
    a = _to_uint8(a)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def save_image(rgb: np.ndarray, path) -> None:
    """Write uint8 RGB; the format follows the file name (PNG keeps every decoded pixel)."""
    try:
        Image.fromarray(rgb).save(path)
    except (ValueError, KeyError) as exc:
        raise ImageInputError(f"cannot write {path}: {exc} (use a .png, .webp or .jpg name)") from exc
