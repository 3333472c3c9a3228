"""What limits image-rd: the transforms or the entropy model. g_s(g_a(x)) at the top quality
with no quantisation at all, on central 256x256 crops of the development photos and of 24
training photos, beside the same crops coded (whole codec, top quality). If the unquantised
figure is barely above the coded one, the transforms are the limit.

    .venv/bin/python -m benchmarks.image_rd_ceiling     # -> benchmarks/results/image_rd_ceiling.md
"""

import json

import numpy as np

from benchmarks import write_result
from benchmarks.image_rd import psnr
from streamcodec import threads
from streamcodec.image import rd_codec
from streamcodec.image.rd_model import load_rd_model
from streamcodec.nets.assets import model_dir

MODEL = "image-rd"


def centre(photo: np.ndarray, size: int = 256) -> np.ndarray:
    y, x = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
    return np.ascontiguousarray(photo[y : y + size, x : x + size])


def main() -> None:
    threads.configure(2, blas=2)
    from streamcodec.train.photos import load_split

    model = load_rd_model(MODEL)
    top = model.qualities[1]
    g, ig, _, _ = model.gains(top)
    step = json.loads((model_dir(MODEL) / "config.json").read_text())["step"]
    lines = [f"# image-rd at step {step} (model id {model.model_id.hex()}): quality {top:g}, central 256x256 crops",
             "", "| crops | unquantised g_s(g_a(x)) PSNR | coded PSNR | coded bpp |", "|---|---|---|---|"]
    for split, n in (("dev", None), ("train", 24)):
        crops = [centre(p) for p in load_split(split)[:n] if min(p.shape[:2]) >= 256]
        plain, coded, bpp = [], [], []
        for c in crops:
            y0 = rd_codec.analyse(model, c, (0, 0, 256, 256))
            out = np.clip(model.nets.synthesis(y0 * g * ig), 0, 1)
            plain.append(psnr(c, np.round(out * 255).transpose(1, 2, 0)))
            payload = rd_codec.code_tile(model, y0, top, 256, 256)
            rec = rd_codec.decode_tile(model, payload, top, 256, 256)
            coded.append(psnr(c, np.round(rec * 255).transpose(1, 2, 0)))
            bpp.append(8 * len(payload) / 256**2)
        lines.append(f"| {split} ({len(crops)}) | {np.mean(plain):.2f} dB | {np.mean(coded):.2f} dB | {np.mean(bpp):.3f} |")
    write_result("image_rd_ceiling.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
