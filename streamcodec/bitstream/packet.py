"""Packet format v1: one compressed frame, self-delimiting and checksummed (docs/bitstream.md).

Everything here assumes the bytes are hostile: every length is checked against what is actually
there before it is used, and anything that is not a valid v1 packet raises BitstreamError.
"""

import struct
import zlib
from dataclasses import dataclass

from streamcodec.errors import BitstreamError

MAGIC = b"SC"
FORMAT_VERSION = 1
FLAG_FIRST = 0x01  # first frame of a stream
FLAG_LAST = 0x02  # last frame of a stream
FLAG_FIXED = 0x04  # payload is fixed-length packed, not Huffman coded
_KNOWN_FLAGS = FLAG_FIRST | FLAG_LAST | FLAG_FIXED
MAX_DIMS = 4
MAX_SYMBOLS = 1 << 24
_FIXED = struct.Struct(">2sBB4sIIQB")  # magic, version, flags, model id, stream, sequence, time, ndim
_LENGTH = struct.Struct(">I")
_CRC = struct.Struct(">I")
MIN_PACKET = _FIXED.size + 2 + _LENGTH.size + _CRC.size


@dataclass(frozen=True)
class Packet:
    model_id: bytes  # 4 bytes: short hash of the model assets
    stream_id: int  # u32, random per stream
    sequence: int  # u32, +1 per frame, wraps
    capture_time_us: int  # u64, microseconds since the Unix epoch when the frame's audio was captured
    shape: tuple[int, ...]  # latent shape; the payload holds prod(shape) indices
    payload: bytes
    flags: int = 0

    @property
    def first(self) -> bool:
        return bool(self.flags & FLAG_FIRST)

    @property
    def last(self) -> bool:
        return bool(self.flags & FLAG_LAST)

    @property
    def fixed(self) -> bool:
        return bool(self.flags & FLAG_FIXED)

    @property
    def n_symbols(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def header_bytes(ndim: int) -> int:
    """Bytes a packet adds to its payload (header and CRC)."""
    return _FIXED.size + 2 * ndim + _LENGTH.size + _CRC.size


def encode_packet(p: Packet) -> bytes:
    if len(p.model_id) != 4:
        raise ValueError("model_id must be 4 bytes")
    if p.flags & ~_KNOWN_FLAGS:
        raise ValueError(f"unknown flags 0x{p.flags:02x}")
    if not 1 <= len(p.shape) <= MAX_DIMS or not all(1 <= d <= 0xFFFF for d in p.shape):
        raise ValueError(f"latent shape {p.shape} must have 1..{MAX_DIMS} dimensions of 1..65535")
    if p.n_symbols > MAX_SYMBOLS:
        raise ValueError(f"latent of {p.n_symbols} values exceeds {MAX_SYMBOLS}")
    head = _FIXED.pack(MAGIC, FORMAT_VERSION, p.flags, bytes(p.model_id), p.stream_id, p.sequence,
                       p.capture_time_us, len(p.shape))
    body = head + struct.pack(f">{len(p.shape)}H", *p.shape) + _LENGTH.pack(len(p.payload)) + bytes(p.payload)
    return body + _CRC.pack(zlib.crc32(body))


def read_packet_at(data: bytes, offset: int = 0, max_payload: int = MAX_SYMBOLS) -> tuple[Packet, int]:
    """Parse the packet starting at `offset`; return it and the offset just after it."""
    view = memoryview(data)
    end = len(view)
    if end - offset < MIN_PACKET:
        raise BitstreamError(f"truncated packet: {end - offset} bytes, a packet has at least {MIN_PACKET}")
    magic, version, flags, model_id, stream_id, sequence, capture, ndim = _FIXED.unpack_from(view, offset)
    if magic != MAGIC:
        raise BitstreamError("not a streamcodec packet (bad magic)")
    if version != FORMAT_VERSION:
        raise BitstreamError(f"packet format version {version} is not supported (this streamcodec reads "
                             f"version {FORMAT_VERSION}): use the same streamcodec release at both ends")
    if flags & ~_KNOWN_FLAGS:
        raise BitstreamError(f"packet has unknown flags 0x{flags & ~_KNOWN_FLAGS:02x}")
    if not 1 <= ndim <= MAX_DIMS:
        raise BitstreamError(f"packet latent has {ndim} dimensions, 1..{MAX_DIMS} allowed")
    pos = offset + _FIXED.size
    if end - pos < 2 * ndim + _LENGTH.size + _CRC.size:
        raise BitstreamError("truncated packet header")
    shape = struct.unpack_from(f">{ndim}H", view, pos)
    pos += 2 * ndim
    (length,) = _LENGTH.unpack_from(view, pos)
    pos += _LENGTH.size
    if 0 in shape:
        raise BitstreamError(f"packet latent shape {shape} has an empty dimension")
    if length > max_payload:
        raise BitstreamError(f"packet payload of {length} bytes exceeds the limit of {max_payload}")
    if end - pos < length + _CRC.size:
        raise BitstreamError(f"truncated packet: payload of {length} bytes declared, {max(end - pos - 4, 0)} present")
    payload = bytes(view[pos : pos + length])
    pos += length
    (crc,) = _CRC.unpack_from(view, pos)
    if zlib.crc32(view[offset:pos]) != crc:
        raise BitstreamError("packet checksum mismatch: the packet is damaged")
    packet = Packet(bytes(model_id), stream_id, sequence, capture, tuple(shape), payload, flags)
    if packet.n_symbols > MAX_SYMBOLS:
        raise BitstreamError(f"packet latent of {packet.n_symbols} values exceeds {MAX_SYMBOLS}")
    return packet, pos + _CRC.size


def parse_packet(data: bytes, max_payload: int = MAX_SYMBOLS) -> Packet:
    """Parse exactly one packet (an MQTT message, say); trailing bytes are an error."""
    packet, end = read_packet_at(data, 0, max_payload)
    if end != len(data):
        raise BitstreamError(f"{len(data) - end} unexpected bytes after the packet")
    return packet
