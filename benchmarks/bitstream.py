"""Microseconds to code one speech packet (512 indices, 16 levels), and the header overhead.

    .venv/bin/python benchmarks/bitstream.py      # prints a table, writes benchmarks/results/bitstream.md

The indices follow a Laplacian-shaped histogram, as trained latents do; the Huffman code is built
from that histogram.
"""

import time

import numpy as np

from benchmarks import write_result
from streamcodec.bitstream import Packet, encode_packet, parse_packet
from streamcodec.bitstream.packet import header_bytes
from streamcodec.core.entropy import decode_indices, encode_indices
from streamcodec.core.huffman import HuffmanCode
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE

FRAME_SECONDS = BLOCK_SAMPLES / SAMPLE_RATE


def microseconds(fn, repeats=2000) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e6 * (time.perf_counter() - start) / repeats


def main() -> None:
    rng = np.random.default_rng(0)
    p = np.exp(-np.abs(np.arange(16) - 7.5) / 2.0)
    p /= p.sum()
    code = HuffmanCode.from_histogram(np.bincount(rng.choice(16, 1_000_000, p=p), minlength=16))
    indices = rng.choice(16, (8, 64), p=p)
    payload, fixed = encode_indices(indices, code)
    packet = Packet(b"bnch", 1, 1, 0, indices.shape, payload, 4 if fixed else 0)
    data = encode_packet(packet)

    def encode():
        pl, fx = encode_indices(indices, code)
        return encode_packet(Packet(b"bnch", 1, 1, 0, indices.shape, pl, 4 if fx else 0))

    def decode():
        q = parse_packet(data, 256)
        return decode_indices(q.payload, q.n_symbols, code, q.fixed)

    overhead = 8 * header_bytes(2)
    lines = [
        "| measure | value |", "|---|---|",
        f"| encode one speech packet (Huffman + packet) | {microseconds(encode):.0f} us |",
        f"| decode one speech packet (parse + CRC + Huffman) | {microseconds(decode):.0f} us |",
        f"| payload of this frame | {8 * len(payload)} bits ({8 * len(payload) / FRAME_SECONDS:.0f} bit/s) |",
        f"| header + CRC per packet | {overhead} bits ({overhead / FRAME_SECONDS:.0f} bit/s) |",
    ]
    text = "\n".join(lines) + "\n"
    write_result("bitstream.md", text)


if __name__ == "__main__":
    main()
