"""Microseconds to code one speech packet (512 indices, 16 levels, format v2), the overhead a
frame carries on the wire, and how fast speech files parse: clean, with random damage, and 2 MB
of back-to-back fake record headers (each looks like a record until its checksum).

    .venv/bin/python benchmarks/bitstream.py      # prints a table, writes benchmarks/results/bitstream.md

The indices follow a Laplacian-shaped histogram, as trained latents do; the Huffman code is built
from that histogram.
"""

import time

import numpy as np

from benchmarks import write_result
from streamcodec.bitstream.speech import (
    FILE_HEADER_BYTES, SpeechPacket, encode_file_header, encode_record, overhead_bytes, parse_speech_packet,
    read_speech_file,
)
from streamcodec.core.huffman import HuffmanCode
from streamcodec.speech.codec import RECORD_BYTES
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
    indices = rng.choice(16, (16, 32), p=p)
    payload = code.encode(indices)[0]
    data = SpeechPacket(1, 60, payload).encode()

    def encode():
        return SpeechPacket(1, 60, code.encode(indices)[0]).encode()

    def decode():
        return code.decode(parse_speech_packet(data).payload, indices.size)

    header = encode_file_header(b"test", 0)
    clean = header + b"".join(encode_record(SpeechPacket(i % 65536, 60, rng.bytes(240)).encode())
                              for i in range(8192))  # 2 MB, 2.3 hours of frames
    damaged = bytearray(clean)
    for at in rng.integers(len(header), len(clean) - 64, 200):
        damaged[at : at + 64] = rng.bytes(64)
    fake = header + bytes([0x07, 0x20]) * 2**20

    def parse_rate(blob) -> float:
        start = time.perf_counter()
        read_speech_file(bytes(blob))
        return len(blob) / 2**20 / (time.perf_counter() - start)

    overhead = 8 * overhead_bytes()
    lines = [
        "| measure | value |", "|---|---|",
        f"| encode one speech packet (Huffman + packet) | {microseconds(encode):.0f} us |",
        f"| decode one speech packet (parse + CRC-8 + Huffman) | {microseconds(decode):.0f} us |",
        f"| payload of this frame | {8 * len(payload)} bits ({8 * len(payload) / FRAME_SECONDS:.0f} bit/s) |",
        f"| packet header + CRC-8 | {overhead} bits ({overhead / FRAME_SECONDS:.0f} bit/s) |",
        f"| file record byte | {8 * RECORD_BYTES} bits ({8 * RECORD_BYTES / FRAME_SECONDS:.0f} bit/s) |",
        f"| file header, once | {8 * FILE_HEADER_BYTES} bits |",
        f"| parse a clean 2 MB speech file | {parse_rate(clean):.0f} MB/s |",
        f"| parse it with 200 runs of 64 random bytes | {parse_rate(damaged):.0f} MB/s |",
        f"| parse 2 MB of back-to-back fake record headers | {parse_rate(fake):.0f} MB/s |",
    ]
    text = "\n".join(lines) + "\n"
    write_result("bitstream.md", text)


if __name__ == "__main__":
    main()
