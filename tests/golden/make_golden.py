"""Writes the golden bitstream vectors. Run it only when the format changes on purpose (and bump
the format version); tests/test_bitstream_golden.py checks the committed files bit for bit.

    .venv/bin/python tests/golden/make_golden.py
"""

import json
from pathlib import Path

import numpy as np

from streamcodec.bitstream import FLAG_FIRST, FLAG_LAST, Packet, encode_packet, write_container
from streamcodec.core.entropy import encode_indices
from streamcodec.core.huffman import HuffmanCode

HERE = Path(__file__).parent
MODEL_ID = bytes.fromhex("5c0dec01")


def vectors():
    rng = np.random.default_rng(20261125)
    speech_p = np.exp(-np.abs(np.arange(16) - 7.5) / 2.0)
    speech_p /= speech_p.sum()
    speech_code = HuffmanCode.from_histogram(np.round(speech_p * 100_000).astype(int))
    image_p = np.exp(-np.abs(np.arange(64) - 31.5) / 6.0)
    image_p /= image_p.sum()
    image_code = HuffmanCode.from_histogram(np.round(image_p * 1_000_000).astype(int))
    cases = [
        ("speech_first", speech_code, rng.choice(16, (8, 64), p=speech_p), 7, 0, FLAG_FIRST),
        ("speech_fixed_fallback", speech_code, rng.integers(0, 16, (8, 64)), 7, 1, 0),  # uniform: Huffman longer
        ("speech_last", speech_code, rng.choice(16, (8, 64), p=speech_p), 7, 2, FLAG_LAST),
        ("image", image_code, rng.choice(64, (16, 6, 9), p=image_p), 0xFFFFFFFF, 0xFFFFFFFF, FLAG_FIRST | FLAG_LAST),
    ]
    for name, code, idx, stream, seq, flags in cases:
        payload, fixed = encode_indices(idx, code)
        yield name, code, idx, Packet(MODEL_ID, stream, seq, 1_764_000_000_000_000 + seq, idx.shape, payload,
                                      flags | (4 if fixed else 0))


def main():
    manifest = {"model_id": MODEL_ID.hex(), "codes": {}, "packets": []}
    speech_packets = []
    for name, code, idx, packet in vectors():
        (HERE / f"{name}.bin").write_bytes(encode_packet(packet))
        manifest["codes"][str(code.n_symbols)] = code.lengths.tolist()
        manifest["packets"].append({
            "name": name, "stream_id": packet.stream_id, "sequence": packet.sequence,
            "capture_time_us": packet.capture_time_us, "flags": packet.flags, "shape": list(idx.shape),
            "levels": code.n_symbols, "indices": idx.ravel().tolist(),
        })
        if name.startswith("speech"):
            speech_packets.append(packet)
    write_container(HERE / "speech.scf", "speech", MODEL_ID, {"sample_rate": 16000, "samples": 49152},
                    speech_packets)
    (HERE / "vectors.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
