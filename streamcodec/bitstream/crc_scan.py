"""CRC-8 of every window of a byte string at once (numpy), for finding records in damaged files.

CRC-8 with initial value 0 is linear: crc(a + b) = shift(crc(a), len(b)) ^ crc(b), where shift
multiplies by x^(8 len(b)) modulo the polynomial. So one prefix pass P[i] = crc(data[:i]) gives the
checksum of any window as crc(data[a:b]) = P[b] ^ shift(P[a], b - a), and a candidate record at each
of the file's offsets costs a few array operations instead of a Python loop over its bytes: a
crafted file of back-to-back fake headers parses as fast as a clean one.
"""

import numpy as np

POLY = 0x07
MAX_SHIFT = 256  # windows of up to this many bytes (a packet is at most 256)
_BLOCK = 256


def _tables() -> tuple[np.ndarray, np.ndarray]:
    byte = np.arange(256)
    c = byte.copy()
    for _ in range(8):
        c = np.where(c & 0x80, ((c << 1) ^ POLY) & 0xFF, (c << 1) & 0xFF)
    table = c.astype(np.uint8)  # crc of one byte, which is also shift by one zero byte
    shift = np.empty((MAX_SHIFT + 1, 256), np.uint8)
    shift[0] = byte
    for n in range(1, MAX_SHIFT + 1):
        shift[n] = table[shift[n - 1]]
    return table, shift


TABLE, SHIFT = _tables()


def crc8_prefix(data: np.ndarray) -> np.ndarray:
    """P with P[i] = crc8(data[:i]), len(data) + 1 values: blocks of 256 bytes run side by side,
    then each block's start value is carried in (shift is linear, so it is added afterwards)."""
    n = len(data)
    blocks = -(-n // _BLOCK)
    padded = np.zeros(blocks * _BLOCK, np.uint8)
    padded[:n] = data
    cols = np.ascontiguousarray(padded.reshape(blocks, _BLOCK).T)  # byte j of every block in a row
    local = np.empty((_BLOCK, blocks), np.uint8)  # crc of each block's first j + 1 bytes, from 0
    c = np.zeros(blocks, np.uint8)
    for j in range(_BLOCK):
        c = local[j] = TABLE[c ^ cols[j]]
    start = [0] * blocks  # crc of everything before each block
    ends, shift_block = local[-1].tolist(), SHIFT[_BLOCK].tolist()
    for k in range(1, blocks):
        start[k] = shift_block[start[k - 1]] ^ ends[k - 1]
    start = np.array(start, np.uint8)
    for j in range(_BLOCK):
        local[j] ^= SHIFT[j + 1][start]
    prefix = np.empty(n + 1, np.uint8)
    prefix[0] = 0
    prefix[1:] = local.T.reshape(-1)[:n]
    return prefix


def window_crc(prefix: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """crc8(data[a:b]) for arrays of window bounds (0 <= b - a <= MAX_SHIFT)."""
    return prefix[b] ^ SHIFT[b - a, prefix[a]]
