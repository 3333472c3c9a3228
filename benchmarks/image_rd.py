"""Rate-distortion of the image codec against JPEG and WebP (Pillow) on the development photos
(opencv-doc's natural photos, built by `streamcodec train photos`).

    .venv/bin/python -m benchmarks.image_rd     # writes benchmarks/results/image_rd.{md,png}, image_crops.png

Rates are whole files (headers included) in bits per pixel. For each photo and each streamcodec
rate, JPEG and WebP are given the highest quality whose file is no larger than streamcodec's
(JPEG with optimised Huffman tables, WebP at method 6), so every comparison is at an equal or lower
rate for the baselines. PSNR is over the RGB pixels; MS-SSIM comes from the independent
`pytorch-msssim` package, not from the codec's own loss. Timings: one 768x512 photo, median of 3.
"""

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image, ImageDraw
from pytorch_msssim import ms_ssim

import streamcodec.image as sci
from benchmarks import RESULTS, write_result
from streamcodec.train.photos import load_split

TARGETS = (0.15, 0.3, 0.5)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def msssim(a: np.ndarray, b: np.ndarray) -> float:
    t = [torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255 for x in (a, b)]
    return float(ms_ssim(t[0], t[1], data_range=1.0))


def pillow_codec(fmt: str, rgb: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    buf = io.BytesIO()
    options = {"optimize": True} if fmt == "JPEG" else {"method": 6}
    Image.fromarray(rgb).save(buf, fmt, quality=quality, **options)
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def best_under(fmt: str, rgb: np.ndarray, max_bytes: int) -> tuple[bytes, np.ndarray]:
    """The highest quality whose file fits in max_bytes (or the lowest quality if none does)."""
    lo, hi = (1, 95) if fmt == "JPEG" else (0, 100)
    best = pillow_codec(fmt, rgb, lo)
    while lo <= hi:
        mid = (lo + hi) // 2
        data, out = pillow_codec(fmt, rgb, mid)
        if len(data) <= max_bytes:
            best, lo = (data, out), mid + 1
        else:
            hi = mid - 1
    return best


def score(rgb, data_len, out) -> tuple[float, float, float]:
    return 8 * data_len / (rgb.shape[0] * rgb.shape[1]), psnr(rgb, out), msssim(rgb, out)


def evaluate(photos, model, iters: int) -> dict:
    """{(system, target): [(bpp, psnr, msssim) per photo]}"""
    rows: dict = {}
    for i, rgb in enumerate(photos):
        for target in TARGETS:
            for name, it in (("streamcodec, encoder only", 0), ("streamcodec, search", iters)):
                data = sci.compress(rgb, bpp=target, iters=it, model=model)
                rows.setdefault((name, target), []).append(score(rgb, len(data), sci.decompress(data, model=model)))
                if it:
                    for fmt in ("JPEG", "WebP"):
                        jd, jo = best_under(fmt, rgb, len(data))
                        rows.setdefault((fmt, target), []).append(score(rgb, len(jd), jo))
        print(f"photo {i + 1}/{len(photos)} done", flush=True)
    return rows


def curves(photos) -> dict:
    """Mean (bpp, PSNR, MS-SSIM) of JPEG and WebP over the photos, per quality setting."""
    out = {}
    for fmt, qualities in (("JPEG", (2, 4, 6, 8, 10, 15, 20, 30, 50)), ("WebP", (0, 2, 5, 10, 20, 30, 50, 70))):
        out[fmt] = [np.mean([score(p, len(d), o) for p in photos for d, o in [pillow_codec(fmt, p, q)]], axis=0)
                    for q in qualities]
    return out


def timings(photo: np.ndarray, model, iters: int) -> dict:
    def median(f):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            result = f()
            times.append(time.perf_counter() - start)
        return float(np.median(times)), result

    enc_search, data = median(lambda: sci.compress(photo, iters=iters, model=model))
    enc_plain, _ = median(lambda: sci.compress(photo, iters=0, model=model))
    dec, _ = median(lambda: sci.decompress(data, model=model))
    return {"encode with search": enc_search, "encode, encoder only": enc_plain, "decode": dec}


def crops_figure(photo: np.ndarray, model, iters: int, path) -> None:
    """Original | streamcodec | JPEG | WebP at the same file size, on a 192x192 crop, 2x enlarged."""
    data = sci.compress(photo, bpp=0.3, iters=iters, model=model)
    panels = [("original", photo), (f"streamcodec {8 * len(data) / photo[..., 0].size:.2f} bpp",
                                    sci.decompress(data, model=model))]
    for fmt in ("JPEG", "WebP"):
        d, o = best_under(fmt, photo, len(data))
        panels.append((f"{fmt} {8 * len(d) / photo[..., 0].size:.2f} bpp", o))
    y, x = (photo.shape[0] - 192) // 2, (photo.shape[1] - 192) // 2
    canvas = Image.new("RGB", (4 * 384 + 30, 384 + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(panels):
        crop = Image.fromarray(img[y : y + 192, x : x + 192]).resize((384, 384), Image.Resampling.NEAREST)
        canvas.paste(crop, (i * 394, 24))
        draw.text((i * 394 + 4, 4), label, fill="black")
    canvas.save(path)


def plot(rows: dict, base: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for fmt, pts in base.items():
        pts = np.array(pts)
        for ax, col in zip(axes, (1, 2)):
            ax.plot(pts[:, 0], pts[:, col], "o--", label=f"{fmt} (quality sweep)", alpha=0.7)
    for name in ("streamcodec, encoder only", "streamcodec, search"):
        pts = np.array([np.mean(rows[(name, t)], axis=0) for t in TARGETS])
        for ax, col in zip(axes, (1, 2)):
            ax.plot(pts[:, 0], pts[:, col], "s-", label=name)
    for ax, label in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(label)
        ax.set_xlim(0, 0.8)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("Development photos (opencv-doc), mean over photos")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--iters", type=int, default=sci.DEFAULT_ITERS)
    parser.add_argument("--photos", type=int, default=0, help="use only the first N photos (0: all)")
    args = parser.parse_args(argv)
    model = sci.load_model(args.model or sci.DEFAULT_MODEL)
    photos = load_split("dev")
    photos = photos[: args.photos] if args.photos else photos
    rows = evaluate(photos, model, args.iters)
    lines = [f"# Image rate-distortion: {len(photos)} development photos (opencv-doc), model {model.name} "
             f"({model.model_id.hex()}), search {args.iters} iterations, torch threads {torch.get_num_threads()}",
             "", "Means over photos; baselines at the highest quality whose file is no larger than streamcodec's.", "",
             "| target bpp | system | bpp | PSNR (dB) | MS-SSIM |", "|---|---|---|---|---|"]
    for target in TARGETS:
        for name in ("streamcodec, encoder only", "streamcodec, search", "JPEG", "WebP"):
            b, p, m = np.mean(rows[(name, target)], axis=0)
            lines.append(f"| {target} | {name} | {b:.3f} | {p:.2f} | {m:.4f} |")
    h, w = 512, 768
    big = max(photos, key=lambda p: p.shape[0] * p.shape[1])
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    photo = np.ascontiguousarray(big[y : y + h, x : x + w])
    t = timings(photo, model, args.iters)
    lines += ["", f"Timing, one 768x512 photo at the default 0.3 bpp (median of 3, {torch.get_num_threads()} threads):", ""]
    lines += [f"- {k}: {v:.2f} s" for k, v in t.items()]
    plot(rows, curves(photos), RESULTS / "image_rd.png")
    crops_figure(photo, model, args.iters, RESULTS / "image_crops.png")
    write_result("image_rd.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
