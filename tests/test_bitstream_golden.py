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
