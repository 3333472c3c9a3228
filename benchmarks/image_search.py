"""Tune the image latent search: Adam step size (lr), ADMM penalty (mu) and iteration count, on
development photos at 0.3 bpp, with the shipped image model. Reports the search loss
((1 - MS-SSIM) + alpha * MSE), PSNR, MS-SSIM, the file's bits per pixel and the encode time.

    .venv/bin/python -m benchmarks.image_search     # writes benchmarks/results/image_search.md
"""

import argparse
import time

import numpy as np
import torch

import streamcodec.image as sci
from benchmarks import write_result
from benchmarks.image_rd import msssim, psnr
from streamcodec.core.losses import msssim_mse
from streamcodec.image import codec
from streamcodec.train.photos import load_split


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=sci.DEFAULT_MODEL)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--lr", type=float, default=codec.SEARCH_LR, help="step size for the iteration rows")
    parser.add_argument("--mu", type=float, default=codec.SEARCH_MU)
    args = parser.parse_args(argv)
    model = sci.load_model(args.model)
    photos = load_split("dev")[:: max(1, len(load_split("dev")) // args.photos)][: args.photos]
    loss = msssim_mse(model.alpha)
    grid = [(0, 0.0, 0.0)] + [(24, lr, mu) for lr in (0.03, 0.1, 0.3) for mu in (0.01, 0.1, 1.0)] + \
           [(it, args.lr, args.mu) for it in (8, 48)]
    lines = [f"# Image search tuning: {len(photos)} development photos at 0.3 bpp, model {model.model_id.hex()}", "",
             "| iters | lr | mu | loss | PSNR (dB) | MS-SSIM | bpp | seconds per photo |", "|---|---|---|---|---|---|---|---|"]
    for iters, lr, mu in grid:
        codec.SEARCH_LR, codec.SEARCH_MU = lr or codec.SEARCH_LR, mu or codec.SEARCH_MU
        rows = []
        for rgb in photos:
            start = time.perf_counter()
            data = sci.compress(rgb, bpp=0.3, iters=iters, model=model)
            seconds = time.perf_counter() - start
            out = sci.decompress(data, model=model)
            t = [torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in (rgb, out)]
            rows.append((loss(t[0], t[1]).item(), psnr(rgb, out), msssim(rgb, out), 8 * len(data) / rgb[..., 0].size,
                         seconds))
        m = np.mean(rows, axis=0)
        lines.append(f"| {iters} | {lr} | {mu} | {m[0]:.4f} | {m[1]:.2f} | {m[2]:.4f} | {m[3]:.3f} | {m[4]:.2f} |")
        print(lines[-1], flush=True)
    write_result("image_search.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
