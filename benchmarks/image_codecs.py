"""The RD image model (image-rd) against the codecs a user already has, on the 18 development
photos (opencv-doc, built by `streamcodec train photos`), whole photos.

    .venv/bin/python -m benchmarks.image_codecs [--threads 2]   # -> benchmarks/results/image_codecs.{md,png}

Every codec gets the same budget per photo, target bpp x pixels, whole files: streamcodec's rate
control fills it, JPEG (optimised), WebP (method 6), JPEG XL, HEIC (pillow-heif, HEVC intra, what
BPG is) and AVIF (Pillow) take the highest quality whose file fits (bisection on quality). A codec
that cannot fit a photo at a rate (its lowest quality is larger) is listed with how many photos
it missed and gets no mean there, so every mean is over the same photos. BD-rate (Bjontegaard,
PSNR, piecewise cubic over the PSNR range both curves cover) against WebP and JPEG uses the rates
every codec reached on every photo. PSNR over RGB pixels; MS-SSIM from pytorch-msssim.
"""

import argparse
import io
import json
import time
from functools import lru_cache

import numpy as np
from PIL import Image

from benchmarks import RESULTS, write_result
from benchmarks.image_rd import msssim, psnr
from streamcodec import threads
from streamcodec.nets.assets import model_dir

RATES = (0.1, 0.15, 0.2, 0.3, 0.5, 0.8)
SHOWN = (0.15, 0.3, 0.5)
BASELINES = ("JPEG", "WebP", "JPEG XL", "HEIC", "AVIF")
MODEL = "image-rd"


def _pillow(fmt: str, rgb: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    buf = io.BytesIO()
    options = {"JPEG": {"optimize": True}, "WebP": {"method": 6}}.get(fmt, {})
    name = {"JPEG XL": "JXL", "HEIC": "HEIF"}.get(fmt, fmt)
    Image.fromarray(rgb).save(buf, name, quality=quality, **options)
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def best_under(fmt: str, rgb: np.ndarray, max_bytes: int, coded=None):
    """(bytes, decoded) at the highest quality that fits, or None if even the lowest does not.
    `coded` (quality -> result) may be shared between budgets of the same photo."""
    coded = coded or lru_cache(None)(lambda q: _pillow(fmt, rgb, q))
    lo, hi = (1, 95) if fmt == "JPEG" else (0, 100)
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        data, out = coded(mid)
        if len(data) <= max_bytes:
            best, lo = (data, out), mid + 1
        else:
            hi = mid - 1
    return best


def evaluate(photos: list[np.ndarray]) -> dict:
    """{(codec, rate): [(bpp, psnr, msssim) or None per photo]}"""
    import streamcodec.image as sci

    model = sci.load_rd_model(MODEL)
    rows: dict = {}
    for i, rgb in enumerate(photos):
        pixels = rgb.shape[0] * rgb.shape[1]
        coded = {fmt: lru_cache(None)(lambda q, fmt=fmt: _pillow(fmt, rgb, q)) for fmt in BASELINES}
        for rate in RATES:
            try:
                data = sci.compress(rgb, bpp=rate, model=model)
                result = (data, sci.decompress(data, model=model))
            except ValueError:  # below the model's lowest rate for this photo
                result = None
            trials = {"streamcodec": result}
            trials.update({fmt: best_under(fmt, rgb, int(rate * pixels) // 8, coded[fmt]) for fmt in BASELINES})
            for name, r in trials.items():
                rows.setdefault((name, rate), []).append(
                    None if r is None else (8 * len(r[0]) / pixels, psnr(rgb, r[1]), msssim(rgb, r[1])))
        print(f"photo {i + 1}/{len(photos)} done at {time.strftime('%H:%M:%S')}", flush=True)
    return rows


def bd_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Mean rate difference (%) of curve a against curve b at equal PSNR; rows (bpp, psnr)."""
    from scipy.interpolate import PchipInterpolator

    lo, hi = max(a[:, 1].min(), b[:, 1].min()), min(a[:, 1].max(), b[:, 1].max())
    if lo >= hi:
        return float("nan")
    grid = np.linspace(lo, hi, 200)
    la, lb = (PchipInterpolator(*np.unique(np.c_[c[:, 1], np.log(c[:, 0])], axis=0).T)(grid) for c in (a, b))
    return float((np.exp(np.mean(la - lb)) - 1) * 100)


def summarise(rows: dict) -> tuple[dict, list[float]]:
    codecs = ("streamcodec", *BASELINES)
    full = [r for r in RATES if all(None not in rows[(c, r)] for c in codecs)]
    means = {(c, r): np.mean(rows[(c, r)], axis=0) for c in codecs for r in RATES if None not in rows[(c, r)]}
    return means, full


def timings(photo: np.ndarray) -> dict:
    import streamcodec.image as sci

    model = sci.load_rd_model(MODEL)

    def median(f):
        times, result = [], None
        for _ in range(3):
            start = time.perf_counter()
            result = f()
            times.append(time.perf_counter() - start)
        return float(np.median(times)), result

    enc, data = median(lambda: sci.compress(photo, bpp=0.3, model=model))
    dec, _ = median(lambda: sci.decompress(data, model=model))
    return {"encode (rate control included)": enc, "decode": dec}


def plot(means: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for codec in ("streamcodec", *BASELINES):
        pts = np.array([means[(codec, r)] for r in RATES if (codec, r) in means])
        for ax, col in zip(axes, (1, 2)):
            ax.plot(pts[:, 0], pts[:, col], "s-" if codec == "streamcodec" else "o--", label=codec)
    for ax, label in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Development photos (opencv-doc), mean over photos; streamcodec = {MODEL}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photos", type=int, default=0, help="use only the first N photos (0: all)")
    args = parser.parse_args(argv)
    threads.configure(args.threads, blas=args.threads)
    import pillow_heif
    import pillow_jxl  # noqa: F401 - registers JPEG XL with Pillow
    import streamcodec.image as sci
    from streamcodec.train.photos import load_split

    pillow_heif.register_heif_opener()
    every = load_split("dev")
    photos = every[: args.photos] if args.photos else every
    rows = evaluate(photos)
    means, full = summarise(rows)
    model = sci.load_rd_model(MODEL)
    model_step = json.loads((model_dir(MODEL) / "config.json").read_text())["step"]
    lines = [f"# Photos: {MODEL} (model id {model.model_id.hex()}, training step {model_step}) against the codecs "
             f"a user has", "", f"{len(photos)} development photos (opencv-doc), whole photos; every codec at the "
             "highest quality whose file fits target bpp x pixels; means over all photos.", "",
             "| target bpp | codec | bpp | PSNR (dB) | MS-SSIM |", "|---|---|---|---|---|"]
    for rate in RATES:
        for codec in ("streamcodec", *BASELINES):
            if (codec, rate) in means:
                b, p, m = means[(codec, rate)]
                lines.append(f"| {rate} | {codec} | {b:.3f} | {p:.2f} | {m:.4f} |")
            else:
                missed = sum(r is None for r in rows[(codec, rate)])
                lines.append(f"| {rate} | {codec} | cannot reach this rate on {missed} of {len(photos)} photos | | |")
    curve = {c: np.array([means[(c, r)][:2] for r in full]) for c in ("streamcodec", *BASELINES)}
    lines += ["", f"BD-rate of streamcodec at equal PSNR, over the rates every codec reached on every photo "
              f"({', '.join(map(str, full))} bpp):", ""]
    for c in BASELINES if len(full) >= 2 else ():
        bd = bd_rate(curve["streamcodec"], curve[c])
        lines.append(f"- against {c}: " + ("no PSNR both reach at these rates" if np.isnan(bd) else f"{bd:+.1f} %"))
    big = max(every, key=lambda p: p.shape[0] * p.shape[1])
    y, x = (big.shape[0] - 512) // 2, (big.shape[1] - 768) // 2
    t = timings(np.ascontiguousarray(big[y : y + 512, x : x + 768]))
    lines += ["", f"Timing, one 768x512 photo at 0.3 bpp, {args.threads} threads, median of 3:", ""]
    lines += [f"- {k}: {v:.2f} s" for k, v in t.items()]
    plot(means, RESULTS / "image_codecs.png")
    write_result("image_codecs.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
