import time

import numpy as np
import pytest
import torch

from streamcodec.core.quantizer import quantize
from streamcodec.core.search import (
    GeneratorObjective,
    RateLimit,
    RoutedObjective,
    admm_search,
    loudness_weighted_mse,
    mse_per_item,
    quantize_within,
)
from streamcodec.nets import runtime
from streamcodec.nets.speech import SpeechNetConfig, build

LEVELS = np.linspace(-2, 2, 16).astype(np.float32)


def _problem(batch=3, seed=0):
    torch.manual_seed(seed)
    _, G = build(SpeechNetConfig("conv1d", 16, 32, 1))
    G = runtime.generator({f"generator.{k}": v.numpy() for k, v in G.state_dict().items()}, (1,))
    rng = np.random.default_rng(seed)
    target_z = LEVELS[rng.integers(0, 16, (batch, 16, 8))]
    x = G(target_z)
    z0 = (target_z + 0.6 * rng.standard_normal(target_z.shape)).astype(np.float32)  # a poor first guess
    return G, x, z0, target_z


def _true_loss(G, x, latent):
    return mse_per_item(x, G(latent))[0]


def test_search_lowers_the_true_loss_of_every_frame():
    G, x, z0, _ = _problem()
    result = admm_search(GeneratorObjective(G, x), z0, LEVELS, iters=60, lr=0.05, mu=0.01)
    assert result.iterations == 60
    assert np.all(result.loss <= result.initial_loss)
    assert np.all(result.loss < 0.8 * result.initial_loss)
    np.testing.assert_array_equal(result.latent, LEVELS[result.indices])
    assert result.indices.min() >= 0 and result.indices.max() < 16


def test_returned_loss_is_the_true_loss_of_the_returned_latent():
    G, x, z0, _ = _problem()
    result = admm_search(GeneratorObjective(G, x), z0, LEVELS, iters=10)
    np.testing.assert_allclose(_true_loss(G, x, result.latent), result.loss, rtol=1e-6)


@pytest.mark.parametrize("iters, eval_every, eval_from, scored", [
    (18, 4, 9, [12, 16, 18]),  # the speech codec's: the first latents, then from half the iterations on
    (16, 4, 0, [4, 8, 12, 16]),
    (10, 2, 11, [10]),  # nothing in range: the last iterate is still scored
])
def test_scoring_schedule(iters, eval_every, eval_from, scored):
    """Which quantised iterates the search scores: the first latents, every `eval_every`-th from
    `eval_from` on, and the last; each scoring is one loss() call on the batch."""
    G, x, z0, _ = _problem()
    objective = GeneratorObjective(G, x)
    steps, scorings = [], []  # gradient steps so far at each scoring = the iteration it scores
    real_loss, real_grad = objective.loss, objective.loss_and_grad
    objective.loss = lambda z: (scorings.append(len(steps)), real_loss(z))[1]
    objective.loss_and_grad = lambda z: (steps.append(1), real_grad(z))[1]
    result = admm_search(objective, z0, LEVELS, iters=iters, eval_every=eval_every, eval_from=eval_from)
    assert result.iterations == iters
    assert scorings == [0, *scored]


@pytest.mark.parametrize("loss_fn", [mse_per_item, loudness_weighted_mse])
def test_gradient_is_the_loss_derivative(loss_fn):
    """The objective's gradient (the loss's, through G's vector-Jacobian product) against finite
    differences."""
    G, x, z0, _ = _problem(batch=2)
    objective = GeneratorObjective(G, x, loss_fn)
    loss, grad = objective.loss_and_grad(z0)
    rng = np.random.default_rng(1)
    direction = rng.standard_normal(z0.shape).astype(np.float32)
    eps = 1e-2
    plus, minus = objective.loss(z0 + eps * direction), objective.loss(z0 - eps * direction)
    numeric = (plus - minus) / (2 * eps)
    analytic = (grad * direction).reshape(2, -1).sum(axis=1)
    np.testing.assert_allclose(analytic, numeric, rtol=0.05)  # float32, LeakyReLU kinks


def test_routed_objective_is_each_frames_own_generator():
    """A batch split between two generators: each item's loss and gradient are those of its own
    generator, and a search over the mixed batch equals the two searches run apart."""
    G, x, z0, _ = _problem(batch=4)
    H, *_ = _problem(batch=4, seed=1)
    route = np.array([0, 1, 1, 0])
    routed = RoutedObjective([(G, loudness_weighted_mse), (H, loudness_weighted_mse)], route, x)
    loss, grad = routed.loss_and_grad(z0)
    for k, net in enumerate((G, H)):
        items = route == k
        own_loss, own_grad = GeneratorObjective(net, x[items], loudness_weighted_mse).loss_and_grad(z0[items])
        np.testing.assert_allclose(loss[items], own_loss, rtol=1e-6)
        np.testing.assert_allclose(grad[items], own_grad, rtol=1e-6)
        alone = admm_search(GeneratorObjective(net, x[items], loudness_weighted_mse), z0[items], LEVELS, iters=5)
        mixed = admm_search(routed, z0, LEVELS, iters=5)
        np.testing.assert_array_equal(mixed.indices[items], alone.indices)
    assert not np.allclose(loss, GeneratorObjective(G, x, loudness_weighted_mse).loss(z0))
    single = RoutedObjective([(G, mse_per_item), (H, loudness_weighted_mse)], np.zeros(4, int), x)
    assert len(single.parts) == 1 and np.allclose(single.loss(z0), GeneratorObjective(G, x).loss(z0))


def test_scoring_less_often_still_scores_the_last_iterate():
    """Scoring does not steer the iterates: scoring every iteration finds a best at least as good
    as scoring every third, and the final iterate is scored however the search ends."""
    G, x, z0, _ = _problem()
    every = {k: admm_search(GeneratorObjective(G, x), z0, LEVELS, iters=7, eval_every=k) for k in (1, 3, 7, 100)}
    assert np.all(every[1].loss <= every[3].loss)
    np.testing.assert_array_equal(every[100].indices, every[7].indices)  # only the 7th iterate scored
    np.testing.assert_allclose(every[100].loss, _true_loss(G, x, every[100].latent), rtol=1e-6)


def test_no_iterations_gives_the_quantised_encoder_output():
    G, x, z0, _ = _problem()
    for kwargs in ({"iters": 0}, {"iters": 50, "deadline": 0.0}):
        result = admm_search(GeneratorObjective(G, x), z0, LEVELS, **kwargs)
        assert result.iterations == 0
        np.testing.assert_array_equal(result.indices, quantize(z0, LEVELS))


def test_rate_limited_projection_fits_every_budget():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((3, 16, 8)).astype(np.float32)
    lengths = np.abs(np.arange(16) - 7.5).astype(np.int64) // 2 + 2  # cheap in the middle
    mask = np.ones(z.shape, bool)
    mask[2, :, 4:] = False  # a short frame sends half its steps
    free = quantize_within(z, LEVELS, RateLimit(lengths, np.full(3, 1e9), mask, fill=7))
    bits_free = (lengths[free] * mask).reshape(3, -1).sum(axis=1)
    budget = bits_free * 0.8
    idx = quantize_within(z, LEVELS, RateLimit(lengths, budget, mask, fill=7))
    assert np.all((lengths[idx] * mask).reshape(3, -1).sum(axis=1) <= budget)
    assert np.all(idx[2, :, 4:] == 7)
    np.testing.assert_array_equal(free[:2], quantize(z[:2], LEVELS))


def test_deadline_bounds_the_search():
    G, x, z0, _ = _problem(batch=1)
    start = time.perf_counter()
    result = admm_search(GeneratorObjective(G, x), z0, LEVELS, iters=100_000, deadline=0.2)
    assert time.perf_counter() - start < 1.0
    assert 0 < result.iterations < 100_000
