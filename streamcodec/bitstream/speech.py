"""Speech bitstream v2: compact frame packets and the speech file container (docs/bitstream.md).

A packet carries only what a receiver cannot know otherwise: 4 header bytes (version, type and
flags; a 16-bit sequence number; the frame's level byte), 2 more on a short final frame, the
payload and a CRC-8. Per-stream constants (model id, sample rate, start time, stream id) travel
once: in the retained meta message of a live stream, in the header of a file. Every byte is
treated as hostile: lengths are checked before use and anything else raises BitstreamError.
"""

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from streamcodec.bitstream.container import Damage
from streamcodec.errors import BitstreamError

VERSION = 2
TYPE_SPEECH = 0  # Huffman-coded level indices of one frame
TYPE_COMFORT = 1  # silence: a comfort-noise envelope (or nothing, for digital silence)
_SHORT = 0x04  # the frame carries fewer samples than a whole frame (the end of a message)
_FIRST = 0x02
_LAST = 0x01
MAX_PACKET = 256  # bytes, header and CRC included: 2,048 bits, a whole frame's budget at 2 kbit/s
HEADER_BYTES = 5  # 4 header bytes and the CRC
SHORT_BYTES = 2  # the sample count of a short frame
MAX_FRAME_SAMPLES = 16384
SEQ_MOD = 1 << 16
MAX_GAP = 600  # frames (10 min): a bigger jump of sequence numbers starts a new timeline instead of
# being concealed frame by frame
CONCEAL_RATIO = 16  # a reader conceals at most 15 missing frames per frame present

FILE_MAGIC = b"STCF"  # shared with the v1 container, whose version byte is 1
FILE_HEADER = struct.Struct(">4sB4sI")  # magic, version, model id, samples
FILE_HEADER_BYTES = FILE_HEADER.size + 1  # and a CRC-8
MAX_FILE_SAMPLES = (1 << 32) - 1
RECORD_BYTES = 1  # a file stores each packet behind one length byte
OPEN_ENDED = 0  # samples of a file still being written (a receiver's packet archive): the packets say

_V1_PACKET = b"SC\x01"


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return table


_CRC8 = _crc8_table()


def crc8(data) -> int:
    """CRC-8 (polynomial 0x07, initial 0): catches every burst error of up to 8 bits."""
    c = 0
    for b in bytes(data):
        c = _CRC8[c ^ b]
    return c


@dataclass(frozen=True)
class SpeechPacket:
    sequence: int  # u16, +1 per frame, wraps
    level: int  # the frame's level byte (dsp/level.py)
    payload: bytes
    kind: int = TYPE_SPEECH  # TYPE_SPEECH or TYPE_COMFORT
    samples: int = MAX_FRAME_SAMPLES  # audio samples the frame carries; fewer only at the end
    first: bool = False
    last: bool = False

    @property
    def short(self) -> bool:
        return self.samples < MAX_FRAME_SAMPLES

    def encode(self) -> bytes:
        if self.kind not in (TYPE_SPEECH, TYPE_COMFORT):
            raise ValueError(f"unknown packet type {self.kind}")
        if not 1 <= self.samples <= MAX_FRAME_SAMPLES:
            raise ValueError(f"a frame carries 1..{MAX_FRAME_SAMPLES} samples, not {self.samples}")
        flags = (_SHORT if self.short else 0) | (_FIRST if self.first else 0) | (_LAST if self.last else 0)
        head = struct.pack(">BHB", VERSION << 4 | self.kind << 3 | flags, self.sequence % SEQ_MOD, self.level)
        if self.short:
            head += struct.pack(">H", self.samples)
        body = head + bytes(self.payload)
        if len(body) + 1 > MAX_PACKET:
            raise ValueError(f"packet of {len(body) + 1} bytes exceeds {MAX_PACKET}")
        return body + bytes([crc8(body)])


def overhead_bytes(short: bool = False) -> int:
    """Bytes a packet adds to its payload."""
    return HEADER_BYTES + (SHORT_BYTES if short else 0)


def parse_speech_packet(data) -> SpeechPacket:
    """Exactly one v2 packet (an MQTT message, a file record)."""
    return _parse_packet(bytes(data), crc_checked=False)


def _parse_packet(data: bytes, crc_checked: bool) -> SpeechPacket:
    if data.startswith(_V1_PACKET):
        raise BitstreamError("this is a format v1 packet (streamcodec 0.1): this release reads format v2 only; "
                             "use the same streamcodec release at both ends")
    if len(data) < HEADER_BYTES:
        raise BitstreamError(f"truncated packet: {len(data)} bytes, a packet has at least {HEADER_BYTES}")
    if len(data) > MAX_PACKET:
        raise BitstreamError(f"packet of {len(data)} bytes exceeds the limit of {MAX_PACKET}")
    version, kind, flags = data[0] >> 4, data[0] >> 3 & 1, data[0] & 7
    if version != VERSION:
        raise BitstreamError(f"packet format version {version} is not supported (this streamcodec reads "
                             f"version {VERSION}): use the same streamcodec release at both ends")
    if not crc_checked and crc8(data[:-1]) != data[-1]:
        raise BitstreamError("packet checksum mismatch: the packet is damaged")
    (sequence,) = struct.unpack_from(">H", data, 1)
    pos, samples = 4, MAX_FRAME_SAMPLES
    if flags & _SHORT:
        if len(data) < HEADER_BYTES + SHORT_BYTES:
            raise BitstreamError("truncated short-frame packet")
        (samples,) = struct.unpack_from(">H", data, 4)
        if not 1 <= samples < MAX_FRAME_SAMPLES:
            raise BitstreamError(f"short frame declares {samples} samples, 1..{MAX_FRAME_SAMPLES - 1} allowed")
        pos = 6
    return SpeechPacket(sequence, data[3], data[pos:-1], kind, samples, bool(flags & _FIRST), bool(flags & _LAST))


def unwrap_sequence(seq16: int, reference: int) -> int:
    """The full sequence number nearest to `reference` whose low 16 bits are seq16."""
    delta = (seq16 - reference) % SEQ_MOD
    if delta >= SEQ_MOD // 2:
        delta -= SEQ_MOD
    return reference + delta


# ---- file container ---------------------------------------------------------------------------

def encode_file_header(model_id: bytes, samples: int) -> bytes:
    if len(model_id) != 4:
        raise ValueError("model_id must be 4 bytes")
    if not 0 <= samples <= MAX_FILE_SAMPLES:
        raise ValueError(f"samples must lie in 0..{MAX_FILE_SAMPLES}")
    head = FILE_HEADER.pack(FILE_MAGIC, VERSION, bytes(model_id), samples)
    return head + bytes([crc8(head)])


def encode_record(packet: bytes) -> bytes:
    """A packet inside a file: one length byte (size - 1), then the packet."""
    if not HEADER_BYTES <= len(packet) <= MAX_PACKET:
        raise ValueError(f"packet of {len(packet)} bytes cannot be stored")
    return bytes([len(packet) - 1]) + packet


@dataclass
class SpeechFile:
    model_id: bytes
    samples: int
    packets: list[SpeechPacket]
    damage: list[Damage]
    size: int  # bytes in the file


class SpeechFileWriter:
    """Write a speech file packet by packet, so long inputs need no more memory than one frame."""

    def __init__(self, fileobj: BinaryIO, model_id: bytes, samples: int) -> None:
        self._file = fileobj
        self._file.write(encode_file_header(model_id, samples))

    def write(self, packet: bytes) -> SpeechPacket:
        """Append one encoded packet (checked by parsing it); returns it parsed."""
        parsed = parse_speech_packet(packet)
        self._file.write(encode_record(packet))
        return parsed


_OTHER_FILES = ((b"RIFF", "a WAV file, not a streamcodec file: compress it with `streamcodec encode`"),
                (b"fLaC", "a FLAC file, not a streamcodec file: compress it with `streamcodec encode`"),
                (b"OggS", "an Ogg file, not a streamcodec file: compress it with `streamcodec encode`"),
                (b"\x89PNG", "a PNG image, not a streamcodec file: compress it with `streamcodec image compress`"),
                (b"\xff\xd8\xff", "a JPEG image, not a streamcodec file: compress it with `streamcodec image compress`"))


def parse_file_header(data: bytes) -> tuple[bytes, int]:
    """(model id, samples) of a speech file's header; any other file is named for what it is."""
    for magic, what in _OTHER_FILES:
        if data.startswith(magic):
            raise BitstreamError(f"this is {what}")
    if len(data) < FILE_HEADER_BYTES or data[:4] != FILE_MAGIC:
        raise BitstreamError("not a streamcodec speech file (bad magic)")
    magic, version, model_id, samples = FILE_HEADER.unpack_from(data, 0)
    if version in (1, 3) and data[5] == 2:  # image files share the magic; their kind byte follows
        raise BitstreamError("this is a streamcodec image (.sci), not a speech file: decompress it with "
                             "`streamcodec image decompress`")
    if version == 1:
        raise BitstreamError("this is a format v1 speech file (streamcodec 0.1): this release reads format v2; "
                             "decode it with the release that wrote it")
    if version != VERSION:
        raise BitstreamError(f"container version {version} is not supported (this streamcodec reads version "
                             f"{VERSION}): decode it with the release that wrote it")
    if crc8(data[: FILE_HEADER.size]) != data[FILE_HEADER.size]:
        raise BitstreamError("file header checksum mismatch: the file is damaged")
    return bytes(model_id), samples


def _record_at(data: bytes, pos: int, crc_checked: bool = False) -> tuple[SpeechPacket, int]:
    if pos >= len(data):
        raise BitstreamError("truncated record")
    end = pos + 1 + data[pos] + 1
    if end > len(data):
        raise BitstreamError(f"truncated packet: {data[pos] + 1} bytes declared, {len(data) - pos - 1} present")
    return _parse_packet(data[pos + 1 : end], crc_checked), end


class _Records:
    """Every offset of a damaged file tested at once (crc_scan, numpy) for a record that passes the
    cheap checks (length, version, CRC): the next good record after damage is found by a search,
    however the damage was made. Built at the first damage only, so reading a clean file (and
    `streamcodec info`) needs no numpy."""

    def __init__(self, data: bytes) -> None:
        import numpy as np

        from streamcodec.bitstream.crc_scan import crc8_prefix, window_crc

        self._np = np
        d = np.frombuffer(data, np.uint8)
        n = len(d)
        self.end = np.arange(n) + d + 2  # where the next record would start
        ok = (d >= HEADER_BYTES - 1) & (self.end <= n)
        idx = np.flatnonzero(ok)
        ok[idx] = d[idx + 1] >> 4 == VERSION
        idx = np.flatnonzero(ok)
        ok[idx] = window_crc(crc8_prefix(d), idx + 1, self.end[idx] - 1) == d[self.end[idx] - 1]
        self.ok = ok
        idx = np.flatnonzero(ok)
        nxt = self.end[idx]
        follows = nxt == n
        follows[~follows] = ok[nxt[~follows]]
        self.pairs = idx[follows]  # a record followed by another (or by the end of the file)

    def resync(self, data: bytes, pos: int) -> int:
        """The next offset after `pos` where two records in a row parse (or one that ends the file):
        a random byte string passes one CRC-8 in 256 tries, two in 65,536."""
        for i in range(int(self._np.searchsorted(self.pairs, pos, side="right")), len(self.pairs)):
            start = int(self.pairs[i])
            try:
                _, nxt = _record_at(data, start, crc_checked=True)
                if nxt < len(data):
                    _record_at(data, nxt, crc_checked=True)
                return start
            except BitstreamError:  # passed the checksums, not the packet's own checks
                continue
        return len(data)


def read_speech_file(source: bytes | str | Path) -> SpeechFile:
    """Parse a speech file from bytes or a path, in one pass. A bad header raises BitstreamError;
    damaged records are skipped (resynchronising on the next two good records) and listed in
    `damage`."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    model_id, samples = parse_file_header(data)
    out = SpeechFile(model_id, samples, [], [], len(data))
    pos, records = FILE_HEADER_BYTES, None
    while pos < len(data):
        try:  # once scanned, a record the scan passed needs no second CRC
            packet, pos_next = _record_at(data, pos, crc_checked=records is not None and bool(records.ok[pos]))
        except BitstreamError as exc:
            records = records or _Records(data)
            skip_to = records.resync(data, pos)
            out.damage.append(Damage(pos, skip_to - pos, str(exc)))
            pos = skip_to
            continue
        out.packets.append(packet)
        pos = pos_next
    return out


def packet_samples(packets: list[SpeechPacket]) -> int:
    """Samples the packets present carry (whatever the header declares)."""
    return sum(p.samples for p in packets)


def speech_file_info(src) -> dict:
    """What a speech file holds: model, duration, frames (speech and silent), rate on the wire
    (every byte of the file) beside the payload rate, damage."""
    f = read_speech_file(src)
    archive = f.samples == OPEN_ENDED  # a receiver's archive of a live stream: the packets say how long
    samples = packet_samples(f.packets) if archive else f.samples
    seconds = samples / 16000  # the format carries 16 kHz audio (meta messages check dsp.params.SAMPLE_RATE)
    payload = 8 * sum(len(p.payload) for p in f.packets)
    per_second = 1000 * max(seconds, 1e-9)
    held = packet_samples(f.packets)
    return {"kind": "speech", "model_id": f.model_id.hex(), "samples": samples, "seconds": seconds, "archive": archive,
            "packet_seconds": held / 16000,
            "packets": len(f.packets), "silent_frames": sum(p.kind == TYPE_COMFORT for p in f.packets),
            "bytes": f.size, "payload_kbps": payload / per_second, "wire_kbps": 8 * f.size / per_second,
            "max_frame_bits": 8 * max((len(p.payload) + overhead_bytes(p.short) + RECORD_BYTES for p in f.packets),
                                      default=0),
            "damaged_bytes": sum(d.length for d in f.damage)}
