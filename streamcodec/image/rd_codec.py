"""Image coding with the rate-distortion model (image/rd_model.py), numpy only.

An image is cut into tiles of at most TILE x TILE pixels, each padded to the model's stride of 64
by repeating its edge pixels. Per tile: y = g_a(x) (computed once), then for a quality q the gains
scale y, z = round(h_a(y)) is coded with one table per channel, h_s(z) gives each value of y a
mean and a scale, y is sent as round(y - mean), coded with the table of its scale's bucket
(core/context_code.py). Rate control bisects the one quality of the file until its whole size,
header and framing included, is the largest that fits the requested bits per pixel: the file
never exceeds it. Only analysis runs once; each bisection step costs the two small hyper
transforms and the coder. The transforms are a few large matrix products, so while a call runs
numpy's BLAS gets the threads the library was configured with (threads.py keeps it at one
otherwise, for the speech codec's many small ones).
"""

import functools

import numpy as np
from threadpoolctl import threadpool_limits

from streamcodec import threads
from streamcodec.bitstream.image_file import read_image_file, write_image_file
from streamcodec.core import context_code
from streamcodec.core.context_code import buckets_of
from streamcodec.errors import BitstreamError, ImageInputError
from streamcodec.image.io import MAX_PIXELS
from streamcodec.image import rd_search
from streamcodec.image.rd_model import SCALE_MIN, RDImageModel

TILE = 1024
STRIDE = 64
BISECT_STEPS = 12  # quality resolution: the trained range (10 for 11 qualities) / 2^12
SEARCH_ROUNDS = 3  # searches after the probe that re-pick the quality for the bits it saves
FILLED = 0.97  # of the budget: a searched file this full is not re-picked


def tile_boxes(height: int, width: int, tile: int = TILE) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of each tile, row by row."""
    return [(y, x, min(tile, height - y), min(tile, width - x))
            for y in range(0, height, tile) for x in range(0, width, tile)]


def _padded(rgb: np.ndarray, box) -> np.ndarray:
    y, x, h, w = box
    t = rgb[y : y + h, x : x + w].astype(np.float32).transpose(2, 0, 1) / 255
    return np.pad(t, ((0, 0), (0, -h % STRIDE), (0, -w % STRIDE)), mode="edge")


def _split(payload: bytes) -> tuple[bytes, bytes]:
    n, pos = context_code.read_varint(payload, 0)
    if pos + n > len(payload):
        raise BitstreamError("tile payload truncated inside z")
    return payload[pos : pos + n], payload[pos + n :]


def _z_buckets(model: RDImageModel, shape) -> tuple[np.ndarray, np.ndarray]:
    offset, scale = model.z_coding()
    buckets = np.broadcast_to(buckets_of(scale, model.code.edges)[:, None, None], shape)
    return np.broadcast_to(offset[:, None, None], shape), buckets


def tile_latents(model: RDImageModel, y0: np.ndarray, quality: float, h: int, w: int) -> tuple[np.ndarray, ...]:
    """One h x w tile's analysed latent at one quality: (z rounded, and on the grid the tile covers,
    ceil(h / 16) x ceil(w / 16), y gained and the hyperprior's mean and scale of each value)."""
    g, _, zg, zig = model.gains(quality)
    y = y0 * g
    z = np.round(model.nets.h_a(y) * zg).astype(np.int64)
    yh, yw = -(-h // 16), -(-w // 16)
    mean, scale = model.nets.hyper(z * zig, SCALE_MIN)
    return z, y[:, :yh, :yw], mean[:, :yh, :yw], scale[:, :yh, :yw]


def tile_symbols(model: RDImageModel, y0: np.ndarray, quality: float, h: int, w: int,
                 residual: np.ndarray | None = None) -> list[tuple]:
    """What one tile sends at one quality, as (values, buckets) pairs: z around its offsets, then
    y's residuals (round(y - mean), or the search's), on the grid the tile covers; the padding
    beyond costs nothing."""
    z, y, mean, scale = tile_latents(model, y0, quality, h, w)
    offset, zb = _z_buckets(model, z.shape)
    if residual is None:
        residual = np.round(y - mean).astype(np.int64)
    return [(z - offset, zb), (residual, buckets_of(scale, model.code.edges))]


def code_tile(model: RDImageModel, y0: np.ndarray, quality: float, h: int, w: int,
              residual: np.ndarray | None = None) -> bytes:
    """One tile's analysed latent at one quality -> its payload."""
    (z, zb), (residual, yb) = tile_symbols(model, y0, quality, h, w, residual)
    z_bytes = context_code.encode(z, zb, model.code)
    return context_code.varint(len(z_bytes)) + z_bytes + context_code.encode(residual, yb, model.code)


def analyse(model: RDImageModel, rgb: np.ndarray, box) -> np.ndarray:
    """y = g_a(tile), padded to the stride: the part of coding that does not depend on quality."""
    return model.nets.analysis(_padded(rgb, box))


def decode_tile(model: RDImageModel, payload: bytes, quality: float, h: int, w: int) -> np.ndarray:
    """A payload -> the tile's pixels, float32 (3, h, w) in [0, 1]."""
    m = model.tables["gain"].shape[1]
    zc = model.tables["z_gain"].shape[1]
    yh, yw = -(-h // 16), -(-w // 16)
    zshape = (zc, -(-h // STRIDE), -(-w // STRIDE))
    _, ig, _, zig = model.gains(quality)
    z_bytes, y_bytes = _split(payload)
    offset, zb = _z_buckets(model, zshape)
    z = context_code.decode(z_bytes, zb, model.code).reshape(zshape) + offset
    mean, scale = model.nets.hyper(z * zig, SCALE_MIN)
    mean, scale = mean[:, :yh, :yw], scale[:, :yh, :yw]
    residual = context_code.decode(y_bytes, buckets_of(scale, model.code.edges), model.code).reshape(m, yh, yw)
    y_hat = ((residual + mean) * ig).astype(np.float32)
    return np.clip(model.nets.synthesis(y_hat)[:, :h, :w], 0, 1)


def _blas_threads(f):
    @functools.wraps(f)
    def run(*args, **kwargs):
        with threadpool_limits(threads.count(), user_api="blas"):
            return f(*args, **kwargs)

    return run


def _bisect(attempt, lo: float, hi: float, budget: int) -> tuple[bytes, float] | None:
    """The file of the highest quality in [lo, hi] whose file fits `budget` bytes (to 8 / 2^12),
    and that quality; None when even lo does not fit."""
    best = attempt(lo)
    if len(best) > budget:
        return None
    if len(top := attempt(hi)) <= budget:
        return top, hi
    chosen = lo
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        data = attempt(mid)
        if len(data) <= budget:
            lo, best, chosen = mid, data, mid
        else:
            hi = mid
    return best, chosen


@_blas_threads
def encode_rd(rgb: np.ndarray, model: RDImageModel, bpp: float, iters: int = 0,
              deadline: float | None = None) -> bytes:
    """uint8 H x W x 3 -> image file v3 bytes of at most bpp * H * W bits.

    With iters, the latent search (image/rd_search.py) refines the residuals. It spends fewer bits
    than the encoder at the same quality: a probe of iters / 2 at the quality the encoder alone
    fills the budget with measures how much fewer, the rate control picks the quality the encoder
    would fill that much more budget with, and the full search runs there; a search that
    overshoots is followed by one halfway between the two qualities. At most SEARCH_ROUNDS after the
    probe, until the file fills FILLED of the budget; the fullest searched file that fits is sent
    (the encoder's own if even the probe does not). `deadline` (seconds) bounds the searches,
    each its share, spread over the tiles by their pixels."""
    if not (bpp > 0 and np.isfinite(bpp)):
        raise ImageInputError(f"bpp must be a positive number (got {bpp})")
    height, width = rgb.shape[:2]
    boxes = tile_boxes(height, width)
    latents = [analyse(model, rgb, box) for box in boxes]
    budget = int(bpp * height * width) // 8

    def attempt(q: float, residuals=None) -> bytes:
        meta = {"width": width, "height": height, "tile": TILE, "quality": round(q, 6)}
        residuals = residuals or [None] * len(boxes)
        tiles = [code_tile(model, y, round(q, 6), b[2], b[3], r) for y, b, r in zip(latents, boxes, residuals)]
        return write_image_file(model.model_id, meta, tiles)

    def searched(q: float, n: int, seconds: float | None) -> bytes:
        q, residuals = round(q, 6), []
        for y0, box in zip(latents, boxes):
            share = None if seconds is None else seconds * box[2] * box[3] / (height * width)
            _, y, mean, scale = tile_latents(model, y0, q, box[2], box[3])
            x = _padded(rgb, box)[:, : box[2], : box[3]]
            residuals.append(rd_search.search_residuals(model, x, y, mean, scale, q, n, share)[0])
        return attempt(q, residuals)

    lo, hi = model.qualities
    found = _bisect(attempt, lo, hi, budget)
    if found is None:
        raise ImageInputError(f"{bpp} bpp is below the lowest rate this model reaches for this image "
                              f"({8 * len(attempt(lo)) / (height * width):.3f} bpp): ask for at least that")
    best, chosen = found
    if iters <= 0:
        return best
    share = None if deadline is None else deadline / (1 + SEARCH_ROUNDS)
    sent = searched(chosen, max(1, iters // 2), share)
    if len(sent) > budget:
        return best
    plain, q, over = best, chosen, None  # over: the lowest quality whose searched file was too big
    for _ in range(SEARCH_ROUNDS):
        if len(sent) >= FILLED * budget:
            break
        if over is None:  # the quality the encoder fills the budget with, enlarged by the bits saved
            more = _bisect(attempt, q, hi, int(budget * len(plain) / len(sent))) if q < hi else None
            if more is None or more[1] <= q:
                break
            guess, guess_plain = more[1], more[0]
        else:  # halfway between a searched file that fits and one that does not (sizes are not
            guess, guess_plain = (q + over) / 2, None  # smooth enough in quality to interpolate)
        trial = searched(guess, iters, share)
        if len(trial) <= budget:
            sent, q, plain = trial, guess, guess_plain  # plain matters only until an overshoot
        else:
            over = guess
    return sent


@_blas_threads
def decode_rd(data: bytes, model: RDImageModel) -> np.ndarray:
    """Image file v3 bytes -> uint8 H x W x 3."""
    f = read_image_file(data)
    if f.model_id != model.model_id:
        raise BitstreamError(f"the file was written by image model {f.model_id.hex()}, but model {model.name!r} "
                             f"is {model.model_id.hex()}: decode it with the model that wrote it")
    try:
        width, height, tile, quality = (int(f.meta["width"]), int(f.meta["height"]), int(f.meta["tile"]),
                                        float(f.meta["quality"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"image file metadata lacks a valid width, height, tile or quality: {f.meta}") from exc
    lo, hi = model.qualities
    if not (1 <= width and 1 <= height and width * height <= MAX_PIXELS) or tile != TILE or not lo <= quality <= hi:
        raise BitstreamError(f"image file declares {width}x{height} pixels, tile {tile}, quality {quality}: "
                             f"outside what this codec writes")
    boxes = tile_boxes(height, width, tile)
    if len(f.tiles) != len(boxes):
        raise BitstreamError(f"the image file holds {len(f.tiles)} tiles, {len(boxes)} expected: it is truncated")
    out = np.empty((height, width, 3), np.uint8)
    for payload, (y, x, h, w) in zip(f.tiles, boxes):
        rgb = decode_tile(model, payload, quality, h, w)
        out[y : y + h, x : x + w] = np.round(rgb * 255).astype(np.uint8).transpose(1, 2, 0)
    return out
