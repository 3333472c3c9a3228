"""The latent search of image-rd: BPGAN's ADMM search (core/search.py) on the rate-distortion
objective the model was trained with, through the frozen synthesis transform.

The encoder's y is a first guess: rounding it around the hyperprior's means is what a one-pass
encoder sends, but other integers may decode closer to the photo, or cost fewer bits for as
good a picture. Per tile, with z (and so every mean and scale) fixed, the search looks for the
integer residuals w that minimise

    J(w) = bits(w) / pixels + lambda(q) * 255^2 * MSE(g_s((mean + w) * inv_gain), x)

the loss the model was trained on at that quality, bits being the Gaussian estimate the tables
were fitted to. ADMM's smooth step runs on w made continuous (the Gaussian's bits are smooth in
it), its projection rounds, and the best integer iterate by J is kept, the encoder's own
included, so the search never does worse than the encoder by J. The bitstream does not change:
a decoder cannot tell a searched file from another. Its first iterate is its best: on the 18
development crops at every quality, 1, 2 and 4 iterations send the same residuals, -10.9 %
BD-rate against the encoder alone (benchmarks/results/image_rd_search.md). Plain rounded Adam
steps (no pull, no dual) climb J more steadily but gained less on PSNR at equal bits
(image_rd_search_grid.md).
"""

import time

import numpy as np

from streamcodec.core.search import admm_search
from streamcodec.image.rd_model import RDImageModel

LN2 = float(np.log(2.0))
SQRT2 = float(np.sqrt(2.0))
MIN_MASS = 2.0**-24  # a value beyond what a table codes costs its escape and 16 bits, not more
SEARCH_LR = 0.1  # Adam's step on the residuals, in quantisation steps
SEARCH_MU = 1.0  # ADMM's pull of the continuous residuals towards their rounding, in bits per step


def _erfc(x: np.ndarray) -> np.ndarray:
    """erfc to a relative error of 1.2e-7 everywhere (the Chebyshev fit in Numerical Recipes,
    section 6.2), so that the tails' bits are right too; numpy has no erf of its own."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


def gaussian_bits(w: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-log2 of the Gaussian's mass on [w - 0.5, w + 0.5] and its derivative in w, elementwise."""
    d = np.abs(w)
    c = 1.0 / (scale * SQRT2)
    hi, lo = (d - 0.5) * c, (d + 0.5) * c
    mass = 0.5 * (_erfc(hi) - _erfc(lo))
    p = np.maximum(mass, MIN_MASS)
    # d/dd of the mass: the density at the near edge minus the density at the far one
    dp = (np.exp(-lo * lo) - np.exp(-hi * hi)) * c / np.sqrt(np.pi)
    return -np.log2(p), np.where(mass > MIN_MASS, -np.sign(w) * dp / (p * LN2), 0.0)


class TileObjective:
    """J of one tile's residuals (a batch of one, as core/search.py's Objective)."""

    def __init__(self, model: RDImageModel, x: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 inv_gain: np.ndarray, lam: float) -> None:
        self.nets, self.x = model.nets, x  # (3, h, w) in [0, 1]
        self.mean, self.scale, self.inv_gain = mean.astype(np.float32), scale, inv_gain
        self.pixels = x.shape[1] * x.shape[2]
        self.weight = lam * 255.0**2 / (3 * self.pixels)  # per squared error, summed

    def _terms(self, w: np.ndarray, grad: bool):
        y = (self.mean + w[0]) * self.inv_gain
        h, wd = self.x.shape[1:]
        if grad:
            out, back = self.nets.synthesis_vjp(y.astype(np.float32))
        else:
            out, back = self.nets.synthesis(y.astype(np.float32)), None
        err = out[:, :h, :wd] - self.x
        bits, dbits = gaussian_bits(w[0].astype(np.float64), self.scale)
        loss = bits.sum() / self.pixels + self.weight * float(np.sum(err * err))
        return loss, err, out, back, dbits

    def loss(self, w: np.ndarray) -> np.ndarray:
        return np.array([self._terms(w, False)[0]])

    def loss_and_grad(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss, err, out, back, dbits = self._terms(w, True)
        g_out = np.zeros_like(out)
        g_out[:, : err.shape[1], : err.shape[2]] = 2 * self.weight * err
        g_y = back(g_out) * self.inv_gain
        return np.array([loss]), (g_y + dbits / self.pixels).astype(np.float32)[None]


def search_residuals(model: RDImageModel, x: np.ndarray, y: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                     quality: float, iters: int, deadline: float | None = None) -> tuple[np.ndarray, dict]:
    """Integer residuals for one tile (x: its pixels (3, h, w); y, mean, scale on its latent grid,
    y gained) and what the search did: J before and after, iterations run."""
    start = time.perf_counter()
    w0 = (y - mean).astype(np.float32)
    reach = int(np.ceil(np.abs(w0).max())) + 2
    levels = np.arange(-reach, reach + 1, dtype=np.float32)
    _, inv_gain, _, _ = model.gains(quality)
    objective = TileObjective(model, x, mean, scale, inv_gain, model.lam(quality))
    # admm_search's pull is mu / (values) per value; J counts per pixel: a residual a step away from
    # its rounding is pulled like SEARCH_MU bits
    result = admm_search(objective, w0[None], levels, iters=iters, lr=SEARCH_LR,
                         mu=SEARCH_MU * w0.size / objective.pixels, deadline=deadline)
    residual = np.round(result.latent[0]).astype(np.int64)
    return residual, {"initial": float(result.initial_loss[0]), "loss": float(result.loss[0]),
                      "iterations": result.iterations, "seconds": time.perf_counter() - start}
