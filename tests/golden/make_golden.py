"""Writes the golden bitstream vectors. Run it only when the format changes on purpose (and bump
the format version); tests/test_bitstream_golden.py checks the committed files bit for bit.
Speech is format v2 (speech_v2_*.bin, speech_v2.scf); the v1 speech vectors stay as what this
release must refuse with a clear message; image-photo files use the v1 packet and container, and
image-rd files are image file v3 (image_v3.sci: two tiles coded with the tables built from the
Gaussians, so no trained model is needed to check them).

    .venv/bin/python tests/golden/make_golden.py
"""

import json
from pathlib import Path

import numpy as np

from streamcodec.bitstream import FLAG_FIRST, FLAG_LAST, Packet, encode_packet, write_container
from streamcodec.bitstream.speech import TYPE_COMFORT, TYPE_SPEECH, SpeechFileWriter, SpeechPacket
from streamcodec.bitstream.image_file import write_image_file
from streamcodec.core import context_code
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


def v2_vectors():
    """(name, indices or None, packet): a first speech frame, a comfort-noise frame, a frame after
    the 16-bit sequence wrapped, and a short last frame carrying 6,016 samples (13 of 32 steps)."""
    rng = np.random.default_rng(20261126)
    p = np.exp(-np.abs(np.arange(16) - 7.5) / 2.0)
    p /= p.sum()
    code = HuffmanCode.from_histogram(np.round(p * 100_000).astype(int))
    first = rng.choice(16, (16, 32), p=p)
    wrapped = rng.choice(16, (16, 32), p=p)
    short = rng.choice(16, (16, 13), p=p)
    return code, [
        ("speech_v2_first", first, SpeechPacket(0, 52, code.encode(first)[0], TYPE_SPEECH, first=True)),
        ("speech_v2_comfort", None, SpeechPacket(1, 150, bytes(range(0x10, 0x90, 0x10)), TYPE_COMFORT)),
        ("speech_v2_wrapped", wrapped, SpeechPacket(65535, 60, code.encode(wrapped)[0], TYPE_SPEECH)),
        ("speech_v2_short_last", short, SpeechPacket(0, 61, code.encode(short)[0], TYPE_SPEECH, 6016, last=True)),
    ]


def main_v2():
    code, cases = v2_vectors()
    manifest = {"model_id": MODEL_ID.hex(), "code": code.lengths.tolist(), "samples": 3 * 16384 + 6016,
                "packets": []}
    with open(HERE / "speech_v2.scf", "wb") as f:
        writer = SpeechFileWriter(f, MODEL_ID, manifest["samples"])
        for name, idx, packet in cases:
            data = packet.encode()
            (HERE / f"{name}.bin").write_bytes(data)
            writer.write(data)
            manifest["packets"].append({
                "name": name, "sequence": packet.sequence, "level": packet.level, "kind": packet.kind,
                "samples": packet.samples, "first": packet.first, "last": packet.last,
                "payload": packet.payload.hex(), "indices": None if idx is None else idx.tolist()})
    (HERE / "vectors_v2.json").write_text(json.dumps(manifest, indent=1) + "\n")


def v3_tiles():
    """Two tiles' (z, z buckets, y residuals, y buckets): Gaussian values at scales across every
    kind of bucket (run-flagged, grouped, direct), whole zero channels, and escapes."""
    rng = np.random.default_rng(20261203)
    edges = context_code.scale_edges()
    tiles = []
    for shape in ((16, 2, 3), (16, 1, 2)):
        scale = np.exp(rng.uniform(np.log(0.11), np.log(40.0), (8, *shape[1:]))).repeat(2, 0)
        scale[:2] = 0.11  # channels that are all but empty
        y = np.round(rng.normal(0, scale)).astype(np.int64)
        y.flat[5] = 700  # beyond every table: escaped
        z_scale = np.full((4, 1, 1), 1.5)
        z = np.round(rng.normal(0, 1.5, (4, 1, 1))).astype(np.int64)
        tiles.append((z, context_code.buckets_of(z_scale, edges), y, context_code.buckets_of(scale, edges)))
    return tiles


def main_v3():
    code = context_code.build_tables(context_code.scale_edges())
    meta = {"width": 40, "height": 20, "tile": 1024, "quality": 2.5}
    payloads, manifest = [], {"model_id": MODEL_ID.hex(), "meta": meta, "tiles": []}
    for z, zb, y, yb in v3_tiles():
        z_bytes = context_code.encode(z, zb, code)
        payloads.append(context_code.varint(len(z_bytes)) + z_bytes + context_code.encode(y, yb, code))
        manifest["tiles"].append({"z": z.ravel().tolist(), "z_buckets": zb.ravel().tolist(),
                                  "y": y.ravel().tolist(), "y_buckets": yb.ravel().tolist(),
                                  "payload": payloads[-1].hex()})
    (HERE / "image_v3.sci").write_bytes(write_image_file(MODEL_ID, meta, payloads))
    (HERE / "vectors_v3.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main():
    main_v2()
    main_v3()
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
