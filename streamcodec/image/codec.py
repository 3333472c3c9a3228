"""Image coding: tiles, rate control, latent search, packets.

An image is cut into tiles of at most TILE x TILE pixels (one packet each, so memory stays bounded
and a 768x512 photo is one tile). Each tile is padded to the networks' stride by repeating its
edge pixels. E gives the first latent; the rate controller picks how many of the ordered latent
channels to send, the largest count whose Huffman-coded size (headers included) fits the requested
bits per pixel; the ADMM search then refines those channels through G with the loss
(1 - MS-SSIM) + alpha * MSE, and if the searched indices cost more, trailing channels are
dropped until the file fits again. The decoder feeds zeros for the channels not sent.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F

from streamcodec.bitstream import Container
from streamcodec.bitstream.container import encode_header
from streamcodec.bitstream.packet import FLAG_FIRST, FLAG_FIXED, FLAG_LAST, Packet, encode_packet, header_bytes
from streamcodec.core.entropy import decode_indices, encode_indices, fixed_bits
from streamcodec.core.losses import msssim_mse
from streamcodec.core.quantizer import quantize
from streamcodec.core.search import admm_search
from streamcodec.errors import BitstreamError
from streamcodec.image.io import MAX_PIXELS
from streamcodec.image.model import ImageModel
from streamcodec.image.rd_codec import tile_boxes
from streamcodec.nets.image import STRIDE
from streamcodec.defaults import IMAGE_BPP, IMAGE_ITERS

TILE = 1024
DEFAULT_BPP, DEFAULT_ITERS = IMAGE_BPP, IMAGE_ITERS
SEARCH_LR = 0.1  # Adam step and ADMM penalty of the search (benchmarks/image_search.py)
SEARCH_MU = 0.1


def latent_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE), -(-width // STRIDE)


def tile_tensor(rgb: np.ndarray, box) -> torch.Tensor:
    """(1, 3, H', W') in [0, 1], padded to the stride by repeating edge pixels."""
    y, x, h, w = box
    t = torch.from_numpy(rgb[y : y + h, x : x + w].copy()).permute(2, 0, 1)[None].float() / 255
    hz, wz = latent_size(h, w)
    return F.pad(t, (0, wz * STRIDE - w, 0, hz * STRIDE - h), mode="replicate")


class _TorchObjective:
    """The search's objective (core/search.py) for torch networks and a torch loss: F(x, G(z)) per
    item and its gradient with respect to z, by autograd."""

    def __init__(self, generator: torch.nn.Module, x: torch.Tensor, loss_fn) -> None:
        self.generator, self.x, self.loss_fn = generator, x, loss_fn

    @torch.no_grad()
    def loss(self, z: np.ndarray) -> np.ndarray:
        return self.loss_fn(self.x, self.generator(torch.from_numpy(z))).numpy()

    def loss_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zt = torch.from_numpy(z).requires_grad_(True)
        loss = self.loss_fn(self.x, self.generator(zt))
        (grad,) = torch.autograd.grad(loss.sum(), zt)
        return loss.detach().numpy(), grad.numpy()


class _FirstChannels(torch.nn.Module):
    """G seen from the first k latent channels (the rest are zeros): what the search optimises."""

    def __init__(self, generator: torch.nn.Module, total: int) -> None:
        super().__init__()
        self.generator = generator
        self.total = total

    def forward(self, z):
        pad = z.new_zeros(z.shape[0], self.total - z.shape[1], *z.shape[2:])
        return self.generator(torch.cat([z, pad], 1))


def _prefix_bits(indices: np.ndarray, model: ImageModel) -> np.ndarray:
    """Packet bits (payload bytes and header) of one tile when its first k channels are sent, for
    k = 0 .. channels: Huffman bits add up channel by channel, fixed-length packing is the cap."""
    huffman = np.cumsum([0] + [model.code.bit_count(channel) for channel in indices])
    fixed = np.arange(len(indices) + 1) * indices[0].size * fixed_bits(len(model.levels))
    return 8 * (-(-np.minimum(huffman, fixed) // 8) + header_bytes(3))


def choose_channels(indices: list[np.ndarray], budget_bits: float, model: ImageModel) -> int:
    """The most leading channels (of those in `indices`) whose coded size fits the budget; at least 1."""
    total = sum(_prefix_bits(idx, model) for idx in indices)
    k = len(total) - 1
    while k > 1 and total[k] > budget_bits:
        k -= 1
    return k


def encode_image(rgb: np.ndarray, model: ImageModel, bpp: float | None = None, iters: int = DEFAULT_ITERS,
                 deadline: float | None = None, loss_fn=None) -> bytes:
    """uint8 H x W x 3 -> image container bytes. `deadline` bounds the whole search (seconds).

    The channel count is chosen on the encoder's latents; the search may make them costlier, so
    afterwards trailing channels are dropped until the file fits again: the file never exceeds
    the requested rate unless a single channel already does. `loss_fn` (target, output) -> loss
    per item, torch, defaults to the model's (1 - MS-SSIM) + alpha * MSE."""
    start = time.perf_counter()
    height, width = rgb.shape[:2]
    if bpp is not None and not (bpp > 0 and np.isfinite(bpp)):
        raise ValueError(f"bpp must be a positive number (got {bpp})")
    bpp = DEFAULT_BPP if bpp is None else bpp
    loss_fn = loss_fn or msssim_mse(model.alpha)
    header = encode_header("image", model.model_id, {"width": width, "height": height, "tile": TILE})
    budget = bpp * height * width - 8 * len(header)
    boxes = tile_boxes(height, width, TILE)
    with torch.no_grad():
        z0 = [model.encoder(tile_tensor(rgb, box)).numpy() for box in boxes]
    indices = [quantize(z[0], model.levels) for z in z0]
    k = choose_channels(indices, budget, model)
    generator = _FirstChannels(model.generator, model.config.latent_channels)
    for i, box in enumerate(boxes):
        share = None
        if deadline is not None:  # split what is left of the time in proportion to pixels still to do
            left_pixels = sum(b[2] * b[3] for b in boxes[i:])
            share = max(0.0, deadline - (time.perf_counter() - start)) * box[2] * box[3] / left_pixels
        if iters > 0 and (share is None or share > 0):
            # the tile is rebuilt from the uint8 image rather than kept: float tiles cost 4x its memory
            objective = _TorchObjective(generator, tile_tensor(rgb, box), loss_fn)
            result = admm_search(objective, z0[i][:, :k], model.levels, iters=iters, deadline=share,
                                 lr=SEARCH_LR, mu=SEARCH_MU, eval_every=2)
            indices[i] = result.indices[0]
    k = choose_channels([idx[:k] for idx in indices], budget, model)
    packets = [header]
    for i, idx in enumerate(indices):
        payload, fixed = encode_indices(idx[:k], model.code)
        flags = (FLAG_FIRST if i == 0 else 0) | (FLAG_LAST if i == len(boxes) - 1 else 0) | (FLAG_FIXED if fixed else 0)
        packets.append(encode_packet(Packet(model.model_id, 0, i, 0, idx[:k].shape, payload, flags)))
    return b"".join(packets)


def _check_meta(meta: dict) -> tuple[int, int, int]:
    try:
        width, height, tile = int(meta["width"]), int(meta["height"]), int(meta["tile"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"image file metadata lacks a valid width, height or tile: {meta}") from exc
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise BitstreamError(f"image file declares {width}x{height} pixels, outside 1..{MAX_PIXELS} pixels")
    if tile < STRIDE or tile % STRIDE or tile > 4096:
        raise BitstreamError(f"image file declares a tile of {tile} pixels; a multiple of {STRIDE} up to 4096 "
                             f"is expected")
    return width, height, tile


def decode_image(container: Container, model: ImageModel) -> np.ndarray:
    """An image container -> uint8 H x W x 3. Any damaged or missing tile is an error: an image with
    a hole is not what the caller asked for."""
    if container.kind != "image":
        raise BitstreamError(f"this is a {container.kind} file, not an image: decode it with `streamcodec decode`")
    if container.model_id != model.model_id:
        raise BitstreamError(f"the file was written by image model {container.model_id.hex()}, but model "
                             f"{model.name!r} is {model.model_id.hex()}: decode it with the model that wrote it")
    if container.damage:
        lost = sum(d.length for d in container.damage)
        raise BitstreamError(f"the image file is damaged ({lost} bytes unreadable: {container.damage[0].reason}); "
                             f"its tiles cannot all be decoded")
    width, height, tile = _check_meta(container.meta)
    boxes = tile_boxes(height, width, tile)
    if [p.sequence for p in container.packets] != list(range(len(boxes))):
        raise BitstreamError(f"the image file holds {len(container.packets)} tiles, {len(boxes)} expected: "
                             "it is truncated or spliced")
    out = np.empty((height, width, 3), np.uint8)
    generator = _FirstChannels(model.generator, model.config.latent_channels)
    for packet, (y, x, h, w) in zip(container.packets, boxes):
        k = packet.shape[0] if packet.shape else 0
        if len(packet.shape) != 3 or packet.shape[1:] != latent_size(h, w) or not 1 <= k <= model.config.latent_channels:
            raise BitstreamError(f"tile {packet.sequence} has latent shape {packet.shape}, which does not fit a "
                                 f"{w}x{h} tile")
        idx = decode_indices(packet.payload, packet.n_symbols, model.code, packet.fixed).reshape(packet.shape)
        z = torch.from_numpy(model.levels[np.asarray(idx, np.int64)][None])
        with torch.no_grad():
            rgb = generator(z)[0, :, :h, :w]
        out[y : y + h, x : x + w] = (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return out
