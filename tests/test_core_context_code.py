"""Context-selected Huffman codes: exact round trips (escapes and grouped buckets included), coded
size near the Gaussian's own entropy, and hostile bytes give only BitstreamError."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from streamcodec.core import context_code as cc
from streamcodec.errors import BitstreamError

CODE = cc.build_tables(cc.scale_edges())


def _latent(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian values with log-uniform scales (as a hyperprior predicts them), rounded."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.uniform(math.log(0.11), math.log(20), n))
    return np.round(rng.normal(0, scale)).astype(np.int64), scale, cc.buckets_of(scale, CODE.edges)


def test_round_trip_with_escapes_and_groups():
    values, _, buckets = _latent(20_000, 0)
    values[::997] = 3000  # far outside every table's range
    values[1::1499] = -2  # a grouped bucket's group escapes
    data = cc.encode(values, buckets, CODE)
    np.testing.assert_array_equal(cc.decode(data, buckets, CODE), values)
    assert any(CODE.grouped(b) for b in np.unique(buckets))


def test_coded_size_is_near_the_entropy():
    values, scale, buckets = _latent(50_000, 1)
    c = 1 / (scale * math.sqrt(2))
    d = np.abs(values)
    p = 0.5 * (np.vectorize(math.erfc)((d - 0.5) * c) - np.vectorize(math.erfc)((d + 0.5) * c))
    ideal = -np.log2(p).sum()
    coded = 8 * len(cc.encode(values, buckets, CODE))
    assert ideal < coded < 1.06 * ideal, (coded, ideal)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 200), st.integers(0, 10_000))
def test_hostile_bytes_are_a_bitstream_error(data, n, seed):
    buckets = np.random.default_rng(seed).integers(0, len(CODE.codes), n)
    try:
        out = cc.decode(data, buckets, CODE)
        assert out.shape == (n,)
    except BitstreamError:
        pass


def test_tables_ship_as_lengths():
    again = cc.ContextCode.from_lengths(CODE.edges, CODE.ranges, CODE.lengths(), CODE.runs)
    values, _, buckets = _latent(1000, 2)
    assert cc.encode(values, buckets, again) == cc.encode(values, buckets, CODE)
    with pytest.raises(ValueError):
        cc.encode(np.array([1 << 15]), np.array([5]), CODE)


def test_tables_fitted_to_heavier_tailed_values_spend_less_and_still_round_trip():
    """Latents whose real distribution is not the predicted Gaussian (Laplacian and narrower than
    predicted here, as a model's latents are): tables fitted on one sample code another in fewer
    bytes."""
    rng = np.random.default_rng(3)

    def laplace(n):
        scale = np.exp(rng.uniform(math.log(0.11), math.log(20), n))
        return np.round(rng.laplace(0, scale / 3)).astype(np.int64), cc.buckets_of(scale, CODE.edges)

    fitted = cc.fit_tables(CODE, [laplace(50_000)])
    values, buckets = laplace(50_000)
    data = cc.encode(values, buckets, fitted)
    np.testing.assert_array_equal(cc.decode(data, buckets, fitted), values)
    assert len(data) < 0.95 * len(cc.encode(values, buckets, CODE))
    assert (fitted.ranges, fitted.runs) == (CODE.ranges, CODE.runs)
