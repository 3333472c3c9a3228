"""Static Huffman codes chosen by context, for latents whose every value comes with a predicted
Gaussian scale (the image model's hyperprior): one table per scale bucket, so no table spends a
bit on values of much lower entropy. In the lowest buckets, where a value is 0 nine times in ten
and a table of single values would still spend a whole bit on it, GROUP values are coded as one
symbol; in the buckets below those, where whole channels are zero, a flag bit says whether a run
of values holds anything at all, and only the runs that do are coded, grouped. Values beyond a
table's range take its escape symbol and travel as 16-bit integers.

The coded form of n values with known buckets (the decoder computes the same buckets from what it
decoded before) is one substream per non-empty bucket, in bucket order, each behind its byte
length (a varint), then the escaped values. Tables are built from the Gaussian itself
(`build_tables`), deterministically, and ship with the model as code lengths.
"""

import math
from dataclasses import dataclass
from itertools import product

import numpy as np

from streamcodec.core.huffman import HuffmanCode, code_lengths
from streamcodec.errors import BitstreamError

GROUP = 4  # values per symbol in the grouped buckets
GROUP_VALUES = (-1, 0, 1)  # what a grouped symbol can hold; anything else escapes the group
GROUPED_BELOW = 0.35  # buckets of smaller scales are grouped
ESCAPE_LIMIT = 1 << 15


def scale_edges(n_buckets: int = 32, low: float = 0.11, high: float = 48.0) -> np.ndarray:
    """Bucket boundaries, log-spaced: bucket b holds scales in [edges[b-1], edges[b])."""
    return np.exp(np.linspace(math.log(low), math.log(high), n_buckets - 1))


def buckets_of(scale: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, np.asarray(scale, np.float64), side="right").astype(np.int64)


def _bucket_scale(b: int, edges: np.ndarray) -> float:
    """The scale a bucket's table is built for: the geometric middle of its range."""
    lo = edges[b - 1] if b > 0 else edges[0] / (edges[1] / edges[0])
    hi = edges[b] if b < len(edges) else edges[-1] * (edges[-1] / edges[-2])
    return math.sqrt(lo * hi)


def _gaussian_pmf(values: np.ndarray, scale: float) -> np.ndarray:
    c = 1 / (scale * math.sqrt(2))
    d = np.abs(values).astype(np.float64)
    return 0.5 * (np.vectorize(math.erfc)((d - 0.5) * c) - np.vectorize(math.erfc)((d + 0.5) * c))


@dataclass
class ContextCode:
    """The tables of every bucket: `ranges[b]` is the largest |value| bucket b codes directly
    (0 for a grouped bucket), `codes[b]` its Huffman code, escape symbol last."""

    edges: np.ndarray
    ranges: list[int]
    codes: list[HuffmanCode]
    runs: list[int]  # values per flag bit in the lowest buckets (1: no flags)

    def grouped(self, b: int) -> bool:
        return self.ranges[b] == 0

    def lengths(self) -> list[np.ndarray]:
        return [c.lengths for c in self.codes]

    @classmethod
    def from_lengths(cls, edges: np.ndarray, ranges: list[int], lengths: list[np.ndarray],
                     runs: list[int]) -> "ContextCode":
        return cls(np.asarray(edges, np.float64), list(ranges), [HuffmanCode(np.asarray(n)) for n in lengths],
                   list(runs))


_GROUPS = np.array(list(product(GROUP_VALUES, repeat=GROUP)), np.int64)  # symbol -> its GROUP values


def build_tables(edges: np.ndarray) -> ContextCode:
    """Huffman tables from the Gaussian pmf of each bucket's scale; the escape gets the tail mass."""
    ranges, codes, runs = [], [], []
    for b in range(len(edges) + 1):
        scale = _bucket_scale(b, edges)
        nonzero = 1.0 - float(_gaussian_pmf(np.array([0]), scale)[0])
        # a run long enough that about a third of the runs hold a value (whole groups, at most 256)
        run = int(np.clip(2 ** round(math.log2(max(0.4 / max(nonzero, 1e-12), 1.0))), 1, 256)) // GROUP * GROUP
        runs.append(run if run >= 2 * GROUP else 1)
        if scale < GROUPED_BELOW:
            single = _gaussian_pmf(np.array(GROUP_VALUES), scale)
            probs = np.prod(single[_GROUPS + 1], axis=1)
            ranges.append(0)
        else:
            r = max(2, math.ceil(8 * scale))
            probs = _gaussian_pmf(np.arange(-r, r + 1), scale)
            ranges.append(r)
        probs = np.append(probs, max(1.0 - probs.sum(), 1e-9))  # the escape
        codes.append(HuffmanCode(code_lengths(np.maximum(1, np.round(probs * 1e9)).astype(np.int64))))
    return ContextCode(np.asarray(edges, np.float64), ranges, codes, runs)


def fit_tables(code: ContextCode, samples) -> ContextCode:
    """The same buckets, ranges and runs with each bucket's Huffman table fitted to the symbols
    `encode` would send for `samples` ((values, buckets) pairs, e.g. latents of training photos):
    a model's predicted Gaussians are not its latents' real distribution (more peaked, heavier
    tails), and a table built for the real one spends less. Unseen symbols count once."""
    counts = [np.ones(c.n_symbols, np.int64) for c in code.codes]
    for values, buckets in samples:
        values, buckets = np.asarray(values, np.int64).ravel(), np.asarray(buckets, np.int64).ravel()
        for b in np.unique(buckets):
            v = values[buckets == b]
            if code.runs[b] > 1:
                v = _nonzero_runs(v, code.runs[b])[1]
            symbols, _ = _symbols(v, code, int(b))
            counts[b] += np.bincount(symbols, minlength=len(counts[b]))
    return ContextCode(code.edges, code.ranges, [HuffmanCode(code_lengths(c)) for c in counts], code.runs)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise BitstreamError("truncated or oversized length in a context-coded payload")
        byte = data[pos]
        n |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return n, pos


def _nonzero_runs(values: np.ndarray, run: int) -> tuple[np.ndarray, np.ndarray]:
    """(one flag per run of `run` values: does it hold a non-zero, the values of the flagged runs)."""
    runs = np.concatenate([values, np.zeros(-len(values) % run, np.int64)]).reshape(-1, run)
    flags = np.any(runs != 0, axis=1)
    return flags, runs[flags].ravel()


def _symbols(values: np.ndarray, code: ContextCode, b: int) -> tuple[np.ndarray, np.ndarray]:
    """One bucket's values -> (its symbols, the values its escapes carry)."""
    escape = code.codes[b].n_symbols - 1
    if code.grouped(b):
        pad = -len(values) % GROUP
        groups = np.concatenate([values, np.zeros(pad, np.int64)]).reshape(-1, GROUP)
        inside = np.all(np.abs(groups) <= 1, axis=1)
        digits = (groups + 1) @ (3 ** np.arange(GROUP - 1, -1, -1))
        return np.where(inside, digits, escape), groups[~inside].ravel()
    r = code.ranges[b]
    inside = np.abs(values) <= r
    return np.where(inside, values + r, escape), values[~inside]


def encode(values: np.ndarray, buckets: np.ndarray, code: ContextCode) -> bytes:
    """Integer values, each with its bucket -> bytes."""
    values, buckets = np.asarray(values, np.int64).ravel(), np.asarray(buckets, np.int64).ravel()
    if values.size and np.abs(values).max() >= ESCAPE_LIMIT:
        raise ValueError(f"values must lie within +-{ESCAPE_LIMIT - 1}")
    out, escaped = bytearray(), []
    for b in np.unique(buckets):
        v = values[buckets == b]
        if code.runs[b] > 1:  # flags first: which runs hold anything; only those are coded
            flags, v = _nonzero_runs(v, code.runs[b])
            packed = np.packbits(flags).tobytes()
            out += varint(len(packed)) + packed
        symbols, esc = _symbols(v, code, int(b))
        data, _ = code.codes[b].encode(symbols)
        out += varint(len(data)) + data
        escaped.append(esc)
    return bytes(out) + np.concatenate([np.zeros(0, np.int64), *escaped]).astype(">i2").tobytes()


def decode(data: bytes, buckets: np.ndarray, code: ContextCode) -> np.ndarray:
    """The values `encode` coded with these buckets; anything else is a BitstreamError."""
    buckets = np.asarray(buckets, np.int64).ravel()
    if buckets.size and (buckets.min() < 0 or buckets.max() >= len(code.codes)):
        raise BitstreamError("bucket out of range")
    values = np.zeros(buckets.size, np.int64)
    pos, pending = 0, []  # (bucket, positions, symbols) waiting for the escaped values
    for b in np.unique(buckets):
        where = np.flatnonzero(buckets == b)
        n, run, flags = where.size, code.runs[b], None
        if run > 1:
            n_runs = -(-n // run)
            length, pos = read_varint(data, pos)
            if length != -(-n_runs // 8) or pos + length > len(data):
                raise BitstreamError("context-coded payload: run flags of the wrong length")
            flags = np.unpackbits(np.frombuffer(data[pos : pos + length], np.uint8))[:n_runs].astype(bool)
            pos += length
            n = int(flags.sum()) * run
        count = -(-n // GROUP) if code.grouped(int(b)) else n
        length, pos = read_varint(data, pos)
        if pos + length > len(data):
            raise BitstreamError("context-coded payload truncated")
        pending.append((int(b), where, flags, n, code.codes[b].decode(data[pos : pos + length], count)))
        pos += length
    rest = data[pos:]
    if len(rest) % 2:
        raise BitstreamError("context-coded payload: escaped values are not whole 16-bit words")
    escaped = np.frombuffer(rest, ">i2").astype(np.int64)
    used = 0
    for b, where, flags, n, symbols in pending:
        escape = code.codes[b].n_symbols - 1
        hits = symbols == escape
        k = int(hits.sum()) * (GROUP if code.grouped(b) else 1)
        if used + k > escaped.size:
            raise BitstreamError("context-coded payload: escaped values missing")
        if code.grouped(b):
            groups = _GROUPS[np.where(hits, 0, symbols)].copy()
            groups[hits] = escaped[used : used + k].reshape(-1, GROUP)
            v = groups.ravel()[:n]
        else:
            v = symbols - code.ranges[b]
            v[hits] = escaped[used : used + k]
        if flags is not None:
            runs = np.zeros((flags.size, code.runs[b]), np.int64)
            runs[flags] = v.reshape(-1, code.runs[b])
            v = runs.ravel()
        values[where] = v[: where.size]
        used += k
    if used != escaped.size:
        raise BitstreamError("context-coded payload: bytes left after the escaped values")
    return values
