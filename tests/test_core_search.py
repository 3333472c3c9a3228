import time

import torch

from streamcodec.core.search import admm_search, quantize
from streamcodec.nets.speech import SpeechNetConfig, build

LEVELS = torch.linspace(-2, 2, 16)


def _problem(batch=3, seed=0):
    torch.manual_seed(seed)
    _, G = build(SpeechNetConfig("conv1d", 16, 32, 1))
    target_z = LEVELS[torch.randint(0, 16, (batch, 16, 8))]
    with torch.no_grad():
        x = G(target_z)
    z0 = target_z + 0.6 * torch.randn_like(target_z)  # a poor first guess, as from a weak encoder
    return G, x, z0, target_z


def test_search_lowers_the_true_loss_of_every_frame():
    G, x, z0, _ = _problem()
    result = admm_search(G, x, z0, LEVELS, iters=60, lr=0.05, mu=0.01)
    assert result.iterations == 60
    assert torch.all(result.loss <= result.initial_loss)
    assert torch.all(result.loss < 0.8 * result.initial_loss)
    torch.testing.assert_close(result.latent, LEVELS[result.indices])
    assert result.indices.min() >= 0 and result.indices.max() < 16


def test_returned_loss_is_the_true_loss_of_the_returned_latent():
    G, x, z0, _ = _problem()
    result = admm_search(G, x, z0, LEVELS, iters=10)
    with torch.no_grad():
        loss = (G(result.latent) - x).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(loss, result.loss)


def test_scoring_less_often_still_scores_the_last_iterate():
    """Scoring does not steer the iterates: scoring every iteration finds a best at least as good
    as scoring every third, and the final iterate is scored however the search ends."""
    G, x, z0, _ = _problem()
    every = {k: admm_search(G, x, z0, LEVELS, iters=7, eval_every=k) for k in (1, 3, 7, 100)}
    assert torch.all(every[1].loss <= every[3].loss)
    torch.testing.assert_close(every[100].indices, every[7].indices)  # only the 7th iterate scored
    with torch.no_grad():
        torch.testing.assert_close(every[100].loss, (G(every[100].latent) - x).pow(2).flatten(1).mean(1))


def test_no_iterations_gives_the_quantised_encoder_output():
    G, x, z0, _ = _problem()
    for kwargs in ({"iters": 0}, {"iters": 50, "deadline": 0.0}):
        result = admm_search(G, x, z0, LEVELS, **kwargs)
        assert result.iterations == 0
        torch.testing.assert_close(result.indices, quantize(z0, LEVELS))


def test_deadline_bounds_the_search():
    G, x, z0, _ = _problem(batch=1)
    start = time.perf_counter()
    result = admm_search(G, x, z0, LEVELS, iters=100_000, deadline=0.2)
    assert time.perf_counter() - start < 1.0
    assert 0 < result.iterations < 100_000


def test_generator_is_left_trainable_and_unchanged():
    G, x, z0, _ = _problem()
    before = [p.clone() for p in G.parameters()]
    admm_search(G, x, z0, LEVELS, iters=5)
    assert all(p.requires_grad for p in G.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))
