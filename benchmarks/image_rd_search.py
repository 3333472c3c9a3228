"""What image-rd's latent search (image/rd_search.py) gains over the encoder alone, at each trained
quality, on the development photos: the same quality setting coded both ways, the real coder's
bits (tile payload) and the decoded PSNR / MS-SSIM, and the BD-rate of the searched curve against
the encoder's. Then search settings side by side (--grid) to choose them.

    .venv/bin/python -m benchmarks.image_rd_search [--crop 256] [--iters 1 2 4] [--out image_rd_search.md]
    .venv/bin/python -m benchmarks.image_rd_search --grid --photos 6    # learning rate x pull, q 1/3/5
"""

import argparse
import time

import numpy as np

from benchmarks import write_result
from benchmarks.image_codecs import bd_rate
from benchmarks.image_rd import msssim, psnr
from streamcodec import threads
from streamcodec.image import rd_codec, rd_search
from streamcodec.image.rd_model import load_rd_model
from streamcodec.train.photos import load_split


def dev_tiles(crop: int, n: int | None) -> list[np.ndarray]:
    """Centre crops of the development photos (whole photos with crop 0)."""
    out = []
    for p in load_split("dev")[:n]:
        if crop:
            c = min(crop, *p.shape[:2])
            y, x = (p.shape[0] - c) // 2, (p.shape[1] - c) // 2
            p = p[y : y + c, x : x + c]
        out.append(np.ascontiguousarray(p))
    return out


def code(model, rgb: np.ndarray, quality: float, iters: int) -> tuple[float, np.ndarray, float]:
    """(bpp of the tile payload, decoded uint8 image, seconds) of one photo, one tile."""
    h, w = rgb.shape[:2]
    start = time.perf_counter()
    y0 = rd_codec.analyse(model, rgb, (0, 0, h, w))
    residual = None
    if iters:
        _, y, mean, scale = rd_codec.tile_latents(model, y0, quality, h, w)
        x = rgb.astype(np.float32).transpose(2, 0, 1) / 255
        residual, _ = rd_search.search_residuals(model, x, y, mean, scale, quality, iters)
    payload = rd_codec.code_tile(model, y0, quality, h, w, residual)
    seconds = time.perf_counter() - start
    rec = rd_codec.decode_tile(model, payload, quality, h, w)
    return 8 * len(payload) / (h * w), np.round(rec * 255).astype(np.uint8).transpose(1, 2, 0), seconds


def curve(model, photos, qualities, iters: int) -> np.ndarray:
    """(qualities, 4): mean bpp, PSNR, MS-SSIM, seconds over the photos."""
    rows = []
    for q in qualities:
        r = [code(model, p, q, iters) for p in photos]
        rows.append([np.mean([b for b, _, _ in r]), np.mean([psnr(p, d) for p, (_, d, _) in zip(photos, r)]),
                     np.mean([msssim(p, d) for p, (_, d, _) in zip(photos, r)]), np.mean([s for _, _, s in r])])
    return np.array(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, default=256, help="centre crop size (0: whole photos)")
    parser.add_argument("--photos", type=int, default=None, help="the first N development photos")
    parser.add_argument("--iters", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--grid", action="store_true", help="compare learning rates and pulls instead")
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
        lines += [f"{args.iters[0]} iterations; BD-rate against the encoder alone at qualities {qualities}.", "",
                  "| lr | pull (bits per step) | BD-rate | mean PSNR gain | mean bpp change |", "|---|---|---|---|---|"]
        for lr in (0.05, 0.1, 0.2):
            for mu in (0.3, 1.0, 3.0):
                rd_search.SEARCH_LR, rd_search.SEARCH_MU = lr, mu
                c = curve(model, photos, qualities, args.iters[0])
                lines.append(f"| {lr} | {mu} | {bd_rate(c[:, :2], base[:, :2]):+.1f} % | "
                             f"{np.mean(c[:, 1] - base[:, 1]):+.2f} dB | {np.mean(c[:, 0] / base[:, 0] - 1):+.1%} |")
                print(lines[-1], flush=True)
    else:
        qualities = [float(q) for q in range(len(model.lambdas))]
        base = curve(model, photos, qualities, 0)
        lines += [f"Adam step {rd_search.SEARCH_LR}, pull {rd_search.SEARCH_MU} bits per step, every iterate scored "
                  "and the best kept. bpp is the tile payload; seconds per photo include analysis and coding.", "",
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
