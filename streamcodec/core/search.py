"""Bounded ADMM latent search (BPGAN's compression step), shared by speech and image.

Given a target x, a frozen generator G, a first latent z0 (from the encoder) and the quantiser
levels, find quantised latents whose reconstruction G(u) is close to x. ADMM splits the problem
into a smooth part on z and a projection onto the levels:

    z   <- gradient step on  F(x, G(z)) + mu/2 |z - u + eta|^2
    u   <- Q(z + eta)
    eta <- eta + z - u

The search is anytime: every `eval_every` iterations, and at the end however it ends, the current
quantised latent is scored with the true loss F(x, G(u)) and the best one so far is kept, so
whenever the iteration budget or the wall-clock deadline ends the search, a valid result is ready
(a scoring is a third of an iteration's cost). Frames in a batch are searched
together and each keeps its own best.
"""

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (target, output) -> loss per item


def mse_per_item(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).pow(2).flatten(1).mean(dim=1)


@dataclass
class SearchResult:
    indices: torch.Tensor  # (batch, *latent) level indices, int64
    latent: torch.Tensor  # levels[indices]
    loss: torch.Tensor  # (batch,) true loss of the returned latents
    initial_loss: torch.Tensor  # (batch,) loss of the quantised encoder output
    iterations: int  # ADMM iterations run
    dual: torch.Tensor  # final eta, for warm-starting the next frame


def quantize(z: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Indices of the nearest levels (levels sorted ascending)."""
    return torch.bucketize(z, (levels[1:] + levels[:-1]) / 2)


@dataclass
class RateLimit:
    """A hard bit budget per item: the coded values (`mask`, latent-shaped, True where a value is
    sent) must fit `budget` bits (batch,) under the code `lengths` (bits per level). Values
    outside the mask are not sent; the decoder puts level `fill` there."""

    lengths: torch.Tensor
    budget: torch.Tensor
    mask: torch.Tensor | None = None
    fill: int = 0


def quantize_within(z: torch.Tensor, levels: torch.Tensor, limit: RateLimit, steps: int = 24) -> torch.Tensor:
    """Rate-penalised projection: per item, argmin_k (z - level_k)^2 + lam * bits_k with the
    smallest lam (found by bisection) whose coded values fit the budget. lam = 0 is the plain
    nearest level; a large lam moves values to cheaper codes where it costs least distortion."""
    mask = torch.ones_like(z, dtype=torch.bool) if limit.mask is None else limit.mask.expand_as(z)
    dist = (z.unsqueeze(-1) - levels).pow(2)  # (..., n_levels)
    bits_of = limit.lengths.to(z.dtype)

    def project(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam = lam.view(-1, *([1] * z.dim()))
        idx = torch.argmin(dist + lam * bits_of, dim=-1)
        idx = torch.where(mask, idx, torch.full_like(idx, limit.fill))
        bits = (bits_of[idx] * mask).flatten(1).sum(dim=1)
        return idx, bits

    zero = torch.zeros(len(z), dtype=z.dtype)
    idx, bits = project(zero)
    over = bits > limit.budget
    if not bool(over.any()):
        return idx
    lo, hi = zero.clone(), torch.where(over, torch.ones_like(zero), zero)
    while True:  # grow hi until every item fits (or lam is so large only the cheapest codes are left)
        _, bits_hi = project(hi)
        grow = bits_hi > limit.budget
        if not bool(grow.any()) or float(hi.max()) > 1e6:
            break
        hi = torch.where(grow, hi * 4, hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        _, bits_mid = project(mid)
        fits = bits_mid <= limit.budget
        hi = torch.where(fits, mid, hi)
        lo = torch.where(fits, lo, mid)
    return project(hi)[0]


class Adam:
    """Adam on one tensor with torch.optim.Adam's defaults and arithmetic, written out: the first
    torch.optim optimizer imports torch._dynamo, about 3 s of start-up for a sender or a one-shot
    `streamcodec encode`."""

    def __init__(self, z: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.z, self.lr, self.betas, self.eps = z, lr, betas, eps
        self.m, self.v, self.t = torch.zeros_like(z), torch.zeros_like(z), 0

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        g = self.z.grad
        self.t += 1
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2**self.t)).add_(self.eps)
        self.z.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))
        self.z.grad = None


@torch.no_grad()
def _keep_better(G, x, u, idx, best_loss, best_idx, loss_fn):
    """Score the quantised iterate u (level indices idx) and keep it per item where it is better."""
    trial = loss_fn(x, G(u))
    better = trial < best_loss
    mask = better.view(-1, *([1] * (idx.dim() - 1)))
    return torch.where(mask, idx, best_idx), torch.where(better, trial, best_loss)


def admm_search(
    G: torch.nn.Module,
    x: torch.Tensor,
    z0: torch.Tensor,
    levels: torch.Tensor,
    iters: int = 16,
    deadline: float | None = None,
    loss_fn: LossFn = mse_per_item,
    lr: float = 0.1,  # Adam step on z; tuned on the development set (benchmarks/search_tuning.py)
    mu: float = 0.01,
    eval_every: int = 1,
    eta0: torch.Tensor | None = None,
    limit: RateLimit | None = None,
) -> SearchResult:
    """Search quantised latents for targets `x` (batch first). `deadline` is in seconds from the
    call; G's parameters are left untouched (gradients flow to z only). With `limit`, every
    projection (and so every result) fits the bit budget."""
    project = (lambda v: quantize(v, levels)) if limit is None else (lambda v: quantize_within(v, levels, limit))
    start = time.perf_counter()
    params = [p for p in G.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            best_idx = project(z0)
            best_loss = loss_fn(x, G(levels[best_idx]))
        initial = best_loss.clone()
        z = z0.detach().clone().requires_grad_(True)
        u = levels[best_idx]
        eta = torch.zeros_like(z0) if eta0 is None else eta0.detach().clone()
        opt = Adam(z, lr)
        done = scored = 0
        idx = best_idx
        for it in range(iters):
            if deadline is not None and time.perf_counter() - start >= deadline:
                break
            penalty = (z - u + eta).pow(2).flatten(1).mean(dim=1)
            loss = (loss_fn(x, G(z)) + 0.5 * mu * penalty).sum()
            loss.backward()
            opt.step()
            with torch.no_grad():
                idx = project(z + eta)
                u = levels[idx]
                eta += z - u
            done = it + 1
            if done % eval_every == 0:
                best_idx, best_loss = _keep_better(G, x, u, idx, best_loss, best_idx, loss_fn)
                scored = done
        if done > scored:  # the latest iterate, not scored yet
            best_idx, best_loss = _keep_better(G, x, u, idx, best_loss, best_idx, loss_fn)
        return SearchResult(best_idx, levels[best_idx], best_loss, initial, done, eta.detach())
    finally:
        for p in params:
            p.requires_grad_(True)
