"""What image-rd's latent search (image/rd_search.py) gains over the encoder alone, at each trained
quality, on the development photos: the same quality setting coded both ways, the real coder's
bits (tile payload) and the decoded PSNR / MS-SSIM, and the BD-rate of the searched curve against
the encoder's. With --grid, the ways of searching side by side, to choose one: step sizes, and
core/search.py's ADMM (pull and dual) against plain rounded Adam steps.

    .venv/bin/python -m benchmarks.image_rd_search [--crop 256] [--iters 2 4 8] [--out image_rd_search.md]
    .venv/bin/python -m benchmarks.image_rd_search --grid --photos 6 --iters 8 --out image_rd_search_grid.md
"""

import argparse
import time

import numpy as np

from benchmarks import write_result
from benchmarks.image_codecs import bd_rate
from benchmarks.image_rd import msssim, psnr
from benchmarks.image_rd_ceiling import centre
from streamcodec import threads
from streamcodec.core.search import Adam
from streamcodec.image import rd_codec, rd_search
from streamcodec.image.rd_model import load_rd_model
from streamcodec.train.photos import load_split


def dev_tiles(crop: int, n: int | None) -> list[np.ndarray]:
    """Centre crops of the development photos (whole photos with crop 0)."""
    photos = load_split("dev")[:n]
    return [centre(p, min(crop, *p.shape[:2])) if crop else p for p in photos]


def rounded_adam_residuals(model, x, y, mean, scale, quality: float, iters: int, lr: float) -> np.ndarray:
    """The alternative tried: Adam steps on the continuous residuals, each iterate rounded and
    scored, the best kept (ADMM without its pull and dual)."""
    _, inv_gain, _, _ = model.gains(quality)
    objective = rd_search.TileObjective(model, x, mean, scale, inv_gain, model.lam(quality))
    w = (y - mean).astype(np.float32)[None]
    best = np.round(w)
    best_loss = objective.loss(best)[0]
    opt = Adam(w, lr)
    for _ in range(iters):
        opt.step(objective.loss_and_grad(w)[1])
        trial = np.round(w)
        if (loss := objective.loss(trial)[0]) < best_loss:
            best, best_loss = trial, loss
    return best[0].astype(np.int64)


def code(model, rgb: np.ndarray, quality: float, iters: int, method: str = "admm",
         lr: float = 0.1) -> tuple[float, np.ndarray, float]:
    """(bpp of the tile payload, decoded uint8 image, seconds) of one photo, one tile."""
    h, w = rgb.shape[:2]
    start = time.perf_counter()
    y0 = rd_codec.analyse(model, rgb, (0, 0, h, w))
    residual = None
    if iters:
        _, y, mean, scale = rd_codec.tile_latents(model, y0, quality, h, w)
        x = rgb.astype(np.float32).transpose(2, 0, 1) / 255
        if method == "admm":
            residual, _ = rd_search.search_residuals(model, x, y, mean, scale, quality, iters)
        else:
            residual = rounded_adam_residuals(model, x, y, mean, scale, quality, iters, lr)
    payload = rd_codec.code_tile(model, y0, quality, h, w, residual)
    seconds = time.perf_counter() - start
    rec = rd_codec.decode_tile(model, payload, quality, h, w)
    return 8 * len(payload) / (h * w), np.round(rec * 255).astype(np.uint8).transpose(1, 2, 0), seconds


def curve(model, photos, qualities, iters: int, method: str = "admm", lr: float = 0.1) -> np.ndarray:
    """(qualities, 4): mean bpp, PSNR, MS-SSIM, seconds over the photos."""
    rows = []
    for q in qualities:
        r = [code(model, p, q, iters, method, lr) for p in photos]
        rows.append([np.mean([b for b, _, _ in r]), np.mean([psnr(p, d) for p, (_, d, _) in zip(photos, r)]),
                     np.mean([msssim(p, d) for p, (_, d, _) in zip(photos, r)]), np.mean([s for _, _, s in r])])
    return np.array(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, default=256, help="centre crop size (0: whole photos)")
    parser.add_argument("--photos", type=int, default=None, help="the first N development photos")
    parser.add_argument("--iters", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--grid", action="store_true", help="compare ADMM with rounded Adam steps of three sizes instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="keep the table in benchmarks/results/OUT")
    args = parser.parse_args(argv)
    threads.configure(args.threads)
    model = load_rd_model("image-rd")
    photos = dev_tiles(args.crop, args.photos)
    where = f"{len(photos)} development photos" + (f", centre {args.crop} px crops" if args.crop else "")
    lines = [f"# image-rd: the latent search against the encoder alone ({where}, {args.threads} threads)", ""]
    if args.grid:
        qualities = [1.0, 3.0, 5.0]
        base = curve(model, photos, qualities, 0)
        lines += [f"{args.iters[0]} iterations at qualities {qualities}; against the encoder alone.", "",
                  "| search | BD-rate | mean PSNR gain | mean bpp change |", "|---|---|---|---|"]
        trials = [(f"ADMM (core/search.py), Adam step {rd_search.SEARCH_LR}, pull {rd_search.SEARCH_MU} bit per step",
                   "admm", None)]
        trials += [(f"rounded Adam steps of {lr}", "adam", lr) for lr in (0.02, 0.05, 0.1)]
        for label, method, lr in trials:
            c = curve(model, photos, qualities, args.iters[0], method, lr)
            lines.append(f"| {label} | {bd_rate(c[:, :2], base[:, :2]):+.1f} % | "
                         f"{np.mean(c[:, 1] - base[:, 1]):+.2f} dB | {np.mean(c[:, 0] / base[:, 0] - 1):+.1%} |")
            print(lines[-1], flush=True)
    else:
        qualities = [float(q) for q in range(len(model.lambdas))]
        base = curve(model, photos, qualities, 0)
        lines += [f"ADMM (core/search.py): Adam step {rd_search.SEARCH_LR}, pull {rd_search.SEARCH_MU} bit per step, every "
                  "quantised iterate scored and the best kept. bpp is the tile payload; seconds per photo include analysis and coding.", "",
                  "| quality | iterations | bpp | PSNR | MS-SSIM | s per photo |", "|---|---|---|---|---|---|"]
        found = {n: curve(model, photos, qualities, n) for n in args.iters}
        for i, q in enumerate(qualities):
            for n, c in [(0, base), *found.items()]:
                lines.append(f"| {q:g} | {n or 'encoder alone'} | {c[i, 0]:.3f} | {c[i, 1]:.2f} | {c[i, 2]:.4f} | "
                             f"{c[i, 3]:.2f} |")
        lines += ["", "BD-rate against the encoder alone (PSNR): "
                  + ", ".join(f"{n} iterations {bd_rate(c[:, :2], base[:, :2]):+.1f} %" for n, c in found.items())]
    print("\n".join(lines))
    if args.out:
        write_result(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
