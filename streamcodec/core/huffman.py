"""Canonical Huffman coding of quantiser indices.

The code is built once from the training histogram and ships with the model as its code lengths
(one byte per symbol), from which encoder and decoder rebuild the same canonical code. Codes are at
most MAX_LENGTH bits. Decoding is table driven, bounded by the bit count, and never returns more
symbols than asked for.
"""

import heapq

import numpy as np

from streamcodec.errors import BitstreamError

MAX_LENGTH = 15


def code_lengths(counts: np.ndarray, max_length: int = MAX_LENGTH) -> np.ndarray:
    """Huffman code lengths for a histogram. Every symbol gets a code (zero counts are taken as
    one), and lengths are limited by halving the counts until the longest code fits."""
    counts = np.maximum(np.asarray(counts, np.int64).ravel(), 1)
    if counts.size < 2:
        raise ValueError("a Huffman code needs at least 2 symbols")
    if counts.size > 2**max_length:
        raise ValueError(f"{counts.size} symbols do not fit in codes of {max_length} bits")
    while True:
        lengths = _huffman_lengths(counts)
        if lengths.max() <= max_length:
            return lengths.astype(np.uint8)
        counts = (counts + 1) // 2


def _huffman_lengths(counts: np.ndarray) -> np.ndarray:
    heap = [(int(c), i, (i,)) for i, c in enumerate(counts)]  # (weight, tie-break, symbols)
    heapq.heapify(heap)
    lengths = np.zeros(counts.size, np.int64)
    tie = counts.size
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, tie, s1 + s2))
        tie += 1
    return lengths


class HuffmanCode:
    """A canonical prefix code given by its code lengths (1..MAX_LENGTH for every symbol)."""

    def __init__(self, lengths: np.ndarray) -> None:
        lengths = np.asarray(lengths, np.int64).ravel()
        if lengths.size < 2 or lengths.min() < 1 or lengths.max() > MAX_LENGTH:
            raise BitstreamError(f"invalid Huffman code lengths (need >= 2 symbols, 1..{MAX_LENGTH} bits)")
        kraft = np.sum(2.0 ** -lengths)
        if kraft > 1.0 + 1e-12:
            raise BitstreamError("invalid Huffman code lengths: they do not form a prefix code")
        self.lengths = lengths.astype(np.uint8)
        self.max_length = int(lengths.max())
        self.codes = np.zeros(lengths.size, np.int64)
        code, previous = 0, 0
        for sym in np.lexsort((np.arange(lengths.size), lengths)):  # by length, then symbol
            code <<= int(lengths[sym]) - previous
            previous = int(lengths[sym])
            self.codes[sym] = code
            code += 1
        # Lookup table on max_length-bit windows: symbol and code length, -1 where no code starts.
        self._table_symbol = np.full(1 << self.max_length, -1, np.int64)
        self._table_length = np.zeros(1 << self.max_length, np.int64)
        for sym, (c, n) in enumerate(zip(self.codes, lengths)):
            start = int(c) << (self.max_length - int(n))
            self._table_symbol[start : start + (1 << (self.max_length - int(n)))] = sym
            self._table_length[start : start + (1 << (self.max_length - int(n)))] = n
        self._symbol_list = self._table_symbol.tolist()
        self._length_list = self._table_length.tolist()

    @classmethod
    def from_histogram(cls, counts: np.ndarray) -> "HuffmanCode":
        return cls(code_lengths(counts))

    @property
    def n_symbols(self) -> int:
        return int(self.lengths.size)

    def to_bytes(self) -> bytes:
        """The code as stored in a model: one byte per symbol, its code length."""
        return self.lengths.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "HuffmanCode":
        return cls(np.frombuffer(data, np.uint8))

    def bit_count(self, symbols: np.ndarray) -> int:
        return int(self.lengths[np.asarray(symbols, np.int64)].astype(np.int64).sum())

    def encode(self, symbols: np.ndarray) -> tuple[bytes, int]:
        """Symbols -> (bytes, number of bits); the last byte is padded with zero bits."""
        symbols = np.asarray(symbols, np.int64).ravel()
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self.n_symbols):
            raise ValueError(f"symbols must lie in 0..{self.n_symbols - 1}")
        lens = self.lengths[symbols].astype(np.int64)
        total = int(lens.sum())
        starts = np.repeat(np.cumsum(lens) - lens, lens)
        shift = np.repeat(lens - 1, lens) - (np.arange(total) - starts)
        bits = (np.repeat(self.codes[symbols], lens) >> shift) & 1
        return np.packbits(bits.astype(np.uint8)).tobytes(), total

    def decode(self, data: bytes, count: int) -> np.ndarray:
        """Exactly `count` symbols from `data`, followed by fewer than 8 zero bits of padding;
        anything else is a BitstreamError."""
        n_bits = 8 * len(data)
        width = self.max_length
        bits = np.unpackbits(np.frombuffer(data, np.uint8))
        padded = np.concatenate([bits, np.zeros(width, np.uint8)]).astype(np.int64)
        # Value of the `width`-bit window starting at every bit position.
        windows = np.zeros(n_bits + 1, np.int64)
        for j in range(width):
            windows = (windows << 1) | padded[j : j + n_bits + 1]
        windows = windows.tolist()
        out = np.empty(count, np.int64)
        table_symbol, table_length = self._symbol_list, self._length_list
        pos = 0
        for i in range(count):
            if pos >= n_bits:
                raise BitstreamError(f"payload truncated: {i} of {count} symbols decoded")
            w = windows[pos]
            sym = table_symbol[w]
            if sym < 0:
                raise BitstreamError(f"invalid Huffman code at bit {pos}")
            pos += table_length[w]
            if pos > n_bits:
                raise BitstreamError(f"payload truncated: {i} of {count} symbols decoded")
            out[i] = sym
        if n_bits - pos >= 8 or any(bits[pos:]):
            raise BitstreamError(f"{n_bits - pos} bits left after {count} symbols: only zero padding may follow")
        return out
