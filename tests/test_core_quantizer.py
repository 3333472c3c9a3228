import numpy as np
import pytest

from streamcodec.core.quantizer import dequantize, fit_levels, quantize


def test_levels_are_sorted_distinct_and_deterministic():
    x = np.random.default_rng(0).laplace(size=50_000)
    levels = fit_levels(x, 16, seed=3)
    assert levels.shape == (16,) and np.all(np.diff(levels) > 0)
    np.testing.assert_array_equal(levels, fit_levels(x, 16, seed=3))


def test_kmeans_beats_uniform_levels_on_peaky_data():
    x = np.random.default_rng(1).laplace(size=50_000)
    kmeans = fit_levels(x, 16)
    uniform = np.linspace(x.min(), x.max(), 16)
    err = {name: np.mean((x - dequantize(quantize(x, lv), lv)) ** 2) for name, lv in
           (("kmeans", kmeans), ("uniform", uniform))}
    assert err["kmeans"] < 0.5 * err["uniform"]


def test_projection_picks_the_nearest_level():
    levels = np.array([-1.0, 0.0, 0.5, 2.0], np.float32)
    x = np.array([-5, -0.6, -0.4, 0.2, 0.3, 1.2, 1.3, 9])
    np.testing.assert_array_equal(quantize(x, levels), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(dequantize(quantize(levels, levels), levels), levels)


def test_few_distinct_values_still_give_all_levels():
    levels = fit_levels(np.array([1.0, 1.0, 2.0]), 4)
    assert levels.size == 4 and np.all(np.diff(levels) > 0)


def test_bad_arguments():
    with pytest.raises(ValueError):
        fit_levels(np.array([np.nan]), 4)
    with pytest.raises(ValueError):
        fit_levels(np.arange(10.0), 1)


def test_entropy_constrained_levels_trade_error_for_bits():
    from streamcodec.core.huffman import HuffmanCode
    from streamcodec.core.quantizer import fit_levels_entropy

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.laplace(0, s, 4000) for s in np.geomspace(4, 0.2, 16)])
    target = 1 / 12
    plain, constrained = fit_levels(x, 64), fit_levels_entropy(x, 64, target)
    assert constrained.shape == (64,) and np.all(np.diff(constrained) > 0)

    def cost(levels):
        idx = quantize(x, levels)
        code = HuffmanCode.from_histogram(np.bincount(idx, minlength=64) + 1)
        return np.mean((x - levels[idx]) ** 2), code.bit_count(idx) / x.size

    (mse_plain, bits_plain), (mse, bits) = cost(plain), cost(constrained)
    assert 0.5 * target < mse <= 1.05 * target  # error where it was asked to be
    assert bits < 0.6 * bits_plain and mse_plain < mse  # k-means: small error, about 6 bits a symbol
    assert quantize(np.array([x.max() + 0.1, x.min() - 0.1]), constrained).tolist() != [63, 0]  # spare levels lie out of reach
