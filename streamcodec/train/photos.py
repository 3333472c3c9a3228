"""The photo set for the image model, from the Debian packages DESIGN.md names.

Training: the wallpapers of plasma-workspace-wallpapers, mate-backgrounds and lomiri-wallpapers.
Plasma ships each wallpaper at many sizes; only the largest of each folder is kept, so no picture is
counted twice. Each kept picture is stored at a few scales (short side 512, 768 and 1080 pixels at
most), because the codec meets photos of every size and downscaling also removes the wallpapers'
own JPEG artefacts. Development: the natural photos among opencv-doc's example images (the rest
are diagrams, logos and greyscale calibration shots).

The other packages DESIGN.md allows were checked picture by picture (2026-12-03) and hold no
photograph: gnome-backgrounds (16 webp: renders and patterns, plus 10 svg), sway-backgrounds (one
logo in 8 sizes) and ukui-wallpapers (12 illustrations and renders), so none is used. Keeping each
picture also at short sides 256 and 384 (`--short-sides 256 384 512 768 1080`, 406 images) tied
with the default in an A/B (benchmarks/results/image_rd_ab_data.md).

    streamcodec train photos     # -> <cache>/photos/{train,dev}/*.png, about a minute
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from streamcodec.train.debian import cache_dir, fetch_package

TRAIN_PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds", "lomiri-wallpapers-16.04",
                  "lomiri-wallpapers-20.04")
DEV_PACKAGE = "opencv-doc"
DEV_PHOTOS = ("aero1.jpg", "aloeL.jpg", "baboon.jpg", "building.jpg", "butterfly.jpg", "ela_original.jpg",
              "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg", "pca_test1.jpg",
              "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg")
TRAIN_SHORT_SIDES = (512, 768, 1080)
MIN_SIDE = 256


def photos_dir() -> Path:
    return cache_dir() / "photos"


def wallpaper_files(root: Path) -> list[Path]:
    """The largest picture of each folder (plasma's size variants collapse to one), no screenshots."""
    best: dict[Path, tuple[int, Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or path.stem == "screenshot":
            continue
        with Image.open(path) as im:
            pixels = im.width * im.height
        key = path.parent if path.parent.name.startswith("images") else path
        if key not in best or pixels > best[key][0]:
            best[key] = (pixels, path)
    return [p for _, p in best.values()]


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def build(out: Path | None = None, short_sides: tuple[int, ...] = TRAIN_SHORT_SIDES) -> dict:
    out = Path(out or photos_dir())
    counts = {"train": 0, "dev": 0}
    for split in counts:
        (out / split).mkdir(parents=True, exist_ok=True)
    for package in TRAIN_PACKAGES:
        files = wallpaper_files(fetch_package(package))
        counts[package] = len(files)
        for i, path in enumerate(files):
            im = _rgb(path)
            short = min(im.size)
            for side in short_sides:
                if side != short_sides[0] and short < side:
                    continue  # never enlarge: a small picture is kept once, at the first scale
                scale = min(1.0, side / short)
                size = (round(im.width * scale), round(im.height * scale))
                if min(size) < MIN_SIDE:
                    continue
                small = im.resize(size, Image.Resampling.LANCZOS) if scale < 1 else im
                small.save(out / "train" / f"{package}-{i:03d}-{side}.png")
                counts["train"] += 1
    data = fetch_package(DEV_PACKAGE) / "usr/share/doc/opencv-doc/examples/data"
    for name in DEV_PHOTOS:
        _rgb(data / name).save(out / "dev" / f"{Path(name).stem}.png")
        counts["dev"] += 1
    return counts


def load_split(split: str, root: Path | None = None) -> list[np.ndarray]:
    """All pictures of a split as uint8 HxWx3 arrays."""
    files = sorted((Path(root or photos_dir()) / split).glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no photos in {root or photos_dir()}/{split}: run `streamcodec train photos`")
    return [np.asarray(_rgb(f)) for f in files]


class PhotoCrops:
    """Random crops (with random flips) of the photos of one split, as (n, 3, crop, crop) in [0, 1]."""

    def __init__(self, photos: list[np.ndarray], crop: int, seed: int) -> None:
        self.photos = [p for p in photos if min(p.shape[:2]) >= crop]
        if not self.photos:
            raise ValueError(f"no photo is at least {crop} pixels on its short side")
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        for i in range(n):
            p = self.photos[self.rng.integers(len(self.photos))]
            y = self.rng.integers(p.shape[0] - self.crop + 1)
            x = self.rng.integers(p.shape[1] - self.crop + 1)
            c = p[y : y + self.crop, x : x + self.crop]
            out[i] = c[:, ::-1] if self.rng.random() < 0.5 else c
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)

    def centre_crops(self) -> torch.Tensor:
        """One central crop per photo: a fixed development batch."""
        crops = []
        for p in self.photos:
            y, x = (p.shape[0] - self.crop) // 2, (p.shape[1] - self.crop) // 2
            crops.append(p[y : y + self.crop, x : x + self.crop])
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--short-sides", type=int, nargs="+", default=list(TRAIN_SHORT_SIDES),
                        help="scales each training picture is kept at (short side, pixels at most)")
    args = parser.parse_args(argv)
    start = time.time()
    counts = build(args.out, tuple(args.short_sides))
    pictures = ", ".join(f"{p} {counts[p]}" for p in TRAIN_PACKAGES)
    print(f"photos: {counts['train']} training images ({pictures} pictures, at up to {len(args.short_sides)} "
          f"scales), {counts['dev']} development photos in {args.out or photos_dir()} ({time.time() - start:.0f} s)")
