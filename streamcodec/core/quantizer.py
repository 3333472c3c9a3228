"""Non-uniform scalar quantiser: k-means levels fitted on training latents (BPGAN's Q).

Latent values are projected onto the nearest of a few levels; the level indices are what the
entropy coder sends. Levels are sorted, so index order is value order.
"""

import numpy as np


def _finite_subsample(samples: np.ndarray, seed: int, max_samples: int) -> np.ndarray:
    """The finite values of `samples` as float64, at most `max_samples` of them (a seeded draw)."""
    x = np.asarray(samples, np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite samples to fit quantiser levels on")
    if x.size > max_samples:
        x = np.random.default_rng(seed).choice(x, max_samples, replace=False)
    return x


def fit_levels(samples: np.ndarray, n_levels: int = 16, seed: int = 0, iters: int = 300,
               max_samples: int = 200_000) -> np.ndarray:
    """1-D k-means (quantile start, Lloyd iterations) on `samples`; sorted float32 levels.

    Deterministic for a given seed (which only picks the subsample of large inputs). When the data
    hold fewer distinct values than `n_levels`, the remaining levels are placed evenly between the others so that every index stays usable.
    """
    if n_levels < 2:
        raise ValueError("a quantiser needs at least 2 levels")
    x = _finite_subsample(samples, seed, max_samples)
    x.sort()
    levels = np.quantile(x, (np.arange(n_levels) + 0.5) / n_levels)
    for _ in range(iters):
        edges = np.searchsorted(x, (levels[1:] + levels[:-1]) / 2)
        bounds = np.r_[0, edges, x.size]
        cumsum = np.r_[0.0, np.cumsum(x)]
        counts = np.diff(bounds)
        sums = cumsum[bounds[1:]] - cumsum[bounds[:-1]]
        new = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), levels))
        if np.allclose(new, levels, rtol=0, atol=1e-9):
            break
        levels = new
    return _make_distinct(levels, n_levels).astype(np.float32)


def _make_distinct(levels: np.ndarray, k: int) -> np.ndarray:
    levels = np.unique(levels)
    step = max(levels[-1] - levels[0], 1.0) / k
    while levels.size < k:
        levels = np.unique(np.r_[levels, levels[-1] + step])
    return levels


def quantize(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest level for each value (uint8 for <= 256 levels)."""
    levels = np.asarray(levels)
    mids = (levels[1:] + levels[:-1]) / 2
    idx = np.searchsorted(mids, np.asarray(values))
    return idx.astype(np.uint8 if levels.size <= 256 else np.uint16)


def dequantize(indices: np.ndarray, levels: np.ndarray) -> np.ndarray:
    return np.asarray(levels, np.float32)[np.asarray(indices)]


def fit_levels_entropy(samples: np.ndarray, n_levels: int, target_mse: float, seed: int = 0, iters: int = 60,
                       max_samples: int = 100_000) -> np.ndarray:
    """Entropy-constrained k-means (Chou, Lookabaugh and Gray 1989): Lloyd iterations where a value
    goes to the level minimising (x - c)^2 + lam * code length, with lam set by bisection so the
    quantisation error matches `target_mse` (the noise G was trained to tolerate).

    Plain k-means gives every level a similar share of the values, so a Huffman code over 64
    levels costs close to 6 bits a symbol; with a rate term the levels spread out where values are
    dense and the code gets short. Levels that end up unused are moved beyond the data's range
    (so every index stays decodable and nearest-level projection never picks them).
    """
    x = _finite_subsample(samples, seed, max_samples)
    start = fit_levels(x, n_levels, seed=seed)

    def run(lam: float) -> tuple[np.ndarray, float]:
        c = start.astype(np.float64)
        bits = np.full(n_levels, np.log2(n_levels))
        for _ in range(iters):
            a = np.argmin((x[:, None] - c[None, :]) ** 2 + lam * bits[None, :], axis=1)
            counts = np.bincount(a, minlength=n_levels)
            live = counts > 0
            c[live] = np.bincount(a, weights=x, minlength=n_levels)[live] / counts[live]
            bits = np.where(live, -np.log2(np.maximum(counts, 1) / x.size), np.inf)
        c = np.sort(c[live])
        idx = np.clip(np.searchsorted((c[1:] + c[:-1]) / 2, x), 0, c.size - 1)
        return c, float(np.mean((x - c[idx]) ** 2))

    lo, hi = 1e-6, 1e3
    levels, mse = run(lo)
    if mse < target_mse:
        for _ in range(30):  # bisection on log(lam): the error grows with lam
            mid = float(np.sqrt(lo * hi))
            cand, mse = run(mid)
            if mse <= target_mse:
                lo, levels = mid, cand
            else:
                hi = mid
    step = 4 * float(np.median(np.diff(levels))) if levels.size > 1 else 1.0
    missing = n_levels - levels.size
    above = levels[-1] + step * np.arange(1, (missing + 1) // 2 + 1)
    below = levels[0] - step * np.arange(1, missing // 2 + 1)
    return np.sort(np.r_[below, levels, above]).astype(np.float32)
