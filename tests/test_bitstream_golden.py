"""Golden vectors: committed packets and a container with their expected indices. A change to the
format or to the coding changes these bytes; regenerate them only together with a version bump
(tests/golden/make_golden.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from streamcodec.bitstream import Packet, encode_packet, parse_packet, read_container
from streamcodec.core.entropy import decode_indices, encode_indices
from streamcodec.core.huffman import HuffmanCode

GOLDEN = Path(__file__).parent / "golden"
MANIFEST = json.loads((GOLDEN / "vectors.json").read_text())
MODEL_ID = bytes.fromhex(MANIFEST["model_id"])
CODES = {int(n): HuffmanCode(np.array(lengths)) for n, lengths in MANIFEST["codes"].items()}


@pytest.mark.parametrize("vector", MANIFEST["packets"], ids=lambda v: v["name"])
def test_golden_packet_decodes_bit_exactly(vector):
    packet = parse_packet((GOLDEN / f"{vector['name']}.bin").read_bytes())
    assert (packet.stream_id, packet.sequence, packet.capture_time_us, packet.flags, packet.shape) == (
        vector["stream_id"], vector["sequence"], vector["capture_time_us"], vector["flags"], tuple(vector["shape"]))
    indices = decode_indices(packet.payload, packet.n_symbols, CODES[vector["levels"]], packet.fixed)
    assert indices.tolist() == vector["indices"]


@pytest.mark.parametrize("vector", MANIFEST["packets"], ids=lambda v: v["name"])
def test_golden_packet_encodes_to_the_same_bytes(vector):
    indices = np.array(vector["indices"]).reshape(vector["shape"])
    payload, fixed = encode_indices(indices, CODES[vector["levels"]])
    flags = vector["flags"]
    assert fixed == bool(flags & 4)
    packet = Packet(MODEL_ID, vector["stream_id"], vector["sequence"], vector["capture_time_us"],
                    tuple(vector["shape"]), payload, flags)
    assert encode_packet(packet) == (GOLDEN / f"{vector['name']}.bin").read_bytes()


def test_golden_container():
    c = read_container(GOLDEN / "speech.scf")
    assert (c.kind, c.model_id, c.meta, c.damage) == ("speech", MODEL_ID, {"sample_rate": 16000, "samples": 49152}, [])
    expected = [v for v in MANIFEST["packets"] if v["name"].startswith("speech")]
    assert [p.sequence for p in c.packets] == [v["sequence"] for v in expected]
    for p, v in zip(c.packets, expected):
        assert decode_indices(p.payload, p.n_symbols, CODES[16], p.fixed).tolist() == v["indices"]


def test_golden_image_file_v3():
    """Image file v3 and the context coder: the committed file reads to its metadata and tiles,
    each tile's values decode exactly, and coding them again gives the same bytes."""
    from streamcodec.bitstream.image_file import read_image_file, write_image_file
    from streamcodec.core import context_code

    manifest = json.loads((GOLDEN / "vectors_v3.json").read_text())
    code = context_code.build_tables(context_code.scale_edges())
    data = (GOLDEN / "image_v3.sci").read_bytes()
    f = read_image_file(data)
    assert f.model_id.hex() == manifest["model_id"] and f.meta == manifest["meta"]
    assert [t.hex() for t in f.tiles] == [t["payload"] for t in manifest["tiles"]]
    for payload, t in zip(f.tiles, manifest["tiles"]):
        n, pos = context_code.read_varint(payload, 0)
        zb, yb = np.array(t["z_buckets"]), np.array(t["y_buckets"])
        assert context_code.decode(payload[pos : pos + n], zb, code).tolist() == t["z"]
        assert context_code.decode(payload[pos + n :], yb, code).tolist() == t["y"]
        z_bytes = context_code.encode(np.array(t["z"]), zb, code)
        assert context_code.varint(len(z_bytes)) + z_bytes + context_code.encode(np.array(t["y"]), yb, code) == payload
    assert write_image_file(f.model_id, f.meta, f.tiles) == data
