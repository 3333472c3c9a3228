"""Why the image model's levels are entropy-constrained: bits per symbol and quantisation error of
the shipped levels against plain 64-level k-means, on the shipped encoder's latents of the
development photos (each Huffman code built from the histogram it codes, so both are best cases).

    .venv/bin/python -m benchmarks.image_levels     # writes benchmarks/results/image_levels.md
"""

import numpy as np
import torch

import streamcodec.image as sci
from benchmarks import write_result
from streamcodec.core.huffman import HuffmanCode
from streamcodec.core.quantizer import fit_levels, quantize
from streamcodec.image.codec import tile_tensor
from streamcodec.train.photos import load_split


def main() -> None:
    model = sci.load_model()
    with torch.no_grad():
        z = np.concatenate([model.encoder(tile_tensor(p, (0, 0, *p.shape[:2]))).numpy().ravel()
                            for p in load_split("dev")])
    lines = [f"# Image quantiser levels: {z.size} latent values of the 18 development photos, model "
             f"{model.model_id.hex()}", "", "| levels | bits per symbol | mean squared error |", "|---|---|---|"]
    for name, levels in (("plain k-means, 64", fit_levels(z, 64)),
                         ("shipped: entropy-constrained k-means, 64", model.levels)):
        idx = quantize(z, levels)
        code = HuffmanCode.from_histogram(np.bincount(idx, minlength=len(levels)) + 1)
        lines.append(f"| {name} | {code.bit_count(idx) / z.size:.2f} | {np.mean((z - levels[idx]) ** 2):.4f} |")
    lines += ["", "The stage-1 training noise (uniform, width 1) has a mean squared error of 0.0833."]
    write_result("image_levels.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
