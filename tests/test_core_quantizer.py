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
