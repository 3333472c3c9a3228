import io

import pytest

from streamcodec import BitstreamError
from streamcodec.bitstream import (
    FLAG_FIRST, FLAG_FIXED, Packet, ContainerWriter, encode_packet, parse_packet, read_container, write_container,
)
from streamcodec.bitstream.container import encode_header
from streamcodec.bitstream.packet import header_bytes

MODEL = b"\x01\x02\x03\x04"


def _packet(seq=5, payload=b"\xab" * 40, flags=FLAG_FIRST):
    return Packet(MODEL, 0xDEADBEEF, seq, 1_764_000_000_123_456, (8, 64), payload, flags)


def test_round_trip_and_overhead():
    p = _packet()
    data = encode_packet(p)
    assert parse_packet(data) == p
    assert len(data) - len(p.payload) == header_bytes(2) == 37  # 296 bits per 1.024 s frame
    assert p.first and not p.last and not p.fixed and p.n_symbols == 512


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:10], "truncated"),
        (lambda d: b"XX" + d[2:], "bad magic"),
        (lambda d: d[:2] + b"\x02" + d[3:], "version 2 is not supported"),
        (lambda d: d[:3] + b"\x80" + d[4:], "unknown flags"),
        (lambda d: d[:24] + b"\x09" + d[25:], "dimensions"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum"),
        (lambda d: d[:30] + b"\xff" + d[31:], "exceeds the limit"),
        (lambda d: d + b"\x00", "unexpected bytes"),
        (lambda d: d[:-5], "truncated"),
    ],
)
def test_damaged_packets_are_refused(mutate, message):
    with pytest.raises(BitstreamError, match=message):
        parse_packet(mutate(encode_packet(_packet())), max_payload=256)


def test_invalid_fields_cannot_be_encoded():
    for bad in (Packet(b"abc", 0, 0, 0, (1,), b""), Packet(MODEL, 0, 0, 0, (), b""),
                Packet(MODEL, 0, 0, 0, (0,), b""), Packet(MODEL, 0, 0, 0, (1,), b"", 0x40)):
        with pytest.raises(ValueError):
            encode_packet(bad)


def test_container_round_trip(tmp_path):
    packets = [_packet(i, bytes([i]) * (10 + i), FLAG_FIXED if i % 2 else 0) for i in range(6)]
    path = tmp_path / "x.scf"
    write_container(path, "speech", MODEL, {"sample_rate": 16000, "samples": 98304}, packets)
    c = read_container(path)
    assert (c.kind, c.model_id, c.meta, c.packets, c.damage) == (
        "speech", MODEL, {"sample_rate": 16000, "samples": 98304}, packets, [])


def test_damaged_container_keeps_the_intact_packets():
    buf = io.BytesIO()
    writer = ContainerWriter(buf, "speech", MODEL, {})
    packets = [_packet(i) for i in range(5)]
    for p in packets:
        writer.write(p)
    data = bytearray(buf.getvalue())
    size = len(encode_packet(packets[0]))
    start = len(encode_header("speech", MODEL, {}))
    data[start + size + 20] ^= 0x10  # damage packet 1
    data = bytes(data[:-7])  # truncate packet 4
    c = read_container(data)
    assert [p.sequence for p in c.packets] == [0, 2, 3]
    assert [(d.offset, d.length) for d in c.damage] == [(start + size, size), (start + 4 * size, size - 7)]
    assert "checksum" in c.damage[0].reason and "truncated" in c.damage[1].reason


def test_container_from_another_model_or_version():
    good = encode_header("speech", MODEL, {}) + encode_packet(Packet(b"zzzz", 1, 0, 0, (4,), b"\x00"))
    c = read_container(good)
    assert c.packets == [] and "another model" in c.damage[0].reason
    with pytest.raises(BitstreamError, match="version 9"):
        read_container(good[:4] + b"\x09" + good[5:])
    with pytest.raises(BitstreamError, match="not a streamcodec file"):
        read_container(b"RIFF" + good[4:])
    with pytest.raises(BitstreamError, match="checksum"):
        read_container(good[:7] + b"\x00" + good[8:])
