"""Payload coding of a frame's level indices: the model's Huffman code, or fixed-length packing
when Huffman would be longer (so a payload never exceeds n_symbols * ceil(log2(levels)) bits)."""

import numpy as np

from streamcodec.core.huffman import HuffmanCode
from streamcodec.errors import BitstreamError


def fixed_bits(n_levels: int) -> int:
    return max(1, int(np.ceil(np.log2(n_levels))))


def pack_fixed(indices: np.ndarray, bits: int) -> bytes:
    idx = np.asarray(indices, np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= 1 << bits):
        raise ValueError(f"indices must lie in 0..{(1 << bits) - 1}")
    shifts = np.arange(bits - 1, -1, -1)
    return np.packbits(((idx[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def unpack_fixed(data: bytes, count: int, bits: int) -> np.ndarray:
    needed = -(-count * bits // 8)
    if len(data) != needed:
        raise BitstreamError(f"fixed-length payload has {len(data)} bytes, {needed} expected for {count} symbols")
    b = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits).astype(np.int64)
    return b @ (1 << np.arange(bits - 1, -1, -1))


def encode_indices(indices: np.ndarray, code: HuffmanCode) -> tuple[bytes, bool]:
    """Returns (payload, fixed): Huffman unless fixed-length packing is shorter."""
    bits = fixed_bits(code.n_symbols)
    if code.bit_count(indices) > np.size(indices) * bits:
        return pack_fixed(indices, bits), True
    return code.encode(indices)[0], False


def decode_indices(payload: bytes, count: int, code: HuffmanCode, fixed: bool) -> np.ndarray:
    """Exactly `count` indices, each < code.n_symbols, or a BitstreamError."""
    if fixed:
        idx = unpack_fixed(payload, count, fixed_bits(code.n_symbols))
        if idx.size and idx.max() >= code.n_symbols:
            raise BitstreamError(f"index {int(idx.max())} out of range for {code.n_symbols} levels")
        return idx
    if count > 8 * len(payload):  # every code word has at least one bit
        raise BitstreamError(f"payload of {len(payload)} bytes cannot hold {count} symbols")
    return code.decode(payload, count)
