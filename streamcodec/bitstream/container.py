"""Container file v1 for offline use: a checksummed file header, then packets back to back
(docs/bitstream.md). A damaged or truncated file still yields every intact packet; the damaged
byte ranges are reported, not hidden."""

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from streamcodec.bitstream.packet import MAGIC, MAX_SYMBOLS, Packet, encode_packet, read_packet_at
from streamcodec.errors import BitstreamError

FILE_MAGIC = b"STCF"
CONTAINER_VERSION = 1
KINDS = {1: "speech", 2: "image"}
MAX_META = 4096
_HEAD = struct.Struct(">4sBB4sH")  # magic, version, kind, model id, metadata length
_CRC = struct.Struct(">I")


@dataclass
class Damage:
    offset: int  # byte offset in the file where unreadable data starts
    length: int  # bytes skipped
    reason: str


@dataclass
class Container:
    kind: str  # "speech" or "image"
    model_id: bytes
    meta: dict  # e.g. sample_rate and samples for speech, width and height for images
    packets: list[Packet] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)


def encode_header(kind: str, model_id: bytes, meta: dict) -> bytes:
    codes = {v: k for k, v in KINDS.items()}
    if kind not in codes:
        raise ValueError(f"kind must be one of {sorted(codes)}")
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    if len(meta_bytes) > MAX_META:
        raise ValueError(f"container metadata exceeds {MAX_META} bytes")
    head = _HEAD.pack(FILE_MAGIC, CONTAINER_VERSION, codes[kind], bytes(model_id), len(meta_bytes)) + meta_bytes
    return head + _CRC.pack(zlib.crc32(head))


class ContainerWriter:
    """Write a container packet by packet, so long inputs need no more memory than one frame."""

    def __init__(self, fileobj: BinaryIO, kind: str, model_id: bytes, meta: dict) -> None:
        self._file = fileobj
        self._model_id = bytes(model_id)
        self._file.write(encode_header(kind, model_id, meta))

    def write(self, packet: Packet) -> None:
        if packet.model_id != self._model_id:
            raise ValueError("packet model id differs from the container's")
        self._file.write(encode_packet(packet))

    def write_bytes(self, data: bytes) -> None:
        """Append an already encoded packet (checked by parsing it)."""
        packet, end = read_packet_at(data, 0)
        if end != len(data):
            raise ValueError("write_bytes takes exactly one packet")
        self.write(packet)


def write_container(path: str | Path, kind: str, model_id: bytes, meta: dict, packets) -> None:
    with open(path, "wb") as f:
        writer = ContainerWriter(f, kind, model_id, meta)
        for p in packets:
            writer.write(p)


def _parse_header(data: bytes) -> tuple[str, bytes, dict, int]:
    if len(data) < _HEAD.size + _CRC.size:
        raise BitstreamError("not a streamcodec file: too short for a header")
    magic, version, kind, model_id, meta_len = _HEAD.unpack_from(data, 0)
    if magic != FILE_MAGIC:
        raise BitstreamError("not a streamcodec file (bad magic)")
    if version == 2:  # bitstream/speech.py: version 2 files are speech only
        raise BitstreamError("this is a streamcodec speech file (format v2), not an image: decode it with "
                             "`streamcodec decode` or streamcodec.speech")
    if version == 3:  # bitstream/image_file.py
        raise BitstreamError("this is a streamcodec image file of format v3 (model image-rd): decompress it with "
                             "`streamcodec image decompress` or streamcodec.image.decompress")
    if version != CONTAINER_VERSION:
        raise BitstreamError(f"container version {version} is not supported (this streamcodec reads version "
                             f"{CONTAINER_VERSION}): decode it with the release that wrote it")
    if kind not in KINDS:
        raise BitstreamError(f"unknown container kind {kind}")
    if meta_len > MAX_META:
        raise BitstreamError(f"container metadata of {meta_len} bytes exceeds {MAX_META}")
    end = _HEAD.size + meta_len
    if len(data) < end + _CRC.size:
        raise BitstreamError("truncated container header")
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise BitstreamError("container header checksum mismatch: the file is damaged")
    try:
        meta = json.loads(data[_HEAD.size : end].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BitstreamError("container metadata is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise BitstreamError("container metadata must be a JSON object")
    return KINDS[kind], bytes(model_id), meta, end + _CRC.size


def read_container(source: bytes | str | Path, max_payload: int = MAX_SYMBOLS) -> Container:
    """Parse a container from bytes or a path. A bad header raises BitstreamError; damaged packets
    are skipped (resynchronising on the next packet magic) and listed in `damage`."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    kind, model_id, meta, pos = _parse_header(data)
    out = Container(kind, model_id, meta)
    while pos < len(data):
        try:
            packet, nxt = read_packet_at(data, pos, max_payload)
        except BitstreamError as exc:
            resync = data.find(MAGIC, pos + 1)
            while resync != -1:
                try:
                    read_packet_at(data, resync, max_payload)
                    break
                except BitstreamError:
                    resync = data.find(MAGIC, resync + 1)
            skip_to = len(data) if resync == -1 else resync
            out.damage.append(Damage(pos, skip_to - pos, str(exc)))
            pos = skip_to
            continue
        if packet.model_id != model_id:
            out.damage.append(Damage(pos, nxt - pos, "packet from another model than the file header names"))
        else:
            out.packets.append(packet)
        pos = nxt
    return out
