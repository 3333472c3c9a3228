"""Where the rate-distortion image model in training stands: a run's checkpoint on the 18
development photos (whole photos, padded to the networks' stride by repeating edges), at each of
its qualities, against JPEG and WebP at the highest quality whose file fits the same bytes, photo
by photo. The model's rate is its entropy models' estimate of the rounded latents (what an ideal
coder would spend, no file written): the coded rate comes once the codec codes it.

    .venv/bin/python -m benchmarks.image_rd_model --run /work/runs/image-rd
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks import write_result
from benchmarks.image_rd import best_under, msssim, psnr
from streamcodec.core import context_code
from streamcodec.nets.image_rd import STRIDE, RDModel
from streamcodec.train import checkpoint
from streamcodec.train.image_rd import RDTrainConfig
from streamcodec.train.photos import load_split


TABLES = context_code.build_tables(context_code.scale_edges())


def coded_bits(values: torch.Tensor, scale: torch.Tensor) -> int:
    """Bits of the context-selected Huffman code for integer values with these scales."""
    v = values.flatten().round().long().numpy()
    return 8 * len(context_code.encode(v, context_code.buckets_of(scale.flatten().numpy(), TABLES.edges), TABLES))


def code(model: RDModel, rgb: np.ndarray, quality: float) -> tuple[float, int, np.ndarray]:
    """(estimated bits, context-coded bits, reconstruction uint8) of one photo at one quality. z is
    coded with the buckets of its Laplace's standard deviation around its rounded location."""
    h, w = rgb.shape[:2]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    x = F.pad(x, (0, -w % STRIDE, 0, -h % STRIDE), mode="replicate")
    rec, bits, (residual, scale, z_hat) = model.code(x, torch.tensor([quality]))
    with torch.no_grad():
        z_std = (model.z_log_scale.exp() * 2**0.5).view(1, -1, 1, 1).expand_as(z_hat)
        z_loc = model.z_loc.round().view(1, -1, 1, 1)
    coded = coded_bits(residual, scale) + coded_bits(z_hat - z_loc, z_std)
    return float(bits[0]), coded, (rec[0, :, :h, :w] * 255).round().byte().permute(1, 2, 0).numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--photos", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--qualities", type=int, nargs="+", default=None, help="default: every one")
    parser.add_argument("--out", default="image_rd_model.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    cfg = RDTrainConfig.from_dict(json.loads((args.run / "config.json").read_text()))
    model = RDModel(cfg.net)
    info = checkpoint.load(args.run / "checkpoint.safetensors", {"model": model}, {})
    model.eval()
    photos = load_split("dev", args.photos)
    rows = []
    for q in args.qualities or range(len(cfg.net.lambdas)):
        scores = {"model (entropy estimate)": [], "model (context Huffman, payload)": [], "JPEG": [], "WebP": []}
        for rgb in photos:
            bits, coded, rec = code(model, rgb, float(q))
            pixels = rgb.shape[0] * rgb.shape[1]
            quality = (psnr(rgb, rec), msssim(rgb, rec))
            scores["model (entropy estimate)"].append((bits / pixels, *quality))
            scores["model (context Huffman, payload)"].append((coded / pixels, *quality))
            for fmt in ("JPEG", "WebP"):
                data, out = best_under(fmt, rgb, coded // 8)
                scores[fmt].append((8 * len(data) / pixels, psnr(rgb, out), msssim(rgb, out)))
        for name, s in scores.items():
            bpp, p, m = np.mean(s, axis=0)
            rows.append(f"| {q} | {name} | {bpp:.3f} | {p:.2f} | {m:.4f} |")
    text = "\n".join([
        f"# The RD image model in training: {args.run.name} at step {info['step']}", "",
        f"{len(photos)} development photos, whole; the model's bpp: its entropy estimate, and the bytes of the "
        "context-selected Huffman code of y and z (core/context_code.py; no file header or tile framing yet); JPEG "
        "(optimised) and WebP (method 6) at the highest quality within the same bytes per photo as the Huffman "
        "code; means.", "",
        "| quality | codec | bpp | PSNR (dB) | MS-SSIM |", "|---|---|---|---|---|", *rows, ""])
    write_result(args.out, text)


if __name__ == "__main__":
    main()
