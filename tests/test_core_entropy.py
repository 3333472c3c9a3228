import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from streamcodec import BitstreamError
from streamcodec.core.entropy import decode_indices, encode_indices, pack_fixed, unpack_fixed
from streamcodec.core.huffman import MAX_LENGTH, HuffmanCode, code_lengths


def _geometric_code(n=16, ratio=0.7):
    return HuffmanCode.from_histogram((1000 * ratio ** np.arange(n)).astype(int) + 1)


def test_code_is_prefix_free_and_optimal_for_dyadic_counts():
    code = HuffmanCode.from_histogram([8, 4, 2, 1, 1])
    np.testing.assert_array_equal(code.lengths, [1, 2, 3, 4, 4])
    words = [format(int(c), f"0{n}b") for c, n in zip(code.codes, code.lengths)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_lengths_are_limited():
    counts = (2.0 ** np.arange(40)).astype(np.int64)  # Fibonacci-like skew wants 39-bit codes
    lengths = code_lengths(counts)
    assert lengths.max() <= MAX_LENGTH
    assert np.sum(2.0 ** -lengths.astype(float)) <= 1.0


def test_table_round_trips_through_bytes():
    code = _geometric_code(64)
    again = HuffmanCode.from_bytes(code.to_bytes())
    np.testing.assert_array_equal(again.codes, code.codes)
    assert len(code.to_bytes()) == 64


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=0, max_size=600))
def test_huffman_round_trip(symbols):
    code = _geometric_code()
    data, n_bits = code.encode(symbols)
    assert n_bits == code.bit_count(symbols) and len(data) == -(-n_bits // 8)
    np.testing.assert_array_equal(code.decode(data, len(symbols)), symbols)


def test_decoder_rejects_truncation_garbage_and_invalid_codes():
    code = _geometric_code()
    data, _ = code.encode(np.arange(16))
    with pytest.raises(BitstreamError, match="truncated"):
        code.decode(data[:-2], 16)
    with pytest.raises(BitstreamError, match="bits left"):
        code.decode(data + b"\x00", 16)
    with pytest.raises(BitstreamError, match="truncated"):
        code.decode(b"", 1)
    incomplete = HuffmanCode(np.array([1, 2]))  # the word "11" is unused
    with pytest.raises(BitstreamError, match="invalid Huffman code"):
        incomplete.decode(b"\xff", 1)


def test_invalid_tables_are_refused():
    for lengths in ([1, 1, 1], [0, 1], [1], [16, 16]):
        with pytest.raises(BitstreamError):
            HuffmanCode(np.array(lengths))


def test_fixed_packing_round_trip_and_length_check():
    idx = np.random.default_rng(0).integers(0, 64, 101)
    data = pack_fixed(idx, 6)
    np.testing.assert_array_equal(unpack_fixed(data, 101, 6), idx)
    with pytest.raises(BitstreamError):
        unpack_fixed(data + b"\x00", 101, 6)


def test_payload_never_longer_than_fixed_packing():
    code = _geometric_code(ratio=0.5)
    skewed = np.zeros(512, int)
    uniform = np.random.default_rng(0).integers(0, 16, 512)
    uniform[:300] = 15  # the rarest symbol: Huffman would be far longer than 4 bits each
    for idx, want_fixed in ((skewed, False), (uniform, True)):
        payload, fixed = encode_indices(idx, code)
        assert fixed is want_fixed
        assert len(payload) * 8 <= 2048
        np.testing.assert_array_equal(decode_indices(payload, 512, code, fixed), idx)
