"""Image file v3, the rate-distortion codec's format (docs/bitstream.md): the container's header
(magic STCF, version 3, kind image, model id, JSON metadata: width, height, tile, quality; CRC-32),
then one record per tile, row by row: magic STCT, tile index (u16), payload length (u32), payload,
CRC-32 of the record. A tile's payload is z's coded bytes behind their length (a varint), then y's.

An image with a hole is not what the caller asked for, so reading is strict: any damaged,
missing, extra or reordered record is a BitstreamError that says what is wrong."""

import json
import struct
import zlib
from dataclasses import dataclass

from streamcodec.bitstream.container import FILE_MAGIC, MAX_META, _HEAD
from streamcodec.errors import BitstreamError

VERSION = 3
KIND_IMAGE = 2
TILE_MAGIC = b"STCT"
MAX_TILE_BYTES = 1 << 24  # 16 MiB: 1024x1024 pixels at 128 bits each
MAX_TILES = 4096
_TILE = struct.Struct(">4sHI")
_CRC = struct.Struct(">I")


@dataclass
class ImageFile:
    model_id: bytes
    meta: dict
    tiles: list[bytes]  # payloads, in tile order


def write_image_file(model_id: bytes, meta: dict, tiles: list[bytes]) -> bytes:
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    if len(meta_bytes) > MAX_META or len(tiles) > MAX_TILES:
        raise ValueError("image metadata or tile count over the format's limits")
    head = _HEAD.pack(FILE_MAGIC, VERSION, KIND_IMAGE, bytes(model_id), len(meta_bytes)) + meta_bytes
    out = [head, _CRC.pack(zlib.crc32(head))]
    for i, payload in enumerate(tiles):
        if len(payload) > MAX_TILE_BYTES:
            raise ValueError(f"tile {i} payload of {len(payload)} bytes exceeds {MAX_TILE_BYTES}")
        record = _TILE.pack(TILE_MAGIC, i, len(payload)) + payload
        out += [record, _CRC.pack(zlib.crc32(record))]
    return b"".join(out)


def overhead_bytes(meta: dict, n_tiles: int) -> int:
    """Bytes of a file's header and record framing, payloads aside: what rate control subtracts."""
    meta_len = len(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    return _HEAD.size + meta_len + _CRC.size + n_tiles * (_TILE.size + _CRC.size)


def is_image_file(data: bytes) -> bool:
    return len(data) >= 6 and data[:4] == FILE_MAGIC and data[4] == VERSION


def read_image_file(data: bytes) -> ImageFile:
    data = bytes(data)
    if len(data) < _HEAD.size + _CRC.size or data[:4] != FILE_MAGIC:
        raise BitstreamError("not a streamcodec file (bad magic or too short)")
    magic, version, kind, model_id, meta_len = _HEAD.unpack_from(data, 0)
    if version != VERSION or kind != KIND_IMAGE:
        raise BitstreamError(f"not an image file of format v{VERSION} (version {version}, kind {kind})")
    end = _HEAD.size + meta_len
    if meta_len > MAX_META or len(data) < end + _CRC.size:
        raise BitstreamError("truncated or oversized image file header")
    if zlib.crc32(data[:end]) != _CRC.unpack_from(data, end)[0]:
        raise BitstreamError("image file header checksum mismatch: the file is damaged")
    try:
        meta = json.loads(data[_HEAD.size : end].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise BitstreamError("image file metadata is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise BitstreamError("image file metadata must be a JSON object")
    pos, tiles = end + _CRC.size, []
    while pos < len(data):
        if len(data) - pos < _TILE.size + _CRC.size:
            raise BitstreamError(f"image file truncated at byte {pos}: a tile record is cut short")
        magic, index, length = _TILE.unpack_from(data, pos)
        if magic != TILE_MAGIC or length > MAX_TILE_BYTES or len(tiles) >= MAX_TILES:
            raise BitstreamError(f"image file damaged at byte {pos}: no valid tile record there")
        stop = pos + _TILE.size + length
        if stop + _CRC.size > len(data):
            raise BitstreamError(f"image file truncated: tile {index} needs {length} bytes, fewer are left")
        if zlib.crc32(data[pos:stop]) != _CRC.unpack_from(data, stop)[0]:
            raise BitstreamError(f"image file damaged: tile {index} fails its checksum")
        if index != len(tiles):
            raise BitstreamError(f"image file holds tile {index} where tile {len(tiles)} belongs: it is spliced")
        tiles.append(data[pos + _TILE.size : stop])
        pos = stop + _CRC.size
    return ImageFile(bytes(model_id), meta, tiles)
