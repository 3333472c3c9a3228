"""Hostile bytes: random and mutated packets and containers either parse to the original or raise
BitstreamError; no other exception, no hang, bounded memory."""

import struct
import time
import tracemalloc
import zlib

import numpy as np
from hypothesis import given, settings, strategies as st

from streamcodec import BitstreamError
from streamcodec.bitstream import Packet, encode_packet, parse_packet, read_container
from streamcodec.bitstream.container import encode_header
from streamcodec.core.entropy import decode_indices, encode_indices
from streamcodec.core.huffman import HuffmanCode

CODE = HuffmanCode.from_histogram((1000 * 0.75 ** np.arange(16)).astype(int) + 1)
MODEL = b"fuzz"
SPEECH_MAX_PAYLOAD = 256


def _valid_packets(rng, n):
    out = []
    for i in range(n):
        idx = rng.choice(16, 512, p=CODE_P) if i % 3 else rng.integers(0, 16, 512)
        payload, fixed = encode_indices(idx, CODE)
        p = Packet(MODEL, int(rng.integers(2**32)), i, int(rng.integers(2**63)), (8, 64), payload, 4 if fixed else 0)
        out.append((p, encode_packet(p), idx))
    return out


CODE_P = 0.75 ** np.arange(16) / np.sum(0.75 ** np.arange(16))


def _mutate(rng, data: bytes) -> bytes:
    d = bytearray(data)
    if not d:  # an earlier mutation left nothing: start again from random bytes
        return rng.bytes(int(rng.integers(1, 400)))
    kind = rng.integers(7)
    if kind == 0:  # flip bits
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(len(d))
            d[i] ^= 1 << rng.integers(8)
    elif kind == 1:  # truncate
        d = d[: rng.integers(len(d))]
    elif kind == 2:  # insert bytes
        i = rng.integers(len(d) + 1)
        d[i:i] = rng.bytes(int(rng.integers(1, 8)))
    elif kind == 3:  # random bytes
        d = bytearray(rng.bytes(int(rng.integers(0, 400))))
    elif kind == 4:  # extend
        d += rng.bytes(int(rng.integers(1, 50)))
    elif len(d) > 44:  # overwrite header or payload bytes and repair the CRC, so deeper checks run
        lo, hi = (0, 40) if kind == 5 else (33, len(d) - 4)
        for _ in range(rng.integers(1, 4)):
            d[rng.integers(lo, hi)] = rng.integers(256)
        d[-4:] = struct.pack(">I", zlib.crc32(bytes(d[:-4])))
    return bytes(d)


def _check(data, originals):
    """Parse and decode like a receiver; anything but BitstreamError propagates and fails the test."""
    try:
        p = parse_packet(data, max_payload=SPEECH_MAX_PAYLOAD)
        idx = decode_indices(p.payload, p.n_symbols, CODE, p.fixed)
    except BitstreamError:
        return "refused"
    assert len(idx) == p.n_symbols and (idx.size == 0 or (idx.min() >= 0 and idx.max() < 16))
    return "original" if data in originals else "other valid"


def test_thirty_thousand_mutated_packets():
    rng = np.random.default_rng(7)
    valid = _valid_packets(rng, 50)
    originals = {d for _, d, _ in valid}
    outcomes = {"refused": 0, "original": 0, "other valid": 0}
    slowest = 0.0
    tracemalloc.start()
    for i in range(30_000):
        data = _mutate(rng, valid[i % len(valid)][1])
        start = time.perf_counter()
        outcomes[_check(data, originals)] += 1
        slowest = max(slowest, time.perf_counter() - start)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcomes["refused"] > 25_000
    assert slowest < 0.5  # no pathological input
    assert peak < 32 * 2**20


def test_valid_packets_decode_to_their_indices():
    for p, data, idx in _valid_packets(np.random.default_rng(8), 30):
        got = parse_packet(data, SPEECH_MAX_PAYLOAD)
        assert got == p
        np.testing.assert_array_equal(decode_indices(got.payload, 512, CODE, got.fixed), idx)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data):
    try:
        p = parse_packet(data, SPEECH_MAX_PAYLOAD)
    except BitstreamError:
        return
    decode_indices(p.payload, p.n_symbols, CODE, p.fixed)  # astronomically rare; must still be safe


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_mutated_containers(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    packets = _valid_packets(rng, 4)
    blob = encode_header("speech", MODEL, {"sample_rate": 16000}) + b"".join(d for _, d, _ in packets)
    for _ in range(data.draw(st.integers(1, 4))):
        blob = _mutate(rng, blob) if rng.integers(2) else blob
    try:
        c = read_container(blob, max_payload=SPEECH_MAX_PAYLOAD)
    except BitstreamError:
        return
    originals = {p for p, _, _ in packets}
    for p in c.packets:
        if p not in originals:
            decode_indices(p.payload, p.n_symbols, CODE, p.fixed)
    assert sum(d.length for d in c.damage) <= len(blob)
